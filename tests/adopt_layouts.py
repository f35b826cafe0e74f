"""Repositories in the shapes Lightning users have, for `litscaffold adopt` (tests/test_adopt.py): each one written
here file by file, trained on random tensors (no download, no network), committed with git.

- lightning-hydra-template's: src/ as a package (src/models, src/models/components, src/data), its own
  src/train.py and configs/, tests/ with a conftest.py, a pyproject.toml with pytest settings only, setup.py,
  requirements.txt, .pre-commit-config.yaml, a workflow, a README.md and a .gitignore that ignores /data/.
- Lightning's examples': one file holding a LightningModule and a LightningDataModule, run by LightningCLI.
- a flat repository: model.py, data.py and the train.py that imports them (`from model import ...`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import git

HYDRA_NET = '''
from torch import nn


class SimpleDenseNet(nn.Module):
    """A simple fully-connected neural net for computing predictions."""

    def __init__(self, input_size: int = 784, lin1_size: int = 256, lin2_size: int = 256, lin3_size: int = 256,
                 output_size: int = 10) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(input_size, lin1_size), nn.BatchNorm1d(lin1_size), nn.ReLU(),
            nn.Linear(lin1_size, lin2_size), nn.BatchNorm1d(lin2_size), nn.ReLU(),
            nn.Linear(lin2_size, lin3_size), nn.BatchNorm1d(lin3_size), nn.ReLU(),
            nn.Linear(lin3_size, output_size),
        )

    def forward(self, x):
        batch_size, channels, width, height = x.size()
        x = x.view(batch_size, -1)
        return self.model(x)
'''

HYDRA_MODULE = '''
from typing import Any, Dict, Tuple

import torch
from lightning import LightningModule
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification.accuracy import Accuracy


class MNISTLitModule(LightningModule):
    """Example of a `LightningModule` for MNIST classification."""

    def __init__(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler, compile: bool) -> None:
        super().__init__()
        # this line allows to access init params with 'self.hparams' attribute
        # also ensures init params will be stored in ckpt
        self.save_hyperparameters(logger=False)
        self.net = net
        self.criterion = torch.nn.CrossEntropyLoss()
        self.train_acc = Accuracy(task="multiclass", num_classes=10)
        self.val_acc = Accuracy(task="multiclass", num_classes=10)
        self.test_acc = Accuracy(task="multiclass", num_classes=10)
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = MaxMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_train_start(self) -> None:
        self.val_loss.reset()
        self.val_acc.reset()
        self.val_acc_best.reset()

    def model_step(self, batch: Tuple[torch.Tensor, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self.forward(x)
        loss = self.criterion(logits, y)
        preds = torch.argmax(logits, dim=1)
        return loss, preds, y

    def training_step(self, batch: Tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, preds, targets = self.model_step(batch)
        self.train_loss(loss)
        self.train_acc(preds, targets)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: Tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, preds, targets = self.model_step(batch)
        self.val_loss(loss)
        self.val_acc(preds, targets)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        acc = self.val_acc.compute()
        self.val_acc_best(acc)
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True, prog_bar=True)

    def test_step(self, batch: Tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, preds, targets = self.model_step(batch)
        self.test_loss(loss)
        self.test_acc(preds, targets)
        self.log("test/loss", self.test_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True, prog_bar=True)

    def setup(self, stage: str) -> None:
        if self.hparams.compile and stage == "fit":
            self.net = torch.compile(self.net)

    def configure_optimizers(self) -> Dict[str, Any]:
        optimizer = self.hparams.optimizer(params=self.trainer.model.parameters())
        if self.hparams.scheduler is not None:
            scheduler = self.hparams.scheduler(optimizer=optimizer)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss",
                                                             "interval": "epoch", "frequency": 1}}
        return {"optimizer": optimizer}
'''

# The template's MNISTDataModule downloads MNIST in prepare_data; this one makes MNIST-shaped random images.
HYDRA_DATA = '''
from typing import Any, Dict, Optional, Tuple

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, TensorDataset, random_split


class MNISTDataModule(LightningDataModule):
    """`LightningDataModule` for MNIST-shaped images (random pixels here: no download)."""

    def __init__(self, data_dir: str = "data/", train_val_test_split: Tuple[int, int, int] = (256, 64, 64),
                 batch_size: int = 64, num_workers: int = 0, pin_memory: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.data_train: Optional[Dataset] = None
        self.data_val: Optional[Dataset] = None
        self.data_test: Optional[Dataset] = None
        self.batch_size_per_device = batch_size

    @property
    def num_classes(self) -> int:
        return 10

    def setup(self, stage: Optional[str] = None) -> None:
        if not self.data_train and not self.data_val and not self.data_test:
            total = sum(self.hparams.train_val_test_split)
            generator = torch.Generator().manual_seed(42)
            images = torch.rand(total, 1, 28, 28, generator=generator)
            labels = torch.randint(0, 10, (total,), generator=generator)
            self.data_train, self.data_val, self.data_test = random_split(
                TensorDataset(images, labels), lengths=self.hparams.train_val_test_split, generator=generator)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data_train, batch_size=self.batch_size_per_device, num_workers=self.hparams.num_workers,
                          pin_memory=self.hparams.pin_memory, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data_val, batch_size=self.batch_size_per_device, num_workers=self.hparams.num_workers,
                          pin_memory=self.hparams.pin_memory, shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data_test, batch_size=self.batch_size_per_device, num_workers=self.hparams.num_workers,
                          pin_memory=self.hparams.pin_memory, shuffle=False)

    def state_dict(self) -> Dict[Any, Any]:
        return {}
'''

HYDRA_TRAIN = '''
from typing import Any, Dict, Optional

import hydra
import lightning as L
import rootutils
from omegaconf import DictConfig

rootutils.setup_root(__file__, indicator=".project-root", pythonpath=True)


@hydra.main(version_base="1.3", config_path="../configs", config_name="train.yaml")
def main(cfg: DictConfig) -> Optional[float]:
    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)
    model: L.LightningModule = hydra.utils.instantiate(cfg.model)
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer)
    trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    return trainer.callback_metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
'''

HYDRA_FILES = {
    "README.md": "# Lightning-Hydra-Template\n\nA clean template to kickstart your deep learning project.\n\n"
                 "## Quickstart\n\n```bash\npython src/train.py trainer=cpu\n```\n",
    ".gitignore": "# Byte-compiled / optimized / DLL files\n__pycache__/\n*.py[cod]\n\n.venv\n.idea/\n\n"
                  "### Lightning-Hydra-Template\nconfigs/local/default.yaml\n/data/\n/logs/\n.env\n",
    ".pre-commit-config.yaml": "repos:\n  - repo: https://github.com/pre-commit/pre-commit-hooks\n    rev: v4.4.0\n"
                               "    hooks:\n      - id: trailing-whitespace\n      - id: end-of-file-fixer\n",
    ".project-root": "# this file is required for inferring the project root directory\n",
    "pyproject.toml": textwrap.dedent('''\
        [tool.pytest.ini_options]
        addopts = [
          "--color=yes",
          "--durations=0",
          "--strict-markers",
          "--doctest-modules",
        ]
        filterwarnings = [
          "ignore::DeprecationWarning",
          "ignore::UserWarning",
        ]
        log_cli = "True"
        markers = [
          "slow: slow tests",
        ]
        minversion = "6.0"
        testpaths = "tests/"

        [tool.coverage.report]
        exclude_lines = [
            "pragma: nocover",
            "raise NotImplementedError",
        ]
        '''),
    "setup.py": textwrap.dedent('''\
        #!/usr/bin/env python

        from setuptools import find_packages, setup

        setup(
            name="src",
            version="0.0.1",
            description="Describe Your Cool Project",
            install_requires=["lightning", "hydra-core"],
            packages=find_packages(),
        )
        '''),
    "requirements.txt": "# --------- pytorch --------- #\ntorch>=2.0.0\ntorchvision>=0.15.0\nlightning>=2.0.0\n"
                        "torchmetrics>=0.11.4\n\n# --------- hydra --------- #\nhydra-core==1.3.2\n\n"
                        "# --------- others --------- #\nrootutils       # standardizing the project root setup\n"
                        "pre-commit      # hooks for applying linters on commit\npytest          # tests\n",
    "configs/train.yaml": "defaults:\n  - _self_\n  - data: mnist\n  - model: mnist\n\ntask_name: \"train\"\n"
                          "train: True\ntest: True\nckpt_path: null\nseed: null\n",
    "configs/model/mnist.yaml": textwrap.dedent('''\
        _target_: src.models.mnist_module.MNISTLitModule

        optimizer:
          _target_: torch.optim.Adam
          _partial_: true
          lr: 0.001
          weight_decay: 0.0

        scheduler:
          _target_: torch.optim.lr_scheduler.ReduceLROnPlateau
          _partial_: true
          mode: min
          factor: 0.1
          patience: 10

        net:
          _target_: src.models.components.simple_dense_net.SimpleDenseNet
          input_size: 784
          lin1_size: 64
          lin2_size: 128
          lin3_size: 64
          output_size: 10

        # compile model for faster training with pytorch 2.0
        compile: false
        '''),
    "configs/data/mnist.yaml": "_target_: src.data.mnist_datamodule.MNISTDataModule\ndata_dir: ${paths.data_dir}\n"
                               "batch_size: 128\ntrain_val_test_split: [55_000, 5_000, 10_000]\nnum_workers: 0\n"
                               "pin_memory: False\n",
    "src/__init__.py": "",
    "src/train.py": HYDRA_TRAIN,
    "src/models/__init__.py": "",
    "src/models/mnist_module.py": HYDRA_MODULE,
    "src/models/components/__init__.py": "",
    "src/models/components/simple_dense_net.py": HYDRA_NET,
    "src/data/__init__.py": "",
    "src/data/mnist_datamodule.py": HYDRA_DATA,
    "src/utils/__init__.py": "",
    "tests/__init__.py": "",
    "tests/conftest.py": textwrap.dedent('''\
        """This file prepares config fixtures for other tests."""

        import pytest


        @pytest.fixture(scope="package")
        def split() -> tuple[int, int, int]:
            return (256, 64, 64)
        '''),
    "tests/test_datamodules.py": textwrap.dedent('''\
        from src.data.mnist_datamodule import MNISTDataModule


        def test_mnist_datamodule(split) -> None:
            dm = MNISTDataModule(train_val_test_split=split)
            dm.setup()
            assert len(dm.data_train) == 256
        '''),
    ".github/workflows/test.yml": "name: Tests\n\non:\n  push:\n    branches: [main]\n\njobs:\n  run_tests:\n"
                                  "    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v3\n"
                                  "      - name: Run pytest\n        run: pytest -v\n",
}

# Lightning's examples/pytorch/basics/autoencoder.py, on random images instead of a downloaded MNIST.
AUTOENCODER = '''
"""MNIST autoencoder example.

