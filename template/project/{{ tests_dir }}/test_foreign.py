"""LightningModules and LightningDataModules written for plain Lightning train unchanged through trainer.py.

Lightning's own demo classes (imported into model/ and data/) and a documentation-style model/datamodule pair
are written into a copy of the project (this one stays clean); each run is the real trainer.py in its own
process, since model/ and data/ are discovered at import. Hyperparameters and the monitored metric are read
back from the TensorBoard event files; predict.py writes the outputs.
"""

import csv
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import QUIET, ROOT, logged_hparams, project_copy, scalars

TINY = ["--max_epochs", "2", "--limit_train_batches", "2", "--limit_val_batches", "2", "--limit_test_batches", "2"]

# A documentation-style pair: Lightning's autoencoder on MNIST-shaped data (random, no download), no `info`,
# no base class of this project, per-step logging of train_loss, val_loss and test_loss.
AUTOENCODER = '''
import lightning.pytorch as pl
import torch
from torch import nn


class LitAutoEncoder(pl.LightningModule):
    def __init__(self, hidden: int = 64, code_size: int = 3, lr: float = 1e-3):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = nn.Sequential(nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, code_size))
        self.decoder = nn.Sequential(nn.Linear(code_size, hidden), nn.ReLU(), nn.Linear(hidden, 28 * 28))

    def forward(self, x):
        return self.encoder(x.view(x.size(0), -1))

    def _loss(self, batch):
        x, _ = batch
        x = x.view(x.size(0), -1)
        return nn.functional.mse_loss(self.decoder(self.encoder(x)), x)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams["lr"])
'''

DIGITS = '''
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class RandomDigits(pl.LightningDataModule):
    """MNIST-shaped noise with labels 0-9."""

    def __init__(self, batch_size: int = 16, n_images: int = 128):
        super().__init__()
        self.batch_size = batch_size
        self.n_images = n_images

    def setup(self, stage=None):
        generator = torch.Generator().manual_seed(0)
        x = torch.rand(self.n_images, 1, 28, 28, generator=generator)
        y = torch.arange(self.n_images) % 10
        self.train_set = TensorDataset(x, y)
        self.val_set = TensorDataset(x[:32], y[:32])

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)
'''

# lightning-hydra-template's shape: a network object, optimizer and scheduler partials (what Hydra's `_partial_` and
# LightningCLI's class_path give), save_hyperparameters() over all of them, "val/loss" style metric names.
NETS = '''
from torch import nn


class SimpleDenseNet(nn.Module):
    def __init__(self, input_size: int = 784, lin1_size: int = 64, lin2_size: int = 64, output_size: int = 10) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(input_size, lin1_size), nn.BatchNorm1d(lin1_size), nn.ReLU(),
                                   nn.Linear(lin1_size, lin2_size), nn.BatchNorm1d(lin2_size), nn.ReLU(),
                                   nn.Linear(lin2_size, output_size))

    def forward(self, x):
        return self.model(x.view(x.size(0), -1))
'''

HYDRA_MODULE = '''
import lightning.pytorch as pl
import torch
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification.accuracy import Accuracy


class MNISTLitModule(pl.LightningModule):
    def __init__(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler,
                 compile: bool) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.net = net
        self.criterion = torch.nn.CrossEntropyLoss()
        self.train_acc, self.val_acc, self.test_acc = (Accuracy(task="multiclass", num_classes=10) for _ in range(3))
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()

    def forward(self, x):
        return self.net(x)

    def model_step(self, batch):
        x, y = batch
        logits = self.forward(x)
        return self.criterion(logits, y), torch.argmax(logits, dim=1), y

    def training_step(self, batch, batch_idx):
        loss, preds, targets = self.model_step(batch)
        self.train_loss(loss)
        self.train_acc(preds, targets)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, preds, targets = self.model_step(batch)
        self.val_loss(loss)
        self.val_acc(preds, targets)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)

    def test_step(self, batch, batch_idx):
        loss, preds, targets = self.model_step(batch)
        self.test_loss(loss)
        self.log("test/loss", self.test_loss, on_step=False, on_epoch=True)

    def setup(self, stage):
        if self.hparams.compile and stage == "fit":
            self.net = torch.compile(self.net)

    def configure_optimizers(self):
        optimizer = self.hparams.optimizer(params=self.trainer.model.parameters())
        if self.hparams.scheduler is not None:
            scheduler = self.hparams.scheduler(optimizer=optimizer)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss",
                                                             "interval": "epoch", "frequency": 1}}
        return {"optimizer": optimizer}
'''

