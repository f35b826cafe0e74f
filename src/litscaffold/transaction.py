"""All or nothing: a command's change to a project is committed whole, or the project is left exactly
as it was (working tree, index and HEAD), whatever happens: git refusing the commit, Ctrl-C, SIGTERM,
a full disk.

Before writing, a transaction takes the project's lock, refuses when git is in the middle of
something, and snapshots what it must restore: HEAD, the index file's bytes and the set of files git
does not track. Every file it writes or deletes goes through it, so the rollback touches only those
(and, for `copier update`, which writes where the template says, the tracked files git sees changed
and the new files at paths the template renders). A user's own files are never committed or removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Literal

from . import git as gitops
from .errors import Interrupted, LitscaffoldError
from .git import git_dir
from .git import output as _git_out
from .safety import check_git_idle, inside, project_lock, signals_deferred

# What this process has finished (committed or written whole): a Ctrl-C landing after it must not be
# reported as "nothing was written".
COMPLETED: list[str] = []


def other_files(root: Path) -> set[str]:
    """Every file under `root` git does not track, ignored ones included, whatever git's config says."""
    out = _git_out(root, "-c", "status.showUntrackedFiles=all", "ls-files", "-z", "--others", "--", ".")
    return {p for p in (out or "").split("\0") if p}


