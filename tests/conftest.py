"""Shared fixtures: every test renders from a bundle of the working tree into its own cache."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def working_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """template/ + copier.yml as they are on disk, snapshotted as the current version."""
    from litscaffold.snapshot import snapshot

    bundle = tmp_path_factory.mktemp("bundle") / "template.bundle"
    snapshot(root=REPO, bundle=bundle)
    return bundle


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
                 working_bundle: Path) -> None:
    """No test reads the developer's cache, copier settings or git identity."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LITSCAFFOLD_CACHE_DIR", str(home / ".cache" / "litscaffold"))
    monkeypatch.setenv("LITSCAFFOLD_TEMPLATE_BUNDLE", str(working_bundle))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test User")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test User")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    monkeypatch.delenv("COPIER_SETTINGS_PATH", raising=False)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a subprocess (stdin closed: no terminal, like CI)."""
    proc = subprocess.run(
        [sys.executable, "-m", "litscaffold", *args],
        cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"litscaffold {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def tree_digest(root: Path) -> dict[str, str]:
    """Every file (and empty folder) under root with a hash of its bytes: 'byte-identical' made checkable."""
    digest: dict[str, str] = {}
    if not root.exists():
        return digest
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file():
            digest[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir() and not any(path.iterdir()):
            digest[relative] = "<empty dir>"
    return digest


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]
