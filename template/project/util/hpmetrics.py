"""TensorBoard's HPARAMS tab: one row per run, with every setting that tells the run apart and the metrics that
compare runs.

- The row's hyperparameters: the model's and the dataset's, plus the run's own settings that differ from their
  defaults (Trainer and run flags, the seed): two runs that differ only by ``--max_epochs`` get two rows that
  say so (util/hparams.py ``run_settings``).
- ``hp/val_loss`` is the BEST ``loss/val`` so far (or of the metric util/monitor.py watches), i.e. the score of
  the checkpoint that trainer.test uses; ``hp/val_loss_last`` is the last one; ``hp/test_loss`` is the tested
  checkpoint's ``loss/test`` (or the test counterpart of the watched metric).
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

from util.foreign import own_hparams
from util.monitor import MetricChoice

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
    """Writes the run's HPARAMS row at the start of training and keeps its hp/ metrics current, for any
    LightningModule.

    The row: the model's and the dataset's own hyperparameters (their flags, and what save_hyperparameters()
    recorded: never a base class's unused ones), the seed and the run's settings that differ from their defaults
    (util/hparams.py run_settings). hp/val_loss is the best value so far of the monitored metric (loss/val, or
    what util/monitor.py chose: val_loss, --monitor); the best survives a resume (it is in the checkpoint).
    """

    def __init__(self, model_hparams: dict[str, Any], data_hparams: dict[str, Any],
                 run_settings: dict[str, Any]) -> None:
        self.model_hparams, self.data_hparams = dict(model_hparams), dict(data_hparams)
        self.run_settings = dict(run_settings)
        self.best: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step > 0:
            return  # a resumed run: its first start wrote the row, in the event file it keeps
        datamodule = getattr(trainer, "datamodule", None)
        params = {**own_hparams(datamodule, self.data_hparams), **own_hparams(pl_module, self.model_hparams),
                  **self.run_settings}
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger) and trainer.is_global_zero:
                write_session(logger, params)

    @staticmethod
    def _watched(trainer: pl.Trainer) -> tuple[str, str]:
        """(metric, min|max): what the best checkpoint is chosen by."""
        choice = next((cb for cb in trainer.callbacks if isinstance(cb, MetricChoice)), None)
        if choice is not None and choice.metric:
            return choice.metric, choice.mode
        return MONITOR, "min"

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the module's on_validation_epoch_end: this validation's metrics are in callback_metrics.
        metric, mode = self._watched(trainer)
        value = trainer.callback_metrics.get(metric)
        if trainer.sanity_checking or value is None:
            return
        value = float(value)
        if math.isfinite(value) and (self.best is None or (value < self.best if mode == "min" else value > self.best)):
            self.best = value
        self._log(trainer, {LAST: value} if self.best is None else {BEST: self.best, LAST: value})

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metric, _ = self._watched(trainer)
        logged = {name: value for name, value in trainer.callback_metrics.items() if "test" in name}
        wanted = metric.replace("val", "test")  # loss/val -> loss/test, val_loss -> test_loss
        name = wanted if wanted in logged else next(iter(sorted(n for n in logged if "loss" in n)), None)
        if name is not None:
            self._log(trainer, {TEST: float(logged[name])})

    @staticmethod
    def _log(trainer: pl.Trainer, metrics: dict[str, float]) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        best = state_dict.get("best")
        self.best = None if best is None or not math.isfinite(float(best)) else float(best)
