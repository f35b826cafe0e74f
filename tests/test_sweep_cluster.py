"""The generated sweep.py on real shared storage: a study on a real PostgreSQL server with two local workers,
and scripts/slurm-sweep.sbatch as a 2-task job array on the single-node SLURM cluster (tests/services.py), both
tasks workers of one study. The local sweep (workers, resume, pruning, grid, bad input) is tested by the
generated project's own tests/test_sweep.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from conftest import copy_project
from services import PostgresServer, SlurmCluster

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("services")]

TRIAL = ["--max_epochs", "1", "--limit_train_batches", "2", "--limit_val_batches", "1", "--limit_test_batches", "1",
         "--enable_progress_bar", "false", "--enable_model_summary", "false"]


@pytest.fixture(scope="module")
def project(rendered: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared render, copied once for this module (the array's tasks append their output to its logs/)."""
    return copy_project(rendered, tmp_path_factory.mktemp("sweeps"))


def finished_trials(study: optuna.Study) -> dict[str, int]:
    found: dict[str, int] = {}
    for trial in study.trials:
        found[trial.state.name] = found.get(trial.state.name, 0) + 1
    return found


def test_a_study_on_a_real_postgresql_server(project: Path, postgres_server: PostgresServer,
                                             tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    proc = subprocess.run([sys.executable, "sweep.py", "--storage", postgres_server.url, "--study", "pg",
                           "--trials", "3", "--workers", "2", "--lr", "1e-3:1e-1:log", "--save_dir", str(save_dir),
                           *TRIAL], cwd=project, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study = optuna.load_study(study_name="pg", storage=postgres_server.url)
    # running trials count toward --trials; two workers ending trials in the same instant may still both start
    # one for the last place: one trial more, never a failure
    assert set(finished_trials(study)) == {"COMPLETE"} and 3 <= finished_trials(study)["COMPLETE"] <= 4
    assert len({trial.user_attrs["worker"] for trial in study.trials}) == 2
    for trial in study.trials:
        run_dir = Path(trial.user_attrs["run_dir"])
        assert run_dir.parent == save_dir / "pg" and (run_dir / "run.json").is_file()
    assert not (save_dir / "pg" / "study.db").exists()  # the study lives in PostgreSQL only
    assert "Train the best again: python trainer.py" in proc.stdout


def test_an_unreachable_postgresql_is_refused_in_one_line(project: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "sweep.py", "--storage", "postgresql+psycopg2://postgres@127.0.0.1:9/x",
                           "--lr", "1e-3:1e-1", "--save_dir", str(tmp_path / "logs")], cwd=project,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("sweep.py: error: --storage postgresql+psycopg2://")
    assert "Traceback" not in proc.stderr and not (tmp_path / "logs").exists()


@pytest.fixture
def cluster(slurm_cluster: SlurmCluster) -> Iterator[SlurmCluster]:
    yield slurm_cluster
    slurm_cluster.cancel_all()


def test_a_slurm_job_array_is_two_workers_of_one_study(project: Path, cluster: SlurmCluster, tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    env = {**os.environ, **cluster.env, "CPUS_PER_TASK": "1", "PYTHON": sys.executable}
    env.pop("TRAINER_RUN_ID", None)
    proc = subprocess.run(["bash", "scripts/slurm-sweep.sbatch", "2", "--study", "arr", "--trials", "4",
                           "--hidden", "4,8,16,32", "--save_dir", str(save_dir), *TRIAL], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = re.search(r"Submitted batch job (\d+)", proc.stdout).group(1)
    deadline = time.monotonic() + 600
    while cluster.run("squeue", "--noheader", "--jobs", job).strip():
        assert time.monotonic() < deadline, cluster.run("squeue", "--jobs", job)
        time.sleep(1)
    outputs = {task: project / "logs" / f"slurm-sweep-{job}_{task}.out" for task in (0, 1)}
    shown = "\n".join(path.read_text(errors="replace")[-2000:] for path in outputs.values() if path.is_file())
    for task in (0, 1):
        assert cluster.state(f"{job}_{task}") == "COMPLETED", shown
    study = optuna.load_study(study_name="arr", storage=f"sqlite:///{save_dir / 'arr' / 'study.db'}")
    assert set(finished_trials(study)) == {"COMPLETE"} and 4 <= finished_trials(study)["COMPLETE"] <= 5, shown
    assert len({trial.user_attrs["worker"] for trial in study.trials}) == 2, shown  # both tasks ran trials
    for trial in study.trials:
        run_dir = Path(trial.user_attrs["run_dir"])
        assert run_dir.parent == save_dir / "arr"
        assert not run_dir.name.startswith("slurm-")  # a trial is a run of the study, not of the array task
    assert all("slurm-sweep.sbatch: array job" in path.read_text() for path in outputs.values())
