"""The training system every model shares: `step` turns a batch into a loss; the rest is logging and
optimizers (the HPARAMS tab is the trainer's, util/hpmetrics.py). A model file only adds its layers, `forward`
and, when it learns differently, its own `step`."""

import math
from typing import Any, ClassVar, Literal, cast, get_args

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from data.base import DataInfo, Task

Optimizer = Literal["adam", "adamw", "sgd"]
Scheduler = Literal["none", "cosine", "plateau"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SCHEDULERS: tuple[str, ...] = get_args(Scheduler)
MONITOR = "loss/val"  # what the plateau scheduler watches (the trainer's checkpoints watch it too)

Batch = tuple[Tensor, Tensor]


class ConfigurationError(ValueError):
    """A setting the user can fix, found only once training starts; the trainer reports it in one line."""


class BaseModel(pl.LightningModule):
    """Subclasses: `def __init__(self, input_shape, num_outputs, task, <own hparams with defaults>, **kwargs)`.

    `input_shape`, `num_outputs` and `task` come from the dataset's DataInfo, never from flags; every other
    argument is a hyperparameter: the trainer makes it a flag (help text from an "Args:" section like
    this one) and it shows in TensorBoard's HPARAMS tab.

    Args:
        lr: Learning rate.
        weight_decay: L2 penalty on the weights (decoupled from the gradient for adamw).
        optimizer: Optimizer (sgd uses momentum 0.9).
        scheduler: Learning-rate schedule: constant, cosine annealing over the run, or halve on a loss/val plateau.
    """

    tasks: ClassVar[tuple[str, ...]] = ("regression", "classification")

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_outputs: int,
        task: str,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: Optimizer = "adam",
        scheduler: Scheduler = "none",
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {optimizer!r}")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, not {scheduler!r}")
        reason = self.incompatibility(DataInfo(cast(Task, task), tuple(input_shape), num_outputs))
        if reason:
            raise ValueError(f"{type(self).__name__} cannot learn this dataset: {reason}")
        # Records this class's and the subclass's arguments: checkpoints rebuild the model from them.
        self.save_hyperparameters()
        self._sums: dict[str, dict[str, Tensor]] = {}
        self._counts: dict[str, int] = {}
        self._restored: dict[str, tuple[dict[str, Tensor], int]] = {}  # from a checkpoint taken mid-epoch

    @classmethod
    def incompatibility(cls, info: DataInfo) -> str | None:
        """Why this model cannot train on a dataset described by `info`, or None when it can."""
        if info.task not in cls.tasks:
            return f"it learns {' or '.join(cls.tasks)}, and the dataset is a {info.task} task"
        return None

    # ---- how a batch becomes a loss ------------------------------------------------------------------
    def step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss plus extra metrics (logged as "<metric>/train", "<metric>/val", "<metric>/test").

        Mean squared error for regression; cross-entropy and accuracy for classification.
        Override it when a model learns differently (deep_normal.py, autoencoder blueprint).
        """
        x, y = batch
        output = self(x)
        if self.hparams["task"] == "classification":
            accuracy = (output.argmax(dim=1) == y).float().mean()
            return F.cross_entropy(output, y), {"acc": accuracy}
        # reshape: a (batch,) target against (batch, 1) outputs would silently broadcast to (batch, batch)
        loss = F.mse_loss(output, y.reshape(output.shape))
        return loss, self.regression_metrics(output, y)

    def regression_metrics(self, predicted: Tensor, y: Tensor) -> dict[str, Tensor]:
        """What RMSE, MAE and R² in the target's own units are computed from at the end of an epoch (names starting
        with "_" are summed, not logged)."""
        y = y.reshape(predicted.shape)
        return {"_se": F.mse_loss(predicted, y), "_ae": (predicted - y).abs().mean(), "_y": y.mean(),
                "_y2": y.pow(2).mean()}

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss, metrics = self.step(batch)
        self._accumulate("train", len(batch[0]), {"loss": loss, **metrics})
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, metrics = self.step(batch)
        self._accumulate("val", len(batch[0]), {"loss": loss, **metrics})

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        loss, metrics = self.step(batch)
        self._accumulate("test", len(batch[0]), {"loss": loss, **metrics})

    def predict_step(self, batch: Batch, batch_idx: int = 0) -> dict[str, Tensor]:
        """Named output columns, each (batch,) or (batch, k): what predict.py writes to CSV."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        output = self(x)
        if self.hparams["task"] == "classification":
            confidence, label = output.softmax(dim=1).max(dim=1)
            return {"class": label, "confidence": confidence}
        return {"prediction": output.squeeze(1)}  # (batch, 1) -> (batch,) for a single target

    # ---- logging: one value per metric per epoch -----------------------------------------------------
    def _accumulate(self, stage: str, batch_size: int, values: dict[str, Tensor]) -> None:
        # Sums stay on the tensor side: no host sync and no self.log call per step (each costs ~1 ms).
        # add(..., alpha=) is one tensor operation where "+ value * batch_size" is two.
        sums = self._sums.setdefault(stage, {})
        for name, value in values.items():
            value, total = value.detach(), sums.get(name)
            sums[name] = value * batch_size if total is None else total.add(value, alpha=batch_size)
        self._counts[stage] = self._counts.get(stage, 0) + batch_size

    def _log_epoch(self, stage: str) -> Tensor | None:
        sums, count = self._sums.pop(stage, {}), self._counts.pop(stage, 0)
        if self.trainer.barebones:  # --barebones true: Lightning forbids self.log
            return None
        restored_sums, restored_count = self._restored.pop(stage, ({}, 0))
        if restored_count:  # the part of this epoch trained before the run was resumed mid-epoch
            sums = {name: total + restored_sums[name].to(total.device) for name, total in sums.items()}
            count += restored_count
        means = {name: total / count for name, total in sums.items()}
        for name, mean in means.items():
            if not name.startswith("_"):
                # "<metric>/<stage>" puts train and val of one metric side by side in TensorBoard.
                self.log(f"{name}/{stage}", mean, sync_dist=True, prog_bar=name == "loss")
        if "_se" in means and stage != "train":  # regression: in the target's units, as people compare them
            std = getattr(getattr(self.trainer, "datamodule", None), "target_std", None)  # a standardized target's
            scale = float(std.flatten()[0]) if torch.is_tensor(std) else 1.0
            variance = means["_y2"] - means["_y"].pow(2)  # of the standardized targets: R² has no unit
            self.log(f"rmse/{stage}", means["_se"].sqrt() * scale, sync_dist=True)
            self.log(f"mae/{stage}", means["_ae"] * scale, sync_dist=True)
            self.log(f"r2/{stage}", 1 - means["_se"] / variance.clamp_min(1e-12), sync_dist=True)
        return means.get("loss")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    # The HPARAMS tab's row and its hp/ metrics (the best loss/val, the tested checkpoint's loss/test) are
    # written by the trainer's util/hpmetrics.py callback, for this and any other LightningModule.
    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A checkpoint taken mid-epoch (Ctrl-C, validation within the epoch) keeps the epoch's sums so far:
        # the resumed run's epoch metrics then cover the whole epoch, not only the batches after the restart.
        checkpoint["epoch_sums"] = {
            stage: ({name: total.cpu() for name, total in sums.items()}, self._counts.get(stage, 0))
            for stage, sums in self._sums.items() if stage == "train"
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._restored = dict(checkpoint.get("epoch_sums", {}))

    # ---- optimization --------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        hp = self.hparams  # read at call time, so Tuner.lr_find can set hparams["lr"]
        optimizer: torch.optim.Optimizer
        if hp["optimizer"] == "sgd":
            optimizer = torch.optim.SGD(self.parameters(), lr=hp["lr"], momentum=0.9, weight_decay=hp["weight_decay"])
        else:
            adam = torch.optim.AdamW if hp["optimizer"] == "adamw" else torch.optim.Adam
            optimizer = adam(self.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
        if hp["scheduler"] == "cosine":
            # Per step over the whole run, so it also fits runs bounded by --max_steps.
            total_steps = self.trainer.estimated_stepping_batches
            if not math.isfinite(total_steps):
                raise ConfigurationError("--scheduler cosine needs a bounded run: set --max_epochs or --max_steps")
            cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, int(total_steps)))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}
        if hp["scheduler"] == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
            # strict=False: in epochs without validation (--check_val_every_n_epoch) warn instead of failing.
            config = {"scheduler": plateau, "monitor": MONITOR, "strict": False}
            return {"optimizer": optimizer, "lr_scheduler": config}
        return optimizer
