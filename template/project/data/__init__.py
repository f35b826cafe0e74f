"""Dataset registry: every module in this package that defines a BaseDataModule subclass is a dataset.

DATASETS maps the module name (what `--dataset` takes) to its class. Adding data/<name>.py is enough;
nothing here needs editing. `base` and modules starting with "_" (shared helpers) are not datasets.
"""

from util.registry import discover

from .base import BaseDataModule, DataInfo

DATASETS = discover(__name__, __path__, BaseDataModule)

__all__ = ["DATASETS", "BaseDataModule", "DataInfo"]
