"""How a dataset and a model meet (util/registry.py finds them in data/ and model/):

- the facts: a dataset's facts (task, input shape, outputs: data/base.py's DataInfo) reach the model's constructor
  arguments that take them, from the dataset's `info` or else from a batch of its training data. The project's base
  classes are a shortcut, not a requirement: a plain LightningModule or LightningDataModule works as it is.
- Before anything is written: a model or dataset whose saved hyperparameters a checkpoint cannot hold for a
  weights-only load (an nn.Module, a partial, a custom class) is refused with the one-line fix.

What Lightning does not do, and this module does: the data-to-model handshake and the early hyperparameter check
(Lightning finds out when the best checkpoint is loaded for testing, after training).
"""

from __future__ import annotations

import inspect
import io
import itertools
import pickle
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.model_helpers import is_overridden

from data.base import WIRED, DataInfo
from model.base import BaseModel

if TYPE_CHECKING:
    from util.cli import Setup

MAX_CLASS_SCAN_BATCHES = 200  # integer targets: the classes found in up to this many training batches


class DataError(ValueError):
    """A dataset cannot tell a model what it needs; the message says what to add."""


# ---- a dataset meets a model ----------------------------------------------------------------------------------


def takes(cls: type, name: str) -> bool:
    """Whether `cls(...)` accepts the keyword `name` (the project's models take every wired one)."""
    return issubclass(cls, BaseModel) or name in inspect.signature(cls.__init__).parameters


def declared_info(datamodule: Any) -> DataInfo | None:
    """The dataset's own `info` (a DataInfo), or None when it declares none."""
    try:
        info = getattr(datamodule, "info", None)
    except NotImplementedError:  # BaseDataModule's placeholder
        return None
    return info if isinstance(info, DataInfo) else None


def load_data(setup: Setup) -> tuple[pl.LightningDataModule, DataInfo | None]:
    """The datamodule and its facts (None when it declares none and the model needs none); a missing file or
    column is a one-line error, not a traceback."""
    from data import DATASETS
    from model import MODELS
    from util.runs import launched_rank_is_zero

    built = setup.built
    try:
        datamodule = DATASETS[setup.data_name](**{name: built[key] for name, key in setup.data_keys.items()})
        info = declared_info(datamodule)
        needed = info is None and any(takes(MODELS[setup.model_name], name) for name in WIRED)
        if launched_rank_is_zero() or needed:  # other ranks may start before rank 0 has prepared the data
            datamodule.prepare_data()  # read now rather than inside fit: setup runs once, Lightning's call is free
            datamodule.setup("fit")
        if needed:
            info = info_from_batch(datamodule, setup.data_name)
        if (why := unloadable_hparams(datamodule, "dataset", setup.data_name, set(setup.object_configs()))) is not None:
            setup.error(why)
    except DataError as problem:
        setup.error(str(problem))
    except (ValueError, OSError) as problem:
        setup.error(f"dataset {setup.data_name!r}: {problem}")
    return datamodule, info


