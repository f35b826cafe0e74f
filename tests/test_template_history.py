"""The template history shipped in the package: it matches template/, released tags never move, and a
snapshot hashes the same wherever it is built (so updates work offline on every machine)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from litscaffold.errors import LitscaffoldError
from litscaffold.snapshot import released, snapshot, tree_of
from litscaffold.template import BUNDLE, TemplateSource, current_version


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def repo_with(bundle: Path, where: Path) -> Path:
    """A scratch repository holding every tag of `bundle`."""
    repo = where / "tags"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "fetch", "-q", "--no-write-fetch-head", str(bundle), "refs/tags/*:refs/tags/*")
    return repo


def copy_template(src: Path, dst: Path) -> Path:
    shutil.copytree(src / "template", dst / "template", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(src / "copier.yml", dst / "copier.yml")
    return dst


def test_template_matches_the_current_version_in_the_shipped_bundle(tmp_path: Path) -> None:
    """Fails whenever template/ or copier.yml changed without `python -m litscaffold.snapshot`."""
    repo = repo_with(BUNDLE, tmp_path)
    tag = f"v{current_version()}"
    assert tag in git(repo, "tag", "--list").split(), f"the bundle has no {tag}; run `python -m litscaffold.snapshot`"
    assert git(repo, "rev-parse", f"{tag}^{{tree}}") == tree_of(REPO, repo), (
        "template/ or copier.yml changed since the last snapshot: run `python -m litscaffold.snapshot` "
        "(and bump the version first if this one is released)")


def test_released_tags_in_the_bundle_are_the_pinned_commits(tmp_path: Path) -> None:
    repo = repo_with(BUNDLE, tmp_path)
    for version, commit in released().items():
        assert git(repo, "rev-parse", f"v{version}^{{commit}}") == commit, f"released template {version} moved"
    # Versions are a chain, oldest first: every tag's commit descends from the previous version's.
    tags = TemplateSource(bundle=BUNDLE, root=tmp_path / "cache").ensure().versions()
    for older, newer in itertools.pairwise(tags):
        assert git(repo, "rev-parse", f"v{newer}^") == git(repo, "rev-parse", f"v{older}^{{commit}}")


def test_snapshots_hash_the_same_wherever_they_are_built(tmp_path: Path) -> None:
    """Two bundles built from the same trees (in different places, at different times) hold the same
    commits: a project's `_commit` means the same template on every machine."""
    old = copy_template(REPO, tmp_path / "old")
    (old / "template" / "project" / "OLD.md").write_text("only in the old version\n")
    ids = []
    for name in ("a", "b"):
        bundle = tmp_path / name / "template.bundle"
        bundle.parent.mkdir()
        ids.append((snapshot(root=old, bundle=bundle, version="0.0.9"),
                    snapshot(root=REPO, bundle=bundle, version=current_version())))
    assert ids[0] == ids[1]
    assert ids[0][0] != ids[0][1]


def test_a_released_version_never_moves(tmp_path: Path) -> None:
    tree = copy_template(REPO, tmp_path / "tree")
    bundle, releases = tmp_path / "template.bundle", tmp_path / "releases.json"
    commit = snapshot(root=tree, bundle=bundle, version="0.0.9", release=True, releases=releases)
    assert released(releases) == {"0.0.9": commit}
    # Unchanged: snapshotting again is a no-op that returns the pinned commit.
    assert snapshot(root=tree, bundle=bundle, version="0.0.9", releases=releases) == commit
    (tree / "template" / "project" / "NEW.md").write_text("a change after the release\n")
    with pytest.raises(LitscaffoldError, match="is released"):
        snapshot(root=tree, bundle=bundle, version="0.0.9", releases=releases)
    # The change goes into the next version, on top of the released one.
    newer = snapshot(root=tree, bundle=bundle, version="0.1.0", releases=releases)
    repo = repo_with(bundle, tmp_path)
    assert git(repo, "rev-parse", "v0.0.9^{commit}") == commit
    assert git(repo, "rev-parse", "v0.1.0^") == commit and git(repo, "rev-parse", "v0.1.0^{commit}") == newer


def test_the_cache_follows_a_resnapshotted_development_version(tmp_path: Path) -> None:
    """The unreleased version may be re-snapshotted during development; the cache moves its tag."""
    tree = copy_template(REPO, tmp_path / "tree")
    bundle = tmp_path / "template.bundle"
    first = snapshot(root=tree, bundle=bundle, version="0.1.0", releases=tmp_path / "none.json")
    source = TemplateSource(bundle=bundle, root=tmp_path / "cache").ensure()
    assert source.versions() == ["0.1.0"] and not (source.repo / "HEAD").exists()  # a normal repo, not bare
    (tree / "template" / "project" / "NEW.md").write_text("re-snapshotted\n")
    second = snapshot(root=tree, bundle=bundle, version="0.1.0", releases=tmp_path / "none.json")
    assert second != first
    source.ensure()
    assert git(source.repo, "rev-parse", "v0.1.0^{commit}") == second
