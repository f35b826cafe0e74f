"""What a run is called, and which process decides it.

A run is the directory ``<save_dir>/<name>/<version>`` (util/runs.py says what it holds).

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
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from util.runs import RunError, newest_checkpoint, read_run_info

RUN_ID_ENV = "TRAINER_RUN_ID"
MAX_VERSION_LENGTH = 150


# ----------------------------------------------------------------------------------------------------
# Naming
# ----------------------------------------------------------------------------------------------------


def timestamp(now: float | None = None) -> str:
    """Sortable local time to the second: 20261124-101502."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now))


def format_value(value: Any) -> str:
    """A short, path-safe rendering of a hyperparameter value for a directory name."""
    if isinstance(value, bool) or value is None:
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


# Long flag names, shortened in folder names (the HPARAMS row keeps the full names).
SHORT_NAMES = {
    "accumulate_grad_batches": "accum", "gradient_clip_val": "clip", "gradient_clip_algorithm": "clip_algo",
    "early_stopping_patience": "patience", "limit_train_batches": "train_batches",
    "limit_val_batches": "val_batches", "limit_test_batches": "test_batches", "overfit_batches": "overfit",
    "check_val_every_n_epoch": "val_every", "val_check_interval": "val_interval", "scale_batch_size": "scale_bs",
    "num_sanity_val_steps": "sanity_steps", "log_every_n_steps": "log_every", "reload_dataloaders_every_n_epochs":
    "reload_every", "use_distributed_sampler": "dist_sampler", "inference_mode": "inference",
}


def short_name(name: str) -> str:
    """A readable short form of a long flag name: a known abbreviation, else words cut to 5 letters."""
    if name in SHORT_NAMES:
        return SHORT_NAMES[name]
    if len(name) <= 14:
        return name
    return "_".join(word[:5] for word in name.split("_"))


def version_suffix(changed: dict[str, Any]) -> str:
    """``lr=0.01_hidden=64_max_epochs=5`` for the settings that differ from their defaults."""
    names = {name: short_name(name) for name in changed}
    if len(set(names.values())) < len(names):  # two names shortened alike: keep the full names
        names = {name: name for name in changed}
    return "_".join(f"{names[name]}={format_value(value)}" for name, value in changed.items())


def version_name(run_id: str, suffix: str) -> str:
    """``<run id>_<suffix>``; a suffix too long for a folder name is cut and ends with a digest of the whole,
    so two runs whose settings differ only past the cut still get different names."""
    name = f"{run_id}_{suffix}" if suffix else run_id
    if len(name) <= MAX_VERSION_LENGTH:
        return name
    digest = hashlib.sha1(suffix.encode()).hexdigest()[:8]
    return f"{name[:MAX_VERSION_LENGTH - 10].rstrip('_=')}_{digest}"


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


@contextlib.contextmanager
def run_id_for_this_run() -> Iterator[None]:
    """Hand the run id chosen by this run to its re-executed DDP ranks only: a next run started in the same
    process (a test, a notebook, sweep workers) chooses its own."""
    handed_down = os.environ.get(RUN_ID_ENV)
    try:
        yield
    finally:
        if handed_down is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = handed_down
