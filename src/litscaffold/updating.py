"""`litscaffold update`: bring a project's template parts forward (`check` lives in checking.py).

A project has template *parts*: the project itself (`.copier-answers.yml`) and each added model or
dataset (`.copier-answers.<kind>-<name>.yml`). Each part records the template version it was
rendered with. `update` runs `copier update` on every part behind the installed version, project
first, committing after each so the next one starts from a clean tree (copier refuses a dirty one),
and stops at the first conflict. Everything that would make copier fail half-way is checked first
(preflight.py), and the whole update is one transaction: committed whole, or undone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import dryrun, merges
from . import git as gitops
from .dropped import keep_edited_dropped_files
from .errors import UpdateConflict, UpdateError, UsageError
from .preflight import (
    check_overwrites,
    check_preconditions,
    check_versions_available,
    git_read,
    has_markers,
    unmerged,
)
from .project import KINDS, PROJECT_ANSWERS, Project, read_answers
from .report import UpdateReport, combine, outcomes_from_status
from .report import kept as report_kept
from .safety import check_git_idle, git_dir, project_lock
from .template import TemplateSource, current_version, tag_of, version_of
from .transaction import Transaction

_READ_ONLY = {"GIT_OPTIONAL_LOCKS": "0"}


@dataclass(frozen=True)
class Part:
    """Something rendered from the template with its own answers file."""

    key: str           # "project", "model:my_net", "dataset:sales" (the --only value)
    answers_file: str
    answers: dict[str, Any]

    @property
    def version(self) -> str | None:
        return version_of(self.answers.get("_commit"))

    @property
    def label(self) -> str:
        return self.key.replace(":", " ")


def parts_of(project: Project) -> list[Part]:
    """The project, then its added components (sorted), each with its answers."""
    parts = [Part("project", PROJECT_ANSWERS, project.answers)]
    for component in project.components():
        if component.owner == "component" and component.answers_file:
            answers = read_answers(project.root / component.answers_file)
            parts.append(Part(f"{component.kind}:{component.name}", component.answers_file, answers))
    return parts


# ---- update ----------------------------------------------------------------------------------------

def update_project(project: Project, dry_run: bool = False, only: str | None = None,
                   echo: Callable[[str], None] = print, source: TemplateSource | None = None,
                   report: UpdateReport | None = None) -> UpdateReport:
    """Update every part behind the installed template version (or just `only`), keeping edits: all of
    it committed, or (interrupted, refused by git, ...) the project exactly as it was. Returns the report of
    what happened to every file (also when a conflict stops the update: then it is on the UpdateConflict)."""
    installed = current_version()
    project.require_intact()
    source = source or TemplateSource()
    report = report or UpdateReport(dry_run=dry_run)
    if dry_run:
        with project_lock(project.root):
            check_git_idle(project.root, git_dir(project.root))
            stale, rendered = _prepare(project, only, source, installed, echo, dry_run=True)
            if stale:
                dryrun.dry_run(project.root, _names(stale), installed, echo, report,
                        lambda clone: _update_parts(clone, stale, installed, source, lambda line: None, rendered,
                                                    report))
        return report
    with Transaction(project.root, "the update") as tx:
        stale, rendered = _prepare(project, only, source, installed, echo)
        if not stale:
            return report
        try:
            _update_parts(project.root, stale, installed, source, echo, rendered, report, tx=tx)
        except UpdateConflict as conflict:
            tx.keep()  # the merged files wait for the user; earlier parts are committed
            report.stopped = conflict.message
            conflict.report = report
            for line in report.lines():
                echo(line)
            raise
    for line in report.lines():
        echo(line)
    echo(f"Done: {_names(stale)} now at template {installed}")
    return report


def _prepare(project: Project, only: str | None, source: TemplateSource, installed: str,
             echo: Callable[[str], None], dry_run: bool = False) -> tuple[list[Part], dict[str, merges.Renders]]:
    """The parts to update, once everything that would stop the update halfway has been checked, and
    for each part copier will update, the files the installed version renders."""
    parts = _select(parts_of(project), only)
    check_preconditions(project.root, parts, source, installed, dry_run=dry_run)
    stale = [p for p in parts if p.version != installed]
    if not stale:
        echo(f"Already current: {_names(parts)} at template {installed}")
        return [], {}
    source.ensure()
    check_versions_available(stale, source, installed)
    rendered = {part.key: _renders(source, part, installed) for part in stale
                if _template_changed(part, source, installed)}
    for renders in rendered.values():
        check_overwrites(project.root, set(renders.new), installed)
    return stale, rendered


def _renders(source: TemplateSource, part: Part, installed: str) -> merges.Renders:
    """Every file the part's recorded version and the installed version render (what copier merges)."""
    from .render import pristine

    def files(version: str) -> dict[str, bytes]:
        with pristine(source, part.answers, version=version, answers_file=part.answers_file) as rendered:
            return {p.relative_to(rendered).as_posix(): p.read_bytes() for p in rendered.rglob("*") if p.is_file()}

    return merges.Renders(old=files(part.version or installed), new=files(installed))


