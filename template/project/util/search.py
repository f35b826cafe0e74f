"""The machinery behind sweep.py: the plan from the command line (util/space.py reads the search space), the
Optuna study and its storage, and the summary at the end. util/workers.py runs the trials.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from util.space import Param, SweepError, fixed_and_searched, given_value

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
    with _creating(plan.storage):
        return optuna.create_study(study_name=plan.study, storage=open_storage(plan.storage, heartbeat),
                                   sampler=make_sampler(plan, worker), pruner=median_pruner(), direction="minimize",
                                   load_if_exists=True)


@contextlib.contextmanager
def _creating(url: str) -> Iterator[None]:
    """One process at a time creates a new SQLite study: SLURM array tasks start together, and two of them
    creating the same database's tables at once made one fail (UNIQUE constraint failed: alembic_version)."""
    if not url.startswith("sqlite:///"):
        yield
        return
    import fcntl

    database = Path(url.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(f"{database.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def counted(study: Any) -> list[Any]:
    """The trials that count towards --trials: complete and pruned ones."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


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
