"""Model registry: every module in this package that defines a BaseModel subclass is a model.

MODELS maps the module name (what `--model` takes) to its class. Adding model/<name>.py is enough;
nothing here needs editing. `base` and modules starting with "_" (shared helpers) are not models.
"""

import importlib
import inspect
import pkgutil

from .base import BaseModel


def _discover() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for module_name in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        if module_name == "base" or module_name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except Exception as error:
            # Name the file: a traceback through importlib hides which of the modules is broken.
            raise ImportError(
                f"{__name__}/{module_name}.py could not be imported: {type(error).__name__}: {error}"
            ) from error
        classes = [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__
        ]
        if len(classes) > 1:
            names = ", ".join(cls.__name__ for cls in classes)
            raise TypeError(
                f"{__name__}/{module_name}.py defines several models ({names}); keep one per module "
                f"and move shared parents to a helper module whose name starts with '_'"
            )
        if classes:
            found[module_name] = classes[0]
    return found


MODELS = _discover()

__all__ = ["MODELS", "BaseModel"]
