"""Long runs survive what happens to them: kill -9 at any moment, Ctrl-C and SIGTERM, runs started from another
folder or several at once; the notebook draws a fresh run. Each run is a `python trainer.py` process of its own,
as a user starts it."""

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import (
    QUIET,
    ROOT,
    assert_no_step_twice,
    global_step,
    logged_steps,
    project_copy,
    run_dirs,
    run_script,
)
from nbclient import NotebookClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytestmark = pytest.mark.slow


def start(*args: str, cwd: Path = ROOT) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "trainer.py", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def checkpoint_step(run_dir: Path) -> int:
    """The step of the run's last.ckpt; 0 while there is none (or it is being replaced)."""
    try:
        return global_step(run_dir / "checkpoints" / "last.ckpt")
    except (OSError, RuntimeError, EOFError):
        return 0


def wait_until(proc: subprocess.Popen[str], save_dir: Path, at_least: int, timeout: float = 300) -> Path:
    """The run folder, once the run's last.ckpt holds `at_least` steps (the run still going)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended first:\n{proc.communicate()[1][-3000:]}"
        for last in save_dir.glob("*/*/checkpoints/last.ckpt"):
            if checkpoint_step(last.parent.parent) >= at_least:
                return last.parent.parent
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"no checkpoint at step {at_least} in {timeout} s")


def test_a_long_run_killed_at_random_moments_resumes_exactly(tmp_path: Path) -> None:
    """kill -9 three times (a random moment past a third, a half and three quarters of the run: mid-epoch, in
    validation, while a checkpoint is written), resumed each time: the run ends at the planned step in its one
    folder, and every epoch's validation is in the curve exactly once."""
    save_dir = tmp_path / "logs"
    epochs, batches = 40, 2
    args = ["--max_epochs", str(epochs), "--limit_train_batches", str(batches), "--limit_val_batches", "1",
            "--limit_test_batches", "1", "--save_dir", str(save_dir), "--early_stopping_patience", "none", *QUIET]
    rng = random.Random(20261130)
    victim = start(*args)
    run_dir: Path | None = None
    killed_at = []
    for fraction in (0.33, 0.5, 0.75):
        if run_dir is not None:
            victim = start("--resume", str(run_dir), *args)
        run_dir = wait_until(victim, save_dir, int(fraction * epochs * batches))
        time.sleep(rng.uniform(0.0, 0.06))  # anywhere within the next epoch or two
        assert victim.poll() is None, "the run ended before it could be killed"
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        killed_at.append(checkpoint_step(run_dir))
    assert run_dir is not None and killed_at == sorted(killed_at) and killed_at[-1] < epochs * batches

    proc = run_script("trainer.py", "--resume", str(run_dir), *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert run_dirs(save_dir) == [run_dir]
    assert global_step(run_dir / "checkpoints" / "last.ckpt") == epochs * batches
    assert_no_step_twice(run_dir)
    assert logged_steps(run_dir)["loss/val"] == [batches * epoch + batches - 1 for epoch in range(epochs)]


def test_kill_minus_nine_between_checkpoints_then_resume_finishes_at_the_planned_step(tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    epochs, batches = 6, 60
    args = ["--max_epochs", str(epochs), "--limit_train_batches", str(batches), "--batch_size", "8",
            "--limit_val_batches", "2", "--limit_test_batches", "2", "--save_dir", str(save_dir),
            "--early_stopping_patience", "1000", *QUIET]
    victim = start(*args)
    run_dir = wait_until(victim, save_dir, 1)
    time.sleep(0.3)  # into the next epoch, between checkpoints
    assert victim.poll() is None, "the run ended before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert 0 < checkpoint_step(run_dir) < epochs * batches

    proc = run_script("trainer.py", "--resume", str(run_dir), *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert run_dirs(save_dir) == [run_dir]  # the same version directory, no new one
    assert global_step(run_dir / "checkpoints" / "last.ckpt") == epochs * batches
    events = EventAccumulator(str(run_dir))  # reads the event files of both processes, in order
    events.Reload()
    train_steps = [event.step for event in events.Scalars("loss/train")]
    assert max(train_steps) >= epochs * batches - 1  # the curve continues across the restart to the end
    assert len(set(train_steps)) >= epochs - 1


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_save_and_print_the_command_that_resumes(tmp_path: Path, signum: int, code: int) -> None:
    save_dir = tmp_path / "logs"
    args = ["--max_epochs", "200", "--limit_train_batches", "10", "--batch_size", "8", "--limit_val_batches", "1",
            "--limit_test_batches", "1", "--save_dir", str(save_dir), "--early_stopping_patience", "none",
            "--enable_progress_bar", "false"]
    proc = start(*args)
    run_dir = wait_until(proc, save_dir, 1)
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
    resumed = run_script(*command[1:], "--max_epochs", str(finish))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run_dirs(save_dir) == [run_dir]
    assert global_step(run_dir / "checkpoints" / "last.ckpt") == finish * 10  # continued at the exact step
    assert_no_step_twice(run_dir)


def test_runs_started_from_another_folder_live_in_the_project(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    trained = run_script(str(project / "trainer.py"), "--max_epochs", "1", "--limit_train_batches", "2",
                         "--limit_val_batches", "1", "--limit_test_batches", "1", "--version", "from-elsewhere",
                         *QUIET, cwd=elsewhere)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert list(elsewhere.iterdir()) == []
    (run_dir,) = run_dirs(project / "logs")
    assert run_dir.name == "from-elsewhere"
    # predict.py finds it from yet another folder, through 'last'
    predicted = run_script(str(project / "predict.py"), "last", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert (run_dir / "predictions-test.csv").is_file()
    assert json.loads((run_dir / "run.json").read_text())["version"] == "from-elsewhere"


def test_four_runs_started_together_get_four_directories_and_checkpoints(tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    args = ["--max_epochs", "1", "--limit_train_batches", "3", "--limit_val_batches", "1",
            "--limit_test_batches", "1", "--save_dir", str(save_dir), *QUIET]
    procs = [start(*args) for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
    dirs = run_dirs(save_dir)
    assert len(dirs) == 4
    checkpoints = {ckpt.resolve() for run in dirs for ckpt in (run / "checkpoints").glob("*.ckpt")}
    assert all(list((run / "checkpoints").glob("*.ckpt")) for run in dirs)
    assert len(checkpoints) >= 8  # best and last, per run


def test_the_notebook_draws_a_fresh_run_and_skips_one_without_a_checkpoint(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    notebook_path = project / "notebooks" / "experiment.ipynb"
    if not notebook_path.is_file():
        pytest.skip("this project was made without the notebook")
    proc = run_script("trainer.py", "--max_epochs", "2", "--limit_train_batches", "5", *QUIET, cwd=project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = run_dirs(project / "logs")
    # a newer run that was killed before its first checkpoint: the notebook must skip it, not crash on it
    crashed = run_dir.parent / "crashed"
    crashed.mkdir()
    info = json.loads((run_dir / "run.json").read_text())
    (crashed / "run.json").write_text(json.dumps({**info, "started": time.time() + 60}))
    notebook = nbformat.read(notebook_path, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(project / "notebooks")}}).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(figures) >= 2  # predictions with their ±2σ band, and the loss curves
