"""Many runs: a trial's side of a hyperparameter search (sweep.py) on Optuna, and k-fold cross-validation
(trainer.py --folds K).

A sweep is an Optuna study whose trials are ordinary runs (folder, checkpoints, HPARAMS row, provenance, exact
resume). sweep.py plans it and keeps --workers processes, forked once Lightning is imported; each runs trials one after
another with Optuna's own loop (`study.optimize` calling trainer.main). Optuna's public API does the rest: heartbeats
and stale trials (RDBStorage, SQLite included), the count across workers (MaxTrialsCallback), retries with the same
parameters (RetryHeartbeatStaleTrialCallback), pruning (trial.report / should_prune, with a warm-up).

What Optuna does not do, and this module does: read the search space from trainer.py's flags (``LOW:HIGH[:log]``,
``a,b,c``), run trials as trainer.py runs, CONTINUE a retried trial's run from its last checkpoint, retry a stopped or
dead worker's trials at once (a journal file has no heartbeat), stop a sweep whose trials all fail, and cut train+val
into folds. Pruning reports from a small callback of ours: optuna-integration's Lightning callback raises inside fit
(the run would end without testing its best checkpoint) and watches a metric fixed before the run knows its own.
"""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import time
import urllib.parse
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import ConcatDataset, Subset

from util import cli, runs

HEARTBEAT, GRACE = 10, 40  # seconds: a running trial's worker says it is alive; after GRACE without, it is dead
FAILURE_STREAK = 3  # trials failing one after another: the sweep cannot succeed (a flag every trial rejects)
EXIT_STREAK = 3
INTERRUPTED = {130, 143, 129}
FOLDS_MEAN, FOLDS_STD = "hp/folds_val_loss_mean", "hp/folds_val_loss_std"  # beside each fold in HPARAMS


class SweepError(ValueError):
    """Bad input, reported in one line before any trial starts."""


# ---- the search space -------------------------------------------------------------------------------------------


@dataclass
class Param:
    """One searched flag: a range (low, high, log, integer) or choices (parsed like the flag)."""

    flag: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: list[Any] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.flag.lstrip("-")

    def suggest(self, trial: Any) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.name, self.choices)
        if self.integer:
            return trial.suggest_int(self.name, int(self.low or 0), int(self.high or 0), log=self.log)
        return trial.suggest_float(self.name, float(self.low or 0), float(self.high or 0), log=self.log)

    def distribution(self) -> Any:
        """What suggest() asks Optuna for, as Optuna's distribution."""
        from optuna import distributions as d

        return (d.CategoricalDistribution(self.choices) if self.choices else d.IntDistribution(
            int(self.low or 0), int(self.high or 0), log=self.log) if self.integer else d.FloatDistribution(
            float(self.low or 0), float(self.high or 0), log=self.log))

    def grid(self) -> list[Any]:
        if self.choices:
            return list(self.choices)
        if self.integer and not self.log:
            return list(range(int(self.low or 0), int(self.high or 0) + 1))
        raise SweepError(f"{self.flag}: --sampler grid needs choices (a,b,c) or an integer range, not a float range")


RANGE = re.compile(r"^(?P<low>[^:,]+):(?P<high>[^:,]+)(?P<log>:log)?$")


def space_of(tokens: list[str], parser: Any) -> tuple[list[str], list[Param], Any]:
    """trainer.py's flags split into the fixed ones and the searched ones, and the fixed ones parsed; each value is
    parsed by trainer.py's own parser, so a range is an int range where the flag takes ints and a choice has the flag's
    type (read with every fixed flag, also the required ones given after it)."""
    pairs, i = [], 0
    while i < len(tokens):
        flag, equals, inline = tokens[i].partition("=")
        if not flag.startswith("--"):
            raise SweepError(f"{tokens[i]!r}: expected --flag VALUE (python trainer.py --help lists the flags)")
        if equals or (i + 1 < len(tokens) and not tokens[i + 1].startswith("--")):
            pairs.append((flag, inline if equals else tokens[i + 1]))
            i += 1 if equals else 2
        else:  # a switch such as --swa
            pairs.append((flag, "true"))
            i += 1
    fixed: list[str] = []
    space: list[Param] = []
    for flag, text in pairs:
        if flag in ("--name", "--version", "--resume", "--fold"):
            raise SweepError(f"{flag}: a sweep names and continues its runs itself (the series is --study)")
        param = _classify(flag, text, [t for p in pairs if not (RANGE.match(p[1]) or "," in p[1]) for t in p], parser)
        if param is None:
            fixed += [flag, text]
        elif flag in ("--model", "--dataset", "--save_dir", "--config"):
            raise SweepError(f"{flag} cannot be searched: a study trains one model on one dataset")
        elif any(other.flag == flag for other in space):
            raise SweepError(f"{flag} is searched twice")
        else:
            space.append(param)
    return fixed, space, _typed(parser, fixed, "")  # the fixed flags alone parse


