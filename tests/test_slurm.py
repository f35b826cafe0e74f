"""The generated project on a real single-node SLURM cluster (tests/services.py starts it): scripts/slurm.sbatch
submits a 2-task CPU job that trains with DDP into one run folder, and a requeued job, by `scontrol requeue` or by
the SIGUSR1 that SLURM sends the batch script before the time limit, continues that run from its last checkpoint to
the planned step."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import assert_no_step_twice, copy_project, global_step, run_dirs
from services import SlurmCluster

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("services")]

SERIES = "deep_normal-synthetic_regression"
BATCHES = 4  # training batches per rank and epoch: with 2 ranks, 4 optimizer steps per epoch


@pytest.fixture(scope="module")
def project(rendered: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared render, copied once for this module (the jobs append their output to its logs/)."""
    return copy_project(rendered, tmp_path_factory.mktemp("slurm"))


@pytest.fixture
def cluster(slurm_cluster: SlurmCluster) -> Iterator[SlurmCluster]:
    """The session's cluster: SlurmCluster, emptied after each test (a job left running would hold both CPUs)."""
    yield slurm_cluster
    slurm_cluster.cancel_all()


def submit(cluster, project: Path, save_dir: Path, epochs: int) -> str:
    """scripts/slurm.sbatch 1 2 --accelerator cpu ...: one node, two DDP tasks, one CPU each."""
    env = {**os.environ, **cluster.env, "CPUS_PER_TASK": "1", "PYTHON": sys.executable}
    env.pop("TRAINER_RUN_ID", None)
    flags = ["--accelerator", "cpu", "--max_epochs", str(epochs), "--limit_train_batches", str(BATCHES),
             "--limit_val_batches", "1", "--limit_test_batches", "1", "--early_stopping_patience", "none",
             "--enable_progress_bar", "false", "--save_dir", str(save_dir)]
    proc = subprocess.run(["bash", "scripts/slurm.sbatch", "1", "2", *flags], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    match = re.search(r"Submitted batch job (\d+)", proc.stdout)
    assert match, proc.stdout
    return match.group(1)


def run_dir_of(save_dir: Path, job: str, epochs: int) -> Path:
    """The job's run folder: its job id, then the settings that differ from their defaults (submit's flags and
    the ones slurm.sbatch adds)."""
    settings = (f"accelerator=cpu_strategy=ddp_devices=2_max_epochs={epochs}_train_batches={BATCHES}_val_batches=1_"
                "test_batches=1_patience=none")
    return save_dir / SERIES / f"slurm-{job}_{settings}"


def output_of(project: Path, job: str) -> str:
    path = project / "logs" / f"slurm-{job}.out"
    return path.read_text(errors="replace") if path.is_file() else ""


def wait_for_checkpoint(cluster, project: Path, job: str, run_dir: Path, timeout: float = 300) -> int:
    """The global step of the run's first last.ckpt, once it exists (the job still running)."""
    deadline = time.monotonic() + timeout
    last = run_dir / "checkpoints" / "last.ckpt"
    while time.monotonic() < deadline:
        if last.is_file():
            return global_step(last)
        state = cluster.state(job)
        assert state in ("PENDING", "RUNNING", "CONFIGURING"), f"{state}\n{output_of(project, job)[-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint in {timeout} s\n{output_of(project, job)[-3000:]}\n{cluster.logs()}")


def finished(cluster, project: Path, job: str, timeout: float = 600) -> None:
    state = cluster.wait(job, "COMPLETED", timeout=timeout)
    assert state == "COMPLETED", output_of(project, job)[-3000:]


def test_a_two_task_cpu_job_trains_with_ddp_into_one_run_folder(cluster: SlurmCluster, project: Path,
                                                                tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    job = submit(cluster, project, save_dir, epochs=2)
    finished(cluster, project, job)
    run_dir = run_dir_of(save_dir, job, epochs=2)
    assert run_dirs(save_dir) == [run_dir], output_of(project, job)[-3000:]
    assert global_step(run_dir / "checkpoints" / "last.ckpt") == 2 * BATCHES
    assert f"Run directory: {run_dir}" in output_of(project, job)
    assert cluster.job(job)["NumTasks"] == "2"


@pytest.mark.parametrize("how", ["scontrol requeue", "SIGUSR1"])
def test_a_requeued_job_continues_its_run_to_the_planned_step(cluster: SlurmCluster, project: Path, tmp_path: Path,
                                                              how: str) -> None:
    save_dir = tmp_path / "logs"
    epochs = 40
    job = submit(cluster, project, save_dir, epochs=epochs)
    run_dir = run_dir_of(save_dir, job, epochs)
    wait_for_checkpoint(cluster, project, job, run_dir)
    if how == "SIGUSR1":  # what SLURM sends the batch script 90 s before the time limit: it requeues the job
        cluster.run("scancel", "--batch", "--signal=USR1", job)
    else:  # preemption, node failure, or an admin
        cluster.requeue(job)
    deadline = time.monotonic() + 120
    while cluster.job(job).get("Restarts", "0") == "0" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster.job(job).get("Restarts") == "1", output_of(project, job)[-3000:]
    interrupted_at = global_step(run_dir / "checkpoints" / "last.ckpt")
    finished(cluster, project, job)

    assert run_dirs(save_dir) == [run_dir]  # the same folder, no second run
    assert global_step(run_dir / "checkpoints" / "last.ckpt") == epochs * BATCHES
    assert interrupted_at < epochs * BATCHES  # it really was stopped before the end
    assert_no_step_twice(run_dir)
    output = output_of(project, job)
    assert "start 1 (requeues continue the same run)" in output
    assert f"Continuing {run_dir}" in output
    if how == "SIGUSR1":  # the batch script requeued the job; no task saved inside Lightning's SIGUSR1 handler
        assert "Handling auto-requeue signal" not in output, output[-3000:]
