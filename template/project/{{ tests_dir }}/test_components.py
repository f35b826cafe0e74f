"""Every model and dataset the registries hold, and every pair of them.

Compatible pairs train through the real trainer (a fast_dev_run on each dataset's tiny offline instance);
incompatible pairs are refused with the model's reason. A new file in model/ or data/ joins these tests
without any edit. Pairs of the project's own kind (BaseModel, BaseDataModule) are tested here: they say which
datasets suit them and have tiny offline instances. Plain Lightning classes are covered by test_foreign.py.
"""

import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import project_copy
from lightning.pytorch import LightningDataModule, LightningModule

import trainer
from data import DATASETS
from data.base import BaseDataModule, Task
from model import MODELS
from model.base import BaseModel
from util.registry import Components

ROOT = Path(__file__).resolve().parents[1]
OWN_MODEL_CLASSES: dict[str, type[BaseModel]] = {name: cls for name, cls in MODELS.items() if issubclass(cls, BaseModel)}
OWN_DATA_CLASSES: dict[str, type[BaseDataModule]] = {
    name: cls for name, cls in DATASETS.items() if issubclass(cls, BaseDataModule)}
OWN_MODELS, OWN_DATASETS = sorted(OWN_MODEL_CLASSES), sorted(OWN_DATA_CLASSES)
PAIRS = [(model_name, data_name) for model_name in OWN_MODELS for data_name in OWN_DATASETS]


# Pairs with a class of your own (plain Lightning classes: test_foreign.py shows what they may be). Such a class
# declares no compatibility, so a pair that cannot train is skipped with its reason; each class of yours must train
# with at least one partner of this project.
FOREIGN_PAIRS = [(model_name, data_name) for model_name in sorted(MODELS) for data_name in sorted(DATASETS)
                 if (model_name, data_name) not in PAIRS]
_foreign_results: dict[tuple[str, str], str | None] = {}  # pair -> why it did not train (None: it trained)


def as_flags(hparams: dict[str, Any]) -> list[str]:
    argv = []
    for name, value in hparams.items():
        argv += [f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)]
    return argv


