"""Files a new template version no longer has: copier deletes every one of them, edited or not. A file the user
changed is theirs: `update` puts it back from HEAD and reports it as kept."""

from __future__ import annotations

from pathlib import Path

from . import git as gitops
from .project import Part
from .template import TemplateSource, tag_of


def keep_edited_dropped_files(root: Path, part: Part, source: TemplateSource) -> list[str]:
    """copier deletes every file the new template no longer has, edited or not. A file the user changed
    is theirs: put it back (from HEAD) and say so. Unchanged ones stay deleted."""
    deleted = [path for code, path in gitops.changes(root) if "D" in code]
    kept = [relative for relative in deleted if _edited_since_render(root, part, source, relative)]
    for relative in kept:
        gitops.git("checkout", "-q", "HEAD", "--", relative, cwd=root)
    return kept


def _edited_since_render(root: Path, part: Part, source: TemplateSource, relative: str) -> bool:
    """Does the committed file differ from what the part's old template version rendered?"""
    committed = gitops.read(root, "rev-parse", f"HEAD:./{relative}").strip()
    # A plain (not .jinja) template file is copied verbatim: same blob id means same bytes.
    template_path = f"template/{part.answers.get('component', 'project')}/{relative}"
    plain = gitops.output(source.repo, "rev-parse", "--verify", "-q", f"{tag_of(part.version or '')}:{template_path}")
    if plain is not None:
        return plain.strip() != committed
    from .render import pristine

    with pristine(source, part.answers, version=part.version or "", answers_file=part.answers_file) as old:
        rendered = old / relative
        return not rendered.is_file() or rendered.read_bytes() != gitops.committed(root, relative)
