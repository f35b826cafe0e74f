"""Shared helpers for the project's tests: real training runs on CPU, kept short.

Every run writes below pytest's temporary directory (never into the project's logs/).
"""

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

import trainer

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--enable_progress_bar", "false", "--enable_model_summary", "false"]
# One short epoch: enough to write checkpoints and event files.
TINY = ["--max_epochs", "1", "--limit_train_batches", "2", "--limit_val_batches", "1", "--limit_test_batches", "1"]
# ... which differ from their defaults, so they name the run (after its timestamp and hyperparameters)
TINY_NAME = "max_epochs=1_train_batches=2_val_batches=1_test_batches=1"


def train(save_dir: Path, *flags: str) -> Path | None:
    """trainer.main with quiet output, writing below save_dir; returns the run directory."""
    return trainer.main(["--save_dir", str(save_dir), *QUIET, *flags])


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
    run_dir = train(save_dir, "--max_epochs", "2", "--csv")
    assert run_dir is not None
    return run_dir
