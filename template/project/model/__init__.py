"""Model registry: every module in this package that defines a BaseModel subclass is a model.

MODELS maps the module name (what `--model` takes) to its class. Adding model/<name>.py is enough;
nothing here needs editing. `base` and modules starting with "_" (shared helpers) are not models.
"""

from util.registry import discover

from .base import BaseModel

MODELS = discover(__name__, __path__, BaseModel)

__all__ = ["MODELS", "BaseModel"]
