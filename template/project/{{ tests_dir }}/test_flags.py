"""The command line: every Trainer argument and every constructor argument is a typed flag (jsonargparse, LightningCLI's
own parser); YAML configs; objects chosen by name; help from docstrings; one-line errors."""

import inspect
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import yaml
from conftest import TINY, train
from lightning.pytorch.cli import LightningCLI
from torch import nn

import trainer
from data.base import WIRED
from model import MODELS
from util import cli


def parse(*argv: str) -> cli.Setup:
    return cli.parse(list(argv), trainer.DEFAULTS)


def trainer_kwargs(*argv: str) -> dict:
    return trainer.trainer_arguments(parse(*argv))


def test_int_before_float_one_means_one_batch() -> None:
    assert trainer_kwargs("--limit_train_batches", "1")["limit_train_batches"] == 1
    assert type(trainer_kwargs("--limit_train_batches", "1")["limit_train_batches"]) is int
    assert type(trainer_kwargs("--limit_train_batches", "1.0")["limit_train_batches"]) is float
    assert trainer_kwargs("--overfit_batches", "0.25")["overfit_batches"] == 0.25
    # and Lightning reads it the same way: one batch, not 100% of them
    assert pl.Trainer(**trainer_kwargs("--limit_train_batches", "1"), logger=False).limit_train_batches == 1


# Trainer values as LightningCLI types them (its parser is the one underneath): typed alike, flag by flag.
TRAINER_VALUES = [
    ("devices", "2"), ("devices", "[0,1]"), ("devices", "auto"), ("devices", "-1"), ("devices", "0,1"),
    ("precision", "bf16-mixed"), ("precision", "16-mixed"), ("precision", "32-true"), ("precision", "64"),
    ("precision", "bf16"), ("limit_train_batches", "1"), ("limit_train_batches", "1.0"), ("limit_val_batches", "0"),
    ("limit_val_batches", "0.5"), ("overfit_batches", "2"), ("val_check_interval", "1"),
    ("val_check_interval", "0.25"), ("max_epochs", "5"), ("max_epochs", "null"), ("max_steps", "-1"),
    ("fast_dev_run", "true"), ("fast_dev_run", "3"), ("deterministic", "warn"), ("deterministic", "true"),
    ("enable_checkpointing", "false"), ("benchmark", "true"), ("gradient_clip_val", "0.5"),
    ("gradient_clip_algorithm", "value"), ("accumulate_grad_batches", "4"), ("max_time", "00:12:00:00"),
    ("accelerator", "cpu"), ("strategy", "ddp"), ("profiler", "simple"), ("num_sanity_val_steps", "0"),
    ("log_every_n_steps", "10"), ("check_val_every_n_epoch", "2"), ("sync_batchnorm", "true"),
]


@pytest.fixture(scope="module")
def lightning_cli_parser() -> Any:
    """LightningCLI's own parser for the Trainer (nothing runs: its parse is all we take)."""
    cli_object = LightningCLI(pl.LightningModule, run=False, args=[], auto_configure_optimizers=False,
                              save_config_callback=None, trainer_defaults={"logger": False})
    return cli_object.parser


@pytest.mark.parametrize(("flag", "text"), TRAINER_VALUES)
def test_trainer_values_are_typed_as_lightning_cli_types_them(flag: str, text: str, lightning_cli_parser: Any) -> None:
    theirs = lightning_cli_parser.parse_args([f"--trainer.{flag}", text])["trainer"][flag]
    ours = parse(f"--{flag}", text).args[flag]
    assert ours == theirs and type(ours) is type(theirs)


@pytest.mark.parametrize("argv", [
    ["--no_such_flag", "1"],  # unknown flag
    ["--max_epoch", "2"],  # abbreviations are not guessed
    ["--precision", "bf17"],
    ["--limit_train_batches", "some"],
    ["--enable_checkpointing", "maybe"],
    ["--model", "no_such_model"],
    ["--lr", "fast"],
    ["--max_epochs", "none"],  # YAML's null is none; the line says so
    ["--config", "no_such_file.yaml"],
])
def test_bad_flags_are_one_line_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trainer.py: error:"), err
    if argv[0] in ("--precision", "--lr", "--max_epochs"):
        assert err[0].startswith(f"trainer.py: error: {argv[0]} {argv[1]}: expected"), err


def test_unset_trainer_flags_keep_trainer_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    setup = parse()
    assert setup.trainer_kwargs() == {}  # nothing given: Lightning's defaults and its PL_TRAINER_* variables apply
    monkeypatch.setenv("PL_TRAINER_MAX_EPOCHS", "3")
    kwargs = trainer.trainer_arguments(setup)
    assert "max_epochs" not in kwargs
    assert pl.Trainer(**kwargs, logger=False).max_epochs == 3
    monkeypatch.delenv("PL_TRAINER_MAX_EPOCHS")
    assert trainer.trainer_arguments(setup)["max_epochs"] == trainer.DEFAULT_MAX_EPOCHS


def test_every_expressible_trainer_argument_is_a_flag() -> None:
    names = set(parse().trainer_keys)
    for name in inspect.signature(pl.Trainer.__init__).parameters:
        if name in ("self", "callbacks", "plugins", "logger"):  # objects, set by trainer.py
            assert name not in names
        else:
            assert name in names, name


