"""The seeds' workflows under stress: the notebook on a fresh run, kill -9 and resume, runs started together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("workflows")
    run_cli("new-project", "demo", "--defaults", cwd=where, check=True)
    return where / "demo"


def trainer(project: Path, *args: str) -> list[str]:
    return [sys.executable, "trainer.py", *args]


def run_dirs(save_dir: Path) -> list[Path]:
    return sorted(p for p in save_dir.glob("*/*") if p.is_dir())


def global_step(checkpoint: Path) -> int:
    import torch

    return int(torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"])


def test_notebook_runs_against_a_fresh_run_and_draws_its_figures(project: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    proc = subprocess.run(trainer(project, "--max_epochs", "2", "--limit_train_batches", "5"), cwd=project,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    notebook = nbformat.read(project / "notebooks" / "experiment.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(project / "notebooks")}}).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(figures) >= 2  # predictions with their ±2σ band, and the loss curves


def test_kill_minus_nine_then_resume_finishes_at_the_planned_step(project: Path, tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    epochs, batches = 6, 60
    planned = epochs * batches
    args = ["--max_epochs", str(epochs), "--limit_train_batches", str(batches), "--batch_size", "8",
            "--limit_val_batches", "2", "--limit_test_batches", "2", "--save_dir", str(save_dir),
            "--early_stopping_patience", "1000"]
    victim = subprocess.Popen(trainer(project, *args), cwd=project, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    last = None
    while time.monotonic() < deadline and victim.poll() is None:
        found = list(save_dir.glob("*/*/checkpoints/last.ckpt"))
        if found:
            last = found[0]
            time.sleep(0.3)  # into the next epoch, between checkpoints
            break
        time.sleep(0.05)
    assert last is not None and victim.poll() is None, "the run ended before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    run_dir = last.parent.parent
    killed_at = global_step(last)
    assert 0 < killed_at < planned

    proc = subprocess.run(trainer(project, "--resume", str(run_dir), *args), cwd=project, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert run_dirs(save_dir) == [run_dir]  # the same version directory, no new one
    assert global_step(run_dir / "checkpoints" / "last.ckpt") == planned

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))  # reads the event files of both processes, in order
    events.Reload()
    train_steps = [event.step for event in events.Scalars("loss/train")]
    assert max(train_steps) >= planned - 1  # the curve continues across the restart to the end
    assert len(set(train_steps)) >= epochs - 1


def test_four_runs_started_together_get_four_directories_and_checkpoints(project: Path, tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    args = ["--max_epochs", "1", "--limit_train_batches", "3", "--limit_val_batches", "1",
            "--limit_test_batches", "1", "--save_dir", str(save_dir)]
    procs = [subprocess.Popen(trainer(project, *args), cwd=project, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
    dirs = run_dirs(save_dir)
    assert len(dirs) == 4
    checkpoints = {ckpt.resolve() for run in dirs for ckpt in (run / "checkpoints").glob("*.ckpt")}
    assert all(list((run / "checkpoints").glob("*.ckpt")) for run in dirs)
    assert len(checkpoints) >= 8  # best and last, per run
