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
    status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")  # this project's
    if status is None:
        return {"commit": None, "note": f"{root} is not a git repository (or git is missing): the code of this run "
                "is not recorded; git init and commit to have every run say which code produced it"}
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    if not head:
        return {"commit": None, "note": f"{root} is a git repository without a commit yet: the code of this run is "
                "not recorded"}
    entries = [entry for entry in status.split("\0") if entry]
    state: dict[str, Any] = {"commit": head.strip(), "dirty": bool(entries), "changed": [e[3:] for e in entries]}
    if entries:
        # Tracked changes, staged or not, against the commit; then git's own patch of each new file it does not
        # track yet (diff --no-index exits 1 when there is a difference); larger ones are only named. Paths are the
        # project's own (--relative): `git apply` in the project folder gives back the code, also in a monorepo.
        untracked = [name for name in (_git(root, "ls-files", "--others", "--exclude-standard", "-z") or "").split(
            "\0") if name]
        small = [name for name in untracked if (root / name).is_file() and (root / name).stat().st_size
                 <= MAX_UNTRACKED_BYTES]
        patch = (_git(root, "diff", "HEAD", "--binary", "--relative") or "") + "".join(
            _git(root, "diff", "--no-index", "--binary", "--", "/dev/null", name, ok=(1,)) or "" for name in small)
        patch_path.write_text(patch, errors="surrogateescape")
        state["patch"] = patch_path.name
        if skipped := [name for name in untracked if name not in small]:
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


def _git(root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], check=False, capture_output=True, text=True,
                              errors="surrogateescape", timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode in ok else None
