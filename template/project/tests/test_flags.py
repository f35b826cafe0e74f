"""The command line: every Trainer argument and every hyperparameter is a typed flag."""

import argparse
import inspect
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import pytest

import trainer
from model import MODELS
from util import cli, flags, hparams


def parse(*argv: str) -> cli.Setup:
    return cli.parse_args(list(argv), trainer.DEFAULTS)


def trainer_kwargs(*argv: str) -> dict:
    return trainer.trainer_arguments(parse(*argv))


def test_int_before_float_one_means_one_batch() -> None:
    assert trainer_kwargs("--limit_train_batches", "1")["limit_train_batches"] == 1
    assert type(trainer_kwargs("--limit_train_batches", "1")["limit_train_batches"]) is int
    assert type(trainer_kwargs("--limit_train_batches", "1.0")["limit_train_batches"]) is float
    assert trainer_kwargs("--overfit_batches", "0.25")["overfit_batches"] == 0.25
    # and Lightning reads it the same way: one batch, not 100% of them
    assert pl.Trainer(**trainer_kwargs("--limit_train_batches", "1", "--logger", "false")).limit_train_batches == 1


@pytest.mark.parametrize(("text", "expected"), [("0,1", [0, 1]), ("1,", [1]), ("2", 2), ("auto", "auto"), ("-1", -1)])
def test_devices(text: str, expected: object) -> None:
    assert trainer_kwargs("--devices", text)["devices"] == expected


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed", "32-true", "64", "bf16"])
def test_precision_values(precision: str) -> None:
    assert str(trainer_kwargs("--precision", precision)["precision"]) == precision


def test_bool_and_none() -> None:
    kwargs = trainer_kwargs("--enable_checkpointing", "false", "--benchmark", "true", "--max_epochs", "none",
                            "--fast_dev_run", "true", "--deterministic", "warn")
    assert kwargs["enable_checkpointing"] is False and kwargs["benchmark"] is True
    assert kwargs["max_epochs"] is None
    assert kwargs["fast_dev_run"] is True and kwargs["deterministic"] == "warn"
    assert trainer_kwargs("--fast_dev_run", "3")["fast_dev_run"] == 3


@pytest.mark.parametrize("argv", [
    ["--no_such_flag", "1"],  # unknown flag
    ["--max_epoch", "2"],  # abbreviations are not guessed
    ["--precision", "bf17"],
    ["--limit_train_batches", "some"],
    ["--enable_checkpointing", "maybe"],
    ["--model", "no_such_model"],
])
def test_bad_flags_are_one_line_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("trainer.py: error:") and len(err) <= 2, err
    assert "Traceback" not in "\n".join(err)


def test_unset_trainer_flags_keep_trainer_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    setup = parse()
    assert not any(hasattr(setup.args, name) for name in setup.trainer_flags)  # SUPPRESSed
    monkeypatch.setenv("PL_TRAINER_MAX_EPOCHS", "3")
    kwargs = trainer.trainer_arguments(setup)
    assert "max_epochs" not in kwargs
    assert pl.Trainer(**kwargs, logger=False).max_epochs == 3
    monkeypatch.delenv("PL_TRAINER_MAX_EPOCHS")
    assert trainer.trainer_arguments(setup)["max_epochs"] == trainer.DEFAULT_MAX_EPOCHS


def test_every_expressible_trainer_argument_is_a_flag() -> None:
    names = set(parse().trainer_flags)
    for name in inspect.signature(pl.Trainer.__init__).parameters:
        if name in ("self", "callbacks", "plugins"):  # objects, configured in trainer.py
            assert name not in names
        else:
            assert name in names, name


def test_gpus_flag_means_gpu_devices_and_ddp() -> None:
    kwargs = trainer_kwargs("--gpus", "0", "1")
    assert (kwargs["accelerator"], kwargs["devices"], kwargs["strategy"]) == ("gpu", [0, 1], "ddp")
    assert "strategy" not in trainer_kwargs("--gpus", "1")


def test_model_and_dataset_hyperparameters_are_typed_flags() -> None:
    setup = parse("--lr", "0.01", "--batch_size", "32")
    assert setup.model_hparams["lr"] == 0.01 and setup.data_hparams["batch_size"] == 32
    assert type(setup.data_hparams["batch_size"]) is int
    model_cls = MODELS[setup.model_name]
    own = {p.name for p, _, _ in hparams.init_parameters(model_cls)} - set(cli.DATA_WIRED)
    assert own <= set(setup.model_hparams)  # every hyperparameter (down to the base class) has a flag
    assert not set(cli.DATA_WIRED) & set(setup.model_hparams)  # data-wired ones come from the dataset
    with pytest.raises(SystemExit):
        parse("--lr", "fast")


def test_help_groups_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--help")
    out = capsys.readouterr().out
    setup = parse()
    headings = ["trainer:", f"model {setup.model_name}:", f"dataset {setup.data_name}:", "run:"]
    positions = [out.index(heading) for heading in headings]
    assert positions == sorted(positions)
    assert "--limit_train_batches" in out and "--lr " in out and "--batch_size" in out


def test_converters_follow_annotations() -> None:
    convert = flags.converter_for(float | int | None)
    assert convert("3") == 3 and type(convert("3")) is int and convert("0.5") == 0.5 and convert("None") is None
    assert flags.converter_for(tuple[int, ...])("64,32") == (64, 32)
    assert flags.converter_for(Literal["a", "b"])("b") == "b"
    assert flags.converter_for(Path)("x/y") == Path("x/y")
    assert flags.converter_for(bool)("yes") is True
    assert flags.converter_for(pl.Callback) is None  # object-only: no flag
    with pytest.raises(argparse.ArgumentTypeError):
        flags.converter_for(Literal["a", "b"])("c")


class _Parent:
    def __init__(self, width: int = 8, lr: float = 1e-3) -> None:
        pass


class _Child(_Parent):
    def __init__(self, input_shape: tuple, depth: int = 2, lr: float = 0.1, **kwargs) -> None:
        super().__init__(**kwargs)


def test_hyperparameters_follow_kwargs_to_the_base_class() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width")  # taken: the hyperparameter gets a prefixed flag
    found = hparams.add_hparam_flags(parser.add_argument_group("model"), _Child, "model", ("input_shape",))
    assert [(h.name, h.flag, h.default) for h in found] == [
        ("width", "--model_width", 8), ("lr", "--lr", 0.1), ("depth", "--depth", 2)]
    args = parser.parse_args(["--model_width", "4", "--lr", "0.5"])
    assert hparams.hparam_values(args, found) == {"width": 4, "lr": 0.5, "depth": 2}
    assert hparams.changed_from_defaults(hparams.hparam_values(args, found), found) == {"width": 4, "lr": 0.5}
