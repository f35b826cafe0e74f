"""`litscaffold new-project`: what it renders, what it refuses, and that refusals change nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import assert_refused, run_cli
from hostile_helpers import start

from litscaffold import __version__


def git_log(root: Path) -> list[str]:
    return subprocess.run(["git", "log", "--format=%s"], cwd=root, capture_output=True, text=True,
                          check=True).stdout.splitlines()


def test_defaults_render_a_committed_project(tmp_path: Path) -> None:
    proc = run_cli("new-project", "Weather Model", "--defaults", cwd=tmp_path, check=True)
    root = tmp_path / "weather_model"
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["project_name"] == "Weather Model"
    assert answers["project_slug"] == "weather_model"
    assert answers["component"] == "project"
    assert answers["_commit"] == f"v{__version__}"
    # the cache lies under HOME (conftest): recorded in its ~ form, portable across machines
    assert answers["_src_path"].startswith("~/"), answers["_src_path"]
    for expected in ["trainer.py", "data/__init__.py", "model/__init__.py", "model/deep_normal.py",
                     "model/mlp.py", "data/synthetic_regression.py", "notebooks/experiment.ipynb",
                     "tests", "pyproject.toml", "README.md", ".gitignore"]:
        assert (root / expected).exists(), expected
    assert git_log(root) == [f"Scaffold Weather Model with litscaffold template {__version__}"]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True)
    assert status.stdout == ""
    assert "cd weather_model" in proc.stdout and "python trainer.py" in proc.stdout
    assert "tensorboard --logdir" in proc.stdout


def test_answers_shape_the_project(tmp_path: Path) -> None:
    run_cli("new-project", "lab", "--dest", str(tmp_path / "deep" / "lab"), "--defaults", "--no-git",
            "-d", "default_model=mlp", "-d", "include_notebook=false", "-d", "csv_logger=true",
            "-d", "python_min=3.12", "-d", "author_name=Ada Lovelace", check=True)
    root = tmp_path / "deep" / "lab"
    assert not (root / ".git").exists()
    assert not (root / "notebooks" / "experiment.ipynb").exists()
    pyproject = (root / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.12"' in pyproject
    assert "Ada Lovelace" in pyproject
    trainer = (root / "trainer.py").read_text()
    assert '"mlp"' in trainer
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["csv_logger"] is True and answers["default_model"] == "mlp"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("../x", "looks like a path"),
        ("a/b", "looks like a path"),
        ("class", "keyword"),
        ("1abc", "starts with a digit"),
        ("torch", "shadow"),
        ("lightning", "shadow"),
        ("data", "shadow"),
        ("model", "shadow"),
        ("+++", "no letters"),
    ],
)
def test_bad_names_are_refused_without_touching_disk(tmp_path: Path, name: str, fragment: str) -> None:
    assert fragment in assert_refused("new-project", name, "--defaults", cwd=tmp_path, code=2)


def test_non_empty_destination_is_refused_and_untouched(tmp_path: Path) -> None:
    dest = tmp_path / "proj"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    assert "--force" in assert_refused("new-project", "proj", "--defaults", cwd=tmp_path, code=1)


def test_force_adds_beside_user_files_and_overwrites_none(tmp_path: Path) -> None:
    dest = tmp_path / "proj"
    dest.mkdir()
    (dest / "README.md").write_text("my own readme\n")
    (dest / "notes.txt").write_text("mine\n")
    proc = run_cli("new-project", "proj", "--defaults", "--force", cwd=tmp_path, check=True)
    assert (dest / "README.md").read_text() == "my own readme\n"
    assert (dest / "notes.txt").read_text() == "mine\n"
    assert (dest / "trainer.py").is_file()
    assert "kept your README.md" in proc.stdout
    tracked = subprocess.run(["git", "ls-files"], cwd=dest, capture_output=True, text=True).stdout.split()
    assert "trainer.py" in tracked and "notes.txt" not in tracked and "README.md" not in tracked


@pytest.mark.parametrize(
    ("args", "fragment", "code"),
    [
        (["-d", "colour=blue"], "unknown --data key 'colour'", 2),
        (["-d", "nonsense"], "not KEY=VALUE", 2),
        (["-d", "include_notebook=maybe"], "true or false", 2),
        (["-d", "default_model=resnet"], "invalid answer", 2),
        (["-d", "project_slug=9lives"], "starts with a digit", 2),
        (["--dest", "/proc/litscaffold-cannot-write"], "cannot write", 1),
    ],
)
def test_bad_options_are_refused_without_touching_disk(tmp_path: Path, args: list[str], fragment: str,
                                                       code: int) -> None:
    assert fragment in assert_refused("new-project", "proj", "--defaults", *args, cwd=tmp_path, code=code)


def test_without_git_it_says_so_and_writes_nothing(tmp_path: Path) -> None:
    """copier renders nothing from the template history without git: refuse up front, even with --no-git."""
    work, empty_path = tmp_path / "work", tmp_path / "no-git-bin"
    work.mkdir()
    empty_path.mkdir()
    run_cli("new-project", "warm", "--defaults", "--no-git", cwd=tmp_path, check=True)  # the cache is filled
    line = assert_refused("new-project", "proj", "--defaults", "--no-git", cwd=work, code=1,
                          env={"PATH": str(empty_path)})
    assert "git is not installed" in line


def test_force_never_scaffolds_over_an_existing_project(tmp_path: Path) -> None:
    run_cli("new-project", "proj", "--defaults", cwd=tmp_path, check=True)
    line = assert_refused("new-project", "proj", "--defaults", "--force", cwd=tmp_path, code=1)
    assert "already a litscaffold project" in line


def test_destination_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "proj").write_text("x")
    assert "is a file" in assert_refused("new-project", "proj", "--defaults", cwd=tmp_path, code=1)


def test_ctrl_c_during_rendering_leaves_nothing(tmp_path: Path) -> None:
    """SIGINT while copier renders into the scratch folder: no project, no scratch folder."""
    interrupted = 0
    for attempt in range(8):
        workdir = tmp_path / f"attempt{attempt}"
        workdir.mkdir()
        proc = start(("new-project", "proj", "--defaults"), workdir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.startswith(".litscaffold-") for p in workdir.iterdir()):
                proc.send_signal(signal.SIGINT)
                break
            time.sleep(0.002)
        _, stderr = proc.communicate(timeout=60)
        if proc.returncode == 130:
            interrupted += 1
            assert list(workdir.iterdir()) == [], list(workdir.iterdir())
            assert stderr.strip().startswith("error: interrupted") and "Traceback" not in stderr
        else:
            assert proc.returncode == 0, stderr  # finished before the signal landed
    assert interrupted >= 1


def test_help_and_version_stay_light() -> None:
    """--help must not pay for copier, torch or lightning."""
    code = ("import sys\nfrom litscaffold.cli import main\nassert main(['--help']) == 0\n"
            "assert main(['new-project', '--help']) == 0\nassert main(['--version']) == 0\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'copier', 'torch', 'lightning', 'yaml'})\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    assert "litscaffold new-project my_project" in out
    assert "Examples:" in out


def test_every_command_has_help_with_an_example() -> None:
    for command in (["new-project"], ["add", "model"], ["add", "dataset"], ["remove"], ["list"],
                    ["update"], ["check"], ["adopt"]):
        proc = run_cli(*command, "--help", check=True)
        assert "Example" in proc.stdout, command


def test_on_a_terminal_it_asks_the_templates_questions(tmp_path: Path) -> None:
    """A pseudo-terminal user: Enter keeps each default, except the author typed in."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child becomes litscaffold running on a terminal
        os.chdir(tmp_path)
        os.execvp(sys.executable, [sys.executable, "-m", "litscaffold", "new-project", "demo", "--no-git"])
    screen, prompts, typed_author, answered = b"", 0, False, b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.4)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal: it has finished
                break
            if not chunk:
                break
            screen += chunk
            if b"\x1b[6n" in chunk:  # the prompt asks where the cursor is: answer like a terminal
                os.write(fd, b"\x1b[1;1R")
            continue
        # Answer each question once: redraws repeat the prompt, and an extra Enter would answer the next.
        question = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", screen.rsplit("🎤".encode(), 1)[-1]).split(b"\n")[0]
        if not question.strip() or question == answered:
            continue
        if b"Author" in question:
            os.write(fd, b"\x15Ada Lovelace\r")  # Ctrl-U clears the pre-filled default first
            typed_author = True
        else:
            os.write(fd, b"\r")
        answered = question
        prompts += 1
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, screen[-2000:]
    assert typed_author and prompts >= 5, screen[-2000:]
    answers = yaml.safe_load((tmp_path / "demo" / ".copier-answers.yml").read_text())
    assert answers["author_name"] == "Ada Lovelace"
    assert answers["default_model"] == "deep_normal"
