"""The seeds' workflows under stress: the notebook on a fresh run, long runs killed with kill -9 at random
moments, Ctrl-C and SIGTERM, runs started from another folder, runs started together."""

from __future__ import annotations

import json
import os
import random
import shlex
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

    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"])


def logged_steps(run_dir: Path) -> dict[str, list[int]]:
    """Every scalar's steps as written to disk, across all of the run's event files (nothing hidden: TensorBoard's
    reader would otherwise drop steps that go backwards)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), purge_orphaned_data=False)
    events.Reload()
    # "epoch" is Lightning's own bookkeeping, written once for train and once for val at the same step.
    return {tag: [event.step for event in events.Scalars(tag)] for tag in events.Tags()["scalars"] if tag != "epoch"}


def assert_no_step_twice(run_dir: Path) -> None:
    for tag, steps in logged_steps(run_dir).items():
        assert len(steps) == len(set(steps)), f"{tag} logged a step twice: {steps}"


def start_and_wait_for_checkpoint(project: Path, args: list[str], save_dir: Path) -> tuple[subprocess.Popen, Path]:
    """Start a run; return it once its first last.ckpt exists (the run still going) and the run folder."""
    proc = subprocess.Popen(trainer(project, *args), cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(save_dir.glob("*/*/checkpoints/last.ckpt"))
        if found:
            return proc, found[0].parent.parent
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no checkpoint before the run ended: {proc.communicate()[1][-3000:]}")


def test_notebook_runs_against_a_fresh_run_and_draws_its_figures(project: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    proc = subprocess.run(trainer(project, "--max_epochs", "2", "--limit_train_batches", "5"), cwd=project,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # a newer run that was killed before its first checkpoint: the notebook must skip it, not crash on it
    crashed = project / "logs" / "deep_normal-synthetic_regression" / "crashed"
    crashed.mkdir(parents=True)
    (crashed / "run.json").write_text(json.dumps({"model": "deep_normal", "dataset": "synthetic_regression",
                                                  "started": time.time() + 60}))
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


def test_a_long_run_killed_at_random_moments_resumes_exactly(project: Path, tmp_path: Path) -> None:
    """300 short epochs, kill -9 three times at random moments, resumed each time: it ends at the planned step
    in its one folder, and no metric has a step logged twice."""
    save_dir = tmp_path / "logs"
    epochs, batches = 300, 2
    args = ["--max_epochs", str(epochs), "--limit_train_batches", str(batches), "--limit_val_batches", "1",
            "--limit_test_batches", "1", "--save_dir", str(save_dir), "--early_stopping_patience", "none",
            "--enable_progress_bar", "false", "--enable_model_summary", "false"]
    rng = random.Random(20261130)
    victim, run_dir = start_and_wait_for_checkpoint(project, args, save_dir)
    killed_at = []
    for kill in range(3):
        if kill:  # resume, then wait for it to get past its checkpoint before the next kill
            resumed_from = global_step(run_dir / "checkpoints" / "last.ckpt")
            victim = subprocess.Popen(trainer(project, "--resume", str(run_dir), *args), cwd=project,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 300
            while global_step(run_dir / "checkpoints" / "last.ckpt") <= resumed_from and time.monotonic() < deadline:
                assert victim.poll() is None, victim.communicate()[1][-3000:]
                time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 2.0))  # anywhere: mid-epoch, in validation, while a checkpoint is written
        assert victim.poll() is None, "the run ended before it could be killed"
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        killed_at.append(global_step(run_dir / "checkpoints" / "last.ckpt"))
    assert killed_at == sorted(killed_at) and killed_at[-1] < epochs * batches

    proc = subprocess.run(trainer(project, "--resume", str(run_dir), *args), cwd=project, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert run_dirs(save_dir) == [run_dir]
    assert global_step(run_dir / "checkpoints" / "last.ckpt") == epochs * batches
    steps = logged_steps(run_dir)
    assert_no_step_twice(run_dir)
    # every epoch's validation is in the curve exactly once: the killed epochs were trained again, once
    assert steps["loss/val"] == [batches * epoch + batches - 1 for epoch in range(epochs)]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_save_and_print_the_command_that_resumes(project: Path, tmp_path: Path,
                                                                     signum: int, code: int) -> None:
    save_dir = tmp_path / "logs"
    args = ["--max_epochs", "200", "--limit_train_batches", "10", "--batch_size", "8", "--limit_val_batches", "1",
            "--limit_test_batches", "1", "--save_dir", str(save_dir), "--early_stopping_patience", "none",
            "--enable_progress_bar", "false"]
    proc, run_dir = start_and_wait_for_checkpoint(project, args, save_dir)
    time.sleep(0.5)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-3000:]
    resume_lines = [line for line in err.splitlines() if line.startswith("Resume with: ")]
    assert resume_lines == [f"Resume with: python trainer.py --resume {run_dir}"], err[-3000:]
    stopped_at = global_step(run_dir / "checkpoints" / "last.ckpt")
    assert 0 < stopped_at < 200 * 10

    # the printed command, as a user would paste it (with a shorter bound, to keep the test short)
    command = shlex.split(resume_lines[0].removeprefix("Resume with: "))
    finish = int(stopped_at // 10) + 3
    resumed = subprocess.run([sys.executable, *command[1:], "--max_epochs", str(finish)], cwd=project,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run_dirs(save_dir) == [run_dir]
    assert global_step(run_dir / "checkpoints" / "last.ckpt") == finish * 10  # continued at the exact step
    assert_no_step_twice(run_dir)


def test_runs_started_from_another_folder_live_in_the_project(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    logs = project / "logs"
    before = set(logs.glob("*/*")) if logs.is_dir() else set()
    trained = subprocess.run([sys.executable, str(project / "trainer.py"), "--max_epochs", "1",
                              "--limit_train_batches", "2", "--limit_val_batches", "1", "--limit_test_batches", "1",
                              "--version", "from-elsewhere"], cwd=elsewhere, capture_output=True, text=True,
                             timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert list(elsewhere.iterdir()) == []
    (run_dir,) = set(logs.glob("*/*")) - before
    assert run_dir.name == "from-elsewhere"
    # predict.py finds it from yet another folder, through 'last'
    predicted = subprocess.run([sys.executable, str(project / "predict.py"), "last"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=600)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert (run_dir / "predictions-test.csv").is_file()
    assert json.loads((run_dir / "run.json").read_text())["version"] == "from-elsewhere"


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