# save_hyperparameters() over something no flag builds and no weights-only load reads
UNSAFE = '''
from pathlib import Path

from lightning.pytorch.demos.boring_classes import BoringModel


class Unsafe(BoringModel):
    def __init__(self, where: str = "here") -> None:
        super().__init__()
        self.save_hyperparameters({"where": Path(where)})
'''

HYDRA = ["--model", "hydra_mnist", "--dataset", "digits", "--net", "SimpleDenseNet", "--net.input_size", "784",
         "--optimizer", "Adam", "--optimizer.lr", "0.01", "--scheduler", "StepLR", "--scheduler.step_size",
         "2", "--compile", "false"]


def regressor_from_the_readme() -> str:
    answers = yaml.safe_load((ROOT / ".copier-answers.yml").read_text())  # an adopted repository's guide: readme_file
    readme = (ROOT / answers.get("readme_file", "README.md")).read_text()
    start = readme.index("# model/regressor.py")
    return readme[start:readme.index("```", start)]


FILES = {
    "model/boring.py": "from lightning.pytorch.demos.boring_classes import BoringModel\n",
    "model/demo.py": "from lightning.pytorch.demos.boring_classes import DemoModel\n",
    "model/manual.py": "from lightning.pytorch.demos.boring_classes import ManualOptimBoringModel\n",
    "model/autoencoder.py": AUTOENCODER,
    "model/regressor.py": regressor_from_the_readme(),
    "model/two.py": "from lightning.pytorch.demos.boring_classes import BoringModel, DemoModel\n",
    "model/notes.py": "TEXT = 'no model here'\n",
    "data/boring.py": "from lightning.pytorch.demos.boring_classes import BoringDataModule\n",
    "data/boring_no_len.py": "from lightning.pytorch.demos.boring_classes import BoringDataModuleNoLen\n",
    "data/digits.py": DIGITS,
    "model/_nets.py": NETS,
    "model/hydra_mnist.py": HYDRA_MODULE,
    "model/unsafe.py": UNSAFE,
    "hydra.yaml": yaml.safe_dump({"model": "hydra_mnist", "dataset": "digits", "compile": False,
                                  "net": {"class_path": "model._nets.SimpleDenseNet", "init_args": {"lin1_size": 32}},
                                  "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.05}},
                                  "scheduler": None}),
    # a predict_step whose output has no row per example
    "model/total.py": ("from lightning.pytorch.demos.boring_classes import BoringModel\n\n\n"
                       "class Total(BoringModel):\n    def predict_step(self, batch, batch_idx=0):\n"
                       "        return self(batch).sum()\n"),
}
# An older project's module, written against the pytorch_lightning package (a separate copy of Lightning).
OLD_NAMESPACE = importlib.util.find_spec("pytorch_lightning") is not None
if OLD_NAMESPACE:
    FILES["model/old_namespace.py"] = "import pytorch_lightning as pl\n\n\nclass Old(pl.LightningModule):\n    pass\n"


