"""The machinery behind sweep.py: the plan from the command line (util/space.py reads the search space), the
Optuna study, and the workers that run trials as ordinary ``python trainer.py`` runs.

Workers: each trial is a ``python trainer.py`` process started by a worker, so a trial that dies (killed,
out of memory, a crash) is a failed trial and the worker goes on. A worker marks its trials with its host and
pid: a trial left running by a worker that died on this machine is marked failed when a worker next looks, one
on another machine once its heartbeat (RDB storages) is older than the grace period. The study ends when
COMPLETE + PRUNED trials reach --trials, so failed work is never counted as done and running the command again
continues the study.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from util.space import Param, SweepError, fixed_and_searched, given_value, values_of

TRIAL_ENV = "SWEEP_TRIAL"  # the trial, for the trainer.py run that is one (util/trial.py)
WORKER_ENV = "SWEEP_WORKER"  # the plan, for the worker processes sweep.py starts
HEARTBEAT_SECONDS = 20  # a running trial's worker says it is alive this often
GRACE_SECONDS = 120  # ... and is taken for dead (its trial failed) after this long without a sign


@dataclass
class Plan:
    """Everything a worker needs (JSON-able: handed to worker processes in the environment)."""

    study: str
    storage: str
    trials: int
    sampler: str
    sampler_seed: int | None
    prune: bool
    fixed: list[str]  # trainer.py flags for every trial, including --name and --save_dir
    space: list[Param]
    series_dir: str
    trainer: str  # the path of trainer.py
    workers: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        data["space"] = [Param(**param) for param in data["space"]]
        return cls(**data)


# ----------------------------------------------------------------------------------------------------
# The search space from the command line
# ----------------------------------------------------------------------------------------------------


def make_plan(args: Any, tokens: list[str], trainer_path: Path) -> Plan:
    """The plan from sweep.py's flags (args) and trainer.py's (tokens); the study is created (or found) in its
    storage. Bad input is a SweepError, raised before anything is written."""
    import trainer
    from data import DATASETS
    from model import MODELS
    from util import cli, runs

    if args.workers < 1 or (args.trials is not None and args.trials < 1):
        raise SweepError("--workers and --trials take a number of 1 or more")
    given = {flag: given_value(tokens, flag) for flag in ("--model", "--dataset", "--save_dir")}
    model, dataset = given["--model"] or trainer.DEFAULT_MODEL, given["--dataset"] or trainer.DEFAULT_DATASET
    for flag, name, known in (("--model", model, MODELS), ("--dataset", dataset, DATASETS)):
        if name not in known:
            raise SweepError(f"{flag} {name}: not one of {', '.join(sorted(known))} (a sweep searches within one "
                             "model and dataset)")
    parser = cli.build_parser(trainer.DEFAULTS, model, dataset)[0]
    fixed, space = fixed_and_searched(tokens, parser)
    if args.prune and given_value(fixed, "--folds") is not None:
        raise SweepError("--prune with --folds: a trial's folds run one after another, so nothing compares them "
                         "at each validation; sweep with --folds without --prune")

    study = args.study or f"sweep-{model}-{dataset}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", study):
        raise SweepError(f"--study {study!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
    series_dir = (Path(given["--save_dir"]) if given["--save_dir"] else runs.DEFAULT_SAVE_DIR).resolve() / study
    trials = args.trials or 20
    if args.sampler == "grid":
        if not space:
            raise SweepError("--sampler grid needs at least one searched flag (a,b,c or LOW:HIGH of integers)")
        size = 1
        for param in space:
            size *= len(param.grid())
        trials = min(args.trials or size, size)
    plan = Plan(study=study, storage=args.storage or f"sqlite:///{series_dir / 'study.db'}", trials=trials,
                sampler=args.sampler, sampler_seed=args.sampler_seed, prune=args.prune,
                fixed=[*fixed, "--name", study], space=space, series_dir=str(series_dir),
                trainer=str(trainer_path), workers=args.workers)
    if args.storage:
        open_storage(args.storage, heartbeat=False)  # unreachable: refused before any folder is made
    series_dir.mkdir(parents=True, exist_ok=True)
    _check_same_choices(load(plan), space)  # creates the study, or finds it to continue
    return plan


def _check_same_choices(study: Any, space: list[Param]) -> None:
    """Optuna lets a continued study change a range but not a set of choices: say so before any trial."""
    from optuna.distributions import check_distribution_compatibility

    mine = {param.name: param for param in space}
    for trial in study.get_trials(deepcopy=False):
        for name, earlier in trial.distributions.items():
            if name in mine:
                try:
                    check_distribution_compatibility(earlier, mine[name].distribution())
                except ValueError:
                    raise SweepError(f"{mine[name].flag}: study {study.study_name} searched it as {earlier}; a "
                                     "study keeps its choices: give the same ones, or another --study") from None


# ----------------------------------------------------------------------------------------------------
# The study
# ----------------------------------------------------------------------------------------------------


def median_pruner() -> Any:
    """The pruner of --prune, the same in the worker and in the run: a trial is stopped at a validation where
    its loss/val is worse than the median of the earlier trials' at the same validation, once two trials
    finished (no pruning on too little evidence)."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)


