"""`add`, `remove` and `list`: components arrive as new files only and everything sees them at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_refused, run_cli, tree_digest

from litscaffold import __version__
from litscaffold.components import BLUEPRINTS

MODEL_BLUEPRINTS = list(BLUEPRINTS["model"])


def listed(project: Path) -> dict[tuple[str, str], dict]:
    proc = run_cli("list", "--json", cwd=project, check=True)
    return {(c["kind"], c["name"]): c for c in json.loads(proc.stdout)["components"]}


def git_clean(project: Path) -> bool:
    return subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True,
                          text=True).stdout == ""


def test_list_shows_the_built_in_components(project: Path) -> None:
    proc = run_cli("list", cwd=project, check=True)
    assert f"template {__version__}" in proc.stdout
    components = listed(project)
    assert components[("model", "deep_normal")]["blueprint"] == "deep-normal"
    assert components[("model", "mlp")]["owner"] == "project"
    assert components[("dataset", "synthetic_regression")]["template_version"] == __version__


def test_list_names_a_hand_written_module_that_holds_no_class(project: Path) -> None:
    # Any LightningModule counts, defined or imported (the trainer agrees); a module with no class at all
    # is listed with the reason, as `python trainer.py --model notes` and the project's tests say it.
    (project / "model" / "boring.py").write_text("from lightning.pytorch.demos.boring_classes import BoringModel\n")
    (project / "model" / "notes.py").write_text("TEXT = 'no model here'\n")
    components = listed(project)
    assert components[("model", "boring")]["owner"] == "user" and components[("model", "boring")]["problem"] is None
    assert "defines or imports no class" in components[("model", "notes")]["problem"]
    assert "model/notes.py: defines or imports no class" in run_cli("list", cwd=project, check=True).stdout


def test_list_marks_modules_flags_cannot_build_and_the_arguments_a_run_must_give(project: Path) -> None:
    """Read from the source, as the project's registry decides at import: several LightningModules without
    __all__, the old pytorch_lightning package; a module built from objects (lightning-hydra-template's shape)
    is usable but needs its arguments on every run, and the list says which."""
    model = project / "model"
    (model / "pair.py").write_text("from lightning.pytorch import LightningModule\n\n\n"
                                   "class A(LightningModule):\n    pass\n\n\nclass B(LightningModule):\n    pass\n")
    (model / "legacy.py").write_text("import pytorch_lightning as pl\n\n\nclass Old(pl.LightningModule):\n    pass\n")
    (model / "hydra.py").write_text(
        "import lightning.pytorch as pl\nfrom torch import nn\n\n\nclass Net(nn.Module):\n    pass\n\n\n"
        "class Lit(pl.LightningModule):\n    def __init__(self, net: nn.Module, optimizer, input_shape, num_outputs,"
        " compile: bool = False, *, scheduler):\n        super().__init__()\n")
    (model / "chosen.py").write_text("from lightning.pytorch import LightningModule\n\n__all__ = ['B']\n\n\n"
                                     "class A(LightningModule):\n    pass\n\n\nclass B(A):\n    pass\n")
    components = listed(project)
    assert "several LightningModule classes (A, B)" in components[("model", "pair")]["problem"]
    assert "import lightning.pytorch as pl" in components[("model", "legacy")]["problem"]
    hydra = components[("model", "hydra")]
    assert hydra["problem"] is None and hydra["needs"] == ["net", "optimizer", "scheduler"]
    assert components[("model", "chosen")]["problem"] is None and components[("model", "chosen")]["needs"] == []
    out = run_cli("list", cwd=project, check=True).stdout
    assert "model/hydra.py: needs --net, --optimizer, --scheduler on every run (no defaults)" in out
    assert "model/pair.py: holds several LightningModule classes" in out


def test_add_creates_only_new_files_commits_and_is_listed(project: Path) -> None:
    before = tree_digest(project)
    run_cli("add", "model", "digits", "--blueprint", "convnet", cwd=project / "model", check=True)
    after = tree_digest(project)
    changed = {path for path in before if before[path] != after.get(path) and not path.startswith(".git/")}
    assert changed == set()  # no existing file was edited
    new = {path for path in after if path not in before and not path.startswith(".git/")}
    assert new == {"model/digits.py", ".copier-answers.model-digits.yml"}
    assert "class Digits" in (project / "model" / "digits.py").read_text()
    assert git_clean(project)
    entry = listed(project)[("model", "digits")]
    assert (entry["blueprint"], entry["owner"], entry["template_version"]) == ("convnet", "component", __version__)


def test_add_then_remove_leaves_the_tree_as_it_was(project: Path) -> None:
    before = {k: v for k, v in tree_digest(project).items() if not k.startswith(".git/")}
    run_cli("add", "dataset", "tabular", "--blueprint", "csv", cwd=project, check=True)
    run_cli("remove", "dataset", "tabular", cwd=project, check=True)
    after = {k: v for k, v in tree_digest(project).items() if not k.startswith(".git/")}
    assert after == before
    assert git_clean(project)


def test_add_and_remove_behave_alike_on_a_dirty_tree(project: Path) -> None:
    """Both commit when the tree was clean; neither does when it was not, and both say so."""
    (project / "notes.txt").write_text("work in progress\n")
    added = run_cli("add", "model", "draft", cwd=project, check=True)
    removed = run_cli("remove", "model", "draft", cwd=project, check=True)
    for proc in (added, removed):
        assert "not committed (the project is not a clean git repository)" in proc.stdout, proc.stdout
    head = subprocess.run(["git", "log", "-1", "--format=%s"], cwd=project, capture_output=True, text=True).stdout
    assert "draft" not in head
    (project / "notes.txt").unlink()
    run_cli("add", "model", "kept", cwd=project, check=True)
    run_cli("remove", "model", "kept", cwd=project, check=True)
    log = subprocess.run(["git", "log", "-2", "--format=%s"], cwd=project, capture_output=True, text=True).stdout
    assert log.splitlines()[0].startswith("Remove model kept") and "Add model kept" in log.splitlines()[1]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "blueprint"), [("model", b) for b in MODEL_BLUEPRINTS]
                         + [("dataset", "synthetic-regression"), ("dataset", "synthetic-images")])
def test_the_commands_add_prints_work_as_printed(project: Path, kind: str, blueprint: str) -> None:
    """`add model mycnn --blueprint convnet` used to suggest a run the trainer refuses (no images in the default
    data): every printed next step must run (trainer runs as a fast_dev_run, so the test stays short)."""
    proc = run_cli("add", kind, "newcomer", "--blueprint", blueprint, cwd=project, check=True)
    steps = [line.strip() for line in proc.stdout.split("Try it:")[1].splitlines() if line.strip()]
    assert steps, proc.stdout
    for step in steps:
        words = step.split()
        if words[0] == "litscaffold":
            run_cli(*words[1:], cwd=project, check=True)
            continue
        assert words[:2] == ["python", "trainer.py"], step
        ran = subprocess.run([sys.executable, "trainer.py", *words[2:], "--fast_dev_run", "true"], cwd=project,
                             capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
        assert ran.returncode == 0, (step, ran.stderr[-2000:])


def test_remove_refuses_edited_components_unless_forced(project: Path) -> None:
    run_cli("add", "model", "net", cwd=project, check=True)
    module = project / "model" / "net.py"
    module.write_text(module.read_text() + "\n# my change\n")
    assert "model/net.py" in assert_refused("remove", "model", "net", cwd=project, code=2)
    run_cli("remove", "model", "net", "--force", cwd=project, check=True)
    assert not module.exists() and not (project / ".copier-answers.model-net.yml").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["add", "model", "mlp"], "already exists"),
        (["add", "model", "class"], "keyword"),
        (["add", "model", "torch"], "shadow"),
        (["add", "dataset", "data"], "shadow"),
        (["add", "model", "My-Net"], "not a module name"),
        (["add", "model", "2net"], "not a module name"),
        (["add", "model", "net", "--blueprint", "resnet"], "mlp, deep-normal, convnet, autoencoder, blank"),
        (["add", "dataset", "d", "--blueprint", "imagenet"], "synthetic-regression, synthetic-images, mnist, csv, image-folder, arrays"),
        (["remove", "model", "nothing"], "no model named 'nothing'"),
        (["remove", "model", "mlp"], "part of the project template"),
        (["remove", "gadget", "x"], "use model or dataset"),
    ],
)
def test_refusals_leave_the_project_byte_identical(project: Path, args: list[str], fragment: str) -> None:
    assert fragment in assert_refused(*args, cwd=project, code=2)


def test_outside_a_project(tmp_path: Path) -> None:
    assert "not inside a litscaffold project" in assert_refused("add", "model", "net", cwd=tmp_path, code=2)
    assert "--project DIR" in assert_refused("list", "--project", str(tmp_path), cwd=tmp_path, code=2)
