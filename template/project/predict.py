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
The machinery is util/predicting.py, which the notebook uses too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from util import predicting, provenance, runs


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
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise runs.RunError(f"--device {args.device}: this machine has no CUDA GPU; use --device cpu")
        run_dir, checkpoint = predicting.find(args.run, args.save_dir, args.model, args.dataset)
        trained = predicting.load(run_dir, checkpoint, device)
        print(provenance.summary(run_dir))
        read_inputs = getattr(trained.datamodule, "read_inputs", None)  # a dataset that reads new examples itself
        if args.inputs is not None and not args.inputs.exists():
            raise runs.RunError(f"--inputs {args.inputs}: no such file or folder")
        if args.inputs is not None and read_inputs is not None:
            x, given = read_inputs(args.inputs)
            table = given | predicting.predict(trained, DataLoader(TensorDataset(x), batch_size=args.batch_size),
                                               with_inputs=False, with_targets=False)
        elif args.inputs is not None:
            loader, given = predicting.inputs_loader(args.inputs, args.columns, trained, args.batch_size)
            table = given | predicting.predict(trained, loader, with_inputs=False, with_targets=False)
        else:
            table = predicting.predict(trained, predicting.split_loader(trained.datamodule, args.split,
                                                                        args.batch_size))
        name = args.inputs.stem if args.inputs is not None else args.split
        output = args.output or run_dir / f"predictions-{name}.csv"
        rows = predicting.write_csv(output, table)
    except (runs.RunError, OSError, ValueError) as problem:  # a missing file or column: one line, no traceback
        parser.error(" ".join(str(problem).split()))
    print(f"{rows} predictions from {checkpoint} -> {output}")
    return output


if __name__ == "__main__":
    main(sys.argv[1:])