def _typed(parser: Any, fixed: list[str], flag: str, text: str | None = None) -> Any:
    """A value as trainer.py's parser reads it (with the fixed flags; --optimizer.lr: in init_args), or a SweepError."""
    try:
        args = parser.parse_args([*fixed, *([flag, text] if flag else [])])
    except Exception as problem:  # noqa: BLE001 - jsonargparse's ArgumentError, in one line
        raise SweepError(cli.one_line(problem)) from None
    return args[key if (key := flag.lstrip("-")) in args else key.replace(".", ".init_args.", 1)] if flag else args


def _classify(flag: str, text: str, fixed: list[str], parser: Any) -> Param | None:
    """A Param when text is a range or choices of this flag, else None (a fixed value)."""
    if (match := RANGE.match(text)) is not None:
        low, high = (_typed(parser, fixed, flag, match[bound]) for bound in ("low", "high"))
        if all(isinstance(bound, (int, float)) and not isinstance(bound, bool) for bound in (low, high)):
            if not all(math.isfinite(bound) for bound in (low, high)):
                raise SweepError(f"{flag} {text}: a range needs finite bounds")
            if low >= high:
                raise SweepError(f"{flag} {text}: empty range (LOW must be below HIGH)")
            if isinstance(default := parser.get_defaults().get(flag[2:]), int) and low < 0 <= default:
                raise SweepError(f"{flag} {text}: it counts something (default {default}); search 0 or more")
            if match["log"] and low <= 0:
                raise SweepError(f"{flag} {text}: a log range must stay above 0")
            integer = isinstance(low, int) and isinstance(high, int)  # as the flag reads them (--hidden: ints)
            return Param(flag, low=float(low), high=float(high), log=bool(match["log"]), integer=integer)
    if "," in text and not text.startswith("["):
        if any(not choice.strip() for choice in text.split(",")):
            raise SweepError(f"{flag} {text}: an empty choice")
        values = [_typed(parser, fixed, flag, choice.strip()) for choice in text.split(",")]
        if isinstance(default := parser.get_defaults().get(flag[2:]), int) and default >= 0 > min(
                (value for value in values if isinstance(value, (int, float))), default=0):
            raise SweepError(f"{flag} {text}: it counts something (default {default}); search 0 or more")
        kept = [value if isinstance(value, (bool, int, float, str, type(None))) else choice
                for value, choice in zip(values, text.split(","))]
        return Param(flag, choices=list(dict.fromkeys(kept)))
    return None


def values_of(params: dict[str, Any], space: list[Param]) -> list[str]:
    """The trainer.py flags of a trial's parameters."""
    return [token for param in space for token in (param.flag, repr(params[param.name]) if isinstance(
        params[param.name], float) else str(params[param.name]).lower() if isinstance(params[param.name], bool)
        else str(params[param.name]))]


# ---- the plan and its study ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    """Everything a worker needs: the study, its storage, the space and the fixed trainer.py flags."""

    study: str
    storage: str
    trials: int
    sampler: str
    sampler_seed: int | None
    prune: bool
    prune_warmup: int
    direction: str
    fixed: list[str]  # trainer.py flags of every trial, --name and --save_dir included
    space: list[Param]
    series_dir: str
    workers: int = 1