# Runs every scenario in one process of the project copy (one import of Lightning instead of one per run):
# trainer.main and predict.main as `python trainer.py ...` and `python predict.py RUN` run them, each with
# fresh warning filters, its output captured, and a refusal's exit code kept.
DRIVER = '''
import contextlib, io, json, sys, traceback, warnings

import predict
import trainer

results = {}
for name, (argv, predict_argv) in json.loads(sys.argv[1]).items():
    out, err, code, run_dir, output = io.StringIO(), io.StringIO(), 0, None, None
    with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run_dir = trainer.main(argv)
            if run_dir is not None and predict_argv is not None:
                output = predict.main([str(run_dir), *predict_argv])
        except SystemExit as stop:
            code = stop.code
        except BaseException:
            traceback.print_exc()
            code = "traceback"
    results[name] = {"code": code, "said": out.getvalue() + err.getvalue(), "run_dir": str(run_dir),
                     "predictions": str(output)}
print(json.dumps(results))
'''

RUN = [*QUIET, *TINY]
SCENARIOS = {
    # name: (trainer.py flags, predict.py flags or None)
    "boring": (["--model", "boring", "--dataset", "boring", *RUN], []),
    "demo": (["--model", "demo", "--dataset", "boring", "--out_dim", "4", "--learning_rate", "0.01", *RUN], []),
    "manual": (["--model", "manual", "--dataset", "boring_no_len", *RUN], None),
    "autoencoder": (["--model", "autoencoder", "--dataset", "digits", "--hidden", "32", *RUN], ["--split", "val"]),
    "monitor_max": (["--model", "autoencoder", "--dataset", "digits", "--monitor", "val_loss", "--monitor_mode", "max",
                     *RUN], None),
    "mlp_on_digits": (["--model", "mlp", "--dataset", "digits", *RUN], ["--split", "val"]),
    "regressor": (["--model", "regressor", "--dataset", "synthetic_regression", "--hidden", "8", *RUN], []),
    # refused: one line, exit 2, no run folder (these write below save_dir "refusals")
    "no_class": (["--model", "notes"], None),
    "two_classes": (["--model", "two"], None),
    "bare_batches": (["--model", "mlp", "--dataset", "boring"], None),
    "unknown_monitor": (["--model", "autoencoder", "--dataset", "digits", "--monitor", "acc/val", *RUN], None),
    "old_namespace": (["--model", "old_namespace"], None),
    "hydra": ([*HYDRA, *RUN], ["--split", "val"]),
    "hydra_config": (["--config", "hydra.yaml", "--optimizer.lr", "0.1", *RUN], []),
    "unsafe": (["--model", "unsafe", "--dataset", "boring", *RUN], None),
    "no_rows": (["--model", "total", "--dataset", "boring", *RUN, "--max_epochs", "1"], []),
}
REFUSED = ("no_class", "two_classes", "bare_batches", "unknown_monitor", "old_namespace", "unsafe")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this project (all of it: an adopted repository's modules import its code) with the foreign modules
    dropped into model/ and data/."""
    root = project_copy(tmp_path_factory.mktemp("foreign"))
    for path, text in FILES.items():
        (root / path).write_text(text)
    (root / "drive.py").write_text(DRIVER)
    return root


@pytest.fixture(scope="module")
def runs(project: Path) -> dict[str, dict]:
    """Every scenario's exit code, output, run folder and predictions file."""
    scenarios = {name: ([*argv, "--save_dir", str(project / ("refusals" if name in REFUSED else "logs"))], predict)
                 for name, (argv, predict) in SCENARIOS.items()}
    result = subprocess.run([sys.executable, "drive.py", json.dumps(scenarios)], cwd=project, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def trained(runs: dict[str, dict], name: str) -> tuple[Path, str]:
    """The run directory of a scenario that trained, and what it printed."""
    found = runs[name]
    assert found["code"] in (0, None), found["said"][-3000:]
    assert "Traceback" not in found["said"]
    return Path(found["run_dir"]), found["said"]


def predictions(runs: dict[str, dict], name: str) -> list[dict[str, str]]:
    with Path(runs[name]["predictions"]).open() as handle:
        return list(csv.DictReader(handle))


def refusal(runs: dict[str, dict], name: str) -> str:
    """The one line a refused command printed (exit 2, no traceback)."""
    found = runs[name]
    assert found["code"] == 2, found["said"][-3000:]
    assert "Traceback" not in found["said"]
    return found["said"].strip().splitlines()[-1]


def test_lightning_demo_classes_train_and_predict_unchanged(runs: dict[str, dict]) -> None:
    run_dir, said = trained(runs, "boring")
    # BoringModel logs no metric at all: the run says so and keeps its last checkpoint as the best.
    assert "No loss/val, val_loss or val/loss to monitor (it logs no validation metric)" in said
    info = json.loads((run_dir / "run.json").read_text())
    assert info["model_hparams"] == {} and info["monitor"] == {"metric": None, "mode": "min"}
    assert (run_dir / info["best_checkpoint"]).is_file()
    # no base-class optimizer, scheduler or weight_decay: the seed and the settings this run changed
    hparams = logged_hparams(run_dir)
    assert hparams["seed"] == 42.0 and hparams["max_epochs"] == 2.0
    assert not {"optimizer", "scheduler", "weight_decay", "lr"} & set(hparams)
    rows = predictions(runs, "boring")
    assert len(rows) == 64 and list(rows[0]) == ["index", "output_0", "output_1"]  # bare tensors, forward


def test_demo_model_takes_its_flags_from_its_signature(runs: dict[str, dict]) -> None:
    run_dir, said = trained(runs, "demo")
    assert "out_dim=4" in run_dir.name and "learning_rate=0.01" in run_dir.name  # what differs from the defaults
    hparams = logged_hparams(run_dir)
    assert hparams["out_dim"] == 4 and hparams["learning_rate"] == pytest.approx(0.01)
    assert "DemoModel has no test_step: no test" in said
    rows = predictions(runs, "demo")
    assert len(rows) == 64 and list(rows[0]) == ["index", "output_0", "output_1", "output_2", "output_3"]


def test_other_demo_pair_manual_optimization_and_no_len(runs: dict[str, dict]) -> None:
    run_dir, _ = trained(runs, "manual")
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert scalars(run_dir, "hp/val_loss") == []  # nothing to monitor: no best value to show


def test_documentation_pair_monitors_val_loss_and_records_its_own_metrics(runs: dict[str, dict]) -> None:
    run_dir, said = trained(runs, "autoencoder")
    assert "Monitoring val_loss (min): it picks the best checkpoint and stops early" in said
    # Its per-step train_loss is never logged in 2 batches: Lightning's warning saying why reaches the user.
    assert "smaller than the logging interval" in said
    hparams = logged_hparams(run_dir)
    assert hparams["hidden"] == 32 and hparams["code_size"] == 3 and hparams["batch_size"] == 16
    assert not {"optimizer", "weight_decay", "scheduler"} & set(hparams)
    val_loss = [value for _, value in scalars(run_dir, "val_loss")]
    hp_val = [value for _, value in scalars(run_dir, "hp/val_loss") if not math.isnan(value)]
    assert len(val_loss) == 2 and hp_val[-1] == pytest.approx(min(val_loss))
    test_loss = scalars(run_dir, "test_loss")
    assert [value for _, value in scalars(run_dir, "hp/test_loss")][-1] == pytest.approx(test_loss[-1][1])
    info = json.loads((run_dir / "run.json").read_text())
    assert "val_loss=" in info["best_checkpoint"] and info["monitor"]["metric"] == "val_loss"
    rows = predictions(runs, "autoencoder")
    assert len(rows) == 32
    assert [name for name in rows[0] if name.startswith("output")] == ["output_0", "output_1", "output_2"]
    assert "class" not in rows[0] and "confidence" not in rows[0]  # an autoencoder is no classifier


def test_monitor_flag_chooses_the_metric_and_its_direction(runs: dict[str, dict]) -> None:
    run_dir, said = trained(runs, "monitor_max")
    assert "Monitoring val_loss (max)" in said
    val_loss = [value for _, value in scalars(run_dir, "val_loss")]
    assert [value for _, value in scalars(run_dir, "hp/val_loss")][-1] == pytest.approx(max(val_loss))


def test_builtin_model_on_a_foreign_datamodule_reads_its_facts_from_a_batch(runs: dict[str, dict]) -> None:
    run_dir, said = trained(runs, "mlp_on_digits")
    assert "classification, input shape (1, 28, 28), 10 classes" in said
    assert "Monitoring loss/val (min)" in said
    assert len(scalars(run_dir, "loss/val")) == 2
    rows = predictions(runs, "mlp_on_digits")
    assert "class" in rows[0] and "confidence" in rows[0]


def test_foreign_model_on_a_builtin_dataset(runs: dict[str, dict]) -> None:
    run_dir, said = trained(runs, "regressor")
    assert "Monitoring val_loss (min)" in said
    assert logged_hparams(run_dir)["hidden"] == 8
    rows = predictions(runs, "regressor")
    assert {"x", "target", "output"} <= set(rows[0])


def test_outputs_without_a_row_per_example_are_one_line(runs: dict[str, dict]) -> None:
    line = refusal(runs, "no_rows")  # trained; predict.py refused
    assert "Total returns () for a batch of 64 examples, which cannot be written as one row per example" in line


def test_what_cannot_train_is_one_line_and_leaves_no_run(project: Path, runs: dict[str, dict]) -> None:
    assert "model/notes.py defines or imports no LightningModule" in refusal(runs, "no_class")
    line = refusal(runs, "two_classes")
    assert "several LightningModule classes (BoringModel, DemoModel)" in line and "__all__" in line
    assert "add an `info` property to BoringDataModule" in refusal(runs, "bare_batches")
    line = refusal(runs, "unknown_monitor")
    assert "--monitor acc/val: the model logs no such validation metric; it logs val_loss" in line
    if OLD_NAMESPACE:
        assert "Old is a pytorch_lightning.LightningModule" in refusal(runs, "old_namespace")
    assert not (project / "refusals").exists()


def test_a_hydra_style_module_trains_from_flags_tests_and_predicts(project: Path, runs: dict[str, dict]) -> None:
    """Objects chosen by flags (--net SimpleDenseNet --net.input_size 784), optimizer and scheduler partials
    (--optimizer Adam --optimizer.lr 0.01), save_hyperparameters() over all of them: it trains, its best checkpoint
    is tested (a weights-only load: the objects are saved as their configs), predict.py rebuilds it."""
    run_dir, said = trained(runs, "hydra")
    assert "Monitoring val/loss (min)" in said  # its own metric names
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["net"] == {"class_path": "model._nets.SimpleDenseNet", "init_args": {
        "input_size": 784, "lin1_size": 64, "lin2_size": 64, "output_size": 10}}
    assert config["optimizer"]["class_path"] == "torch.optim.Adam" and config["optimizer"]["init_args"]["lr"] == 0.01
    import torch

    for checkpoint in (run_dir / "checkpoints").glob("*.ckpt"):  # every one reads back safely
        saved = torch.load(checkpoint, weights_only=True)["hyper_parameters"]
        assert saved["net"]["class_path"] == "model._nets.SimpleDenseNet"
    assert scalars(run_dir, "hp/test_loss") and scalars(run_dir, "test/loss")
    hparams = logged_hparams(run_dir)
    assert hparams["net"] == "SimpleDenseNet" and hparams["optimizer"] == "Adam"
    assert "net=SimpleDenseNet" in run_dir.name and "optimizer=Adam" in run_dir.name
    assert len(predictions(runs, "hydra")) == 32
    # the same module from a YAML config, a later flag winning
    run_dir, _ = trained(runs, "hydra_config")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["optimizer"]["class_path"] == "torch.optim.SGD" and config["optimizer"]["init_args"]["lr"] == 0.1
    assert config["net"]["init_args"]["lin1_size"] == 32 and config.get("scheduler") is None


def test_a_run_of_a_hydra_style_module_trains_again_from_its_config(project: Path, runs: dict[str, dict]) -> None:
    run_dir, _ = trained(runs, "hydra")
    proc = subprocess.run([sys.executable, "trainer.py", "--config", str(run_dir / "config.yaml"), "--save_dir",
                           str(project / "again")], cwd=project, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (again,) = (project / "again").glob("*/*")
    assert again.name.split("_", 1)[1] == run_dir.name.split("_", 1)[1]  # the same settings name it
    assert yaml.safe_load((again / "config.yaml").read_text()) == yaml.safe_load((run_dir / "config.yaml").read_text())


def test_hyperparameters_a_checkpoint_cannot_hold_are_refused_before_training(runs: dict[str, dict]) -> None:
    line = refusal(runs, "unsafe")
    assert "model 'unsafe': save_hyperparameters() records where (a PosixPath)" in line
    assert "add ignore=['where'] to the save_hyperparameters() call of Unsafe" in line


@pytest.mark.parametrize("name", ["hydra", "autoencoder"])
def test_the_notebook_runs_headless_on_a_foreign_model(project: Path, runs: dict[str, dict], name: str) -> None:
    """The README's command, on a run of a module written for plain Lightning (its own metric names, no predict_step)."""
    if not (project / "notebooks").is_dir():
        pytest.skip("this project was made without the notebook")
    run_dir, _ = trained(runs, name)
    executed = project / f"{name}.ipynb"
    proc = subprocess.run([sys.executable, "-m", "jupyter", "execute", "notebooks/experiment.ipynb", "--output",
                           str(executed)], cwd=project, capture_output=True, text=True, check=False,
                          env={**os.environ, "NOTEBOOK_RUN_DIR": str(run_dir)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    import nbformat

    outputs = [out for cell in nbformat.read(executed, as_version=4).cells if cell.cell_type == "code"
               for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    assert len([out for out in outputs if "image/png" in out.get("data", {})]) >= 2  # predictions, curves
    assert any(run_dir.name in "".join(out.get("text", "")) for out in outputs)  # the run asked for


def test_the_projects_own_tests_try_every_pair_with_a_class_of_yours(project: Path) -> None:
    """The project's pair tests, run where the foreign classes live: each of them trains with some partner (or needs
    arguments a test cannot choose), and every pair that cannot train is named with its reason."""
    tests = Path(__file__).parent  # tests/, or where `litscaffold adopt` put them beside a repository's own
    shutil.copytree(tests, project / tests.name, dirs_exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", "-o", "addopts=",
                           f"{tests.name}/test_components.py", "-k", "class_of_yours or every_module_is_registered"],
                          cwd=project, capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "1000"})
    lines = proc.stdout.splitlines()
    # Two findings, each a failing test with its fix: model/unsafe.py trains with nothing (its hyperparameters cannot
    # be checkpointed safely) and model/two.py holds two modules. Every other class of yours trains with some partner
    # or is skipped with its reason.
    assert proc.returncode == 1 and "2 failed" in lines[-1], proc.stdout[-4000:]
    failed = [line.split(" - ")[0].split("::")[1] for line in lines if line.startswith("FAILED")]
    assert sorted(failed) == ["test_every_class_of_yours_trains_with_some_partner[unsafe]",
                              "test_every_module_is_registered[model-registry0-LightningModule]"], failed
    assert "add ignore=['where'] to the save_hyperparameters() call of Unsafe" in proc.stdout
    assert "model/two.py holds several LightningModule classes" in proc.stdout
    skipped = [line for line in lines if line.startswith("SKIPPED")]
    assert any("hydra_mnist: the following arguments are required: net, optimizer" in line for line in skipped)
    assert any("boring x synthetic_regression cannot train:" in line for line in skipped), skipped
