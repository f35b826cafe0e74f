"""Help text for flags, from Google-style docstrings ("Args:" sections) and trailing comments in signatures."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any


def arg_docs(*objects: Any) -> dict[str, str]:
    """The first sentence documenting each argument in the "Args:" sections of the objects' docstrings."""
    docs: dict[str, str] = {}
    for obj in objects:  # the first object documenting an argument wins
        for name, text in _args_section(inspect.getdoc(obj) or "").items():
            docs.setdefault(name, _first_sentence(text))
    return docs


def _args_section(docstring: str) -> dict[str, str]:
    match = re.search(r"^(Args|Arguments|Parameters):\s*$(.*?)(?=^\S|\Z)", docstring, re.DOTALL | re.MULTILINE)
    if not match:
        return {}
    entries: dict[str, str] = {}
    current, indent = None, None
    for line in match.group(2).splitlines():
        stripped = line.lstrip()
        if not stripped:
            current = None
            continue
        depth = len(line) - len(stripped)
        entry = re.match(r"(\*{0,2}\w+)(\s*\(.*?\))?:\s*(.*)", stripped)
        if entry and (indent is None or depth <= indent):  # "name: text" at the section's own indent
            indent = depth
            current = entry.group(1).lstrip("*")
            entries[current] = entry.group(3)
        elif current is not None:  # the entry's text continues
            entries[current] += " " + stripped
    return entries


def comment_docs(function: Callable) -> dict[str, str]:
    """Help from trailing comments in a signature: ``hidden: int = 64,  # units per hidden layer``."""
    try:
        lines = inspect.getsource(function).splitlines()
    except (OSError, TypeError):
        return {}
    docs = {}
    for line in lines:
        match = re.match(r"\s*(?:def \w+\()?\*{0,2}(\w+)\s*[:=,][^#]*#\s*(.+)$", line)
        if match:
            docs.setdefault(match.group(1), match.group(2).strip().replace("%", "%%"))
        if re.search(r"\)\s*(->.*)?:\s*(#.*)?$", line):
            break  # end of the signature
    return docs


def _first_sentence(text: str) -> str:
    text = re.sub(r":\w+:`~?([^`]*)`", r"\1", text).replace("``", "").replace("%", "%%")
    match = re.match(r"(.+?\.)(\s|$)", text)
    return (match.group(1) if match else text).strip()