def make_plan(args: Any, tokens: list[str], defaults: cli.Defaults) -> Plan:
    """The plan from sweep.py's flags (args) and trainer.py's (tokens); the study is created (or found and checked) in
    its storage before any worker starts. Bad input is a SweepError, raised before anything is written."""
    from data import DATASETS
    from model import MODELS

    if args.workers < 1 or (args.trials is not None and args.trials < 1) or args.prune_warmup < 0:
        raise SweepError("--workers and --trials take a number of 1 or more, --prune_warmup 0 or more")
    chosen = cli.chosen(tokens)  # from flags or --config files, as trainer.py reads them
    model, dataset = chosen.get("model") or defaults.model, chosen.get("dataset") or defaults.dataset
    for flag, name, known in (("--model", model, MODELS), ("--dataset", dataset, DATASETS)):
        if name not in known:
            raise SweepError(f"{flag} {name}: not one of {', '.join(sorted(known))}")
    parser = cli.build_parser(defaults, model, dataset)[0]
    fixed, space, settings = space_of(tokens, parser)
    if args.prune and settings.folds is not None:
        raise SweepError("--prune with --folds: a trial's folds run one after another, so nothing compares them at "
                         "each validation; sweep with --folds without --prune")
    devices = settings.devices
    if not (devices in ("auto", 1) or isinstance(devices, list) and len(devices) == 1) or settings.num_nodes != 1 \
            or len(settings.gpus or []) > 1:
        raise SweepError("a sweep's trials run one at a time on one device in each worker: give more --workers")
    study = args.study or f"sweep-{model}-{dataset}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", study):
        raise SweepError(f"--study {study!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
    series_dir = Path(settings.save_dir).resolve() / study
    trials = args.trials or 20
    if args.sampler == "grid":
        if not space:
            raise SweepError("--sampler grid needs at least one searched flag (a,b,c or LOW:HIGH of integers)")
        trials = min(trials if args.trials else math.prod(len(p.grid()) for p in space),
                     math.prod(len(p.grid()) for p in space))
    storage = args.storage or f"sqlite:///{urllib.parse.quote(str(series_dir / 'study.db'))}"  # a ? or % in a path
    direction = "maximize" if settings.monitor_mode == "max" else "minimize"
    plan = Plan(study, storage, trials, args.sampler, args.sampler_seed, args.prune, args.prune_warmup, direction,
                [*fixed, "--name", study], space, str(series_dir), args.workers)
    if args.storage:
        open_storage(args.storage, forks=True)  # unreachable: refused before any folder is made
    series_dir.mkdir(parents=True, exist_ok=True)
    _check_same_study(create(plan), plan, model, dataset)
    return plan


def open_storage(url: str, forks: bool = False) -> Any:
    """An Optuna storage with heartbeats and retries: an RDB URL (sqlite:///..., postgresql+psycopg2://...) or a
    journal file path. One line (a SweepError) when it cannot be reached. For sweep.py's own process (forks: it forks
    the workers) no database connection stays open between calls: a worker must not inherit one."""
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if "://" not in url:
            from optuna.storages.journal import JournalFileBackend

            if not Path(url).parent.is_dir():
                raise SweepError(f"--storage {url}: the folder {Path(url).parent} does not exist")
            return optuna.storages.JournalStorage(JournalFileBackend(url))
        from sqlalchemy.pool import NullPool

        connect = {"timeout": 60} if url.startswith("sqlite") else {"connect_timeout": 10} if "postgres" in url else {}
        engine = {"connect_args": connect, **({"poolclass": NullPool} if forks else {})}
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT,
                                          grace_period=GRACE,
                                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(None))
    except SweepError:
        raise
    except Exception as problem:  # noqa: BLE001 - sqlalchemy's, psycopg2's, sqlite's own errors: one line says why
        first = str(problem).strip().splitlines()[0] if str(problem).strip() else type(problem).__name__
        raise SweepError(f"--storage {url}: cannot open it: {first}") from None