def test_gpus_flag_means_gpu_devices_and_ddp() -> None:
    kwargs = trainer_kwargs("--gpus", "[0,1]")
    assert (kwargs["accelerator"], kwargs["devices"], kwargs["strategy"]) == ("gpu", [0, 1], "ddp")
    assert "strategy" not in trainer_kwargs("--gpus", "[1]")


def test_model_and_dataset_arguments_are_typed_flags() -> None:
    setup = parse("--lr", "0.01", "--batch_size", "32")
    assert setup.model_hparams["lr"] == 0.01 and setup.data_hparams["batch_size"] == 32
    assert type(setup.data_hparams["batch_size"]) is int
    own = {name for name, _, _ in cli.init_arguments(MODELS[setup.model_name])} - set(WIRED)
    assert own <= set(setup.model_hparams)  # every argument (down to the base class) has a flag
    assert not set(WIRED) & set(setup.model_hparams)  # data-wired ones come from the dataset


def test_help_groups_flags_and_reads_docstrings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--help", "--model", "mlp")
    out = capsys.readouterr().out
    setup = parse("--model", "mlp")
    headings = ["trainer:", "model mlp:", f"dataset {setup.data_name}:", "run:"]
    positions = [out.index(heading) for heading in headings]
    assert positions == sorted(positions)
    assert "--limit_train_batches" in out and "--config CONFIG" in out and "--print_config" in out
    assert "Units per hidden layer." in out  # mlp's "Args:" section (Google style)


class _Parent(pl.LightningModule):
    """reST style.

    :param width: how wide the layers are
    :param lr: the learning rate
    """

    def __init__(self, width: int = 8, lr: float = 1e-3) -> None:
        super().__init__()


class _Child(_Parent):
    """NumPy style.

    Parameters
    ----------
    depth : int
        How many layers.
    """

    def __init__(self, input_shape: tuple, depth: int = 2, lr: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)


def test_constructor_arguments_follow_kwargs_to_the_base_class_and_take_help_from_any_docstring_style() -> None:
    assert [(name, default) for name, _, default in cli.init_arguments(_Child)] == [
        ("width", 8), ("lr", 0.1), ("input_shape", inspect.Parameter.empty), ("depth", 2)]
    docs = cli.docs_of(_Child)
    assert (docs["width"], docs["lr"], docs["depth"]) == ("how wide the layers are", "the learning rate",
                                                          "How many layers.")


def test_a_dataset_argument_named_like_another_flag_gets_a_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    from data import DATASETS

    class Seeded(DATASETS[trainer.DEFAULT_DATASET]):  # type: ignore[misc, valid-type]
        def __init__(self, seed: int = 3, hidden: int = 5) -> None:
            super().__init__(data_seed=seed)

    monkeypatch.setitem(DATASETS, "seeded", Seeded)
    setup = parse("--model", "mlp", "--dataset", "seeded", "--data_seed", "7", "--data_hidden", "9", "--seed", "1")
    assert setup.data_hparams["seed"] == 7 and setup.data_hparams["hidden"] == 9 and setup.args.seed == 1
    assert setup.data_keys["seed"] == "data_seed"


def test_a_config_file_sets_any_flag_and_later_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"model": "mlp", "hidden": 17, "max_epochs": 3, "lr": 0.05}))
    setup = parse("--config", str(config), "--lr", "0.2")
    assert setup.model_name == "mlp" and setup.model_hparams["hidden"] == 17
    assert setup.model_hparams["lr"] == 0.2 and trainer.trainer_arguments(setup)["max_epochs"] == 3


def test_print_config_prints_every_flag_as_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse("--model", "mlp", "--hidden", "12", "--print_config")
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"] == "mlp" and printed["hidden"] == 12 and "max_epochs" in printed


def test_a_run_trains_again_from_its_own_config(tmp_path: Path) -> None:
    first = train(tmp_path, *TINY, "--model", "mlp", "--hidden", "12", "--lr", "0.02")
    config = yaml.safe_load((first / "config.yaml").read_text())
    assert config["hidden"] == 12 and config["lr"] == 0.02 and "version" not in config and "save_dir" not in config
    again = train(tmp_path, "--config", str(first / "config.yaml"))
    assert again != first and again.parent == first.parent  # a new run of the same series
    assert again.name.split("_", 1)[1] == first.name.split("_", 1)[1]  # named by the same settings
    import torch

    weights = [torch.load(path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for path in (first, again)]
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])  # the same run, step for step


class _Net(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.width = width


def test_object_arguments_are_chosen_by_name_with_their_own_flags() -> None:
    typed = cli.flag_type(nn.Module, inspect.Parameter.empty)
    assert typed is nn.Module  # jsonargparse's class_path/init_args
    import torch
    from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

    # Hydra-style annotations (a partial waiting for the parameters) read as LightningCLI's callables
    assert cli.flag_type(torch.optim.Optimizer, inspect.Parameter.empty) is OptimizerCallable
    assert cli.flag_type(torch.optim.lr_scheduler, None) == LRSchedulerCallable | None
