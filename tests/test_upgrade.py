"""Projects made with every RELEASED template older than the current one, from the shipped bundle (not a
fixture), brought to the current template by `litscaffold update`. Template 0.2.0 moved the machinery from the
project root into util/ and 0.3.0 rebuilt util/ on its libraries, so this is the update path on real restructures:
every user line survives, merged or inside conflict markers that `update` lists, and the report names where moved
code went; a project without edits ends byte-identical to a fresh one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import git, run_cli, scaffold, tree_digest

from litscaffold.snapshot import released
from litscaffold.template import TemplateSource, current_version, parse_version

pytestmark = pytest.mark.slow  # a project of every released version, updated

OLDER = [version for version in sorted(released(), key=parse_version)
         if parse_version(version) < parse_version(current_version())]
MARKERS = re.compile(r"^<<<<<<< before updating\n(.*?)^=======\n(.*?)^>>>>>>> after updating\n", re.DOTALL | re.MULTILINE)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} has no {old!r}"
    path.write_text(text.replace(old, new, 1))


def user_edits(root: Path, version: str) -> dict[str, str]:
    """What users do to a project, committed; returns {file: a line that must survive}. Every version gets edits in
    code that a later release moved: a 0.1 project in trainer.py's command line (util/ since 0.2.0), a 0.2 project
    in util/cli.py (rebuilt on jsonargparse in 0.3.0) and util/flags.py (folded into util/cli.py)."""
    survivors = {
        "model/mlp.py": "        hidden: int = 96,  # ours",
        "model/my_net.py": "# ours: a note in the added model",
        "README.md": "Our lab trains this every night.",
        "pyproject.toml": '    "pandas",  # ours',
        "notes/ideas.md": "ours: try a wider net",
    }
    flag = '    group.add_argument("--our_flag", action="store_true", help="ours")'
    if parse_version(version) < parse_version("0.2.0"):
        survivors["trainer.py"] = "DEFAULT_MAX_EPOCHS = 300  # ours: longer runs"
        survivors["trainer.py#moved"] = flag
        edit(root / "trainer.py", "DEFAULT_MAX_EPOCHS = 100", survivors["trainer.py"])
        edit(root / "trainer.py", '    group.add_argument("--swa"', flag + '\n    group.add_argument("--swa"')
    else:
        survivors["trainer.py"] = "EARLY_STOPPING_PATIENCE = 20  # ours: a patient lab"
        survivors["util/cli.py#moved"] = flag
        survivors["util/flags.py"] = "# ours: a parser for fractions, to carry over"
        edit(root / "trainer.py", "EARLY_STOPPING_PATIENCE = 10", survivors["trainer.py"])
        edit(root / "util" / "cli.py", '    group.add_argument("--swa"', flag + '\n    group.add_argument("--swa"')
        with (root / "util" / "flags.py").open("a") as handle:
            handle.write(f"\n\n{survivors['util/flags.py']}\n")
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


def report_line(output: str, path: str) -> str:
    """The update report's line for a file ("  <status> <path>: <detail>")."""
    lines = [line for line in output.splitlines() if line.startswith("  ") and line.split()[1:2] in ([path],
                                                                                                   [f"{path}:"])]
    assert len(lines) == 1, f"no report line for {path}:\n{output}"
    return lines[0]


def resolve(root: Path, path: str, keep: str | None = None) -> str:
    """What a user does with an update's conflicts: keep the template's side, except where their side holds `keep`
    (a line of theirs they carry over): both sides there. Returns their sides, which the test checks."""
    text = (root / path).read_text()
    ours = "".join(before for before, _ in MARKERS.findall(text))
    (root / path).write_text(MARKERS.sub(lambda match: match.group(1) + match.group(2)
                                         if keep is not None and keep in match.group(1) else match.group(2), text))
    return ours


@pytest.mark.parametrize("version", OLDER)
def test_an_edited_project_reaches_the_current_template_without_losing_a_line(version: str, tmp_path: Path,
                                                                              shipped: TemplateSource) -> None:
    root = scaffold(tmp_path, version, shipped)
    survivors = user_edits(root, version)
    moved = next(key for key in survivors if key.endswith("#moved")).split("#")[0]  # trainer.py or util/cli.py

    first = run_cli("update", cwd=root)
    # the moved code conflicts with the user's flag: listed, with how to go on and where the code went
    assert first.returncode == 3, first.stdout + first.stderr  # stopped at conflicts (README: exit codes)
    assert "merged with conflicts in" in first.stderr and "litscaffold update` again" in first.stderr
    assert moved in first.stderr.split("conflicts in")[1].split("(")[0]
    conflicted = (root / moved).read_text()
    assert survivors[f"{moved}#moved"] in conflicted and MARKERS.search(conflicted)
    if moved == "trainer.py":  # 0.1: trainer.py's command line has been util/cli.py's since 0.2.0
        assert "its command line (flags, parsing, --resume's rules) moved to util/cli.py" in report_line(
            first.stdout, "trainer.py")
        assert not (root / "flags.py").exists()  # not edited: it moved to util/ with the rest
        assert "removed" in report_line(first.stdout, "flags.py") and "moved to util/cli.py" in report_line(
            first.stdout, "flags.py")
    else:  # 0.2: util/flags.py is gone from the template; the user's edit keeps it, and says where its code went
        assert survivors["util/flags.py"] in (root / "util" / "flags.py").read_text()
        line = report_line(first.stdout, "util/flags.py")
        assert line.split()[0] == "kept" and line.endswith("its code moved to util/cli.py"), line
        assert "its Trainer, fit and test moved to trainer.py" in report_line(first.stdout, "util/fitting.py")
    for key in ("trainer.py", f"{moved}#moved"):
        assert survivors[key] in (root / key.split("#")[0]).read_text(), key  # merged, or inside the markers
    assert survivors[f"{moved}#moved"] in resolve(root, moved, keep=survivors.get(moved))
    for path in ("pyproject.toml", "trainer.py"):
        if MARKERS.search((root / path).read_text()):  # the template changed the lines around theirs too
            assert survivors[path] in resolve(root, path, keep=survivors[path])
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "resolve the update's conflicts")

    second = run_cli("update", cwd=root)  # then the components
    assert second.returncode == 0, second.stdout + second.stderr
    assert run_cli("check", cwd=root).returncode == 0
    for key, line in survivors.items():
        if not key.endswith("#moved"):
            assert line in (root / key).read_text(), key
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
