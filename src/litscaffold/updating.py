"""`litscaffold update`: bring a project's template parts forward (`check` lives in checking.py).

A project has template *parts* (project.py's Part): the project itself and each added model or dataset, each
with its own answers file and recorded template version. `update` runs `copier update` on every part behind
the installed version, project first, committing after each so the next one starts from a clean tree (copier
refuses a dirty one), and stops at the first conflict.

One update is one `Update` object (copier's own `Worker` is the pattern): `prepare` checks everything that
would make copier fail half-way (preflight.py) and renders what the merges need, before anything is written;
`run` applies it to the project inside one Transaction (committed whole, or undone); `dry_run` applies the
same update to a scratch clone and shows what it did.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import git as gitops
from . import merges
from .dropped import keep_edited_dropped_files
from .dryrun import has_uncommitted, scratch_clone
from .errors import UpdateConflict, UpdateError, UsageError
from .preflight import check_overwrites, check_preconditions, check_versions_available
from .project import KINDS, Part, Project, parts_of
from .report import PartReport, UpdateReport, combine, outcomes_from_status, with_new_homes
from .report import kept as report_kept
from .safety import check_git_idle, project_lock
from .template import TemplateSource, current_version, tag_of
from .transaction import Transaction


def update_project(project: Project, dry_run: bool = False, only: str | None = None,
                   echo: Callable[[str], None] = print, source: TemplateSource | None = None,
                   report: UpdateReport | None = None, diff: bool = False) -> UpdateReport:
    """Update every part behind the installed template version (or just `only`), keeping edits: all of
    it committed, or (interrupted, refused by git, ...) the project exactly as it was. Returns the report of
    what happened to every file (also when a conflict stops the update: then it is on the UpdateConflict)."""
    update = Update(project, only=only, source=source, echo=echo, report=report or UpdateReport(dry_run=dry_run))
    return update.dry_run(diff=diff) if dry_run else update.run()


class Update:
    """One update of one project: what it works on, what `prepare` found out, what it did (`report`)."""

    def __init__(self, project: Project, *, only: str | None = None, source: TemplateSource | None = None,
                 echo: Callable[[str], None] = print, report: UpdateReport | None = None) -> None:
        self.project = project
        self.only = only
        self.source = source or TemplateSource()
        self.installed = current_version()
        self.echo = echo
        self.report = report or UpdateReport()
        self.parts: list[Part] = []                   # the parts behind the installed version, in order
        self.renders: dict[str, merges.Renders] = {}  # per part copier runs on: what old and new render
        self.tx: Transaction | None = None            # the real update's; None in a dry run's clone

    @property
    def names(self) -> str:
        return ", ".join(p.label for p in self.parts)

    # ---- before anything is written -----------------------------------------------------------------

    def prepare(self, dry_run: bool = False) -> bool:
        """Check everything that would stop the update halfway, and render, for each part copier will update,
        what its recorded and the installed version give. False when every part is current already."""
        root = self.project.root
        parts = _select(parts_of(self.project), self.only)
        check_preconditions(root, parts, self.source, self.installed, dry_run=dry_run)
        self.parts = [p for p in parts if p.version != self.installed]
        if not self.parts:
            self.echo(f"Already current: {', '.join(p.label for p in parts)} at template {self.installed}")
            return False
        self.source.ensure()
        check_versions_available(self.parts, self.source, self.installed)
        self.renders = {part.key: self._render(part) for part in self.parts if self._template_changed(part)}
        for renders in self.renders.values():
            check_overwrites(root, set(renders.new), self.installed)
        return True

    def _render(self, part: Part) -> merges.Renders:
        """Every file the part's recorded version and the installed version render (what copier merges)."""
        from .render import pristine

        def files(version: str) -> dict[str, bytes]:
            with pristine(self.source, part.answers, version=version, answers_file=part.answers_file) as rendered:
                return {p.relative_to(rendered).as_posix(): p.read_bytes()
                        for p in rendered.rglob("*") if p.is_file()}

        return merges.Renders(old=files(part.version or self.installed), new=files(self.installed))

    def _template_changed(self, part: Part) -> bool:
        """Did anything this part renders from change between its version and the installed one? (Every
        changed path lying in another part's template/<kind>/ means no.)"""
        changed = gitops.git("diff", "--name-only", tag_of(part.version or ""), tag_of(self.installed),
                             cwd=self.source.repo).splitlines()
        own = part.answers.get("component", "project")
        others = tuple(f"template/{kind}/" for kind in ("project", *KINDS) if kind != own)
        return not all(path.startswith(others) for path in changed)

    # ---- the real update and the dry run ------------------------------------------------------------

    def run(self) -> UpdateReport:
        """Apply the update to the project: every part committed, or the project as it was."""
        self.project.require_intact()
        with Transaction(self.project.root, "the update") as tx:
            if not self.prepare():
                return self.report
            self.tx = tx
            try:
                self.apply(self.project.root, self.echo)
            except UpdateConflict as conflict:
                tx.keep()  # the merged files wait for the user; earlier parts are committed
                self.report.stopped = conflict.message
                conflict.report = self.report
                for line in self.report.lines():
                    self.echo(line)
                raise
            finally:
                self.tx = None
        for line in self.report.lines():
            self.echo(line)
        self.echo(f"Done: {self.names} now at template {self.installed}")
        return self.report

    def dry_run(self, diff: bool = False) -> UpdateReport:
        """The same update in a scratch clone of HEAD: show its per-file report (and with `diff`, the whole
        diff, which runs to thousands of lines for a release), leave the project alone."""
        root = self.project.root
        self.project.require_intact()
        with project_lock(root):
            check_git_idle(root, gitops.git_dir(root))
            if not self.prepare(dry_run=True):
                return self.report
            conflict: UpdateConflict | None = None
            with scratch_clone(root) as clone:
                try:
                    self.apply(clone.work, lambda line: None)
                except UpdateConflict as error:
                    conflict = error
                changes = clone.diff() if diff else ""
            if has_uncommitted(root):
                self.echo("Dry run: of your last commit (your uncommitted changes are left out, and left alone)")
        self.echo(f"Dry run: updating {self.names} to template {self.installed}; what would happen to each file:")
        for line in self.report.lines():
            self.echo(line)
        if diff:
            self.echo("Dry run: the diff it would make:")
            self.echo(changes.rstrip("\n") or "(no changes)")
        for part in self.report.parts:
            part.committed = None  # the scratch clone's commits are gone
        if conflict is not None:
            self.report.stopped = conflict.message
            raise UpdateConflict(f"dry run: {conflict.message.split('; resolve')[0]}; nothing was changed")
        self.echo("Dry run: nothing was changed; run `litscaffold update` to apply it"
                  + ("" if diff else " (`--dry-run --diff` shows the diff)"))
        return self.report

    def apply(self, root: Path, echo: Callable[[str], None]) -> None:
        """Update each part in `root` (the project, or a dry run's clone of it) and commit it."""
        done: list[str] = []
        for part in self.parts:
            echo(f"Updating {part.label}: template {part.version} -> {self.installed}")
            part_report = self.report.start(part.label, part.version, self.installed)
            if part.key not in self.renders and self._record_version(root, part):
                echo("  its template did not change: only the recorded version moves")
                paths = [part.answers_file]
            else:
                paths = self._merge(root, part, part_report, done)
            message = f"Update {part.label} to litscaffold template {self.installed}"
            if self.tx is not None:
                self.tx.commit(paths, message)
            else:
                gitops.commit_paths(root, paths, message)
            commit = gitops.read(root, "rev-parse", "--short", "HEAD").strip()
            echo(f"  committed {commit}")
            part_report.committed = commit
            done.append(part.label)

    def _merge(self, root: Path, part: Part, part_report: PartReport, done: list[str]) -> list[str]:
        """copier's update of one part, then the merges it gets wrong redone; returns the paths to commit."""
        renders = self.renders[part.key]
        expected = set(renders.new)
        before = merges.inspect(root, renders)
        if self.tx is not None:
            self.tx.expect(expected)
        _run_copier(root, part, self.installed)
        kept = keep_edited_dropped_files(root, part, self.source)

        def expect(paths: set[str]) -> None:
            expected.update(paths)
            if self.tx is not None:
                self.tx.expect(paths)

        special = merges.redo(root, renders, before, expect)
        conflicted = _conflicted(root)
        status = gitops.changes(root, "--ignored=matching")
        part_report.files = with_new_homes(combine(outcomes_from_status(status, expected, set(conflicted)),
                                                   special + [report_kept(path) for path in kept]),
                                           part.version, self.installed)
        if conflicted:
            committed = f"{', '.join(done)} committed, " if done else ""
            raise UpdateConflict(
                f"{part.label} merged with conflicts in {', '.join(conflicted)} ({committed}later parts "
                "not started); resolve the <<<<<<< blocks, commit, then run `litscaffold update` again"
            )
        return _changed_paths(root, expected)

    def _record_version(self, root: Path, part: Part) -> bool:
        """When the part's template did not change, copier would only rewrite `_commit` in its answers file:
        do just that and skip copier's three renders. False when copier must run after all."""
        answers = root / part.answers_file
        text, count = re.subn(rf"^_commit: {re.escape(tag_of(part.version or ''))}$",
                              f"_commit: {tag_of(self.installed)}", answers.read_text(), flags=re.MULTILINE)
        if count != 1:
            return False
        if self.tx is not None:
            self.tx.write(part.answers_file, text)
        else:
            answers.write_text(text)
        return True


