"""Dataset registry: every module in this package that holds a LightningDataModule is a dataset.

DATASETS maps the module name (what `--dataset` takes) to its class: a BaseDataModule subclass (the short path:
DataInfo, splits, loaders), or any LightningDataModule, defined here or imported. Adding data/<name>.py is
enough; nothing here needs editing. `base` and modules starting with "_" (shared helpers) are not datasets;
DATASETS.unusable says why any other module is not one.
"""

from lightning.pytorch import LightningDataModule

from util.registry import discover

from .base import BaseDataModule, DataInfo

DATASETS = discover(__name__, __path__, LightningDataModule, shortcuts=(BaseDataModule,))

__all__ = ["DATASETS", "BaseDataModule", "DataInfo"]
