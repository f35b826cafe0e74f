"""One hierarchy of errors: each carries the one line a user needs and the exit code to leave with.

Exit codes, the same for every command (README, "Exit codes"):
    0    done (check: every part is current)
    1    refused or failed; nothing was changed, and the line says why and what to do
    2    the command line is wrong: an unknown option or value, a name that cannot be used, no project here
    3    update found conflicts: merged files with markers wait for you (earlier parts committed), or your own
         files sit where the template writes (nothing changed); --dry-run: the update would conflict
    4    check: something is behind the installed template (nothing is wrong)
    130  interrupted (Ctrl-C, SIGTERM, or SIGHUP: a closed terminal); nothing half-written was left
"""

from __future__ import annotations


class LitscaffoldError(Exception):
    """An error the user can act on; the CLI prints its message as one line, no traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(LitscaffoldError):
    """The command line itself was wrong (bad name, unknown option value)."""

    exit_code = 2


class InvalidName(UsageError):
    """A project or component name that cannot be used."""


class DestinationError(LitscaffoldError):
    """The destination directory cannot take the new project."""


class NotAProject(UsageError):
    """The command needs a litscaffold project and none was found."""


class ComponentError(UsageError):
    """A component (model or dataset) that cannot be added or removed."""


class AdoptError(LitscaffoldError):
    """`litscaffold adopt` cannot bring this repository under the template (nothing was changed)."""


class UpdateError(LitscaffoldError):
    """A precondition of `litscaffold update` does not hold."""


EXIT_BEHIND = 4  # `check`: a part is behind; not an error


class UpdateConflict(LitscaffoldError):
    """An update merged with conflicts that the user must resolve."""

    exit_code = 3

    report: object = None  # the UpdateReport of what happened to every file so far


class DamagedAnswers(LitscaffoldError):
    """An answers file that cannot be trusted: unreadable, not YAML, or naming a path instead of a name."""


class UnsafePath(LitscaffoldError):
    """A path litscaffold would write or delete leads out of the project (a symlink, `..`)."""


class ProjectBusy(LitscaffoldError):
    """Git or another litscaffold is in the middle of something in this project."""


class TemplateError(LitscaffoldError):
    """The shipped template history is missing, damaged or does not hold the wanted version."""


class Interrupted(LitscaffoldError):
    """Ctrl-C (or SIGTERM, SIGHUP): whatever was half-written has been removed."""

    exit_code = 130
