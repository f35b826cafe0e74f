"""A generated project, used as its users will: lint, its own tests, a real training run, TensorBoard."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def run_in(project: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=project, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def test_generated_code_passes_ruff(rendered: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=rendered,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_generated_code_never_imports_litscaffold(full_project: Path) -> None:
    offenders = [p for p in full_project.rglob("*.py") if re.search(r"^\s*(import|from)\s+litscaffold",
                                                               p.read_text(), re.MULTILINE)]
    assert offenders == []


def test_pyproject_installs_no_generic_top_level_packages(rendered: Path, tmp_path: Path) -> None:
    """`pip install -e .` must not put packages named `data` or `model` into site-packages."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(rendered)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import zipfile

    (wheel,) = tmp_path.glob("*.whl")
    top_level = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert all(name.endswith(".dist-info") for name in top_level), top_level


def test_the_generators_dev_extras_install_what_a_generated_project_needs(rendered: Path) -> None:
    """CI installs `.[dev]` only: a dependency the template adds (docstring-parser, mypy) and ours forgets fails
    the generated project's tests on a fresh machine and nowhere else."""
    import tomllib
    from packaging.requirements import Requirement

    ours = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    theirs = tomllib.loads((rendered / "pyproject.toml").read_text())["project"]
    needed = theirs["dependencies"] + theirs["optional-dependencies"]["dev"] + theirs["optional-dependencies"]["cluster"]
    def names(requirements: list[str]) -> set[str]:
        return {Requirement(r).name.lower().replace("_", "-") for r in requirements}

    missing = sorted(names(needed) - names(ours["optional-dependencies"]["dev"]))
    assert missing == [], f"add to pyproject.toml's dev extras: {missing}"


@pytest.mark.slow
def test_the_pre_commit_hook_passes_on_a_fresh_project(project: Path, tmp_path: Path) -> None:
    copy = project
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache")}
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=copy, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"ruff\.+Passed", proc.stdout) and re.search(r"mypy\.+Passed", proc.stdout), proc.stdout
    # and it does catch what ruff and mypy catch
    (copy / "model" / "_sloppy.py").write_text("import os\n\nWIDTH: int = 'wide'\n")
    subprocess.run(["git", "add", "model/_sloppy.py"], cwd=copy, check=True)
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=copy, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 1 and "F401" in proc.stdout and "Incompatible types in assignment" in proc.stdout, \
        proc.stdout


@pytest.mark.slow
def test_a_deprecated_api_in_project_code_fails_the_projects_tests(project: Path) -> None:
    """The project's pytest settings turn deprecations raised on behalf of its own code into failures (the next
    release of pytest, Lightning or TensorBoard would otherwise break a new machine first), while deprecations
    inside libraries, which the project cannot fix, pass."""
    copy = project
    (copy / "vendor_probe.py").write_text(
        "import warnings\n\n\ndef old_api():\n    warnings.warn('internal', DeprecationWarning, stacklevel=1)\n")
    (copy / "util" / "probe.py").write_text(
        "import warnings\n\n\ndef helper():\n    warnings.warn('util calls an old API', DeprecationWarning, "
        "stacklevel=1)\n")
    (copy / "tests" / "test_probe.py").write_text(
        "import warnings\n\nimport vendor_probe\n\nfrom util import probe\n\n\n"
        "def test_our_code_calls_a_deprecated_api():\n"
        "    warnings.warn('use the new API', DeprecationWarning, stacklevel=1)\n\n\n"
        "def test_util_calls_a_deprecated_api():\n    probe.helper()\n\n\n"
        "def test_a_library_deprecates_something_inside_itself():\n    vendor_probe.old_api()\n")
    proc = run_in(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_probe.py", timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "2 failed, 1 passed" in proc.stdout
    assert "DeprecationWarning: use the new API" in proc.stdout
    assert "DeprecationWarning: util calls an old API" in proc.stdout  # util/ is the project's code too


@pytest.mark.slow
@pytest.mark.longest
def test_the_projects_ci_workflow_passes_with_every_blueprint_added(full_project: Path, tmp_path: Path) -> None:
    """THE run of the generated project's own suite (its runtime lives there: training, resume, long runs, sweeps,
    folds, foreign modules, real data), once, in a project holding a component of every blueprint: the steps of
    .github/workflows/tests.yml as the hosted CI runs them, as far as they can run here (the CPU torch wheel comes
    from PyTorch's index and torch is installed already; the install step is checked with pip's resolver,
    --dry-run, so the test environment is not changed)."""
    import yaml

    from litscaffold.components import BLUEPRINTS

    workflow = yaml.safe_load((full_project / ".github" / "workflows" / "tests.yml").read_text())
    steps = {step["name"]: step["run"] for step in workflow["jobs"]["tests"]["steps"] if "run" in step}
    assert list(steps) == ["Install the CPU build of torch", "Install the project's dependencies", "Lint", "Type check",
                           "Test"]
    assert "download.pytorch.org/whl/cpu" in steps["Install the CPU build of torch"]
    copy = tmp_path / "demo"
    shutil.copytree(full_project, copy, symlinks=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name, command in steps.items():
        if name.startswith("Install the CPU build"):
            continue
        if name.startswith("Install"):
            command = command.replace("pip install", "pip install --dry-run --quiet", 1)
        if name == "Test":  # every test's outcome and skip reason, for the checks below
            command += " -p no:cacheprovider -rA"
        proc = subprocess.run(["bash", "-c", command], cwd=copy, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=1800)
        assert proc.returncode == 0, f"{name}: {command}\n{proc.stdout[-6000:]}{proc.stderr[-2000:]}"
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary and "error" not in summary, summary
    # Every blueprint's component is here, so every test that needs one (real tables, pictures, arrays) ran.
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert not [line for line in skipped if "blueprint" in line or "scikit-learn" in line], skipped
    # The sweep's views were looked at in a real browser wherever one is installed (.ci/services.sh installs
    # chromium; optuna-dashboard is in this environment through the dev extras).
    if shutil.which("chromium"):
        assert not [line for line in skipped if "test_sweep_views" in line], skipped
    # Every added component joined the project's parametrized tests without an edit.
    passed = [line for line in proc.stdout.splitlines() if line.startswith("PASSED ")]
    for kind, blueprints in BLUEPRINTS.items():
        for blueprint in blueprints:
            name = f"my_{blueprint.replace('-', '_')}"
            assert any(name in line for line in passed), f"{kind} {name} is in no passed test"
