"""`litscaffold adopt` (issue 23): an existing Lightning repository, in each of the shapes users have it
(tests/adopt_layouts.py), brought under the template by the real CLI, then trained, tested and predicted through the
project's own trainer.py and predict.py, swept, added to and updated to a next template version."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from adopt_layouts import FLAT_FILES, HYDRA_FILES, LAYOUTS, THEIRS, TINY, write_repository
from conftest import (
    TemplateHistory,
    assert_one_line_error,
    assert_refused,
    copy_project,
    git,
    run_cli,
    run_dirs,
    tree_digest,
)
from hostile_helpers import state

from litscaffold.registration import WRITTEN_BY


@dataclass(frozen=True)
class Adopted:
    root: Path
    theirs: dict[str, str]  # their files' text before adopt
    report: str             # adopt's output


def their_files(root: Path) -> dict[str, str]:
    return {path: (root / path).read_text() for path in git(root, "ls-files", "-z").split("\0") if path}


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Adopted]:
    """One adopted repository per layout for the module (made on first use). Tests that write take a copy."""
    made: dict[str, Adopted] = {}

    def get(layout: str) -> Adopted:
        if layout not in made:
            root = write_repository(tmp_path_factory.mktemp(layout) / layout, LAYOUTS[layout])
            theirs = their_files(root)
            proc = run_cli("adopt", cwd=root)
            assert proc.returncode == 0, proc.stderr
            made[layout] = Adopted(root, theirs, proc.stdout)
        return made[layout]
    return get


def python(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A script of the adopted repository, run from its root the way its user runs it."""
    proc = subprocess.run([sys.executable, *args], cwd=root, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, f"python {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def in_order(lines: list[str], within: list[str]) -> bool:
    """Every line of `lines` is in `within`, in the same order (lines may have been added between them)."""
    rest = iter(within)
    return all(any(line == other for other in rest) for line in lines)


def scalar_tags(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return set(events.Tags()["scalars"])


# ---- what adopt leaves --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_adopt_commits_once_and_none_of_their_files_loses_a_line(adopted: Callable[[str], Adopted],
                                                                  layout: str) -> None:
    repo = adopted(layout)
    root = repo.root
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(root, "rev-list", "--count", "HEAD").strip() == "2"  # their commit, and adopt's one on top
    assert git(root, "log", "-1", "--format=%s").startswith("Adopt litscaffold template")
    for path, text in repo.theirs.items():
        now = (root / path).read_text()
        assert in_order(text.splitlines(), now.splitlines()), f"{path} lost or reordered a line"
    changed = git(root, "diff", "--name-only", "HEAD~1", "HEAD", "--diff-filter=MDR").split()
    model, dataset, _ = THEIRS[layout]
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["component"] == "project" and answers["_commit"].startswith("v")
    for name, package in ((model, "model"), (dataset, "data")):
        assert WRITTEN_BY in (root / package / f"{name}.py").read_text()
    listed = run_cli("list", cwd=root, check=True).stdout
    assert model in listed and dataset in listed
    assert "Try it:" in repo.report
    if layout == "hydra":
        # merged where the format allows, the template's beside theirs elsewhere; their tests/ and README stay theirs
        assert set(changed) == {".gitignore", "README.md", "requirements.txt"}
        for line in ("merged  .gitignore", "merged  README.md", "merged  requirements.txt",
                     "beside  .pre-commit-config.yaml", "kept    tests/", "kept    pyproject.toml"):
            assert line in repo.report
        assert (root / ".pre-commit-config.litscaffold.yaml").is_file()
        assert (root / "README.litscaffold.md").is_file() and (root / "tests_litscaffold" / "conftest.py").is_file()
        assert "## Training with litscaffold" in (root / "README.md").read_text()
        assert answers["tests_dir"] == "tests_litscaffold"
        assert "SimpleDenseNet" in (root / "model" / "_networks.py").read_text()
        # what its signature requires (a schedule without a default is optional in trainer.py)
        assert "--net ... --optimizer ... --compile ... --max_epochs 1" in repo.report
    elif layout == "flat":
        assert set(changed) == {".gitignore", "requirements.txt"}
        assert "kept    model.py" in repo.report and "kept    data.py" in repo.report
        assert "optuna" in (root / "requirements.txt").read_text()
    else:
        assert set(changed) == {"README.md", "requirements.txt"}
        assert (root / "README.litscaffold.md").is_file() and (root / "tests" / "conftest.py").is_file()


# ---- training their classes through trainer.py -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_their_module_trains_tests_and_predicts_through_the_project(adopted: Callable[[str], Adopted],
                                                                    layout: str) -> None:
    root = adopted(layout).root
    model, dataset, needs = THEIRS[layout]
    python(root, "trainer.py", "--model", model, "--dataset", dataset, *needs, *TINY)
    runs = [run for run in run_dirs(root / "logs") if run.parent.name == f"{model}-{dataset}"]
    assert len(runs) == 1, runs
    run = runs[0]
    assert list((run / "checkpoints").glob("best*.ckpt"))
    tags = scalar_tags(run)
    assert any(tag.startswith("test") for tag in tags), tags  # trainer.py tested the best checkpoint

    python(root, "predict.py", str(run))
    with (run / "predictions-test.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 64 and rows[0]["index"] == "0"
    assert git(root, "status", "--porcelain") == ""  # runs write to ignored folders only


@pytest.mark.slow
def test_their_own_scripts_and_tests_still_import_their_code(adopted: Callable[[str], Adopted]) -> None:
    """The flat repository's model.py and data.py are shadowed by the project's packages model/ and data/: its own
    train.py (`from model import LitRegressor, count_parameters`) still runs; the src/ layout's own tests still pass."""
    flat = adopted("flat").root
    assert "val_loss:" in python(flat, "train.py", "1").stdout
    hydra = adopted("hydra").root
    python(hydra, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests")


@pytest.mark.slow
def test_a_two_trial_sweep_searches_an_argument_of_their_module(adopted: Callable[[str], Adopted]) -> None:
    root = adopted("hydra").root
    model, dataset, needs = THEIRS["hydra"]
    study = "adopted-sweep"
    proc = python(root, "sweep.py", "--trials", "2", "--study", study, "--model", model, "--dataset", dataset,
                  *needs, "--optimizer.lr", "1e-4:1e-2:log", *TINY, timeout=600)
    assert "2 complete" in proc.stdout, proc.stdout
    trials = sorted((root / "logs" / study).glob("trial-*"))
    assert len(trials) == 2 and all(list((trial / "checkpoints").glob("best*.ckpt")) for trial in trials)


# ---- afterwards: add, list, update, as in a project made by new-project -------------------------------------------


def test_add_and_remove_work_afterwards(adopted: Callable[[str], Adopted], tmp_path: Path) -> None:
    root = copy_project(adopted("hydra").root, tmp_path)
    run_cli("add", "model", "my_net", cwd=root, check=True)
    assert git(root, "log", "-1", "--format=%s").startswith("Add model my_net")
    assert git(root, "status", "--porcelain") == ""
    listed = run_cli("list", cwd=root, check=True).stdout
    assert "my_net" in listed and "mnist_lit_module" in listed
    assert run_cli("check", cwd=root).returncode == 0
    run_cli("remove", "model", "my_net", cwd=root, check=True)
    assert not (root / "model" / "my_net.py").exists() and git(root, "status", "--porcelain") == ""
    # a registration of theirs is theirs to delete: remove refuses it
    assert "not made by litscaffold" in assert_refused("remove", "model", "mnist_lit_module", cwd=root, code=2)


@pytest.mark.slow
def test_update_to_a_next_template_version_keeps_their_edits(template_history: TemplateHistory, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Adopted at an older version (conftest's template history), edited, then `litscaffold update`."""
    from litscaffold.adopt import adopt
    from litscaffold.template import TemplateSource

    monkeypatch.setenv("LITSCAFFOLD_TEMPLATE_BUNDLE", str(template_history.bundle))
    monkeypatch.setenv("LITSCAFFOLD_CACHE_DIR", str(tmp_path / "cache"))
    root = write_repository(tmp_path / "hydra", HYDRA_FILES)
    adopt(root, source=TemplateSource(bundle=template_history.bundle), version=template_history.old)
    assert template_history.old_line in (root / template_history.wiring).read_text()
    assert run_cli("check", cwd=root).returncode == 4  # behind

    wiring = root / template_history.wiring
    wiring.write_text(wiring.read_text() + '\n\ndef user_helper() -> str:\n    return "my own helper"\n')
    with (root / "src" / "models" / "mnist_module.py").open("a") as handle:
        handle.write("# my note on the model\n")
    git(root, "commit", "-qam", "My edits")
    kept = {path: (root / path).read_bytes() for path in (".gitignore", "pyproject.toml", ".pre-commit-config.yaml",
                                                          "README.md", "src/models/mnist_module.py")}

    proc = run_cli("update", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = wiring.read_text()
    assert 'return "my own helper"' in text and template_history.new_line in text
    assert template_history.old_line not in text
    assert {path: (root / path).read_bytes() for path in kept} == kept  # kept_files: never written by an update
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["_commit"] == f"v{template_history.new}" and answers["tests_dir"] == "tests_litscaffold"
    assert git(root, "status", "--porcelain") == ""
    assert run_cli("check", cwd=root).returncode == 0


# ---- dry run and refusals: nothing changes -------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["hydra", "flat"])
def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path, layout: str) -> None:
    root = write_repository(tmp_path / layout, LAYOUTS[layout])
    before = tree_digest(root)
    proc = run_cli("adopt", "--dry-run", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert tree_digest(root) == before
    model, dataset, _ = THEIRS[layout]
    assert f"--model {model}" in proc.stdout and f"--dataset {dataset}" in proc.stdout
    assert "Would add" in proc.stdout and "nothing was changed" in proc.stdout
    assert "merged  .gitignore" in proc.stdout


def test_refusals_are_one_line_and_change_nothing(adopted: Callable[[str], Adopted], tmp_path: Path) -> None:
    line = assert_refused("adopt", cwd=adopted("example").root, code=1)
    assert "already" in line

    dirty = write_repository(tmp_path / "dirty", FLAT_FILES)
    with (dirty / "model.py").open("a") as handle:
        handle.write("# work in progress\n")
    assert "uncommitted changes in model.py" in assert_refused("adopt", cwd=dirty, code=1)

    no_module = write_repository(tmp_path / "no-module", {"data.py": FLAT_FILES["data.py"], "notes.md": "# notes\n"})
    assert "no LightningModule found" in assert_refused("adopt", cwd=no_module, code=1)
    hydra = write_repository(tmp_path / "hydra", HYDRA_FILES)
    assert "no LightningModule found in src/data" in assert_refused("adopt", "--models", "src/data", cwd=hydra,
                                                                    code=1)
    assert "--models" in assert_refused("adopt", "--models", str(tmp_path), cwd=hydra, code=2)

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "model.py").write_text(FLAT_FILES["model.py"])
    assert "not inside a git repository" in assert_refused("adopt", cwd=plain, code=1)

    own_trainer = write_repository(tmp_path / "own-trainer", {**FLAT_FILES, "trainer.py": FLAT_FILES["train.py"]})
    assert "trainer.py is yours" in assert_refused("adopt", cwd=own_trainer, code=1)


def test_a_commit_git_refuses_leaves_the_repository_as_it_was(tmp_path: Path) -> None:
    """All or nothing: the files are written, then git refuses the commit (a signing setup that fails)."""
    root = write_repository(tmp_path / "world" / "hydra", HYDRA_FILES)
    before = state(tmp_path / "world")
    config = tmp_path / "gitconfig"
    config.write_text("[commit]\n\tgpgsign = true\n[gpg]\n\tprogram = /bin/false\n")
    line = assert_one_line_error(run_cli("adopt", cwd=root, env={"GIT_CONFIG_GLOBAL": str(config)}), 1)
    assert "git refused the commit" in line
    assert state(tmp_path / "world") == before


@pytest.mark.slow
def test_a_src_package_layout_is_imported_from_src(tmp_path: Path) -> None:
    """src/<package>/ (no src/__init__.py): the classes import as `mypkg.models...` once src/ is on sys.path, which
    the registering modules arrange; --models/--datasets name where they live."""
    model = FLAT_FILES["model.py"].replace("import lightning as L", "import lightning as L\n\nfrom mypkg.util import WIDTH")
    files = {"src/mypkg/__init__.py": "", "src/mypkg/util.py": "WIDTH = 8\n",
             "src/mypkg/models/__init__.py": "", "src/mypkg/models/regressor.py": model,
             "src/mypkg/data/__init__.py": "", "src/mypkg/data/regression.py": FLAT_FILES["data.py"],
             "pyproject.toml": '[project]\nname = "mypkg"\nversion = "0.1"\ndependencies = [\n    "lightning",\n]\n'}
    root = write_repository(tmp_path / "pkg", files)
    proc = run_cli("adopt", "--models", "src/mypkg/models", "--datasets", "src/mypkg/data", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "merged  pyproject.toml: dependencies added" in proc.stdout
    shown = python(root, "-c", "from model import MODELS; from data import DATASETS; "
                               "print(MODELS['lit_regressor'].__module__, DATASETS['random_regression'].__module__)")
    assert shown.stdout.split() == ["mypkg.models.regressor", "mypkg.data.regression"]
