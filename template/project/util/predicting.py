"""predict.py's machinery for any model: restoring a trained model or dataset from a checkpoint, and turning
its outputs, batch by batch, into named CSV columns.

A model's own predict_step is used when it defines one (the project's models return named columns); otherwise
the model is called on the batch's inputs (a bare tensor batch is the inputs; (x, y, ...) gives x; a dict is
passed whole, as Lightning's own default predict_step does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch.utils.data import DataLoader

from data.base import DataInfo
from util import foreign, runs

MAX_INPUT_COLUMNS = 16  # wider inputs (images) are not copied into the CSV


def restore(cls: type, checkpoint: Path, hparams: dict[str, Any], info: DataInfo | None,
            device: torch.device | str) -> Any:
    """A model or datamodule as it was trained. With save_hyperparameters() the checkpoint rebuilds it (Lightning's
    load_from_checkpoint); without, run.json's hyperparameters do, then the checkpoint's weights and state. Both read
    it with weights_only=True (util/runs.py load_checkpoint): a checkpoint never runs code."""
    state = runs.load_checkpoint(checkpoint)
    is_model = issubclass(cls, pl.LightningModule)
    if (state.get("hyper_parameters") if is_model else state.get("datamodule_hyper_parameters")) is not None:
        try:
            return cls.load_from_checkpoint(checkpoint, map_location=device, weights_only=True)
        except (RuntimeError, KeyError, TypeError) as error:  # another model's weights or hyperparameters
            raise runs.RunError(f"{checkpoint} does not fit {cls.__name__}: "
                                f"{' '.join(str(error).split())[:200]}") from None
    if is_model:
        if not isinstance(state.get("state_dict"), dict):
            raise runs.RunError(f"{checkpoint} holds no model weights (no state_dict)")
        model = foreign.build(cls, info, hparams)
        model.on_load_checkpoint(state)
        try:
            model.load_state_dict(state["state_dict"])
        except RuntimeError as error:  # another model's weights
            raise runs.RunError(f"{checkpoint} does not fit {cls.__name__}: "
                                f"{' '.join(str(error).split())[:200]}") from None
        return model.to(device)
    datamodule = cls(**hparams)
    if cls.__qualname__ in state:  # what its state_dict() returned at training time
        datamodule.load_state_dict(state[cls.__qualname__])
    return datamodule


def split_batch(batch: Any) -> tuple[Any, Any]:
    """(inputs, targets or None) of a batch of any form."""
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def rows_in(inputs: Any) -> int:
    if torch.is_tensor(inputs):
        return len(inputs)
    if isinstance(inputs, dict):
        return next((len(value) for value in inputs.values() if torch.is_tensor(value) and value.dim() > 0), 0)
    return len(inputs)


def columns(name: str, values: Any, rows: int, model: str) -> dict[str, list]:
    """One CSV column when an example has one value, name_0..name_k when it has several; nested outputs
    (tuples, dicts) get one name per part. Anything else cannot be written as rows: one line says so."""
    if isinstance(values, dict):
        return {key: value for part, output in values.items() for key, value in columns(
            str(part), output, rows, model).items()}
    if isinstance(values, (tuple, list)) and all(torch.is_tensor(part) for part in values):
        return {key: value for i, part in enumerate(values) for key, value in columns(
            f"{name}_{i}", part, rows, model).items()}
    if not torch.is_tensor(values) or values.dim() == 0 or len(values) != rows:
        shape = tuple(values.shape) if torch.is_tensor(values) else type(values).__name__
        raise runs.RunError(f"{model} returns {shape} for a batch of {rows} examples, which cannot be written as "
                            "one row per example; give it a predict_step returning a (batch, ...) tensor or a dict "
                            "of them")
    flat = values.detach().float().cpu().reshape(rows, -1)
    if flat.shape[1] == 1:
        return {name: flat[:, 0].tolist()}
    return {f"{name}_{i}": flat[:, i].tolist() for i in range(flat.shape[1])}


@torch.inference_mode()
def predict(model: pl.LightningModule, loader: DataLoader, device: torch.device, with_inputs: bool,
            with_targets: bool, task: str | None = None) -> dict[str, list]:
    """Run the model over the loader; inputs, targets and outputs as named columns."""
    own_step = is_overridden("predict_step", model)
    table: dict[str, list] = {}
    for batch_idx, batch in enumerate(loader):
        batch = move_data_to_device(batch, device)
        inputs, targets = split_batch(batch)
        rows = rows_in(inputs)
        found: dict[str, list] = {}
        if with_inputs and torch.is_tensor(inputs) and inputs[0].numel() <= MAX_INPUT_COLUMNS:
            found.update(columns("x", inputs, rows, type(model).__name__))
        if with_targets and torch.is_tensor(targets) and len(targets) == rows:
            found.update(columns("target", targets, rows, type(model).__name__))
        if own_step:
            outputs = model.predict_step(batch, batch_idx)
        else:
            outputs = model(inputs)
            if task == "classification" and torch.is_tensor(outputs) and outputs.dim() == 2:
                confidence, label = outputs.softmax(dim=1).max(dim=1)
                outputs = {"output": outputs, "class": label, "confidence": confidence}
        found.update(columns("output", outputs, rows, type(model).__name__))
        for name, values in found.items():
            table.setdefault(name, []).extend(values)
    return table
