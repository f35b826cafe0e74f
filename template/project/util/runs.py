"""A run: the folder ``<save_dir>/<name>/<version>`` that holds what one training writes, how it is named and how it
continues. Runs live in the project's own logs/ folder, wherever trainer.py starts.

- name: the series, ``<model>-<dataset>`` unless --name says otherwise (`series_name`, also for sweeps and folds);
- version: ``<YYYYmmdd-HHMMSS>[-n]_<settings that differ from their defaults>``, claimed with an atomic mkdir; in a
  SLURM job ``slurm-<job id>`` (``slurm-<array job>_<task>``), under torchrun ``torchrun-<id>``;
- contents: TensorBoard's event files, ``checkpoints/`` (the best, ``last.ckpt``), ``run.json`` (what was trained),
  ``config.yaml`` (every flag, to train it again), ``provenance.json`` (which code, packages and command);
- continuing (--resume, a requeued SLURM job, a retried sweep trial): from the newest readable checkpoint.

What Lightning does not do, and this module does: one folder for all ranks of a launch (the process the user started
hands its id to the ranks Lightning re-executes: TRAINER_RUN_ID), kept across requeues; checkpoints written beside
their final name and renamed into place (Lightning stages them in $TMPDIR and copies them over, which a kill or a full
disk cuts short when logs/ is on another file system); event files cut back to the checkpoint on resume; a lock per
run folder. Files in a run folder are data: checkpoints load with weights_only=True, run.json's paths stay inside.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import pickle
import platform
import re
import shlex
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAVE_DIR = PROJECT_ROOT / "logs"  # trainer.py, predict.py, sweep.py and the notebook all look here
RUN_FILE, CONFIG_FILE, CHECKPOINTS, LAST = "run.json", "config.yaml", "checkpoints", "last.ckpt"
RUN_ID_ENV = "TRAINER_RUN_ID"
MAX_VERSION_LENGTH = 150
REQUIRED = {"model": str, "dataset": str, "model_hparams": dict, "data_hparams": dict, "seed": int, "argv": list}


class RunError(ValueError):
    """A run cannot be found or used; the message says what to do."""


def series_name(model: str, dataset: str, folds: int | None = None) -> str:
    """The default experiment series: ``<model>-<dataset>`` (``-<K>folds`` for cross-validation)."""
    return f"{model}-{dataset}" + (f"-{folds}folds" if folds else "")


# ---- run.json ---------------------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """The value as run.json stores it (tuples as lists, paths and objects as text, nan as "nan")."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "as_dict"):  # jsonargparse's Namespace: {class_path, init_args}
        return jsonable(value.as_dict())
    return str(value)


def write_info(run_dir: Path, info: dict[str, Any]) -> None:
    """Write run.json atomically (a reader never sees half a file)."""
    partial = run_dir / f".{RUN_FILE}.{os.getpid()}"
    partial.write_text(json.dumps(jsonable(info), indent=2) + "\n")
    os.replace(partial, run_dir / RUN_FILE)