def make_sampler(plan: Plan, worker: int) -> Any:
    import optuna

    seed = None if plan.sampler_seed is None else plan.sampler_seed + worker  # workers must not sample alike
    if plan.sampler == "grid":
        return optuna.samplers.GridSampler({p.name: p.grid() for p in plan.space}, seed=seed)
    if plan.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def open_storage(url: str, heartbeat: bool = True) -> Any:
    """An Optuna storage: an RDB URL (sqlite:///..., postgresql+psycopg2://...) or a journal file path.
    Raises SweepError (one line) when it cannot be reached."""
    import optuna

    try:
        if "://" not in url:
            from optuna.storages.journal import JournalFileBackend

            if not Path(url).parent.is_dir():
                raise SweepError(f"--storage {url}: the folder {Path(url).parent} does not exist")
            # No heartbeat in Optuna's journal storage: a dead worker's trial is found by its pid on its own host.
            return optuna.storages.JournalStorage(JournalFileBackend(url))
        connect = {"timeout": 60} if url.startswith("sqlite") else {"connect_timeout": 10} if "postgres" in url else {}
        beat = {"heartbeat_interval": HEARTBEAT_SECONDS, "grace_period": GRACE_SECONDS} if heartbeat else {}
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": connect}, **beat)
    except SweepError:
        raise
    except Exception as error:  # noqa: BLE001 - sqlalchemy's, psycopg2's, sqlite's own errors: one line says why
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SweepError(f"--storage {url}: cannot open it: {first}") from None


def load(plan: Plan, worker: int = 0, heartbeat: bool = True) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats and fail_stale_trials are "experimental" since Optuna 2.9, and heartbeats are "supposed to be
    # used with Study.optimize": this module records them itself (_heartbeat), around each trial's process.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    return optuna.create_study(study_name=plan.study, storage=open_storage(plan.storage, heartbeat),
                               sampler=make_sampler(plan, worker), pruner=median_pruner(), direction="minimize",
                               load_if_exists=True)


def counted(study: Any) -> list[Any]:
    """The trials that count towards --trials: complete and pruned ones."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


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
        trial = study.ask(distributions)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        ahead = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if t.number < trial.number]
        if len(counted(study)) + len(ahead) >= plan.trials:  # another worker took the last trial meanwhile
            trial.set_user_attr("failed_because", "not needed: other workers were running the last trials")
            _tell(study, trial, state=TrialState.FAIL)
            return
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


# ----------------------------------------------------------------------------------------------------
# The outcome
# ----------------------------------------------------------------------------------------------------


def summary(plan: Plan, top: int = 3) -> str:
    """The best trials (value, parameters, run folder) and the command that trains the best one again."""
    from optuna.trial import TrialState

    study = load(plan, heartbeat=False)
    trials = study.get_trials(deepcopy=False)
    states = {state: sum(t.state == state for t in trials) for state in (TrialState.COMPLETE, TrialState.PRUNED,
                                                                         TrialState.FAIL)}
    lines = [(f"Study {plan.study}: {states[TrialState.COMPLETE]} complete, {states[TrialState.PRUNED]} pruned, "
              f"{states[TrialState.FAIL]} failed ({plan.storage})")]
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    if not complete:
        return "\n".join([*lines, "No trial completed."])
    lines.append("Best trials (loss/val, lower is better):")
    for t in complete[:top]:
        shown = " ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
                         for name, value in t.params.items())
        lines.append(f"  trial {t.number}: {t.value:.6g}  {shown}  {t.user_attrs.get('run_dir', '')}")
    best = complete[0]
    lines.append(f"Train the best again: python {shlex.join([_shown(plan.trainer), *best.user_attrs.get('argv', [])])}")
    lines.append(f"Compare all trials:   tensorboard --logdir {_shown(plan.series_dir)}")
    return "\n".join(lines)


def _shown(path: str) -> str:
    """A path as the user can type it from here: relative below the working directory, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
