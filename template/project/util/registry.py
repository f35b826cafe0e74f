"""Discovery behind model/ and data/: every module of the package that defines a subclass of its base
class is registered under the module's name, so adding a file is all it takes to add a component.

`base` and modules whose names start with "_" (helpers shared by several components) are skipped.
"""

import importlib
import inspect
import pkgutil
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def discover(package: str, path: Iterable[str], base: type[T]) -> dict[str, type[T]]:
    """Module name -> the one `base` subclass defined in that module, for every module of `package`."""
    found: dict[str, type[T]] = {}
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
        classes = [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, base) and obj.__module__ == module.__name__
        ]
        if len(classes) > 1:
            names = ", ".join(cls.__name__ for cls in classes)
            raise TypeError(
                f"{folder}/{module_name}.py defines several {base.__name__} subclasses ({names}); keep one per "
                "module and move shared parents to a helper module whose name starts with '_'"
            )
        if classes:
            found[module_name] = classes[0]
    return found