def read_info(run_dir: Path) -> dict[str, Any]:
    """run.json, checked: a broken or incomplete file is a RunError naming it."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no {RUN_FILE})")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise RunError(f"{path} cannot be read ({problem}); restore it, or start a new run") from None
    wrong = [key for key, kind in REQUIRED.items() if not isinstance(info, dict) or not isinstance(info.get(key), kind)]
    if wrong:
        raise RunError(f"{path} is incomplete (no valid {', '.join(wrong)}); restore it, or start a new run")
    return info


def update_info(run_dir: Path, **changes: Any) -> None:
    write_info(run_dir, {**read_info(run_dir), **changes})


# ---- finding runs -------------------------------------------------------------------------------------------------


def runs_of(series_dir: Path) -> list[Path]:
    """The runs of a series, oldest first (by the start time run.json records); unreadable ones left out."""
    found = []
    for run_dir in sorted(series_dir.iterdir()) if series_dir.is_dir() else []:
        with contextlib.suppress(RunError, OSError):
            started = read_info(run_dir).get("started", 0)
            found.append((float(started) if isinstance(started, (int, float)) else 0.0, run_dir.name, run_dir))
    return [run_dir for _, _, run_dir in sorted(found)]


def newest_run(series_dir: Path) -> Path | None:
    """The newest run of a series that has a checkpoint (one killed before its first has nothing to continue)."""
    return next((run for run in reversed(runs_of(series_dir)) if checkpoints_of(run)), None)


def find_run(spec: str, series_dir: Path) -> Path:
    """``spec`` is a run folder (or a checkpoint inside one), or "last": the newest run of ``series_dir``."""
    if spec == "last":
        newest = newest_run(series_dir)
        if newest is None:
            raise RunError(f"no run with checkpoints in {series_dir}; train one first or pass a run directory")
        return newest
    run_dir = Path(spec).resolve()  # printed in commands to copy: valid from any folder
    if run_dir.suffix == ".ckpt":
        run_dir = run_dir.parent.parent  # <run>/checkpoints/<file>.ckpt
    read_info(run_dir)  # raises when it is not a run
    return run_dir


# ---- checkpoints --------------------------------------------------------------------------------------------------


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents, read safely: weights_only=True rebuilds tensors and plain values only, so a crafted
    file cannot run code (unpickling a full pickle can run anything). An unreadable file is a RunError."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as problem:
        detail = str(problem).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
        raise RunError(f"{path} holds more than weights and plain values ({detail}); it was not loaded, since "
                       "unpickling it could run code: use checkpoints written by this project's trainer") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as problem:
        reason = " ".join(str(problem).split())[:160] or type(problem).__name__
        raise RunError(f"{path} is not a readable checkpoint ({reason}); it may be cut short (a kill or a full disk "
                       "while it was written)") from None
    if not isinstance(state, dict):
        raise RunError(f"{path} is not a Lightning checkpoint (no dictionary of states)")
    return state


def checkpoints_of(run_dir: Path) -> list[Path]:
    """The run's states to continue from, newest first: last.ckpt (every validation), Lightning's hpc_ckpt_N.ckpt
    (saved on SLURM's SIGUSR1), then the best ones."""
    found = [*run_dir.glob(f"{CHECKPOINTS}/*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")]
    return sorted((path for path in found if path.is_file() and not path.is_symlink()),
                  key=lambda path: (path.stat().st_mtime_ns, path.name == LAST), reverse=True)


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint run.json names as the best, else the newest. A path leading out of the run is refused."""
    recorded = read_info(run_dir).get("best_checkpoint")
    if isinstance(recorded, str) and recorded:
        candidate = (Path(run_dir) / recorded).resolve()
        if not candidate.is_relative_to(Path(run_dir).resolve()):
            raise RunError(f"{Path(run_dir) / RUN_FILE} names best_checkpoint {recorded!r}, outside the run folder; "
                           "fix or remove that entry (a checkpoint is only ever read from its own run)")
        if candidate.is_file():
            return candidate
    newest = checkpoints_of(run_dir)
    if not newest:
        raise RunError(f"{run_dir} has no checkpoint (it stopped before its first); train it further or use another")
    return newest[0]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint beside its final name, then renames it into place: the previous file stays whole until the
    new one is complete, whatever kills the process or fills the disk meanwhile."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        import torch

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        try:
            with partial.open("wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, target)
        except RuntimeError as problem:  # torch's zip writer hides a full disk's OSError behind an error of its own
            raise problem.__context__ if isinstance(problem.__context__, OSError) else problem
        finally:
            partial.unlink(missing_ok=True)


# ---- continuing a run ---------------------------------------------------------------------------------------------


@dataclass
class Resume:
    """The run a new process continues: its folder, what it recorded and the checkpoint to continue from."""

    dir: Path
    info: dict[str, Any]
    checkpoint: Path
    state: dict[str, Any] = field(repr=False)
    how: str = "resumed"  # or "requeued"

    def base_argv(self) -> list[str]:
        """The run's own settings as flags: its config.yaml (runs made before 0.3.0: the flags run.json records)."""
        config = self.dir / CONFIG_FILE
        return ["--config", str(config)] if config.is_file() else list(self.info["argv"])


def resume(spec: str, series_dir: Path, how: str = "resumed") -> Resume:
    """The run ``spec`` names, with its newest readable checkpoint (one line says so when a newer one is unreadable)."""
    run_dir = find_run(spec, series_dir)
    info = read_info(run_dir)
    problems = []
    for path in checkpoints_of(run_dir):
        try:
            state = load_checkpoint(path)
        except RunError as problem:
            problems.append(str(problem))
            continue
        if problems:
            print(f"Continuing from {path.relative_to(run_dir)}: {problems[0]}", flush=True)
        return Resume(run_dir, info, path, state, how)
    raise RunError(problems[0] if problems else f"{run_dir} has no checkpoint (it stopped before its first); start "
                   "a new run instead")


def requeued_run(series_dir: Path, argv: list[str]) -> Resume | None:
    """Inside a SLURM job that SLURM requeued (SLURM_RESTART_COUNT > 0): the run this job started, with the same
    command line and a checkpoint to continue from. A second command in one allocation is a new run."""
    run_id = slurm_run_id()
    if run_id is None or int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) == 0 or not series_dir.is_dir():
        return None
    own = re.compile(rf"{re.escape(run_id)}(-\d+)?(_.*)?")  # slurm-12 must not match slurm-123
    for run_dir in sorted(series_dir.glob(f"{run_id}*")):
        with contextlib.suppress(RunError):
            if own.fullmatch(run_dir.name) and read_info(run_dir)["argv"] == argv and checkpoints_of(run_dir):
                return resume(str(run_dir), series_dir, how="requeued")
    return None


