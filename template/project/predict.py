"""Predictions from a trained run, written to CSV.

    python predict.py logs/mlp-synthetic_regression/20261124-101502            # its best checkpoint, test split
    python predict.py RUN_DIR --split val --output val_predictions.csv
    python predict.py RUN_DIR/checkpoints/last.ckpt --inputs new_points.csv    # your own inputs
    python predict.py last --model mlp                                        # newest run of a series

With --inputs, each row holds one example's raw input values, as the dataset's own files hold them; the
dataset prepares them as it prepared its training data (its `transform_inputs`, e.g. the csv blueprint's
standardization, with the statistics stored in the checkpoint). A dataset with its own `read_inputs(path)`
reads --inputs itself: the csv blueprint picks its feature columns by name, the image-folder blueprint
reads a folder of images (one row per file).

Columns: index, the inputs as the model sees them (when an example has at most 16 values), the targets
(dataset splits, except for reconstruction), then one column per output of the model's predict_step
("mean", "std", or "class_0", "class_1" ... for outputs with several values per example). A model without its
own predict_step (any LightningModule works: util/foreign.py) is called with the batch's inputs and its outputs
are written as "output" (or "output_0", "output_1" ...), with "class" and "confidence" only when the dataset
says it is a classification.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from data import DATASETS
from data.base import DataInfo
from model import MODELS
from util import foreign, provenance, runs
from util.predicting import predict, restore


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict.py", description="Write a trained model's predictions to CSV.", allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n")[1],
    )
    parser.add_argument("run", metavar="RUN_DIR|CHECKPOINT|last",
                        help="A run folder (uses its best checkpoint), a .ckpt file inside one, or 'last'.")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test", help="Dataset split to predict.")
    parser.add_argument("--inputs", type=Path, metavar="CSV|DIR",
                        help="Predict these rows instead of a split: one example per row, its values in order "
                        "(or what the dataset's read_inputs reads, e.g. a folder of images).")
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


def find_checkpoint(args: argparse.Namespace) -> tuple[Path, Path]:
    """(run directory, checkpoint) named by the command line."""
    if args.run == "last":  # runs without a checkpoint (killed before their first) are skipped
        run_dir = runs.newest_run_anywhere(args.save_dir, args.model, args.dataset)
        if run_dir is None:
            raise runs.RunError(f"no runs with checkpoints matching {args.save_dir}/{args.model or '*'}-"
                                f"{args.dataset or '*'}; train one with python trainer.py")
        return run_dir, runs.best_checkpoint(run_dir)
    path = Path(args.run)
    if path.suffix == ".ckpt":
        if not path.is_file():
            raise runs.RunError(f"no checkpoint {path}")
        return runs.find_run(str(path), path.parent.parent), path
    run_dir = runs.find_run(str(path), path.parent)
    return run_dir, runs.best_checkpoint(run_dir)


def split_loader(datamodule: pl.LightningDataModule, split: str, batch_size: int) -> DataLoader:
    """The split in its stored order (the training loader would shuffle it)."""
    datamodule.prepare_data()
    datamodule.setup("fit" if split in ("train", "val") else "test")
    try:
        loader = {"train": datamodule.train_dataloader, "val": datamodule.val_dataloader,
                  "test": datamodule.test_dataloader}[split]()
    except (NotImplementedError, MisconfigurationException) as error:  # a dataset without that split
        raise runs.RunError(f"{type(datamodule).__name__} has no {split} split ({error}); choose another --split")
    if not isinstance(loader, DataLoader) or loader.batch_sampler is None or loader.sampler is None:
        return loader  # a loader of its own kind: used as it is
    return DataLoader(loader.dataset, batch_size=batch_size, shuffle=False, collate_fn=loader.collate_fn)


def inputs_loader(path: Path, columns: str | None, input_shape: tuple[int, ...], datamodule: pl.LightningDataModule,
                  batch_size: int) -> tuple[DataLoader, list[str], list[list[str]]]:
    """Rows of a CSV file as model inputs, prepared as the dataset prepares its own (`transform_inputs`);
    returns the loader, the column names and the raw rows."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        found = list(reader.fieldnames or [])
        rows = list(reader)
    names = [name.strip() for name in columns.split(",")] if columns else found
    missing = [name for name in names if name not in found]
    if missing:
        raise runs.RunError(f"{path} has no column {', '.join(missing)}; its columns: {', '.join(found)}")
    expected = math.prod(input_shape)
    if len(names) != expected:
        values = "value" if expected == 1 else "values"
        raise runs.RunError(f"the model takes {expected} input {values} per example, {path} gives {len(names)} "
                            f"({', '.join(names)}); choose them with --columns")
    try:
        values = torch.tensor([[float(row[name]) for name in names] for row in rows], dtype=torch.float32)
    except ValueError as error:
        raise runs.RunError(f"{path}: {error}") from error
    transform = getattr(datamodule, "transform_inputs", None)  # BaseDataModule's; a foreign one takes values as they are
    x = values.reshape(len(rows), *input_shape)
    x = transform(x) if transform is not None else x
    return DataLoader(TensorDataset(x), batch_size=batch_size), names, [[row[n] for n in names] for row in rows]


