"""The template and its versions.

A wheel carries no git history, yet `copier update` must re-render the version a project was made
with. So the package ships `template.bundle`: a git bundle holding one commit and one tag per
released template version (fixed dates, so the hashes are the same on every machine). At run time
the bundle is fetched into a cache repository and every copy or update names its version with
`vcs_ref`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from . import __version__
from .errors import LitscaffoldError, TemplateError
from .git import git, require_git, run

PACKAGE_DIR = Path(__file__).parent
BUNDLE = PACKAGE_DIR / "template.bundle"
RELEASES = PACKAGE_DIR / "releases.json"

# Every version's commit carries these, so a snapshot hashes the same wherever it is built.
SNAPSHOT_ENV = {
    "GIT_AUTHOR_NAME": "litscaffold",
    "GIT_AUTHOR_EMAIL": "templates@litscaffold.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_NAME": "litscaffold",
    "GIT_COMMITTER_EMAIL": "templates@litscaffold.invalid",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
}


def tag_of(version: str) -> str:
    return f"v{version}"


_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,3}\Z")


def version_of(ref: object) -> str | None:
    """'v0.1.0' -> '0.1.0'; None for refs that are not one of our version tags (answers files are
    untrusted: whatever else they say is no version)."""
    if not isinstance(ref, str) or not ref.startswith("v") or not _VERSION.match(ref[1:]):
        return None
    return ref[1:]


def parse_version(version: str) -> tuple[int, ...]:
    """'0.10.2' -> (0, 10, 2), for ordering versions; unparsable parts count as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def cache_root() -> Path:
    """Where the template repository lives: $LITSCAFFOLD_CACHE_DIR, else the XDG cache. A relative
    LITSCAFFOLD_CACHE_DIR is refused: it would name another folder from every directory a command runs in
    (inside a project, a new cache among the user's files)."""
    if explicit := os.environ.get("LITSCAFFOLD_CACHE_DIR"):
        chosen = Path(explicit).expanduser()
        if not chosen.is_absolute():
            raise TemplateError(f"LITSCAFFOLD_CACHE_DIR={explicit} is a relative path; set it to an absolute "
                                f"one (e.g. {Path.home() / '.cache' / 'litscaffold'}), or unset it")
        return chosen
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "litscaffold"


def portable_path(path: Path) -> str:
    """The path as recorded in answers files: under the home directory it starts with `~`, so a
    project cloned onto another machine still finds the template there."""
    home = Path.home().resolve()
    resolved = path.resolve()
    if resolved.is_relative_to(home):
        return "~/" + resolved.relative_to(home).as_posix()
    return resolved.as_posix()


