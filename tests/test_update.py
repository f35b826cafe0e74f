"""`litscaffold update` / `check`: a real project made with a real older template version, edited the
way users edit, updated with the real copier and git (no network, no mocks)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import (
    ADDED_FILE,
    DROPPED_FILE,
    KEPT_FILE,
    OLD_AUTHOR_DEFAULT,
    OLD_COMPONENT_HEADER,
    REPO,
    TemplateHistory,
    assert_one_line_error,
    run_cli,
    tree_digest,
)

from litscaffold import __version__
from litscaffold.errors import EXIT_BEHIND, UpdateConflict

ANSWERS = (".copier-answers.yml", ".copier-answers.model-my_net.yml", ".copier-answers.dataset-sales.yml")
MARKERS = ("<<<<<<< before updating", "=======", ">>>>>>> after updating")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def copier_update_by_hand(root: Path, tag: str, answers: str) -> None:
    """What a user types without litscaffold: `copier update` of one answers file, then a commit."""
    proc = subprocess.run([sys.executable, "-m", "copier", "update", "--defaults", "--vcs-ref", tag, "-a", answers],
                          cwd=root, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stderr
    commit_all(root, f"copier update {answers}")


def versions(root: Path) -> dict[str, str]:
    return {name: yaml.safe_load((root / name).read_text())["_commit"] for name in ANSWERS}


def edit(path: Path, change) -> None:
    path.write_text(change(path.read_text()))


def make_user_edits(root: Path, history: TemplateHistory, *, conflicting: bool) -> dict[str, str]:
    """The edits users make, committed; returns {what: text that must survive the update}.
    `conflicting` adds the two that touch what the template changed (next to the changed line,
    inside the file the new template drops)."""
    kept: dict[str, str] = {}
    wiring = root / history.wiring
    kept["far from the changed line"] = 'return "far from the template change"'
    edit(wiring, lambda t: t.rstrip("\n") + '\n\n\ndef user_helper() -> str:\n    return "far from the template change"\n')
    if conflicting:
        kept["next to the changed line"] = "# user: my note beside the changed line"
        edit(wiring, lambda t: t.replace(history.old_line, f"{history.old_line}\n{kept['next to the changed line']}", 1))
        kept["edited file the template drops"] = "My own addition to the old guide."
        edit(root / DROPPED_FILE, lambda t: t + "\nMy own addition to the old guide.\n")
    kept["new file"] = "Notes nobody else writes."
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "user_notes.md").write_text("# Notes\n\nNotes nobody else writes.\n")
    (root / KEPT_FILE).unlink()  # a template file the user deleted
    kept["edited component"] = "# user: my model tweak"
    edit(root / "model" / "my_net.py", lambda t: t + "\n# user: my model tweak\n")
    kept["edited dataset"] = "# user: my data loading note"
    edit(root / "data" / "sales.py", lambda t: t + "\n# user: my data loading note\n")
    kept["new dependency"] = '"rich>=13",'
    edit(root / "pyproject.toml", lambda t: t.replace("dependencies = [\n", 'dependencies = [\n    "rich>=13",\n', 1))
    kept["edited README"] = "## My notes"
    edit(root / "README.md", lambda t: t + "\n## My notes\n\nHow we run it in the lab.\n")
    model = (root / "model" / "my_net.py").read_text()
    default = re.search(r"(\w+): int = (\d+)", model.split("def __init__", 1)[-1])
    assert default, "the model blueprint has no int hyperparameter default to change"
    changed = f"{default.group(1)}: int = {int(default.group(2)) * 2}"
    kept["changed default"] = changed
    edit(root / "model" / "my_net.py", lambda t: t.replace(default.group(0), changed, 1))
    commit_all(root, "My edits")
    for what, text in kept.items():
        assert text in _all_text(root), what
    return kept


def _all_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*"))
                     if p.is_file() and ".git" not in p.parts)


def resolve_by_keeping_both(root: Path, relative: str) -> None:
    """What a user might do: keep both sides of every conflict block, drop the markers."""
    path = root / relative
    path.write_text("".join(line for line in path.read_text().splitlines(keepends=True)
                            if not line.rstrip("\n").startswith(MARKERS)))


def assert_template_changes_arrived(root: Path, history: TemplateHistory) -> None:
    wiring = (root / history.wiring).read_text()
    assert history.new_line in wiring.splitlines(), "the template's changed line did not arrive"
    assert (root / ADDED_FILE).is_file(), "the template's new file did not arrive"
    assert OLD_COMPONENT_HEADER not in (root / "model" / "my_net.py").read_text(), "the component did not update"
    assert set(versions(root).values()) == {f"v{history.new}"}
    # A changed default in copier.yml never overrides an answer the project recorded.
    assert yaml.safe_load((root / ".copier-answers.yml").read_text())["author_name"] == OLD_AUTHOR_DEFAULT


def clean_update(root: Path, history: TemplateHistory) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    kept = make_user_edits(root, history, conflicting=False)
    proc = run_cli("update", "--project", str(root))
    assert proc.returncode == 0, proc.stderr
    return kept, proc


def test_clean_update_keeps_every_edit_and_brings_the_template_forward(
        old_project: Path, template_history: TemplateHistory) -> None:
    assert run_cli("check", cwd=old_project).returncode == EXIT_BEHIND
    kept, proc = clean_update(old_project, template_history)
    text = _all_text(old_project)
    for what, snippet in kept.items():
        assert snippet in text, f"lost: {what}"
    assert not any(marker in text for marker in MARKERS[::2])
    assert_template_changes_arrived(old_project, template_history)
    assert not (old_project / KEPT_FILE).exists(), "a file the user deleted came back"
    assert not (old_project / DROPPED_FILE).exists(), "an untouched file the template dropped stayed"
    # One commit per part, project first, and nothing left uncommitted.
    log = git(old_project, "log", "--format=%s").splitlines()
    assert log[:3] == [f"Update dataset sales to litscaffold template {template_history.new}",
                       f"Update model my_net to litscaffold template {template_history.new}",
                       f"Update project to litscaffold template {template_history.new}"]
    assert git(old_project, "status", "--porcelain") == ""
    assert "Done: project, model my_net, dataset sales" in proc.stdout
    # Once current, both commands say so and change nothing.
    before = tree_digest(old_project)
    again = run_cli("update", cwd=old_project)
    assert again.returncode == 0 and "Already current" in again.stdout
    assert run_cli("check", cwd=old_project).returncode == 0
    assert tree_digest(old_project) == before


@pytest.mark.slow  # two whole renders compared file by file
def test_a_clean_update_gives_a_fresh_render_with_the_users_edits(old_project: Path, template_history: TemplateHistory,
                                                                   tmp_path: Path) -> None:
    """What an update makes is exactly what the new template renders, with the user's edits on top: the project
    works as a fresh project does (whose own suite runs in test_generated_project.py), edits included."""
    from litscaffold.components import add_component
    from litscaffold.project import Project
    from litscaffold.scaffold import new_project
    from litscaffold.template import TemplateSource

    clean_update(old_project, template_history)
    source = TemplateSource(bundle=template_history.bundle)
    fresh = tmp_path / "fresh" / "lab"
    new_project("lab", fresh, [f"author_name={OLD_AUTHOR_DEFAULT}"], source=source)
    add_component(Project(fresh), "model", "my_net", "mlp", source=source)
    add_component(Project(fresh), "dataset", "sales", "synthetic-regression", source=source)
    make_user_edits(fresh, template_history, conflicting=False)

    def content(tree: Path) -> dict[str, str]:
        return {path: digest for path, digest in tree_digest(tree).items() if not path.startswith(".git/")}
    assert content(old_project) == content(fresh)
    # ... and it runs (one batch of the default model, no files written)
    proc = subprocess.run([sys.executable, "trainer.py", "--fast_dev_run", "true"], cwd=old_project,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_conflicting_edits_survive_as_markers_and_the_update_resumes(
        old_project: Path, template_history: TemplateHistory) -> None:
    kept = make_user_edits(old_project, template_history, conflicting=True)
    proc = run_cli("update", cwd=old_project)
    output = proc.stdout
    if proc.returncode != 0:  # the edit beside the changed line conflicts: the update stops there
        message = assert_one_line_error(proc, UpdateConflict.exit_code)
        assert template_history.wiring in message and "run `litscaffold update` again" in message
        assert versions(old_project)[".copier-answers.model-my_net.yml"] == f"v{template_history.old}"
        wiring = (old_project / template_history.wiring).read_text()
        assert MARKERS[0] in wiring and kept["next to the changed line"] in wiring
        resolve_by_keeping_both(old_project, template_history.wiring)
        commit_all(old_project, "Resolve the update")
        proc = run_cli("update", cwd=old_project)
        output += proc.stdout
    assert proc.returncode == 0, proc.stderr
    text = _all_text(old_project)
    for what, snippet in kept.items():
        assert snippet in text, f"lost: {what}"
    assert_template_changes_arrived(old_project, template_history)
    # The file the template dropped is kept because the user changed it, and the update says so.
    assert "My own addition to the old guide." in (old_project / DROPPED_FILE).read_text()
    assert re.search(rf"^  kept +{re.escape(DROPPED_FILE)}: the template no longer has it, but you changed it",
                     output, re.MULTILINE), output
    assert git(old_project, "status", "--porcelain") == ""


def test_a_conflict_stops_the_update_and_blocks_the_next_until_resolved(
        old_project: Path, template_history: TemplateHistory) -> None:
    wiring = old_project / template_history.wiring
    edit(wiring, lambda t: t.replace(template_history.old_line, "# user: my own wording of this line", 1))
    commit_all(old_project, "Reword")
    message = assert_one_line_error(run_cli("update", cwd=old_project), UpdateConflict.exit_code)
    assert f"project merged with conflicts in {template_history.wiring}" in message
    text = wiring.read_text()
    assert "# user: my own wording of this line" in text and template_history.new_line in text
    assert all(marker in text for marker in MARKERS)
    assert versions(old_project)[".copier-answers.model-my_net.yml"] == f"v{template_history.old}"

    # Unresolved (unmerged in git): refused, nothing touched.
    before = tree_digest(old_project)
    message = assert_one_line_error(run_cli("update", cwd=old_project), 1)
    assert "unresolved conflicts" in message and template_history.wiring in message
    assert tree_digest(old_project) == before

    # Committed with the markers still in: refused too.
    commit_all(old_project, "Oops, markers")
    before = tree_digest(old_project)
    message = assert_one_line_error(run_cli("update", cwd=old_project), 1)
    assert "conflict markers" in message and template_history.wiring in message
    assert tree_digest(old_project) == before

    resolve_by_keeping_both(old_project, template_history.wiring)
    commit_all(old_project, "Resolve")
    proc = run_cli("update", cwd=old_project)
    assert proc.returncode == 0, proc.stderr
    assert "Updating project" not in proc.stdout and "Updating model my_net" in proc.stdout
    assert set(versions(old_project).values()) == {f"v{template_history.new}"}


def _set_answer(root: Path, key: str, value: str, answers: str = ".copier-answers.yml") -> None:
    edit(root / answers, lambda t: re.sub(rf"^{key}: .*$", f"{key}: {value}", t, count=1, flags=re.MULTILINE))
    commit_all(root, f"Set {key}")


@pytest.mark.parametrize(("breakage", "fragment"), [
    ("no git", "not a git repository"),
    ("edited", "uncommitted changes in README.md"),
    ("untracked", "uncommitted changes in scratch.txt"),
    ("newer", "pip install 'litscaffold>=9.0.0'"),
    ("unknown version", "history does not hold"),
    ("remote source", "refusing to run another template"),
    ("other local source", "refusing to run another template"),
    ("component from elsewhere", ".copier-answers.model-my_net.yml names the template source"),
])
def test_preconditions_refuse_in_one_line_and_change_nothing(
        old_project: Path, tmp_path: Path, breakage: str, fragment: str) -> None:
    if breakage == "no git":
        import shutil

        shutil.rmtree(old_project / ".git")
    elif breakage == "edited":
        edit(old_project / "README.md", lambda t: t + "wip\n")
    elif breakage == "untracked":
        (old_project / "scratch.txt").write_text("wip\n")
    elif breakage == "newer":
        _set_answer(old_project, "_commit", "v9.0.0")
    elif breakage == "unknown version":
        _set_answer(old_project, "_commit", "v0.0.5")
    elif breakage == "remote source":
        _set_answer(old_project, "_src_path", "https://example.com/evil/template.git")
    elif breakage == "other local source":
        evil = tmp_path / "evil"
        evil.mkdir()
        git(evil, "init", "-q")
        _set_answer(old_project, "_src_path", str(evil))
    elif breakage == "component from elsewhere":
        _set_answer(old_project, "_src_path", "gh:someone/template", answers=".copier-answers.model-my_net.yml")
    before = tree_digest(old_project)
    # a dry run changes nothing, so uncommitted changes do not stop it (its own test); everything else does
    runs = (["update"],) if "uncommitted" in fragment else (["update"], ["update", "--dry-run"])
    for args in runs:
        message = assert_one_line_error(run_cli(*args, "--project", str(old_project)), 1)
        assert fragment in message, message
        assert tree_digest(old_project) == before


def test_absolute_form_of_our_cache_is_trusted(old_project: Path) -> None:
    from litscaffold.template import TemplateSource

    _set_answer(old_project, "_src_path", str(TemplateSource().repo))
    proc = run_cli("update", "--only", "project", cwd=old_project)
    assert proc.returncode == 0, proc.stderr
    assert versions(old_project)[".copier-answers.yml"] == f"v{__version__}"


def test_dry_run_shows_the_diff_and_changes_nothing(old_project: Path, template_history: TemplateHistory) -> None:
    make_user_edits(old_project, template_history, conflicting=False)
    before, head = tree_digest(old_project), git(old_project, "rev-parse", "HEAD")
    proc = run_cli("update", "--dry-run", "--diff", cwd=old_project)
    assert proc.returncode == 0, proc.stderr
    assert f"-{template_history.old_line}" in proc.stdout and f"+{template_history.new_line}" in proc.stdout
    assert f"-{OLD_COMPONENT_HEADER}" in proc.stdout
    assert f"+++ b/{ADDED_FILE}" in proc.stdout and f"--- a/{DROPPED_FILE}" in proc.stdout
    assert "nothing was changed" in proc.stdout
    assert tree_digest(old_project) == before and git(old_project, "rev-parse", "HEAD") == head
    assert not list(old_project.parent.glob(".litscaffold*"))


def test_dry_run_works_on_a_tree_with_uncommitted_changes_and_changes_nothing(old_project: Path) -> None:
    (old_project / "scratch.py").write_text("# work in progress\n")
    edit(old_project / "README.md", lambda t: t + "\nA line not committed yet.\n")
    before, head = tree_digest(old_project), git(old_project, "rev-parse", "HEAD")
    proc = run_cli("update", "--dry-run", cwd=old_project)
    assert proc.returncode == 0, proc.stderr
    assert "your uncommitted changes are left out, and left alone" in proc.stdout
    assert "what would happen to each file" in proc.stdout and "nothing was changed" in proc.stdout
    assert tree_digest(old_project) == before and git(old_project, "rev-parse", "HEAD") == head
    # the real update still refuses until they are committed
    assert "uncommitted changes" in assert_one_line_error(run_cli("update", cwd=old_project), 1)


def test_dry_run_of_a_conflicting_update_names_the_files(old_project: Path, template_history: TemplateHistory) -> None:
    edit(old_project / template_history.wiring,
         lambda t: t.replace(template_history.old_line, "# user: my own wording", 1))
    commit_all(old_project, "Reword")
    before = tree_digest(old_project)
    proc = run_cli("update", "--dry-run", "--diff", cwd=old_project)
    message = assert_one_line_error(proc, UpdateConflict.exit_code)
    assert message.startswith("error: dry run:") and template_history.wiring in message
    assert MARKERS[0] in proc.stdout
    assert tree_digest(old_project) == before


def test_check_reports_each_part_and_exits_4_when_behind(old_project: Path, template_history: TemplateHistory) -> None:
    proc = run_cli("check", "--json", cwd=old_project)
    assert proc.returncode == EXIT_BEHIND
    report = json.loads(proc.stdout)
    assert report["behind"] is True and report["installed"] == template_history.new
    assert {p["part"]: (p["template_version"], p["status"]) for p in report["parts"]} == {
        "project": (template_history.old, "behind"),
        "model:my_net": (template_history.old, "behind"),
        "dataset:sales": (template_history.old, "behind"),
    }
    only = run_cli("update", "--only", "model:my_net", cwd=old_project)
    assert only.returncode == 0, only.stderr
    lines = run_cli("check", cwd=old_project).stdout
    new, old = re.escape(template_history.new), re.escape(template_history.old)
    assert re.search(rf"model my_net\s+{new}\s+current", lines) and re.search(rf"project\s+{old}\s+behind", lines)
    assert run_cli("update", cwd=old_project).returncode == 0
    after = run_cli("check", "--json", cwd=old_project)
    assert after.returncode == 0 and json.loads(after.stdout)["behind"] is False


def test_only_refuses_unknown_parts(old_project: Path) -> None:
    before = tree_digest(old_project)
    for value, fragment in (("model", "use project, model:NAME"), ("model:nope", "project, model:my_net")):
        message = assert_one_line_error(run_cli("update", "--only", value, cwd=old_project), 2)
        assert fragment in message
    assert tree_digest(old_project) == before


def test_plain_copier_update_works_by_hand(old_project: Path, template_history: TemplateHistory) -> None:
    from litscaffold.template import TemplateSource

    TemplateSource().ensure()  # any earlier litscaffold command has filled the cache
    tag = f"v{template_history.new}"
    for answers in (".copier-answers.yml", ".copier-answers.model-my_net.yml"):
        copier_update_by_hand(old_project, tag, answers)
    assert history_line_arrived(old_project, template_history)
    assert OLD_COMPONENT_HEADER not in (old_project / "model" / "my_net.py").read_text()
    assert versions(old_project) == {".copier-answers.yml": tag, ".copier-answers.model-my_net.yml": tag,
                                     ".copier-answers.dataset-sales.yml": f"v{template_history.old}"}
    # litscaffold carries on from there.
    assert run_cli("check", cwd=old_project).returncode == EXIT_BEHIND
    assert run_cli("update", cwd=old_project).returncode == 0
    assert run_cli("check", cwd=old_project).returncode == 0


def history_line_arrived(root: Path, history: TemplateHistory) -> bool:
    return history.new_line in (root / history.wiring).read_text().splitlines()


def test_a_part_whose_template_did_not_change_ends_as_copier_would_leave_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A release that only touches the project's files: components skip copier's renders, and the
    result is byte-for-byte what plain `copier update` gives."""
    import shutil

    from litscaffold.components import add_component
    from litscaffold.project import Project
    from litscaffold.scaffold import new_project
    from litscaffold.snapshot import snapshot
    from litscaffold.template import TemplateSource, current_version

    old = tmp_path / "old"
    shutil.copytree(REPO / "template", old / "template", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(REPO / "copier.yml", old / "copier.yml")
    (old / "template" / "project" / "docs").mkdir(exist_ok=True)
    (old / "template" / "project" / "docs" / "old-only.md").write_text("only in 0.0.8\n")
    bundle = tmp_path / "template.bundle"
    snapshot(root=old, bundle=bundle, version="0.0.8")
    snapshot(root=REPO, bundle=bundle, version=current_version())
    monkeypatch.setenv("LITSCAFFOLD_TEMPLATE_BUNDLE", str(bundle))
    source = TemplateSource(bundle=bundle)
    ours = tmp_path / "ours"
    new_project("lab", ours, version="0.0.8", source=source)
    add_component(Project(ours), "dataset", "sales", "synthetic-regression", source=source)
    edit(ours / "data" / "sales.py", lambda t: t + "\n# user: my data loading note\n")
    commit_all(ours, "My edit")
    theirs = tmp_path / "theirs"
    git(tmp_path, "clone", "-q", str(ours), str(theirs))

    proc = run_cli("update", cwd=ours)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("only the recorded version moves") == 1  # the dataset, not the project
    tag = f"v{current_version()}"
    for answers in (".copier-answers.yml", ".copier-answers.dataset-sales.yml"):
        copier_update_by_hand(theirs, tag, answers)
    files = {k: v for k, v in tree_digest(ours).items() if not k.startswith(".git/")}
    assert files == {k: v for k, v in tree_digest(theirs).items() if not k.startswith(".git/")}
    assert "# user: my data loading note" in (ours / "data" / "sales.py").read_text()
    assert not (ours / "docs" / "old-only.md").exists()
