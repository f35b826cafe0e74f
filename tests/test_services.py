"""The real services the generator's tests rely on: jobs run, requeue restarts them, nothing leaks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import services
from services import PostgresServer, SlurmCluster, pid_alive, processes_using

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("services")]


def test_two_task_job_completes(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    script = tmp_path / "hello.sbatch"
    # 1 node x 2 tasks; --cpus-per-task=1 because the node has 2 cores in all.
    script.write_text("#!/bin/bash\n#SBATCH --nodes=1 --ntasks=2 --cpus-per-task=1 --output=out.txt\n"
                      "srun bash -c 'echo task $SLURM_PROCID on $(hostname)'\n")
    job = slurm_cluster.sbatch([str(script)], cwd=tmp_path)
    assert slurm_cluster.wait(job, "COMPLETED", timeout=60) == "COMPLETED"
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert sorted(lines) == [f"task {i} on {slurm_cluster.node}" for i in (0, 1)]


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.2)


def test_requeue_reruns_the_script_with_the_same_job_id(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    log = tmp_path / "ticks.txt"
    script = tmp_path / "ticks.sbatch"
    script.write_text("#!/bin/bash\n#SBATCH --ntasks=1 --output=out.txt\n"
                      "echo start ${SLURM_RESTART_COUNT:-0}\n"
                      f"for i in $(seq 60); do echo $SLURM_JOB_ID ${{SLURM_RESTART_COUNT:-0}} >> {log}; sleep 1; done\n")
    job = slurm_cluster.sbatch([str(script)], cwd=tmp_path)
    _wait_for(lambda: _lines(log), 30, "the first line")
    slurm_cluster.requeue(job)
    assert slurm_cluster.wait(job, "PENDING", timeout=15) == "PENDING"
    # cred_expire=5 keeps the job ineligible 6 s, then the scheduler (every 1 s) starts it again.
    _wait_for(lambda: any(restarts == "1" for _, restarts in _lines(log)), 45, "a line from the rerun")
    assert slurm_cluster.state(job) == "RUNNING"
    assert slurm_cluster.job(job)["Restarts"] == "1"
    lines = _lines(log)
    assert {job_id for job_id, _ in lines} == {job}
    counts = [restarts for _, restarts in lines]
    assert counts == sorted(counts) and counts[0] == "0"   # the first run stopped before the second began
    # The rerun truncated --output (sbatch's default --open-mode=truncate): the first run's lines are gone.
    assert (tmp_path / "out.txt").read_text().splitlines()[0] == "start 1"
    slurm_cluster.cancel(job)
    assert slurm_cluster.wait(job, "CANCELLED", timeout=15) == "CANCELLED"


def test_cluster_leaves_no_process_behind(tmp_path: Path) -> None:
    if reason := services.skip_reason_slurm():
        pytest.skip(reason)
    with services.slurm_cluster() as cluster:   # a second cluster beside the session's one
        root = cluster.root
        daemons = [int((root / name).read_text()) for name in ("slurmctld.pid", "slurmd.pid")]
        script = tmp_path / "sleep.sbatch"
        script.write_text("#!/bin/bash\n#SBATCH --ntasks=1 --output=out.txt\nsleep 300\n")
        job = cluster.sbatch([str(script)], cwd=tmp_path)
        cluster.wait(job, "RUNNING", timeout=30)   # leave with a job still running
        users = processes_using(root)   # daemons, munged's clients, slurmstepd, the job's shell and sleep
        assert len(users) >= 4
    assert not [pid for pid in daemons if pid_alive(pid)], "slurmctld/slurmd still running"
    assert not [pid for pid in users if pid_alive(pid)], "a job step or job process survived"
    assert not root.exists()


def test_postgres_runs_sql(postgres_server: PostgresServer) -> None:
    assert postgres_server.url == f"postgresql+psycopg2://postgres@127.0.0.1:{postgres_server.port}/test"
    postgres_server.psql("CREATE TABLE runs (id serial PRIMARY KEY, loss real)")
    postgres_server.psql("INSERT INTO runs (loss) VALUES (0.5), (0.25)")
    assert postgres_server.psql("SELECT count(*), min(loss) FROM runs").strip() == "2|0.25"


def test_postgres_stops_on_exit() -> None:
    if reason := services.skip_reason_postgres():
        pytest.skip(reason)
    with services.postgres_server() as server:
        server.psql("SELECT 1")
        pid, root = server.pid, server.root
        assert pid_alive(pid)
    assert not pid_alive(pid)
    assert not root.exists()
