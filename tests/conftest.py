"""Shared fixtures: every test renders from a bundle of the working tree into its own cache."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import services  # tests/services.py: starts and stops the daemons

if TYPE_CHECKING:
    from litscaffold.template import TemplateSource

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest test first (the generated project's own suite): with pytest-xdist it starts at once on one
    worker while the other takes the group that shares SLURM and PostgreSQL (xdist sends the largest group first),
    and both workers finish at about the same time."""
    items.sort(key=lambda item: item.get_closest_marker("longest") is None)


@pytest.fixture(scope="session")
def working_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """template/ + copier.yml as they are on disk, snapshotted as the current version."""
    from litscaffold.snapshot import snapshot

    bundle = tmp_path_factory.mktemp("bundle") / "template.bundle"
    snapshot(root=REPO, bundle=bundle)
    return bundle


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, working_bundle: Path) -> Iterator[None]:
    """No test reads or writes the developer's cache, copier settings or git identity.
    Session-wide, so module-scoped fixtures (a project rendered once per module) are isolated too."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("LITSCAFFOLD_CACHE_DIR", str(home / ".cache" / "litscaffold"))
        monkeypatch.setenv("LITSCAFFOLD_TEMPLATE_BUNDLE", str(working_bundle))
        monkeypatch.setenv("GIT_AUTHOR_NAME", "Test User")
        monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
        monkeypatch.setenv("GIT_COMMITTER_NAME", "Test User")
        monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
        monkeypatch.delenv("COPIER_SETTINGS_PATH", raising=False)
        yield


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a subprocess (stdin closed: no terminal, like CI)."""
    proc = subprocess.run(
        [sys.executable, "-m", "litscaffold", *args],
        cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"litscaffold {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def tree_digest(root: Path) -> dict[str, str]:
    """Every file (and empty folder) under root with a hash of its bytes: 'byte-identical' made checkable."""
    digest: dict[str, str] = {}
    if not root.exists():
        return digest
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file():
            digest[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir() and not any(path.iterdir()):
            digest[relative] = "<empty dir>"
    return digest


def assert_refused(*args: str, cwd: Path, code: int, env: dict[str, str] | None = None) -> str:
    """Run litscaffold expecting a one-line refusal with `code` and `cwd` byte-identical afterwards;
    returns the error line."""
    before = tree_digest(cwd)
    line = assert_one_line_error(run_cli(*args, cwd=cwd, env=env), code)
    assert tree_digest(cwd) == before
    return line


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def copy_project(source: Path, where: Path) -> Path:
    """A copy of a shared render for a test that writes (git history included)."""
    target = where / source.name
    shutil.copytree(source, target, symlinks=True)
    return target


def run_dirs(save_dir: Path) -> list[Path]:
    return sorted(path for path in save_dir.glob("*/*") if path.is_dir())


def global_step(checkpoint: Path) -> int:
    import torch

    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"])


def assert_no_step_twice(run_dir: Path) -> None:
    """No scalar has a step written twice across the run's event files (TensorBoard's reader would hide it)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), purge_orphaned_data=False)
    events.Reload()
    for tag in events.Tags()["scalars"]:
        steps = [event.step for event in events.Scalars(tag)]
        # "epoch" is Lightning's own bookkeeping, written once for train and once for val at the same step.
        assert tag == "epoch" or len(steps) == len(set(steps)), f"{tag} logged a step twice: {steps}"


# ---- Shared renders: made once per session (per xdist worker), copied by the tests that write ----------------


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory, isolated_env: None) -> Path:
    """`litscaffold new-project demo --defaults` of the working tree's template, committed. Read only: tests that
    write take `project`, a copy of it."""
    where = tmp_path_factory.mktemp("rendered")
    run_cli("new-project", "demo", "--defaults", cwd=where, check=True)
    return where / "demo"


@pytest.fixture
def project(rendered: Path, tmp_path: Path) -> Path:
    """A fresh copy of the shared render, this test's to change."""
    return copy_project(rendered, tmp_path)


@pytest.fixture(scope="session")
def rendered_with_model(rendered: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared render with `add model my_net` committed (the hostile and interruption tests' seed). Read only."""
    root = copy_project(rendered, tmp_path_factory.mktemp("with-model"))
    run_cli("add", "model", "my_net", cwd=root, check=True)
    return root


def component_name(blueprint: str) -> str:
    return f"my_{blueprint.replace('-', '_')}"


@pytest.fixture(scope="session")
def full_project(rendered: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The render with one component of every blueprint added (`my_<blueprint>`), each add committed: the project
    whose own suite is run once (test_generated_project.py) and that the cluster tests submit jobs from. Read
    only: copy it to write."""
    from litscaffold.components import BLUEPRINTS

    root = copy_project(rendered, tmp_path_factory.mktemp("full"))
    for kind, blueprints in BLUEPRINTS.items():
        for blueprint in blueprints:
            run_cli("add", kind, component_name(blueprint), "--blueprint", blueprint, cwd=root, check=True)
    return root


# =====================================================================================================
# Template history fixtures (issue 4: `litscaffold update` / `check`).
# =====================================================================================================

OLD_VERSION = "0.0.9"
OLD_AUTHOR_DEFAULT = "Old Template Author"
# A template file that only the old version has (the new version deletes it).
DROPPED_FILE = "docs/old-guide.md"
# A file only the new version has (removed from the old one), and one both versions have that a user
# may delete.
ADDED_FILE = "scripts/torchrun.sh"
KEPT_FILE = "scripts/slurm.sbatch"
OLD_COMPONENT_HEADER = "# rendered by litscaffold template 0.0.9; the next version drops this line"

@dataclass(frozen=True)
class TemplateHistory:
    """Two real snapshots in one bundle: OLD_VERSION and the current version, and what differs."""

    bundle: Path
    old: str
    new: str
    wiring: str         # project file (rendered path) whose line the new version changed
    new_line: str       # that line in the new version
    old_line: str       # the same line in the old version


def _template_file(tree: Path, relative: str) -> Path | None:
    for candidate in (tree / "template" / relative, tree / "template" / f"{relative}.jinja"):
        if candidate.is_file():
            return candidate
    return None


def _first_comment_line(text: str) -> str | None:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# ") and "{" not in line and "noqa" not in line:
            return line
    return None


def build_template_history(where: Path) -> TemplateHistory:
    """Copy template/ + copier.yml twice; make one copy an older version that differs by a changed
    line in the wiring, a file the new version adds, a file it deletes, a changed copier default and
    a changed component line; snapshot both into one bundle."""
    from litscaffold.snapshot import snapshot
    from litscaffold.template import current_version

    new, old = where / "new", where / "old"
    for tree in (new, old):
        shutil.copytree(REPO / "template", tree / "template",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
        shutil.copy2(REPO / "copier.yml", tree / "copier.yml")
    # Which wiring file carries the changed line: trainer.py when it has a plain comment line.
    wiring_source = _template_file(old, "project/trainer.py")
    assert wiring_source is not None
    text = wiring_source.read_text()
    new_line = _first_comment_line(text)
    if new_line is None:  # no comment to change: the new version adds one at the top instead
        new_line = "# How flags become a Trainer lives in one place: here."
        (_template_file(new, "project/trainer.py") or wiring_source).write_text(f"{new_line}\n{text}")
        text = f"{new_line}\n{text}"
    old_line = f"{new_line} (old template wording)"
    wiring_source.write_text(text.replace(new_line, old_line, 1))
    wiring = wiring_source.relative_to(old / "template" / "project").as_posix().removesuffix(".jinja")
    # A file the new version adds, one it deletes.
    added = _template_file(old, f"project/{ADDED_FILE}")
    assert added is not None
    added.unlink()
    dropped = old / "template" / "project" / DROPPED_FILE
    dropped.parent.mkdir(parents=True, exist_ok=True)
    dropped.write_text("# Old guide\n\nRun the trainer with `python trainer.py`.\n")
    # A changed default in copier.yml: recorded answers must survive it.
    config = (old / "copier.yml").read_text()
    config, count = re.subn(r'(author_name:\n(?:  .*\n)*?  default: )"[^"]*"', rf'\1"{OLD_AUTHOR_DEFAULT}"', config)
    assert count == 1, "copier.yml has no author_name default to change"
    (old / "copier.yml").write_text(config)
    # A changed line in what an added model renders.
    wrapper = old / "template" / "model" / "model" / "{{name}}.py.jinja"
    wrapper.write_text(f"{OLD_COMPONENT_HEADER}\n{wrapper.read_text()}")

    bundle = where / "template.bundle"
    snapshot(root=old, bundle=bundle, version=OLD_VERSION)
    snapshot(root=new, bundle=bundle, version=current_version())
    return TemplateHistory(bundle, OLD_VERSION, current_version(), wiring, new_line, old_line)


@pytest.fixture(scope="session")
def template_history(tmp_path_factory: pytest.TempPathFactory) -> TemplateHistory:
    return build_template_history(tmp_path_factory.mktemp("history"))


@pytest.fixture(scope="session")
def old_project_seed(tmp_path_factory: pytest.TempPathFactory, template_history: TemplateHistory) -> Path:
    """A committed project made with the old template, with an added model and dataset.
    Tests copy it (copy_project) instead of rendering it again."""
    from litscaffold.components import add_component
    from litscaffold.project import Project
    from litscaffold.scaffold import new_project
    from litscaffold.template import TemplateSource

    home = tmp_path_factory.mktemp("seed-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("LITSCAFFOLD_CACHE_DIR", str(home / ".cache" / "litscaffold"))
        patch.setenv("LITSCAFFOLD_TEMPLATE_BUNDLE", str(template_history.bundle))
        for key in ("AUTHOR", "COMMITTER"):
            patch.setenv(f"GIT_{key}_NAME", "Test User")
            patch.setenv(f"GIT_{key}_EMAIL", "test@example.com")
        patch.delenv("COPIER_SETTINGS_PATH", raising=False)
        source = TemplateSource(bundle=template_history.bundle)
        root = tmp_path_factory.mktemp("seed") / "lab"
        new_project("lab", root, version=template_history.old, source=source)
        project = Project(root)
        add_component(project, "model", "my_net", "mlp", source=source)
        add_component(project, "dataset", "sales", "synthetic-regression", source=source)
    return root


@pytest.fixture
def old_project(tmp_path: Path, old_project_seed: Path, template_history: TemplateHistory,
                monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the old project; the CLI reads the template history bundle."""
    monkeypatch.setenv("LITSCAFFOLD_TEMPLATE_BUNDLE", str(template_history.bundle))
    root = tmp_path / "lab"
    shutil.copytree(old_project_seed, root, symlinks=True)
    return root


# =====================================================================================================
# Projects made from the SHIPPED bundle at released versions (the upgrade and merge tests)
# =====================================================================================================


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TemplateSource:
    """The bundle in the package, in a cache of its own (the session's cache holds the working tree's)."""
    from litscaffold.template import BUNDLE, TemplateSource

    monkeypatch.setenv("LITSCAFFOLD_TEMPLATE_BUNDLE", str(BUNDLE))
    monkeypatch.setenv("LITSCAFFOLD_CACHE_DIR", str(tmp_path / "cache"))
    return TemplateSource(bundle=BUNDLE)


def scaffold(where: Path, version: str, source: TemplateSource) -> Path:
    """A project at `version` with a model and a dataset added at that version, committed."""
    from litscaffold.components import add_component
    from litscaffold.project import Project
    from litscaffold.scaffold import new_project

    root = where / "lab"
    new_project("lab", root, version=version, source=source)
    add_component(Project(root), "model", "my_net", "convnet", source=source)
    add_component(Project(root), "dataset", "sales", "synthetic-regression", source=source)
    return root


# =====================================================================================================
# Real services (SLURM, PostgreSQL): tests that use them share one xdist worker (group "services")
# =====================================================================================================


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[services.SlurmCluster]:
    """A one-node SLURM cluster for the whole session (see tests/services.py); skips where it cannot run."""
    if reason := services.skip_reason_slurm():
        pytest.skip(reason)
    with services.slurm_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[services.PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 with database 'test' (url: server.url); skips where it cannot run."""
    if reason := services.skip_reason_postgres():
        pytest.skip(reason)
    with services.postgres_server() as server:
        yield server
