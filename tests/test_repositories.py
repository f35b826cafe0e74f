"""Repositories as users have them (issue 19 item 7): a project inside a monorepo, a global excludesFile that
ignores `data/`, `*.py` or `*.ipynb`, core.autocrlf=true, and `logs` as a symlink to a scratch disk. Each is a
real repository in tmp_path; git's global config is a temporary file (GIT_CONFIG_GLOBAL), never ~/.gitconfig."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ADDED_FILE, DROPPED_FILE, TemplateHistory, run_cli, tree_digest
from hostile_helpers import commit_all, git

pytestmark = pytest.mark.slow  # whole updates in unusual repositories


def _mono(where: Path) -> Path:
    """A repository with work of its own at the top and in a sibling folder."""
    where.mkdir(parents=True)
    git(where, "init", "-q", "-b", "main")
    (where / "README.md").write_text("# the monorepo\n")
    (where / "infra").mkdir()
    (where / "infra" / "deploy.sh").write_text("#!/bin/sh\necho deploy\n")
    commit_all(where, "monorepo")
    return where


def _clean(root: Path) -> bool:
    return git(root, "-c", "status.showUntrackedFiles=all", "status", "--porcelain") == ""


def test_a_project_in_a_monorepo_is_created_and_added_to_there(tmp_path: Path) -> None:
    mono = _mono(tmp_path / "mono")
    (mono / "projects").mkdir()
    proc = run_cli("new-project", "vision", "--defaults", cwd=mono / "projects")
    assert proc.returncode == 0, proc.stderr
    root = mono / "projects" / "vision"
    assert "committed to the git repository at" in proc.stdout
    assert not (root / ".git").exists(), "a repository was nested in the monorepo"
    assert git(mono, "log", "-1", "--format=%s").startswith("Scaffold vision") and _clean(mono)
    assert "projects/vision/trainer.py" in git(mono, "ls-files").split()

    (mono / "infra" / "wip.txt").write_text("another team's work in progress\n")  # not the project's business
    proc = run_cli("add", "model", "net", cwd=root)
    assert proc.returncode == 0 and "not committed" not in proc.stdout, proc.stdout + proc.stderr
    assert git(mono, "log", "-1", "--format=%s").startswith("Add model net")
    assert git(mono, "show", "--name-only", "--format=", "HEAD").split() == [
        "projects/vision/.copier-answers.model-net.yml", "projects/vision/model/net.py"]
    assert git(mono, "status", "--porcelain") == "?? infra/wip.txt\n"


@pytest.fixture
def old_in_monorepo(old_project: Path, tmp_path: Path) -> Path:
    """The older project (conftest) moved into a monorepo's subfolder, its files committed there."""
    mono = _mono(tmp_path / "mono")
    root = mono / "teams" / "lab"
    root.parent.mkdir()
    shutil.move(str(old_project), root)
    shutil.rmtree(root / ".git")
    commit_all(mono, "Bring the lab project in")
    return root


