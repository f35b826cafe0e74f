"""`litscaffold adopt`: bring an existing Lightning repository under the template, in one commit.

What copier does here, through render.py as for `new-project`: render the project template (trainer.py, predict.py,
sweep.py, util/, the tests, notebooks/, scripts/, the CI workflow and pre-commit config) at this litscaffold's
version, and write the answers file, so that `add`, `remove`, `list`, `check` and `update` work afterwards as in a
project made by `new-project`. The answers adopt gives also keep the repository's own files out of that render and
of every later one (`kept_files`, excluded by copier.yml), and put the project's tests and README beside the
repository's own (`tests_dir`, `readme_file`), where copier's updates find them.

What adopt does that copier does not (copier has no such command, and its copy into a folder that holds files
overwrites or skips them whole):
- find the repository's LightningModules and LightningDataModules by reading its source, never importing it
  (discovery.py), and register each with a small module of model/ or data/ that imports it (registration.py);
- decide, path by path, what happens where the repository has a file of its own: merged where the format allows
  (ownfiles.py: .gitignore rules, dependencies, a README section), the template's version beside it under a clear
  name, or a refusal where the project needs the name (trainer.py, util/, model/__init__.py ...);
- keep a flat repository's model.py and data.py importable once the project's packages model/ and data/ took
  their names;
- refuse before writing anything (a dirty tree, a repository already adopted, no LightningModule), then write and
  commit everything as one commit through transaction.py: all or nothing, Ctrl-C, SIGTERM and SIGHUP included.
  With --dry-run it renders into a temporary folder, prints what it would write and merge, and changes nothing.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import git as gitops
from . import ownfiles
from .discovery import FoundClass, find_classes, python_files
from .errors import AdoptError, DamagedAnswers, InvalidName, UsageError
from .names import check_component_name, check_project_name
from .project import BUILTIN, KINDS, PACKAGE_OF, PROJECT_ANSWERS, read_answers
from .registration import (
    NETWORKS_MODULE,
    SHADOW_MODULE,
    Registration,
    choose_name,
    networks_module,
    registration_module,
    shadow_module,
)
from .render import project_scratch, render, scratch_dir
from .safety import check_git_idle, inside, project_lock
from .template import TemplateSource, current_version, version_of
from .transaction import Transaction

TESTS_BESIDE = "tests_litscaffold"
README_BESIDE = "README.litscaffold.md"
# Names the project imports from the repository's root. A package of the repository's with one of them would hide the
# project's module (or, for util.py, be hidden by the project's package): adopt refuses, and says what to rename.
LAYER_NAMES = ("trainer", "predict", "sweep", "util", "model", "data")
PACKAGING = ("setup.py", "setup.cfg")  # a pyproject.toml written beside them would take over `pip install .`
OWN_ENTRY_POINTS = ("train.py", "main.py")
MERGE_HEADER = "added by litscaffold adopt: what trainer.py, predict.py, sweep.py and the project's tests need"
IGNORE_HEADER = "added by litscaffold adopt: what runs write (logs/, checkpoints, predictions) and tools' caches"


@dataclass(frozen=True)
class Case:
    """What adopt did (or would do) with a file of the repository's where the template has one."""

    path: str
    status: str  # "merged", "beside", "kept" or "moved"
    detail: str


@dataclass
class Adopted:
    """What `adopt` did, or with --dry-run would do."""

    root: Path
    version: str
    dry_run: bool
    tests_dir: str
    registrations: list[Registration] = field(default_factory=list)
    networks: list[FoundClass] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # files that were not there before
    notes: list[str] = field(default_factory=list)
    commit: str | None = None

    def models(self) -> list[Registration]:
        return [r for r in self.registrations if r.found.kind == "model"]

    def datasets(self) -> list[Registration]:
        return [r for r in self.registrations if r.found.kind == "dataset"]


