"""Which validation metric picks the best checkpoint and stops early: whatever the model logs.

The project's models log "loss/val"; a LightningModule written elsewhere usually logs "val_loss", or something
else entirely. The metric is chosen at the first validation (normally Lightning's sanity check, before any
training step) from what the model really logged: `--monitor NAME` when given, else "loss/val", else
"val_loss". Without any, the run keeps its last checkpoint. One line says which it is, and run.json records
it so a resumed run watches the same metric.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities.model_helpers import is_overridden

from model.base import ConfigurationError
from util import runs

PREFERRED = ("loss/val", "val_loss")  # the project's name first, then the one Lightning's docs use


class MetricChoice(Callback):
    """Points the best-checkpoint and early-stopping callbacks at the metric the model logs.

    Runs before them: Lightning calls checkpoint callbacks last, and this one comes first in trainer.py's list.
    """

    def __init__(self, requested: str | None, mode: str, run_dir: Path | None) -> None:
        self.requested = requested
        self.mode = mode
        self.run_dir = run_dir
        self.metric: str | None = None  # the metric watched, once decided
        self.decided = False
        self.best: float | None = None  # best value of the metric so far (hp/val_loss of foreign models)

    # ---- deciding ----------------------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.decided:
            return
        recorded = self._recorded()
        if recorded is not None:  # a resumed run: the checkpoint's callbacks watched this metric
            self.mode = recorded.get("mode", self.mode)
            self._apply(trainer, recorded.get("metric"), logged=None, resumed=True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logged = validation_metrics(trainer)
        # A sanity check that logged nothing decides nothing: the model may log only in its epoch-end hooks.
        if not self.decided and (logged or not trainer.sanity_checking):
            self._decide(trainer, logged)
        if not trainer.sanity_checking and self.metric in logged:
            value = float(logged[self.metric])
            if math.isfinite(value) and (self.best is None or (value < self.best if self.mode == "min" else value > self.best)):
                self.best = value

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # No validation ran: without a validation_step or with --limit_val_batches 0 none will.
        if not self.decided and not validates(trainer, pl_module):
            self._apply(trainer, None, logged={})

    def _decide(self, trainer: pl.Trainer, logged: dict[str, Any]) -> None:
        if self.requested:
            if self.requested not in logged:
                raise ConfigurationError(f"--monitor {self.requested}: the model logs no such validation metric; "
                                         f"it logs {', '.join(sorted(logged)) or 'none'}")
            self._apply(trainer, self.requested, logged)
            return
        self._apply(trainer, next((name for name in PREFERRED if name in logged), None), logged)

    def _apply(self, trainer: pl.Trainer, metric: str | None, logged: dict[str, Any] | None,
               resumed: bool = False) -> None:
        self.metric, self.decided = metric, True
        stoppers = [cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping)]
        for checkpoint in best_checkpoint_callbacks(trainer):
            watch_with(checkpoint, metric, self.mode)
        for stopper in stoppers:
            stop_with(stopper, metric, self.mode)
        if not trainer.is_global_zero:
            return
        if resumed:
            print(f"Monitoring {metric} ({self.mode}), as when the run started" if metric else
                  "No validation metric, as when the run started: keeping the last checkpoint", flush=True)
            return
        if metric is not None:
            uses = "picks the best checkpoint" + (" and stops early" if stoppers else "")
            print(f"Monitoring {metric} ({self.mode}): it {uses}", flush=True)
        else:
            found = f"it logs {', '.join(sorted(logged))}" if logged else "it logs no validation metric"
            print(f"No loss/val or val_loss to monitor ({found}): keeping the last checkpoint as the best"
                  f"{', no early stopping' if stoppers else ''}; choose one with --monitor NAME [--monitor_mode max]",
                  flush=True)
        if self.run_dir is not None and (self.run_dir / runs.RUN_FILE).is_file():
            runs.update_run_info(self.run_dir, monitor={"metric": metric, "mode": self.mode})

    def _recorded(self) -> dict[str, Any] | None:
        if self.run_dir is None or not (self.run_dir / runs.RUN_FILE).is_file():
            return None
        recorded = runs.read_run_info(self.run_dir).get("monitor")
        return recorded if isinstance(recorded, dict) else None


def validation_metrics(trainer: pl.Trainer) -> dict[str, Any]:
    """What the model logged in validation (the scalars among trainer.callback_metrics, train ones excepted)."""
    return {name: value for name, value in trainer.callback_metrics.items()
            if not (torch.is_tensor(value) and value.numel() != 1) and "train" not in name
            and not name.startswith(("hp/", "lr-"))}  # lr-*: LearningRateMonitor's, not the model's


def validates(trainer: pl.Trainer, pl_module: pl.LightningModule) -> bool:
    batches = trainer.num_val_batches
    total = sum(batches) if isinstance(batches, list) else batches
    return is_overridden("validation_step", pl_module) and total != 0


def best_checkpoint_callbacks(trainer: pl.Trainer) -> list[ModelCheckpoint]:
    """The checkpoint callbacks that keep the best (those watching a metric); last.ckpt's watches none."""
    return [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor is not None]


def watch_with(checkpoint: ModelCheckpoint, metric: str | None, mode: str) -> None:
    if metric is None:  # save_top_k=1 without a monitor keeps the latest: "best" is the last
        checkpoint.monitor = None
        checkpoint.filename = "latest-epoch={epoch}-step={step}"
        return
    if metric != checkpoint.monitor:
        # "/" would make a sub-directory of the file name; the value is the metric's own.
        checkpoint.filename = f"best-epoch={{epoch}}-step={{step}}-{metric.replace('/', '_')}={{{metric}:.4f}}"
    checkpoint.monitor = metric
    checkpoint.mode = mode
    checkpoint.kth_value = torch.tensor(math.inf if mode == "min" else -math.inf)


def stop_with(stopper: EarlyStopping, metric: str | None, mode: str) -> None:
    if metric is None:  # nothing to watch: never stops, never complains
        stopper.strict = False
        stopper.verbose = False
        stopper.monitor = "no validation metric"
        return
    stopper.monitor = metric
    stopper.mode = mode
    stopper.best_score = torch.tensor(math.inf if mode == "min" else -math.inf)
