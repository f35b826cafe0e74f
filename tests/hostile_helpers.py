"""Shared by the hostile-input, interruption and concurrency tests: a world (a folder holding a
project and whatever lies beside it), its exact state, and the git states users end up in."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import tree_digest

PROJECT = "proj"


def git(root: Path, *args: str, check: bool = True) -> str:
    """Run git; GIT_OPTIONAL_LOCKS=0 so that looking (status) never rewrites the index it compares."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", message)


def state(world: Path) -> dict[str, str]:
    """What a user sees: every file in the world outside .git folders (bytes), and for each repository
    HEAD, the index file's bytes and what git status says. Git's object store may hold new objects."""
    seen = {path: digest for path, digest in tree_digest(world).items()
            if not (f"/{path}/".find("/.git/") >= 0)}
    for gitdir in sorted(world.rglob(".git")):
        repo = gitdir.parent
        name = repo.relative_to(world).as_posix()
        seen[f"<{name} HEAD>"] = git(repo, "rev-parse", "-q", "--verify", "HEAD", check=False).strip()
        seen[f"<{name} branch>"] = git(repo, "symbolic-ref", "-q", "HEAD", check=False).strip()
        index = gitdir / "index"
        seen[f"<{name} index>"] = hashlib.sha256(index.read_bytes()).hexdigest() if index.is_file() else "-"
        seen[f"<{name} status>"] = git(repo, "-c", "status.showUntrackedFiles=all", "status", "--porcelain",
                                       "--ignored", check=False)
        seen[f"<{name} lock>"] = str(sorted(p.name for p in gitdir.glob("*.lock")))
    return seen


def diverge(root: Path) -> str:
    """A side branch and the current one each with their own commit; returns the side branch."""
    start = git(root, "rev-parse", "HEAD").strip()
    git(root, "checkout", "-q", "-b", "side")
    (root / "side.txt").write_text("side\n")
    commit_all(root, "side")
    git(root, "checkout", "-q", "-")
    (root / "main.txt").write_text("main\n")
    commit_all(root, "main")
    assert git(root, "rev-parse", "HEAD~1").strip() == start
    return "side"


def merge_in_progress(root: Path) -> None:
    git(root, "merge", "-q", "-s", "ours", "--no-commit", diverge(root))


def readme_changed_on_two_branches(root: Path, branch: str) -> None:
    """README.md changed one way on a new `branch` and another way on the current one: merging or picking it
    stops on a conflict."""
    git(root, "checkout", "-q", "-b", branch)
    (root / "README.md").write_text(f"{branch}\n")
    commit_all(root, branch)
    git(root, "checkout", "-q", "-")
    (root / "README.md").write_text("here\n")
    commit_all(root, "here")


def conflicted_merge(root: Path) -> None:
    """The user's own merge stopped on a conflict (README.md changed on both sides)."""
    readme_changed_on_two_branches(root, "theirs")
    git(root, "merge", "-q", "theirs", check=False)
    assert (root / ".git" / "MERGE_HEAD").exists()


def rebase_in_progress(root: Path) -> None:
    (root / "main.txt").write_text("main\n")
    commit_all(root, "one more")
    git(root, "rebase", "-x", "false", "HEAD~1", check=False)
    assert (root / ".git" / "rebase-merge").is_dir()


def cherry_pick_in_progress(root: Path) -> None:
    readme_changed_on_two_branches(root, "pick")
    git(root, "cherry-pick", "pick", check=False)
    assert (root / ".git" / "CHERRY_PICK_HEAD").exists()


def failing_signing(root: Path) -> None:
    git(root, "config", "commit.gpgsign", "true")
    git(root, "config", "gpg.program", "/bin/false")


def failing_ref_hook(root: Path) -> None:
    """A reference-transaction hook that refuses every ref update (--no-verify does not skip it)."""
    hook = root / ".git" / "hooks" / "reference-transaction"
    hook.write_text("#!/bin/sh\n[ \"$1\" = prepared ] && exit 1\nexit 0\n")
    hook.chmod(0o755)


def sleeping_hook(gitdir: Path, counter: Path, marker: Path, nth: int, seconds: float = 1.5) -> None:
    """post-index-change: on its nth run it touches `marker` and sleeps, holding the command between two
    of its git steps (DESIGN §7)."""
    hook = gitdir / "hooks" / "post-index-change"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(
        "#!/bin/sh\n"
        f"n=$(cat '{counter}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{counter}'\n"
        f"if [ $n -eq {nth} ]; then touch '{marker}'; sleep {seconds}; fi\n"
    )
    hook.chmod(0o755)


# Signals at deterministic moments (test_interruptions.py, test_hangup.py)

MAX_STEPS = 14
# The commands run as from a terminal, SIGINT handled, even when the suite itself runs in the background: a shell
# starts background jobs with SIGINT ignored, and an ignored signal stays ignored in every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def start(args: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "litscaffold", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})


def interrupt_when(proc: subprocess.Popen[str], ready, sig: int) -> tuple[bool, int, str]:
    """Send `sig` once `ready()` holds; returns (sent, exit code, stderr)."""
    sent = False
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            proc.send_signal(sig)
            sent = True
            break
        time.sleep(0.005)
    _, stderr = proc.communicate(timeout=120)
    return sent, proc.returncode, stderr


def assert_all_or_nothing(world: Path, before: dict[str, str], code: int, stderr: str, done) -> str:
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr, stderr
    if code == 130:
        assert lines[-1].startswith("error: interrupted"), stderr
        assert state(world) == before, stderr
        return "undone"
    assert code == 0, stderr
    done(world)
    return "committed"


def every_step(make_world, args: tuple[str, ...], done, sig: int = signal.SIGINT, cwd: str = PROJECT,
                hook_env=None, steps: int = MAX_STEPS) -> list[str]:
    """Interrupt `args` at its 1st, 2nd, ... index write until a run completes before the Nth (or
    `steps` runs were interrupted)."""
    outcomes = []
    for nth in range(1, steps + 1):
        world, ctl = make_world(nth)
        counter, marker = ctl / "count", ctl / "marker"
        env = hook_env(ctl, counter, marker, nth) if hook_env else None
        if env is None:
            sleeping_hook(world / PROJECT / ".git", counter, marker, nth, seconds=0.5)
        before = state(world)
        sent, code, stderr = interrupt_when(start(args, world / cwd, env), marker.exists, sig)
        outcomes.append(assert_all_or_nothing(world, before, code, stderr, done))
        if not sent:
            assert code == 0 and outcomes[-1] == "committed"
            return outcomes
    if steps < MAX_STEPS:
        return outcomes
    raise AssertionError(f"{args} still had index writes after {MAX_STEPS} steps")
