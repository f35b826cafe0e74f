"""What the benchmarks share: a project rendered from this working tree, in a home of its own, and the
environment its runs get (no PL_TRAINER_*, SLURM_* or PYTHONPATH from the caller: the Trainer's own defaults)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def render_project(work: Path, name: str, threads: int = 0) -> tuple[Path, dict[str, str]]:
    """Render `name` under `work` with `litscaffold new-project --defaults`; return it and the run environment."""
    sys.path.insert(0, str(REPO / "src"))
    from litscaffold.snapshot import snapshot

    home = work / "home"
    home.mkdir()
    bundle = work / "template.bundle"
    snapshot(root=REPO, bundle=bundle)
    env = {**os.environ, "HOME": str(home), "LITSCAFFOLD_CACHE_DIR": str(home / ".cache" / "ls"),
           "LITSCAFFOLD_TEMPLATE_BUNDLE": str(bundle), "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    for variable in [n for n in env if n.startswith(("PL_TRAINER_", "SLURM_")) or n == "PYTHONPATH"]:
        del env[variable]
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    # this working tree's litscaffold renders (not whichever one the environment has installed)
    done = subprocess.run([sys.executable, "-m", "litscaffold", "new-project", name, "--defaults"], cwd=work,
                          env={**env, "PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if done.returncode:
        sys.exit(f"new-project failed ({done.returncode}): {done.stderr[-3000:]}")
    return work / name, env