def logged_step(state: dict[str, Any]) -> int:
    """The logging step at which a resumed run continues (Lightning logs at optimizer steps taken)."""
    try:
        return int(state["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"])
    except (KeyError, TypeError, ValueError):
        return int(state.get("global_step", 0) or 0)


def trim_events(run_dir: Path, first_new_step: int) -> None:
    """Drop the events at ``first_new_step`` or later (the resumed run logs them again) and the HPARAMS session from the
    run's event files, each rewritten beside itself and renamed over it (one left with only its header goes)."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        records = list(RawEventFileLoader(str(path)).Load())  # stops quietly at a record a kill cut short
        events = [event_pb2.Event.FromString(record) for record in records]
        # step 0 also holds the file header; the HPARAMS session goes whatever its step (HParamsTab writes it anew)
        kept = [record for record, event in zip(records, events)
                if (event.step < first_new_step or (event.step == 0 and first_new_step > 0))
                and not any(value.tag.startswith("_hparams_/") for value in event.summary.value)]
        if len(kept) == len(records):
            continue
        if all(event_pb2.Event.FromString(record).HasField("file_version") for record in kept):
            path.unlink()
            continue
        partial = path.with_name(f".{path.name}.trim")
        with partial.open("wb") as handle:
            writer = RecordWriter(handle)
            for record in kept:
                writer.write(record)
            writer.flush()
        os.replace(partial, path)


# ---- naming -------------------------------------------------------------------------------------------------------

# Long flag names, shortened in folder names (the HPARAMS row keeps the full names).
SHORT_NAMES = {
    "accumulate_grad_batches": "accum", "gradient_clip_val": "clip", "gradient_clip_algorithm": "clip_algo",
    "early_stopping_patience": "patience", "limit_train_batches": "train_batches", "limit_val_batches": "val_batches",
    "limit_test_batches": "test_batches", "overfit_batches": "overfit", "check_val_every_n_epoch": "val_every",
    "val_check_interval": "val_interval", "scale_batch_size": "scale_bs", "num_sanity_val_steps": "sanity_steps",
    "log_every_n_steps": "log_every", "reload_dataloaders_every_n_epochs": "reload_every",
    "use_distributed_sampler": "dist_sampler", "inference_mode": "inference"}


def format_value(value: Any) -> str:
    """A short, path-safe rendering of a setting for a folder name."""
    if isinstance(value, bool) or value is None:
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple)):
        text = "x".join(format_value(item) for item in value)
    elif isinstance(value, dict) and "class_path" in value:  # an object chosen by flags: its class says enough
        text = str(value["class_path"]).rsplit(".", 1)[-1]
    elif isinstance(value, (str, Path)) and ("/" in str(value) or os.sep in str(value)) and (
            Path(value).suffix or Path(value).exists()):
        text = Path(value).stem  # a file path: its name says enough (a metric such as val/loss stays whole)
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")[:40] or "-"


def version_suffix(changed: dict[str, Any]) -> str:
    """``lr=0.01_hidden=64_max_epochs=5`` for the settings that differ from their defaults (metric names such as
    val/loss stay whole in the HPARAMS row; here their "/" becomes "-")."""
    short = {name: SHORT_NAMES.get(name) or (name if len(name) <= 14 else "_".join(w[:5] for w in name.split("_")))
             for name in changed}
    if len(set(short.values())) < len(short):  # two names shortened alike: keep the full names
        short = {name: name for name in changed}
    return "_".join(f"{short[name]}={format_value(jsonable(value))}" for name, value in changed.items())


def version_name(run_id: str, suffix: str) -> str:
    """``<run id>_<suffix>``; one too long for a folder is cut and ends with a digest of the whole suffix."""
    name = f"{run_id}_{suffix}" if suffix else run_id
    if len(name) <= MAX_VERSION_LENGTH:
        return name
    return f"{name[:MAX_VERSION_LENGTH - 10].rstrip('_=')}_{hashlib.sha1(suffix.encode()).hexdigest()[:8]}"


def timestamp() -> str:
    """Sortable local time to the second: 20261124-101502."""
    return time.strftime("%Y%m%d-%H%M%S")


def launched_rank_is_zero() -> bool:
    """Whether the launcher's environment makes this process global rank 0 (a plain ``python trainer.py`` is)."""
    return all(int(os.environ.get(var, "0") or 0) == 0 for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"))


def slurm_run_id() -> str | None:
    """``slurm-<job id>`` (``slurm-<array job id>_<task id>`` in an array) inside a SLURM job, else None."""
    array_job, array_task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and array_task:
        return f"slurm-{array_job}_{array_task}"
    return f"slurm-{os.environ['SLURM_JOB_ID']}" if os.environ.get("SLURM_JOB_ID") else None


def shared_run_id() -> str | None:
    """The run id every rank of a multi-process launch agrees on, or None when this process decides."""
    if os.environ.get(RUN_ID_ENV):
        return os.environ[RUN_ID_ENV]
    if slurm := slurm_run_id():
        return slurm
    torchrun = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and torchrun not in ("", "none"):
        return f"torchrun-{torchrun}"
    return None


@contextlib.contextmanager
def run_id_for_this_run() -> Iterator[None]:
    """Hand the run id this run chooses to its re-executed DDP ranks only: a next run started in the same process
    (a test, a notebook, a sweep worker) chooses its own."""
    handed_down = os.environ.get(RUN_ID_ENV)
    try:
        yield
    finally:
        if handed_down is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = handed_down


def create_run_dir(series_dir: Path, suffix: str, argv: list[str] | None = None) -> tuple[Path, str]:
    """Claim this run's folder (rank 0 of a shared id; slurm-42-2 for a job's second command; else an atomic mkdir of
    the timestamp, the loser taking the next counter); return it and the run id to hand to the other ranks."""
    run_id = shared_run_id()
    if run_id is not None:
        if run_id == slurm_run_id() and argv is not None:
            run_id = next(candidate for candidate in itertools.chain([run_id], (f"{run_id}-{n}" for n in
                          itertools.count(2))) if _free_for(series_dir / version_name(candidate, suffix), argv))
        run_dir = series_dir / version_name(run_id, suffix)
        if launched_rank_is_zero():
            run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir, run_id
    series_dir.mkdir(parents=True, exist_ok=True)
    stamp = timestamp()
    for attempt in range(1, 10_000):
        run_id = stamp if attempt == 1 else f"{stamp}-{attempt}"
        with contextlib.suppress(FileExistsError):
            (series_dir / version_name(run_id, suffix)).mkdir()
            return series_dir / version_name(run_id, suffix), run_id
    raise RunError(f"no free run directory in {series_dir} for {stamp}")


def _free_for(run_dir: Path, argv: list[str]) -> bool:
    """Whether this process may use run_dir: nothing there yet, or (another rank) the run rank 0 of the same launch
    (the same command in the same SLURM job step) just started; a requeued job continues through `requeued_run`."""
    try:
        info = read_info(run_dir)
    except RunError:
        return not any(run_dir.glob(f"{CHECKPOINTS}/*.ckpt"))
    return not launched_rank_is_zero() and info["argv"] == argv and info.get("slurm_step") == os.environ.get("SLURM_STEP_ID")


# ---- the run of this process -----------------------------------------------------------------------------------


@dataclass
class Run:
    """This process's run: its folder (None for fast_dev_run and barebones runs, which keep nothing), its series and
    version, whether it is new, resumed or requeued, and the checkpoint fit continues from."""

    dir: Path | None
    name: str
    version: str
    state: str = "new"
    checkpoint: Path | None = None
    created: bool = False  # this process made the folder: a run refused before training removes it
    _lock: IO[str] | None = field(default=None, repr=False)

    def hold(self) -> None:
        """One process per run folder (another --resume of it is refused in one line); clears what killed saves left."""
        if self.dir is None or not launched_rank_is_zero():
            return
        import fcntl

        handle = (self.dir / ".lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RunError(f"{self.dir} is being trained by another process; wait for it to end (or stop it), then "
                           "run this again") from None
        self._lock = handle
        for partial in self.dir.glob(f"{CHECKPOINTS}/.*.partial-*"):
            partial.unlink(missing_ok=True)

    def remove_if_new(self) -> None:
        """A run refused before training leaves nothing behind (a continued run's folder is never removed)."""
        if self.dir is None or not self.created or not launched_rank_is_zero():
            return
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)
        for folder in (self.dir.parent, self.dir.parent.parent):  # the series and logs/, when this run made them
            with contextlib.suppress(OSError):
                folder.rmdir()  # only ever removes an empty folder


