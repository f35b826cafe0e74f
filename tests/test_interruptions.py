"""Ctrl-C (and SIGTERM) at every step of `new-project`, `adopt`, `add`, `remove` and `update`: each run ends
with the whole change committed or the project exactly as it was, and says which.

The windows are deterministic: a post-index-change hook sleeps on its Nth run (DESIGN §7), so the
signal lands while the command waits between two of its git steps; N goes up until a run finishes
without reaching it. One more window per command: while copier renders (before any git step)."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from adopt_layouts import FLAT_FILES, write_repository
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


def _while_rendering(world: Path, args: tuple[str, ...], done, cwd: str = PROJECT, watch: Path | None = None) -> str:
    """SIGINT while copier renders into litscaffold's scratch folder."""
    watch = watch or world / PROJECT
    before = state(world)
    _, code, stderr = interrupt_when(
        start(args, world / cwd), lambda: any(p.name.startswith(".litscaffold-") for p in watch.iterdir()),
        signal.SIGINT)
    return assert_all_or_nothing(world, before, code, stderr, done)


@pytest.fixture
def seed(rendered_with_model: Path) -> Path:
    """A current project with an added model (the session's shared render; copied before any change)."""
    return rendered_with_model


def _copier(seed: Path, tmp_path: Path):
    def make(nth: int) -> tuple[Path, Path]:
        world, ctl = tmp_path / f"w{nth}", tmp_path / f"ctl{nth}"
        ctl.mkdir()
        shutil.copytree(seed, world / PROJECT, symlinks=True)
        return world, ctl
    return make


def _head_subject(world: Path) -> str:
    return git(world / PROJECT, "log", "-1", "--format=%s").strip()


def _clean(world: Path) -> bool:
    return git(world / PROJECT, "-c", "status.showUntrackedFiles=all", "status", "--porcelain") == ""


def test_add_at_every_step(seed: Path, tmp_path: Path) -> None:
    def done(world: Path) -> None:
        assert _head_subject(world).startswith("Add model fresh") and _clean(world)
        assert (world / PROJECT / "model" / "fresh.py").is_file()

    make = _copier(seed, tmp_path)
    outcomes = every_step(make, ("add", "model", "fresh"), done)
    assert "undone" in outcomes and outcomes[-1] == "committed"
    world, _ = make(99)
    _while_rendering(world, ("add", "model", "fresh"), done)


def test_sigterm_takes_the_ctrl_c_path(seed: Path, tmp_path: Path) -> None:
    """SIGTERM at the commit of `add` (its second index write): undone, said so, exit 130."""
    world, ctl = _copier(seed, tmp_path)(1)
    sleeping_hook(world / PROJECT / ".git", ctl / "count", ctl / "marker", 2, seconds=0.5)
    before = state(world)
    sent, code, stderr = interrupt_when(start(("add", "dataset", "sales"), world / PROJECT),
                                         (ctl / "marker").exists, signal.SIGTERM)
    assert sent and code == 130, stderr
    assert stderr.strip() == "error: interrupted; adding dataset sales was undone: the project is as it was before"
    assert state(world) == before


def test_remove_at_every_step(seed: Path, tmp_path: Path) -> None:
    def done(world: Path) -> None:
        assert _head_subject(world) == "Remove model my_net" and _clean(world)
        assert not (world / PROJECT / "model" / "my_net.py").exists()

    outcomes = every_step(_copier(seed, tmp_path), ("remove", "model", "my_net", "--force"), done)
    assert "undone" in outcomes and outcomes[-1] == "committed"


