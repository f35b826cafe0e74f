"""The few git operations litscaffold needs, run through the git executable."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .errors import LitscaffoldError

# Commits litscaffold makes in a user's project carry the user's identity when git has one;
# this fallback only keeps a fresh machine without `user.name` from failing the first commit.
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "litscaffold",
    "GIT_AUTHOR_EMAIL": "litscaffold@localhost",
    "GIT_COMMITTER_NAME": "litscaffold",
    "GIT_COMMITTER_EMAIL": "litscaffold@localhost",
}


def git(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run git and return its stdout; a failure becomes a LitscaffoldError with git's own words."""
    if shutil.which("git") is None:
        raise LitscaffoldError("git is not installed; install git, or pass --no-git to skip the repository")
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LitscaffoldError(f"git {args[0]} failed in {cwd}: {detail[-1] if detail else proc.returncode}")
    return proc.stdout


def is_repo(path: Path) -> bool:
    """True when `path` is the top level of a git work tree."""
    if shutil.which("git") is None or not path.is_dir():
        return False
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True
    )
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == path.resolve()


def status(path: Path) -> list[str]:
    """Porcelain status lines (empty when the tree is clean)."""
    return [line for line in git("status", "--porcelain", cwd=path).splitlines() if line]


def unmerged_files(path: Path) -> list[str]:
    """Files git still considers conflicted."""
    out = git("diff", "--name-only", "--diff-filter=U", cwd=path)
    return sorted(set(out.split()))


def commit(path: Path, message: str, *args: str) -> None:
    """`git commit` with the user's identity, or a fallback one when git has none configured."""
    command = ("commit", "--no-verify", "-q", "-m", message, *args)
    try:
        git(*command, cwd=path)
    except LitscaffoldError as error:
        if not any(hint in error.message for hint in ("ident", "who you are", "auto-detect")):
            raise
        git(*command, cwd=path, env=_FALLBACK_IDENTITY)


def commit_all(path: Path, message: str) -> bool:
    """Stage everything and commit; False when there was nothing to commit."""
    git("add", "-A", cwd=path)
    if not status(path):
        return False
    commit(path, message)
    return True


def commit_paths(path: Path, paths: list[str], message: str) -> None:
    """Stage and commit exactly `paths` (additions and deletions)."""
    git("add", "-A", "--", *paths, cwd=path)
    commit(path, message, "--", *paths)


def init(path: Path) -> None:
    git("init", "-q", cwd=path)