def _names(parts: list[Part]) -> str:
    return ", ".join(p.label for p in parts)


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


def _update_parts(root: Path, parts: list[Part], installed: str, source: TemplateSource,
                  echo: Callable[[str], None], rendered: dict[str, merges.Renders], report: UpdateReport,
                  tx: Transaction | None = None) -> None:
    done: list[str] = []
    for part in parts:
        echo(f"Updating {part.label}: template {part.version} -> {installed}")
        part_report = report.start(part.label, part.version, installed)
        if part.key not in rendered and _record_version(root, part, installed, tx):
            echo("  its template did not change: only the recorded version moves")
            paths = [part.answers_file]
        else:
            renders = rendered[part.key]
            expected = set(renders.new)
            before = merges.inspect(root, renders)
            if tx is not None:
                tx.expect(expected)
            _run_copier(root, part, installed)
            kept = keep_edited_dropped_files(root, part, source)

            def expect(paths: set[str], expected: set[str] = expected) -> None:
                expected |= paths
                if tx is not None:
                    tx.expect(paths)

            special = merges.redo(root, renders, before, expect)
            conflicted = _conflicted(root)
            status = git_read(root, "-c", "status.showUntrackedFiles=all", "status", "--porcelain", "-z",
                              "--untracked-files=all", "--no-renames", "--", ".")
            part_report.files = combine(outcomes_from_status(status, expected, set(conflicted)),
                                        special + [report_kept(path) for path in kept])
            if conflicted:
                committed = f"{', '.join(done)} committed, " if done else ""
                raise UpdateConflict(
                    f"{part.label} merged with conflicts in {', '.join(conflicted)} ({committed}later parts "
                    "not started); resolve the <<<<<<< blocks, commit, then run `litscaffold update` again"
                )
            paths = _changed_paths(root, expected)
        message = f"Update {part.label} to litscaffold template {installed}"
        if tx is not None:
            tx.commit(paths, message)
        else:
            gitops.commit_paths(root, paths, message)
        commit = git_read(root, "rev-parse", "--short", "HEAD").strip()
        echo(f"  committed {commit}")
        part_report.committed = commit
        done.append(part.label)


def _changed_paths(root: Path, expected: set[str]) -> list[str]:
    """What the update changed: tracked files that differ from HEAD, and new files at paths the template
    renders. A user's own untracked file is never among them, whatever git's configuration."""
    changed = git_read(root, "diff", "--name-only", "-z", "--no-renames", "--relative", "HEAD", "--", ".")
    new = git_read(root, "-c", "status.showUntrackedFiles=all", "ls-files", "-z", "--others", "--exclude-standard",
                   "--", ".")
    paths = {p for p in changed.split("\0") if p} | ({p for p in new.split("\0") if p} & expected)
    return sorted(paths)


def _template_changed(part: Part, source: TemplateSource, installed: str) -> bool:
    """Did anything this part renders from change between its version and the installed one? (Every
    changed path lying in another part's template/<kind>/ means no.)"""
    changed = gitops.git("diff", "--name-only", tag_of(part.version or ""), tag_of(installed),
                         cwd=source.repo).splitlines()
    own = part.answers.get("component", "project")
    others = tuple(f"template/{kind}/" for kind in ("project", *KINDS) if kind != own)
    return not all(path.startswith(others) for path in changed)


def _record_version(root: Path, part: Part, installed: str, tx: Transaction | None) -> bool:
    """When the part's template did not change, copier would only rewrite `_commit` in its answers file:
    do just that and skip copier's three renders. False when copier must run after all."""
    answers = root / part.answers_file
    text, count = re.subn(rf"^_commit: {re.escape(tag_of(part.version or ''))}$", f"_commit: {tag_of(installed)}",
                          answers.read_text(), flags=re.MULTILINE)
    if count != 1:
        return False
    if tx is not None:
        tx.write(part.answers_file, text)
    else:
        answers.write_text(text)
    return True


def _run_copier(root: Path, part: Part, installed: str) -> None:
    """`copier update` of one answers file; any failure propagates and the transaction undoes it."""
    import copier
    from copier.errors import CopierError
    from plumbum import ProcessExecutionError

    try:
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
    conflicted = set(unmerged(root))
    changed = git_read(root, "status", "--porcelain", "--untracked-files=all", "--", ".").splitlines()
    for line in changed:
        relative = line[3:].split(" -> ")[-1].strip('"')
        if (root / relative).is_file() and has_markers(root / relative):
            conflicted.add(relative)
    return sorted(conflicted)
