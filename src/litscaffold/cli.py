"""The `litscaffold` command line: parse, call one library function, turn our errors into one line.

Heavy libraries (copier, torch, lightning) are imported inside the library functions, so `--help`
costs little more than Python's own start-up.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

try:  # typer >= 0.26 vendors click under typer._click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer depends on click itself
    from click import exceptions as click_errors  # type: ignore[no-redef,import-not-found]

from . import __version__
from .errors import EXIT_BEHIND, LitscaffoldError, UsageError

if TYPE_CHECKING:
    from .adopt import Adopted

app = typer.Typer(
    name="litscaffold",
    help="Start and grow PyTorch Lightning projects.\n\n"
    "  litscaffold new-project my_project\n\n"
    "  cd my_project && litscaffold add model my_net --blueprint convnet",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
add_app = typer.Typer(help="Add a model or a dataset to the project (new files only).", no_args_is_help=True,
                      rich_markup_mode=None)
app.add_typer(add_app, name="add")

ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", "-p", help="Project directory (default: the project containing the current folder).",
                 file_okay=False),
]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"litscaffold {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Start and grow PyTorch Lightning projects."""


@app.command("new-project")
def new_project(
    name: Annotated[str, typer.Argument(help="Project name; its slug names the folder and the package.")],
    dest: Annotated[Path | None, typer.Option(help="Where to create it (default: ./<slug>).")] = None,
    defaults: Annotated[bool, typer.Option("--defaults", help="Take every default answer, ask nothing.")] = False,
    data: Annotated[list[str] | None, typer.Option(
        "--data", "-d", help="Answer a question: KEY=VALUE (repeatable), e.g. -d default_model=mlp.")] = None,
    no_git: Annotated[bool, typer.Option("--no-git", help="Skip `git init` and the first commit.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Write into a non-empty folder; your files are never overwritten.")] = False,
) -> None:
    """Render a new Lightning project that trains out of the box.

    \b
    Examples:
      litscaffold new-project my_project
      litscaffold new-project "Weather Model" --dest ~/code/weather --defaults
      litscaffold new-project demo -d default_model=mlp -d csv_logger=true
    """
    from .scaffold import new_project as scaffold

    result = scaffold(name, dest, data or [], ask=not defaults, use_git=not no_git, force=force)
    where = _shown(result.root)
    if result.repository is not None:
        typer.echo(f"Created {where} (committed to the git repository at {result.repository})")
    else:
        typer.echo(f"Created {where}" + (" (git repository with a first commit)" if result.committed else ""))
    for kept in result.kept:
        typer.echo(f"  kept your {kept} (the template's version was not written)")
    typer.echo(
        "\nNext steps:\n"
        f"  cd {where}\n"
        "  pip install -e .            # torch, lightning, tensorboard (add '.[dev]' for pytest and ruff)\n"
        "  python trainer.py           # trains on the embedded data, offline\n"
        "  python sweep.py --trials 20 --lr 1e-4:1e-1:log --workers 2   # search hyperparameters\n"
        "  tensorboard --logdir logs   # every run of every series; HPARAMS compares them all\n"
        "  python -m pytest            # the project's own tests"
    )


@app.command("adopt")
def adopt(
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print what it would write and merge; change nothing.")] = False,
    models: Annotated[list[Path] | None, typer.Option(
        "--models", metavar="PATH", help="A file or folder holding your LightningModules (repeatable; default: the whole "
                         "repository is searched).")] = None,
    datasets: Annotated[list[Path] | None, typer.Option(
        "--datasets", metavar="PATH", help="A file or folder holding your LightningDataModules (repeatable).")] = None,
    project: Annotated[Path | None, typer.Option(
        "--project", "-p", help="The repository (default: the git repository holding the current folder).",
        file_okay=False)] = None,
) -> None:
    """Bring an existing Lightning repository under the template, in one commit.

    Its LightningModules and LightningDataModules (found by reading the source) train through trainer.py with
    flags from their signatures; predict.py, sweep.py, util/, tests, notebooks/, scripts/ and CI are added
    beside your code. No file of yours is overwritten: .gitignore, dependency lists and README.md get what
    the project needs appended; for other files the template's version goes beside yours. Refused on a dirty
    tree, in a repository already adopted, or without a LightningModule.

    \b
    Examples:
      litscaffold adopt --dry-run
      litscaffold adopt
      litscaffold adopt --models src/my_pkg/models --datasets src/my_pkg/data
    """
    from .adopt import adopt as adopt_repository

    result = adopt_repository(project, models, datasets, dry_run=dry_run)
    for line in _adopted_lines(result):
        typer.echo(line)


