"""Where runs live and what they are called.

A run is the directory ``<save_dir>/<name>/<version>``: TensorBoard's event files, ``checkpoints/``
(best + ``last.ckpt``) and ``run.json`` (what was trained, so it can be resumed or used for predictions).

- name: the experiment series, by default ``<model>-<dataset>``; ``tensorboard --logdir <save_dir>/<name>``
  compares the runs of one series in the HPARAMS tab.
- version: ``<YYYYmmdd-HHMMSS>`` plus the hyperparameters that differ from their defaults, e.g.
  ``20261124-101502_lr=0.01_hidden=64``. Created with an atomic mkdir, so runs started in the same second
  get distinct directories (``20261124-101502-2_...``).
- multi-process runs: every rank must write to the SAME version. The process that decides (the one the
  user started) exports the version's first part as ``TRAINER_RUN_ID``; processes re-executed by Lightning's
  DDP launcher inherit it. Under torchrun the launch script exports it, or it is derived from
  ``TORCHELASTIC_RUN_ID``. Only global rank 0 creates directories and files.
- SLURM jobs: the version starts with ``slurm-<job id>`` (``slurm-<array job id>_<task id>`` in an array), which
  a requeued job keeps: started again with the same command, it finds its folder and continues from there.

Runs live in the project's own ``logs/`` folder, wherever trainer.py is started from.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_SAVE_DIR = PROJECT_ROOT / "logs"  # trainer.py, predict.py and the notebook all look here
RUN_ID_ENV = "TRAINER_RUN_ID"
RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
MAX_VERSION_LENGTH = 150


class RunError(ValueError):
    """A run cannot be found or used; the message says what to do."""


# ----------------------------------------------------------------------------------------------------
# Naming
# ----------------------------------------------------------------------------------------------------


def timestamp(now: float | None = None) -> str:
    """Sortable local time to the second: 20261124-101502."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now))


def format_value(value: Any) -> str:
    """A short, path-safe rendering of a hyperparameter value for a directory name."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple)):
        text = "x".join(format_value(item) for item in value)
    elif isinstance(value, (str, Path)) and ("/" in str(value) or os.sep in str(value)):
        text = Path(value).stem  # a file path: its name says enough
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")[:40] or "-"


def version_suffix(changed: dict[str, Any]) -> str:
    """``lr=0.01_hidden=64`` for the hyperparameters that differ from their defaults."""
    return "_".join(f"{name}={format_value(value)}" for name, value in changed.items())


def version_name(run_id: str, suffix: str) -> str:
    return f"{run_id}_{suffix}"[:MAX_VERSION_LENGTH] if suffix else run_id


# ----------------------------------------------------------------------------------------------------
# Ranks and the shared run id
# ----------------------------------------------------------------------------------------------------


def launched_rank_is_zero() -> bool:
    """Whether this process is global rank 0 as far as the launcher's environment tells.

    Lightning's re-executed DDP ranks get LOCAL_RANK/NODE_RANK, torchrun sets RANK, SLURM sets
    SLURM_PROCID; a plain ``python trainer.py`` has none of them and is rank 0.
    """
    return all(int(os.environ.get(var, "0") or 0) == 0 for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"))


def slurm_run_id() -> str | None:
    """``slurm-<job id>`` (``slurm-<array job id>_<task id>`` in a job array) inside a SLURM job, else None.
    A requeued job keeps its id, so a requeued run keeps its folder."""
    array_job, array_task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and array_task:
        return f"slurm-{array_job}_{array_task}"
    job = os.environ.get("SLURM_JOB_ID")
    return f"slurm-{job}" if job else None


def shared_run_id() -> str | None:
    """The run id every rank of a multi-process launch agrees on, or None when this process decides."""
    if os.environ.get(RUN_ID_ENV):
        return os.environ[RUN_ID_ENV]
    if slurm := slurm_run_id():
        return slurm
    torchrun_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and torchrun_id not in ("", "none"):
        return f"torchrun-{torchrun_id}"
    return None


def create_run_dir(series_dir: Path, suffix: str, now: float | None = None,
                   argv: list[str] | None = None) -> tuple[Path, str]:
    """Create this run's version directory; return it and the run id to hand to other ranks.

    With a shared run id (another rank or the launcher decided), the directory is shared: only rank 0
    creates it. In a SLURM job whose id already names a run of another command (several runs in one job),
    the next counter is taken (``slurm-42-2``); every rank comes to the same choice. Otherwise the timestamp
    decides and ``mkdir`` without ``exist_ok`` makes the choice atomic: when two runs pick the same name in
    the same second, the loser takes the next counter.
    """
    run_id = shared_run_id()
    if run_id is not None:
        if run_id == slurm_run_id() and argv is not None:
            run_id = next(candidate for candidate in _numbered(run_id)
                          if _free_for(series_dir / version_name(candidate, suffix), argv))
        run_dir = series_dir / version_name(run_id, suffix)
        if launched_rank_is_zero():
            run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir, run_id
    series_dir.mkdir(parents=True, exist_ok=True)
    stamp = timestamp(now)
    for attempt in range(1, 10_000):
        run_id = stamp if attempt == 1 else f"{stamp}-{attempt}"
        run_dir = series_dir / version_name(run_id, suffix)
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return run_dir, run_id
    raise RunError(f"no free run directory in {series_dir} for {stamp}")


def _numbered(run_id: str) -> Iterator[str]:
    yield run_id
    yield from (f"{run_id}-{number}" for number in itertools.count(2))


def _free_for(run_dir: Path, argv: list[str]) -> bool:
    """Whether a run of this command line may use run_dir: nothing there yet, or a run of the same command."""
    try:
        return read_run_info(run_dir).get("argv") == list(argv)
    except (RunError, ValueError):
        return True


# ----------------------------------------------------------------------------------------------------
# run.json
# ----------------------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """The value as run.json stores it (tuples as lists, paths as text)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    """Write run.json atomically (a reader never sees half a file)."""
    data = {key: jsonable(value) for key, value in info.items()}
    for key in ("model_hparams", "data_hparams"):
        if key in data:
            data[key] = {name: jsonable(value) for name, value in data[key].items()}
    partial = run_dir / f".{RUN_FILE}.{os.getpid()}"
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, run_dir / RUN_FILE)


