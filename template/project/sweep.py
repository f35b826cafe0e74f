"""Search hyperparameters: many ordinary trainer.py runs chosen by Optuna, compared in TensorBoard's HPARAMS tab.

    python sweep.py --trials 20 --lr 1e-4:1e-1:log --hidden 16,32,64
    python sweep.py --trials 40 --workers 2 --prune --lr 1e-4:1e-1:log --depth 1:4 --max_epochs 30
    python sweep.py --sampler grid --hidden 16,32,64 --optimizer adam,sgd

A trainer.py flag given LOW:HIGH (LOW:HIGH:log for a log scale) is searched in that range, typed by the flag (int or
float); a,b,c is searched among those choices; any other trainer.py flag is the same for all trials. Each trial is an
ordinary run, logs/<study>/trial-<n>_<its values>, so `tensorboard --logdir logs` shows every trial beside every other
run (the trial, its state and its searched values lead its HPARAMS row). The study lives in logs/<study>/study.db (or
--storage): the same command again continues it, trials that were stopped (Ctrl-C, a killed worker, a requeued SLURM
task) from their last checkpoint. At the end: the best trials, the trainer.py command that trains the best again, and
Optuna's plots beside the study.

This file is the sweep: its flags, the worker processes it starts and keeps (one replaces a worker that dies), the lines
it prints and the summary at the end. util/sweeps.py is a trial's side: the search space, the study, Optuna's loop
in each worker and what a trial's run reports to it.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import shlex
import signal
import socket
import sys
import time
import warnings
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import trainer
from util import runs, sweeps

# Workers: this process forked once the study exists (Lightning imported), else fresh interpreters (macOS, Windows).
WORKERS = (multiprocessing.get_context("fork") if sys.platform.startswith("linux")
           else multiprocessing.get_context("spawn"))  # two typed calls: mypy knows each context's Process

EPILOG = """examples:
  python sweep.py --trials 20 --workers 2 --lr 1e-4:1e-1:log --hidden 16,32,64 --max_epochs 20
  python sweep.py --prune --trials 50 --lr 1e-5:1e-1:log --weight_decay 0,1e-4,1e-2
  python sweep.py --sampler grid --optimizer adam,sgd --scheduler none,cosine
  python sweep.py --study big --storage postgresql+psycopg2://me@dbhost/optuna ...   shared by many machines
  scripts/slurm-sweep.sbatch 8 --study big --storage /shared/big.journal ...         8 SLURM tasks, one study
  optuna-dashboard sqlite:///logs/<study>/study.db                                  watch it live in a browser