def _adopted_lines(result: Adopted) -> list[str]:
    """adopt's report: what was registered, what happened to the repository's files, what to try."""
    where = _shown(result.root) or "."
    if result.dry_run:
        lines = [f"Dry run: adopting {where} with litscaffold template {result.version} would register:"]
    else:
        lines = [f"Adopted {where} with litscaffold template {result.version} (commit {result.commit}); registered:"]
    width = max(len(r.flag) for r in result.registrations)
    for registration in result.registrations:
        made = "" if registration.text is None else f" -> {registration.module_path}"
        lines.append(f"  {registration.flag.ljust(width)}  {registration.found.name} of {registration.found.path}{made}")
    if result.networks:
        names = ", ".join(n.name for n in result.networks)
        lines.append(f"  networks flags can name (--net {result.networks[0].name}): {names} -> model/_networks.py")
    if result.cases:
        lines.append("Your files:")
        for case in sorted(result.cases, key=lambda c: c.path):
            lines.append(f"  {case.status:<7} {case.path}: {case.detail}")
    folders: dict[str, int] = {}
    for path in result.added:
        top = path.split("/")[0] + ("/" if "/" in path else "")
        folders[top] = folders.get(top, 0) + 1
    shown = ", ".join(f"{name} ({count})" if name.endswith("/") else name for name, count in folders.items())
    lines.append(f"{'Would add' if result.dry_run else 'Added'} {len(result.added)} files: {shown}")
    lines += [f"Note: {note}" for note in result.notes]
    if result.dry_run:
        lines.append("Dry run: nothing was changed; run `litscaffold adopt` to do it")
        return lines
    model = result.models()[0]
    datasets = result.datasets()
    pair = f"--model {model.name}" + (f" --dataset {datasets[0].name}" if datasets else "")
    needs = "".join(f" --{name} ..." for name in model.found.required)
    lines += ["Try it:", f"  python trainer.py --help {pair}      # every flag, {model.found.name}'s included",
              f"  python trainer.py {pair}{needs} --max_epochs 1",
              f"  python -m pytest {result.tests_dir} -m \"not slow\"      # the training layer's own tests"]
    return lines


def _add(kind: str, name: str, blueprint: str | None, project: Path | None) -> None:
    from .components import add_component
    from .hints import next_steps
    from .project import Project

    proj = Project.find(project, explicit=project is not None)
    added = add_component(proj, kind, name, blueprint)
    typer.echo(f"Added {kind} {name} ({added.component.blueprint}): {', '.join(added.files)}")
    if not added.committed:
        typer.echo("  not committed (the project is not a clean git repository); commit it before `litscaffold update`")
    typer.echo("Try it:")
    for command in next_steps(proj, kind, name, added.component.blueprint):
        typer.echo(f"  {command}")


@add_app.command("model")
def add_model(
    name: Annotated[str, typer.Argument(help="Module name, e.g. my_net (becomes model/my_net.py and --model my_net).")],
    blueprint: Annotated[str | None, typer.Option(
        "--blueprint", "-b", help="mlp (default), deep-normal, convnet, autoencoder or blank.")] = None,
    project: ProjectOption = None,
) -> None:
    """Add model/NAME.py from a blueprint; the trainer, the tests and `list` see it at once.

    \b
    Examples:
      litscaffold add model my_net
      litscaffold add model digits --blueprint convnet
    """
    _add("model", name, blueprint, project)


@add_app.command("dataset")
def add_dataset(
    name: Annotated[str, typer.Argument(help="Module name, e.g. sales (becomes data/sales.py and --dataset sales).")],
    blueprint: Annotated[str | None, typer.Option(
        "--blueprint", "-b",
        help="synthetic-regression (default), synthetic-images, mnist, csv, image-folder or arrays.")] = None,
    project: ProjectOption = None,
) -> None:
    """Add data/NAME.py from a blueprint; the trainer, the tests and `list` see it at once.

    \b
    Examples:
      litscaffold add dataset digits --blueprint synthetic-images
      litscaffold add dataset sales --blueprint csv
    """
    _add("dataset", name, blueprint, project)


@app.command("remove")
def remove(
    kind: Annotated[str, typer.Argument(help="model or dataset.")],
    name: Annotated[str, typer.Argument(help="The component's name.")],
    force: Annotated[bool, typer.Option("--force", help="Delete even when you edited its files.")] = False,
    project: ProjectOption = None,
) -> None:
    """Delete an added model or dataset (refused when you edited it, unless --force).

    \b
    Example:
      litscaffold remove model my_net
    """
    from .components import remove_component
    from .project import Project

    proj = Project.find(project, explicit=project is not None)
    removed = remove_component(proj, kind, name, force=force)
    typer.echo(f"Removed {kind} {name}: {', '.join(removed.paths)}")
    if not removed.committed:
        typer.echo("  not committed (the project is not a clean git repository); commit it before `litscaffold update`")


