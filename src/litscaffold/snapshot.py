"""Maintainer command: record template/ + copier.yml as the template of the current version.

    python -m litscaffold.snapshot            # (re)snapshot the current, unreleased version
    python -m litscaffold.snapshot --release  # also pin it in releases.json: it can never move again

The snapshot is a commit (fixed identity and dates) tagged v<version> on top of the previous
version's commit, stored with all earlier tags in src/litscaffold/template.bundle.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .errors import LitscaffoldError
from .git import git
from .template import BUNDLE, RELEASES, SNAPSHOT_ENV, current_version, parse_version, tag_of

REPO_ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_PATHS = ("copier.yml", "template")
_IGNORED = "__pycache__/\n*.pyc\n.pytest_cache/\n.ruff_cache/\n.ipynb_checkpoints/\n"


def released(releases: Path = RELEASES) -> dict[str, str]:
    """version -> commit of every released template version."""
    return json.loads(releases.read_text()) if releases.is_file() else {}


def _scratch_repo(where: Path, bundle: Path) -> Path:
    repo = where / "snap"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    (repo / ".git" / "info" / "exclude").write_text(_IGNORED)
    if bundle.is_file():
        git("fetch", "-q", "--no-write-fetch-head", str(bundle), "refs/tags/*:refs/tags/*", cwd=repo)
    return repo


def tree_of(root: Path, repo: Path) -> str:
    """The git tree id of root's template/ and copier.yml as they are on disk now."""
    env = {"GIT_INDEX_FILE": str(repo / ".git" / "snapshot-index")}
    git("--work-tree", str(root), "add", "-A", "--", *SNAPSHOT_PATHS, cwd=repo, env=env)
    return git("write-tree", cwd=repo, env=env).strip()


def snapshot(root: Path = REPO_ROOT, bundle: Path = BUNDLE, version: str | None = None,
             release: bool = False, releases: Path = RELEASES) -> str:
    """Snapshot `root` as `version` (default: the package's) into `bundle`; return the commit id.
    `releases` is the pin file (tests use their own)."""
    version = version or current_version()
    tag = tag_of(version)
    pinned = released(releases)
    with tempfile.TemporaryDirectory() as tmp:
        repo = _scratch_repo(Path(tmp), bundle)
        tree = tree_of(root, repo)
        tags = git("tag", "--list", "v*", cwd=repo).split()
        if tag in tags and version in pinned:
            if git("rev-parse", f"{tag}^{{tree}}", cwd=repo).strip() != tree:
                raise LitscaffoldError(
                    f"template {version} is released and the template changed since; bump "
                    "litscaffold.__version__ and snapshot again"
                )
            return pinned[version]
        older = sorted((t for t in tags if parse_version(t[1:]) < parse_version(version)),
                       key=lambda t: parse_version(t[1:]))
        parents = ["-p", git("rev-parse", f"{older[-1]}^{{commit}}", cwd=repo).strip()] if older else []
        commit = git("commit-tree", tree, *parents, "-m", f"litscaffold template {version}",
                     cwd=repo, env=SNAPSHOT_ENV).strip()
        git("tag", "-f", tag, commit, cwd=repo)
        newer = [t for t in tags if parse_version(t[1:]) > parse_version(version)]
        if newer:
            raise LitscaffoldError(f"the bundle already holds newer versions {newer}; snapshot those instead")
        bundle_tmp = bundle.with_suffix(".tmp")
        git("bundle", "create", "-q", str(bundle_tmp), "--tags", cwd=repo)
        bundle_tmp.replace(bundle)
    if release:
        releases.write_text(json.dumps({**pinned, version: commit}, indent=2, sort_keys=True) + "\n")
    return commit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m litscaffold.snapshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--release", action="store_true", help="pin this version: it can never move again")
    args = parser.parse_args(argv)
    try:
        commit = snapshot(release=args.release)
    except LitscaffoldError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    print(f"template {current_version()} -> {commit}{' (released)' if args.release else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