def create(plan: Plan) -> Any:
    """The study, created once (workers that start together, such as SLURM array tasks, take turns: one creates the
    tables and the study, the others find them)."""
    import optuna

    for attempt in range(10):
        try:
            with _turn(plan.storage):
                return optuna.create_study(study_name=plan.study, storage=open_storage(plan.storage, forks=True),
                                           load_if_exists=True,
                                           direction="maximize" if plan.direction == "maximize" else "minimize")
        except SweepError:
            raise
        except Exception:  # another process created the same tables at that moment: look again
            if attempt == 9:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _turn(url: str) -> Any:
    """A lock beside a SQLite study while it is created (a server database needs none)."""
    import contextlib
    import fcntl

    @contextlib.contextmanager
    def locked() -> Any:
        database = Path(urllib.parse.unquote(url.removeprefix("sqlite:///")))
        database.parent.mkdir(parents=True, exist_ok=True)
        with database.with_name(f"{database.name}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
    return locked() if url.startswith("sqlite:///") else contextlib.nullcontext()


def _check_same_study(study: Any, plan: Plan, model: str, dataset: str) -> None:
    """A continued study keeps its model, dataset, fixed flags and choices: its trials' losses must compare."""
    from optuna.distributions import check_distribution_compatibility

    setup = {"model": model, "dataset": dataset, "fixed": plan.fixed}
    earlier = study.user_attrs.get("setup")
    if earlier is None:
        study.set_user_attr("setup", setup)
    elif earlier != setup:
        changed = [key for key in setup if setup[key] != earlier.get(key)]
        raise SweepError(f"study {plan.study} was started with other {', '.join(changed)} ({earlier}); continue it "
                         "with the same, or choose another --study")
    mine = {p.name: p for p in plan.space}
    for trial in study.get_trials(deepcopy=False):
        for name in set(trial.distributions) & set(mine):
            try:
                check_distribution_compatibility(trial.distributions[name], mine[name].distribution())
            except ValueError:
                raise SweepError(f"{mine[name].flag}: study {plan.study} searched it as {trial.distributions[name]}; "
                                 "a study keeps its choices: give the same ones, or another --study") from None


def load(plan: Plan, worker: int | None = None) -> Any:
    """The study, for worker number `worker` (its sampler's seed differs from the others'), or for sweep.py's own
    process (None: it only reads and retries, and forks the workers)."""
    import optuna

    seed = None if plan.sampler_seed is None else plan.sampler_seed + (worker or 0)  # workers must not sample alike
    sampler = (optuna.samplers.GridSampler({p.name: p.grid() for p in plan.space}, seed=seed)
               if plan.sampler == "grid" else optuna.samplers.RandomSampler(seed=seed)
               if plan.sampler == "random" else optuna.samplers.TPESampler(seed=seed))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=plan.prune_warmup)
    return optuna.load_study(study_name=plan.study, storage=open_storage(plan.storage, forks=worker is None),
                             sampler=sampler, pruner=pruner)


# ---- a worker: trials one after another, in this process --------------------------------------------------------


@dataclass
class _Current:
    """The trial this process is running, for trainer.py's side of it."""

    trial: Any
    plan: Plan
    params: dict[str, Any]
    run_dir: Path | None = None
    value: float | None = None
    pruned: bool = False


_current: _Current | None = None


class TrialFailed(Exception):
    """A trial's run failed (a refused flag, a crash): the trial fails, the worker goes on."""


class Interrupted(KeyboardInterrupt):
    """The trial's run was stopped by a signal (args: its exit code), its state saved: the trial is retried,
    continuing the run. (A KeyboardInterrupt: Optuna fails the trial, then lets it through.)"""


