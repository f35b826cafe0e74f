"""Every copier render goes through here: same settings, same safety, nothing half-written."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import Interrupted, LitscaffoldError, UsageError
from .safety import signals_deferred
from .template import TemplateSource, tag_of


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
    update's patch no longer applied to the project's LF files. plumbum's `local.env` (its public way to
    set the environment of the commands it runs) scopes the setting to copier's calls: litscaffold's own
    commits keep the user's setting."""
    from plumbum import local

    with local.env(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="core.autocrlf", GIT_CONFIG_VALUE_0="false"):
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
        with copier_git():
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
