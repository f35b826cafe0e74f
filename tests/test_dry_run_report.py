"""`update --dry-run` prints the per-file report, not a diff of thousands of lines; `--diff` adds the diff after
the report (issue 22 item 5)."""

from __future__ import annotations

from pathlib import Path

from conftest import ADDED_FILE, TemplateHistory, assert_one_line_error, run_cli, tree_digest


def test_a_dry_run_prints_the_report_and_the_diff_only_when_asked(old_project: Path,
                                                                   template_history: TemplateHistory) -> None:
    before = tree_digest(old_project)
    plain = run_cli("update", "--dry-run", cwd=old_project)
    assert plain.returncode == 0, plain.stderr
    assert "what would happen to each file" in plain.stdout and f"  new          {ADDED_FILE}" in plain.stdout
    assert "+++ b/" not in plain.stdout and f"+{template_history.new_line}" not in plain.stdout
    assert "--diff" in plain.stdout.splitlines()[-1]  # says how to see the diff

    full = run_cli("update", "--dry-run", "--diff", cwd=old_project)
    assert full.returncode == 0, full.stderr
    lines = full.stdout.splitlines()
    report_at = next(i for i, line in enumerate(lines) if line.endswith(ADDED_FILE))
    diff_at = next(i for i, line in enumerate(lines) if line.startswith("+++ b/"))
    assert report_at < diff_at and f"+{template_history.new_line}" in lines
    assert tree_digest(old_project) == before


def test_diff_without_dry_run_is_refused(old_project: Path) -> None:
    before = tree_digest(old_project)
    line = assert_one_line_error(run_cli("update", "--diff", cwd=old_project), 2)
    assert "--dry-run" in line and tree_digest(old_project) == before