def work(plan: Plan, main: Callable[[list[str]], Path | None], worker: int = 0) -> int:
    """Run trials until the study has --trials complete, pruned or running ones (Optuna's count, across workers: a
    worker stops rather than train one too many; a running trial that fails or stops is not counted: one goes on);
    the exit code says how it ended (0; 130/143/129 interrupted; 3 when trials failed one after another)."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    study = load(plan, worker)
    stopped_by = signals_as_ctrl_c()  # between trials; inside one, Lightning's own handlers save the run first
    streak: list[int] = []

    def count_failures(study: Any, trial: Any) -> None:
        streak[:] = [*streak, trial.number] if trial.state == TrialState.FAIL else []
        if len(streak) >= FAILURE_STREAK:
            study.stop()

    try:
        enough = MaxTrialsCallback(plan.trials, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
        study.optimize(lambda trial: _objective(plan, main, study, trial), catch=(TrialFailed,), gc_after_trial=True,
                       callbacks=[enough, count_failures])
    except KeyboardInterrupt as stop:  # Ctrl-C between trials, or a trial's run Interrupted
        retry_trials_of(study, os.getpid())
        return int(stop.args[0]) if isinstance(stop, Interrupted) else stopped_by[-1] if stopped_by else 130
    return EXIT_STREAK if len(streak) >= FAILURE_STREAK else 0  # sweep.py says which error began the streak


def _objective(plan: Plan, main: Callable[[list[str]], Path | None], study: Any, trial: Any) -> float:
    global _current
    from optuna import TrialPruned
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    params = {param.name: param.suggest(trial) for param in plan.space}
    argv = [*plan.fixed, *values_of(params, plan.space)]
    original = RetryHeartbeatStaleTrialCallback.retried_trial_number(study.get_trials(deepcopy=False)[trial.number])
    run_dir = study.trials[original].user_attrs.get("run_dir") if original is not None else None
    if run_dir and (Path(run_dir) / runs.RUN_FILE).is_file() and runs.checkpoints_of(Path(run_dir)):
        argv = ["--resume", run_dir, *argv]  # the same parameters: continue its run from its last checkpoint
        trial.set_user_attr("run_dir", run_dir)
        print(f"trial {trial.number} continues trial {original}: {run_dir}", flush=True)
    trial.set_user_attr("argv", argv)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    _current = _Current(trial, plan, params)
    os.environ[runs.RUN_ID_ENV] = f"trial-{trial.number}"  # the run folder is named after the trial
    try:
        main(argv)
    except SystemExit as stop:
        if stop.code in INTERRUPTED:
            raise Interrupted(int(stop.code)) from None
        trial.set_user_attr("failed_because", cli.LAST_ERROR or f"trainer.py exited with {stop.code}")
        raise TrialFailed(trial.user_attrs["failed_because"]) from None
    except Exception as problem:  # a crash of the run (out of memory, a bug in a model): the trial fails
        trial.set_user_attr("failed_because", f"{type(problem).__name__}: {problem}"[:300])
        raise TrialFailed(str(problem)) from problem
    finally:
        os.environ.pop(runs.RUN_ID_ENV, None)
        result, _current = _current, None
    if result.pruned:
        raise TrialPruned()
    if result.value is None or not math.isfinite(result.value):
        trial.set_user_attr("failed_because", "no validation value to optimize (the run never validated)")
        raise TrialFailed(trial.user_attrs["failed_because"])
    return result.value


def retry_trials_of(study: Any, pid: int) -> None:
    """The trials a stopped or dead worker (pid, this host) was running: failed and retried with the same parameters
    by Optuna's RetryHeartbeatStaleTrialCallback at once, not after the heartbeat's grace (a journal has none)."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    worker, retry = f"{socket.gethostname()}:{pid}", RetryHeartbeatStaleTrialCallback(None)
    trials = study.get_trials(deepcopy=False)
    retried = {number for trial in trials for number in retry.retry_history(trial)}
    for trial in trials:
        stopped = trial.state == TrialState.RUNNING or (
            trial.state == TrialState.FAIL and "failed_because" not in trial.user_attrs)
        if trial.user_attrs.get("worker") == worker and stopped and trial.number not in retried:
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            retry(study, study.get_trials(deepcopy=False)[trial.number])
            print(f"trial {trial.number}: stopped with its worker (pid {pid}); a new trial continues it", flush=True)


def retry_orphans(plan: Plan) -> None:
    """Trials left running by workers of this host that are gone (the whole sweep killed): retried at once."""
    from optuna.trial import TrialState

    study = load(plan)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
            retry_trials_of(study, int(pid))


def signals_as_ctrl_c() -> list[int]:
    """SIGTERM (a scheduler) and SIGHUP (a closed terminal) take the Ctrl-C path; the list gets the exit code to use."""
    codes: list[int] = []

    def interrupt(signum: int, frame: Any) -> None:
        codes.append(128 + signum)
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    return codes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not stat.is_file() or stat.read_text().split()[2] != "Z"  # a zombie is gone


# ---- trainer.py's side of a trial ---------------------------------------------------------------------------------


def in_trial() -> bool:
    return _current is not None


def trial_fields(state: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """A run's HPARAMS row; a trial's is led by #trial, #state and its searched values (#lr ..., not again as lr):
    TensorBoard ticks the first five columns (varying ones first, then by name) and "#" sorts before letters."""
    if _current is None:
        return hparams
    lead = {"#trial": _current.trial.number, "#state": state, **{f"#{name}": v for name, v in _current.params.items()}}
    return {**lead, **{name: value for name, value in hparams.items() if name not in _current.params}}


def trial_record() -> dict[str, Any] | None:
    """What run.json says of the trial a run is (None outside a sweep)."""
    return None if _current is None else {"study": _current.plan.study, "number": _current.trial.number}


def started(run_dir: Path) -> None:
    """The trial's run folder, recorded as soon as it exists: a retry of the trial continues it."""
    if _current is not None:
        _current.run_dir = run_dir
        _current.trial.set_user_attr("run_dir", str(run_dir))


def trial_callbacks(monitor: Any) -> list[Callback]:
    """For a trial of a sweep run with --prune: its pruning callback (monitor: util/training.py's MetricChoice)."""
    return [_Pruning(monitor)] if _current is not None and _current.plan.prune else []


class _Pruning(Callback):
    """Reports the monitored metric to the trial after each validation and stops the run when Optuna's pruner says
    so (after --prune_warmup validations); the run stays an ordinary run with a tested best checkpoint."""

    def __init__(self, monitor: Any) -> None:
        self.monitor, self.validations = monitor, 0

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor.metric or "loss/val")
        if trainer.sanity_checking or value is None or not trainer.is_global_zero or _current is None:
            return
        self.validations += 1
        _current.trial.report(float(value) if math.isfinite(float(value)) else math.inf, step=self.validations)
        if _current.trial.should_prune():
            _current.pruned = trainer.should_stop = True
            self.monitor.say(trainer, f"Pruned by the sweep after validation {self.validations}: {float(value):.4g} "
                             "is worse than the median of earlier trials there")


