"""Guards every command that changes a project shares: paths stay inside it, one litscaffold at a
time, git is not in the middle of something, and signals wait while a step must not stop halfway."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from .errors import ProjectBusy, UnsafePath

# Ctrl-C, a kill (SIGTERM) and a closed terminal or dropped ssh session (SIGHUP) all mean "stop": each takes
# the same path, whatever is half-done is undone.
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# What git is in the middle of, by the file it keeps in its git dir, and how the user ends it.
_IN_PROGRESS = (
    ("MERGE_HEAD", "a merge", "`git commit` to finish it or `git merge --abort`"),
    ("rebase-merge", "a rebase", "`git rebase --continue` or `git rebase --abort`"),
    ("rebase-apply", "a rebase or `git am`", "`git rebase --continue` or `git rebase --abort`"),
    ("CHERRY_PICK_HEAD", "a cherry-pick", "`git cherry-pick --continue` or `git cherry-pick --abort`"),
    ("REVERT_HEAD", "a revert", "`git revert --continue` or `git revert --abort`"),
)


def inside(root: Path, relative: str) -> Path:
    """`root / relative`, refused unless it stays inside root: no absolute path, no `..`, and no
    symlink on the way that leads out of the project (what the path names is written or deleted)."""
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts or "\\" in relative:
        raise UnsafePath(f"{relative!r} is not a path inside the project; refusing to write or delete it")
    real_root = root.resolve()
    target = root / relative
    for depth in range(1, len(parts) + 1):
        step = root.joinpath(*parts[:depth])
        if step.is_symlink() and not step.resolve().is_relative_to(real_root):
            shown = PurePosixPath(*parts[:depth]).as_posix()
            raise UnsafePath(
                f"{shown} is a symlink to {os.readlink(step)}, outside the project; refusing to write through it "
                f"(replace the link with a folder of the project, or remove it)"
            )
    return target


def check_git_idle(root: Path, gitdir: Path | None) -> None:
    """Refuse, before anything is written, when git would refuse our commit or is busy."""
    if gitdir is None:
        return
    for marker, what, finish in _IN_PROGRESS:
        if (gitdir / marker).exists():
            raise ProjectBusy(f"{what} is in progress in {root} (git would refuse litscaffold's commit); "
                              f"finish it with {finish}, then run litscaffold again")
    lock = gitdir / "index.lock"
    if lock.exists():
        raise ProjectBusy(f"{lock} exists: a git command is running in this repository, or one crashed; "
                          f"when no git command is running, delete it (`rm {lock}`) and run litscaffold again")


@contextlib.contextmanager
def project_lock(root: Path) -> Iterator[None]:
    """One litscaffold at a time per project: an exclusive flock on the project folder itself (no lock
    file is left behind). A second command waits, and says so."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock; concurrent commands are not serialised
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another litscaffold command in {root} to finish...", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def signals_deferred(swallow: bool = False) -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done, then raise KeyboardInterrupt (or drop it when
    `swallow`: the caller is already reporting an interruption or failure)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: pressed.append(signum)) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if pressed and not swallow:
        raise KeyboardInterrupt


def sigterm_is_ctrl_c() -> None:
    """SIGTERM and SIGHUP take the same clean path as Ctrl-C: whatever is half-done is undone. (Left to their
    default, both end the process on the spot, half an update applied.)"""
    if threading.current_thread() is threading.main_thread():
        for sig in _SIGNALS[1:]:
            signal.signal(sig, signal.default_int_handler)
