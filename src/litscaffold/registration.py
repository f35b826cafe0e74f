"""How `litscaffold adopt` registers a repository's classes with the project: a small module of model/ (or data/)
per class that imports it from where it lives. The project's registry (util/registry.py) registers every module of
model/ and data/ holding one LightningModule or LightningDataModule, defined there or imported, so these modules are
all it takes; the classes themselves stay where they are, as they are.

Also written here: the module that keeps a flat repository's model.py (data.py) importable once the project's
package model/ (data/) has taken its name, and the one that imports the repository's networks so that flags can
name them (`--net SimpleDenseNet`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from .discovery import FoundClass
from .errors import InvalidName
from .names import check_component_name
from .project import PACKAGE_OF

# A flat repository's model.py / data.py: the package of the same name runs it from this module.
SHADOW_MODULE = {"model": "_model", "data": "_data"}
NETWORKS_MODULE = "model/_networks.py"
WRITTEN_BY = "Written by `litscaffold adopt`"


@dataclass(frozen=True)
class Registration:
    """One class of the repository, registered as `--model NAME` or `--dataset NAME`."""

    found: FoundClass
    name: str
    module_path: str  # model/<name>.py or data/<name>.py
    text: str | None  # the module to write; None when the repository's own file there registers it

    @property
    def flag(self) -> str:
        return f"--{self.found.kind} {self.name}"


def snake_case(name: str) -> str:
    """MNISTLitModule -> mnist_lit_module, LitAutoEncoder -> lit_auto_encoder."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"[^a-z0-9_]+", "_", spaced.lower()).strip("_")


def choose_name(found: FoundClass, taken: set[str]) -> str:
    """The module name a class is registered under: its class name in snake case, else prefixed by its file's
    name, else `my_...`; never one the project already has (`taken`) or that the project cannot use."""
    stem = snake_case(PurePosixPath(found.path).stem)
    base = snake_case(found.name) or found.kind
    for candidate in (base, f"{stem}_{base}", f"my_{base}", *(f"{base}_{n}" for n in range(2, 100))):
        try:
            check_component_name(candidate, found.kind)
        except InvalidName:
            continue
        if candidate not in taken:
            return candidate
    raise InvalidName(f"no module name is free for {found.name} of {found.path}")


def import_source(found: FoundClass) -> tuple[str, str]:
    """(module to import the class from, folder to put on sys.path first: "" for the repository's root)."""
    if found.search_path == "" and found.module in SHADOW_MODULE:
        return f"{found.module}.{SHADOW_MODULE[found.module]}", ""
    return found.module, found.search_path


def _path_lines(search_paths: list[str]) -> list[str]:
    """Lines that make each folder importable from a module of model/ or data/ (the repository's root already is:
    trainer.py, predict.py, sweep.py and the tests run from there)."""
    folders = sorted(set(search_paths) - {""})
    if not folders:
        return []
    lines = ["import sys", "from pathlib import Path", ""]
    for folder in folders:
        parts = ", ".join(repr(part) for part in PurePosixPath(folder).parts)
        lines += [f"# {folder}/ holds the code below: importable once installed (`pip install -e .`), and from this",
                  "# checkout without that",
                  f"_FOLDER = str(Path(__file__).resolve().parents[1].joinpath({parts}))",
                  "if _FOLDER not in sys.path:",
                  "    sys.path.insert(0, _FOLDER)", ""]
    return lines


def registration_module(found: FoundClass, name: str) -> str:
    module, search_path = import_source(found)
    noqa = "  # noqa: E402" if search_path else ""
    paths = "".join(f"{line}\n" for line in _path_lines([search_path]))
    return f'''"""{found.name} of {found.path}, registered as `--{found.kind} {name}`.

{WRITTEN_BY}: the class stays where it is (edit it there). This module only names it for trainer.py,
predict.py, sweep.py and the tests (util/registry.py registers every module of {PACKAGE_OF[found.kind]}/).
"""

{paths}from {module} import {found.name}{noqa}

__all__ = [{found.name!r}]
'''


def shadow_module(package: str, registered: list[Registration]) -> str:
    """model/_model.py for a flat repository's model.py (data/_data.py for data.py)."""
    names = ", ".join(f"{r.found.name}" for r in registered if r.found.module == package) or "its classes"
    return f'''"""{package}.py of this repository, under the name the project's package {package}/ took from it.

Python imports a folder before a file of the same name: since `litscaffold adopt` added {package}/, `import {package}`
finds the package, not {package}.py. This module runs {package}.py (it stays where it is, as it is) and gives the package
its names, so `from {package} import ...` keeps working in your scripts and tests, and {package}/ registers
{names} for trainer.py.
"""

import sys as _sys
from pathlib import Path as _Path

__file__ = str(_Path(__file__).resolve().parents[1] / "{package}.py")  # the code of {package}.py sees its own file
exec(compile(_Path(__file__).read_bytes(), __file__, "exec"))

_package = _sys.modules[__name__.rpartition(".")[0]]
for _name, _value in list(globals().items()):
    if not _name.startswith("_") and not hasattr(_package, _name):
        setattr(_package, _name, _value)
'''


def networks_module(networks: list[FoundClass]) -> str:
    """model/_networks.py: the repository's networks, imported so that jsonargparse finds them by class name."""
    paths = "".join(f"{line}\n" for line in _path_lines([import_source(n)[1] for n in networks]))
    noqa = "  # noqa: E402" if paths else ""
    imports = "\n".join(f"from {import_source(n)[0]} import {n.name}{noqa}" for n in networks)
    names = ", ".join(repr(n.name) for n in networks)
    return f'''"""The networks of this repository, imported so that a model's arguments can name them by class:
`--net {networks[0].name}` (jsonargparse finds a class by its name once it is imported). {WRITTEN_BY}.
"""

{paths}{imports}

__all__ = [{names}]
'''
