"""`litscaffold update --dry-run`: the same update in a scratch clone of the last commit; the project itself is
left alone (it may even have uncommitted changes). Copier's `pretend=True` prints nothing for an update, so the
only faithful preview is the update itself, applied where it does no harm."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import git as gitops


@dataclass
class ScratchClone:
    """A throw-away clone of the project's repository at HEAD; `work` is the project inside it."""

    work: Path
    start: str  # the commit it started from

    def diff(self) -> str:
        """Everything the update changed in the clone, as one diff against where it started."""
        gitops.git("add", "-A", "--", ".", cwd=self.work)
        return gitops.git("diff", "--cached", "--no-color", "--relative", self.start, "--", ".", cwd=self.work)


@contextlib.contextmanager
def scratch_clone(root: Path) -> Iterator[ScratchClone]:
    """A clone of the repository holding `root` at HEAD, removed afterwards whatever happens."""
    top = Path(gitops.read(root, "rev-parse", "--show-toplevel").strip())
    inner = root.resolve().relative_to(top.resolve())
    with tempfile.TemporaryDirectory(prefix="litscaffold-dry-run-") as scratch:
        clone = Path(scratch) / "clone"
        # core.autocrlf=false: the clone holds the committed bytes, as the project's files written by litscaffold
        # do; a user's autocrlf=true would check out CRLF files and foresee an update of other files.
        clone_command = ("clone", "-q", "-c", "core.autocrlf=false", str(top), str(clone))
        if inner == Path("."):
            gitops.git(*clone_command, cwd=Path(scratch))
        else:  # a project inside a bigger repository (a monorepo): check out its own folder, not all of it
            gitops.git(*clone_command, "--no-checkout", cwd=Path(scratch))
            gitops.git("sparse-checkout", "set", "--cone", inner.as_posix(), cwd=clone)
            gitops.git("checkout", "-q", cwd=clone)
        # The scratch clone's commits are thrown away: the user's signing setup has no say in them.
        gitops.git("config", "commit.gpgsign", "false", cwd=clone)
        work = clone / inner
        yield ScratchClone(work, gitops.read(work, "rev-parse", "HEAD").strip())


def has_uncommitted(root: Path) -> bool:
    """Would the dry run leave something of the project out (it clones the last commit)?"""
    return bool(gitops.read(root, "status", "--porcelain", "--untracked-files=all", "--", ".").strip())