def read_run_info(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no {RUN_FILE})")
    return json.loads(path.read_text())


def update_run_info(run_dir: Path, **changes: Any) -> None:
    write_run_info(run_dir, {**read_run_info(run_dir), **changes})


# ----------------------------------------------------------------------------------------------------
# Finding runs (resume, predict)
# ----------------------------------------------------------------------------------------------------


def runs_of(series_dir: Path) -> list[Path]:
    """The runs of a series, oldest first (by the start time recorded in run.json)."""
    if not series_dir.is_dir():
        return []
    found = []
    for run_dir in series_dir.iterdir():
        if (run_dir / RUN_FILE).is_file():
            try:
                started = float(read_run_info(run_dir).get("started", 0))
            except (ValueError, TypeError):
                started = 0.0
            found.append((started, run_dir.name, run_dir))
    return [run_dir for _, _, run_dir in sorted(found)]


def newest_run(series_dir: Path) -> Path | None:
    """The newest run of a series that has a last checkpoint: one that crashed before its first
    checkpoint has nothing to resume or predict from."""
    with_checkpoints = [run for run in runs_of(series_dir) if newest_checkpoint(run) is not None]
    return with_checkpoints[-1] if with_checkpoints else None


def newest_run_anywhere(save_dir: Path, model: str | None = None, dataset: str | None = None) -> Path | None:
    """The newest run with a checkpoint over every series of save_dir (optionally of one model and/or dataset)."""
    pattern = f"{model or '*'}-{dataset or '*'}"
    newest = [run for series in Path(save_dir).glob(pattern) if (run := newest_run(series)) is not None]
    return max(newest, key=lambda path: float(read_run_info(path).get("started", 0) or 0), default=None)


def requeued_run(series_dir: Path, argv: list[str]) -> Path | None:
    """Inside a SLURM job: the run this job started before it was requeued (same job id, same command line,
    a checkpoint to continue from), else None."""
    run_id = slurm_run_id()
    if run_id is None or not series_dir.is_dir():
        return None
    own_name = re.compile(rf"{re.escape(run_id)}(-\d+)?(_.*)?")  # slurm-12 must not match slurm-123
    for run_dir in sorted(series_dir.glob(f"{run_id}*")):
        if not own_name.fullmatch(run_dir.name):
            continue
        try:
            same_command = read_run_info(run_dir).get("argv") == list(argv)
        except (RunError, ValueError):
            continue
        if same_command and newest_checkpoint(run_dir) is not None:
            return run_dir
    return None


def find_run(spec: str, series_dir: Path) -> Path:
    """``spec`` is a run directory, or "last" for the newest run of ``series_dir``."""
    if spec == "last":
        newest = newest_run(series_dir)
        if newest is None:
            raise RunError(f"no run with checkpoints in {series_dir}; train one first or pass a run directory")
        return newest
    run_dir = Path(spec).resolve()  # printed in commands to copy: valid from any folder
    if run_dir.is_file() and run_dir.suffix == ".ckpt":
        run_dir = run_dir.parent.parent  # <run>/checkpoints/<file>.ckpt
    read_run_info(run_dir)  # raises when it is not a run
    return run_dir


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The newest state of a run: checkpoints/last.ckpt, or the hpc_ckpt_N.ckpt that Lightning's SLURM requeue
    (SIGUSR1) saved when that one is newer; None before the first checkpoint."""
    candidates = [run_dir / CHECKPOINTS / LAST_CHECKPOINT,
                  *(path for path in run_dir.glob("hpc_ckpt_*.ckpt") if re.fullmatch(r"hpc_ckpt_\d+\.ckpt", path.name))]
    existing = [path for path in candidates if path.is_file()]
    return max(existing, key=lambda path: path.stat().st_mtime_ns, default=None)


def last_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a resumed run continues from (newest_checkpoint), or a RunError saying why there is none."""
    path = newest_checkpoint(run_dir)
    if path is None:
        raise RunError(f"{run_dir} has no {CHECKPOINTS}/{LAST_CHECKPOINT} (it stopped before its first checkpoint); "
                       "start a new run instead")
    return path


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint run.json names as best, else last.ckpt."""
    recorded = read_run_info(run_dir).get("best_checkpoint")
    if recorded and (run_dir / recorded).is_file():
        return run_dir / recorded
    return last_checkpoint(run_dir)
