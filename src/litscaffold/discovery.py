"""A repository's own Lightning classes, found by reading its source: the generator never imports user code.

Every tracked Python file is parsed with `ast`. A class is a LightningModule (or LightningDataModule) when one of its
bases is Lightning's, under any import spelling (`pl.LightningModule`, `from lightning import LightningModule as LM`),
or is a class of the repository that is one, in the same file or imported from another (`from .base import BaseLit`,
`from src.models.base import BaseLit`). Plain `torch.nn.Module` subclasses are found the same way: networks a model
takes as an argument (`--net SimpleDenseNet`).

Each class also gets the name it is imported by from the repository's root: the dotted path through its packages
(folders with `__init__.py`), and the folder that must be on `sys.path` for that (the root itself for `src/__init__.py`
layouts and flat files; `src` for a `src/<package>/` layout; the file's own folder for a loose script).

No library does this: LightningCLI and jsonargparse find subclasses by importing modules, which would run the
repository's code inside the generator.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import git as gitops

LIGHTNING_PACKAGES = ("lightning", "pytorch_lightning")
KIND_OF_BASE = {"LightningModule": "model", "LightningDataModule": "dataset"}
NETWORK_BASES = {"torch.nn.Module", "torch.nn.modules.module.Module"}
# Folders and files that hold no model to train: tests, docs, environments, build output.
SKIPPED_FOLDERS = {"tests", "test", "testing", "docs", "doc", "site-packages", "node_modules", "build", "dist",
                   "venv", "env"}
MAX_SOURCE_BYTES = 2_000_000


@dataclass(frozen=True)
class FoundClass:
    """One class of the repository, with what it is and how to import it."""

    kind: str         # "model", "dataset" or "network"
    name: str         # the class name
    path: str         # the file, relative to the repository's root
    module: str       # its dotted import name, e.g. src.models.mnist_module
    search_path: str  # the folder (relative to the root, "" for the root) that must be on sys.path to import it
    lightning: str    # "lightning" or "pytorch_lightning" for Lightning classes (which copy of Lightning), else ""
    parent_of_another: bool = False  # another class of the repository derives from it (a shared base)
    abstract: bool = False
    required: tuple[str, ...] = ()  # constructor arguments without a default (its own __init__; () without one)


@dataclass
class _Class:
    name: str
    bases: list[str]  # qualified where the file's imports say, else as written
    abstract: bool
    required: tuple[str, ...]
    kind: str = ""
    lightning: str = ""


@dataclass
class _Module:
    path: str
    module: str | None  # None when no import name reaches it (a folder name that is no identifier)
    search_path: str
    classes: dict[str, _Class]


def python_files(root: Path, paths: Iterable[str] | None = None) -> list[str]:
    """Tracked .py files (relative paths), or those under `paths`; symlinks are skipped (never followed out of the
    repository). Without `paths`, tests, docs, hidden folders and environments are left out."""
    listed = gitops.read(root, "ls-files", "-z", "--", "*.py").split("\0")
    files = []
    for relative in sorted(p for p in listed if p):
        parts = PurePosixPath(relative).parts
        if (root / relative).is_symlink() or not (root / relative).is_file():
            continue
        if paths is not None:
            if any(p in (".", relative) or relative.startswith(f"{p.rstrip('/')}/") for p in paths):
                files.append(relative)
            continue
        name = parts[-1]
        if any(part.startswith(".") or part in SKIPPED_FOLDERS for part in parts[:-1]):
            continue
        if name.startswith("test_") or name.endswith("_test.py") or name in ("conftest.py", "setup.py"):
            continue
        files.append(relative)
    return files


def find_classes(root: Path, files: list[str]) -> tuple[list[FoundClass], list[str]]:
    """Every model, dataset and network class defined in `files`; and notes on files that could not be read."""
    notes: list[str] = []
    modules: list[_Module] = []
    for relative in files:
        read = _read_module(root, relative)
        if isinstance(read, str):
            notes.append(read)
        else:
            modules.append(read)
    _classify(modules)
    index = _index(modules)
    parents = {(hit[0].path, hit[1].name) for module in modules for cls in module.classes.values() if cls.kind
               for base in cls.bases if (hit := _resolve(base, module, cls, index)) is not None}
    found = []
    for module in modules:
        if module.module is None:
            continue
        for cls in module.classes.values():
            if cls.kind:
                found.append(FoundClass(cls.kind, cls.name, module.path, module.module, module.search_path,
                                        cls.lightning, (module.path, cls.name) in parents, cls.abstract,
                                        cls.required))
    return found, notes


def import_location(root: Path, relative: str) -> tuple[str | None, str]:
    """(dotted module name, folder to put on sys.path) for a file: up through the folders that are packages."""
    parts = PurePosixPath(relative).with_suffix("").parts
    folders = list(parts[:-1])
    top = len(folders)
    while top > 0 and root.joinpath(*folders[:top], "__init__.py").is_file():
        top -= 1
    names = list(parts[top:])
    if names[-1] == "__init__":
        names.pop()
    search = "/".join(folders[:top])
    if not names or not all(name.isidentifier() for name in names):
        return None, search
    return ".".join(names), search


def _read_module(root: Path, relative: str) -> _Module | str:
    path = root / relative
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            return f"{relative}: skipped (larger than {MAX_SOURCE_BYTES // 1_000_000} MB)"
        tree = ast.parse(path.read_bytes(), filename=relative)
    except (OSError, SyntaxError, ValueError) as error:
        return f"{relative}: not read as Python ({type(error).__name__}: {error})"
    module, search = import_location(root, relative)
    package = (module or "").rsplit(".", 1)[0] if not relative.endswith("__init__.py") else (module or "")
    aliases = _imports(tree.body, package)
    classes: dict[str, _Class] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = [_qualified(base, aliases) for base in node.bases]
            classes[node.name] = _Class(node.name, [b for b in bases if b], _is_abstract(node, aliases),
                                        required_arguments(node))
    return _Module(relative, module, search, classes)


def _imports(body: list[ast.stmt], package: str) -> dict[str, str]:
    """Local name -> qualified name, for the module-level imports (also those inside if/try blocks)."""
    aliases: dict[str, str] = {}
    for node in body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    first = alias.name.split(".")[0]
                    aliases[first] = first
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[:len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                source = ".".join([*anchor, *([source] if source else [])])
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{source}.{alias.name}" if source else alias.name
        elif isinstance(node, ast.If | ast.Try):
            blocks = [node.body, node.orelse] + ([h.body for h in node.handlers] if isinstance(node, ast.Try) else [])
            for block in blocks:
                aliases.update(_imports(block, package))
    return aliases


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    if isinstance(node, ast.Subscript):  # Generic[T], a class parameterised by type
        return _dotted(node.value)
    return None


def _qualified(node: ast.expr, aliases: dict[str, str]) -> str | None:
    dotted = _dotted(node)
    if dotted is None:
        return None
    first, _, rest = dotted.partition(".")
    if first in aliases:
        return f"{aliases[first]}.{rest}" if rest else aliases[first]
    return dotted  # a class of the same file, or a name the imports do not explain


def _is_abstract(node: ast.ClassDef, aliases: dict[str, str]) -> bool:
    bases = {_qualified(base, aliases) for base in node.bases}
    if bases & {"abc.ABC", "ABC"}:
        return True
    return any(_qualified(decorator, aliases) in ("abc.abstractmethod", "abstractmethod")
               for item in node.body if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
               for decorator in item.decorator_list)


def required_arguments(node: ast.ClassDef) -> tuple[str, ...]:
    """The arguments of the class's own __init__ that have no default (after self) and that a run must give
    (`adopt`'s hints, `list`'s column)."""
    init = next((item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"), None)
    if init is None:
        return ()
    positional = [*init.args.posonlyargs, *init.args.args][1:]
    without_default = positional[:len(positional) - len(init.args.defaults)]
    keyword_only = [arg for arg, default in zip(init.args.kwonlyargs, init.args.kw_defaults) if default is None]
    # trainer.py gives a learning-rate schedule without a default the default none (the project's util/cli.py)
    return tuple(arg.arg for arg in [*without_default, *keyword_only] if not _is_schedule(arg.annotation))


def _is_schedule(annotation: ast.expr | None) -> bool:
    name = (_dotted(annotation) or "") if annotation is not None else ""
    return name.endswith(("lr_scheduler", "LRScheduler", "ReduceLROnPlateau"))


def _lightning_kind(qualified: str) -> tuple[str, str] | None:
    head, _, tail = qualified.partition(".")
    last = qualified.rsplit(".", 1)[-1]
    if head in LIGHTNING_PACKAGES and tail and last in KIND_OF_BASE:
        return KIND_OF_BASE[last], head
    return None


def _index(modules: list[_Module]) -> dict[str, tuple[_Module, _Class]]:
    """Qualified class name -> its class, under every name an import may use: the import name, and the dotted path
    from the root (how a namespace package, a folder without __init__.py, is imported from there)."""
    index: dict[str, tuple[_Module, _Class]] = {}
    for module in modules:
        names = {".".join(PurePosixPath(module.path).with_suffix("").parts).removesuffix(".__init__")}
        if module.module:
            names.add(module.module)
        for name in names:
            for cls in module.classes.values():
                index[f"{name}.{cls.name}"] = (module, cls)
    return index


def _resolve(base: str, module: _Module, cls: _Class,
             index: dict[str, tuple[_Module, _Class]]) -> tuple[_Module, _Class] | None:
    """The repository's class a base names: imported from another module, or defined in the same one."""
    if base in module.classes and base != cls.name:
        return module, module.classes[base]
    return index.get(base)


RANK = {"": 0, "network": 1, "model": 2, "dataset": 2}


def _classify(modules: list[_Module]) -> None:
    """Give each class its kind, repeating until nothing changes: Lightning's classes among its bases (its own, or
    through the repository's classes) make it a model or a dataset; else torch.nn.Module makes it a network."""
    index = _index(modules)
    changed = True
    while changed:
        changed = False
        for module in modules:
            for cls in module.classes.values():
                for base in cls.bases:
                    kind, lightning = _lightning_kind(base) or (("network", "") if base in NETWORK_BASES else ("", ""))
                    if not kind and (hit := _resolve(base, module, cls, index)) is not None:
                        kind, lightning = hit[1].kind, hit[1].lightning
                    if RANK[kind] > RANK[cls.kind]:
                        cls.kind, cls.lightning = kind, lightning
                        changed = True
