"""A repository's own files where the project template has one of its own, as `litscaffold adopt` leaves them: merged
where the format allows (lines a line-based file lacks, dependencies a dependency list lacks, a section for a
README), or kept as they are with the template's version beside them under a clear name. Every function returns the
new text, or None when it cannot merge (the caller says so), and never removes or reorders a line of theirs.

No library does this merge: copier writes or skips a file whole. Requirement names are read by `packaging`, which
rules hide tracked files by git itself; the one insertion into pyproject.toml is checked by reading it back with
tomllib (a TOML writer that keeps comments, tomlkit, would be a new dependency for one edit)."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path, PurePosixPath

from . import git as gitops

LINE_FILES = (".gitignore", ".gitattributes")  # one rule per line: the template's rules missing are appended
BESIDE_TAG = "litscaffold"


def beside(path: str) -> str:
    """Where the template's version of a file goes when the repository has its own: `.pre-commit-config.yaml` ->
    `.pre-commit-config.litscaffold.yaml`, `scripts/slurm.sbatch` -> `scripts/slurm.litscaffold.sbatch`."""
    pure = PurePosixPath(path)
    stem, suffix = (pure.stem, pure.suffix) if pure.suffix and pure.stem else (pure.name, "")
    return str(pure.with_name(f"{stem}.{BESIDE_TAG}{suffix}"))


def newline_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _appended(text: str, block: list[str]) -> str:
    """`text` with `block` (lines without endings) after it, in the file's own line endings."""
    newline = newline_of(text)
    lead = "" if not text or text.endswith(("\n", "\r")) else newline
    return text + lead + newline + newline.join(block) + newline


def merge_lines(root_text: str, template_text: str, header: str, unsafe: Collection[str] = ()) -> tuple[str, list[str]]:
    """Append the template's rules (not comments, not blank) that the file lacks, under `header`; rules in `unsafe`
    are left out. Returns the new text (unchanged when nothing is missing) and the rules appended."""
    have = {line.strip() for line in root_text.splitlines()}
    missing = [line.strip() for line in template_text.splitlines()
               if line.strip() and not line.lstrip().startswith("#") and line.strip() not in have
               and line.strip() not in unsafe]
    missing = list(dict.fromkeys(missing))
    if not missing:
        return root_text, []
    return _appended(root_text, [f"# {header}", *missing]), missing


def ignore_rules_hiding_tracked(root: Path, rules: list[str]) -> set[str]:
    """The .gitignore rules that would match a file the repository tracks (new files beside it would be hidden from
    `git status`): they are not added to the user's .gitignore."""
    hiding = set()
    for rule in rules:
        listed = gitops.read(root, "ls-files", "-z", "--cached", "--ignored", f"--exclude={rule}", "--", ".")
        if listed.strip("\0"):
            hiding.add(rule)
    return hiding


def distribution(requirement: str) -> str | None:
    """'jsonargparse[signatures]>=4.49' -> 'jsonargparse' (PEP 503 normalized, by `packaging`, which copier
    depends on); None for options, comments, and what is no requirement (a URL, a local path)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    line = requirement.split(" #", 1)[0].strip()  # requirements.txt: a comment may follow the requirement
    if not line or line.startswith(("-", "#")):
        return None
    try:
        return canonicalize_name(Requirement(line).name)
    except InvalidRequirement:
        return None


def template_dependencies(pyproject_text: str) -> list[str]:
    """[project].dependencies of the template's rendered pyproject.toml (its one home)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the rendered file's own layout, one quoted requirement per line
        block = pyproject_text.split("dependencies = [", 1)[-1].split("\n]", 1)[0]
        return re.findall(r'^\s*"([^"]+)"', block, flags=re.MULTILINE)
    return list(tomllib.loads(pyproject_text).get("project", {}).get("dependencies", []))


def missing_requirements(have: list[str], wanted: list[str]) -> list[str]:
    present = {name for name in map(distribution, have) if name}
    return [req for req in wanted if distribution(req) not in present]


def merge_requirements_txt(text: str, wanted: list[str], header: str) -> tuple[str, list[str]]:
    """requirements.txt with the wanted requirements it lacks appended (by distribution name)."""
    added = missing_requirements(text.splitlines(), wanted)
    if not added:
        return text, []
    return _appended(text, [f"# {header}", *added]), added


def merge_pyproject(text: str, wanted: list[str]) -> tuple[str | None, list[str]]:
    """pyproject.toml with the wanted requirements its [project] dependencies lack, inserted before the list's
    closing bracket; (None, []) when it has no such list to add to, or the result would not read back as the same
    list plus the additions (checked with tomllib)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: no TOML reader to check the edit with; the caller reports the dependencies
        return None, []
    try:
        project = tomllib.loads(text).get("project")
    except tomllib.TOMLDecodeError:
        return None, []
    if not isinstance(project, dict) or not isinstance(project.get("dependencies"), list):
        return None, []
    before = project["dependencies"]
    added = missing_requirements(before, wanted)
    if not added:
        return text, []
    close = _closing_bracket(text)
    if close is None:
        return None, []
    head = text[:close].rstrip()
    newline = newline_of(text)
    comma = "" if head.endswith(("[", ",")) else ","
    lines = "".join(f'{newline}    "{req}",' for req in added)
    merged = f"{head}{comma}{lines}{newline}{text[close:]}"
    try:
        after = tomllib.loads(merged).get("project", {}).get("dependencies")
    except tomllib.TOMLDecodeError:
        return None, []
    return (merged, added) if after == [*before, *added] else (None, [])


def _closing_bracket(text: str) -> int | None:
    """Offset of the `]` closing `dependencies = [` in the [project] table (strings and comments skipped)."""
    table = re.search(r"^\[project\]\s*$", text, flags=re.MULTILINE)
    if table is None:
        return None
    start = re.compile(r"^dependencies\s*=\s*\[", flags=re.MULTILINE).search(text, table.end())
    following = re.compile(r"^\[", flags=re.MULTILINE).search(text, table.end())
    if start is None or (following is not None and following.start() < start.start()):
        return None
    depth, index, quote = 1, start.end(), ""
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\" and quote == '"':
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            index = text.find("\n", index)
            if index < 0:
                return None
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def readme_section(text: str, section: str) -> str:
    """Their README with the section appended (nothing of theirs moves)."""
    return _appended(text, section.splitlines())
