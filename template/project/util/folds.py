"""K-fold cross-validation: ``python trainer.py --folds K`` trains K ordinary runs, one per fold, in one series.

The train and validation splits of the dataset are pooled and cut into K parts (shuffled by --seed); fold I
validates on part I and trains on the others. The test split stays held out. Each fold is a normal run named by
its fold (``..._folds=5_fold=2``); the series is ``<model>-<dataset>-<K>folds`` unless --name says otherwise.
At the end the mean and standard deviation of the folds' best loss/val are printed, recorded in each fold's
run.json and logged into each fold's events as ``hp/folds_val_loss_mean`` and ``hp/folds_val_loss_std``, so
TensorBoard's HPARAMS tab shows them beside each fold. A sweep trial given --folds is scored by that mean.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, Subset

from util import runs, trial
from util.cli import Setup

MEAN, STD = "hp/folds_val_loss_mean", "hp/folds_val_loss_std"


def check(setup: Setup) -> None:
    """--folds K and --fold I make sense together; a bad value is a one-line error."""
    args = setup.args
    if args.fold is not None and args.folds is None:
        setup.error("--fold I needs --folds K")
    if args.folds is not None and args.folds < 2:
        setup.error(f"--folds {args.folds}: cross-validation needs at least 2 folds")
    if args.fold is not None and not 0 <= args.fold < args.folds:
        setup.error(f"--fold {args.fold}: folds are numbered 0 to {args.folds - 1}")


def select(setup: Setup, datamodule: object) -> None:
    """With --fold I: the datamodule's train and validation sets become fold I's (a no-op without it)."""
    args = setup.args
    if args.fold is None:
        return
    train, val = getattr(datamodule, "train_set", None), getattr(datamodule, "val_set", None)
    if train is None or val is None:
        setup.error(f"--folds: dataset {setup.data_name!r} has no train_set and val_set to pool after setup()")
    pooled = ConcatDataset([train, val])
    if len(pooled) < args.folds:
        setup.error(f"--folds {args.folds}: only {len(pooled)} examples to share between the folds")
    order = torch.randperm(len(pooled), generator=torch.Generator().manual_seed(args.seed))
    parts = list(order.chunk(args.folds))
    held = parts.pop(args.fold)
    datamodule.train_set = Subset(pooled, torch.cat(parts).tolist())
    datamodule.val_set = Subset(pooled, held.tolist())


def cross_validate(setup: Setup, train_one: Callable[[list[str]], Path | None]) -> Path:
    """Train every fold (train_one is trainer.main), then report the mean and std of their best loss/val.
    Returns the series folder that holds the folds."""
    args = setup.args
    argv = list(setup.argv)
    given_name = any(token == "--name" or token.startswith("--name=") for token in argv)
    series = args.name if given_name else f"{setup.model_name}-{setup.data_name}-{args.folds}folds"
    run_dirs = []
    for fold in range(args.folds):
        print(f"\nFold {fold + 1} of {args.folds}", flush=True)
        run_dir = train_one([*argv, *([] if given_name else ["--name", series]), "--fold", str(fold)])
        if run_dir is None:
            setup.error("--folds: a fold wrote no run (fast_dev_run or barebones): nothing to compare")
        run_dirs.append(run_dir)
    bests = [float(runs.read_run_info(run_dir).get("best_val_loss", "nan")) for run_dir in run_dirs]
    mean, std = statistics.fmean(bests), statistics.stdev(bests)
    _log_summary(run_dirs, mean, std)
    shown = ", ".join(f"{value:.4g}" for value in bests)
    print(f"\n{args.folds} folds: best loss/val {mean:.4g} ± {std:.4g} (mean ± std; folds: {shown})")
    print(f"TensorBoard:   tensorboard --logdir {run_dirs[0].parent}")
    trial.report_value(mean, run_dirs[0].parent)  # a sweep trial given --folds is scored by the mean
    return run_dirs[0].parent


def _log_summary(run_dirs: list[Path], mean: float, std: float) -> None:
    """The folds' mean and std into every fold's run.json and events (HPARAMS shows them as metrics)."""
    from torch.utils.tensorboard import SummaryWriter

    for run_dir in run_dirs:
        runs.update_run_info(run_dir, folds_val_loss={"mean": mean, "std": std})
        writer = SummaryWriter(str(run_dir), filename_suffix=".folds")
        writer.add_scalar(MEAN, mean, 0)
        writer.add_scalar(STD, std, 0)
        writer.close()
