"""Nothing of the user's is clobbered by litscaffold's template cache or by git's environment (issue 19 item 6).

- LITSCAFFOLD_CACHE_DIR may point at a folder of the user's that holds a file, a folder, a linked worktree or a
  repository named `template`: litscaffold only ever rebuilds, re-initialises or moves tags in a `template` it
  created and marked; anything else is refused in one line and left byte-identical.
- A litscaffold started from a git hook inherits GIT_DIR (and in linked worktrees GIT_WORK_TREE,
  GIT_INDEX_FILE): none of its git calls, nor copier's, may follow them to the hook's repository.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli, tree_digest
from hostile_helpers import PROJECT, commit_all, git, state

from litscaffold import __version__

OUR_TAG = f"v{__version__}"  # a tag the template cache holds: a forced fetch would move the user's one


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("git-env-seed")
    run_cli("new-project", "demo", "--defaults", cwd=where, check=True)
    return where / "demo"


@pytest.fixture
def world(seed: Path, tmp_path: Path) -> Path:
    shutil.copytree(seed, tmp_path / PROJECT, symlinks=True)
    return tmp_path


def _repository(root: Path) -> Path:
    """A repository of the user's with a commit and tags named like litscaffold's template versions."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "notes.md").write_text("the user's own work\n")
    commit_all(root, "mine")
    for tag in ("v0.1.0", OUR_TAG):
        git(root, "tag", tag)
    return root


def _template_thing(kind: str, cache: Path, elsewhere: Path) -> None:
    target = cache / "template"
    cache.mkdir(parents=True)
    if kind == "file":
        target.write_text("my template notes\n")
    elif kind == "folder":
        target.mkdir()
        (target / "slides.md").write_text("# my slides\n")
    elif kind == "repository":
        _repository(target)
    else:  # a linked worktree of a repository that lives elsewhere
        main = _repository(elsewhere / "main")
        git(main, "worktree", "add", "-q", "-b", "wt", str(target))


def _exact(path: Path) -> dict[str, str]:
    """Bytes of everything at `path` (a file or a folder, .git included), and for each repository there its HEAD,
    branch and tags."""
    seen = {"<file>": hashlib.sha256(path.read_bytes()).hexdigest()} if path.is_file() else tree_digest(path)
    for gitdir in sorted(path.rglob(".git")) if path.is_dir() else []:
        repo = gitdir.parent
        seen[f"<{repo} HEAD>"] = git(repo, "rev-parse", "HEAD").strip()
        seen[f"<{repo} branch>"] = git(repo, "symbolic-ref", "-q", "HEAD", check=False).strip()
        seen[f"<{repo} tags>"] = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags")
    return seen


