"""`add`, `remove` and `list`: components arrive as new files only and everything sees them at once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_refused, run_cli, tree_digest

from litscaffold import __version__

MODEL_BLUEPRINTS = ["mlp", "deep-normal", "convnet", "autoencoder", "blank"]
DATASET_BLUEPRINTS = ["synthetic-regression", "synthetic-images", "mnist", "csv", "image-folder", "arrays"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("components")
    run_cli("new-project", "demo", "--defaults", cwd=where, check=True)
    return where / "demo"


@pytest.fixture
def project(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "demo"
    shutil.copytree(pristine, copy)
    return copy


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


@pytest.mark.slow
def test_every_blueprint_joins_the_projects_own_tests(project: Path) -> None:
    for blueprint in MODEL_BLUEPRINTS:
        run_cli("add", "model", f"my_{blueprint.replace('-', '_')}", "--blueprint", blueprint, cwd=project,
                check=True)
    for blueprint in DATASET_BLUEPRINTS:
        run_cli("add", "dataset", f"my_{blueprint.replace('-', '_')}", "--blueprint", blueprint, cwd=project,
                check=True)
    assert len([k for k in listed(project) if k[0] == "model"]) == 2 + len(MODEL_BLUEPRINTS)
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=project,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    # "not slow": the project's slow tests (sweeps, DDP) do not depend on the added blueprints, and they run in
    # test_generated_project.py's run of the project's CI workflow.
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", "tests"],
                          cwd=project, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-5000:]
    # every added module shows up in the project's parametrized tests
    for blueprint in MODEL_BLUEPRINTS + DATASET_BLUEPRINTS:
        assert f"my_{blueprint.replace('-', '_')}" in subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
            cwd=project, capture_output=True, text=True).stdout


def train(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "trainer.py", "--max_epochs", "1", "--save_dir", "logs", *args],
                          cwd=project, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)


@pytest.mark.slow
def test_one_pair_per_task_trains_for_an_epoch(project: Path) -> None:
    run_cli("add", "model", "digits_net", "--blueprint", "convnet", cwd=project, check=True)
    run_cli("add", "model", "codec", "--blueprint", "autoencoder", cwd=project, check=True)
    run_cli("add", "dataset", "digits", "--blueprint", "synthetic-images", cwd=project, check=True)
    for model, dataset in [("mlp", "synthetic_regression"), ("digits_net", "digits"), ("codec", "digits")]:
        proc = train(project, "--model", model, "--dataset", dataset, "--limit_train_batches", "8",
                     "--limit_val_batches", "2", "--limit_test_batches", "2")
        assert proc.returncode == 0, (model, dataset, proc.stderr[-3000:])
    assert len(list((project / "logs").glob("*/*/run.json"))) == 3


@pytest.mark.slow
def test_model_hyperparameters_become_flags_and_incompatible_pairs_are_refused(project: Path) -> None:
    run_cli("add", "model", "digits_net", "--blueprint", "convnet", cwd=project, check=True)
    help_text = subprocess.run([sys.executable, "trainer.py", "--model", "mlp", "--help"], cwd=project,
                               capture_output=True, text=True).stdout
    assert "--hidden" in help_text
    proc = train(project, "--model", "mlp", "--hidden", "17", "--fast_dev_run", "true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = train(project, "--model", "mlp", "--hidden", "17", "--limit_train_batches", "2",
                 "--limit_val_batches", "1", "--limit_test_batches", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (project / "logs").glob("mlp-synthetic_regression/*")
    assert "_hidden=17" in run_dir.name  # beside the Trainer flags the run changed (issue 10)
    proc = train(project, "--model", "digits_net", "--dataset", "synthetic_regression")
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert "digits_net" in message and "synthetic_regression" in message and "Traceback" not in proc.stderr
    assert not (project / "logs" / "digits_net-synthetic_regression").exists() or not any(
        (project / "logs" / "digits_net-synthetic_regression").iterdir())


@pytest.mark.slow
def test_csv_without_the_named_columns_names_the_columns_found(project: Path) -> None:
    run_cli("add", "dataset", "sales", "--blueprint", "csv", cwd=project, check=True)
    (project / "sales.csv").write_text("a,b,price\n" + "".join(f"{i},{i * 2},{i * 3}\n" for i in range(50)))
    proc = train(project, "--model", "mlp", "--dataset", "sales", "--path", "sales.csv", "--features", "a,size",
                 "--target", "price", "--fast_dev_run", "true")
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert "size" in message and "a, b, price" in message and "Traceback" not in proc.stderr
