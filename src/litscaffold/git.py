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


def require_git() -> None:
    """litscaffold reads its own template history with git (copier renders nothing without it), so every
    command needs git, --no-git included: say so before anything is written."""
    if shutil.which("git") is None:
        raise LitscaffoldError("git is not installed; litscaffold reads its template history with git: install it")


def git(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run git and return its stdout; a failure becomes a LitscaffoldError with git's own words."""
    require_git()
    proc = subprocess.Popen(
        ["git", *args], cwd=cwd, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # Ctrl-C on the terminal reaches litscaffold, which undoes; git finishes its step
    )
    try:
        stdout, stderr = proc.communicate()
    except KeyboardInterrupt:
        proc.communicate()  # let git finish its step: killed halfway it would leave .git/index.lock behind
        raise
    if check and proc.returncode != 0:
        detail = (stderr or stdout).strip().splitlines()
        raise LitscaffoldError(f"git {args[0]} failed in {cwd}: {detail[-1] if detail else proc.returncode}")
    return stdout


def is_repo(path: Path) -> bool:
    """True when `path` is the top level of a git work tree."""
    if shutil.which("git") is None or not path.is_dir():
        return False
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True
    )
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == path.resolve()


def is_clean_repo(path: Path) -> bool:
    """True when `path` is in a git work tree with nothing to commit (one git call: it runs per add)."""
    if shutil.which("git") is None:
        return False
    # GIT_OPTIONAL_LOCKS=0: looking must not rewrite the index (a refused command changes nothing)
    proc = subprocess.run(["git", "status", "--porcelain"], cwd=path, capture_output=True, text=True,
                          env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    return proc.returncode == 0 and not proc.stdout.strip()


# File names are names, never pathspec magic (a file called ':(glob)*' must not match everything).
_LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}


def commit_paths(path: Path, paths: list[str], message: str) -> None:
    """Stage and commit exactly `paths` (additions and deletions), nothing else of the user's."""
    git("add", "-A", "--", *paths, cwd=path, env=_LITERAL)
    command = ("commit", "--no-verify", "-q", "-m", message, "--", *paths)
    try:
        git(*command, cwd=path, env=_LITERAL)
    except LitscaffoldError as error:
        if not any(hint in error.message for hint in ("ident", "who you are", "auto-detect")):
            raise
        git(*command, cwd=path, env={**_LITERAL, **_FALLBACK_IDENTITY})


def init(path: Path) -> None:
    git("init", "-q", cwd=path)
