"""Every git command litscaffold runs goes through here: one way to start git, one way to read a repository
without changing it, one way to commit exactly the files litscaffold wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
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
# Looking must not rewrite .git/index behind the user's back (a refused command leaves the project
# byte-identical): git's optional locks are what `git status` would otherwise take to refresh it.
READ_ONLY = {"GIT_OPTIONAL_LOCKS": "0"}
# File names are names, never pathspec magic (a file called ':(glob)*' must not match everything).
LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}


def require_git() -> None:
    """litscaffold reads its own template history with git (copier renders nothing without it), so every
    command needs git, --no-git included: say so before anything is written."""
    if shutil.which("git") is None:
        raise LitscaffoldError("git is not installed; litscaffold reads its template history with git: install it")


# What tells git which repository to work on instead of the one around its working directory. git exports
# GIT_DIR to hooks (and GIT_WORK_TREE, GIT_INDEX_FILE in linked worktrees): a litscaffold started from a hook
# would commit, fetch or move tags in the hook's repository. The list is `git rev-parse --local-env-vars` (the
# variables git itself drops when it turns to another repository; a test keeps it complete on the machine's
# git), plus GIT_NAMESPACE, which would move every ref litscaffold writes into a namespace.
REPOSITORY_VARIABLES = (
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY", "GIT_DIR", "GIT_WORK_TREE", "GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE", "GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", "GIT_PREFIX", "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_SHALLOW_FILE", "GIT_COMMON_DIR", "GIT_NAMESPACE",
)


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every git process litscaffold starts: the user's, less what would point git at
    another repository than the one it runs in, plus `extra`."""
    clean = {key: value for key, value in os.environ.items() if key not in REPOSITORY_VARIABLES}
    return {**clean, **(extra or {})}


def forget_inherited_repository() -> None:
    """Clear REPOSITORY_VARIABLES from this process's own environment, for the whole command: nothing litscaffold
    runs has a use for them. Copier runs git through plumbum, which copies os.environ once, when it is
    imported, so the CLI calls this first thing; environment() and render.copier_git() keep our and copier's
    git calls clean for library callers too."""
    for key in REPOSITORY_VARIABLES:
        os.environ.pop(key, None)


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, input: str | bytes | None = None,
        text: bool = True) -> subprocess.CompletedProcess:
    """Run git to the end and return what it did; its exit code is the caller's to judge."""
    return subprocess.run(["git", *args], cwd=cwd, env=environment(env), capture_output=True, text=text,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


def git(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run git and return its stdout; a failure becomes a LitscaffoldError with git's own words."""
    require_git()
    proc = subprocess.Popen(
        ["git", *args], cwd=cwd, env=environment(env), stdin=subprocess.DEVNULL,
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


def read(root: Path, *args: str) -> str:
    """A git command that only looks; a failing `rev-parse` (a ref that does not exist) reads as ''."""
    return git(*args, cwd=root, env=READ_ONLY, check=args[:1] != ("rev-parse",))


def output(root: Path, *args: str) -> str | None:
    """A looking git command's stdout, or None when git fails (not a repository, no such ref)."""
    proc = run(*args, cwd=root, env=READ_ONLY)
    return proc.stdout if proc.returncode == 0 else None


def committed(root: Path, relative: str) -> bytes:
    """The bytes HEAD holds at `relative` (a path from `root`); empty when it holds none."""
    return run("cat-file", "blob", f"HEAD:./{relative}", cwd=root, env=READ_ONLY, text=False).stdout


def git_dir(root: Path) -> Path | None:
    """The git directory of the repository holding `root`, or None when it is not in one."""
    found = (output(root, "rev-parse", "--absolute-git-dir") or "").strip()
    return Path(found) if found else None


def in_work_tree(root: Path) -> bool:
    """True when `root` is inside a git work tree (at its top or below)."""
    return (output(root, "rev-parse", "--is-inside-work-tree") or "").strip() == "true"


def is_repo(path: Path) -> bool:
    """True when `path` is the top level of a git work tree."""
    if shutil.which("git") is None or not path.is_dir():
        return False
    top = (output(path, "rev-parse", "--show-toplevel") or "").strip()
    return bool(top) and Path(top).resolve() == path.resolve()


def is_clean_repo(path: Path) -> bool:
    """True when `path` is in a git work tree with nothing to commit under it (one git call: it runs per add).
    Only `path` counts: in a monorepo, another project's work in progress is not ours to wait for."""
    if shutil.which("git") is None:
        return False
    proc = run("status", "--porcelain", "--", ".", cwd=path, env=READ_ONLY)
    return proc.returncode == 0 and not proc.stdout.strip()


def changes(root: Path, *options: str) -> list[tuple[str, str]]:
    """`git status` of everything under `root` as (XY code, path relative to root), untracked files one by one,
    renames as a deletion and an addition. git prints status paths from the top of the repository; a project
    that is a subfolder of a bigger one (a monorepo) gets its own paths, the form every other call here uses."""
    prefix = read(root, "rev-parse", "--show-prefix").strip()
    listed = read(root, "-c", "status.showUntrackedFiles=all", "status", "--porcelain", "-z", "--untracked-files=all",
                  "--no-renames", *options, "--", ".")
    return [(entry[:2], entry[3:].removeprefix(prefix)) for entry in listed.split("\0") if len(entry) > 3]


def unmerged(root: Path) -> list[str]:
    """Conflicted files in the index (plumbing: unlike `git diff`, it never rewrites the index)."""
    lines = read(root, "ls-files", "--unmerged", "--", ".").splitlines()
    return sorted({line.split("\t", 1)[1] for line in lines if "\t" in line})


def commit_paths(path: Path, paths: list[str], message: str) -> None:
    """Stage and commit exactly `paths` (additions and deletions), nothing else of the user's. `-f`: these are
    the files litscaffold wrote, named one by one; an ignore rule meant for the user's own files (a global
    excludesFile with `data/`, `*.py` or `*.ipynb` is common on ML machines) must not leave the project's
    source uncommitted, where `update` could not merge it."""
    git("add", "-f", "-A", "--", *paths, cwd=path, env=LITERAL)
    command = ("commit", "--no-verify", "-q", "-m", message, "--", *paths)
    try:
        git(*command, cwd=path, env=LITERAL)
    except LitscaffoldError as error:
        if not any(hint in error.message for hint in ("ident", "who you are", "auto-detect")):
            raise
        git(*command, cwd=path, env={**LITERAL, **_FALLBACK_IDENTITY})


def init(path: Path) -> None:
    git("init", "-q", cwd=path)


def merge_file(ours: bytes, base: bytes, theirs: bytes, labels: tuple[str, str, str]) -> tuple[bytes, int]:
    """Three-way line merge (`git merge-file`): the merged bytes, with conflict markers labelled `labels`
    (ours, base, theirs), and the number of conflicts (0: merged cleanly)."""
    with tempfile.TemporaryDirectory(prefix="litscaffold-merge-") as scratch:
        files = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(scratch) / name
            path.write_bytes(data)
            files.append(str(path))
        proc = run("merge-file", "-p", "-L", labels[0], "-L", labels[1], "-L", labels[2], *files,
                   cwd=Path(scratch), text=False)
    if proc.returncode < 0 or proc.returncode > 127:
        raise OSError(f"git merge-file failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout, proc.returncode
