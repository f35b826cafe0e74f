"""`litscaffold update` and `litscaffold check`: bring a project's template parts forward.

A project has template *parts*: the project itself (`.copier-answers.yml`) and each added model or
dataset (`.copier-answers.<kind>-<name>.yml`). Each part records the template version it was
rendered with. `update` runs `copier update` on every part behind the installed version, project
first, committing after each so the next one starts from a clean tree (copier refuses a dirty one),
and stops at the first conflict. Everything that would make copier fail half-way is checked first.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import git as gitops
from .errors import Interrupted, TemplateError, UpdateConflict, UpdateError, UsageError
from .project import KINDS, PROJECT_ANSWERS, Project, read_answers
from .template import TemplateSource, current_version, parse_version, tag_of, version_of

# The labels copier writes around an inline conflict.
CONFLICT_MARKERS = (b"<<<<<<< before updating", b">>>>>>> after updating")
# Read-only git commands must not rewrite .git/index behind the user's back (a refused update
# leaves the project byte-identical).
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


# ---- check -----------------------------------------------------------------------------------------

def _status(version: str | None, installed: str) -> str:
    if version is None:
        return "unknown"
    order = (parse_version(version) > parse_version(installed)) - (parse_version(version) < parse_version(installed))
    return {-1: "behind", 0: "current", 1: "ahead"}[order]


@dataclass
class CheckReport:
    project: Path
    installed: str
    parts: list[Part]

    @property
    def behind(self) -> bool:
        return any(_status(p.version, self.installed) in ("behind", "unknown") for p in self.parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": str(self.project),
            "installed": self.installed,
            "behind": self.behind,
            "parts": [{"part": p.key, "answers_file": p.answers_file, "template_version": p.version,
                       "status": _status(p.version, self.installed)} for p in self.parts],
        }

    def lines(self) -> list[str]:
        width = max(len(p.label) for p in self.parts)
        lines = [f"{p.label.ljust(width)}  {p.version or '?':<8}  {_status(p.version, self.installed)}"
                 for p in self.parts]
        stale = [p for p in self.parts if _status(p.version, self.installed) in ("behind", "unknown")]
        ahead = [p for p in self.parts if _status(p.version, self.installed) == "ahead"]
        if stale:
            lines.append(f"{len(stale)} of {len(self.parts)} behind template {self.installed}; "
                         "run `litscaffold update --dry-run`, then `litscaffold update`")
        elif ahead:
            newest = max((p.version for p in ahead if p.version), key=parse_version)
            lines.append(f"made by a newer litscaffold; run `pip install 'litscaffold>={newest}'`")
        else:
            lines.append(f"all current (template {self.installed})")
        return lines


def check_project(project: Project) -> CheckReport:
    """Each part's template version against the installed litscaffold's."""
    return CheckReport(project.root, current_version(), parts_of(project))


# ---- update ----------------------------------------------------------------------------------------

def update_project(project: Project, dry_run: bool = False, only: str | None = None,
                   echo: Callable[[str], None] = print, source: TemplateSource | None = None) -> None:
    """Update every part behind the installed template version (or just `only`), keeping edits."""
    installed = current_version()
    parts = _select(parts_of(project), only)
    source = source or TemplateSource()
    _check_preconditions(project.root, parts, source, installed)
    stale = [p for p in parts if p.version != installed]
    if not stale:
        echo(f"Already current: {_names(parts)} at template {installed}")
        return
    source.ensure()
    _check_versions_available(stale, source, installed)
    if dry_run:
        _dry_run(project.root, stale, installed, source, echo)
        return
    _update_parts(project.root, stale, installed, source, echo)
    echo(f"Done: {_names(stale)} now at template {installed}")


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


def _git_read(root: Path, *args: str) -> str:
    return gitops.git(*args, cwd=root, env=_READ_ONLY)


def _check_preconditions(root: Path, parts: list[Part], source: TemplateSource, installed: str) -> None:
    """Everything copier would stumble on, checked before anything changes."""
    gitops.require_git()
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True,
                            text=True, env={**os.environ, **_READ_ONLY})
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise UpdateError(f"{root} is not a git repository; updates merge through git: run "
                          "`git init && git add -A && git commit -m 'Before update'` first")
    if unmerged := _unmerged(root):
        raise UpdateError(f"unresolved conflicts from an earlier update in {', '.join(unmerged)}; "
                          "resolve them, commit, then run `litscaffold update` again")
    if leftovers := _leftover_markers(root):
        raise UpdateError(f"conflict markers left by the last update in {', '.join(leftovers)}; "
                          "resolve them, commit, then run `litscaffold update` again")
    if dirty := _git_read(root, "status", "--porcelain", "--", ".").splitlines():
        files = [line[3:] for line in dirty]
        more = f" and {len(files) - 3} more" if len(files) > 3 else ""
        raise UpdateError(f"uncommitted changes in {', '.join(files[:3])}{more}; commit or stash them first "
                          "(the update merges against your last commit)")
    for part in parts:
        if part.version is None:
            raise UpdateError(f"{part.answers_file} records no template version (_commit); "
                              "it was not made by litscaffold, or restore it from git")
        if parse_version(part.version) > parse_version(installed):
            raise UpdateError(f"{part.label} uses template {part.version}, made by a newer litscaffold "
                              f"than this one ({installed}); run `pip install 'litscaffold>={part.version}'`")
        _check_trusted(part, source)


def _check_trusted(part: Part, source: TemplateSource) -> None:
    """Only ever run our own template: `_src_path` comes from the project, which may be anyone's."""
    recorded = part.answers.get("_src_path")
    local = isinstance(recorded, str) and (recorded.startswith("~/") or Path(recorded).is_absolute())
    if local and Path(recorded).expanduser().resolve() == source.repo.resolve():
        return  # the ~ form or the absolute form of our cache repository
    raise UpdateError(f"{part.answers_file} names the template source {recorded!r}, not litscaffold's "
                      f"({source.src_path}); refusing to run another template: restore _src_path: "
                      f"{source.src_path}")


