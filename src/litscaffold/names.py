"""Which names a project or a component may take, checked before anything touches the disk."""

from __future__ import annotations

import keyword
import re

from .errors import InvalidName

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
# A name becomes file names such as `.copier-answers.dataset-NAME.yml`; file systems stop at 255 bytes.
MAX_NAME_LENGTH = 64

# Modules a generated project imports by name, plus its own top-level modules: a project or
# component called like one of them would shadow it at import time.
SHADOWED_MODULES = frozenset(
    {
        "torch", "lightning", "pytorch_lightning", "torchmetrics", "tensorboard", "numpy", "matplotlib",
        "pytest", "typing", "dataclasses", "pathlib", "argparse", "json", "csv", "math", "os", "sys",
        "re", "inspect", "warnings", "random", "time", "copy", "functools", "collections", "abc",
        "data", "model", "trainer", "flags", "runs", "predict", "registry", "tuning", "tests", "notebooks", "scripts", "base",
        "test", "site", "setup", "litscaffold", "copier", "types", "io", "logging", "enum",
    }
)


def slugify(project_name: str) -> str:
    """The package-safe short form of a project name: 'My Project 2' -> 'my_project_2'."""
    return re.sub(r"[^a-z0-9]+", "_", project_name.lower()).strip("_")


def check_project_name(name: str) -> str:
    """Return the project's slug, or raise InvalidName saying what would work."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidName("the project name is empty; give one, e.g. `litscaffold new-project my_project`")
    if "/" in name or "\\" in name or name.strip() in {".", ".."}:
        raise InvalidName(
            f"project name {name!r} looks like a path; give a plain name and pick the folder with --dest DIR"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"project name {name[:20]!r}... is {len(name)} characters long; "
                          f"keep it to {MAX_NAME_LENGTH} or fewer")
    if any(ord(char) < 32 for char in name):
        raise InvalidName(f"project name {name!r} holds a control character (newline, tab...); give one plain line")
    slug = slugify(name)
    _check_identifier(slug, f"project name {name!r}", "project")
    return slug


def check_component_name(name: object, kind: str) -> str:
    """`name`, once it is sure to be the module name of a model or dataset (else InvalidName). Names read
    back from answers files go through here too: they become paths."""
    if not isinstance(name, str) or not name:
        raise InvalidName(f"the {kind} name is empty; give a module name such as `my_{kind}`")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"{kind} name {name[:20]!r}... is {len(name)} characters long; "
                          f"keep it to {MAX_NAME_LENGTH} or fewer")
    if not _IDENTIFIER.match(name):
        raise InvalidName(
            f"{kind} name {name!r} is not a module name: use lowercase letters, digits and underscores, "
            "not starting with a digit (e.g. `my_net`)"
        )
    if name.startswith("_"):
        raise InvalidName(f"{kind} name {name!r} starts with '_': the project's registry skips private modules; "
                          f"try `{name.lstrip('_') or 'my_' + kind}`")
    _check_identifier(name, f"{kind} name {name!r}", kind)
    return name


def _check_identifier(slug: str, what: str, kind: str) -> None:
    if not slug:
        raise InvalidName(f"{what} has no letters or digits; choose a name such as `my_{kind}`")
    if slug[0].isdigit():
        raise InvalidName(f"{what} starts with a digit; Python cannot import it: try `{kind}_{slug}`")
    if not _IDENTIFIER.match(slug):
        raise InvalidName(f"{what} is not a Python identifier; use letters, digits and underscores")
    if keyword.iskeyword(slug) or keyword.issoftkeyword(slug):
        raise InvalidName(f"{what} is a Python keyword; choose another, e.g. `my_{slug}`")
    if slug in SHADOWED_MODULES:
        raise InvalidName(
            f"{what} would shadow the module `{slug}` that generated projects import; choose another, "
            f"e.g. `my_{slug}`"
        )
