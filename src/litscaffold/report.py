"""What an update did (or, with --dry-run, would do) to every file, per part: one report for people and tools."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .template import parse_version

# Where each release moved code, by the path it had before: the report names a moved file's new home, so that a
# person carrying an edit over does not have to grep for it.
MOVES: dict[str, dict[str, Any]] = json.loads((Path(__file__).parent / "moves.json").read_text(encoding="utf-8"))

# The order lines are shown in: what needs the user first.
STATUSES = ("conflict", "not applied", "kept", "merged", "new", "removed", "kept deleted")


@dataclass(frozen=True)
class Outcome:
    path: str
    status: str  # one of STATUSES
    detail: str = ""


@dataclass
class PartReport:
    part: str
    old: str | None
    new: str
    files: list[Outcome] = field(default_factory=list)
    committed: str | None = None


@dataclass
class UpdateReport:
    dry_run: bool = False
    parts: list[PartReport] = field(default_factory=list)
    stopped: str | None = None  # why the update stopped before the end (a conflict), None when it finished

    def start(self, part: str, old: str | None, new: str) -> PartReport:
        self.parts.append(PartReport(part, old, new))
        return self.parts[-1]

    def lines(self) -> list[str]:
        lines = []
        for part in self.parts:
            lines.append(f"{part.part}: {part.old} -> {part.new}" + (f" (commit {part.committed})"
                                                                     if part.committed else ""))
            order = {status: index for index, status in enumerate(STATUSES)}
            for outcome in sorted(part.files, key=lambda o: (order.get(o.status, len(order)), o.path)):
                detail = f": {outcome.detail}" if outcome.detail else ""
                lines.append(f"  {outcome.status:<12} {outcome.path}{detail}")
            if not part.files:
                lines.append("  (only the recorded template version changes)")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "stopped": self.stopped,
                "parts": [{**{key: value for key, value in asdict(part).items() if key != "files"},
                           "files": [asdict(outcome) for outcome in part.files]} for part in self.parts]}


def outcomes_from_status(changes: list[tuple[str, str]], expected: set[str], conflicted: set[str]) -> list[Outcome]:
    """The plain outcomes of a copier update, from `git status` against HEAD (git.changes: code, path)."""
    outcomes = []
    for code, path in changes:
        if path in conflicted:
            outcomes.append(Outcome(path, "conflict", "resolve the <<<<<<< blocks, commit, then run "
                                                      "`litscaffold update` again"))
        elif code in ("??", "!!") or "A" in code:  # new, or new and matched by an ignore rule
            if path in expected:
                outcomes.append(Outcome(path, "new"))
        elif "D" in code:
            outcomes.append(Outcome(path, "removed", "the template no longer has it (you had not changed it)"))
        elif "M" in code or "U" in code:
            outcomes.append(Outcome(path, "merged"))
    return outcomes


def kept(path: str) -> Outcome:
    """A file the new template no longer has, kept because the user changed it."""
    return Outcome(path, "kept", "the template no longer has it, but you changed it; delete it when you no longer "
                                 "need it")


def new_homes(path: str, old: str | None, new: str) -> dict[str, list[str]]:
    """Where the code that `path` held at template `old` lives at template `new`, other than `path` itself: what moved
    (None: the whole file) -> the files that hold it now, following every release in between."""
    homes: dict[str, str | None] = {path: None}  # file -> which part of the old code it holds (None: all of it)
    for release in sorted(MOVES, key=parse_version):
        if old is None or not parse_version(old) < parse_version(release) <= parse_version(new):
            continue
        moved: dict[str, str | None] = {}
        for held, what in homes.items():
            entry = MOVES[release].get(held)
            if entry is None or entry.get("stays"):
                moved.setdefault(held, what)
            for move in entry["moves"] if entry else []:
                for target in move["to"]:
                    moved.setdefault(target, what or move.get("what"))
        homes = moved
    grouped: dict[str, list[str]] = {}
    for target, what in homes.items():
        if target != path:
            grouped.setdefault(what or "its code", []).append(target)
    return grouped


def with_new_homes(outcomes: list[Outcome], old: str | None, new: str) -> list[Outcome]:
    """The outcomes, each file whose code moved saying where it lives now ("util/flags.py: ... its code moved to
    util/cli.py")."""
    noted = []
    for outcome in outcomes:
        homes = new_homes(outcome.path, old, new)
        if homes and outcome.status != "new":
            where = "; ".join(f"{what} moved to {', '.join(targets)}" for what, targets in homes.items())
            outcome = replace(outcome, detail=f"{outcome.detail}; {where}" if outcome.detail else where)
        noted.append(outcome)
    return noted


def combine(plain: list[Outcome], special: list[Outcome]) -> list[Outcome]:
    """The special outcomes (notebooks, CRLF, deleted or renamed files) replace the plain ones of their path."""
    replaced = {outcome.path for outcome in special}
    return [outcome for outcome in plain if outcome.path not in replaced] + special
