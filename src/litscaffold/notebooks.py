"""Three-way merge of Jupyter notebooks, cell by cell, into a notebook that still opens in Jupyter.

Git's line merge writes conflict markers inside a notebook's JSON, which no notebook tool can open. Here the
cells are the units: a cell only one side changed takes that side. Where both sides changed the same cells
(as many on each side, of the same kinds), each cell's source is merged line by line, as git merges a file:
changes on different lines of one cell both arrive. Only cells whose changed lines overlap, and regions the two
sides reshaped differently, are conflicts: both versions kept (the project's first, then the template's),
introduced by a markdown cell that says so and tagged ``litscaffold-conflict`` so they are easy to find.
Outputs and execution counts are the project's own (the template ships none).

nbdime does this too, but it pulls jupyter_server and nbconvert into a command-line tool; the merge needed
here is small and works on the plain JSON (nbformat 4), without any Jupyter package.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from .git import merge_file

CONFLICT_TAG = "litscaffold-conflict"


@dataclass
class NotebookMerge:
    text: str  # the merged notebook, JSON
    conflicts: int = 0  # regions where both sides changed the same cells differently
    notes: list[str] = field(default_factory=list)


class NotANotebook(ValueError):
    """One of the three versions is not notebook JSON; the caller falls back to keeping the project's file."""


def _load(text: str, which: str) -> dict[str, Any]:
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotANotebook(f"the {which} version is not valid JSON ({error.msg}, line {error.lineno})") from error
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise NotANotebook(f"the {which} version has no list of cells")
    return notebook


def _key(cell: dict[str, Any]) -> tuple[str, str]:
    """What makes two cells 'the same cell': their kind and source (outputs do not count)."""
    source = cell.get("source", "")
    return cell.get("cell_type", ""), "".join(source) if isinstance(source, list) else str(source)


def _equal(base: list[tuple[str, str]], side: list[tuple[str, str]]) -> dict[int, int]:
    """base index -> side index of every cell the side left as it was."""
    matcher = difflib.SequenceMatcher(a=base, b=side, autojunk=False)
    return {block.a + k: block.b + k for block in matcher.get_matching_blocks() for k in range(block.size)}


def merge_notebooks(base_text: str, ours_text: str, theirs_text: str) -> NotebookMerge:
    """Merge the template's change (base -> theirs) into the project's notebook (ours): a diff3 over cells."""
    base, ours, theirs = (_load(text, which) for text, which in
                          ((base_text, "template's old"), (ours_text, "project's"), (theirs_text, "template's new")))
    keys = {name: [_key(cell) for cell in notebook["cells"]]
            for name, notebook in (("base", base), ("ours", ours), ("theirs", theirs))}
    in_ours, in_theirs = _equal(keys["base"], keys["ours"]), _equal(keys["base"], keys["theirs"])
    # Cells neither side touched anchor the merge; between two anchors each side has its own version.
    anchors = [(b, in_ours[b], in_theirs[b]) for b in range(len(keys["base"])) if b in in_ours and b in in_theirs]
    anchors.append((len(keys["base"]), len(keys["ours"]), len(keys["theirs"])))

    merged: list[dict[str, Any]] = []
    conflicts = 0
    after_b = after_o = after_t = 0
    for b, o, t in anchors:
        base_keys, our_keys, their_keys = keys["base"][after_b:b], keys["ours"][after_o:o], keys["theirs"][after_t:t]
        our_cells, their_cells = ours["cells"][after_o:o], theirs["cells"][after_t:t]
        if our_keys == base_keys:
            merged.extend(their_cells)  # only the template changed here
        elif their_keys in (base_keys, our_keys):
            merged.extend(our_cells)  # only the project changed here, or both made the same change
        elif _same_shape(base_keys, our_keys, their_keys):
            for base_cell, our_cell, their_cell in zip(base["cells"][after_b:b], our_cells, their_cells):
                cell = _merge_cell(base_cell, our_cell, their_cell)
                if cell is None:
                    conflicts += 1
                    merged.extend(_conflict([our_cell], [their_cell]))
                else:
                    merged.append(cell)
        else:
            conflicts += 1
            merged.extend(_conflict(our_cells, their_cells))
        if b < len(keys["base"]):
            merged.append(ours["cells"][o])  # the project's copy of an untouched cell keeps its outputs
        after_b, after_o, after_t = b + 1, o + 1, t + 1

    result = dict(ours)
    result["cells"] = merged
    # notebook-level metadata: the project's, plus what the template added
    result["metadata"] = {**theirs.get("metadata", {}), **ours.get("metadata", {})}
    notes = [(f"{conflicts} group(s) of cells changed by you and by the template are both kept, tagged "
             f"{CONFLICT_TAG}")]
    return NotebookMerge(json.dumps(result, indent=1, ensure_ascii=False) + "\n", conflicts,
                         notes if conflicts else [])


def _same_shape(base: list[tuple[str, str]], ours: list[tuple[str, str]], theirs: list[tuple[str, str]]) -> bool:
    """Both sides kept the region's cells (same number, same kinds) and edited inside them."""
    return len(base) == len(ours) == len(theirs) and all(b[0] == o[0] == t[0] for b, o, t in zip(base, ours, theirs))


def _merge_cell(base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any] | None:
    """The project's cell with the template's change to its source merged in line by line, or None when the
    two changed the same lines."""
    texts = [_key(cell)[1] for cell in (base, ours, theirs)]
    if texts[2] in (texts[0], texts[1]):
        return ours
    if texts[1] == texts[0]:
        source = texts[2]
    else:
        merged, conflicts = merge_file(texts[1].encode(), texts[0].encode(), texts[2].encode(),
                                       labels=("yours", "template before", "template"))
        if conflicts:
            return None
        source = merged.decode()
    cell = dict(ours)
    cell["source"] = source.splitlines(keepends=True) if isinstance(ours.get("source"), list) else source
    return cell


def _conflict(our_cells: list[dict[str, Any]], their_cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    note = {
        "cell_type": "markdown",
        "metadata": {"tags": [CONFLICT_TAG]},
        "source": [(f"**litscaffold update: you and the template both changed the cells here.** Your "
                    f"{len(our_cells)} cell(s) come first, then the template's {len(their_cells)}. Keep what you "
                    f"want, delete the rest and this note (cells tagged `{CONFLICT_TAG}`).")],
    }
    tagged = []
    for cell in their_cells:
        copy = json.loads(json.dumps(cell))
        copy.setdefault("metadata", {}).setdefault("tags", []).append(CONFLICT_TAG)
        tagged.append(copy)
    return [note, *our_cells, *tagged]
