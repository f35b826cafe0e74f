"""Model registry: every module in this package that holds a LightningModule is a model.

MODELS maps the module name (what `--model` takes) to its class: a BaseModel subclass (the short path: metrics,
optimizer flags, HPARAMS), or any LightningModule, defined here or imported (`from my_project import Net`).
Adding model/<name>.py is enough; nothing here needs editing. `base` and modules starting with "_" (shared
helpers) are not models; MODELS.unusable says why any other module is not one.
"""

from lightning.pytorch import LightningModule

from util.registry import discover

from .base import BaseModel

MODELS = discover(__name__, __path__, LightningModule, shortcuts=(BaseModel,))

__all__ = ["MODELS", "BaseModel"]