"""


def parse(argv: list[str] | None) -> sweeps.Plan:
    """The sweep's own flags, then trainer.py's: searched ones become the space, the others stay fixed."""
    parser = argparse.ArgumentParser(prog="sweep.py", description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                     usage="python sweep.py [sweep flags] [trainer.py flags, searched or fixed]",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--trials", type=int, help="Trials to complete (pruned ones count; failed ones do not). "
                                                   "Default: 20, or the grid's size with --sampler grid.")
    parser.add_argument("--workers", type=int, default=1, help="Trials at a time on this machine (default: 1).")
    parser.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe",
                        help="How Optuna chooses the next trial (default: tpe).")
    parser.add_argument("--sampler_seed", type=int, help="Seed of the sampler, for a repeatable sequence of trials.")
    parser.add_argument("--prune", action="store_true",
                        help="Stop unpromising trials early: worse than the median of earlier trials at a validation.")
    parser.add_argument("--prune_warmup", type=int, default=3,
                        help="Validations every trial runs before it may be pruned (default: 3).")
    parser.add_argument("--study", help="Name of the study and of its series folder (default: sweep-<model>-<dataset>).")
    parser.add_argument("--storage", help="Optuna storage: an RDB URL (postgresql+psycopg2://..., sqlite:///...) or a "
                                          "journal file path (default: sqlite in logs/<study>/study.db).")
    args, trainer_flags = parser.parse_known_args(argv)
    try:
        return sweeps.make_plan(args, trainer_flags, trainer.DEFAULTS)
    except (sweeps.SweepError, OSError) as problem:  # OSError: a file where its folder must be, a read-only disk
        parser.error(str(problem))


def main(argv: list[str] | None = None) -> int:
    plan = parse(argv)
    print(f"Study {plan.study}: {plan.trials} trials in {plan.series_dir}", flush=True)
    code = supervise(plan)
    if code in sweeps.INTERRUPTED:
        print("sweep.py: interrupted; the running trials saved their state: the same command continues them",
              file=sys.stderr)
        return code
    print(summary(plan))
    return 1 if code else 0



# ---- the sweep: workers started, replaced when they die, stopped together ----------------------------------------


def supervise(plan: sweeps.Plan) -> int:
    """Start plan.workers worker processes and keep that many until the study is done, saying one line per finished
    trial (each worker's own output goes to <study>/workers/); 0 when done, 130 on Ctrl-C (143 on SIGTERM: the running
    trials are saved and continue with the same command), 3 when trials cannot succeed."""
    sweeps.retry_orphans(plan)
    logs = Path(plan.series_dir) / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    study = sweeps.load(plan)  # this process's: it keeps no database connection open that a worker would inherit

    def start(index: int) -> BaseProcess:
        gc.collect()
        gc.freeze()  # what is here now stays shared with the workers: their gc after each trial skips it
        worker = WORKERS.Process(target=work, args=(plan, index, logs / f"{socket.gethostname()}-{os.getpid()}-"
                                                                          f"{index}.log"))
        worker.start()
        return worker

    procs = {index: start(index) for index in range(plan.workers)}
    stopped_by = sweeps.signals_as_ctrl_c()
    codes: list[int] = []
    said: set[int] = set()
    replaced = 0
    try:
        while procs:
            wait([proc.sentinel for proc in procs.values()], timeout=2)  # a worker ended, or time to say what finished
            for index, proc in list(procs.items()):
                if (code := proc.exitcode) is None:
                    continue
                del procs[index]
                codes.append(code)
                if code in (0, sweeps.EXIT_STREAK, *sweeps.INTERRUPTED):
                    if code != 0:  # the others would meet the same fate: stop them the same way
                        stop(procs.values())
                    continue
                sweeps.retry_trials_of(study, proc.pid or 0)  # died (kill -9, out of memory): retry its trial
                replaced += 1
                if replaced <= plan.trials + plan.workers:
                    print(f"worker {proc.pid} died (exit {code}); a new worker continues its trial", flush=True)
                    procs[index] = start(index)
            say_finished(study, said)
    except KeyboardInterrupt:
        stop(procs.values())
        return stopped_by[-1] if stopped_by else 130
    if sweeps.EXIT_STREAK in codes:
        from optuna.trial import TrialState

        failed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL]
        first = failed[-sweeps.FAILURE_STREAK].user_attrs.get("failed_because", "?") if failed else "?"
        print(f"sweep.py: error: {sweeps.FAILURE_STREAK} trials failed one after another, the first with: {first}",
              file=sys.stderr, flush=True)
    return next((code for code in codes if code in sweeps.INTERRUPTED), sweeps.EXIT_STREAK if sweeps.EXIT_STREAK in
                codes else 0)


def work(plan: sweeps.Plan, index: int, log: Path) -> None:
    """A worker process: its output to its log file, then trials until the study is done (exit code: how)."""
    with log.open("ab") as out:
        os.dup2(out.fileno(), sys.stdout.fileno())
        os.dup2(out.fileno(), sys.stderr.fileno())
    sys.exit(sweeps.work(plan, trainer.main, index))


def say_finished(study: Any, said: set[int]) -> None:
    """One line for each trial that finished since the last look."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    for t in study.get_trials(deepcopy=False, states=ended):
        if t.number in said:
            continue
        said.add(t.number)
        original = RetryHeartbeatStaleTrialCallback.retried_trial_number(t)
        continues = f" (continued trial {original})" if original is not None else ""
        outcome = {TrialState.COMPLETE: f"complete{continues}: {t.value:.4g}" if t.value is not None else "complete",
                   TrialState.PRUNED: f"pruned{continues}", TrialState.FAIL: "stopped, to be continued"
                   if "failed_because" not in t.user_attrs else f"failed: {t.user_attrs['failed_because']}"}[t.state]
        print(f"trial {t.number} {outcome}  {values(t)}  {t.user_attrs.get('run_dir', '')}", flush=True)