# ---- provenance.json: the code (git commit, uncommitted changes), packages, host and command that produced a run ---
# Written into every new run folder, with the uncommitted changes as uncommitted.patch (`git apply uncommitted.patch`
# on that commit gives back the code as it ran); one git call on a clean tree, a few on a dirty one.

PROVENANCE_FILE = "provenance.json"
PATCH_FILE = "uncommitted.patch"
ALWAYS_RECORDED = ("torch", "lightning", "numpy")
MAX_UNTRACKED_BYTES = 100_000  # larger new files (data, images) are named with their size, not copied


def record_provenance(run_dir: Path, argv: list[str], root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Write provenance.json (and uncommitted.patch for a dirty tree) into run_dir; returns what was written."""
    info: dict[str, Any] = {
        "git": git_state(root, run_dir / PATCH_FILE), "python": platform.python_version(),
        "packages": package_versions(root), "host": socket.gethostname(), "platform": platform.platform(),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]), "cwd": str(Path.cwd()),
        "argv": argv}  # the flags trainer.py parsed (the same as the command's unless main() was called directly)
    (run_dir / PROVENANCE_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return info


def code_line(run_dir: Path) -> str:
    """One line for predict.py and the notebook: which code produced the run (from its provenance.json)."""
    try:
        git = json.loads((Path(run_dir) / PROVENANCE_FILE).read_text(encoding="utf-8"))["git"]
        commit, dirty = str(git.get("commit") or ""), bool(git.get("dirty"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"code: not recorded ({Path(run_dir) / PROVENANCE_FILE} is missing or unreadable)"
    if not commit:
        return f"code: {git.get('note', 'no git commit recorded')}"
    return f"code: commit {commit[:12]}" + (f" plus uncommitted changes ({Path(run_dir) / PATCH_FILE})" if dirty else "")


def git_state(root: Path, patch_path: Path) -> dict[str, Any]:
    """The commit and whether the tree differs from it; the differences go to patch_path."""
    status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")  # this project's
    if status is None:
        return {"commit": None, "note": f"{root} is not a git repository (or git is missing): the code of this run "
                "is not recorded; git init and commit to have every run say which code produced it"}
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    if not head:
        return {"commit": None, "note": f"{root} is a git repository without a commit yet: the code of this run is "
                "not recorded"}
    entries = [entry for entry in status.split("\0") if entry]
    state: dict[str, Any] = {"commit": head.strip(), "dirty": bool(entries), "changed": [e[3:] for e in entries]}
    if entries:
        # Tracked changes against the commit, then git's own patch of each small new file (diff --no-index exits 1 on
        # a difference), with the project's own paths: `git apply` in the project folder, also inside a monorepo.
        untracked = [name for name in (_git(root, "ls-files", "--others", "--exclude-standard", "-z") or "").split(
            "\0") if name]
        small = [name for name in untracked if (root / name).is_file() and (root / name).stat().st_size
                 <= MAX_UNTRACKED_BYTES]
        patch = (_git(root, "diff", "HEAD", "--binary", "--relative") or "") + "".join(
            _git(root, "diff", "--no-index", "--binary", "--", "/dev/null", name, ok=(1,)) or "" for name in small)
        patch_path.write_text(patch, errors="surrogateescape")
        state["patch"] = patch_path.name
        if skipped := [name for name in untracked if name not in small]:
            state["untracked_not_in_patch"] = skipped
    return state


def package_versions(root: Path) -> dict[str, str | None]:
    """Installed versions of torch, lightning, numpy and every dependency listed in the project's pyproject.toml."""
    names = list(ALWAYS_RECORDED)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        text = re.sub(r"#.*", "", pyproject.read_text())  # comments may hold quotes ("trainer.py's flags")
        block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.DOTALL | re.MULTILINE)  # to the closing line
        if block:
            names += re.findall(r"[\"']\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)", block.group(1))
    versions: dict[str, str | None] = {}
    for name in dict.fromkeys(names):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], check=False, capture_output=True, text=True,
                              errors="surrogateescape", timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode in ok else None
