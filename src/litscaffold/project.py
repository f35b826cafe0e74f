"""A generated project: where it is, what it was made from, which components it holds, and the parts of it that
were rendered from the template (each with its own answers file, each updated on its own)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .discovery import required_arguments
from .errors import DamagedAnswers, InvalidName, NotAProject
from .names import check_component_name
from .template import version_of

PROJECT_ANSWERS = ".copier-answers.yml"
KINDS = ("model", "dataset")
# Where each kind of component lives inside a project.
PACKAGE_OF = {"model": "model", "dataset": "data"}
# Components the project template itself renders (owned by the project's answers file).
BUILTIN = {("model", "deep_normal"): "deep-normal", ("model", "mlp"): "mlp",
           ("dataset", "synthetic_regression"): "synthetic-regression"}
# Modules of model/ and data/ that are wiring, not components (helpers start with "_" too).
NOT_COMPONENTS = {"base"}


def component_answers_file(kind: str, name: str) -> str:
    return f".copier-answers.{kind}-{name}.yml"


def read_answers(path: Path) -> dict[str, Any]:
    """An answers file's contents; anything unreadable is one line naming the file (and the line)."""
    import yaml  # type: ignore[import-untyped]  # no stubs needed: safe_load's result is checked below

    restore = f"restore it with `git checkout -- {path.name}`"
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise DamagedAnswers(f"cannot read {path.name}: {(error.strerror or str(error)).lower()}; {restore}") from None
    except UnicodeDecodeError as error:
        raise DamagedAnswers(f"{path.name} is not UTF-8 text (byte {error.start}); {restore}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise DamagedAnswers(f"{path.name} is not valid YAML{where} ({problem}); {restore}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise DamagedAnswers(f"{path.name} does not hold answers (KEY: VALUE lines); {restore}")
    return loaded


@dataclass(frozen=True)
class Damaged:
    """A component answers file that cannot be trusted; nothing is built from it."""

    answers_file: str
    message: str  # one line: what is wrong, how to restore it


def _damaged(answers_file: str, reason: str) -> Damaged:
    return Damaged(answers_file, f"{answers_file} is damaged ({reason}); restore it with "
                                 f"`git checkout -- {answers_file}`, or delete it")


def _component_from(path: Path) -> Component | Damaged:
    """Read a component answers file as untrusted input: its kind and name become paths."""
    try:
        answers = read_answers(path)
    except DamagedAnswers as error:
        return Damaged(path.name, error.message)
    kind, raw_name = answers.get("component"), answers.get("name")
    if not isinstance(kind, str) or kind not in KINDS:
        return _damaged(path.name, f"component {str(kind)[:40]!r} is neither model nor dataset")
    try:
        name = check_component_name(raw_name, kind)
    except InvalidName:
        return _damaged(path.name, f"its name {str(raw_name)[:80]!r} is not a module name")
    if path.name != component_answers_file(kind, name):
        return _damaged(path.name, f"it names {kind} {name!r}, whose answers file is "
                                   f"{component_answers_file(kind, name)}")
    return Component(kind, name, str(answers.get("blueprint", "-")), version_of(answers.get("_commit")),
                     "component", path.name)


@dataclass(frozen=True)
class Component:
    kind: str            # "model" | "dataset"
    name: str            # module name, also the --model / --dataset value
    blueprint: str       # what it was made from; "-" for a hand-written module
    version: str | None  # template version it was rendered with; None when not rendered by us
    owner: str           # "component" (own answers file), "project" (built in) or "user"
    answers_file: str | None = None
    problem: str | None = None  # why a hand-written module cannot be a component (see module_problem)
    needs: tuple[str, ...] = ()  # arguments without defaults that every run must give (flags or --config)

    @property
    def module_path(self) -> str:
        return f"{PACKAGE_OF[self.kind]}/{self.name}.py"


LIGHTNING_BASE = {"model": "LightningModule", "dataset": "LightningDataModule"}
WIRED = ("input_shape", "num_outputs", "task")  # what a dataset hands the model it builds (util/components.py)


def module_problem(path: Path, kind: str) -> tuple[str | None, list[str]]:
    """Why a hand-written module of model/ or data/ cannot be built from flags, and the arguments a run must give
    it (its class's parameters without defaults, beyond what the dataset hands a model), read from its source: the
    generator imports no user code. These mirror the project's registry (util/registry.py), which says the rest."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError) as error:
        return f"cannot be read as Python ({error})", []
    base = LIGHTNING_BASE[kind]
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names if alias.name[:1].isupper()]
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    if not classes and not imported:
        return (f"defines or imports no class, so it is no {kind} (a {base} is); "
                f"a helper module's name starts with '_'"), []
    roots = {name.split(".")[0] for node in ast.walk(tree)
             for name in ([a.name for a in node.names] if isinstance(node, ast.Import)
                          else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])}
    old = "pytorch_lightning" in roots and "lightning" not in roots
    if old:
        return ("imports pytorch_lightning, a separate copy of Lightning that this project's trainer does not "
                "train; import it as `import lightning.pytorch as pl`"), []
    listed = _listed(tree)
    lightning = [c for c in classes if (listed is None or c.name in listed)
                 and any((b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else "")
                         == base for b in c.bases)]
    if len(lightning) > 1:
        names = ", ".join(c.name for c in lightning)
        return (f"holds several {base} classes ({names}): keep one per module or name the one to use with "
                f"__all__ = [{lightning[-1].name!r}]"), []
    chosen = lightning or [c for c in classes if listed is None or c.name in listed]
    if len(chosen) != 1:
        return None, []
    return None, [name for name in required_arguments(chosen[0]) if not (kind == "model" and name in WIRED)]


def _listed(tree: ast.Module) -> list[str] | None:
    """The names of a module's literal `__all__`, if it has one."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                return [str(name) for name in ast.literal_eval(node.value)]
            except ValueError:
                return None
    return None


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def find(cls, start: Path | None = None, explicit: bool = False) -> Project:
        """The project containing `start` (walking up), or the one at `start` when explicit."""
        here = (start or Path.cwd()).resolve()
        candidates = [here] if explicit else [here, *here.parents]
        for folder in candidates:
            if (folder / PROJECT_ANSWERS).is_file():
                return cls(folder)
        where = f"in {here}" if explicit else f"from {here} up"
        raise NotAProject(
            f"not inside a litscaffold project (no {PROJECT_ANSWERS} found {where}); "
            "run it in a project or pass --project DIR"
        )

    @property
    def answers(self) -> dict[str, Any]:
        return read_answers(self.root / PROJECT_ANSWERS)

    @property
    def version(self) -> str | None:
        return version_of(self.answers.get("_commit"))

    def damaged(self) -> list[Damaged]:
        """Component answers files that fail the checks a name typed on the command line passes."""
        return [read for path in sorted(self.root.glob(".copier-answers.*-*.yml"))
                if isinstance(read := _component_from(path), Damaged)]

    def require_intact(self) -> None:
        """Refuse in one line while any component answers file is damaged."""
        if damaged := self.damaged():
            more = f" (and {len(damaged) - 1} more damaged answers files)" if len(damaged) > 1 else ""
            raise DamagedAnswers(damaged[0].message + more)

    def require_known_versions(self, installed: str) -> None:
        """Every recorded template version this litscaffold can render (newer ones are `check`'s to
        report); refused with the message add, remove and update give."""
        from .template import TemplateSource, parse_version

        recorded = [(PROJECT_ANSWERS, self.version)] + [(c.answers_file, c.version) for c in self.components()
                                                        if c.owner == "component"]
        older = [(f, v) for f, v in recorded if v and parse_version(v) <= parse_version(installed)]
        if older:
            source = TemplateSource().ensure()
            for answers_file, version in older:
                source.require(version, f"{answers_file} records template {version}")

    def components(self) -> list[Component]:
        """Every model and dataset module, added, built in or hand-written, sorted by kind and name.
        Damaged answers files are left out (see `damaged`)."""
        found: dict[tuple[str, str], Component] = {}
        for path in sorted(self.root.glob(".copier-answers.*-*.yml")):
            read = _component_from(path)
            if isinstance(read, Component):
                found[(read.kind, read.name)] = read
        project_version = self.version
        for kind in KINDS:
            for module in sorted((self.root / PACKAGE_OF[kind]).glob("*.py")):
                key = (kind, module.stem)
                if module.stem in NOT_COMPONENTS or module.stem.startswith("_") or key in found:
                    continue
                if key in BUILTIN:
                    found[key] = Component(kind, module.stem, BUILTIN[key], project_version, "project")
                else:
                    problem, needs = module_problem(module, kind)
                    found[key] = Component(kind, module.stem, "-", None, "user", problem=problem, needs=tuple(needs))
        return sorted(found.values(), key=lambda c: (KINDS.index(c.kind), c.name))

    def component(self, kind: str, name: str) -> Component | None:
        return next((c for c in self.components() if c.kind == kind and c.name == name), None)


@dataclass(frozen=True)
class Part:
    """Something rendered from the template with its own answers file: the project, or an added component."""

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
