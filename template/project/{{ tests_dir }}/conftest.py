"""Shared helpers for the project's tests: real training runs on CPU, kept short.

Every run writes below pytest's temporary directory (never into the project's logs/).
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

import trainer

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--enable_progress_bar", "false", "--enable_model_summary", "false"]
# One short epoch: enough to write checkpoints and event files.
TINY = ["--max_epochs", "1", "--limit_train_batches", "2", "--limit_val_batches", "1", "--limit_test_batches", "1"]
# ... which differ from their defaults, so they name the run (after its timestamp and hyperparameters)
TINY_NAME = "max_epochs=1_train_batches=2_val_batches=1_test_batches=1"


def train(save_dir: Path, *flags: str) -> Path:
    """trainer.main with quiet output, writing below save_dir; returns the run directory."""
    run_dir = trainer.main(["--save_dir", str(save_dir), *QUIET, *flags])
    assert run_dir is not None, "the run wrote no folder"
    return run_dir


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a scalar in the run's TensorBoard event files."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def logged_hparams(run_dir: Path) -> dict[str, object]:
    """The hyperparameters TensorBoard's HPARAMS tab shows for the run."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    info = metadata.parse_session_start_info_plugin_data(content["_hparams_/session_start_info"])
    kinds = ("number_value", "bool_value", "string_value")
    return {name: getattr(value, next(kind for kind in kinds if value.HasField(kind)))
            for name, value in info.hparams.items()}


@pytest.fixture(scope="session")
def two_epoch_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real two-epoch run of the default model and dataset, with the CSV logger on (shared, read-only)."""
    save_dir = tmp_path_factory.mktemp("shared") / "logs"
    return train(save_dir, "--max_epochs", "2", "--csv")


# ---- runs in processes of their own (kill -9, signals, several at once) ----------------------------------------


def run_script(script: str, *args: str, cwd: Path = ROOT, timeout: float = 600,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """python <script> <args> in a process of its own, as a user runs it (no terminal)."""
    return subprocess.run([sys.executable, script, *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout, env=env, check=False)


def project_copy(where: Path) -> Path:
    """A copy of this project without its runs, for tests that need the default logs/ folder to themselves."""
    copy = where / "project"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("logs", ".git", "__pycache__", ".pytest_cache",
                                                              ".ruff_cache", ".mypy_cache", "*.ckpt"))
    return copy


def run_dirs(save_dir: Path) -> list[Path]:
    return sorted(path for path in save_dir.glob("*/*") if path.is_dir())


def global_step(checkpoint: Path) -> int:
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"])


def logged_steps(run_dir: Path) -> dict[str, list[int]]:
    """Every scalar's steps as written to disk, across all of the run's event files (nothing hidden: TensorBoard's
    reader would otherwise drop steps that go backwards)."""
    events = EventAccumulator(str(run_dir), purge_orphaned_data=False)
    events.Reload()
    # "epoch" is Lightning's own bookkeeping, written once for train and once for val at the same step.
    return {tag: [event.step for event in events.Scalars(tag)] for tag in events.Tags()["scalars"] if tag != "epoch"}


def assert_no_step_twice(run_dir: Path) -> None:
    for tag, steps in logged_steps(run_dir).items():
        assert len(steps) == len(set(steps)), f"{tag} logged a step twice: {steps}"


# ---- components made from the generator's blueprints -----------------------------------------------------------


def made_from(kind: str, blueprint: str) -> list[str]:
    """The project's models or datasets that `litscaffold add` made from `blueprint` (their answers files say)."""
    names = []
    for path in sorted(ROOT.glob(f".copier-answers.{kind}-*.yml")):
        text = path.read_text(encoding="utf-8")
        if re.search(rf"^blueprint: {re.escape(blueprint)}$", text, re.MULTILINE):
            names.append(path.name[len(f".copier-answers.{kind}-"):-len(".yml")])
    return names


def one_made_from(kind: str, blueprint: str) -> str:
    """A component made from `blueprint`, or the test is skipped saying how to add one."""
    found = made_from(kind, blueprint)
    if not found:
        pytest.skip(f"no {kind} made from the {blueprint} blueprint in this project "
                    f"(`litscaffold add {kind} NAME --blueprint {blueprint}` adds one)")
    return found[0]
