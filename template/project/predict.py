"""Predictions from a trained run, written to CSV.

    python predict.py logs/mlp-synthetic_regression/20261124-101502            # its best checkpoint, test split
    python predict.py RUN_DIR --split val --output val_predictions.csv
    python predict.py RUN_DIR/checkpoints/last.ckpt --inputs new_points.csv    # your own inputs
    python predict.py last --model mlp                                        # newest run of a series

With --inputs, each row holds one example's raw input values, as the dataset's own files hold them; the dataset
prepares them as it prepared its training data (its `transform_inputs`, e.g. the csv datasets' standardization, with
the statistics stored in the checkpoint). A dataset with its own `read_inputs(path)` reads --inputs itself: the csv
datasets pick their feature columns by name, the image-folder ones read a folder of images (one row per file).

Columns: index, the inputs (as the file gives them with --inputs; as the model sees them, when an example has at most
16 values), the targets, then one column per output of the model's predict_step ("mean", "std", "class", or
"output_0", "output_1" ... for outputs with several values per example), in the data's own units: targets a dataset
standardized are written back, class ids as the dataset's class names. A model without its own predict_step (any
LightningModule works) is called on the batch's inputs; "class" and "confidence" only come with a classification.

A run is rebuilt from its own record: its config.yaml (runs made before template 0.3.0: run.json's hyperparameters)
builds the datamodule and the model as they were trained, then the checkpoint's weights and states go in (read with
weights_only=True). A model's own predict_step is used when it defines one; otherwise the model is called on the batch's
inputs: a bare tensor batch is the inputs, (x, y, ...) gives x, a dict is passed whole, as Lightning's default
predict_step does. The notebook uses the same functions (find, load, split_loader, predict).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from util import cli, components, runs  # first: util/ checks the working folder before torch loads

# isort: split
import lightning.pytorch as pl
import torch
from jsonargparse import ArgumentError
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch.utils.data import DataLoader, TensorDataset

from data import DATASETS
from data.base import WIRED, DataInfo
from model import MODELS

MAX_INPUT_COLUMNS = 16  # wider inputs (images) are not copied into the CSV


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict.py", description="Write a trained model's predictions to CSV.", allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n")[1],
    )
    parser.add_argument("run", metavar="RUN_DIR|CHECKPOINT|last",
                        help="A run folder (uses its best checkpoint), a .ckpt file inside one, or 'last'.")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test", help="Dataset split to predict.")
    parser.add_argument("--inputs", type=Path, metavar="CSV|DIR",
                        help="Predict these instead of a split: a CSV file, one example per row (or what the dataset's "
                             "read_inputs reads, e.g. a folder of images); relative to where you run predict.py.")
    parser.add_argument("--columns", metavar="A,B,...", help="With --inputs: the input columns (default: all).")
    parser.add_argument("--output", type=Path, help="CSV to write (default: <run>/predictions-<split>.csv, or "
                        "<run>/predictions-<name of the --inputs file>.csv).")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda:0.")
    parser.add_argument("--save_dir", type=Path, default=runs.DEFAULT_SAVE_DIR,
                        help="With 'last': root of the runs (default: the project's logs/).")
    parser.add_argument("--model", help="With 'last': the series' model (default: any, newest run wins).")
    parser.add_argument("--dataset", help="With 'last': the series' dataset.")
    return parser


def main(argv: list[str] | None = None) -> Path:
    """Write the predictions CSV and return its path."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        try:
            device = torch.device(args.device)
        except RuntimeError:
            raise runs.RunError(f"--device {args.device}: not a torch device; use cpu, cuda or cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise runs.RunError(f"--device {args.device}: this machine has no CUDA GPU; use --device cpu")
        run_dir, checkpoint = find(args.run, args.save_dir, args.model, args.dataset)
        trained = load(run_dir, checkpoint, device)
        print(runs.code_line(run_dir))
        read_inputs = getattr(trained.datamodule, "read_inputs", None)  # a dataset that reads new examples itself
        if args.inputs is not None and not args.inputs.exists():
            raise runs.RunError(f"--inputs {args.inputs}: no such file or folder")
        if args.inputs is not None and read_inputs is not None:
            x, given = read_inputs(args.inputs)
            table = given | predict(trained, DataLoader(TensorDataset(x), batch_size=args.batch_size),
                                               with_inputs=False, with_targets=False)
        elif args.inputs is not None:
            loader, given = inputs_loader(args.inputs, args.columns, trained, args.batch_size)
            table = given | predict(trained, loader, with_inputs=False, with_targets=False)
        else:
            table = predict(trained, split_loader(trained.datamodule, args.split,
                                                                        args.batch_size))
        name = args.inputs.stem if args.inputs is not None else args.split
        output = args.output or run_dir / f"predictions-{name}.csv"
        rows = write_csv(output, table)
    except (runs.RunError, OSError, ValueError) as problem:  # a missing file or column: one line, no traceback
        parser.exit(2, f"predict.py: error: {' '.join(str(problem).split())}\n")  # one line: the flags were fine
    print(f"{rows} predictions from {checkpoint} -> {output}")
    return output


# ---- a trained run, as a model you can call (the notebook loads runs with these too) ------------------------------


@dataclass
class Trained:
    """A run's model and datamodule as trained, ready to predict."""

    run_dir: Path
    checkpoint: Path
    model: pl.LightningModule
    datamodule: pl.LightningDataModule
    info: DataInfo | None  # the dataset's facts as the model was built from them

    @property
    def task(self) -> str | None:
        return getattr(self.model.hparams, "task", None) or (self.info.task if self.info is not None else None)


def trained_setup(run_dir: Path) -> cli.Setup:
    """The command line a run was trained with, from its config.yaml (for predict.py and the notebook)."""
    info = runs.read_info(run_dir)
    defaults = cli.Defaults(info["model"], info["dataset"], info["seed"], False, None, "", "", "")
    parser, trainer_keys, model_keys, data_keys = cli.build_parser(defaults, info["model"], info["dataset"])
    try:
        args = parser.parse_args(["--config", str(run_dir / runs.CONFIG_FILE)])
    except ArgumentError as problem:
        raise runs.RunError(f"{run_dir / runs.CONFIG_FILE} no longer fits the code ({cli.one_line(problem)}); restore "
                            "the code it was trained with (provenance.json names the commit)") from None
    return cli.Setup(args, parser, info["model"], info["dataset"], model_keys, data_keys, trainer_keys, [])


def newest_run_anywhere(save_dir: Path, model: str | None = None, dataset: str | None = None) -> Path | None:
    """The newest run with a checkpoint over every series of save_dir (optionally of one model and/or dataset)."""
    newest = [run for series in Path(save_dir).glob(f"{model or '*'}-{dataset or '*'}")
              if (run := runs.newest_run(series)) is not None]
    return max(newest, key=lambda path: float(runs.read_info(path).get("started", 0) or 0), default=None)


def find(spec: str, save_dir: Path = runs.DEFAULT_SAVE_DIR, model: str | None = None,
         dataset: str | None = None) -> tuple[Path, Path]:
    """(run folder, checkpoint): a run folder (its best checkpoint), a .ckpt inside one, or 'last' (the newest run
    with a checkpoint of save_dir, of one model and/or dataset when given)."""
    if spec == "last":
        run_dir = newest_run_anywhere(save_dir, model, dataset)
        if run_dir is None:
            raise runs.RunError(f"no runs with checkpoints matching {save_dir}/{model or '*'}-{dataset or '*'}; train "
                                "one with python trainer.py")
        return run_dir, runs.best_checkpoint(run_dir)
    path = Path(spec)
    if path.suffix == ".ckpt":
        if not path.is_file():
            raise runs.RunError(f"no checkpoint {path}")
        return runs.find_run(str(path), path.parent.parent), path.resolve()
    run_dir = runs.find_run(spec, path.parent)
    return run_dir, runs.best_checkpoint(run_dir)


def load(run_dir: Path, checkpoint: Path, device: torch.device | str = "cpu") -> Trained:
    """The run's datamodule and model as trained, with the checkpoint's weights and states."""
    info = runs.read_info(run_dir)
    missing = [f"{kind} {info[kind]!r}" for kind, found in (("model", MODELS), ("dataset", DATASETS))
               if info[kind] not in found]
    if missing:
        raise runs.RunError(f"{run_dir} was trained with {' and '.join(missing)}, which is no longer in model/ or "
                            "data/; restore it (git) or use another run")
    if (run_dir / runs.CONFIG_FILE).is_file():
        setup = trained_setup(run_dir)
        model_kwargs = {name: setup.built[key] for name, key in setup.model_keys.items()}
        data_kwargs = {name: setup.built[key] for name, key in setup.data_keys.items()}
    else:
        model_kwargs, data_kwargs = dict(info["model_hparams"]), dict(info["data_hparams"])
    state = runs.load_checkpoint(checkpoint)
    if not isinstance(state.get("state_dict"), dict):
        raise runs.RunError(f"{checkpoint} holds no model weights (no state_dict)")
    data_cls, model_cls = DATASETS[info["dataset"]], MODELS[info["model"]]
    recorded = info.get("data_info")  # as the model was built from them: no need to read the training data again
    try:  # from what the run recorded: a value its classes refuse is the record's fault
        datamodule = data_cls(**data_kwargs)
        data_info = DataInfo(recorded["task"], tuple(recorded["input_shape"]), int(recorded["num_outputs"])) if \
            isinstance(recorded, dict) else components.declared_info(datamodule)
        wired = {name: getattr(data_info, name) for name in WIRED
                 if data_info is not None and components.takes(model_cls, name)}
        model = model_cls(**wired, **model_kwargs)
    except (TypeError, KeyError, ValueError, RuntimeError) as problem:
        raise runs.RunError(f"{run_dir} cannot be rebuilt from {runs.RUN_FILE} or {runs.CONFIG_FILE} "
                            f"({type(problem).__name__}: {problem}); restore them, or use another run") from None
    try:
        if data_cls.__qualname__ in state:  # what its state_dict() returned at training time (e.g. its statistics)
            datamodule.load_state_dict(state[data_cls.__qualname__])
        model.on_load_checkpoint(state)
        model.load_state_dict(state["state_dict"])
    except (RuntimeError, KeyError, TypeError) as problem:  # another model's weights
        raise runs.RunError(f"{checkpoint} does not fit {model_cls.__name__}: "
                            f"{' '.join(str(problem).split())[:200]}") from None
    return Trained(run_dir, checkpoint, model.to(device).eval(), datamodule, data_info)


# ---- tables of predictions (the notebook plots them) -------------------------------------------------------------


def split_loader(datamodule: pl.LightningDataModule, split: str, batch_size: int) -> DataLoader:
    """The split in its stored order (the training loader would shuffle it)."""
    datamodule.prepare_data()
    datamodule.setup("fit" if split in ("train", "val") else "test")
    try:
        loader = getattr(datamodule, f"{split}_dataloader")()
    except (NotImplementedError, MisconfigurationException, AttributeError) as problem:
        raise runs.RunError(f"{type(datamodule).__name__} has no {split} split ({problem}); choose another --split")
    if not isinstance(loader, DataLoader) or loader.batch_sampler is None or loader.sampler is None:
        return loader  # a loader of its own kind: used as it is
    return DataLoader(loader.dataset, batch_size=batch_size, shuffle=False, collate_fn=loader.collate_fn)


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
    """One CSV column when an example has one value, name_0..name_k when it has several; nested outputs (tuples,
    dicts) get one name per part. Anything else cannot be written as rows: one line says so."""
    if isinstance(values, dict):
        return {key: value for part, output in values.items() for key, value in columns(
            str(part), output, rows, model).items()}
    if isinstance(values, (tuple, list)) and all(torch.is_tensor(part) for part in values):
        return {key: value for i, part in enumerate(values) for key, value in columns(
            f"{name}_{i}", part, rows, model).items()}
    if not torch.is_tensor(values) or values.dim() == 0 or len(values) != rows:
        shape = tuple(values.shape) if torch.is_tensor(values) else type(values).__name__
        raise runs.RunError(f"{model} returns {shape} for a batch of {rows} examples, which cannot be written as one "
                            "row per example; give it a predict_step returning a (batch, ...) tensor or a dict of them")
    flat = values.detach().cpu().reshape(rows, -1)
    flat = flat if flat.dtype in (torch.int64, torch.int32, torch.bool) else flat.float()  # integers stay integers
    if flat.shape[1] == 1:
        return {name: flat[:, 0].tolist()}
    return {f"{name}_{i}": flat[:, i].tolist() for i in range(flat.shape[1])}


@torch.inference_mode()
def predict(trained: Trained, loader: Any, with_inputs: bool = True, with_targets: bool = True) -> dict[str, list]:
    """Run the model over the loader; inputs, targets and outputs as named columns, in the data's own units."""
    model, device = trained.model, next(iter(trained.model.parameters()), torch.empty(0)).device
    own_step = is_overridden("predict_step", model)
    table: dict[str, list] = {}
    for batch_idx, batch in enumerate(loader):
        batch = move_data_to_device(batch, device)
        inputs, targets = split_batch(batch)
        rows = rows_in(inputs)
        found: dict[str, list] = {}
        if with_inputs and torch.is_tensor(inputs) and inputs[0].numel() <= MAX_INPUT_COLUMNS:
            found.update(_named(columns("x", _raw(trained.datamodule, inputs), rows, type(model).__name__),
                                getattr(trained.datamodule, "feature_names", None)))
        if with_targets and trained.task != "reconstruction" and torch.is_tensor(targets) and len(targets) == rows:
            found.update(columns("target", targets, rows, type(model).__name__))
        if own_step:
            outputs = model.predict_step(batch, batch_idx)
        else:
            outputs = model(inputs)
            if trained.task == "classification" and torch.is_tensor(outputs) and outputs.dim() == 2:
                confidence, label = outputs.softmax(dim=1).max(dim=1)
                outputs = {"output": outputs, "class": label, "confidence": confidence}
        found.update(columns("output", outputs, rows, type(model).__name__))
        for name, values in found.items():
            table.setdefault(name, []).extend(values)
    return in_data_units(trained.datamodule, table)


def _raw(datamodule: Any, inputs: torch.Tensor) -> torch.Tensor:
    """Inputs as the data has them: a dataset that standardized them (feature_mean, feature_std) gets them back."""
    mean, std = getattr(datamodule, "feature_mean", None), getattr(datamodule, "feature_std", None)
    if torch.is_tensor(mean) and torch.is_tensor(std) and mean.shape == inputs.shape[1:]:
        return inputs * std.to(inputs.device) + mean.to(inputs.device)
    return inputs


def _named(table: dict[str, list], names: Any) -> dict[str, list]:
    """The input columns by the dataset's own names (feature_names), when it has one per column."""
    if not isinstance(names, (list, tuple)) or len(names) != len(table):
        return table
    return dict(zip(names, table.values()))


def _whole(values: list) -> list:
    """Values that are whole numbers, as integers ("9", not "9.0"), as the data had them."""
    if values and all(isinstance(v, float) and math.isfinite(v) and abs(v - round(v)) < 1e-4 * max(1, abs(v))
                      for v in values):
        return [round(v) for v in values]
    return values


def in_data_units(datamodule: Any, table: dict[str, list]) -> dict[str, list]:
    """Targets and predictions back in the data's own units: a dataset that standardized its targets (target_mean,
    target_std) gets them unstandardized, whole numbers stay whole; one with class names gets the names."""
    target_std = getattr(datamodule, "target_std", None)
    if target_std is not None:
        scale, shift = float(target_std.flatten()[0]), float(datamodule.target_mean.flatten()[0])
        for name in ("prediction", "mean", "target", "std"):
            if name in table:
                table[name] = [value * scale + (0.0 if name == "std" else shift) for value in table[name]]
    names = list(getattr(datamodule, "class_names", []) or [])
    for name in ("class", "target"):
        if names and name in table and (name == "class" or "class" in table):
            table[name] = [names[int(i)] for i in table[name]]
    outputs = {"prediction", "mean", "std", "confidence"}
    return {name: _whole(values) if name not in outputs and not name.startswith("output") else values
            for name, values in table.items()}


# ---- --inputs: rows of a CSV file ----------------------------------------------------------------------------------


def inputs_loader(path: Path, wanted: str | None, trained: Trained, batch_size: int) -> tuple[DataLoader, dict]:
    """Rows of a CSV file as model inputs, prepared as the dataset prepares its own (`transform_inputs`); returns the
    loader and the input columns as the file holds them (names and text as given)."""
    shape = getattr(trained.model.hparams, "input_shape", None) or (trained.info.input_shape if trained.info else None)
    if shape is None:
        raise runs.RunError("--inputs needs the shape of one example: neither the model (an input_shape hyperparameter)"
                            " nor the dataset (an `info` property) records it")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's BOM is no part of a name
            reader = csv.reader(handle)
            found = [name.strip() for name in next(reader, [])]
            rows = [(reader.line_num, row) for row in reader if row]  # blank lines skipped
    except (OSError, UnicodeDecodeError, csv.Error) as problem:
        raise runs.RunError(f"--inputs {path}: cannot read it as CSV text in UTF-8 ({problem}); save it as UTF-8 "
                            "CSV") from None
    if not found:
        raise runs.RunError(f"--inputs {path} is empty; give a CSV file with a header line and one row per example")
    names = [name.strip() for name in wanted.split(",")] if wanted else found
    if missing := [name for name in names if name not in found]:
        raise runs.RunError(f"{path} has no column {', '.join(missing)}; its columns: {', '.join(found)}")
    if len(names) != math.prod(shape):
        raise runs.RunError(f"the model takes {math.prod(shape)} input values per example, {path} gives "
                            f"{len(names)} ({', '.join(names)}); choose them with --columns")
    if not rows:
        raise runs.RunError(f"{path} holds a header and no rows to predict")
    positions = [found.index(name) for name in names]
    values = []
    for number, row in rows:
        if len(row) != len(found):
            raise runs.RunError(f"{path}: row {number} has {len(row)} values for {len(found)} columns; fix it")
        try:
            values.append([float(row[i]) for i in positions])
        except (ValueError, IndexError, TypeError):
            raise runs.RunError(f"{path}: row {number} has a missing or non-numeric value; fix it") from None
        if not all(math.isfinite(value) for value in values[-1]):
            raise runs.RunError(f"{path}: row {number} holds nan or inf, which no model can predict from")
    x = torch.tensor(values, dtype=torch.float32).reshape(len(rows), *shape)
    transform = getattr(trained.datamodule, "transform_inputs", None)  # BaseDataModule's; others take values as is
    x = transform(x) if transform is not None else x
    table = {name: [row[i] for _, row in rows] for name, i in zip(names, positions)}
    return DataLoader(TensorDataset(x), batch_size=batch_size), table


def write_csv(path: Path, table: dict[str, list]) -> int:
    """The table as CSV, one row per example after an index column; returns the number of rows."""
    rows = len(next(iter(table.values()), []))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", *table])
        for i in range(rows):
            writer.writerow([i, *(column[i] for column in table.values())])
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
