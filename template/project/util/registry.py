"""Discovery behind model/ and data/: every module of the package holding one LightningModule (model/) or
LightningDataModule (data/), defined there or imported (`from my_old_project import Net`), is registered under the
module's name, so adding a file is all it takes to add a component.

`base` and modules whose names start with "_" (helpers shared by several components) are imported, not registered:
their classes can be chosen by name for an argument (`--net SimpleDenseNet`). A module that holds
no such class, or several, is not registered: `Components.unusable` says why, and trainer.py, `litscaffold list` and
the project's tests repeat it. (Lightning has no registry of modules by file: this is ours.)
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Components(dict[str, type[T]], Generic[T]):
    """Module name -> its class, plus `unusable`: module name -> why it holds no usable class."""

    def __init__(self) -> None:
        super().__init__()
        self.unusable: dict[str, str] = {}


def discover(package: str, path: Iterable[str], base: type[T], shortcuts: tuple[type, ...] = ()) -> Components[T]:
    """Module name -> the one `base` subclass of that module, for every module of `package`. `shortcuts` are the
    project's own base classes: importing one (as every built-in model does) does not make it the component."""
    found: Components[T] = Components()
    folder = package.replace(".", "/")
    for module_name in sorted(info.name for info in pkgutil.iter_modules(path)):
        where = f"{folder}/{module_name}.py"
        try:  # helpers too: their classes can then be chosen by name (--net SimpleDenseNet)
            module = importlib.import_module(f"{package}.{module_name}")
        except Exception as problem:  # name the file: a traceback through importlib hides which module it is
            raise ImportError(f"{where} could not be imported: {type(problem).__name__}: {problem}") from problem
        if module_name == "base" or module_name.startswith("_"):
            continue
        classes = candidates(module, base, shortcuts)
        if len(classes) == 1:
            found[module_name] = classes[0]
        elif classes:
            found.unusable[module_name] = (
                f"{where} holds several {base.__name__} classes ({', '.join(c.__name__ for c in classes)}): keep one "
                f"per module, name the one to use with __all__ = [{classes[-1].__name__!r}], or move shared parents "
                "to a module whose name starts with '_'")
        elif (other := _other_namespace(module, base)) is not None:
            found.unusable[module_name] = (
                f"{where}: {other.__name__} is a pytorch_lightning.{base.__name__}, and this project trains with "
                "lightning.pytorch (a separate copy of Lightning); import it as `import lightning.pytorch as pl`")
        else:
            found.unusable[module_name] = (f"{where} defines or imports no {base.__name__} subclass; a helper "
                                           f"module's name starts with '_' (e.g. {folder}/_{module_name}.py)")
    return found


def candidates(module: object, base: type, shortcuts: tuple[type, ...] = ()) -> list[type]:
    """The `base` subclasses a module offers: those in its `__all__`, else those defined in it, else those imported
    into it that are no other candidate's parent (Lightning's own classes and the project's shortcuts excepted)."""
    members = vars(module)
    listed = getattr(module, "__all__", None)
    if listed is not None:
        members = {name: members[name] for name in listed if name in members}
    classes: list[type] = []
    for obj in members.values():
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and obj not in shortcuts \
                and obj not in classes:
            classes.append(obj)
    if listed is not None:
        return classes
    defined = [cls for cls in classes if cls.__module__ == getattr(module, "__name__", "")]
    if defined:
        return defined
    imported = [cls for cls in classes if not cls.__module__.startswith("lightning.pytorch.core")]
    return [cls for cls in imported if not any(other is not cls and issubclass(other, cls) for other in imported)]


def _other_namespace(module: object, base: type) -> type | None:
    """A class built on the `pytorch_lightning` package's copy of `base` (an older project's import)."""
    for obj in vars(module).values():
        if inspect.isclass(obj) and any(parent.__name__ == base.__name__ and parent.__module__.startswith(
                "pytorch_lightning") for parent in obj.__mro__[1:]):
            return obj
    return None
