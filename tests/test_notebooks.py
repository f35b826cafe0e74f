"""The cell-level notebook merge that `update` uses: results always open as notebooks and keep both sides."""

from __future__ import annotations

import json

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litscaffold.notebooks import CONFLICT_TAG, NotANotebook, merge_notebooks


def notebook(*sources: str, outputs: dict[str, list] | None = None) -> str:
    cells = []
    for source in sources:
        kind, _, text = source.partition(":")
        cell = {"cell_type": kind, "metadata": {}, "source": text}
        if kind == "code":
            cell.update(execution_count=None, outputs=(outputs or {}).get(text, []))
        cells.append(cell)
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4})


def sources(text: str) -> list[str]:
    return [f"{cell['cell_type']}:{''.join(cell['source'])}" for cell in json.loads(text)["cells"]]


def opens(text: str) -> nbformat.NotebookNode:
    node = nbformat.reads(text, as_version=4)
    nbformat.validate(node)
    return node


BASE = notebook("markdown:# Title", "code:import torch", "code:plot()", "markdown:The end")


def test_changes_on_different_cells_merge_cleanly_and_keep_the_users_outputs() -> None:
    output = [{"output_type": "stream", "name": "stdout", "text": "42\n"}]
    ours = notebook("markdown:# Title", "code:import torch", "code:plot()", "code:my_analysis()", "markdown:The end",
                    outputs={"plot()": output})
    theirs = notebook("markdown:# A better title", "code:import torch", "code:plot()", "markdown:The end")
    merged = merge_notebooks(BASE, ours, theirs)
    assert merged.conflicts == 0
    assert sources(merged.text) == ["markdown:# A better title", "code:import torch", "code:plot()",
                                    "code:my_analysis()", "markdown:The end"]
    assert opens(merged.text).cells[2].outputs[0]["text"] == "42\n"


def test_the_same_cell_changed_by_both_keeps_both_in_a_notebook_that_opens() -> None:
    ours = notebook("markdown:# Title", "code:import torch", "code:plot(mine=True)", "markdown:The end")
    theirs = notebook("markdown:# Title", "code:import torch", "code:plot(theirs=True)", "markdown:The end")
    merged = merge_notebooks(BASE, ours, theirs)
    assert merged.conflicts == 1 and merged.notes
    node = opens(merged.text)
    cells = sources(merged.text)
    assert cells.index("code:plot(mine=True)") < cells.index("code:plot(theirs=True)")
    tagged = [cell for cell in node.cells if CONFLICT_TAG in cell.metadata.get("tags", [])]
    assert len(tagged) == 2 and tagged[0].cell_type == "markdown"  # the note, then the template's cell
    assert "<<<<<<<" not in merged.text


def test_identical_changes_and_deletions() -> None:
    same = notebook("markdown:# Title", "code:import torch", "markdown:The end")  # both deleted plot()
    merged = merge_notebooks(BASE, same, same)
    assert merged.conflicts == 0 and sources(merged.text) == sources(same)
    theirs_deleted = notebook("markdown:# Title", "code:import torch", "markdown:The end")
    merged = merge_notebooks(BASE, BASE, theirs_deleted)
    assert sources(merged.text) == sources(theirs_deleted)


def test_invalid_json_is_refused_so_the_caller_keeps_the_users_file() -> None:
    with pytest.raises(NotANotebook, match="project's version is not valid JSON"):
        merge_notebooks(BASE, "<<<<<<< not json", BASE)


CELL = st.sampled_from(["code:a()", "code:b()", "code:c()", "markdown:x", "markdown:y", "code:d()"])


@settings(max_examples=200, deadline=None)
@given(st.lists(CELL, max_size=6), st.lists(CELL, max_size=6), st.lists(CELL, max_size=6))
def test_any_three_notebooks_merge_into_one_that_opens_and_holds_every_user_cell(base: list[str], ours: list[str],
                                                                                  theirs: list[str]) -> None:
    merged = merge_notebooks(notebook(*base), notebook(*ours), notebook(*theirs))
    opens(merged.text)
    result = sources(merged.text)
    remaining = list(result)
    for cell in (cell for cell in ours if cell not in base):  # every cell the user wrote, in order
        assert cell in remaining, (ours, result)
        remaining = remaining[remaining.index(cell) + 1:]
    if ours == base:
        assert result == theirs
    if theirs == base:
        assert result == ours


def cell_lines(count: int, changed: dict[int, str] | None = None) -> str:
    """A code cell of `count` lines, some of them changed."""
    lines = [f"step_{i}()" for i in range(count)]
    for index, text in (changed or {}).items():
        lines[index] = text
    return "code:" + "\n".join(lines) + "\n"


def test_changes_on_different_lines_of_one_cell_both_arrive() -> None:
    base = notebook("markdown:# Title", cell_lines(25), "markdown:The end")
    ours = notebook("markdown:# Title", cell_lines(25, {2: "step_2(mine=True)"}), "markdown:The end")
    theirs = notebook("markdown:# Title", cell_lines(25, {22: "step_22(template=True)"}), "markdown:The end")
    merged = merge_notebooks(base, ours, theirs)
    assert merged.conflicts == 0 and CONFLICT_TAG not in merged.text
    assert sources(merged.text)[1] == cell_lines(25, {2: "step_2(mine=True)", 22: "step_22(template=True)"})
    assert "step_22(template=True)" in opens(merged.text).cells[1].source


def test_changes_on_the_same_lines_of_a_cell_are_a_conflict_cell_and_the_others_merge() -> None:
    base = notebook(cell_lines(6), cell_lines(6))
    ours = notebook(cell_lines(6, {1: "mine()"}), cell_lines(6, {0: "mine_too()"}))
    theirs = notebook(cell_lines(6, {1: "template()"}), cell_lines(6, {5: "template_too()"}))
    merged = merge_notebooks(base, ours, theirs)
    assert merged.conflicts == 1
    cells = sources(merged.text)
    # the first cell: both versions kept whole after a note; the second: both changes in one cell
    assert cells[1] == cell_lines(6, {1: "mine()"}) and cells[2] == cell_lines(6, {1: "template()"})
    assert cells[-1] == cell_lines(6, {0: "mine_too()", 5: "template_too()"})
    assert "<<<<<<<" not in merged.text
    opens(merged.text)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=3, max_value=30).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(0, n - 1))))
def test_a_line_each_side_changed_in_one_cell_merges_unless_the_lines_touch(case: tuple[int, int, int]) -> None:
    count, mine, template = case
    base = notebook("markdown:# Title", cell_lines(count))
    ours = notebook("markdown:# Title", cell_lines(count, {mine: "mine()"}))
    theirs = notebook("markdown:# Title", cell_lines(count, {template: "template()"}))
    merged = merge_notebooks(base, ours, theirs)
    opens(merged.text)
    cells = sources(merged.text)
    if abs(mine - template) > 1:  # git merges changes with an unchanged line between them
        assert merged.conflicts == 0 and cells == ["markdown:# Title",
                                                   cell_lines(count, {mine: "mine()", template: "template()"})]
    else:  # the same or adjacent lines: both versions kept whole, the user's first
        assert merged.conflicts == 1
        assert cells.index(cell_lines(count, {mine: "mine()"})) < cells.index(cell_lines(count,
                                                                                         {template: "template()"}))
