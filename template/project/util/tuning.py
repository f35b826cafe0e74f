"""Tuning before training: the largest batch size that fits (--scale_batch_size) and a learning rate (--lr_find).

Both run on a throwaway Trainer built from the run's own Trainer arguments (util/fitting.py).
They change the model and the datamodule in place and return what they chose, for run.json and the run's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.tuner import Tuner

from data.base import BaseDataModule
from model.base import BaseModel


class TuningError(Exception):
    """A tuning request that cannot run as asked; the message says what to do instead."""


@dataclass
class Tuned:
    batch_size: int | None = None  # chosen by --scale_batch_size
    lr: float | None = None  # chosen by --lr_find
    finder: Any = None  # Lightning's lr sweep (its results and plot), with --lr_find


def tune(trainer: pl.Trainer, model: BaseModel, datamodule: BaseDataModule, *, scale_batch_size: bool,
         lr_find: bool) -> Tuned:
    """Batch size first (the lr that works best depends on it), then learning rate."""
    if trainer.world_size > 1:
        raise TuningError("--lr_find/--scale_batch_size run on one device: tune first, then train on several "
                          "with the values found (--lr, --batch_size)")
    tuner = Tuner(trainer)
    tuned = Tuned()
    if scale_batch_size:
        tuned.batch_size = largest_batch_size(tuner, model, datamodule)
    if lr_find:
        tuned.finder = tuner.lr_find(model, datamodule=datamodule, update_attr=False)
        tuned.lr = suggested_lr(tuned.finder) if tuned.finder is not None else None
        if tuned.lr is not None:
            model.hparams.lr = tuned.lr  # configure_optimizers reads it; HPARAMS and run.json show it
            print(f"lr_find: learning rate set to {tuned.lr:.4g}")
    return tuned


def largest_batch_size(tuner: Tuner, model: BaseModel, datamodule: BaseDataModule) -> int:
    """Doubles the batch size from the configured one until memory runs out or a batch holds the whole
    train split; sets it on the datamodule and returns it."""
    if not hasattr(datamodule, "batch_size"):
        raise TuningError(f"--scale_batch_size: {type(datamodule).__name__} has no batch_size attribute for the "
                          "tuner to change")
    # Doubling from the configured size: smaller sizes are rarely what anyone wants.
    tuner.scale_batch_size(model, datamodule=datamodule, mode="power", init_val=datamodule.batch_size)
    # Lightning stops at the first size that is not smaller than the train split (2048 for 1,200 rows):
    # a batch cannot hold more than the whole split, so that is the size to record.
    train_size = len(datamodule.train_dataloader().dataset)
    if datamodule.batch_size >= train_size:
        datamodule.batch_size = train_size
        print(f"scale_batch_size: batch size set to {train_size}, the whole train split (one step per epoch)")
    else:
        print(f"scale_batch_size: batch size set to {datamodule.batch_size}")
    return datamodule.batch_size


def suggested_lr(finder: Any, skip_begin: int = 10, skip_end: int = 1) -> float | None:
    """The lr where the loss falls fastest per decade of lr.

    Lightning 2.6's own suggestion differentiates against the raw lr although the sweep is log-spaced
    (Lightning issue #21141), which favours the tiniest lrs; measured per decade, the steepest descent
    is where the plot shows it.
    """
    lrs = torch.tensor(finder.results["lr"][skip_begin:-skip_end], dtype=torch.float64)
    losses = torch.tensor(finder.results["loss"][skip_begin:-skip_end], dtype=torch.float64)
    finite = torch.isfinite(losses)
    lrs, losses = lrs[finite], losses[finite]
    if len(losses) < 3:
        return None
    slopes = torch.gradient(losses, spacing=[lrs.log10()])[0]
    return float(lrs[slopes.argmin()])


def save_lr_plot(finder: Any, lr: float, path: Path) -> None:
    """The sweep's loss curve with the chosen lr marked."""
    import matplotlib  # only here: training without --lr_find never needs it

    matplotlib.use("Agg")  # no display needed
    figure = finder.plot(suggest=False)
    axes = figure.axes[0]
    axes.axvline(lr, color="red", linestyle="--", label=f"chosen lr = {lr:.3g}")
    axes.legend()
    figure.savefig(path)
