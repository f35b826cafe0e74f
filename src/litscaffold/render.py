"""Every copier render goes through here: same settings, same safety, nothing half-written."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import git
from .errors import Interrupted, LitscaffoldError, UsageError
from .safety import signals_deferred
from .template import TemplateSource, tag_of

SCRATCH = "litscaffold-scratch"


def _home_in_git_dir(root: Path) -> Path | None:
    gitdir = git.git_dir(root)
    if gitdir is None or gitdir.stat().st_dev != root.stat().st_dev:
        return None
    return gitdir / SCRATCH / hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]


@contextlib.contextmanager
def project_scratch(root: Path, prefix: str) -> Iterator[Path]:
    """A folder where a project's renders wait before they are renamed into place: on the project's file system
    but outside its work tree, in its git directory, so a kill -9 leaves nothing among the user's files. Each
    project has its own folder there (projects of one monorepo share the git directory), removed afterwards,
    or by the next command under the project's lock (clear_stale_scratch) after a kill. Without a git
    directory on that file system: $TMPDIR when it is on it, else the project folder itself."""
    home = _home_in_git_dir(root)
    if home is None:
        temporary = Path(tempfile.gettempdir())
        with scratch_dir(temporary if temporary.stat().st_dev == root.stat().st_dev else root, prefix) as scratch:
            yield scratch
        return
    try:
        with signals_deferred():
            home.mkdir(parents=True, exist_ok=True)
        with scratch_dir(home, prefix) as scratch:
            yield scratch
    finally:
        _remove_empty(home)


def clear_stale_scratch(root: Path) -> None:
    """Remove what a killed command left in the project's scratch folder; call it holding the project's lock."""
    home = _home_in_git_dir(root)
    if home is not None and home.exists():
        with signals_deferred():
            shutil.rmtree(home, ignore_errors=True)
            _remove_empty(home)


def _remove_empty(home: Path) -> None:
    """The project's scratch folder, and the one holding every project's, when nothing is left in them."""
    for folder in (home, home.parent):
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def copier_temporaries(near: Path) -> Iterator[None]:
    """Copier clones the template and renders old versions into tempfile's folder, and removes them when it
    finishes; a signal at the wrong moment left `copier._vcs.clone.*` folders in $TMPDIR. For the call,
    tempfile's folder (tempfile.tempdir, its documented setting) is a scratch folder of ours beside `near`,
    removed whatever happens: what copier leaves goes with it."""
    previous = tempfile.tempdir
    with scratch_dir(near, "litscaffold-copier") as scratch:
        tempfile.tempdir = str(scratch)
        try:
            yield
        finally:
            tempfile.tempdir = previous


@contextlib.contextmanager
def scratch_dir(near: Path, prefix: str) -> Iterator[Path]:
    """A temporary directory on the same file system as `near` (so results can be renamed into
    place), removed afterwards whatever happens, Ctrl-C included."""
    path: Path | None = None
    try:
        with signals_deferred():  # between mkdir and the assignment, Ctrl-C would orphan the folder
            path = Path(tempfile.mkdtemp(prefix=f".{prefix}-", dir=near))
        yield path
    except OSError as error:
        if path is not None:
            raise
        raise LitscaffoldError(
            f"cannot write in {near}: {(error.strerror or str(error)).lower()}; choose a folder you can write to"
        ) from None
    finally:
        if path is not None:
            with signals_deferred():
                shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def copier_git() -> Iterator[None]:
    """Copier's own git calls (it clones the template, and for an update commits old and new renders to diff
    them) see the template's bytes as committed. With a user's core.autocrlf=true, copier's clone of the
    template checked out CRLF files: every rendered file had CRLF endings (shell scripts no longer ran) and an
    update's patch no longer applied to the project's LF files. And, as for every git call of ours, none of
    git.REPOSITORY_VARIABLES (a hook's GIT_DIR) reaches them, also when litscaffold is used as a library.
    plumbum's `local.env` (its public way to set the environment of the commands it runs, restored when the
    block ends) scopes both to copier's calls: litscaffold's own commits keep the user's autocrlf."""
    from plumbum import local

    with local.env():
        for key in git.REPOSITORY_VARIABLES:
            if key in local.env:
                del local.env[key]
        local.env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="core.autocrlf", GIT_CONFIG_VALUE_0="false")
        yield


def render(
    source: TemplateSource,
    dst: Path,
    data: dict[str, Any],
    *,
    version: str,
    answers_file: str,
    ask: bool = False,
) -> None:
    """Render the template at `version` into the empty directory `dst`.

    The user's own copier settings file is ignored (default answers from it would leak into our
    templates), and templates never run tasks: `unsafe` stays off.
    """
    import copier
    from copier.errors import CopierError, InteractiveSessionError
    from plumbum import ProcessExecutionError

    try:
        with copier_git(), copier_temporaries(dst.parent):
            copier.run_copy(
                source.src_path,
                dst,
                data=data,
                answers_file=answers_file,
                vcs_ref=tag_of(version),
                settings=copier.Settings(),
                defaults=not (ask and sys.stdin.isatty()),
                overwrite=True,
                quiet=True,
                unsafe=False,
            )
    except KeyboardInterrupt:
        raise Interrupted("interrupted; nothing was written") from None
    except InteractiveSessionError:
        raise UsageError("no terminal to ask the template's questions; pass --defaults") from None
    except ValueError as error:  # copier's validators, choices and type checks
        raise UsageError(f"invalid answer: {_first_line(error)}") from None
    except CopierError as error:
        raise LitscaffoldError(f"copier failed: {_first_line(error)}") from None
    except ProcessExecutionError as error:  # git reading the template cache (a full disk, a damaged cache)
        raise LitscaffoldError(
            f"git could not read the template cache {source.repo} ({_first_line(error)}); free some disk space, "
            "or delete that folder (litscaffold rebuilds it)"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def pristine(source: TemplateSource, answers: dict[str, Any], *, version: str,
             answers_file: str) -> Iterator[Path]:
    """What the template at `version` renders from a part's recorded answers, in a scratch folder:
    the reference for "did the user change this file?"."""
    data = {key: value for key, value in answers.items() if not key.startswith("_")}
    with scratch_dir(Path(tempfile.gettempdir()), "litscaffold-pristine") as scratch:
        render(source, scratch / "pristine", data, version=version, answers_file=answers_file)
        yield scratch / "pristine"
