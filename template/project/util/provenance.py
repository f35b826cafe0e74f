"""What produced a run: the code (git commit, uncommitted changes), the packages, the host and the command.

trainer.py writes it into every new run folder as ``provenance.json``, and the uncommitted changes as
``uncommitted.patch`` (``git apply uncommitted.patch`` on that commit gives back the code as it ran).
predict.py and the notebook print the commit of the run they load. It costs one git call on a clean tree
and two on a dirty one.
"""

from __future__ import annotations

import json
import platform
import re
import shlex
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from util.runs import PROJECT_ROOT

PROVENANCE_FILE = "provenance.json"
PATCH_FILE = "uncommitted.patch"
ALWAYS_RECORDED = ("torch", "lightning", "numpy")
MAX_UNTRACKED_BYTES = 100_000  # larger new files (data, images) are named with their size, not copied


def record(run_dir: Path, argv: list[str], root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Write provenance.json (and uncommitted.patch for a dirty tree) into run_dir; returns what was written."""
    info: dict[str, Any] = {
        "git": git_state(root, run_dir / PATCH_FILE),
        "python": platform.python_version(),
        "packages": package_versions(root),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "argv": argv,  # the flags trainer.py parsed (the same as the command's unless main() was called directly)
        "cwd": str(Path.cwd()),
    }
    (run_dir / PROVENANCE_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return info


def read(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / PROVENANCE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def summary(run_dir: Path) -> str:
    """One line for predict.py and the notebook: which code produced the run."""
    info = read(run_dir)
    if info is None:
        return f"code: not recorded ({run_dir} has no {PROVENANCE_FILE})"
    git = info["git"]
    if not git.get("commit"):
        return f"code: {git.get('note', 'no git commit recorded')}"
    dirty = f" plus uncommitted changes ({Path(run_dir) / PATCH_FILE})" if git.get("dirty") else ""
    return f"code: commit {git['commit'][:12]}{dirty}"


def git_state(root: Path, patch_path: Path) -> dict[str, Any]:
    """The commit and whether the tree differs from it; the differences go to patch_path."""
    status = _git(root, "status", "--porcelain=v1", "-z", "--branch", "--untracked-files=all")
    if status is None:
        return {"commit": None, "note": f"{root} is not a git repository (or git is missing): the code of this run "
                "is not recorded; git init and commit to have every run say which code produced it"}
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    if not head:
        return {"commit": None, "note": f"{root} is a git repository without a commit yet: the code of this run is "
                "not recorded"}
    entries = [entry for entry in status.split("\0") if entry and not entry.startswith("## ")]
    untracked = [entry[3:] for entry in entries if entry.startswith("?? ")]
    state: dict[str, Any] = {"commit": head.strip(), "dirty": bool(entries), "changed": [e[3:] for e in entries]}
    if entries:
        # Tracked changes, staged or not, against the commit; then the new files git does not track yet.
        diff = _git(root, "diff", "HEAD", "--binary") or ""
        new_files, skipped = _untracked_patch(root, untracked)
        patch_path.write_text(diff + new_files)
        state["patch"] = patch_path.name
        if skipped:
            state["untracked_not_in_patch"] = skipped
    return state


def package_versions(root: Path) -> dict[str, str | None]:
    """Installed versions of torch, lightning, numpy and every dependency listed in the project's pyproject.toml."""
    names = list(ALWAYS_RECORDED)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        text = re.sub(r"#.*", "", pyproject.read_text())  # comments may hold quotes ("trainer.py's flags")
        block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.DOTALL | re.MULTILINE)  # to the closing line
        if block:
            names += re.findall(r"[\"']\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)", block.group(1))
    versions: dict[str, str | None] = {}
    for name in dict.fromkeys(names):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], check=False, capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _untracked_patch(root: Path, paths: list[str]) -> tuple[str, list[str]]:
    """New (untracked, not ignored) text files as a patch git apply understands; what is too large or binary is
    returned by name instead."""
    parts, skipped = [], []
    for name in paths:
        path = root / name
        try:
            data = path.read_bytes()
            if len(data) > MAX_UNTRACKED_BYTES:
                raise ValueError("too large")
            text = data.decode("utf-8")
        except (OSError, ValueError):  # UnicodeDecodeError is a ValueError: a binary file
            skipped.append(name)
            continue
        lines = re.findall(r"[^\n]*\n|[^\n]+", text)  # split at \n only: a \r stays inside its line, as git sees it
        if not lines:  # an empty new file: git's patch for it has no hunk and no ---/+++ lines
            parts.append(f"diff --git a/{name} b/{name}\nnew file mode 100644\n")
            continue
        body = "".join(f"+{line}" for line in lines)
        if lines and not lines[-1].endswith("\n"):
            body += "\n\\ No newline at end of file\n"
        parts.append(f"diff --git a/{name} b/{name}\nnew file mode 100644\n--- /dev/null\n+++ b/{name}\n"
                     f"@@ -0,0 +1,{len(lines)} @@\n{body}")
    return "".join(parts), skipped