class TemplateSource:
    """The cache repository that copier reads the template from, filled from a bundle."""

    def __init__(self, bundle: Path | None = None, root: Path | None = None) -> None:
        # LITSCAFFOLD_TEMPLATE_BUNDLE lets maintainers and the test suite try a template change
        # before it is snapshotted into the shipped bundle.
        self.bundle = bundle or Path(os.environ.get("LITSCAFFOLD_TEMPLATE_BUNDLE") or BUNDLE)
        self.repo = (root or cache_root()) / "template"
        # Written before litscaffold creates `template`: only what it created is rebuilt, re-initialised or
        # has tags moved. It lives beside the repository, so a damaged repository (even one replaced by a
        # file) is still known as litscaffold's and rebuilt.
        self.owner_mark = self.repo.with_name(".litscaffold-template-cache")

    @property
    def src_path(self) -> str:
        return portable_path(self.repo)

    def ensure(self) -> TemplateSource:
        """Make the cache repository hold every tag of the bundle (cheap when it already does). The cache
        is only ever a copy of the bundle: a damaged one (missing objects, a file where a folder should
        be) is rebuilt from it."""
        require_git()  # also when the cache is filled: copier itself needs git to read a version
        if not self.bundle.is_file():
            raise TemplateError(
                f"the template history {self.bundle} is missing; reinstall litscaffold "
                "(maintainers: run `python -m litscaffold.snapshot`)"
            )
        self._require_ours()
        digest = hashlib.sha256(self.bundle.read_bytes()).hexdigest()
        if self._holds(digest):
            return self
        try:
            with _locked(self.repo.parent / "template.lock"):
                self._require_ours()
                if not self._holds(digest):
                    self._rebuild(digest)
        except OSError as error:
            folder = next((p for p in [self.repo.parent, *self.repo.parent.parents] if p.exists()), None)
            if folder is not None and not folder.is_dir():
                raise TemplateError(f"the template cache folder {folder} is a file; delete it, or set "
                                    "LITSCAFFOLD_CACHE_DIR to a folder you can write") from None
            raise TemplateError(
                f"cannot write the template cache {self.repo.parent} ({(error.strerror or str(error)).lower()}); "
                "set LITSCAFFOLD_CACHE_DIR to a folder you can write, or delete that folder"
            ) from None
        return self

    def _require_ours(self) -> None:
        """Refuse, before anything is written, a `template` in the cache folder that litscaffold did not make:
        the user's file, folder, worktree or repository, which a rebuild would delete or a fetch move tags in."""
        if not os.path.lexists(self.repo) or self.owner_mark.is_file():
            return
        earlier = self.repo / ".git" / "litscaffold-bundle"  # a cache made before the owner mark existed
        if not self.repo.is_symlink() and earlier.is_file() and (self.repo / ".git" / "litscaffold-tags").is_file():
            with contextlib.suppress(OSError):  # a read-only cache is still used; it is marked next time
                self.owner_mark.write_text(_OWNER_NOTE)
            return
        raise TemplateError(f"{self.repo} is not litscaffold's template cache (litscaffold did not create it) and "
                            "litscaffold leaves it alone; set LITSCAFFOLD_CACHE_DIR to another folder")

    def _holds(self, digest: str) -> bool:
        """The cache was filled from this bundle and no object of it is missing since."""
        marker = self.repo / ".git" / "litscaffold-bundle"
        try:
            if not marker.is_file() or marker.read_text() != digest:
                return False
        except OSError:
            return False
        if not _healthy_repo(self.repo):
            return False
        tags = self.repo / ".git" / "litscaffold-tags"  # a tag deleted by hand is damage too
        try:
            return set(tags.read_text().split()) <= set(git("tag", "--list", "v*", cwd=self.repo).split())
        except (OSError, LitscaffoldError):
            return False

    def _rebuild(self, digest: str) -> None:
        """Fill the cache from the bundle, starting over when what is there is not a healthy copy."""
        marker = self.repo / ".git" / "litscaffold-bundle"
        if not os.path.lexists(self.repo):
            self.repo.parent.mkdir(parents=True, exist_ok=True)
            self.owner_mark.write_text(_OWNER_NOTE)
        if self.repo.is_symlink() or (os.path.lexists(self.repo) and not self.repo.is_dir()):
            self.repo.unlink()
        elif os.path.lexists(self.repo / ".git") and not _healthy_repo(self.repo):
            shutil.rmtree(self.repo)
        self.repo.mkdir(parents=True, exist_ok=True)
        if not (self.repo / ".git").is_dir():
            git("init", "-q", cwd=self.repo)
        # --force: an unreleased version may have been re-snapshotted; released tags never move
        # (a test pins them), so forcing only ever moves the tag of a development version.
        try:
            git("fetch", "-q", "--force", "--no-write-fetch-head", str(self.bundle),
                "refs/tags/*:refs/tags/*", cwd=self.repo)
        except LitscaffoldError as error:  # a git failure in the cache: say which folder to delete
            raise TemplateError(f"cannot fill the template cache {self.repo} ({error.message}); "
                                f"delete that folder, or set LITSCAFFOLD_CACHE_DIR to another one") from None
        (self.repo / ".git" / "litscaffold-tags").write_text("\n".join(git("tag", "--list", "v*", cwd=self.repo).split()))
        marker.write_text(digest)

    def require(self, version: str, what: str) -> None:
        """Refuse in one line when the history does not hold `version` (`what` says who asked for it)."""
        known = self.versions()
        if version not in known:
            raise TemplateError(
                f"{what}, which this litscaffold's template history does not hold (it has "
                f"{', '.join(known) or 'none'}); install the litscaffold that made it "
                f"(`pip install 'litscaffold=={version}'`), or restore the answers file from git"
            )

    def versions(self) -> list[str]:
        """Every template version the cache holds, oldest first."""
        tags = git("tag", "--list", "v*", cwd=self.repo).split()
        return sorted((t[1:] for t in tags), key=parse_version)


_OWNER_NOTE = ("litscaffold created the folder `template` beside this file: a cache of its template history,\n"
               "rebuilt from the installed litscaffold whenever it is damaged. Delete both to reclaim the space.\n")


def _healthy_repo(repo: Path) -> bool:
    """A git repository none of whose objects is missing (a cache damaged by hand or a full disk is not)."""
    if not (repo / ".git").is_dir():
        return False
    return run("fsck", "--connectivity-only", "--no-dangling", "--no-progress", cwd=repo).returncode == 0


def current_version() -> str:
    return __version__


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Serialise cache writes between litscaffold processes started together."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: concurrent first runs are rare enough to go unlocked
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