def input_shape(model: pl.LightningModule, data_info: DataInfo | None) -> tuple[int, ...]:
    """One example's shape, for --inputs: the model's own record of it, else the dataset's `info`."""
    shape = getattr(model.hparams, "input_shape", None) or (data_info.input_shape if data_info is not None else None)
    if shape is None:
        raise runs.RunError("--inputs needs the shape of one example: neither the model (an input_shape "
                            "hyperparameter) nor the dataset (an `info` property) records it")
    return tuple(shape)


def write_csv(path: Path, table: dict[str, list]) -> int:
    rows = len(next(iter(table.values()), []))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", *table])
        for i in range(rows):
            writer.writerow([i, *(column[i] for column in table.values())])
    return rows


def main(argv: list[str] | None = None) -> Path:
    """Write the predictions CSV and return its path."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run_dir, checkpoint = find_checkpoint(args)
        info = runs.read_run_info(run_dir)
        if info["model"] not in MODELS or info["dataset"] not in DATASETS:
            missing = [f"{kind} {info[kind]!r}" for kind, found in (("model", MODELS), ("dataset", DATASETS))
                       if info[kind] not in found]
            raise runs.RunError(f"{run_dir} was trained with {' and '.join(missing)}, which is no longer in model/ "
                                "or data/; restore it (git) or predict with another run")
        device = torch.device(args.device)
        # The dataset as trained: its hyperparameters and its state (e.g. the statistics it standardizes with).
        datamodule = restore(DATASETS[info["dataset"]], checkpoint, info["data_hparams"], None, "cpu")
        data_info = foreign.declared_info(datamodule)
        model = restore(MODELS[info["model"]], checkpoint, info["model_hparams"], data_info, device)
        model.eval()
        task = getattr(model.hparams, "task", None) or (data_info.task if data_info is not None else None)
        print(provenance.summary(run_dir))
        read_inputs = getattr(datamodule, "read_inputs", None)  # a dataset that reads new examples itself
        if args.inputs is not None and read_inputs is not None:
            if not args.inputs.exists():
                raise runs.RunError(f"--inputs {args.inputs}: no such file or folder")
            x, inputs = read_inputs(args.inputs)
            loader = DataLoader(TensorDataset(x), batch_size=args.batch_size)
            table = inputs | predict(model, loader, device, with_inputs=False, with_targets=False, task=task)
            default_output = run_dir / f"predictions-{args.inputs.stem}.csv"
        elif args.inputs is not None:
            loader, names, raw = inputs_loader(args.inputs, args.columns, input_shape(model, data_info),
                                               datamodule, args.batch_size)
            # the file's own columns (names and text as given), then the predictions
            inputs = {name: [row[i] for row in raw] for i, name in enumerate(names)}
            table = inputs | predict(model, loader, device, with_inputs=False, with_targets=False, task=task)
            default_output = run_dir / f"predictions-{args.inputs.stem}.csv"
        else:
            loader = split_loader(datamodule, args.split, args.batch_size)
            table = predict(model, loader, device, with_inputs=True, with_targets=task != "reconstruction", task=task)
            default_output = run_dir / f"predictions-{args.split}.csv"
        target_std = getattr(datamodule, "target_std", None)  # a dataset that standardized its targets (csv)
        if target_std is not None:  # predictions and targets back in the target's own units
            scale, shift = float(target_std.flatten()[0]), float(datamodule.target_mean.flatten()[0])
            for name in ("prediction", "mean", "target", "std"):
                if name in table:
                    table[name] = [value * scale + (0.0 if name == "std" else shift) for value in table[name]]
        class_names = list(getattr(datamodule, "class_names", []) or [])
        if class_names and "class" in table:  # the dataset knows what its class ids mean: write the names
            table["class"] = [class_names[int(i)] for i in table["class"]]
            if "target" in table:
                table["target"] = [class_names[int(i)] for i in table["target"]]
        output = args.output or default_output
        rows = write_csv(output, table)
    except (runs.RunError, OSError, ValueError) as error:  # a missing file or column: one line, no traceback
        parser.error(str(error))
    print(f"{rows} predictions from {checkpoint} -> {output}")
    return output


if __name__ == "__main__":
    main(sys.argv[1:])
