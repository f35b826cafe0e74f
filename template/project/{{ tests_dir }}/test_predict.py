"""predict.py: a trained run's predictions for a dataset split or for a CSV of the user's own inputs."""

import csv
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import TINY, train
from torch import Tensor
from torch.utils.data import TensorDataset

import predict
from data import DATASETS
from data.base import BaseDataModule, DataInfo, random_splits
from model import MODELS
from util import components


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_predict_writes_a_csv_of_the_test_split(two_epoch_run: Path, tmp_path: Path) -> None:
    rows = read_csv(predict.main([str(two_epoch_run), "--output", str(tmp_path / "predictions.csv")]))
    info = json.loads((two_epoch_run / "run.json").read_text())
    datamodule = DATASETS[info["dataset"]](**info["data_hparams"])
    datamodule.setup("test")
    assert len(rows) == len(datamodule.test_dataloader().dataset)
    model = MODELS[info["model"]].load_from_checkpoint(two_epoch_run / info["best_checkpoint"], weights_only=True)
    x, y = next(iter(datamodule.test_dataloader()))
    expected_columns = set(model.predict_step((x, y), 0))
    assert expected_columns <= {name.rsplit("_", 1)[0] if name[-1].isdigit() else name for name in rows[0]}
    assert all(math.isfinite(float(value)) for row in rows[:5] for value in row.values())


def test_predict_last_skips_runs_without_a_checkpoint_and_names_a_removed_model(
        two_epoch_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_dir = tmp_path / "logs"
    shutil.copytree(two_epoch_run, save_dir / two_epoch_run.parent.name / "trained")
    info = json.loads((two_epoch_run / "run.json").read_text())
    crashed = save_dir / two_epoch_run.parent.name / "crashed"  # newer, killed before its first checkpoint
    crashed.mkdir()
    (crashed / "run.json").write_text(json.dumps({**info, "started": info["started"] + 60}))
    output = predict.main(["last", "--save_dir", str(save_dir)])
    assert output.parent.name == "trained" and output.is_file()

    gone = save_dir / "gone-synthetic_regression" / "run"
    shutil.copytree(two_epoch_run, gone)
    (gone / "run.json").write_text(json.dumps({**info, "model": "gone", "started": info["started"] + 90}))
    with pytest.raises(SystemExit) as exit_info:
        predict.main(["last", "--save_dir", str(save_dir)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "was trained with model 'gone', which is no longer in model/ or data/; restore it (git) or use "
        "another run")


def test_predict_reads_inputs_from_a_csv(two_epoch_run: Path, tmp_path: Path) -> None:
    info = json.loads((two_epoch_run / "run.json").read_text())
    data_info = components.declared_info(DATASETS[info["dataset"]](**info["data_hparams"]))
    assert data_info is not None
    width = math.prod(data_info.input_shape)
    inputs = tmp_path / "inputs.csv"
    inputs.write_text(",".join(f"f{i}" for i in range(width)) + "\n" + "\n".join(
        ",".join(str(0.5 * (row + i)) for i in range(width)) for row in range(3)) + "\n")
    checkpoint = two_epoch_run / "checkpoints" / "last.ckpt"
    rows = read_csv(predict.main([str(checkpoint), "--inputs", str(inputs), "--output", str(tmp_path / "out.csv")]))
    assert len(rows) == 3 and rows[1]["f0"] == "0.5"


class _Table(BaseDataModule):
    """Two features far from 0 with unlike spreads, standardized in setup with the training split's
    statistics, which state_dict keeps in checkpoints: the csv blueprint's pattern in a few lines.

    Args:
        n_samples: Rows in total.
    """

    def __init__(self, n_samples: int = 200, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mean: Tensor | None = None
        self.std: Tensor | None = None

    @property
    def info(self) -> DataInfo:
        return DataInfo(task="regression", input_shape=(2,), num_outputs=1)

    @staticmethod
    def raw_splits(n_samples: int) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
        """The rows as a file holds them, split as setup splits them."""
        generator = torch.Generator().manual_seed(0)
        x = torch.rand(n_samples, 2, generator=generator) * torch.tensor([100.0, 2.0]) + torch.tensor([1000.0, -5.0])
        y = (x[:, :1] - 1050) / 50 + x[:, 1:]
        return random_splits(x, y, val_fraction=0.2, test_fraction=0.2, seed=0)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train, val, test = self.raw_splits(self.hparams["n_samples"])
        self.mean, self.std = train.tensors[0].mean(dim=0), train.tensors[0].std(dim=0)
        self.train_set, self.val_set, self.test_set = (
            TensorDataset(self.transform_inputs(split.tensors[0]), split.tensors[1]) for split in (train, val, test)
        )

    def transform_inputs(self, x: Tensor) -> Tensor:
        assert self.mean is not None and self.std is not None, "set up or restored from the checkpoint first"
        return (x - self.mean) / self.std

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.mean, self.std = state_dict["mean"], state_dict["std"]


def test_inputs_are_prepared_as_the_dataset_prepared_its_training_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(DATASETS, "table", _Table)
    run_dir = train(tmp_path, *TINY, "--dataset", "table")
    _, _, test = _Table.raw_splits(200)
    inputs = tmp_path / "inputs.csv"
    inputs.write_text("a,b\n" + "".join(f"{a!r},{b!r}\n" for a, b in test.tensors[0].tolist()))

    from_split = read_csv(predict.main([str(run_dir), "--output", str(tmp_path / "split.csv")]))
    from_inputs = read_csv(predict.main([str(run_dir), "--inputs", str(inputs), "--output", str(tmp_path / "in.csv")]))
    outputs = [name for name in from_inputs[0] if name not in ("index", "a", "b")]
    assert outputs and len(from_inputs) == len(from_split) == len(test)
    for name in outputs:  # the raw rows of the test split predict exactly what the split itself predicts
        assert [float(row[name]) for row in from_inputs] == pytest.approx([float(row[name]) for row in from_split])