class Transaction:
    """`with Transaction(root, "adding model net") as tx:` then tx.move_in / tx.delete / tx.commit."""

    def __init__(self, root: Path, what: str, *, lock: bool = True) -> None:
        self.root = root
        self.what = what
        self._lock = project_lock(root) if lock else None
        self.gitdir: Path | None = None
        self.head: str | None = None
        self.branch: str | None = None
        self.index: bytes | None = None
        self.index_link: Path | None = None
        self.others: set[str] = set()
        self.created: list[str] = []             # files we created (removed on rollback)
        self.created_dirs: list[Path] = []       # folders we created, outermost first
        self.aside: dict[str, Path] = {}         # files we changed or deleted, moved into `undo`
        self.backups: dict[str, bytes] = {}      # the same, in memory, when a rename was not possible
        self.undo: Path | None = None
        self.rolled_back = False
        self.expected: set[str] = set()          # paths copier may create
        self.made_repo = False
        self.kept = False
        self.committed = False
        self.touched = False  # set before the first write: from then on a failure means rollback

    # ---- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> Transaction:  # noqa: PYI034 - Python 3.10 has no typing.Self
        if self._lock is not None:
            self._lock.__enter__()
        try:
            self.gitdir = git_dir(self.root)
            check_git_idle(self.root, self.gitdir)
            if self._lock is not None:
                from .render import clear_stale_scratch

                clear_stale_scratch(self.root)
            self._snapshot()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: object) -> Literal[False]:
        try:
            if error is None or self.kept:
                if self.touched:
                    COMPLETED.append(self.what)
                return False
            if not self.touched:  # refused before writing anything: nothing to undo, nothing to add
                if isinstance(error, KeyboardInterrupt):
                    raise Interrupted(f"interrupted before {self.what} wrote anything") from None
                return False
            with signals_deferred(swallow=True):
                problem = self.rollback()
            undone = f"{self.what} was undone: the project is as it was before"
            if problem:
                undone = f"{self.what} was undone except {problem}"
            if isinstance(error, (KeyboardInterrupt, Interrupted)):
                raise Interrupted(f"interrupted; {undone}") from None
            if isinstance(error, LitscaffoldError):
                if "as it was" not in error.message and "back at its last commit" not in error.message:
                    error.message = f"{error.message}; {undone}"
                return False
            if isinstance(error, OSError):
                where = f" {error.filename}" if error.filename else ""
                raise LitscaffoldError(f"cannot write{where}: {(error.strerror or str(error)).lower()}; "
                                       f"{undone}") from None
            return False
        finally:
            self._release()

    def _release(self) -> None:
        if self.index_link is not None:
            self.index_link.unlink(missing_ok=True)
        # After a success the set-aside files are the old versions; after a rollback they are back in
        # place, except those the message names as kept there.
        if self.undo is not None and not (self.rolled_back and any(k.exists() for k in self.aside.values())):
            shutil.rmtree(self.undo, ignore_errors=True)
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.__exit__(None, None, None)

    def keep(self) -> None:
        """Leave the tree as it is now (an update stopped at a conflict the user resolves)."""
        self.kept = True

    def _snapshot(self) -> None:
        if self.gitdir is None:
            return
        self.head = (_git_out(self.root, "rev-parse", "-q", "--verify", "HEAD") or "").strip() or None
        self.branch = (_git_out(self.root, "symbolic-ref", "-q", "HEAD") or "").strip() or None
        index = self.gitdir / "index"
        self.index = index.read_bytes() if index.is_file() else None
        if self.index is not None:
            # git replaces the index by renaming a new file over it: a hard link keeps the original,
            # and putting it back writes nothing (it works on a full disk).
            link = self.gitdir / f"index.litscaffold-{os.getpid()}"
            with contextlib.suppress(OSError):
                link.unlink(missing_ok=True)
                os.link(index, link)
                self.index_link = link
        self.others = other_files(self.root)

    # ---- the writes -------------------------------------------------------------------------------

    def _make_parents(self, target: Path) -> None:
        missing = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
        for folder in reversed(missing):
            folder.mkdir()
            self.created_dirs.append(folder)

    def move_in(self, source: Path, relative: str) -> None:
        """Move a rendered file to `relative`, a path that must not exist yet."""
        target = inside(self.root, relative)
        self.touched = True
        with signals_deferred():
            self._make_parents(target)
            if os.path.lexists(target):
                raise LitscaffoldError(f"{relative} appeared while litscaffold was writing; run it again")
            os.rename(source, target)
            self.created.append(relative)

    def _set_aside(self, relative: str, target: Path) -> None:
        """Move the file into the undo folder (a rename: putting it back needs no free space)."""
        if relative in self.aside or relative in self.backups:
            return
        if self.undo is None:
            self.undo = Path(tempfile.mkdtemp(prefix=".litscaffold-undo-", dir=self.gitdir or self.root))
        keep = self.undo / str(len(self.aside))
        try:
            os.rename(target, keep)
            self.aside[relative] = keep
        except OSError:  # another file system: keep the bytes in memory instead
            self.backups[relative] = target.read_bytes()
            target.unlink()

    def delete(self, relative: str) -> None:
        target = inside(self.root, relative)
        self.touched = True
        with signals_deferred():
            self._set_aside(relative, target)

    def write(self, relative: str, text: str | bytes) -> None:
        """Replace a file's text, or its bytes (the file before comes back on rollback)."""
        target = inside(self.root, relative)
        self.touched = True
        with signals_deferred():
            self._set_aside(relative, target)
            self.created.append(relative)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)

    def expect(self, paths: set[str]) -> None:
        """Paths copier may create (removed on rollback when they did not exist before), and the
        folders it would make for them."""
        self.touched = True
        self.expected |= paths
        for relative in paths:
            target = inside(self.root, relative)
            missing = [p for p in target.parents if p.is_relative_to(self.root) and not p.exists()]
            self.created_dirs.extend(p for p in reversed(missing) if p not in self.created_dirs)

    def init_repo(self) -> None:
        self.touched = True
        with signals_deferred():
            gitops.init(self.root)
            self.made_repo = True
            self.gitdir = git_dir(self.root)

    def commit(self, paths: list[str], message: str) -> None:
        """Stage and commit exactly `paths`; a refused commit says so (and the rollback follows)."""
        try:
            gitops.commit_paths(self.root, paths, message)
        except LitscaffoldError as error:
            detail = error.message.split(": ", 1)[-1]
            raise LitscaffoldError(f"git refused the commit ({detail}); check your git hooks and signing "
                                   "settings (`git commit` must work here)") from None
        self.committed = True

    # ---- the rollback -----------------------------------------------------------------------------

    def rollback(self) -> str | None:
        """Put back HEAD, the index and every file written; returns what could not be restored."""
        self.rolled_back = True
        problems: list[str] = []
        if self.made_repo:
            shutil.rmtree(self.root / ".git", ignore_errors=True)
        elif self.gitdir is not None:
            self._wait_for_index_lock()
            self._restore_head()
            index = self.gitdir / "index"
            if self.index is None:
                index.unlink(missing_ok=True)
            elif self.index_link is not None and self.index_link.is_file():
                os.replace(self.index_link, index)
            else:
                scratch = self.gitdir / "index.litscaffold-restore"
                scratch.write_bytes(self.index)
                os.replace(scratch, index)
        for relative in reversed(self.created):  # before the set-aside files come back to their places
            target = self.root / relative
            if target.is_file() or target.is_symlink():
                target.unlink(missing_ok=True)
        self.created.clear()
        for relative, keep in self.aside.items():
            try:
                (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
                os.replace(keep, self.root / relative)
            except OSError as error:
                problems.append(f"{relative} (kept in {keep}: {error.strerror})")
        for relative, data in self.backups.items():
            target = self.root / relative
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            except OSError as error:
                problems.append(f"{relative} ({error.strerror})")
        if self.expected and self.gitdir is not None and not self.made_repo:
            self._restore_tracked()
            new = other_files(self.root) - self.others
            self.created.extend(sorted(new & self.expected))
        for relative in reversed(self.created):
            target = self.root / relative
            if target.is_file() or target.is_symlink():
                target.unlink(missing_ok=True)
        for folder in sorted(self.created_dirs, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        return ", ".join(problems) or None

    def _wait_for_index_lock(self) -> None:
        """A git step of ours that was interrupted may still be finishing; its lock goes with it. One that
        stays was left by a killed child of ours (the lock was absent when we started, and we hold the
        project's lock): remove it."""
        assert self.gitdir is not None
        lock = self.gitdir / "index.lock"
        deadline = time.monotonic() + 3
        while lock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        lock.unlink(missing_ok=True)

    def _restore_head(self) -> None:
        now = (_git_out(self.root, "rev-parse", "-q", "--verify", "HEAD") or "").strip() or None
        if now == self.head:
            return
        message = ["-m", f"litscaffold: undo {self.what}"]
        if self.head is None:
            if self.branch:
                gitops.git("update-ref", "-d", self.branch, cwd=self.root, check=False)
        elif self.branch:
            gitops.git("update-ref", *message, self.branch, self.head, cwd=self.root, check=False)
        else:
            gitops.git("update-ref", *message, "--no-deref", "HEAD", self.head, cwd=self.root, check=False)

    def _restore_tracked(self) -> None:
        """Tracked files copier changed or deleted, back from the (restored) index. Copier only runs on
        a clean tree (update's precondition), so every difference is copier's."""
        # Plumbing: `git diff` would rewrite the index we just put back. Files whose stat info alone
        # differs are listed too; rewriting them from the index gives the same bytes.
        changed = _git_out(self.root, "diff-files", "--name-only", "-z", "--relative", "--", ".")
        paths = [p for p in (changed or "").split("\0") if p]
        if paths:
            gitops.run("checkout-index", "-f", "-z", "--stdin", cwd=self.root, input="\0".join(paths),
                       env=gitops.READ_ONLY)
