"""`litscaffold check`: each template part's recorded version against the installed litscaffold's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .project import Part, Project, parts_of
from .template import current_version, parse_version


def _status(version: str | None, installed: str) -> str:
    if version is None:
        return "unknown"
    order = (parse_version(version) > parse_version(installed)) - (parse_version(version) < parse_version(installed))
    return {-1: "behind", 0: "current", 1: "ahead"}[order]


@dataclass
class CheckReport:
    project: Path
    installed: str
    parts: list[Part]

    @property
    def behind(self) -> bool:
        return any(_status(p.version, self.installed) in ("behind", "unknown") for p in self.parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": str(self.project),
            "installed": self.installed,
            "behind": self.behind,
            "parts": [{"part": p.key, "answers_file": p.answers_file, "template_version": p.version,
                       "status": _status(p.version, self.installed)} for p in self.parts],
        }

    def lines(self) -> list[str]:
        width = max(len(p.label) for p in self.parts)
        lines = [f"{p.label.ljust(width)}  {p.version or '?':<8}  {_status(p.version, self.installed)}"
                 for p in self.parts]
        stale = [p for p in self.parts if _status(p.version, self.installed) in ("behind", "unknown")]
        ahead = [p for p in self.parts if _status(p.version, self.installed) == "ahead"]
        if stale:
            lines.append(f"{len(stale)} of {len(self.parts)} behind template {self.installed}; "
                         "run `litscaffold update --dry-run`, then `litscaffold update`")
        elif ahead:
            newest = max((p.version for p in ahead if p.version), key=parse_version)
            lines.append(f"made by a newer litscaffold; run `pip install 'litscaffold>={newest}'`")
        else:
            lines.append(f"all current (template {self.installed})")
        return lines


def check_project(project: Project) -> CheckReport:
    """Each part's template version against the installed litscaffold's."""
    return CheckReport(project.root, current_version(), parts_of(project))
