"""A generated project, used as its users will: lint, its own tests, a real training run, TensorBoard."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

TRAIN_FAST = ["--limit_train_batches", "4", "--limit_val_batches", "2", "--limit_test_batches", "2"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("generated")
    run_cli("new-project", "demo", "--defaults", cwd=where, check=True)
    return where / "demo"


def run_in(project: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=project, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def run_dirs(save_dir: Path) -> list[Path]:
    return sorted(p for p in save_dir.glob("*/*") if p.is_dir())


def test_generated_code_passes_ruff(project: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=project,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_generated_code_never_imports_litscaffold(project: Path) -> None:
    offenders = [p for p in project.rglob("*.py") if re.search(r"^\s*(import|from)\s+litscaffold",
                                                               p.read_text(), re.MULTILINE)]
    assert offenders == []


def test_pyproject_installs_no_generic_top_level_packages(project: Path, tmp_path: Path) -> None:
    """`pip install -e .` must not put packages named `data` or `model` into site-packages."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(project)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import zipfile

    (wheel,) = tmp_path.glob("*.whl")
    top_level = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert all(name.endswith(".dist-info") for name in top_level), top_level


@pytest.mark.slow
def test_the_projects_ci_workflow_passes_on_a_fresh_project(project: Path, tmp_path: Path) -> None:
    """The steps of .github/workflows/tests.yml, run as the hosted CI runs them, as far as they can run here:
    the CPU torch wheel comes from PyTorch's index (torch is installed already), the install step is checked with
    pip's resolver (--dry-run: the test environment is not changed), lint and the project's whole suite run."""
    import yaml

    workflow = yaml.safe_load((project / ".github" / "workflows" / "tests.yml").read_text())
    steps = {step["name"]: step["run"] for step in workflow["jobs"]["tests"]["steps"] if "run" in step}
    assert list(steps) == ["Install the CPU build of torch", "Install the project's dependencies", "Lint", "Test"]
    assert "download.pytorch.org/whl/cpu" in steps["Install the CPU build of torch"]
    copy = tmp_path / "demo"
    shutil.copytree(project, copy)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name, command in steps.items():
        if name.startswith("Install the CPU build"):
            continue
        if name.startswith("Install"):
            command = command.replace("pip install", "pip install --dry-run --quiet", 1)
        proc = subprocess.run(["bash", "-c", command], cwd=copy, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=900)
        assert proc.returncode == 0, f"{name}: {command}\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
    assert re.search(r"\d+ passed", proc.stdout) and " failed" not in proc.stdout


def test_the_pre_commit_hook_passes_on_a_fresh_project(project: Path, tmp_path: Path) -> None:
    copy = tmp_path / "demo"
    shutil.copytree(project, copy)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache")}
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=copy, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"ruff\.+Passed", proc.stdout), proc.stdout
    # and it does catch what ruff catches
    (copy / "model" / "sloppy.py").write_text("import os\n")
    subprocess.run(["git", "add", "model/sloppy.py"], cwd=copy, check=True)
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=copy, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 1 and "F401" in proc.stdout, proc.stdout


def test_a_deprecated_api_in_project_code_fails_the_projects_tests(project: Path, tmp_path: Path) -> None:
    """The project's pytest settings turn deprecations raised on behalf of its own code into failures (the next
    release of pytest, Lightning or TensorBoard would otherwise break a new machine first), while deprecations
    inside libraries, which the project cannot fix, pass."""
    copy = tmp_path / "demo"
    shutil.copytree(project, copy)
    (copy / "vendor_probe.py").write_text(
        "import warnings\n\n\ndef old_api():\n    warnings.warn('internal', DeprecationWarning, stacklevel=1)\n")
    (copy / "tests" / "test_probe.py").write_text(
        "import warnings\n\nimport vendor_probe\n\n\n"
        "def test_our_code_calls_a_deprecated_api():\n"
        "    warnings.warn('use the new API', DeprecationWarning, stacklevel=1)\n\n\n"
        "def test_a_library_deprecates_something_inside_itself():\n    vendor_probe.old_api()\n")
    proc = run_in(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_probe.py", timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "1 failed, 1 passed" in proc.stdout
    assert "DeprecationWarning: use the new API" in proc.stdout


@pytest.mark.slow
def test_two_epochs_fill_the_hparams_tab_with_real_values(project: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    save_dir = tmp_path / "logs"
    proc = run_in(project, "trainer.py", "--max_epochs", "2", "--save_dir", str(save_dir), "--lr", "0.005",
                  *TRAIN_FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = run_dirs(save_dir)
    # naming scheme: save_dir/<model>-<dataset>/<timestamp>_<changed hyperparameters>
    assert run_dir.parent.name == "deep_normal-synthetic_regression"
    # every setting that differs from its default names the run, Trainer flags included
    assert re.fullmatch(r"\d{8}-\d{6}(_\d+)?_lr=0\.005_max_epochs=2_train_batches=4_val_batches=2_test_batches=2",
                        run_dir.name), run_dir.name
    assert str(run_dir) in proc.stdout and "tensorboard --logdir" in proc.stdout

    events = EventAccumulator(str(run_dir))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    # the run's row without an experiment summary: TensorBoard then takes the columns from ALL runs it reads
    # (one run's experiment summary would hide other series' hyperparameters)
    assert "_hparams_/session_start_info" in content and "_hparams_/experiment" not in content
    session = metadata.parse_session_start_info_plugin_data(content["_hparams_/session_start_info"])
    hparams = dict(session.hparams)
    assert math.isclose(hparams["lr"].number_value, 0.005)
    assert "hidden" in hparams and "batch_size" in hparams and hparams["max_epochs"].number_value == 2

    val_loss = events.Scalars("loss/val")
    hp_val = events.Scalars("hp/val_loss")
    assert len(val_loss) == 2 and len(hp_val) == 2
    # the HPARAMS table shows the last logged value: the best validation loss, the checkpoint that is tested
    assert math.isclose(hp_val[-1].value, min(v.value for v in val_loss), rel_tol=1e-6)
    assert math.isclose(events.Scalars("hp/val_loss_last")[-1].value, val_loss[-1].value, rel_tol=1e-6)
    assert all(math.isfinite(v.value) for v in hp_val)
    assert "loss/train" in events.Tags()["scalars"]

    run = json.loads((run_dir / "run.json").read_text())
    assert run["model"] == "deep_normal" and run["dataset"] == "synthetic_regression"
    assert (run_dir / run["best_checkpoint"]).is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_runs_started_together_get_their_own_directories(project: Path, tmp_path: Path) -> None:
    save_dir = tmp_path / "logs"
    command = [sys.executable, "trainer.py", "--max_epochs", "1", "--save_dir", str(save_dir), *TRAIN_FAST]
    procs = [subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    dirs = run_dirs(save_dir)
    assert len(dirs) == 2, dirs
    for run_dir in dirs:
        assert list((run_dir / "checkpoints").glob("*.ckpt")), run_dir
