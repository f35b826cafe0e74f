"""What every dataset provides: its facts (DataInfo) and the dataloaders, so any compatible model trains on it."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

Task = Literal["regression", "classification", "reconstruction"]



@dataclass(frozen=True)
class DataInfo:
    """The facts a model is built from: the trainer passes them to the model's __init__."""

    task: Task
    input_shape: tuple[int, ...]  # one example, without the batch dimension
    num_outputs: int  # regression targets, classes, or for reconstruction prod(input_shape)


WIRED = ("input_shape", "num_outputs", "task")  # DataInfo's facts, handed to the model it builds, never from flags


class BaseDataModule(pl.LightningDataModule):
    """Batches are (x, y) tuples: float x; y float targets, int64 class ids, or x itself for reconstruction.

    Subclasses declare `info` (without loading anything) and build `train_set`, `val_set` and `test_set`
    in `setup`; one that rescales its inputs also overrides `transform_inputs`. Their own hyperparameters
    are `__init__` arguments with defaults; the trainer turns them into flags (help text from an "Args:"
    section like this one) and `save_hyperparameters()` below records them (it collects the subclass's
    arguments too).

    Args:
        batch_size: Examples per batch.
        num_workers: Worker processes loading batches (0 loads in the main process).
    """

    def __init__(self, batch_size: int = 64, num_workers: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def batch_size(self) -> int:
        return self.hparams["batch_size"]

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        # Tuner.scale_batch_size sets this attribute: keep the hparams (checkpoints, HPARAMS tab) in step.
        self.hparams["batch_size"] = value

    @property
    def info(self) -> DataInfo:
        raise NotImplementedError(f"{type(self).__name__} must define the `info` property")

    def transform_inputs(self, x: Tensor) -> Tensor:
        """Raw input values (a CSV row given to `predict.py --inputs`, shaped as `info.input_shape`) -> the x
        a batch of this dataset holds.

        Identity here. A dataset that rescales its inputs in `setup` applies the same rescaling here, and
        keeps what it needs (e.g. the training split's mean and std) in `state_dict`: Lightning saves that
        in every checkpoint, so predictions need neither the training data nor a new `setup`.
        """
        return x

    @classmethod
    def smoke_test_hparams(cls, tmp_dir: Path) -> dict[str, Any]:
        """Hyperparameters for a tiny offline instance, used by the project's tests."""
        return {}

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        # Predictions are made on the held-out test split.
        return self._loader(self.test_set)

    def _loader(self, dataset: Dataset | None, shuffle: bool = False) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not built this split")
        workers = self.hparams["num_workers"]
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=workers,
            persistent_workers=workers > 0,  # keep workers alive between epochs instead of re-forking
        )


def random_splits(
    x: Tensor, y: Tensor, val_fraction: float, test_fraction: float, seed: int
) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    """Shuffle rows with a fixed seed (files are often sorted) and cut them into train/val/test."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(len(x) * val_fraction))
    n_test = max(1, round(len(x) * test_fraction))
    val, test, train = order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]
    if len(train) == 0:
        raise ValueError(f"{len(x)} examples are too few to split into train, validation and test")
    return TensorDataset(x[train], y[train]), TensorDataset(x[val], y[val]), TensorDataset(x[test], y[test])


def standardization(train_x: Tensor, dims: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Mean and scale over `dims` of the training examples, kept with keepdim so they broadcast over a batch.

    A value constant in training (a border pixel, a column of one value) gets a scale of 1, as in
    scikit-learn's StandardScaler: dividing by its ~0 spread would turn the first validation example that
    differs into values of ~1e8 and wreck the validation loss.
    """
    mean = train_x.mean(dim=dims, keepdim=True)
    std = train_x.std(dim=dims, keepdim=True, correction=0)
    constant = std <= 1e-6 * (1 + mean.abs())
    return mean.squeeze(0), torch.where(constant, torch.ones_like(std), std).squeeze(0)
