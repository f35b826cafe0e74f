"""A run that is a trial of a sweep (sweep.py, util/search.py): the trainer's side of the link.

sweep.py's worker starts ``python trainer.py <flags>`` for each trial and hands the trial over in the
environment variable ``SWEEP_TRIAL`` (JSON: study, storage, trial id and number, whether to prune, and the file
where the run reports back). Without it (an ordinary run) nothing here does anything.

- ``--prune``: after each validation the run reports ``loss/val`` to the Optuna trial; when the pruner says the
  trial is unpromising, training stops there like an early stop. The run stays a normal run (folder,
  checkpoints, test of its best checkpoint, HPARAMS row); run.json says ``"pruned": true``.
- At the end the run writes its best ``loss/val`` (the tested checkpoint's) and its folder for the worker
  (with --folds: the mean of the folds' best, and the folds' series folder).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from util import runs
from util.search import TRIAL_ENV, median_pruner, open_storage

MONITOR = "loss/val"


def handed_over() -> dict[str, Any] | None:
    """The trial this run is part of, or None for an ordinary run."""
    text = os.environ.get(TRIAL_ENV)
    return json.loads(text) if text else None


class TrialReport(Callback):
    """Reports loss/val to the trial after each validation and stops the run when the pruner says so."""

    def __init__(self, link: dict[str, Any]) -> None:
        import optuna

        # open_storage: a journal file path is no URL that optuna.load_study would take as it is
        study = optuna.load_study(study_name=link["study"], storage=open_storage(link["storage"], heartbeat=False),
                                  pruner=median_pruner())
        self.trial = optuna.trial.Trial(study, link["trial_id"])
        self.validations = 0
        self.pruned = False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(MONITOR)
        if trainer.sanity_checking or value is None or not trainer.is_global_zero:
            return
        self.validations += 1
        value = float(value)
        self.trial.report(value if math.isfinite(value) else math.inf, step=self.validations)
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True  # ends fit after this epoch; the best checkpoint is still tested
            print(f"Pruned by the sweep after validation {self.validations}: {MONITOR} {value:.4g} is worse than "
                  "the median of earlier trials there", flush=True)


def trial_callbacks() -> list[Callback]:
    """[TrialReport] when this run is a trial of a sweep run with --prune, else []."""
    link = handed_over()
    return [TrialReport(link)] if link is not None and link.get("prune") else []


def report(trainer: pl.Trainer, run_dir: Path | None, fold: int | None = None) -> None:
    """Record the run's best loss/val (the tested checkpoint's score) in run.json, and when the run is a trial
    of a sweep, tell its worker (a fold of --folds leaves that to util/folds.py, which reports the mean)."""
    if not trainer.is_global_zero:
        return
    link = handed_over()
    reporters = [callback for callback in trainer.callbacks if isinstance(callback, TrialReport)]
    pruned = bool(reporters and reporters[0].pruned)
    score = getattr(trainer.checkpoint_callback, "best_model_score", None)
    best = float(score) if score is not None else math.nan
    if run_dir is not None:
        trial = {"trial": {"study": link["study"], "number": link["number"]}, "pruned": pruned} if link else {}
        runs.update_run_info(run_dir, best_val_loss=best, **trial)
    if fold is None:
        report_value(best, run_dir, pruned)


def report_value(value: float, run_dir: Path | None, pruned: bool = False) -> None:
    """Tell the sweep's worker the trial's score and where its run is (nothing outside a sweep)."""
    link = handed_over()
    if link is None:
        return
    Path(link["result"]).write_text(json.dumps({
        "run_dir": str(run_dir.resolve()) if run_dir is not None else None,
        "value": value if math.isfinite(value) else None, "pruned": pruned,
    }))