def adopt(start: Path | None = None, models: list[Path] | None = None, datasets: list[Path] | None = None, *,
          dry_run: bool = False, source: TemplateSource | None = None, version: str | None = None) -> Adopted:
    """Adopt the git repository holding `start` (default: the current folder): everything committed in one commit,
    or, refused or interrupted, the repository exactly as it was. `models`/`datasets`: where to look instead of
    the whole repository."""
    gitops.require_git()
    root = repository_root(start or Path.cwd())
    given = {"model": given_paths(root, models, "--models"), "dataset": given_paths(root, datasets, "--datasets")}
    source = (source or TemplateSource()).ensure()
    version = version or current_version()
    source.require(version, f"template {version} was asked for")
    adoption = Adoption(root, source, version, given)
    if dry_run:
        with project_lock(root):  # the same checks as the real run, nothing written inside the repository
            check_git_idle(root, gitops.git_dir(root))
            check_repository(root)
            with scratch_dir(Path(tempfile.gettempdir()), "litscaffold-adopt") as scratch:
                adoption.plan(scratch)
        return adoption.report(dry_run=True)
    with Transaction(root, "adopting the repository") as tx:
        check_repository(root)
        with project_scratch(root, "litscaffold-adopt") as scratch:
            adoption.plan(scratch)
            adoption.apply(tx, scratch)
    report = adoption.report(dry_run=False)
    report.commit = gitops.read(root, "rev-parse", "--short", "HEAD").strip()
    return report


def repository_root(start: Path) -> Path:
    here = start.resolve()
    if not here.is_dir():
        raise UsageError(f"{start} is not a folder; run adopt inside your repository, or pass --project DIR")
    top = (gitops.output(here, "rev-parse", "--show-toplevel") or "").strip()
    if not top:
        raise AdoptError(f"{here} is not inside a git repository; adopt adds its files in a commit of their own: "
                         "run `git init && git add -A && git commit -m 'My code'` first")
    return Path(top).resolve()


def given_paths(root: Path, paths: list[Path] | None, option: str) -> list[str] | None:
    """--models/--datasets as paths relative to the repository's root; each must exist inside it."""
    if not paths:
        return None
    relative = []
    for path in paths:
        resolved = path.resolve()  # symlinks followed: one leading out of the repository is refused
        if not resolved.is_relative_to(root):
            raise UsageError(f"{option} {path}: not inside the repository {root}; give a file or folder of it")
        if not resolved.exists():
            raise UsageError(f"{option} {path}: no such file or folder")
        relative.append(resolved.relative_to(root).as_posix() if resolved != root else ".")
    return relative


def check_repository(root: Path) -> None:
    """Refuse, before anything is written: no commit yet, already adopted, uncommitted changes."""
    if not gitops.read(root, "rev-parse", "-q", "--verify", "HEAD").strip():
        raise AdoptError("the repository has no commit yet; commit your code first (`git add -A && git commit -m "
                         "'My code'`): adopt adds its files in a commit of their own on top")
    answers = root / PROJECT_ANSWERS
    if os.path.lexists(answers):
        try:
            recorded: dict[str, Any] = read_answers(answers)
        except DamagedAnswers:
            recorded = {}
        if version_of(recorded.get("_commit")) and recorded.get("component", "project") == "project" \
                and "project_name" in recorded:
            raise AdoptError(f"this repository is a litscaffold project already ({PROJECT_ANSWERS}); use "
                             "`litscaffold add`, `list` or `update` here")
        raise AdoptError(f"{PROJECT_ANSWERS} of another copier template is here, and litscaffold's answers file needs "
                         f"that name: rename it (`git mv {PROJECT_ANSWERS} .copier-answers.other.yml`; copier takes "
                         "--answers-file), commit, and run adopt again")
    if dirty := gitops.changes(root):
        files = [path for _, path in dirty]
        more = f" and {len(files) - 3} more" if len(files) > 3 else ""
        raise AdoptError(f"uncommitted changes in {', '.join(files[:3])}{more}; commit or stash them first "
                         "(adopt adds its files in a commit of their own, on top of yours)")