def was_pruned(trainer: pl.Trainer) -> bool:
    return _current is not None and _current.pruned


def report(value: float, pruned: bool) -> None:
    """The run's result for its trial (nothing outside a sweep)."""
    if _current is not None:
        _current.value, _current.pruned = value, pruned or _current.pruned


# ---- k-fold cross-validation (trainer.py --folds K) ------------------------------------------------------------


def select_fold(setup: cli.Setup, datamodule: Any) -> None:
    """With --fold I (of --folds K): train and validation become fold I's; the test split stays held out."""
    args = setup.args
    if args.fold is None and args.folds is None:
        return
    if args.folds is None:
        setup.error("--fold I needs --folds K")
    if args.folds < 2:
        setup.error(f"--folds {args.folds}: cross-validation needs at least 2 folds")
    if args.fold is None or not 0 <= args.fold < args.folds:
        setup.error(f"--fold {args.fold}: folds are numbered 0 to {args.folds - 1}")
    train, val = getattr(datamodule, "train_set", None), getattr(datamodule, "val_set", None)
    if train is None or val is None:
        setup.error(f"--folds: dataset {setup.data_name!r} has no train_set and val_set to pool after setup()")
    pooled: ConcatDataset[Any] = ConcatDataset([train, val])
    if len(pooled) < args.folds:
        setup.error(f"--folds {args.folds}: only {len(pooled)} examples to share between the folds")
    parts = list(torch.randperm(len(pooled), generator=torch.Generator().manual_seed(args.seed)).chunk(args.folds))
    held = parts.pop(args.fold)
    datamodule.train_set, datamodule.val_set = Subset(pooled, torch.cat(parts).tolist()), Subset(pooled, held.tolist())


def cross_validate(setup: cli.Setup, train_one: Callable[[list[str]], Path | None]) -> Path:
    """Train every fold (train_one is trainer.main), then report the mean and std of their best monitored value."""
    args = setup.args
    if args.folds < 2:
        setup.error(f"--folds {args.folds}: cross-validation needs at least 2 folds")
    if setup.trainer_kwargs().get("fast_dev_run") or setup.trainer_kwargs().get("barebones"):
        setup.error("--folds with --fast_dev_run or --barebones: those runs keep nothing to compare")
    named = cli.chosen(setup.argv).get("name") is not None
    series = args.name if named else runs.series_name(setup.model_name, setup.data_name, args.folds)
    run_dirs = []
    for fold in range(args.folds):
        print(f"\nFold {fold + 1} of {args.folds}", flush=True)
        run_dir = train_one([*setup.argv, *([] if named else ["--name", series]), "--fold", str(fold)])
        assert run_dir is not None
        run_dirs.append(run_dir)
    bests = [float(runs.read_info(run_dir).get("best_val_loss", "nan")) for run_dir in run_dirs]
    mean = sum(bests) / len(bests)  # nan when the folds never validated (--limit_val_batches 0): nothing to compare
    std = math.sqrt(sum((best - mean) ** 2 for best in bests) / (len(bests) - 1))
    from torch.utils.tensorboard import SummaryWriter

    for run_dir in run_dirs:  # beside each fold in HPARAMS and run.json
        runs.update_info(run_dir, folds_val_loss={"mean": mean, "std": std})
        with SummaryWriter(str(run_dir), filename_suffix=".folds") as writer:
            writer.add_scalar(FOLDS_MEAN, mean, 0)
            writer.add_scalar(FOLDS_STD, std, 0)
    metric = (runs.read_info(run_dirs[0]).get("monitor") or {}).get("metric") or "loss/val"
    shown = ", ".join(f"{best:.4g}" for best in bests)
    print(f"\n{args.folds} folds: best {metric} {mean:.4g} ± {std:.4g} (mean ± std; folds: {shown})")
    print(f"TensorBoard:   tensorboard --logdir {run_dirs[0].parent}")
    report(mean, False)  # a sweep trial given --folds is scored by the mean
    return run_dirs[0].parent
