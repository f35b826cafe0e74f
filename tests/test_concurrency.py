"""Several litscaffold commands at once on one project: they take turns (the second one says it
waits), none fails halfway because another ran, and every change ends up committed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from hostile_helpers import git, start


def _finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    return [(proc.wait(timeout=300), proc.communicate()[1]) for proc in procs]


def _clean(root: Path) -> bool:
    return git(root, "-c", "status.showUntrackedFiles=all", "status", "--porcelain") == ""


def test_six_adds_at_once_all_commit(project: Path) -> None:
    root = project
    names = [f"net{i}" for i in range(6)]
    results = _finish([start(("add", "model", name), root) for name in names])
    assert all(code == 0 for code, _ in results), results
    assert any("waiting for another litscaffold" in stderr for _, stderr in results)
    subjects = git(root, "log", "--format=%s").splitlines()
    assert sorted(s.split()[2] for s in subjects if s.startswith("Add model")) == names
    assert _clean(root)


def test_two_updates_at_once_one_updates_the_other_finds_it_current(
        old_project: Path, template_history) -> None:
    results = _finish([start(("update",), old_project) for _ in range(2)])
    assert [code for code, _ in results] == [0, 0], results
    assert _clean(old_project)
    subjects = git(old_project, "log", "--format=%s").splitlines()
    assert sum(s.startswith("Update project") for s in subjects) == 1
    assert run_cli("check", cwd=old_project).returncode == 0


def test_mixed_commands_at_once_take_turns(project: Path) -> None:
    root = project
    procs = [start(("add", "dataset", "sales"), root), start(("remove", "model", "mlp"), root),
             start(("add", "model", "net"), root)]
    results = _finish(procs)
    assert results[0][0] == 0 and results[2][0] == 0, results
    assert results[1][0] == 2 and "part of the project template" in results[1][1]
    assert _clean(root)
    shutil.rmtree(root)


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_two_new_projects_into_one_folder_one_wins_the_other_removes_nothing(tmp_path: Path) -> None:
    results = _finish([start(("new-project", "demo", "--defaults"), tmp_path) for _ in range(2)])
    assert sorted(code for code, _ in results) == [0, 1], results
    root = tmp_path / "demo"
    assert git(root, "log", "--format=%s").startswith("Scaffold demo") and _clean(root)
    for code, stderr in results:
        if code == 1:
            assert stderr.strip().startswith("error: ") and len(stderr.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]
