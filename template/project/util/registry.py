"""Discovery behind model/ and data/: every module of the package that holds a LightningModule (model/) or a
LightningDataModule (data/) is registered under the module's name, so adding a file is all it takes to add
a component. The class may be defined in the module or imported into it (`from my_old_project import Net`);
the project's base classes are a shortcut, not a requirement.

`base` and modules whose names start with "_" (helpers shared by several components) are skipped. A module
that holds no such class, or several, is not registered: `Components.unusable` says why, and trainer.py and
the project's tests repeat it.
"""

import importlib
import inspect
import pkgutil
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


class Components(dict[str, type[T]]):
    """Module name -> its class, plus `unusable`: module name -> why it holds no usable class."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind  # "LightningModule" or "LightningDataModule", for messages
        self.unusable: dict[str, str] = {}


def discover(package: str, path: Iterable[str], base: type[T], shortcuts: tuple[type, ...] = ()) -> Components[T]:
    """Module name -> the one `base` subclass in that module, for every module of `package`.

    `shortcuts` are the project's own base classes: importing one (as every built-in model does) does not
    make it the module's component. A module listing names in `__all__` offers only those.
    """
    found: Components[T] = Components(base.__name__)
    folder = package.replace(".", "/")
    for module_name in sorted(info.name for info in pkgutil.iter_modules(path)):
        if module_name == "base" or module_name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{package}.{module_name}")
        except Exception as error:
            # Name the file: a traceback through importlib hides which of the modules is broken.
            raise ImportError(
                f"{folder}/{module_name}.py could not be imported: {type(error).__name__}: {error}"
            ) from error
        classes = candidates(module, base, shortcuts)
        where = f"{folder}/{module_name}.py"
        if len(classes) == 1:
            found[module_name] = classes[0]
        elif classes:
            names = ", ".join(cls.__name__ for cls in classes)
            found.unusable[module_name] = (
                f"{where} holds several {base.__name__} classes ({names}): keep one per module, name the one to "
                f"use with __all__ = [{classes[-1].__name__!r}], or move shared parents to a module whose name "
                "starts with '_'"
            )
        elif (other := other_namespace(module, base)) is not None:
            found.unusable[module_name] = (
                f"{where}: {other.__name__} is a pytorch_lightning.{base.__name__}, and this project trains with "
                "lightning.pytorch (a separate copy of Lightning); import it as `import lightning.pytorch as pl`"
            )
        else:
            found.unusable[module_name] = (
                f"{where} defines or imports no {base.__name__} subclass; a helper module's name starts with '_' "
                f"(e.g. {folder}/_{module_name}.py)"
            )
    return found


def candidates(module: object, base: type, shortcuts: tuple[type, ...] = ()) -> list[type]:
    """The `base` subclasses a module offers: those listed in its `__all__`, else those defined in it, else
    those imported into it (Lightning's own classes and the project's shortcuts excepted)."""
    members = vars(module)
    listed = getattr(module, "__all__", None)
    if listed is not None:
        members = {name: members[name] for name in listed if name in members}
    classes: list[type] = []
    for obj in members.values():  # a class imported under two names counts once
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and obj not in shortcuts \
                and obj not in classes:
            classes.append(obj)
    if listed is not None:
        return classes
    defined = [cls for cls in classes if cls.__module__ == module.__name__]
    if defined:
        return defined
    # Imported: a parent kept only to subclass it would be another candidate, so only the classes that are
    # no other candidate's parent count (`from lightning.pytorch.demos import BoringModel` is one class).
    imported = [cls for cls in classes if not cls.__module__.startswith("lightning.pytorch.core")]
    return [cls for cls in imported if not any(other is not cls and issubclass(other, cls) for other in imported)]


def other_namespace(module: object, base: type) -> type | None:
    """A class of the module built on the `pytorch_lightning` package's copy of `base` (an older project's
    `import pytorch_lightning as pl`): the Trainer would reject it, so say what to change instead."""
    for obj in vars(module).values():
        if inspect.isclass(obj) and any(parent.__name__ == base.__name__ and parent.__module__.startswith(
                "pytorch_lightning") for parent in obj.__mro__[1:]):
            return obj
    return None