def _select(parts: list[Part], only: str | None) -> list[Part]:
    if only is None:
        return parts
    wanted = only.strip()
    kind, _, name = wanted.partition(":")
    if wanted != "project" and (kind not in KINDS or not name):
        raise UsageError(f"--only {only!r}: use project, model:NAME or dataset:NAME")
    chosen = [p for p in parts if p.key == wanted]
    if not chosen:
        known = ", ".join(p.key for p in parts)
        raise UsageError(f"--only {only!r}: no such part with its own answers file; the project has: {known}")
    return chosen


def _changed_paths(root: Path, expected: set[str]) -> list[str]:
    """What the update changed: tracked files that differ from HEAD, and new files at paths the template
    renders. A user's own untracked file is never among them, whatever git's configuration; a new file of the
    template's is, even when an ignore rule of the user's matches it (preflight refused a user's file there)."""
    changed = gitops.read(root, "diff", "--name-only", "-z", "--no-renames", "--relative", "HEAD", "--", ".")
    new = gitops.read(root, "-c", "status.showUntrackedFiles=all", "ls-files", "-z", "--others", "--", ".")
    paths = {p for p in changed.split("\0") if p} | ({p for p in new.split("\0") if p} & expected)
    return sorted(paths)


def _run_copier(root: Path, part: Part, installed: str) -> None:
    """`copier update` of one answers file; any failure propagates and the transaction undoes it."""
    import copier
    from copier.errors import CopierError
    from plumbum import ProcessExecutionError

    from .render import copier_git, copier_temporaries

    try:
        with copier_git(), copier_temporaries(Path(tempfile.gettempdir())):
            copier.run_update(
                root,
                answers_file=part.answers_file,
                vcs_ref=tag_of(installed),
                settings=copier.Settings(),
                conflict="inline",
                overwrite=True,
                defaults=True,
                skip_answered=True,
                quiet=True,
                unsafe=False,
            )
    except (CopierError, ValueError, ProcessExecutionError) as error:
        detail = str(error).strip().splitlines()
        raise UpdateError(f"copier could not update {part.label}: {detail[0] if detail else type(error).__name__}"
                          "; the project is back at its last commit") from None
    except OSError as error:
        where = Path(error.filename).name if error.filename else part.label
        raise UpdateError(f"cannot write {where} while updating {part.label}: "
                          f"{(error.strerror or str(error)).lower()}; fix it and run `litscaffold update` again"
                          ) from None


def _conflicted(root: Path) -> list[str]:
    """Files the update left conflicted: unmerged in the index, or holding copier's markers."""
    conflicted = set(gitops.unmerged(root))
    for _, relative in gitops.changes(root):
        if (root / relative).is_file() and merges.has_markers(root / relative):
            conflicted.add(relative)
    return sorted(conflicted)