def info_from_batch(datamodule: pl.LightningDataModule, name: str) -> DataInfo:
    """Facts read from the training data of a dataset without `info`: (x, y) batches; integer targets mean
    classification with the classes found, float targets regression."""
    add = (f"add an `info` property to {type(datamodule).__name__} (data/{name}.py) returning "
           "data.base.DataInfo(task, input_shape, num_outputs)")
    try:
        loader = datamodule.train_dataloader()
        batch = next(iter(loader))
    except Exception as problem:  # whatever the user's loader raises, the advice is the same
        raise DataError(f"dataset {name!r} has no `info`, and its training data could not be read "
                        f"({type(problem).__name__}: {problem}); {add}") from problem
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(torch.is_tensor(part) for part in batch)):
        raise DataError(f"dataset {name!r} has no `info` and its batches are {describe(batch)}, not (inputs, targets); "
                        f"the project's models need both: {add}")
    x, y = batch
    if y.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8) and y.dim() == 1:
        highest = max([int(y.max()), *(int(ys.max()) for _, ys in itertools.islice(loader, MAX_CLASS_SCAN_BATCHES))])
        info = DataInfo("classification", tuple(x.shape[1:]), highest + 1)
    elif y.is_floating_point():
        info = DataInfo("regression", tuple(x.shape[1:]), int(y.reshape(len(y), -1).shape[1]))
    else:
        raise DataError(f"dataset {name!r} has no `info` and its targets are {describe(y)}; {add}")
    print(f"dataset {name!r} has no `info`; from its training data: {info.task}, input shape {info.input_shape}, "
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


def build_model(setup: Setup, info: DataInfo | None) -> pl.LightningModule:
    """The model from its flags (objects built) plus the dataset's facts it takes; an incompatible pair, or saved
    hyperparameters a checkpoint cannot hold, are refused before anything is written."""
    from model import MODELS

    cls = MODELS[setup.model_name]
    why = getattr(cls, "incompatibility", lambda info: None)(info) if info is not None else None
    if why:
        setup.error(f"model {setup.model_name!r} cannot train on dataset {setup.data_name!r}: {why}")
    wired = {name: getattr(info, name) for name in WIRED if info is not None and takes(cls, name)}
    try:
        model = cls(**wired, **{name: setup.built[key] for name, key in setup.model_keys.items()})
    except (TypeError, ValueError) as problem:
        setup.error(f"model {setup.model_name!r}: {problem}")
    if (why := unloadable_hparams(model, "model", setup.model_name, set(setup.object_configs()))) is not None:
        setup.error(why)
    return model


def unloadable_hparams(obj: Any, kind: str, name: str, as_config: set[str]) -> str | None:
    """Why a checkpoint of `obj` could not be read back with torch.load(weights_only=True), or None: a saved
    hyperparameter that is no plain value (objects built from flags are saved as configs: ObjectsAsConfig)."""
    bad = {}
    for key, value in dict(getattr(obj, "hparams", {}) or {}).items():
        if key in as_config:
            continue
        buffer = io.BytesIO()
        try:
            torch.save(value, buffer)
            buffer.seek(0)
            torch.load(buffer, weights_only=True)
        except (pickle.UnpicklingError, pickle.PicklingError, TypeError, AttributeError, RuntimeError):
            bad[key] = type(value).__name__
    if not bad:
        return None
    shown = ", ".join(f"{key} (a {kind_})" for key, kind_ in bad.items())
    where = inspect.getsourcefile(type(obj)) or type(obj).__module__
    return (f"{kind} {name!r}: save_hyperparameters() records {shown}, which a checkpoint cannot hold for a safe "
            f"(weights-only) load; add ignore={sorted(bad)} to the save_hyperparameters() call of "
            f"{type(obj).__name__} ({where}): the run's config.yaml keeps them")


def untestable(model: pl.LightningModule, datamodule: pl.LightningDataModule) -> str | None:
    """Why trainer.test cannot run on this pair, or None when it can."""
    if not is_overridden("test_step", model):
        return f"{type(model).__name__} has no test_step: no test"
    if not (is_overridden("test_dataloader", datamodule) or is_overridden("test_dataloader", model)):
        return f"{type(datamodule).__name__} has no test_dataloader: no test"
    return None


def own_hparams(component: Any, flag_values: dict[str, Any]) -> dict[str, Any]:
    """A module's hyperparameters: its flags and what save_hyperparameters() recorded (a tuner's values included; an
    object shows as its flags; the dataset's facts that reached a model are no one's choice: left out)."""
    saved = {key: value for key, value in dict(getattr(component, "hparams", {}) or {}).items() if key not in WIRED
             and (key not in flag_values or isinstance(value, (bool, int, float, str, list, tuple, type(None))))}
    return {**flag_values, **saved}
