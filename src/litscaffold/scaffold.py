"""`new-project`: render the project template into a fresh directory, atomically."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import git
from .errors import DestinationError, UsageError
from .names import check_project_name
from .project import PROJECT_ANSWERS
from .render import ctrl_c_deferred, render, scratch_dir
from .template import TemplateSource, current_version

# Answers a user may give with --data (the rest of copier.yml belongs to components).
PROJECT_QUESTIONS = {
    "project_name": str, "project_slug": str, "author_name": str, "description": str,
    "python_min": str, "default_model": str, "default_dataset": str,
    "include_notebook": bool, "csv_logger": bool,
}
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


@dataclass
class Scaffolded:
    root: Path
    slug: str
    committed: bool
    kept: list[str] = field(default_factory=list)  # user files --force left alone


def parse_data(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> answers, refusing unknown keys (copier would ignore them silently)."""
    data: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise UsageError(f"--data {pair!r} is not KEY=VALUE; e.g. --data author_name='Ada Lovelace'")
        if key not in PROJECT_QUESTIONS:
            known = ", ".join(sorted(PROJECT_QUESTIONS))
            raise UsageError(f"unknown --data key {key!r}; known keys: {known}")
        if PROJECT_QUESTIONS[key] is bool:
            if value.lower() not in _TRUE | _FALSE:
                raise UsageError(f"--data {key} takes true or false, not {value!r}")
            data[key] = value.lower() in _TRUE
        else:
            data[key] = value
    return data


def new_project(
    name: str,
    dest: Path | None = None,
    data_pairs: list[str] | None = None,
    *,
    ask: bool = False,
    use_git: bool = True,
    force: bool = False,
    source: TemplateSource | None = None,
    version: str | None = None,
) -> Scaffolded:
    slug = check_project_name(name)
    data = {**parse_data(data_pairs or []), "component": "project", "project_name": name}
    if "project_slug" in data:
        check_project_name(data["project_slug"])
    dest = (dest or Path(slug)).absolute()
    _check_destination(dest, force)
    fresh = not dest.exists()
    source = (source or TemplateSource()).ensure()
    version = version or current_version()
    created_parents = _make_parents(dest.parent)
    try:
        with scratch_dir(dest.parent, f"litscaffold-{slug}") as scratch:
            rendered = scratch / "project"
            render(source, rendered, data, version=version,
                   answers_file=PROJECT_ANSWERS, ask=ask)
            with ctrl_c_deferred():  # a project is moved in whole or not at all
                written, kept = _move_into_place(rendered, dest)
    except BaseException:
        for parent in created_parents:
            shutil.rmtree(parent, ignore_errors=True)
        raise
    result = Scaffolded(dest, slug, committed=False, kept=kept)
    if use_git:
        if fresh or not git.is_repo(dest):
            git.init(dest)
        # Only the files we wrote: a user's own files in a --force destination stay theirs to commit.
        git.commit_paths(dest, written, f"Scaffold {name} with litscaffold template {version}")
        result.committed = True
    return result


def _check_destination(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise DestinationError(f"{dest} is a file; choose another --dest")
    if (dest / PROJECT_ANSWERS).is_file():
        raise DestinationError(
            f"{dest} is already a litscaffold project; use `litscaffold update` there, or choose another --dest"
        )
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise DestinationError(
            f"{dest} is not empty; choose another --dest, or pass --force to add the project "
            "beside your files (none of them is overwritten)"
        )
    existing = next((p for p in [dest, *dest.parents] if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise DestinationError(f"cannot write in {existing}: permission denied; choose a folder you own")


def _make_parents(parent: Path) -> list[Path]:
    """Create missing parent folders; return the topmost one created (to undo on failure)."""
    missing = [p for p in [parent, *parent.parents] if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    return missing[-1:]


def _move_into_place(rendered: Path, dest: Path) -> tuple[list[str], list[str]]:
    """Move the rendered tree to `dest`; into an existing folder, never replace a user's file.
    Returns the files written and the user's files kept, relative to `dest`."""
    files = sorted(p.relative_to(rendered).as_posix() for p in rendered.rglob("*") if not p.is_dir())
    if not dest.exists():
        rendered.rename(dest)
        return files, []
    written, kept = [], []
    for relative in files:
        target = dest / relative
        if target.exists():
            kept.append(relative)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        (rendered / relative).rename(target)
        written.append(relative)
    return written, kept
