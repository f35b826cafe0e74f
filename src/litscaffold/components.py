"""Models and datasets inside a project: add (new files only), remove (only what is untouched), list."""

from __future__ import annotations

import filecmp
import keyword
import os
from dataclasses import dataclass

from . import git
from .errors import ComponentError, UpdateError
from .names import check_component_name
from .project import (
    KINDS,
    PACKAGE_OF,
    PROJECT_ANSWERS,
    Component,
    Project,
    component_answers_file,
    read_answers,
)
from .render import pristine, project_scratch, render
from .safety import inside
from .template import TemplateSource, current_version, parse_version
from .transaction import Transaction

BLUEPRINTS = {
    "model": ("mlp", "deep-normal", "convnet", "autoencoder", "blank"),
    "dataset": ("synthetic-regression", "synthetic-images", "mnist", "csv", "image-folder", "arrays"),
}
DEFAULT_BLUEPRINT = {"model": "mlp", "dataset": "synthetic-regression"}


@dataclass
class Added:
    component: Component
    files: list[str]
    committed: bool


def class_name_of(name: str) -> str:
    """my_net -> MyNet (the class inside the module)."""
    candidate = "".join(part.capitalize() for part in name.split("_")) or "Component"
    return f"{candidate}_" if keyword.iskeyword(candidate) else candidate


def component_version(project: Project) -> str:
    """Components are rendered with the project's own template version, so they match its wiring."""
    installed = current_version()
    version = project.version or installed
    if parse_version(version) > parse_version(installed):
        raise UpdateError(
            f"this project uses template {version}, newer than this litscaffold ({installed}); "
            f"run `pip install 'litscaffold>={version}'`"
        )
    return version


def add_component(project: Project, kind: str, name: str, blueprint: str | None = None,
                  source: TemplateSource | None = None) -> Added:
    if kind not in KINDS:
        raise ComponentError(f"unknown kind {kind!r}; use model or dataset")
    check_component_name(name, kind)
    blueprint = blueprint or DEFAULT_BLUEPRINT[kind]
    if blueprint not in BLUEPRINTS[kind]:
        raise ComponentError(f"unknown {kind} blueprint {blueprint!r}; choose one of: {', '.join(BLUEPRINTS[kind])}")
    module_path = f"{PACKAGE_OF[kind]}/{name}.py"
    answers_file = component_answers_file(kind, name)
    for relative in (module_path, answers_file):
        inside(project.root, relative)
    with Transaction(project.root, f"adding {kind} {name}") as tx:  # checks below run under the lock
        for relative, fix in ((module_path, f"choose another {kind} name"),
                              (answers_file, f"remove it or choose another {kind} name")):
            if os.path.lexists(project.root / relative):
                raise ComponentError(f"{relative} already exists; {fix}")
        version = component_version(project)
        source = (source or TemplateSource()).ensure()
        source.require(version, f"{PROJECT_ANSWERS} records template {version}")
        was_clean = git.is_clean_repo(project.root)
        data = {"component": kind, "name": name, "class_name": class_name_of(name), "blueprint": blueprint}
        with project_scratch(project.root, f"litscaffold-{name}") as scratch:
            rendered = scratch / "component"
            render(source, rendered, data, version=version, answers_file=answers_file)
            files = sorted(p.relative_to(rendered).as_posix() for p in rendered.rglob("*") if p.is_file())
            clashes = [f for f in files if os.path.lexists(inside(project.root, f))]
            if clashes:
                raise ComponentError(f"{', '.join(clashes)} already exist; choose another {kind} name")
            for relative in files:  # all of the component's files arrive, or none (the rollback)
                tx.move_in(rendered / relative, relative)
        if was_clean:
            tx.commit(files, f"Add {kind} {name} ({blueprint} blueprint, litscaffold {version})")
    component = Component(kind, name, blueprint, version, "component", answers_file)
    return Added(component, files, committed=was_clean)


def changed_files(project: Project, component: Component, source: TemplateSource | None = None) -> list[str]:
    """The component's files that differ from what its template version rendered (or are gone)."""
    answers_file = component.answers_file
    if answers_file is None:  # built in or hand-written: no render of its own to compare with
        raise ComponentError(f"{component.module_path} was not added by litscaffold; nothing to compare it with")
    answers = read_answers(project.root / answers_file)
    source = (source or TemplateSource()).ensure()
    if component.version:
        source.require(component.version, f"{answers_file} records template {component.version}")
    with pristine(source, answers, version=component.version or current_version(),
                  answers_file=answers_file) as rendered:
        owned = [p.relative_to(rendered).as_posix() for p in rendered.rglob("*")
                 if p.is_file() and p.name != answers_file]
        return sorted(f for f in owned if not (project.root / f).is_file()
                      or not filecmp.cmp(rendered / f, project.root / f, shallow=False))


def owned_files(component: Component) -> list[str]:
    return [component.module_path, component.answers_file] if component.answers_file else [component.module_path]


@dataclass(frozen=True)
class Removed:
    paths: list[str]
    committed: bool  # like add: committed when the tree was clean, left for the user to commit otherwise


def remove_component(project: Project, kind: str, name: str, force: bool = False,
                     source: TemplateSource | None = None) -> Removed:
    """Delete an added component's files."""
    if kind not in KINDS:
        raise ComponentError(f"unknown kind {kind!r}; use model or dataset")
    project.require_intact()
    with Transaction(project.root, f"removing {kind} {name}") as tx:
        component = project.component(kind, name)
        if component is None:
            names = [c.name for c in project.components() if c.kind == kind]
            raise ComponentError(f"no {kind} named {name!r}; the project has: {', '.join(names) or 'none'}")
        if component.owner != "component":
            origin = "part of the project template" if component.owner == "project" else "not made by litscaffold"
            raise ComponentError(
                f"{component.module_path} is {origin}; delete it yourself with `git rm {component.module_path}`"
            )
        paths = [p for p in owned_files(component) if os.path.lexists(inside(project.root, p))]
        if not force:
            edited = changed_files(project, component, source)
            if edited:
                raise ComponentError(
                    f"{kind} {name} has changes of yours in {', '.join(edited)}; keep them, or pass --force to delete"
                )
        was_clean = git.is_clean_repo(project.root)
        for relative in paths:
            tx.delete(relative)
        if was_clean:
            tx.commit(paths, f"Remove {kind} {name}")
    return Removed(paths, committed=was_clean)