def _check_versions_available(parts: list[Part], source: TemplateSource, installed: str) -> None:
    available = set(source.versions())
    if installed not in available:
        raise TemplateError(f"the shipped template history lacks version {installed}; reinstall litscaffold")
    for part in parts:
        if part.version not in available:
            raise UpdateError(f"{part.label} uses template {part.version}, which this litscaffold's history "
                              f"does not hold; run `pip install 'litscaffold=={part.version}'` or newer")


def _unmerged(root: Path) -> list[str]:
    """Conflicted files in the index (plumbing: unlike `git diff`, it never rewrites the index)."""
    lines = _git_read(root, "ls-files", "--unmerged", "--", ".").splitlines()
    return sorted({line.split("\t", 1)[1] for line in lines if "\t" in line})


def _leftover_markers(root: Path) -> list[str]:
    """Files of the last template-related commit that still hold copier's conflict markers."""
    last = _git_read(root, "log", "-1", "--format=%H", "--", ".copier-answers*.yml").strip()
    if not last:
        return []
    changed = _git_read(root, "diff-tree", "--root", "--no-commit-id", "--name-only", "-r", "--relative",
                        last).splitlines()
    found = []
    for relative in changed:
        path = root / relative
        if path.is_file() and _has_markers(path):
            found.append(relative)
    return sorted(found)