class Adoption:
    """One adoption: `plan` decides everything and renders into a scratch folder; `apply` writes and commits."""

    def __init__(self, root: Path, source: TemplateSource, version: str, given: dict[str, list[str] | None]) -> None:
        self.root = root
        self.source = source
        self.version = version
        self.given = given
        self.answers: dict[str, Any] = {}
        self.registrations: list[Registration] = []
        self.networks: list[FoundClass] = []
        self.new_files: dict[str, str | bytes] = {}  # written by adopt itself: registrations, helpers, beside files
        self.merged: dict[str, str] = {}             # files of the repository's -> their merged text
        self.kept: list[str] = []                    # template paths where the repository keeps its own file
        self.cases: list[Case] = []
        self.notes: list[str] = []
        self.rendered: Path | None = None
        self.files: list[str] = []                   # what copier rendered (relative paths)
        self.readme: str | None = None               # the repository's own README

    # ---- deciding, before anything is written --------------------------------------------------------------

    def plan(self, scratch: Path) -> None:
        tracked = {p for p in gitops.read(self.root, "ls-files", "-z", "--", ".").split("\0") if p}
        self._check_layer_names()
        self._register()
        self.answers = self._answers(tracked)
        first = scratch / "template"
        render(self.source, first, self.answers, version=self.version, answers_file=PROJECT_ANSWERS)
        template = {p.relative_to(first).as_posix(): p.read_bytes() for p in sorted(first.rglob("*")) if p.is_file()}
        for relative in template:
            if relative != PROJECT_ANSWERS:
                self._place(relative, template)
        self._dependencies(template.get("pyproject.toml", b"").decode())
        self._readme()
        self.rendered = first
        if self.kept:  # again, with the kept paths recorded: copier leaves them out and the answers file lists them
            self.answers["kept_files"] = sorted(self.kept)
            self.rendered = scratch / "adopted"
            render(self.source, self.rendered, self.answers, version=self.version, answers_file=PROJECT_ANSWERS)
        self.files = sorted(p.relative_to(self.rendered).as_posix() for p in self.rendered.rglob("*") if p.is_file())
        for relative in [*self.new_files, *self.files]:
            if os.path.lexists(inside(self.root, relative)):
                raise AdoptError(f"{relative} is yours, and adopt would write one there; rename yours, commit, and "
                                 "run adopt again")
        self._note_ignored()

    def _check_layer_names(self) -> None:
        for name in LAYER_NAMES:
            if (self.root / name / "__init__.py").is_file():
                raise AdoptError(f"{name}/ is a package of yours, and the project has its own {name} (trainer.py, "
                                 f"predict.py, sweep.py and the tests import it): rename yours (`git mv {name} "
                                 f"my_{name}`, and its imports), commit, and run adopt again")
        if (self.root / "util.py").exists():
            raise AdoptError("util.py is yours, and the project's package util/ would hide it from `import util`: "
                             "rename yours (`git mv util.py my_util.py`, and its imports), commit, and run adopt again")

    def _register(self) -> None:
        """Find the classes, choose their names, write the modules that register them."""
        searched = sorted(set(python_files(self.root)) | {f for paths in self.given.values() if paths
                                                           for f in python_files(self.root, paths)})
        found, unreadable = find_classes(self.root, searched)
        self.notes += unreadable
        found = [_as_package_member(c) for c in found]
        for kind in KINDS:
            package = PACKAGE_OF[kind]
            taken = {"base", *(name for k, name in BUILTIN if k == kind)}
            taken |= {p.stem for p in (self.root / package).glob("*.py")} if (self.root / package).is_dir() else set()
            for cls in self._usable(found, kind):
                own = PurePosixPath(cls.path)
                in_place = (len(own.parts) == 2 and own.parts[0] == package and cls.module == f"{package}.{own.stem}"
                            and sum(c.path == cls.path and c.kind == kind for c in found) == 1)
                if in_place and _usable_name(own.stem, kind) and own.stem not in {n for k, n in BUILTIN if k == kind}:
                    self.registrations.append(Registration(cls, own.stem, cls.path, None))
                    continue
                name = choose_name(cls, taken)
                taken.add(name)
                path, text = f"{package}/{name}.py", registration_module(cls, name)
                self.registrations.append(Registration(cls, name, path, text))
                self.new_files[path] = text
        if not any(r.found.kind == "model" for r in self.registrations):
            where = ", ".join(self.given["model"] or []) or "the repository's tracked Python files"
            raise AdoptError(f"no LightningModule found in {where} (tests, docs and hidden folders are not searched); "
                             "pass the file or folder that defines yours with --models PATH")
        self._networks(found)
        for package, helper in SHADOW_MODULE.items():
            if (self.root / f"{package}.py").is_file():
                path = f"{package}/{helper}.py"
                self.new_files[path] = shadow_module(package, self.registrations)
                self.cases.append(Case(f"{package}.py", "kept", f"yours, as it is; the project's package {package}/ "
                                       f"takes the name and runs it from {path}, so `from {package} import ...` keeps "
                                       "working"))

    def _usable(self, found: list[FoundClass], kind: str) -> list[FoundClass]:
        """The classes of `kind` to register (in the given paths, if any); the others are noted."""
        wanted = self.given[kind]
        usable = []
        for cls in found:
            if cls.kind != kind or (wanted is not None and not _under(cls.path, wanted)):
                continue
            what = f"{cls.name} ({cls.path})"
            if cls.name.startswith("_") or cls.abstract or cls.parent_of_another:
                reason = "abstract" if cls.abstract else "private" if cls.name.startswith("_") else "a parent class"
                self.notes.append(f"{what}: not registered ({reason}); pass its file with --{kind}s PATH to add it")
                continue
            if cls.lightning == "pytorch_lightning":
                self.notes.append(f"{what} derives from pytorch_lightning, a separate copy of Lightning; trainer.py "
                                  "trains lightning.pytorch classes: import it as `import lightning.pytorch as pl`")
            usable.append(cls)
        return usable

    def _networks(self, found: list[FoundClass]) -> None:
        """Networks in the folders of the registered models, imported by model/_networks.py so flags can name them."""
        folders = {str(PurePosixPath(r.found.path).parent) for r in self.registrations if r.found.kind == "model"}
        names = [c.name for c in found if c.kind == "network"]
        self.networks = [c for c in found if c.kind == "network" and not c.name.startswith("_")
                         and names.count(c.name) == 1
                         and any(f in (".", "") or c.path.startswith(f"{f}/") for f in folders)]
        if self.networks:
            self.new_files[NETWORKS_MODULE] = networks_module(self.networks)

    def _answers(self, tracked: set[str]) -> dict[str, Any]:
        answers: dict[str, Any] = {"component": "project", "project_name": _project_name(self.root)}
        if any(p.startswith("tests/") for p in tracked) or os.path.lexists(self.root / "tests"):
            answers["tests_dir"] = TESTS_BESIDE
            self.cases.append(Case("tests/", "kept", f"yours, as they are; the project's tests are {TESTS_BESIDE}/ "
                                                     f"(`python -m pytest {TESTS_BESIDE}`)"))
        readmes = sorted(p.name for p in self.root.iterdir() if p.is_file() and p.name.lower().startswith("readme"))
        if readmes:
            answers["readme_file"] = README_BESIDE
            self.readme = "README.md" if "README.md" in readmes else readmes[0]
        for entry in OWN_ENTRY_POINTS:
            if entry in tracked:
                self.cases.append(Case(entry, "kept", "yours, as it is; trainer.py trains the classes registered "
                                                      "below"))
        return answers

    def _place(self, relative: str, template: dict[str, bytes]) -> None:
        """Where the template has a file: nothing of the repository's there (copier writes it), or theirs is kept:
        merged, or the template's beside it."""
        target = inside(self.root, relative)
        for parent in reversed(target.parents):
            if parent.is_relative_to(self.root) and parent != self.root and os.path.lexists(parent) \
                    and not parent.is_dir():
                shown = parent.relative_to(self.root).as_posix()
                raise AdoptError(f"{shown} is a file of yours where the project puts a folder ({relative}); rename "
                                 "yours, commit, and run adopt again")
        if not os.path.lexists(target):
            if relative == "pyproject.toml" and any((self.root / name).is_file() for name in PACKAGING):
                self.kept.append(relative)
                self.cases.append(Case(relative, "kept", "not written: setup.py builds your package, and a "
                                                         "pyproject.toml would take `pip install` over"))
            return
        if target.is_dir() and not target.is_symlink():
            raise AdoptError(f"{relative} is a folder of yours where the project puts a file; rename it, commit, and "
                             "run adopt again")
        if relative.endswith(".py"):
            raise AdoptError(f"{relative} is yours, and the project has its own {relative} (trainer.py, predict.py, "
                             "sweep.py and the tests rely on it): rename yours (`git mv`), commit, and run adopt again")
        self.kept.append(relative)
        if relative == "pyproject.toml":
            return  # its dependencies: _dependencies
        if relative in ownfiles.LINE_FILES:
            self._merge_lines(relative, template[relative].decode())
            return
        other = ownfiles.beside(relative)
        if os.path.lexists(inside(self.root, other)):
            raise AdoptError(f"{relative} and {other} are both yours; adopt would put the template's {relative} "
                             f"as {other}: rename that one, commit, and run adopt again")
        self.new_files[other] = template[relative]
        self.cases.append(Case(relative, "beside", f"yours, as it is; the template's is {other}"))

    def _text_of(self, relative: str) -> str | None:
        try:
            return (self.root / relative).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _merge_lines(self, relative: str, template_text: str) -> None:
        text = self._text_of(relative)
        if text is None:
            self.cases.append(Case(relative, "kept", "yours, as it is (not UTF-8 text: nothing merged)"))
            return
        rules = [line.strip() for line in template_text.splitlines() if line.strip() and not line.startswith("#")]
        unsafe = ownfiles.ignore_rules_hiding_tracked(self.root, rules) if relative == ".gitignore" else set()
        header = IGNORE_HEADER if relative == ".gitignore" else "added by litscaffold adopt"
        merged, added = ownfiles.merge_lines(text, template_text, header, unsafe)
        skipped = f"; not added, as they match files you track: {', '.join(sorted(unsafe))}" if unsafe else ""
        if added:
            self.merged[relative] = merged
            self.cases.append(Case(relative, "merged", f"{len(added)} rules appended{skipped}"))
        else:
            self.cases.append(Case(relative, "kept", f"yours, as it is (it has the template's rules){skipped}"))

    def _dependencies(self, template_pyproject: str) -> None:
        """The template's dependencies into every dependency list the repository has that can take them."""
        wanted = ownfiles.template_dependencies(template_pyproject) if template_pyproject else []
        if not wanted:
            return
        merged_somewhere = "pyproject.toml" not in self.kept  # the project's own pyproject.toml lists them
        if (self.root / "pyproject.toml").is_file() and "pyproject.toml" in self.kept:
            text = self._text_of("pyproject.toml")
            merged, added = ownfiles.merge_pyproject(text, wanted) if text is not None else (None, [])
            if merged is None:
                self.cases.append(Case("pyproject.toml", "kept", "yours, as it is (no [project] dependencies list "
                                                                 "to add to)"))
            else:
                merged_somewhere = True
                if added:
                    self.merged["pyproject.toml"] = merged
                self.cases.append(Case("pyproject.toml", "merged" if added else "kept",
                                       f"dependencies added: {', '.join(added)}" if added
                                       else "yours, as it is (it lists every dependency the project needs)"))
        requirements = self.root / "requirements.txt"
        if requirements.is_file() and (text := self._text_of("requirements.txt")) is not None:
            merged_text, added = ownfiles.merge_requirements_txt(text, wanted, MERGE_HEADER)
            merged_somewhere = True
            if added:
                self.merged["requirements.txt"] = merged_text
                self.cases.append(Case("requirements.txt", "merged", f"requirements added: {', '.join(added)}"))
        if not merged_somewhere:
            self.notes.append(f"add what the project needs where you list your dependencies: {', '.join(wanted)}")

    def _readme(self) -> None:
        readme = self.answers.get("readme_file")
        if readme is None or self.readme is None:
            return
        text = self._text_of(self.readme) if self.readme.endswith((".md", ".markdown")) else None
        if text is None:
            self.cases.append(Case(self.readme, "kept", f"yours, as it is; the project's guide is {readme}"))
            return
        self.merged[self.readme] = ownfiles.readme_section(text, readme_section(self, readme))
        self.cases.append(Case(self.readme, "merged", f"a section \"Training with litscaffold\" appended; the "
                                                      f"project's guide is {readme}"))

    def _note_ignored(self) -> None:
        """Files adopt writes that the repository's ignore rules match: committed all the same (by name), but a new
        file beside them needs `git add -f`."""
        paths = [*self.files, *self.new_files]
        proc = gitops.run("check-ignore", "-z", "--stdin", cwd=self.root, input="\0".join(paths), env=gitops.READ_ONLY)
        ignored = sorted({p.split("/")[0] for p in proc.stdout.split("\0") if p})
        if ignored:
            self.notes.append(f"your ignore rules match {', '.join(ignored)}: adopt commits its files there all the "
                              "same; a file you add there needs `git add -f`")

    # ---- writing --------------------------------------------------------------------------------------------

    def apply(self, tx: Transaction, scratch: Path) -> None:
        """Everything planned, then one commit (the transaction undoes all of it if anything fails)."""
        assert self.rendered is not None
        for relative in self.files:
            tx.move_in(self.rendered / relative, relative)
        for index, (relative, content) in enumerate(self.new_files.items()):
            staged = scratch / f"new-{index}"
            staged.write_bytes(content.encode() if isinstance(content, str) else content)
            tx.move_in(staged, relative)
        for relative, text in self.merged.items():
            tx.write(relative, text.encode("utf-8"))
        tx.commit(sorted({*self.files, *self.new_files, *self.merged}), self.message())

    def message(self) -> str:
        flags = ", ".join(f"{r.found.name} ({r.flag})" for r in self.registrations)
        return (f"Adopt litscaffold template {self.version}: the training layer beside this code\n\n"
                f"Registered: {flags}.\n")

    def report(self, *, dry_run: bool) -> Adopted:
        return Adopted(self.root, self.version, dry_run, str(self.answers.get("tests_dir", "tests")),
                       self.registrations, self.networks, self.cases,
                       sorted({*self.files, *self.new_files}), self.notes)