KINDS = ("file", "folder", "worktree", "repository")
COMMANDS = {
    "list": (("list",), PROJECT),
    "check": (("check",), PROJECT),
    "add": (("add", "model", "x"), PROJECT),
    "new-project": (("new-project", "p", "--defaults"), "."),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_template_that_litscaffold_did_not_make_is_refused_and_left_as_it_was(world: Path, kind: str,
                                                                               command: str) -> None:
    cache = world / "mine"
    _template_thing(kind, cache, world / "elsewhere")
    args, cwd = COMMANDS[command]
    before, around = _exact(cache / "template"), state(world)
    line = assert_one_line_error(run_cli(*args, cwd=world / cwd, env={"LITSCAFFOLD_CACHE_DIR": str(cache)}), 1)
    assert "LITSCAFFOLD_CACHE_DIR" in line and str(cache / "template") in line, line
    assert _exact(cache / "template") == before
    assert state(world) == around
    assert sorted(p.name for p in cache.iterdir()) == ["template"]  # no lock file, no marker: nothing written


def test_a_relative_cache_dir_is_refused_in_one_line(world: Path) -> None:
    around = state(world)
    line = assert_one_line_error(run_cli("add", "model", "x", cwd=world / PROJECT,
                                         env={"LITSCAFFOLD_CACHE_DIR": "cache"}), 1)
    assert "LITSCAFFOLD_CACHE_DIR" in line and "absolute" in line, line
    assert state(world) == around


def test_a_cache_made_by_an_earlier_litscaffold_is_still_used(world: Path) -> None:
    """Caches made before the owner mark existed carry the bundle digest inside their .git: still ours."""
    from litscaffold.template import TemplateSource

    cache = world / "cache"
    env = {"LITSCAFFOLD_CACHE_DIR": str(cache)}
    run_cli("add", "model", "first", cwd=world / PROJECT, env=env, check=True)
    marks = [p for p in cache.iterdir() if p.name not in ("template", "template.lock")]
    assert len(marks) == 1  # the owner mark beside the repository
    marks[0].unlink()
    repo = TemplateSource(root=cache).repo
    head = git(repo, "for-each-ref", "refs/tags")
    run_cli("add", "model", "second", cwd=world / PROJECT, env=env, check=True)
    assert git(repo, "for-each-ref", "refs/tags") == head and marks[0].is_file()


# ---- git's environment ------------------------------------------------------------------------------

def test_every_variable_git_clears_for_another_repository_is_cleared() -> None:
    from litscaffold.git import REPOSITORY_VARIABLES

    listed = subprocess.run(["git", "rev-parse", "--local-env-vars"], capture_output=True, text=True, check=True)
    assert set(listed.stdout.split()) <= set(REPOSITORY_VARIABLES)


def _hook_env(other: Path) -> dict[str, str]:
    """What a post-checkout hook of a linked worktree of `other` passes on to what it runs."""
    return {"GIT_DIR": str(other / ".git"), "GIT_WORK_TREE": str(other),
            "GIT_INDEX_FILE": str(other / ".git" / "index")}


def _other(world: Path) -> tuple[Path, dict[str, str]]:
    other = _repository(world / "other")
    (other / "staged.txt").write_text("staged, not committed\n")
    git(other, "add", "staged.txt")
    return other, _exact_repo(other)


def _exact_repo(repo: Path) -> dict[str, str]:
    seen = _exact(repo)
    seen["<index>"] = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
    seen["<refs>"] = git(repo, "for-each-ref")
    return seen


def test_check_and_add_work_on_the_project_not_on_the_hooks_repository(world: Path) -> None:
    other, before = _other(world)
    env = {**_hook_env(other), "LITSCAFFOLD_CACHE_DIR": str(world / "fresh-cache")}  # check fills a new cache
    root = world / PROJECT
    proc = run_cli("check", cwd=root, env=env)
    assert proc.returncode == 0 and "all current" in proc.stdout, proc.stdout + proc.stderr
    proc = run_cli("add", "model", "x", cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr
    assert git(root, "log", "-1", "--format=%s").startswith("Add model x")
    assert git(root, "status", "--porcelain") == ""
    assert _exact_repo(other) == before


def test_update_works_on_the_project_not_on_the_hooks_repository(old_project: Path, tmp_path: Path) -> None:
    other, before = _other(tmp_path / "w")
    proc = run_cli("update", cwd=old_project, env=_hook_env(other))
    assert proc.returncode == 0, proc.stderr
    assert git(old_project, "log", "-1", "--format=%s").startswith("Update dataset sales")
    assert git(old_project, "status", "--porcelain") == ""
    assert _exact_repo(other) == before


def test_new_project_is_its_own_repository_beside_the_hooks_one(tmp_path: Path) -> None:
    other, before = _other(tmp_path / "w")
    proc = run_cli("new-project", "p", "--defaults", cwd=tmp_path, env=_hook_env(other))
    assert proc.returncode == 0, proc.stderr
    assert git(tmp_path / "p", "rev-parse", "--show-toplevel").strip() == str((tmp_path / "p").resolve())
    assert git(tmp_path / "p", "log", "-1", "--format=%s").startswith("Scaffold p")
    assert _exact_repo(other) == before