def stop(procs: Any) -> None:
    """Ctrl-C reached every worker already (one process group); one that did not get it is sent SIGINT."""
    deadline = time.monotonic() + 3
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.exitcode is None and proc.pid is not None:
            os.kill(proc.pid, signal.SIGINT)
    for proc in procs:
        proc.join()


# ---- the outcome: best trials, plots --------------------------------------------------------------------------------


def summary(plan: sweeps.Plan, top: int = 3) -> str:
    """The study's trials by state, the best ones, the command that trains the best again, where the plots are."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    study = sweeps.load(plan)
    trials = study.get_trials(deepcopy=False)
    continued = {n for t in trials for n in RetryHeartbeatStaleTrialCallback.retry_history(t)}  # stopped, retried
    count = {state: sum(t.state == state and t.number not in continued for t in trials) for state in TrialState}
    lines = [(f"Study {plan.study}: {count[TrialState.COMPLETE]} complete, {count[TrialState.PRUNED]} pruned, "
              f"{count[TrialState.FAIL]} failed, {len(continued)} interrupted and continued, "
              f"{count[TrialState.WAITING]} waiting to continue ({plan.storage})")]
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value,
                      reverse=plan.direction == "maximize")
    if not complete:
        return "\n".join([*lines, "No trial completed."])
    lines.append(f"Best trials ({'higher' if plan.direction == 'maximize' else 'lower'} is better):")
    for t in complete[:top]:
        lines.append(f"  trial {t.number}: {t.value:.6g}  {values(t)}  {t.user_attrs.get('run_dir', '')}")
    argv = [arg for arg in complete[0].user_attrs.get("argv", []) if arg != "--resume"]
    if "--resume" in complete[0].user_attrs.get("argv", []):
        argv = argv[1:]  # without the run folder it continued
    lines.append(f"Train the best again: python {shlex.join([typable(str(runs.PROJECT_ROOT / 'trainer.py')), *argv])}")
    lines.append(f"Compare all trials:   tensorboard --logdir {typable(plan.series_dir)}")
    if written := plots(plan, study):
        lines.append(f"Plots:                {', '.join(typable(str(path)) for path in written)}")
    return "\n".join(lines)


def plots(plan: sweeps.Plan, study: Any) -> list[Path]:
    """Optuna's optimization history, parameter importances and parallel coordinates, as PNG files beside the study."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    for name, draw, needs in (("optimization_history", optuna_plots.plot_optimization_history, 1),
                              ("param_importances", optuna_plots.plot_param_importances, 2),
                              ("parallel_coordinate", optuna_plots.plot_parallel_coordinate, 2)):
        if len([t for t in study.trials if t.value is not None]) < needs or (needs > 1 and not plan.space):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                draw(study)
            path = Path(plan.series_dir) / f"{name}.png"
            plt.gcf().savefig(path, bbox_inches="tight")
            plt.close("all")
            written.append(path)
        except (ValueError, RuntimeError, ZeroDivisionError):  # too few distinct trials for this plot yet
            continue
    return written


def values(trial: Any) -> str:
    return " ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
                    for name, value in trial.params.items())


def typable(path: str) -> str:
    """A path as the user can type it from here: relative below the working directory, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


if __name__ == "__main__":
    sys.exit(main())