def readme_section(adoption: Adoption, guide: str) -> str:
    """The section appended to the repository's README.md."""
    rows = "\n".join(f"| `{r.flag}` | `{r.found.name}` ({r.found.path}) |" for r in adoption.registrations)
    model = next(r for r in adoption.registrations if r.found.kind == "model")
    dataset = next((r for r in adoption.registrations if r.found.kind == "dataset"), None)
    pair = f"--model {model.name}" + (f" --dataset {dataset.name}" if dataset else "")
    tests = str(adoption.answers.get("tests_dir", "tests"))
    return f"""## Training with litscaffold

`litscaffold adopt` added a training layer beside this code: `trainer.py` trains the classes below with flags from
their signatures, `predict.py` writes a run's predictions, `sweep.py` searches hyperparameters, and every run is
logged to TensorBoard. Its guide is [{guide}]({guide}).

| flag | class |
| --- | --- |
{rows}

```bash
python trainer.py --help {pair}      # every flag
python trainer.py {pair} --max_epochs 5
python -m pytest {tests} -m "not slow"   # the training layer's own tests
```"""


def _as_package_member(found: FoundClass) -> FoundClass:
    """A class in a file directly in the repository's model/ or data/ folder is imported as a module of the project's
    package there (model.net), once adopt makes that folder a package."""
    parts = PurePosixPath(found.path).parts
    if len(parts) == 2 and parts[0] in PACKAGE_OF.values() and found.search_path == parts[0]:
        return dataclasses.replace(found, module=f"{parts[0]}.{PurePosixPath(parts[1]).stem}", search_path="")
    return found


def _under(path: str, folders: list[str]) -> bool:
    return any(folder == "." or path == folder or path.startswith(f"{folder.rstrip('/')}/") for folder in folders)


def _usable_name(name: str, kind: str) -> bool:
    try:
        check_component_name(name, kind)
    except InvalidName:
        return False
    return True


def _project_name(root: Path) -> str:
    """The repository's folder name, when it makes a valid project name."""
    try:
        check_project_name(root.name)
    except InvalidName:
        return "adopted_project"
    return root.name
