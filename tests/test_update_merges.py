"""How `update` merges what copier's line merge gets wrong, on a project made with the newest released template
older than the current one (from the shipped bundle): a notebook changed on both sides stays a notebook, a CRLF
file edited on one line merges line by line in its own endings, a deleted or renamed file that the template
changed is reported (the change kept as a patch, or merged into the renamed file), and the per-file report is
the same from --dry-run, the real update and --json."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import git, run_cli, scaffold

from litscaffold.notebooks import CONFLICT_TAG
from litscaffold.snapshot import released
from litscaffold.template import TemplateSource, current_version, parse_version

pytestmark = pytest.mark.slow  # a project of the newest released version, updated

OLDER = max((v for v in released() if parse_version(v) < parse_version(current_version())), key=parse_version)
NOTEBOOK = "notebooks/experiment.ipynb"


def changed_between_versions(root: Path, source: TemplateSource, path: str) -> bool:
    """Whether the template changed `path` from OLDER to the current version (the cases need it to)."""
    from litscaffold.project import Project
    from litscaffold.render import pristine

    answers = Project(root).answers
    texts = []
    for version in (OLDER, current_version()):
        with pristine(source, answers, version=version, answers_file=".copier-answers.yml") as rendered:
            texts.append((rendered / path).read_bytes() if (rendered / path).is_file() else None)
    return texts[0] != texts[1]


@pytest.fixture
def edited(tmp_path: Path, shipped: TemplateSource) -> Path:
    root = scaffold(tmp_path, OLDER, shipped)
    for path in (NOTEBOOK, "predict.py", "README.md", "tests/test_predict.py"):
        assert changed_between_versions(root, shipped, path), f"the template no longer changes {path}"
    notebook = json.loads((root / NOTEBOOK).read_text())
    setup_cell = notebook["cells"][1]  # the template changes its imports: so do we, on the same line
    ours = "from util import provenance, runs  # ours\n"
    setup_cell["source"] = [ours if line == "from util import provenance, runs\n" else line
                            for line in setup_cell["source"]]
    assert ours in setup_cell["source"]
    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["ours: our findings"]})
    (root / NOTEBOOK).write_text(json.dumps(notebook, indent=1) + "\n")
    predict = (root / "predict.py").read_text().replace('"""Predictions from a trained run',
                                                        '"""Ours: predictions from a trained run', 1)
    (root / "predict.py").write_bytes(predict.replace("\n", "\r\n").encode())  # a Windows checkout
    (root / "README.md").unlink()
    git(root, "mv", "tests/test_predict.py", "tests/test_inference.py")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "ours")
    return root


def test_a_careful_merge_of_notebooks_line_endings_and_deleted_or_renamed_files(edited: Path) -> None:
    dry = run_cli("update", "--dry-run", "--json", cwd=edited)
    assert dry.returncode == 0, dry.stderr
    predicted = json.loads(dry.stdout)
    assert git(edited, "status", "--porcelain") == ""  # the dry run changed nothing

    proc = run_cli("update", "--json", cwd=edited)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    files = {entry["path"]: entry for entry in report["parts"][0]["files"]}

    # the notebook: both changes kept, valid, the user's cells there
    node = nbformat.read(edited / NOTEBOOK, as_version=4)
    nbformat.validate(node)
    sources = ["".join(cell.source) for cell in node.cells]
    assert any("import provenance, runs  # ours" in source for source in sources)
    assert "ours: our findings" in sources
    assert any(CONFLICT_TAG in cell.metadata.get("tags", []) for cell in node.cells)
    assert files[NOTEBOOK]["status"] == "conflict" and "cell by cell" in files[NOTEBOOK]["detail"]

    # the CRLF file: the user's line and the template's change, every line still CRLF, no markers
    data = (edited / "predict.py").read_bytes()
    assert b"Ours: predictions from a trained run" in data and b"from util import" in data
    assert data.count(b"\n") == data.count(b"\r\n") and b"<<<<<<<" not in data
    assert files["predict.py"]["status"] == "merged" and "CRLF" in files["predict.py"]["detail"]

    # the deleted README: still deleted, its change kept as a patch that applies to the template's old README
    assert not (edited / "README.md").exists()
    assert files["README.md"]["status"] == "not applied"
    patch = edited / ".litscaffold" / "unapplied" / "README.md.patch"
    assert str(patch.relative_to(edited)) in files["README.md"]["detail"] and "+++ b/README.md" in patch.read_text()

    # the renamed test file got the template's change
    renamed = (edited / "tests" / "test_inference.py").read_text()
    assert "from util import components" in renamed and "weights_only=True" in renamed
    assert not (edited / "tests" / "test_predict.py").exists()
    assert files["tests/test_inference.py"]["status"] == "merged"

    # all committed; the dry run foresaw every line of the report
    assert git(edited, "status", "--porcelain") == ""
    strip = [{**part, "committed": None} for part in report["parts"]]
    assert predicted["parts"] == strip and predicted["dry_run"] is True


def test_the_report_is_printed_for_people_too(edited: Path) -> None:
    proc = run_cli("update", cwd=edited)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split()[:2] == ["conflict", f"{NOTEBOOK}:"] for line in lines), proc.stdout
    assert any(line.startswith("  not applied  README.md: you deleted it") for line in lines), proc.stdout
    assert any(line.startswith("  merged") and "predict.py" in line for line in lines), proc.stdout
    assert lines[-1].startswith("Done:")
    assert subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=edited).returncode == 0
