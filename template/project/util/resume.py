"""What lets a long run continue exactly where it stopped: after kill -9, Ctrl-C, SIGTERM or a SLURM requeue.

- ``last.ckpt`` is rewritten at every validation (every epoch by default), whether or not the loss improved;
  Lightning's own ``save_last`` only writes it when a best checkpoint is written too.
- Ctrl-C and SIGTERM save the state at the batch they stopped at into ``last.ckpt``; the run prints the command
  that resumes it and exits 130 (SIGINT) or 143 (SIGTERM), as shells and schedulers expect.
- A resumed run first cuts its TensorBoard event files back to the checkpoint's step: what the killed process
  logged after its last checkpoint is trained again, and would otherwise appear twice in every curve.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from util.runs import CHECKPOINTS, LAST_CHECKPOINT, load_checkpoint

EVENT_FILE = "events.out.tfevents.*"
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number


def last_checkpoint_callback(run_dir: Path) -> ModelCheckpoint:
    """A callback that keeps ``<run>/checkpoints/last.ckpt`` at the newest validation (or epoch end)."""
    return ModelCheckpoint(dirpath=run_dir.resolve() / CHECKPOINTS, filename=Path(LAST_CHECKPOINT).stem, monitor=None, save_top_k=1,
                           enable_version_counter=False)


def keep_earlier_csv(run_dir: Path, resumed: bool) -> None:
    """CSVLogger deletes an existing metrics.csv: keep the earlier part of a resumed run beside the new one."""
    csv_file = run_dir / "csv" / "metrics.csv"
    if resumed and csv_file.is_file():
        csv_file.rename(csv_file.with_name(f"metrics-{time.strftime('%Y%m%d-%H%M%S')}.csv"))
        # ... and silence its warning that "previous log files will be deleted": they were moved.
        warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")


def logged_step(checkpoint: Path) -> int:
    """The logging step at which the resumed run continues (Lightning logs at optimizer steps taken)."""
    state = load_checkpoint(checkpoint)  # weights_only: a file in a run folder never runs code
    try:
        return int(state["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"])
    except (KeyError, TypeError):
        return int(state.get("global_step", 0))


# ----------------------------------------------------------------------------------------------------
# TensorBoard event files
# ----------------------------------------------------------------------------------------------------


def trim_events(run_dir: Path, first_new_step: int) -> int:
    """Drop every event at ``first_new_step`` or later from the run's event files; return how many went.

    The resumed run logs those steps again. Each file is rewritten to a temporary file and renamed over the
    original, so an interruption here leaves either the old or the trimmed file, never half of one. A file
    left with nothing but its header is removed.
    """
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    dropped = 0
    for path in sorted(run_dir.glob(EVENT_FILE)):
        kept, removed_here = [], 0
        for record in RawEventFileLoader(str(path)).Load():  # stops quietly at a record cut short by a kill
            event = event_pb2.Event.FromString(record)
            # step 0 also holds the file header and the hyperparameters of the run's first start
            if event.step >= first_new_step and not (event.step == 0 and first_new_step > 0):
                removed_here += 1
            else:
                kept.append(record)
        if not removed_here:
            continue
        dropped += removed_here
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
    return dropped


# ----------------------------------------------------------------------------------------------------
# Interruptions and early stopping, said in one line
# ----------------------------------------------------------------------------------------------------


class Interruption(Callback):
    """On Ctrl-C or SIGTERM: save the state where training stopped, remember which signal it was."""

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir
        self.signal: str | None = None  # "SIGINT" or "SIGTERM" once one arrived
        self.saved: Path | None = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self.signal = "SIGINT"
        elif isinstance(exception, SIGTERMException):
            self.signal = "SIGTERM"
        else:
            return
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the checkpoint short
        fitting = trainer.state.fn == "fit" and not trainer.sanity_checking
        if self.run_dir is not None and fitting and trainer.global_step > 0:
            path = self.run_dir.resolve() / CHECKPOINTS / LAST_CHECKPOINT
            trainer.save_checkpoint(path)  # written to a temporary file first, then renamed
            self.saved = path

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signal or "", 1)


def early_stop_line(trainer: pl.Trainer) -> str | None:
    """One line saying that (and why) early stopping ended the run, or None when it did not."""
    stopper = next((cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping)), None)
    if stopper is None or stopper.stopped_epoch == 0:
        return None
    best: Any = stopper.best_score
    best_text = f"{float(best):.4g}" if torch.is_tensor(best) and torch.isfinite(best) else str(best)
    return (f"Early stopping at epoch {stopper.stopped_epoch}: {stopper.monitor} has not improved on its best "
            f"{best_text} for {stopper.patience} validations (--early_stopping_patience {stopper.patience}).")
