"""`new-project`: render the project template into a fresh directory, atomically."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import git
from .errors import DestinationError, Interrupted, InvalidName, LitscaffoldError, UsageError
from .names import check_project_name
from .project import PROJECT_ANSWERS
from .render import render, scratch_dir
from .safety import check_git_idle, inside, signals_deferred
from .template import TemplateSource, current_version
from .transaction import Transaction

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
    repository: Path | None = None  # the bigger repository the project joined (a monorepo), if any


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
        if any(ord(char) < 32 or ord(char) == 127 for char in value):
            raise UsageError(f"--data {key}: the value holds a control character (a newline, a tab...); "
                             "give one plain line")
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
    if "project_slug" in data and check_project_name(data["project_slug"]) != data["project_slug"]:
        raise InvalidName(f"project_slug {data['project_slug']!r} is not a module name: use lowercase letters, "
                          "digits and underscores, starting with a letter (e.g. `my_project`)")
    dest = (dest or Path(slug)).absolute()
    _check_destination(dest, force)
    fresh = not dest.exists()
    around = next((p for p in [dest, *dest.parents] if p.is_dir()), None)
    # Inside a git work tree (a monorepo, or --force into a repository) the project joins that repository: its
    # files are committed there, no repository is nested in it. Git must be able to take the commit: say so
    # before anything is written.
    joins = use_git and around is not None and git.in_work_tree(around)
    if joins and around is not None:
        check_git_idle(around, git.git_dir(around))
    source = (source or TemplateSource()).ensure()
    version = version or current_version()
    source.require(version, f"template {version} was asked for")
    created_parents = _make_parents(dest.parent)
    message = f"Scaffold {name} with litscaffold template {version}"
    owned: list[Path] = []
    try:
        with scratch_dir(dest.parent, f"litscaffold-{slug}") as scratch:
            rendered = scratch / "project"
            render(source, rendered, data, version=version,
                   answers_file=PROJECT_ANSWERS, ask=ask)
            _check_rendered(rendered)
            if fresh and not joins:
                result = _into_new_folder(rendered, dest, slug, use_git, message, owned)
            else:
                if fresh:
                    _make_folder(dest, owned)
                result = _beside_user_files(rendered, dest, slug, use_git, message)
            if joins and not git.is_repo(dest):
                result.repository = Path(git.read(dest, "rev-parse", "--show-toplevel").strip())
    except BaseException as error:
        with signals_deferred(swallow=True):
            for folder in owned:  # only a folder this run created: another run may have made `dest`
                shutil.rmtree(folder, ignore_errors=True)
            for parent in created_parents:
                shutil.rmtree(parent, ignore_errors=True)
        if isinstance(error, (KeyboardInterrupt, Interrupted)):
            raise Interrupted("interrupted; no project was created" if fresh else
                              f"interrupted; {dest} is as it was before") from None
        if isinstance(error, LitscaffoldError) and fresh and "as it was" not in error.message:
            error.message += "; no project was created"
        raise
    return result


def _into_new_folder(rendered: Path, dest: Path, slug: str, use_git: bool, message: str,
                     owned: list[Path]) -> Scaffolded:
    """The whole project moves in at once (listed in `owned`: the caller removes it if anything after
    fails). A `dest` that appeared meanwhile (another new-project) is refused, never replaced."""
    files = sorted(p.relative_to(rendered).as_posix() for p in rendered.rglob("*") if not p.is_dir())
    with signals_deferred():
        _make_folder(dest, owned)
        rendered.replace(dest)  # over the empty folder just made (POSIX rename replaces an empty one)
    if use_git:
        git.init(dest)
        git.commit_paths(dest, files, message)
    return Scaffolded(dest, slug, committed=use_git)


def _make_folder(dest: Path, owned: list[Path]) -> None:
    """Create `dest` and list it in `owned` (the caller removes it if anything after fails); a `dest` that
    appeared meanwhile (another new-project) is refused, never replaced."""
    with signals_deferred():
        try:
            os.mkdir(dest)  # atomic: exactly one run gets to create it
        except FileExistsError:
            raise DestinationError(f"{dest} appeared while the project was rendered (another litscaffold?); "
                                   "choose another --dest") from None
        owned.append(dest)


def _beside_user_files(rendered: Path, dest: Path, slug: str, use_git: bool, message: str) -> Scaffolded:
    """Into an existing folder (--force, or an empty one): never replace a user's file, and undo only
    what was written if anything fails."""
    files = sorted(p.relative_to(rendered).as_posix() for p in rendered.rglob("*") if not p.is_dir())
    written, kept = [], []
    with Transaction(dest, "creating the project") as tx:
        for relative in files:
            if os.path.lexists(inside(dest, relative)):
                kept.append(relative)
                continue
            tx.move_in(rendered / relative, relative)
            written.append(relative)
        if use_git:
            if tx.gitdir is None:  # inside a bigger repository (a monorepo) the project joins it
                tx.init_repo()
            # Only the files we wrote: a user's own files in a --force destination stay theirs to commit.
            tx.commit(written, message)
    return Scaffolded(dest, slug, committed=use_git, kept=kept)


def _check_rendered(rendered: Path) -> None:
    """Answers that would break a rendered file are refused (quotes are escaped; a control character
    in a TOML string cannot be)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the answers' own check (no control characters) stands alone
        return
    pyproject = rendered / "pyproject.toml"
    if pyproject.is_file():
        try:
            tomllib.loads(pyproject.read_text())
        except tomllib.TOMLDecodeError as error:
            raise UsageError(f"these answers make pyproject.toml invalid TOML ({error}); "
                             "keep each answer to one plain line") from None


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
    if existing is not None and not existing.is_dir():
        raise DestinationError(f"{existing} is a file, not a folder; choose another --dest")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise DestinationError(f"cannot write in {existing}: permission denied; choose a folder you own")


def _make_parents(parent: Path) -> list[Path]:
    """Create missing parent folders; return the topmost one created (to undo on failure)."""
    missing = [p for p in [parent, *parent.parents] if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    return missing[-1:]
