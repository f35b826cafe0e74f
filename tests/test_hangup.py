"""SIGHUP (a closed terminal, a dropped ssh session) takes the same all-or-nothing path as Ctrl-C and SIGTERM,
and a kill -9 of `add` leaves no scratch among the project's files (issue 19 item 5). The race windows are made
deterministic as in test_interruptions.py: a post-index-change hook sleeps on its Nth run (DESIGN §7)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from hostile_helpers import (
    PROJECT,
    assert_all_or_nothing,
    every_step,
    git,
    interrupt_when,
    sleeping_hook,
    start,
    state,
)

pytestmark = pytest.mark.slow  # every step of each command, one process per step

HUP = signal.SIGHUP


@pytest.fixture
def seed(rendered_with_model: Path) -> Path:
    """The session's shared render with my_net added (copied before any change)."""
    return rendered_with_model


@pytest.fixture
def tmpdir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$TMPDIR of the commands under test: whatever copier or litscaffold leave there is seen."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def _copies(seed: Path, tmp_path: Path):
    def make(nth: int) -> tuple[Path, Path]:
        world, ctl = tmp_path / f"w{nth}", tmp_path / f"ctl{nth}"
        ctl.mkdir()
        shutil.copytree(seed, world / PROJECT, symlinks=True)
        return world, ctl
    return make


def _subject(world: Path) -> str:
    return git(world / PROJECT, "log", "-1", "--format=%s").strip()


def _clean(world: Path) -> bool:
    return git(world / PROJECT, "-c", "status.showUntrackedFiles=all", "status", "--porcelain") == ""


def _rendering(world: Path) -> bool:
    """add renders into the project's git directory, outside its work tree."""
    scratch = world / PROJECT / ".git" / "litscaffold-scratch"
    return scratch.is_dir() and any(p.name.startswith(".litscaffold-") for p in scratch.glob("*/*"))


def test_sighup_at_every_step_of_add_undoes_it_and_leaves_no_scratch(seed: Path, tmp_path: Path,
                                                                       tmpdir_env: Path) -> None:
    def done(world: Path) -> None:
        assert _subject(world).startswith("Add model fresh") and _clean(world)

    make = _copies(seed, tmp_path)
    outcomes = every_step(make, ("add", "model", "fresh"), done, sig=HUP)
    assert "undone" in outcomes and outcomes[-1] == "committed"
    world, _ = make(99)
    before = state(world)
    sent, code, stderr = interrupt_when(start(("add", "model", "fresh"), world / PROJECT),
                                         lambda: _rendering(world), HUP)
    assert sent and code == 130 and stderr.strip().startswith("error: interrupted"), stderr
    assert state(world) == before
    assert list(tmpdir_env.iterdir()) == [], "copier's clones or litscaffold's scratch were left in $TMPDIR"


def test_sighup_at_every_step_of_remove_undoes_it(seed: Path, tmp_path: Path, tmpdir_env: Path) -> None:
    def done(world: Path) -> None:
        assert _subject(world) == "Remove model my_net" and _clean(world)

    outcomes = every_step(_copies(seed, tmp_path), ("remove", "model", "my_net", "--force"), done, sig=HUP)
    assert "undone" in outcomes and outcomes[-1] == "committed"
    assert list(tmpdir_env.iterdir()) == []


def test_sighup_in_an_update_undoes_every_part(old_project_seed: Path, template_history, tmp_path: Path,
                                               tmpdir_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Early (the first part's copier run) and late (after the first part's commit): the project as it was."""
    monkeypatch.setenv("LITSCAFFOLD_TEMPLATE_BUNDLE", str(template_history.bundle))
    make = _copies(old_project_seed, tmp_path)
    undone = 0
    for nth in (1, 6):
        world, ctl = make(nth)
        sleeping_hook(world / PROJECT / ".git", ctl / "count", ctl / "marker", nth, seconds=0.5)
        before = state(world)
        sent, code, stderr = interrupt_when(start(("update",), world / PROJECT), (ctl / "marker").exists, HUP)
        assert sent, stderr
        undone += assert_all_or_nothing(world, before, code, stderr, lambda w: None) == "undone"
        assert stderr.strip() == "error: interrupted; the update was undone: the project is as it was before"
    assert undone == 2
    assert list(tmpdir_env.iterdir()) == []


def test_sighup_in_new_project_leaves_no_project(tmp_path: Path) -> None:
    def make(nth: int) -> tuple[Path, Path]:
        world, ctl = tmp_path / f"w{nth}", tmp_path / f"ctl{nth}"
        (world / PROJECT).mkdir(parents=True)
        ctl.mkdir()
        return world, ctl

    def hook_env(ctl: Path, counter: Path, marker: Path, nth: int) -> dict[str, str]:
        template = ctl / "git-template"
        sleeping_hook(template, counter, marker, nth, seconds=0.5)
        return {"GIT_TEMPLATE_DIR": str(template)}

    def done(world: Path) -> None:
        assert git(world / PROJECT / "p", "log", "-1", "--format=%s").startswith("Scaffold p")

    outcomes = every_step(make, ("new-project", "p", "--defaults"), done, sig=HUP, hook_env=hook_env, steps=2)
    assert outcomes == ["undone", "undone"]


def test_kill_9_of_add_leaves_no_scratch_in_the_project_and_the_next_add_clears_it(seed: Path,
                                                                                    tmp_path: Path) -> None:
    world, _ = _copies(seed, tmp_path)(0)
    root = world / PROJECT
    before = state(world)
    proc = start(("add", "model", "fresh"), root)
    sent, code, _ = interrupt_when(proc, lambda: _rendering(world), signal.SIGKILL)
    assert sent and code == -signal.SIGKILL
    assert state(world) == before  # the work tree, the index, HEAD: nothing of the killed add among them
    left = [p for p in (root / ".git" / "litscaffold-scratch").glob("*/*")]
    assert left  # the scratch waits inside .git ...
    proc = run_cli("add", "model", "fresh", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert not any(p.exists() for p in left)  # ... until the next command under the project's lock
    assert subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=root).returncode == 0
