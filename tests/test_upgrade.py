"""Projects made with every RELEASED template older than the current one, from the shipped bundle (not a
fixture), brought to the current template by `litscaffold update`. Template 0.2.0 moved the machinery from the
project root into util/, so this is the update path on a real restructure: every user line survives, merged or
inside conflict markers that `update` lists; a project without edits ends byte-identical to a fresh one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import git, run_cli, scaffold, tree_digest

from litscaffold.snapshot import released
from litscaffold.template import TemplateSource, current_version, parse_version

OLDER = [version for version in sorted(released(), key=parse_version)
         if parse_version(version) < parse_version(current_version())]
MARKERS = re.compile(r"^<<<<<<< before updating\n(.*?)^=======\n(.*?)^>>>>>>> after updating\n", re.DOTALL | re.MULTILINE)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} has no {old!r}"
    path.write_text(text.replace(old, new, 1))


def user_edits(root: Path) -> dict[str, str]:
    """What users do to a 0.1 project, committed; returns {file: a line that must survive}."""
    survivors = {
        # trainer.py: a default that stays in trainer.py, and a flag in code that moved to util/cli.py
        "trainer.py": "DEFAULT_MAX_EPOCHS = 300  # ours: longer runs",
        "trainer.py#moved": '    group.add_argument("--our_flag", action="store_true", help="ours")',
        "model/mlp.py": "        hidden: int = 96,  # ours",
        "model/my_net.py": "# ours: a note in the added model",
        "README.md": "Our lab trains this every night.",
        "pyproject.toml": '    "pandas",  # ours',
        "notes/ideas.md": "ours: try a wider net",
    }
    edit(root / "trainer.py", "DEFAULT_MAX_EPOCHS = 100", survivors["trainer.py"])
    edit(root / "trainer.py", '    group.add_argument("--swa"', survivors["trainer.py#moved"] + '\n    group.add_argument("--swa"')
    edit(root / "model" / "mlp.py", "        hidden: int = 64,", survivors["model/mlp.py"])
    (root / "model" / "my_net.py").write_text((root / "model" / "my_net.py").read_text() + survivors["model/my_net.py"]
                                              + "\n")
    edit(root / "README.md", "## Install", f"{survivors['README.md']}\n\n## Install")
    edit(root / "pyproject.toml", '    "matplotlib",', f'    "matplotlib",\n{survivors["pyproject.toml"]}')
    (root / "notes").mkdir()
    (root / "notes" / "ideas.md").write_text(survivors["notes/ideas.md"] + "\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "our edits")
    return survivors


def resolve(root: Path, path: str, keep_both: bool = False) -> str:
    """What a user does with an update's conflict: keep the template's side (and carry their own lines over by
    hand), or keep both sides; returns the 'before' sides, which the test checks hold the user's lines."""
    text = (root / path).read_text()
    ours = "".join(before for before, _ in MARKERS.findall(text))
    (root / path).write_text(MARKERS.sub(lambda match: match.group(1) + match.group(2) if keep_both
                                         else match.group(2), text))
    return ours


@pytest.mark.parametrize("version", OLDER)
def test_an_edited_project_reaches_the_current_template_without_losing_a_line(version: str, tmp_path: Path,
                                                                              shipped: TemplateSource) -> None:
    root = scaffold(tmp_path, version, shipped)
    survivors = user_edits(root)

    first = run_cli("update", cwd=root)
    # the moved code conflicts with the user's flag: listed, with how to go on, nothing committed yet
    assert first.returncode == 3, first.stdout + first.stderr  # stopped at conflicts (README: exit codes)
    assert "merged with conflicts in" in first.stderr and "litscaffold update` again" in first.stderr
    assert "trainer.py" in first.stderr.split("conflicts in")[1].split("(")[0]
    assert not (root / "flags.py").exists()  # not edited: it moved to util/ with the rest
    conflicted = (root / "trainer.py").read_text()
    for key in ("trainer.py", "trainer.py#moved"):
        assert survivors[key] in conflicted, key  # merged, or inside the markers
    assert MARKERS.search(conflicted)
    assert survivors["trainer.py#moved"] in resolve(root, "trainer.py")
    if MARKERS.search((root / "pyproject.toml").read_text()):  # the template added dependencies there too
        assert survivors["pyproject.toml"] in resolve(root, "pyproject.toml", keep_both=True)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "resolve the update's conflicts")

    second = run_cli("update", cwd=root)  # then the components
    assert second.returncode == 0, second.stdout + second.stderr
    assert run_cli("check", cwd=root).returncode == 0
    for key, line in survivors.items():
        path = key.split("#")[0]
        if path != "trainer.py":
            assert line in (root / path).read_text(), key
    assert survivors["trainer.py"] in (root / "trainer.py").read_text()
    assert (root / "util" / "cli.py").is_file() and not (root / "flags.py").exists()
    assert git(root, "status", "--porcelain") == ""


@pytest.mark.parametrize("version", OLDER)
def test_a_project_without_edits_updates_cleanly_to_what_a_fresh_render_holds(version: str, tmp_path: Path,
                                                                             shipped: TemplateSource) -> None:
    root = scaffold(tmp_path / "old", version, shipped)
    proc = run_cli("update", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "conflict" not in (proc.stdout + proc.stderr).lower()
    assert run_cli("check", cwd=root).returncode == 0

    fresh = scaffold(tmp_path / "fresh", current_version(), shipped)

    def content(tree: Path) -> dict[str, str]:
        return {path: digest for path, digest in tree_digest(tree).items()
                if not path.startswith((".git/", ".copier-answers"))}
    assert content(root) == content(fresh)