def test_a_project_in_a_monorepo_is_updated_and_its_dry_run_foresees_it(
        old_in_monorepo: Path, template_history: TemplateHistory) -> None:
    root, mono = old_in_monorepo, old_in_monorepo.parents[1]
    (root / "README.md").write_text((root / "README.md").read_text() + "\nOur lab's notes.\n")
    commit_all(mono, "Our notes")
    before = tree_digest(mono)
    dry = run_cli("update", "--dry-run", "--json", cwd=root)
    assert dry.returncode == 0, dry.stderr
    assert tree_digest(mono) == before

    proc = run_cli("update", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (root / ADDED_FILE).is_file() and not (root / DROPPED_FILE).exists()
    assert "Our lab's notes." in (root / "README.md").read_text()
    assert _clean(mono) and (mono / "infra" / "deploy.sh").is_file()
    assert git(mono, "log", "-1", "--format=%s").startswith("Update dataset sales")
    files = {entry["path"]: entry["status"] for entry in report["parts"][0]["files"]}
    assert files[ADDED_FILE] == "new" and files[DROPPED_FILE] == "removed", files
    assert json.loads(dry.stdout)["parts"] == [{**part, "committed": None} for part in report["parts"]]
    assert run_cli("check", cwd=root).returncode == 0


def _global_config(tmp_path: Path, text: str) -> dict[str, str]:
    config = tmp_path / "global.gitconfig"
    config.write_text(text)
    return {"GIT_CONFIG_GLOBAL": str(config)}


@pytest.fixture
def ignoring(tmp_path: Path) -> dict[str, str]:
    """A global excludesFile as ML machines have them: data, every script, every notebook."""
    (tmp_path / "global.ignore").write_text("data/\n*.py\n*.ipynb\n*.sh\n")
    return _global_config(tmp_path, f"[core]\n\texcludesFile = {tmp_path / 'global.ignore'}\n")


def test_a_global_excludes_file_does_not_keep_the_projects_files_out_of_git(tmp_path: Path,
                                                                             ignoring: dict[str, str]) -> None:
    proc = run_cli("new-project", "p", "--defaults", "-d", "include_notebook=true", cwd=tmp_path, env=ignoring)
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "p"
    tracked = set(git(root, "ls-files").split())
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert tracked == on_disk and "data/__init__.py" in tracked and any(p.endswith(".ipynb") for p in tracked)
    proc = run_cli("add", "dataset", "sales", cwd=root, env=ignoring)
    assert proc.returncode == 0 and "not committed" not in proc.stdout, proc.stdout + proc.stderr
    assert "data/sales.py" in git(root, "show", "--name-only", "--format=", "HEAD").split()


def test_a_global_excludes_file_does_not_keep_an_updates_new_files_out_of_git(
        old_project: Path, ignoring: dict[str, str]) -> None:
    assert ADDED_FILE.endswith(".sh")  # the template's new file matches the user's `*.sh`
    proc = run_cli("update", "--json", cwd=old_project, env=ignoring)
    assert proc.returncode == 0, proc.stderr
    assert ADDED_FILE in git(old_project, "ls-files").split()
    files = {entry["path"]: entry["status"] for entry in json.loads(proc.stdout)["parts"][0]["files"]}
    assert files[ADDED_FILE] == "new"


@pytest.fixture
def crlf(tmp_path: Path) -> dict[str, str]:
    return _global_config(tmp_path, "[core]\n\tautocrlf = true\n")


def _scripts_run(root: Path) -> None:
    scripts = [p for p in root.rglob("*") if p.suffix in (".sh", ".sbatch") and ".git" not in p.parts]
    assert scripts
    for script in scripts:
        assert b"\r" not in script.read_bytes(), script
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0, script


def test_autocrlf_leaves_shell_scripts_that_run_and_a_clean_tree(tmp_path: Path, crlf: dict[str, str]) -> None:
    assert run_cli("new-project", "p", "--defaults", cwd=tmp_path, env=crlf).returncode == 0
    root = tmp_path / "p"
    assert run_cli("add", "model", "m", cwd=root, env=crlf).returncode == 0
    _scripts_run(root)
    assert _clean(root)


def test_autocrlf_update_and_its_dry_run_agree_and_leave_scripts_that_run(old_project: Path,
                                                                          crlf: dict[str, str]) -> None:
    dry = run_cli("update", "--dry-run", "--json", cwd=old_project, env=crlf)
    assert dry.returncode == 0, dry.stderr
    proc = run_cli("update", "--json", cwd=old_project, env=crlf)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert json.loads(dry.stdout)["parts"] == [{**part, "committed": None} for part in report["parts"]]
    _scripts_run(old_project)
    assert _clean(old_project)


def test_logs_as_a_symlink_to_a_scratch_disk_neither_dirties_nor_blocks_update(old_project: Path,
                                                                              tmp_path: Path) -> None:
    disk = tmp_path / "scratch-disk" / "lab-logs"
    (disk / "series" / "run-1").mkdir(parents=True)
    (disk / "series" / "run-1" / "events.out").write_bytes(b"\x00tensorboard")
    (old_project / "logs").symlink_to(disk)
    # What the project's .gitignore should say (`logs` without a slash matches the link as well)
    (old_project / ".git" / "info" / "exclude").write_text("/logs\n")
    assert _clean(old_project)
    disk_before = tree_digest(disk)
    assert run_cli("update", "--dry-run", cwd=old_project).returncode == 0
    proc = run_cli("update", cwd=old_project)
    assert proc.returncode == 0, proc.stderr
    assert (old_project / "logs").is_symlink() and tree_digest(disk) == disk_before
    assert _clean(old_project)
