"""The workers of a sweep (util/search.py holds the plan and the study): each runs trials one after another
until the study has enough, every trial a ``python trainer.py`` process with the trial handed over in
``SWEEP_TRIAL`` (util/trial.py is the run's side).

A trial that dies (killed, out of memory, a crash) is a failed trial and its worker goes on. A worker marks its
trials with its host and pid: a trial left running by a worker that died on this machine is marked failed when
a worker next looks, one on another machine once its heartbeat (RDB storages) is older than the grace period.
A worker stops asking for trials once COMPLETE + PRUNED + running ones reach --trials, so failed work never
counts as done and the same command again continues the study.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from util.search import HEARTBEAT_SECONDS, TRIAL_ENV, WORKER_ENV, Plan, counted, load
from util.space import values_of


def fail_abandoned(study: Any) -> None:
    """Mark failed the running trials whose worker is gone: on this host by its pid, elsewhere by heartbeat."""
    import optuna
    from optuna.trial import TrialState

    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host == host and pid.isdigit() and not _alive(int(pid)):
            try:
                study._storage.set_trial_user_attr(trial._trial_id, "failed_because", "its worker died")
                study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            except RuntimeError:
                pass  # another worker got there first
            print(f"trial {trial.number}: its worker (pid {pid}) died; marked failed", flush=True)
    optuna.storages.fail_stale_trials(study)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return Path(f"/proc/{pid}/stat").is_file() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


# ----------------------------------------------------------------------------------------------------
# A worker: trials one after another until the study has enough
# ----------------------------------------------------------------------------------------------------


def work(plan: Plan, worker: int = 0) -> None:
    """Run trials until COMPLETE + PRUNED reach plan.trials (or the grid is covered)."""
    from optuna.trial import TrialState

    study = load(plan, worker)
    distributions = {param.name: param.distribution() for param in plan.space}
    while True:
        fail_abandoned(study)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if len(counted(study)) + len(running) >= plan.trials or _grid_covered(plan, study):
            return  # the trials still running finish the study (a worker whose trial fails goes on)
        # Two workers that looked at the same moment may both start a trial for the last place: the study then
        # completes one trial more than asked (as with Optuna's MaxTrialsCallback), never a trial failed unrun.
        trial = study.ask(distributions)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        run_trial(plan, study, trial)


def _grid_covered(plan: Plan, study: Any) -> bool:
    if plan.sampler != "grid":
        return False
    seen = {tuple(sorted(t.params.items())) for t in counted(study)}
    size = 1
    for param in plan.space:
        size *= len(param.grid())
    return len(seen) >= size


def run_trial(plan: Plan, study: Any, trial: Any) -> None:
    """One trial: python trainer.py with the sampled flags, its output in <series>/trials/trial-N.out."""
    from optuna.trial import TrialState

    argv = [*plan.fixed, *values_of(trial.params, plan.space)]
    trial.set_user_attr("argv", argv)
    output = Path(plan.series_dir) / "trials" / f"trial-{trial.number}.out"
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        result_file = Path(scratch) / "result.json"
        link = {"study": plan.study, "storage": plan.storage, "trial_id": trial._trial_id, "number": trial.number,
                "prune": plan.prune, "result": str(result_file)}
        # A SLURM task's variables would make the trial a SLURM run (named and requeued as one): it is not.
        env = {name: value for name, value in os.environ.items() if not name.startswith("SLURM_")}
        env[TRIAL_ENV] = json.dumps(link)
        beating = _heartbeat(study, trial)
        with output.open("w") as log:
            code = subprocess.call([sys.executable, plan.trainer, *argv], stdout=log, stderr=subprocess.STDOUT,
                                   env=env, preexec_fn=_die_with_parent)
        beating.set()
        result = json.loads(result_file.read_text()) if result_file.is_file() else {}
    shown = " ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in trial.params.items())
    if result.get("run_dir"):
        trial.set_user_attr("run_dir", result["run_dir"])
    if code != 0 or not result:
        trial.set_user_attr("failed_because", f"trainer.py exited with {code}, see {output}")
        _tell(study, trial, state=TrialState.FAIL)
        print(f"trial {trial.number} failed ({shown}): trainer.py exited with {code}, see {output}", flush=True)
    elif result.get("pruned"):
        _tell(study, trial, state=TrialState.PRUNED)
        print(f"trial {trial.number} pruned ({shown}): {result['run_dir']}", flush=True)
    elif result.get("value") is None:
        trial.set_user_attr("failed_because", "no loss/val (the run never validated)")
        _tell(study, trial, state=TrialState.FAIL)
        print(f"trial {trial.number} failed ({shown}): no loss/val to optimize", flush=True)
    else:
        _tell(study, trial, result["value"])
        print(f"trial {trial.number} loss/val {result['value']:.4g} ({shown}): {result['run_dir']}", flush=True)


def _tell(study: Any, trial: Any, value: float | None = None, state: Any = None) -> None:
    """study.tell; the grid sampler calls study.stop() after the grid's last trial, which only works inside
    study.optimize (RuntimeError here, the trial already recorded): this loop stops by counting instead."""
    try:
        study.tell(trial, value, state=state)
    except RuntimeError as error:
        if "Study.stop" not in str(error):
            raise


def _heartbeat(study: Any, trial: Any) -> threading.Event:
    """Tell the storage this trial's worker is alive until the returned event is set."""
    stop = threading.Event()
    storage = study._storage
    if getattr(storage, "get_heartbeat_interval", lambda: None)() is None:  # journal storage: no heartbeat
        return stop

    def beat() -> None:
        while True:
            try:
                storage.record_heartbeat(trial._trial_id)
            except Exception:  # noqa: BLE001, S110 - a storage hiccup must not end the trial; the next beat retries
                pass
            if stop.wait(HEARTBEAT_SECONDS):
                return

    threading.Thread(target=beat, daemon=True).start()
    return stop


def _die_with_parent() -> None:
    """A trial's process ends when its worker dies (Linux), so a killed worker leaves no orphan training."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_workers(plan: Plan, count: int, sweep_script: str) -> int:
    """count worker processes of this plan (sweep.py in worker mode); their exit code (0 when all ended well)."""
    workers = [subprocess.Popen([sys.executable, sweep_script],
                                env={**os.environ, WORKER_ENV: json.dumps({"plan": plan.to_json(), "worker": index})})
               for index in range(count)]
    try:
        return max(worker.wait() for worker in workers)
    except KeyboardInterrupt:
        for worker in workers:
            worker.send_signal(signal.SIGINT)
        return max(worker.wait() for worker in workers)


def worker_main(text: str) -> None:
    handed = json.loads(text)
    work(Plan.from_json(handed["plan"]), handed["worker"])