@app.command("list")
def list_components(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    project: ProjectOption = None,
) -> None:
    """Show the project's template version and every model and dataset.

    \b
    Examples:
      litscaffold list
      litscaffold list --json | jq '.components[].name'
    """
    from .project import Project

    proj = Project.find(project, explicit=project is not None)
    components = proj.components()
    damaged = proj.damaged()
    if as_json:
        typer.echo(json.dumps({
            "project": str(proj.root), "template_version": proj.version,
            "components": [{"kind": c.kind, "name": c.name, "blueprint": c.blueprint,
                            "template_version": c.version, "owner": c.owner, "problem": c.problem,
                            "needs": list(c.needs)}
                           for c in components],
            "damaged": [{"answers_file": d.answers_file, "problem": d.message} for d in damaged],
        }, indent=2))
        proj.require_intact()
        proj.require_known_versions(__version__)
        return
    typer.echo(f"{proj.root.name}: template {proj.version or 'unknown'}")
    rows = [("KIND", "NAME", "BLUEPRINT", "TEMPLATE", "FROM")] + [
        (c.kind, c.name, c.blueprint, c.version or "-", c.owner) for c in components]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for c in components:
        if c.problem:
            typer.echo(f"{c.module_path}: {c.problem}")
        elif c.needs:
            typer.echo(f"{c.module_path}: needs {', '.join('--' + n for n in c.needs)} on every run (no defaults): "
                       "give them as flags or in a --config file")
    proj.require_intact()  # the sound components are listed; a damaged answers file is one error line
    proj.require_known_versions(__version__)


@app.command("update")
def update(
    project: ProjectOption = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would happen to each file; change nothing.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="With --dry-run: also print the diff it would make.")] = False,
    only: Annotated[str | None, typer.Option(
        "--only", help="Update one part: project, model:NAME or dataset:NAME.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the per-file report as JSON for tools.")] = False,
) -> None:
    """Bring the project and each component to this litscaffold's template, keeping your edits.

    \b
    Examples:
      litscaffold update --dry-run
      litscaffold update --dry-run --diff | less
      litscaffold update
      litscaffold update --only model:my_net
      litscaffold update --dry-run --json
    """
    from .project import Project
    from .report import UpdateReport
    from .updating import update_project

    if diff and not dry_run:
        raise UsageError("--diff shows what a dry run would change: use it with --dry-run")
    proj = Project.find(project, explicit=project is not None)
    report = UpdateReport(dry_run=dry_run)
    try:
        update_project(proj, dry_run=dry_run, only=only, echo=(lambda line: None) if as_json else typer.echo,
                       report=report, diff=diff)
    finally:
        if as_json:  # also when it stopped at a conflict: the report says where
            typer.echo(json.dumps(report.as_dict(), indent=2))


@app.command("check")
def check(
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Compare the template versions in the project with this litscaffold's; exit 1 when behind.

    \b
    Example (CI):
      litscaffold check || echo "run litscaffold update"
    """
    from .checking import check_project
    from .project import Project

    proj = Project.find(project, explicit=project is not None)
    report = check_project(proj)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for line in report.lines():
            typer.echo(line)
    proj.require_intact()
    proj.require_known_versions(__version__)
    raise typer.Exit(EXIT_BEHIND if report.behind else 0)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _interrupted() -> str:
    """A Ctrl-C that no transaction reported: before any write, or after one finished whole."""
    completed = sys.modules.get("litscaffold.transaction")
    done = getattr(completed, "COMPLETED", [])
    if done:
        return f"interrupted after {done[-1]} was done whole (nothing is half-written)"
    return "interrupted before anything was written"


def _say_error(message: str) -> None:
    """One error line on stderr. After SIGHUP the terminal is gone and writing to it fails: that must not turn
    the clean exit of an undone command into a traceback."""
    try:
        typer.echo(f"error: {message}", err=True)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    """Console entry point: every error a user can cause ends as one line and an exit code."""
    from .git import forget_inherited_repository
    from .safety import sigterm_is_ctrl_c

    forget_inherited_repository()  # before copier (plumbum) is imported: it copies the environment once
    sigterm_is_ctrl_c()
    try:
        code = app(args=argv, prog_name="litscaffold", standalone_mode=False)
    except LitscaffoldError as error:
        _say_error(error.message)
        return error.exit_code
    except click_errors.NoArgsIsHelpError as error:
        typer.echo(error.ctx.get_help() if error.ctx else str(error))
        return 0
    except click_errors.UsageError as error:
        hint = f" (see `{error.ctx.command_path} --help`)" if error.ctx else ""
        typer.echo(f"error: {error.format_message()}{hint}", err=True)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        _say_error(_interrupted())
        return 130
    except OSError as error:  # the machine said no (disk full, permissions, a name too long)
        where = f" {error.filename}" if error.filename else ""
        reason = (error.strerror or str(error) or type(error).__name__).strip().splitlines()[0].lower()
        typer.echo(f"error: cannot use{where}: {reason}; free some space or fix the permissions and run it again",
                   err=True)
        return 1
    except click_errors.ClickException as error:
        typer.echo(f"error: {error.format_message()}", err=True)
        return error.exit_code
    except Exception as error:  # a bug of ours: still one line, the traceback on request
        if os.environ.get("LITSCAFFOLD_DEBUG"):
            raise
        typer.echo(f"error: internal error ({type(error).__name__}: {error}); rerun with LITSCAFFOLD_DEBUG=1 "
                   "and report the traceback", err=True)
        return 1
    if code == 130:  # typer turns Ctrl-C into a silent exit code; renders clean up after themselves
        _say_error(_interrupted())
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
