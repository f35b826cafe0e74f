"""TensorBoard's HPARAMS tab: one row per run, with every setting that tells the run apart and the metrics that
compare runs.

- The row's hyperparameters: the model's and the dataset's, plus the run's own settings that differ from their
  defaults (Trainer and run flags, the seed): two runs that differ only by ``--max_epochs`` get two rows that
  say so (util/hparams.py ``run_settings``).
- ``hp/val_loss`` is the BEST ``loss/val`` so far, i.e. the score of the checkpoint that trainer.test uses;
  ``hp/val_loss_last`` is the last one; ``hp/test_loss`` is the tested checkpoint's ``loss/test``.
- Columns over several series: the plugin takes its column list from the first ``_hparams_/experiment``
  summary it finds, which Lightning's ``log_hyperparams`` writes into EVERY run: ``tensorboard --logdir logs``
  then showed one run's columns only. Each run here writes its session (hyperparameters) without such a
  summary; the plugin then builds the columns from the union of all runs' hyperparameters and metrics, so
  every run of every series shows with all of its hyperparameters.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.tensorboard.summary import hparams as hparams_summaries

MONITOR = "loss/val"
BEST, LAST, TEST = "hp/val_loss", "hp/val_loss_last", "hp/test_loss"


def tensorboard_value(value: Any) -> Any:
    """What a session can hold: numbers, text and booleans (lists, None, paths as text)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def write_session(logger: TensorBoardLogger, params: dict[str, Any]) -> None:
    """The run's row of the HPARAMS tab: its session start (hyperparameters) and end, no experiment summary."""
    params = {name: tensorboard_value(value) for name, value in params.items()}
    placeholders = {BEST: math.nan, LAST: math.nan, TEST: math.nan}
    _experiment, session_start, session_end = hparams_summaries(params, placeholders)
    writer = logger.experiment._get_file_writer()  # the run's own event file, beside its scalars
    for summary in (session_start, session_end):
        writer.add_summary(summary)
    writer.flush()


class HParamsTab(Callback):
    """Writes the run's HPARAMS row at the start of training and keeps its hp/ metrics current.

    ``run_settings``: the run's settings beside the model's and the dataset's hyperparameters (the seed, the
    Trainer and run flags that differ from their defaults). Any LightningModule that logs ``loss/val`` and
    ``loss/test`` gets the metrics; the best value survives a resume (it is in the checkpoint).
    """

    def __init__(self, run_settings: dict[str, Any]) -> None:
        self.run_settings = dict(run_settings)
        self.best = math.inf

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step > 0:
            return  # a resumed run: its first start wrote the row, in the event file it keeps
        datamodule = getattr(trainer, "datamodule", None)
        params = {**dict(getattr(datamodule, "hparams", {}) or {}), **dict(pl_module.hparams)}
        params.update(self.run_settings)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger) and trainer.is_global_zero:
                write_session(logger, params)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the module's on_validation_epoch_end: loss/val of this validation is in callback_metrics.
        value = trainer.callback_metrics.get(MONITOR)
        if trainer.sanity_checking or value is None:
            return
        value = float(value)
        if math.isfinite(value):
            self.best = min(self.best, value)
        self._log(trainer, {BEST: self.best, LAST: value})

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get("loss/test")
        if value is not None:
            self._log(trainer, {TEST: float(value)})

    @staticmethod
    def _log(trainer: pl.Trainer, metrics: dict[str, float]) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict.get("best", math.inf))