def first_batch(datamodule: BaseDataModule, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    datamodule.setup("fit")
    loader = datamodule.train_dataloader() if split == "train" else datamodule.val_dataloader()
    return next(iter(loader))


@pytest.mark.parametrize(("model_name", "data_name"), PAIRS)
def test_pair_trains_or_is_refused_with_a_reason(model_name: str, data_name: str, tmp_path: Path, capsys) -> None:
    data_hparams = OWN_DATA_CLASSES[data_name].smoke_test_hparams(tmp_path)
    info = OWN_DATA_CLASSES[data_name](**data_hparams).info
    argv = ["--model", model_name, "--dataset", data_name, *as_flags(data_hparams), "--fast_dev_run", "true"]
    argv += ["--save_dir", str(tmp_path / "logs")]
    reason = OWN_MODEL_CLASSES[model_name].incompatibility(info)
    if reason:
        with pytest.raises(SystemExit):
            trainer.main(argv)
        assert reason in capsys.readouterr().err  # the user is told why
    else:
        assert trainer.main(argv) is None  # trained one batch and tested; a fast_dev_run writes no run
        assert not (tmp_path / "logs").exists()


def _fast_dev_run(model_name: str, data_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str | None:
    """Why a fast_dev_run of the pair fails, or None when it trains (cached: each pair runs once)."""
    if (model_name, data_name) not in _foreign_results:
        smoke = getattr(DATASETS[data_name], "smoke_test_hparams", None)
        argv = ["--model", model_name, "--dataset", data_name, *as_flags(smoke(tmp_path) if smoke else {}),
                "--fast_dev_run", "true", "--save_dir", str(tmp_path / "logs")]
        try:
            trainer.main(argv)
            why = None
        except SystemExit:
            why = capsys.readouterr().err.strip().splitlines()[-1].removeprefix("trainer.py: error: ")
        except Exception as problem:  # noqa: BLE001 - a class of yours failing on this partner: the reason is kept
            why = f"{type(problem).__name__}: {' '.join(str(problem).split())[:200]}"
        _foreign_results[(model_name, data_name)] = why
    return _foreign_results[(model_name, data_name)]


@pytest.mark.parametrize(("model_name", "data_name"), FOREIGN_PAIRS)
def test_a_pair_with_a_class_of_yours_trains_or_is_skipped_with_its_reason(model_name: str, data_name: str,
                                                                          tmp_path: Path, capsys) -> None:
    if model_name in MODELS.unusable or data_name in DATASETS.unusable:
        pytest.skip(MODELS.unusable.get(model_name) or DATASETS.unusable[data_name])
    why = _fast_dev_run(model_name, data_name, tmp_path, capsys)
    if why is not None:
        pytest.skip(f"{model_name} x {data_name} cannot train: {why}")


@pytest.mark.parametrize("name", sorted({m for m, _ in FOREIGN_PAIRS} - set(OWN_MODELS))
                         + sorted({d for _, d in FOREIGN_PAIRS} - set(OWN_DATASETS)))
def test_every_class_of_yours_trains_with_some_partner(name: str, tmp_path: Path, capsys) -> None:
    pairs = [pair for pair in FOREIGN_PAIRS if name in pair and not (set(pair) & (set(MODELS.unusable) |
                                                                                   set(DATASETS.unusable)))]
    reasons = [why for pair in pairs if (why := _fast_dev_run(*pair, tmp_path, capsys)) is not None]
    if reasons and all(why.startswith("the following arguments are required") for why in reasons):
        pytest.skip(f"{name}: {reasons[0]}, which have no defaults: a test cannot choose them (train it with "
                    "--config FILE, or give them defaults)")
    assert len(reasons) < len(pairs), f"{name} trains with nothing here: " + "; ".join(reasons)


@pytest.mark.parametrize(("model_name", "data_name"), PAIRS)
def test_compatible_pair_learns_and_predicts_named_columns(model_name: str, data_name: str, tmp_path: Path) -> None:
    datamodule = OWN_DATA_CLASSES[data_name](**OWN_DATA_CLASSES[data_name].smoke_test_hparams(tmp_path))
    info = datamodule.info
    if OWN_MODEL_CLASSES[model_name].incompatibility(info):
        pytest.skip("incompatible pair (refusal covered above)")
    torch.manual_seed(0)
    model = OWN_MODEL_CLASSES[model_name](input_shape=info.input_shape, num_outputs=info.num_outputs, task=info.task)
    batch = first_batch(datamodule)

    configured = model.configure_optimizers()  # an optimizer, or a dict with its lr schedule (deep_normal's plateau)
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    assert isinstance(optimizer, torch.optim.Optimizer)
    losses = []
    for _ in range(15):  # the same batch again and again: any working model fits it better
        loss, metrics = model.step(batch)
        assert loss.dim() == 0 and torch.isfinite(loss)
        assert all(value.dim() == 0 for value in metrics.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]

    model.eval()
    with torch.inference_mode():
        columns = model.predict_step(batch, 0)
    assert columns and all(isinstance(name, str) for name in columns)
    for name, values in columns.items():
        assert values.shape[0] == len(batch[0]) and values.dim() in (1, 2), name


@pytest.mark.parametrize("data_name", OWN_DATASETS)
def test_dataset_delivers_what_its_info_promises(data_name: str, tmp_path: Path) -> None:
    hparams = OWN_DATA_CLASSES[data_name].smoke_test_hparams(tmp_path)
    datamodule = OWN_DATA_CLASSES[data_name](**hparams)
    info = datamodule.info  # available before any data is loaded
    assert datamodule.train_set is None
    assert info.task in typing.get_args(Task)
    assert info.num_outputs >= 1 and all(isinstance(size, int) and size > 0 for size in info.input_shape)

    x, y = first_batch(datamodule)
    assert x.dtype == torch.float32 and tuple(x.shape[1:]) == info.input_shape
    if info.task == "classification":
        assert y.dtype == torch.int64 and y.dim() == 1 and 0 <= int(y.min()) and int(y.max()) < info.num_outputs
    elif info.task == "regression":
        assert y.dtype == torch.float32 and y.reshape(len(y), -1).shape[1] == info.num_outputs
    else:
        assert torch.equal(x, y)
    for loader in (datamodule.val_dataloader(), datamodule.test_dataloader(), datamodule.predict_dataloader()):
        assert len(loader) >= 1

    # Same hyperparameters, same data: runs differ only by what the user changed.
    again = OWN_DATA_CLASSES[data_name](**hparams)
    assert torch.equal(first_batch(again, "val")[0], first_batch(datamodule, "val")[0])


@pytest.mark.parametrize("data_name", OWN_DATASETS)
def test_a_checkpoint_restores_how_inputs_are_prepared(data_name: str, tmp_path: Path) -> None:
    # predict.py --inputs prepares raw rows with a datamodule restored from the checkpoint (its state_dict),
    # not one that has read the training data again.
    hparams = OWN_DATA_CLASSES[data_name].smoke_test_hparams(tmp_path)
    trained = OWN_DATA_CLASSES[data_name](**hparams)
    trained.setup("fit")
    restored = OWN_DATA_CLASSES[data_name](**hparams)
    restored.load_state_dict(trained.state_dict())
    raw = torch.rand(4, *trained.info.input_shape, generator=torch.Generator().manual_seed(0)) * 100
    assert torch.allclose(restored.transform_inputs(raw), trained.transform_inputs(raw))
    assert restored.train_set is None  # no data was loaded for it


@pytest.mark.parametrize(("package", "registry", "base"), [("model", MODELS, LightningModule),
                                                            ("data", DATASETS, LightningDataModule)])
def test_every_module_is_registered(package: str, registry: Components, base: type) -> None:
    modules = {path.stem for path in (ROOT / package).glob("*.py") if path.stem != "base" and not path.stem.startswith("_")}
    missing = sorted(modules - set(registry))
    assert not missing, "; ".join(registry.unusable.get(name, f"{package}/{name}.py is not registered") for name in missing)
    for cls in registry.values():
        assert issubclass(cls, base)


@pytest.mark.parametrize("package", ["model", "data"])
def test_a_broken_module_is_named(package: str, tmp_path: Path) -> None:
    copy = project_copy(tmp_path)  # all of it: a module of an adopted repository's imports its code from beside
    (copy / package / "broken.py").write_text("import a_module_that_does_not_exist\n")
    result = subprocess.run(
        [sys.executable, "-c", f"import {package}"], cwd=copy, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert f"{package}/broken.py could not be imported" in result.stderr.strip().splitlines()[-1]


def _one_dataset_per_model() -> list[tuple[str, str]]:
    """Each of the project's models with the first of its datasets it can learn."""
    pairs = []
    for model_name in OWN_MODELS:
        for data_name in OWN_DATASETS:
            info = OWN_DATA_CLASSES[data_name](**OWN_DATA_CLASSES[data_name].smoke_test_hparams(Path("."))).info
            if not OWN_MODEL_CLASSES[model_name].incompatibility(info):
                pairs.append((model_name, data_name))
                break
    return pairs


@pytest.mark.parametrize(("model_name", "data_name"), _one_dataset_per_model())
def test_every_model_trains_a_real_epoch(model_name: str, data_name: str, tmp_path: Path) -> None:
    """A real run (folder, checkpoints, test of the best one) of every model, on a dataset it learns."""
    data_hparams = OWN_DATA_CLASSES[data_name].smoke_test_hparams(tmp_path)
    run_dir = trainer.main(["--model", model_name, "--dataset", data_name, *as_flags(data_hparams),
                            "--save_dir", str(tmp_path / "logs"), "--max_epochs", "1", "--limit_train_batches", "4",
                            "--limit_val_batches", "1", "--limit_test_batches", "1", "--enable_progress_bar", "false",
                            "--enable_model_summary", "false"])
    assert run_dir is not None and (run_dir / "run.json").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((run_dir / "run.json").read_text())["best_checkpoint"]  # its best checkpoint was tested
