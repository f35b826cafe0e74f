"""A LightningModule or LightningDataModule written anywhere, used as it is.

The project's base classes (model/base.py, data/base.py) are the short path: the dataset describes itself
(`info`), the model is built from that description and logs its metrics and hyperparameters. A class written
for plain Lightning has none of that, so here:

- the data-to-model handshake is optional: `input_shape`, `num_outputs` and `task` reach a constructor only
  when it takes them, and come from the dataset's `info`, or else from a batch of its training data;
- its HPARAMS come from its own hyperparameters (`save_hyperparameters()` or the flags of its signature),
  and `hp/val_loss`/`hp/test_loss` from whatever it logs (util/monitor.py chooses the metric);
- a model without `test_step`, or a dataset without `test_dataloader`, is simply not tested.
"""

from __future__ import annotations

import inspect
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.model_helpers import is_overridden

from data.base import DataInfo
from model.base import BaseModel

WIRED = ("input_shape", "num_outputs", "task")  # what a dataset tells the model it builds
MAX_CLASS_SCAN_BATCHES = 200  # integer targets: the classes found in up to this many training batches


class DataError(ValueError):
    """A dataset cannot tell a model what it needs; the message says what to add."""


def takes(cls: type, name: str) -> bool:
    """Whether `cls(...)` accepts the keyword `name` (the project's models always take the wired ones)."""
    if issubclass(cls, BaseModel):
        return True
    return name in inspect.signature(cls.__init__).parameters


def needs_info(cls: type) -> bool:
    return any(takes(cls, name) for name in WIRED)


def declared_info(datamodule: pl.LightningDataModule) -> DataInfo | None:
    """The dataset's own `info` (a DataInfo), or None when it declares none."""
    try:
        info = getattr(datamodule, "info", None)
    except NotImplementedError:  # BaseDataModule's placeholder
        return None
    return info if isinstance(info, DataInfo) else None


def info_from_batch(datamodule: pl.LightningDataModule, name: str) -> DataInfo:
    """Facts read from the training data of a dataset without `info`: (x, y) batches, integer targets mean
    classification with the classes found, float targets regression."""
    add = (f"add an `info` property to {type(datamodule).__name__} (data/{name}.py) returning "
           "data.base.DataInfo(task, input_shape, num_outputs)")
    try:
        loader = datamodule.train_dataloader()
        batch = next(iter(loader))
    except Exception as error:  # whatever the user's loader raises, the advice is the same
        raise DataError(f"dataset {name!r} has no `info`, and its training data could not be read "
                        f"({type(error).__name__}: {error}); {add}") from error
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(torch.is_tensor(part) for part in batch)):
        raise DataError(f"dataset {name!r} has no `info` and its batches are {describe(batch)}, not (inputs, "
                        f"targets); the project's models need both: {add}")
    x, y = batch
    input_shape = tuple(x.shape[1:])
    if y.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8) and y.dim() == 1:
        highest = int(y.max())
        for seen, (_, more) in enumerate(loader):
            if seen >= MAX_CLASS_SCAN_BATCHES:
                break
            highest = max(highest, int(more.max()))
        info = DataInfo("classification", input_shape, highest + 1)
    elif y.is_floating_point():
        info = DataInfo("regression", input_shape, int(y.reshape(len(y), -1).shape[1]))
    else:
        raise DataError(f"dataset {name!r} has no `info` and its targets are {describe(y)}; {add}")
    print(f"dataset {name!r} has no `info`; from its training data: {info.task}, input shape {input_shape}, "
          f"{info.num_outputs} {'classes' if info.task == 'classification' else 'outputs'}", flush=True)
    return info


def describe(value: Any) -> str:
    if torch.is_tensor(value):
        return f"{value.dtype} tensors of shape {tuple(value.shape)}"
    if isinstance(value, dict):
        return f"dicts ({', '.join(map(str, value))})"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__}s of {len(value)}"
    return type(value).__name__


def build(cls: type[pl.LightningModule], info: DataInfo | None, hparams: dict[str, Any]) -> pl.LightningModule:
    """The model from its hyperparameters, plus the dataset's facts it takes."""
    wired = {name: getattr(info, name) for name in WIRED if info is not None and takes(cls, name)}
    return cls(**wired, **hparams)


def untestable(model: pl.LightningModule, datamodule: pl.LightningDataModule) -> str | None:
    """Why trainer.test cannot run on this pair, or None when it can."""
    if not is_overridden("test_step", model):
        return f"{type(model).__name__} has no test_step: no test"
    if not (is_overridden("test_dataloader", datamodule) or is_overridden("test_dataloader", model)):
        return f"{type(datamodule).__name__} has no test_dataloader: no test"
    return None


def own_hparams(component: Any, flag_values: dict[str, Any]) -> dict[str, Any]:
    """A module's hyperparameters: its flags (the signature), and what save_hyperparameters() recorded."""
    saved = dict(getattr(component, "hparams", {}) or {})
    return {**flag_values, **saved}
