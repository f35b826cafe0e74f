"""What `litscaffold update` checks before it writes anything: git's state, the recorded versions and
sources, and every path the new template version would write (a user's file there is a conflict)."""

from __future__ import annotations

import os
from pathlib import Path

from . import git as gitops
from .errors import TemplateError, UpdateConflict, UpdateError
from .merges import has_markers
from .project import Part
from .safety import inside
from .template import TemplateSource, parse_version


def check_preconditions(root: Path, parts: list[Part], source: TemplateSource, installed: str,
                        dry_run: bool = False) -> None:
    """Everything copier would stumble on, checked before anything changes. A dry run works on a clone of the
    last commit, so uncommitted changes do not stop it."""
    gitops.require_git()
    if not gitops.in_work_tree(root):
        raise UpdateError(f"{root} is not a git repository; updates merge through git: run "
                          "`git init && git add -A && git commit -m 'Before update'` first")
    if not gitops.read(root, "rev-parse", "-q", "--verify", "HEAD").strip():
        raise UpdateError(f"the repository of {root} has no commit yet; updates merge against your last commit: "
                          "run `git add -A && git commit -m 'First commit'` first")
    if conflicted := gitops.unmerged(root):
        raise UpdateError(f"unresolved conflicts in {', '.join(conflicted)}; resolve them (edit, then `git add`), "
                          "commit, then run `litscaffold update` again")
    if leftovers := _leftover_markers(root):
        raise UpdateError(f"conflict markers left by the last update in {', '.join(leftovers)}; "
                          "resolve them, commit, then run `litscaffold update` again")
    # Every untracked file counts, whatever status.showUntrackedFiles says: the update must not commit it.
    dirty = gitops.changes(root)
    if dirty and not dry_run:
        files = [path for _, path in dirty]
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
    if local and Path(str(recorded)).expanduser().resolve() == source.repo.resolve():
        return  # the ~ form or the absolute form of our cache repository
    raise UpdateError(f"{part.answers_file} names the template source {recorded!r}, not litscaffold's "
                      f"({source.src_path}); refusing to run another template: restore _src_path: "
                      f"{source.src_path}")


def check_versions_available(parts: list[Part], source: TemplateSource, installed: str) -> None:
    available = set(source.versions())
    if installed not in available:
        raise TemplateError(f"the shipped template history lacks version {installed}; reinstall litscaffold")
    for part in parts:  # the same words as add and remove use for a version the history lacks
        source.require(part.version or "", f"{part.answers_file} records template {part.version}")


def _leftover_markers(root: Path) -> list[str]:
    """Files of the last template-related commit that still hold copier's conflict markers."""
    last = gitops.read(root, "log", "-1", "--format=%H", "--", ".copier-answers*.yml").strip()
    if not last:
        return []
    changed = gitops.read(root, "diff-tree", "--root", "--no-commit-id", "--name-only", "-r", "--relative",
                        last).splitlines()
    found = []
    for relative in changed:
        path = root / relative
        if path.is_file() and has_markers(path):
            found.append(relative)
    return sorted(found)


def check_overwrites(root: Path, rendered: set[str], version: str) -> None:
    """Every path the new template version renders must be one git tracks (copier merges it) or free:
    a user's untracked or ignored file, or a folder, where the template puts a file is a conflict;
    a read-only tracked file, or a symlink leading out of the project, is refused too."""
    tracked = set(gitops.read(root, "ls-files", "-z", "--", ".").split("\0"))
    taken, read_only = [], []
    for relative in sorted(rendered):
        target = inside(root, relative)
        if relative in tracked:
            if target.is_file() and not os.access(target, os.W_OK):
                read_only.append(relative)
            continue
        blocked = next((p for p in [target, *target.parents] if p != root and p.is_relative_to(root)
                        and os.path.lexists(p) and (p == target or not p.is_dir())), None)
        if blocked is not None:
            shown = blocked.relative_to(root).as_posix()
            taken.append(f"{shown} (a folder)" if blocked.is_dir() else shown)
    if taken:
        more = f" and {len(taken) - 5} more" if len(taken) > 5 else ""
        raise UpdateConflict(
            f"template {version} puts files where you have your own, not committed (untracked or ignored by git): "
            f"{', '.join(taken[:5])}{more}; move them away or commit them, then run `litscaffold update` again; "
            "nothing was changed"
        )
    if read_only:
        raise UpdateError(f"{', '.join(read_only)} cannot be written (read-only); make it writable "
                          f"(`chmod u+w {' '.join(read_only)}`) and run `litscaffold update` again; nothing was changed")
