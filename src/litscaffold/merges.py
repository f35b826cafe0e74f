"""What copier's line merge gets wrong, redone right after it, for one part of a project:

- a notebook both sides changed gets conflict markers inside its JSON, which Jupyter cannot open: it is merged
  again cell by cell (notebooks.py), or, failing that, kept as the user's with the template's version beside it;
- a file with CRLF line endings differs from the template's LF render on every line, so a one-line edit became a
  whole-file conflict: it is merged again line by line (git merge-file) and keeps its own endings;
- a file the user deleted or renamed loses the template's change without a word: a renamed file gets the change
  merged in where git can follow the rename; a deleted one gets it as a patch under ``.litscaffold/unapplied/``.

Each case becomes an Outcome for the update's report (report.py).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import git as gitops
from .notebooks import NotANotebook, merge_notebooks
from .report import Outcome

UNAPPLIED = ".litscaffold/unapplied"
LABELS = ("before updating", "template before", "after updating")  # copier's own marker labels, and the base
# The lines copier writes around an inline conflict.
CONFLICT_MARKERS = (b"<<<<<<< before updating", b">>>>>>> after updating")


def has_markers(path: Path) -> bool:
    """Does the file hold copier's conflict markers (on lines of their own)?"""
    try:
        with path.open("rb") as handle:
            return any(line.rstrip() in CONFLICT_MARKERS for line in handle)
    except OSError:
        return False


@dataclass
class Renders:
    """What the part's old and new template versions render, relative path -> bytes."""

    old: dict[str, bytes]
    new: dict[str, bytes]

    def changed(self, path: str) -> bool:
        return path in self.new and self.old.get(path) != self.new[path]


@dataclass
class Before:
    """What the project looked like before copier ran, as far as the fixes need it."""

    head: Callable[[str], bytes]  # a path's committed bytes
    crlf: set[str] = field(default_factory=set)  # template files the project keeps with CRLF endings
    missing: dict[str, str | None] = field(default_factory=dict)  # deleted template files -> renamed to (or None)


def inspect(root: Path, renders: Renders) -> Before:
    """Record, before copier runs, which template files use CRLF and which ones the project deleted or renamed."""
    tracked = set(gitops.read(root, "ls-files", "-z", "--", ".").split("\0")) - {""}
    before = Before(head=lambda path: gitops.committed(root, path))
    for path in renders.new:
        if path in tracked and b"\r\n" in (root / path).read_bytes():
            before.crlf.add(path)
    for path in renders.old:
        if path not in tracked:
            before.missing[path] = _renamed_to(root, path, tracked)
    return before


def redo(root: Path, renders: Renders, before: Before, expect: Callable[[set[str]], None]) -> list[Outcome]:
    """After copier: merge notebooks and CRLF files again, carry the template's changes to deleted or renamed
    files; `expect` is told about every new file written (the transaction commits or removes them)."""
    outcomes: list[Outcome] = []
    for path in sorted(renders.new):
        target = root / path
        if path.endswith(".ipynb") and target.is_file() and has_markers(target) and path in renders.old:
            outcomes.append(_notebook(root, path, renders, before, expect))
        elif path in before.crlf and target.is_file() and renders.changed(path) and path in renders.old:
            merged, conflicts = merge_text(before.head(path), renders.old[path], renders.new[path])
            _write(root, path, merged, resolved=not conflicts)
            outcomes.append(Outcome(path, "conflict" if conflicts else "merged",
                                    "merged line by line, CRLF endings kept"))
    for path, renamed in sorted(before.missing.items()):
        if not renders.changed(path):
            if path in renders.new:
                how = f"you renamed it to {renamed}" if renamed else "you deleted it"
                outcomes.append(Outcome(path, "kept deleted", f"{how}; the template did not change it"))
            continue
        if renamed is not None and (root / renamed).is_file():
            merged, conflicts = merge_text((root / renamed).read_bytes(), renders.old[path], renders.new[path])
            _write(root, renamed, merged, resolved=not conflicts)
            outcomes.append(Outcome(renamed, "conflict" if conflicts else "merged",
                                    f"the template's change to {path}, which you renamed to {renamed}"))
        else:
            patch = f"{UNAPPLIED}/{path}.patch"
            expect({patch})
            (root / patch).parent.mkdir(parents=True, exist_ok=True)
            (root / patch).write_text(_patch(path, renders.old[path], renders.new[path]))
            outcomes.append(Outcome(path, "not applied", f"you deleted it; the template's change is in {patch} "
                                                         f"(read it, or `git apply {patch}` to take it back)"))
    return outcomes


def merge_text(ours: bytes, base: bytes, theirs: bytes) -> tuple[bytes, int]:
    """Three-way merge of text in LF; the result takes the endings of `ours` (CRLF stays CRLF). Returns the
    merged bytes with copier's conflict markers, and the number of conflicts."""
    crlf = b"\r\n" in ours
    lf = [data.replace(b"\r\n", b"\n") for data in (ours, base, theirs)]
    merged, conflicts = gitops.merge_file(lf[0], lf[1], lf[2], labels=LABELS)
    return (merged.replace(b"\n", b"\r\n") if crlf else merged), conflicts


def _notebook(root: Path, path: str, renders: Renders, before: Before,
              expect: Callable[[set[str]], None]) -> Outcome:
    try:
        merged = merge_notebooks(renders.old[path].decode(), before.head(path).decode(), renders.new[path].decode())
    except (NotANotebook, UnicodeDecodeError) as error:
        # Never leave invalid JSON: the project's notebook as it was, the template's beside it.
        beside = str(Path(path).with_suffix(".template.ipynb"))
        expect({beside})
        (root / beside).write_bytes(renders.new[path])
        _write(root, path, before.head(path), resolved=True)
        return Outcome(path, "not applied", f"could not merge it as a notebook ({error}); yours is unchanged and "
                                            f"the template's version is {beside}")
    _write(root, path, merged.text.encode(), resolved=True)
    if merged.conflicts:
        return Outcome(path, "conflict", f"merged cell by cell; {merged.notes[0]}. It opens in Jupyter: keep "
                                         "what you want, delete the rest")
    return Outcome(path, "merged", "merged cell by cell")


def _write(root: Path, path: str, data: bytes, *, resolved: bool) -> None:
    """Write a re-merged file; when it holds no conflict, mark it resolved in the index as well."""
    (root / path).write_bytes(data)
    if resolved:
        gitops.git("add", "--", path, cwd=root, env=gitops.LITERAL)


def _renamed_to(root: Path, path: str, tracked: set[str]) -> str | None:
    """Where git says a deleted file went (following up to five renames), or None when it was deleted."""
    for _ in range(5):
        last = gitops.read(root, "log", "-1", "--format=%H", "--full-history", "--", path).strip()
        if not last:
            return None
        status = gitops.read(root, "diff", "-M", "--name-status", "-z", "--relative", f"{last}^", last, "--")
        fields = status.split("\0")
        renamed = next((fields[i + 2] for i in range(len(fields) - 2)
                        if fields[i].startswith("R") and fields[i + 1] == path), None)
        if renamed is None:
            return None
        if renamed in tracked:
            return renamed
        path = renamed
    return None


def _patch(path: str, old: bytes, new: bytes) -> str:
    lines = difflib.unified_diff(old.decode(errors="replace").splitlines(keepends=True),
                                 new.decode(errors="replace").splitlines(keepends=True),
                                 fromfile=f"a/{path}", tofile=f"b/{path}")
    return f"# litscaffold update: the template changed {path}, which this project had deleted.\n" + "".join(lines)
