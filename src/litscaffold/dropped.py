"""Files a new template version no longer has: copier deletes every one of them, edited or not. A file the user
changed is theirs: `update` puts it back from HEAD and reports it as kept."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from . import git as gitops
from .preflight import git_read
from .template import TemplateSource, tag_of

if TYPE_CHECKING:
    from .updating import Part

_READ_ONLY = {"GIT_OPTIONAL_LOCKS": "0"}


def keep_edited_dropped_files(root: Path, part: Part, source: TemplateSource) -> list[str]:
    """copier deletes every file the new template no longer has, edited or not. A file the user changed
    is theirs: put it back (from HEAD) and say so. Unchanged ones stay deleted."""
    deleted = [line[3:] for line in git_read(root, "status", "--porcelain", "--", ".").splitlines()
               if "D" in line[:2]]
    kept = [relative for relative in deleted if _edited_since_render(root, part, source, relative)]
    for relative in kept:
        gitops.git("checkout", "-q", "HEAD", "--", relative, cwd=root)
    return kept


def _edited_since_render(root: Path, part: Part, source: TemplateSource, relative: str) -> bool:
    """Does the committed file differ from what the part's old template version rendered?"""
    committed = git_read(root, "rev-parse", f"HEAD:./{relative}").strip()
    # A plain (not .jinja) template file is copied verbatim: same blob id means same bytes.
    template_path = f"template/{part.answers.get('component', 'project')}/{relative}"
    plain = subprocess.run(["git", "rev-parse", "--verify", "-q", f"{tag_of(part.version or '')}:{template_path}"],
                           cwd=source.repo, capture_output=True, text=True)
    if plain.returncode == 0:
        return plain.stdout.strip() != committed
    from .render import pristine

    with pristine(source, part.answers, version=part.version or "", answers_file=part.answers_file) as old:
        rendered = old / relative
        return not rendered.is_file() or rendered.read_bytes() != _committed_bytes(root, relative)


def _committed_bytes(root: Path, relative: str) -> bytes:
    return subprocess.run(["git", "cat-file", "blob", f"HEAD:./{relative}"], cwd=root, capture_output=True,
                          env={**os.environ, **_READ_ONLY}).stdout