def test_update_of_one_part_at_every_step(old_project_seed: Path, template_history, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITSCAFFOLD_TEMPLATE_BUNDLE", str(template_history.bundle))

    def done(world: Path) -> None:
        assert _head_subject(world) == f"Update model my_net to litscaffold template {template_history.new}"
        assert _clean(world)

    outcomes = every_step(_copier(old_project_seed, tmp_path), ("update", "--only", "model:my_net"), done)
    assert "undone" in outcomes and outcomes[-1] == "committed"


def test_update_interrupted_in_its_last_part_undoes_the_parts_already_committed(
        old_project_seed: Path, template_history, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Count the index writes of a whole update, then interrupt at the last ones (the last part's
    commit) and half-way: the project and model commits made before are undone too."""
    monkeypatch.setenv("LITSCAFFOLD_TEMPLATE_BUNDLE", str(template_history.bundle))
    make = _copier(old_project_seed, tmp_path)
    world, ctl = make(0)
    sleeping_hook(world / PROJECT / ".git", ctl / "count", ctl / "marker", 10**6)
    run_cli("update", cwd=world / PROJECT, check=True)
    writes = int((ctl / "count").read_text())
    assert _head_subject(world).startswith("Update dataset sales") and writes >= 3

    # git's own index refreshes vary by a write or two between runs (racy timestamps): aim a little early,
    # still inside the last part (each part writes the index more than three times).
    interrupted = 0
    for nth in sorted({max(1, writes - 3)}):
        world, ctl = make(nth)
        sleeping_hook(world / PROJECT / ".git", ctl / "count", ctl / "marker", nth, seconds=0.5)
        before = state(world)
        sent, code, stderr = interrupt_when(start(("update",), world / PROJECT), (ctl / "marker").exists,
                                             signal.SIGINT)
        if not sent:
            continue
        interrupted += 1
        assert code == 130, stderr
        assert stderr.strip() == "error: interrupted; the update was undone: the project is as it was before"
        assert state(world) == before
    assert interrupted >= 1


def test_new_project_at_every_step(tmp_path: Path) -> None:
    """The repository does not exist yet: git init takes the sleeping hook from GIT_TEMPLATE_DIR.
    Interrupted, no folder is left; an empty folder that existed before stays empty."""
    def maker(empty: bool):
        def make(nth: int) -> tuple[Path, Path]:
            world, ctl = tmp_path / f"w{nth}-{empty}", tmp_path / f"ctl{nth}-{empty}"
            (world / PROJECT / ("empty" if empty else "")).mkdir(parents=True)
            ctl.mkdir()
            return world, ctl
        return make

    def hook_env(ctl: Path, counter: Path, marker: Path, nth: int) -> dict[str, str]:
        template = ctl / "git-template"
        sleeping_hook(template, counter, marker, nth, seconds=0.5)
        return {"GIT_TEMPLATE_DIR": str(template)}

    def done(folder: str):
        def check(world: Path) -> None:
            assert git(world / PROJECT / folder, "log", "-1", "--format=%s").startswith("Scaffold p")
        return check

    outcomes = every_step(maker(False), ("new-project", "p", "--defaults"), done("p"), hook_env=hook_env)
    assert "undone" in outcomes and outcomes[-1] == "committed"
    # Into an existing empty folder: the first two git steps are enough to see it left empty.
    outcomes = every_step(maker(True), ("new-project", "p", "--defaults", "--dest", "empty"), done("empty"),
                           hook_env=hook_env, steps=2)
    assert outcomes == ["undone", "undone"]


def test_new_project_while_rendering(tmp_path: Path) -> None:
    world = tmp_path / "w"
    (world / PROJECT).mkdir(parents=True)
    outcome = _while_rendering(world, ("new-project", "p", "--defaults"), lambda w: None)
    assert outcome in ("undone", "committed")
    if outcome == "undone":
        assert list((world / PROJECT).iterdir()) == []


def test_adopt_at_every_step(tmp_path: Path) -> None:
    """An existing repository (the flat layout of test_adopt): interrupted, it is exactly as it was."""
    def make(nth: int) -> tuple[Path, Path]:
        world, ctl = tmp_path / f"w{nth}", tmp_path / f"ctl{nth}"
        write_repository(world / PROJECT, FLAT_FILES)
        ctl.mkdir()
        return world, ctl

    def done(world: Path) -> None:
        assert _head_subject(world).startswith("Adopt litscaffold template") and _clean(world)
        assert (world / PROJECT / "model" / "lit_regressor.py").is_file()

    outcomes = every_step(make, ("adopt",), done)
    assert "undone" in outcomes and outcomes[-1] == "committed"
