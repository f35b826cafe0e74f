"""`litscaffold update --dry-run`: the same update in a scratch clone, its diff and its per-file report; the
project itself is left alone (it may even have uncommitted changes)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from . import git as gitops
from .errors import UpdateConflict
from .preflight import git_read
from .report import UpdateReport


def dry_run(root: Path, names: str, installed: str, echo: Callable[[str], None], report: UpdateReport,
            update_in: Callable[[Path], None]) -> None:
    """The same update (`update_in(clone)`) in a scratch clone of HEAD; show its diff and its report, leave the
    project alone."""
    top = Path(git_read(root, "rev-parse", "--show-toplevel").strip())
    inner = root.resolve().relative_to(top.resolve())
    with tempfile.TemporaryDirectory(prefix="litscaffold-dry-run-") as scratch:
        clone = Path(scratch) / "clone"
        gitops.git("clone", "-q", str(top), str(clone), cwd=Path(scratch))
        work = clone / inner
        # The scratch clone's commits are thrown away: the user's signing setup has no say in them.
        gitops.git("config", "commit.gpgsign", "false", cwd=clone)
        start = git_read(work, "rev-parse", "HEAD").strip()
        conflict: UpdateConflict | None = None
        try:
            update_in(work)
        except UpdateConflict as error:
            conflict = error
        gitops.git("add", "-A", "--", ".", cwd=work)
        diff = gitops.git("diff", "--cached", "--no-color", "--relative", start, "--", ".", cwd=work)
    if git_read(root, "status", "--porcelain", "--untracked-files=all", "--", ".").strip():
        echo("Dry run: of your last commit (your uncommitted changes are left out, and left alone)")
    echo(f"Dry run: updating {names} to template {installed} would change:")
    echo(diff.rstrip("\n") or "(no changes)")
    echo("Dry run: what would happen to each file:")
    for line in report.lines():
        echo(line)
    for part in report.parts:
        part.committed = None  # the scratch clone's commits are gone
    if conflict is not None:
        report.stopped = conflict.message
        raise UpdateConflict(f"dry run: {conflict.message.split('; resolve')[0]}; nothing was changed")
    echo("Dry run: nothing was changed; run `litscaffold update` to apply it")