To run: python autoencoder.py --trainer.max_epochs=50
"""

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule, LightningModule, cli_lightning_logo
from lightning.pytorch.cli import LightningCLI
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split


class LitAutoEncoder(LightningModule):
    """
    >>> LitAutoEncoder()  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    LitAutoEncoder(
      (encoder): ...
      (decoder): ...
    )
    """

    def __init__(self, hidden_dim: int = 64, learning_rate=10e-3):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = nn.Sequential(nn.Linear(28 * 28, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 3))
        self.decoder = nn.Sequential(nn.Linear(3, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 28 * 28))

    def forward(self, x):
        z = self.encoder(x)
        return self.decoder(z)

    def training_step(self, batch, batch_idx):
        return self._common_step(batch, batch_idx, "train")

    def validation_step(self, batch, batch_idx):
        self._common_step(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx):
        self._common_step(batch, batch_idx, "test")

    def predict_step(self, batch, batch_idx, dataloader_idx=None):
        x = self._prepare_batch(batch)
        return self(x)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)

    def _prepare_batch(self, batch):
        x, _ = batch
        return x.view(x.size(0), -1)

    def _common_step(self, batch, batch_idx, stage: str):
        x = self._prepare_batch(batch)
        loss = F.mse_loss(x, self(x))
        self.log(f"{stage}_loss", loss, on_step=True)
        return loss


class MyDataModule(LightningDataModule):
    def __init__(self, batch_size: int = 32):
        super().__init__()
        generator = torch.Generator().manual_seed(42)
        images = torch.rand(384, 1, 28, 28, generator=generator)
        dataset = TensorDataset(images, torch.arange(384) % 10)
        self.mnist_test = TensorDataset(images[:64], torch.arange(64) % 10)
        self.mnist_train, self.mnist_val = random_split(dataset, [320, 64], generator=generator)
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.mnist_train, batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(self.mnist_val, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.mnist_test, batch_size=self.batch_size)

    def predict_dataloader(self):
        return DataLoader(self.mnist_test, batch_size=self.batch_size)


def cli_main():
    cli = LightningCLI(LitAutoEncoder, MyDataModule, seed_everything_default=1234, run=False,
                       save_config_kwargs={"overwrite": True})
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cli.trainer.test(ckpt_path="best", datamodule=cli.datamodule)
    predictions = cli.trainer.predict(ckpt_path="best", datamodule=cli.datamodule)
    print(predictions[0])


if __name__ == "__main__":
    cli_lightning_logo()
    cli_main()
'''

EXAMPLE_FILES = {
    "autoencoder.py": AUTOENCODER,
    "README.md": "# Autoencoder\n\nLightning's autoencoder example:\n\n    python autoencoder.py fit --trainer.max_epochs 5\n",
    "requirements.txt": "lightning>=2.0\ntorch\njsonargparse[signatures]>=4.27\n",
}

FLAT_MODEL = '''
import lightning as L
import torch
from torch import nn


class LitRegressor(L.LightningModule):
    def __init__(self, in_features: int = 8, hidden: int = 32, lr: float = 1e-2):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
'''

FLAT_DATA = '''
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset, random_split


class RandomRegression(L.LightningDataModule):
    """y = x . w + noise, for x in R^in_features."""

    def __init__(self, n_samples: int = 512, in_features: int = 8, batch_size: int = 32):
        super().__init__()
        self.n_samples = n_samples
        self.in_features = in_features
        self.batch_size = batch_size

    def setup(self, stage=None):
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(self.n_samples, self.in_features, generator=generator)
        y = x @ torch.randn(self.in_features, generator=generator) + 0.1 * torch.randn(self.n_samples, generator=generator)
        n_val = self.n_samples // 8
        self.train_set, self.val_set, self.test_set = random_split(
            TensorDataset(x, y), [self.n_samples - 2 * n_val, n_val, n_val], generator=generator)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test_set, batch_size=self.batch_size)
'''

FLAT_TRAIN = '''
import sys

import lightning as L

from data import RandomRegression
from model import LitRegressor, count_parameters

if __name__ == "__main__":
    L.seed_everything(0)
    model = LitRegressor()
    print(f"parameters: {count_parameters(model)}")
    trainer = L.Trainer(max_epochs=int(sys.argv[1]) if len(sys.argv) > 1 else 20, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=RandomRegression())
    print(f"val_loss: {float(trainer.callback_metrics['val_loss']):.4f}")
'''

FLAT_FILES = {
    "model.py": FLAT_MODEL,
    "data.py": FLAT_DATA,
    "train.py": FLAT_TRAIN,
    "requirements.txt": "torch\nlightning\n",
    ".gitignore": "__pycache__/\nlightning_logs/\n",
}

LAYOUTS = {"hydra": HYDRA_FILES, "example": EXAMPLE_FILES, "flat": FLAT_FILES}

# What adopt registers in each layout, and the flags their classes need (no defaults in the Hydra module: its config
# gave them), small enough for one CPU batch.
THEIRS = {
    "hydra": ("mnist_lit_module", "mnist_data_module",
              ["--net", "SimpleDenseNet", "--net.lin1_size", "16", "--net.lin2_size", "16", "--net.lin3_size", "16",
               "--optimizer", "Adam", "--scheduler", "StepLR", "--scheduler.step_size", "1", "--compile", "false"]),
    "example": ("lit_auto_encoder", "my_data_module", []),
    "flat": ("lit_regressor", "random_regression", []),
}
TINY = ["--max_epochs", "1", "--limit_train_batches", "2", "--limit_val_batches", "1", "--limit_test_batches", "1",
        "--enable_progress_bar", "false"]


def write_repository(root: Path, files: dict[str, str], message: str = "Our code") -> Path:
    """The files, as a git repository with one commit."""
    root.mkdir(parents=True)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return root