def _has_markers(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return any(line.rstrip() in CONFLICT_MARKERS for line in handle)
    except OSError:
        return False


def _update_parts(root: Path, parts: list[Part], installed: str, source: TemplateSource,
                  echo: Callable[[str], None]) -> None:
    done: list[str] = []
    for part in parts:
        echo(f"Updating {part.label}: template {part.version} -> {installed}")
        if _record_unchanged_template(root, part, source, installed):
            echo("  its template did not change: only the recorded version moves")
        else:
            _run_copier(root, part, installed)
            for kept in _keep_edited_dropped_files(root, part, source):
                echo(f"  kept {kept}: template {installed} no longer has it, but you changed it; "
                     "delete it when you no longer need it")
            conflicted = _conflicted(root)
            if conflicted:
                committed = f"{', '.join(done)} committed, " if done else ""
                raise UpdateConflict(
                    f"{part.label} merged with conflicts in {', '.join(conflicted)} ({committed}later parts "
                    "not started); resolve the <<<<<<< blocks, commit, then run `litscaffold update` again"
                )
        gitops.commit_paths(root, ["."], f"Update {part.label} to litscaffold template {installed}")
        commit = _git_read(root, "rev-parse", "--short", "HEAD").strip()
        echo(f"  committed {commit}")
        done.append(part.label)


def _record_unchanged_template(root: Path, part: Part, source: TemplateSource, installed: str) -> bool:
    """When nothing this part renders from changed between its version and the installed one (every
    changed path lies in another part's template/<kind>/), copier would only rewrite `_commit` in its
    answers file: do just that and skip copier's three renders. False when copier must run."""
    changed = gitops.git("diff", "--name-only", tag_of(part.version or ""), tag_of(installed),
                         cwd=source.repo).splitlines()
    own = part.answers.get("component", "project")
    others = tuple(f"template/{kind}/" for kind in ("project", *KINDS) if kind != own)
    if not all(path.startswith(others) for path in changed):
        return False
    answers = root / part.answers_file
    text, count = re.subn(rf"^_commit: {re.escape(tag_of(part.version or ''))}$", f"_commit: {tag_of(installed)}",
                          answers.read_text(), flags=re.MULTILINE)
    if count != 1:
        return False
    answers.write_text(text)
    return True


def _run_copier(root: Path, part: Part, installed: str) -> None:
    """`copier update` of one answers file; on any failure the project goes back to its last commit."""
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
    except KeyboardInterrupt:
        _restore(root)
        raise Interrupted(f"interrupted while updating {part.label}; it is back at its last commit") from None
    except (CopierError, ValueError, ProcessExecutionError) as error:
        _restore(root)
        detail = str(error).strip().splitlines()
        raise UpdateError(f"copier could not update {part.label}: {detail[0] if detail else type(error).__name__}"
                          "; the project is back at its last commit") from None
    except BaseException:
        _restore(root)
        raise


def _restore(root: Path) -> None:
    """Undo a half-done update: the tree was clean before it, so HEAD holds everything of the user's."""
    gitops.git("checkout", "-q", "HEAD", "--", ".", cwd=root, check=False)
    gitops.git("clean", "-q", "-fd", "--", ".", cwd=root, check=False)


def _conflicted(root: Path) -> list[str]:
    """Files the update left conflicted: unmerged in the index, or holding copier's markers."""
    unmerged = set(_unmerged(root))
    changed = _git_read(root, "status", "--porcelain", "--untracked-files=all", "--", ".").splitlines()
    for line in changed:
        relative = line[3:].split(" -> ")[-1].strip('"')
        if (root / relative).is_file() and _has_markers(root / relative):
            unmerged.add(relative)
    return sorted(unmerged)


def _keep_edited_dropped_files(root: Path, part: Part, source: TemplateSource) -> list[str]:
    """copier deletes every file the new template no longer has, edited or not. A file the user changed
    is theirs: put it back (from HEAD) and say so. Unchanged ones stay deleted."""
    deleted = [line[3:] for line in _git_read(root, "status", "--porcelain", "--", ".").splitlines()
               if "D" in line[:2]]
    kept = [relative for relative in deleted if _edited_since_render(root, part, source, relative)]
    for relative in kept:
        gitops.git("checkout", "-q", "HEAD", "--", relative, cwd=root)
    return kept


def _edited_since_render(root: Path, part: Part, source: TemplateSource, relative: str) -> bool:
    """Does the committed file differ from what the part's old template version rendered?"""
    committed = _git_read(root, "rev-parse", f"HEAD:./{relative}").strip()
    # A plain (not .jinja) template file is copied verbatim: same blob id means same bytes.
    template_path = f"template/{part.answers.get('component', 'project')}/{relative}"
    plain = subprocess.run(["git", "rev-parse", "--verify", "-q", f"{tag_of(part.version or '')}:{template_path}"],
                           cwd=source.repo, capture_output=True, text=True)
    if plain.returncode == 0:
        return plain.stdout.strip() != committed
    from .render import pristine

    with pristine(source, part.answers, version=part.version or "", answers_file=part.answers_file) as old:
        rendered = old / relative
        return not rendered.is_file() or rendered.read_bytes() != _committed_bytes(root, relative)


def _committed_bytes(root: Path, relative: str) -> bytes:
    return subprocess.run(["git", "cat-file", "blob", f"HEAD:./{relative}"], cwd=root, capture_output=True,
                          env={**os.environ, **_READ_ONLY}).stdout


def _dry_run(root: Path, parts: list[Part], installed: str, source: TemplateSource,
             echo: Callable[[str], None]) -> None:
    """The same update in a scratch clone; show its diff, leave the project alone."""
    top = Path(_git_read(root, "rev-parse", "--show-toplevel").strip())
    inner = root.resolve().relative_to(top.resolve())
    with tempfile.TemporaryDirectory(prefix="litscaffold-dry-run-") as scratch:
        clone = Path(scratch) / "clone"
        gitops.git("clone", "-q", str(top), str(clone), cwd=Path(scratch))
        work = clone / inner
        start = _git_read(work, "rev-parse", "HEAD").strip()
        conflict: UpdateConflict | None = None
        try:
            _update_parts(work, parts, installed, source, echo=lambda line: None)
        except UpdateConflict as error:
            conflict = error
        gitops.git("add", "-A", "--", ".", cwd=work)
        diff = gitops.git("diff", "--cached", "--no-color", "--relative", start, "--", ".", cwd=work)
    echo(f"Dry run: updating {_names(parts)} to template {installed} would change:")
    echo(diff.rstrip("\n") or "(no changes)")
    if conflict is not None:
        raise UpdateConflict(f"dry run: {conflict.message.split('; resolve')[0]}; nothing was changed")
    echo("Dry run: nothing was changed; run `litscaffold update` to apply it")
