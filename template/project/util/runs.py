"""Where runs live and what they hold, and finding them again (--resume, predict.py, the notebook).

A run is the directory ``<save_dir>/<name>/<version>`` (util/naming.py says how it is named): TensorBoard's
event files, ``checkpoints/`` (best + ``last.ckpt``) and ``run.json`` (what was trained, so it can be
resumed or used for predictions). Runs live in the project's own ``logs/`` folder, wherever trainer.py is
started from.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAVE_DIR = PROJECT_ROOT / "logs"  # trainer.py, predict.py and the notebook all look here
RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


class RunError(ValueError):
    """A run cannot be found or used; the message says what to do."""


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
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{path} cannot be read ({error}); restore it, or start a new run") from None
    if not isinstance(info, dict):
        raise RunError(f"{path} holds no run record (a JSON object); restore it, or start a new run")
    return info


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
    """The checkpoint run.json names as best, else last.ckpt. run.json is only data: a path it names that leads out
    of the run folder (absolute, `..`, a symlink) is not followed."""
    recorded = read_run_info(run_dir).get("best_checkpoint")
    if isinstance(recorded, str) and recorded:
        candidate = (Path(run_dir) / recorded).resolve()
        if not candidate.is_relative_to(Path(run_dir).resolve()):
            raise RunError(f"{Path(run_dir) / RUN_FILE} names best_checkpoint {recorded!r}, outside the run folder; "
                           "fix or remove that entry (a checkpoint is only ever read from its own run)")
        if candidate.is_file():
            return candidate
    return last_checkpoint(run_dir)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents, read safely: torch.load(weights_only=True) rebuilds tensors and plain data only, so a
    crafted file cannot run code (unpickling a full pickle can run anything). Unreadable files are one RunError."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # holds objects a weights-only load refuses
        detail = str(error).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
        raise RunError(f"{path} holds more than weights and plain values ({detail}); it was not loaded, since "
                       "unpickling it could run code: use checkpoints written by this project's trainer") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunError(f"{path} is not a readable checkpoint ({reason}); it may be cut short (a kill or a full "
                       "disk while it was written)") from None
    if not isinstance(state, dict):
        raise RunError(f"{path} is not a Lightning checkpoint (no dictionary of states)")
    return state
