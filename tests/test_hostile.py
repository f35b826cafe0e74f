"""Hostile input for every command: names, paths, crafted or corrupted answers files, damaged caches
and the git states users end up in. Each case: the exit code, one line that says what to do, and
the disk as it was (the project, and the folder around it, where a path traversal would land)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import ADDED_FILE, assert_one_line_error, run_cli
from hostile_helpers import (
    PROJECT,
    cherry_pick_in_progress,
    commit_all,
    conflicted_merge,
    failing_ref_hook,
    failing_signing,
    git,
    merge_in_progress,
    rebase_in_progress,
    state,
)

from litscaffold import __version__

COMPONENT = ".copier-answers.model-my_net.yml"


@pytest.fixture
def seed(rendered_with_model: Path) -> Path:
    """A current project with an added model (the session's shared render; copied before any change)."""
    return rendered_with_model


@pytest.fixture
def world(seed: Path, tmp_path: Path) -> Path:
    shutil.copytree(seed, tmp_path / PROJECT, symlinks=True)
    return tmp_path


@pytest.fixture
def old_world(old_project: Path) -> Path:
    """The project made with the older template (conftest), whose update has work to do."""
    world = old_project.parent / "world"
    world.mkdir()
    old_project.rename(world / PROJECT)
    return world


# ---- setups: each changes the world and may return extra environment ----------------------------

Setup = Callable[[Path], "dict[str, str] | None"]


def _answers(world: Path, name: str = COMPONENT) -> Path:
    return world / PROJECT / name


def craft(name: object, kind: object = "model", file: str = ".copier-answers.model-mynet.yml",
          commit: bool = True) -> Setup:
    """Someone else's project: a committed component answers file naming `name`, and a victim file
    where `model/<name>.py` would land."""
    def setup(world: Path) -> None:
        (world / "victim.py").write_text("precious\n")
        answers = yaml.safe_load(_answers(world).read_text())
        answers.update(component=kind, name=name)
        _answers(world, file).write_text(yaml.safe_dump(answers))
        if commit:
            commit_all(world / PROJECT, "crafted")
    return setup


def corrupt(raw: bytes, file: str = COMPONENT) -> Setup:
    def setup(world: Path) -> None:
        _answers(world, file).write_bytes(raw)
        commit_all(world / PROJECT, "corrupted")
    return setup


def set_answer(key: str, value: str, file: str = ".copier-answers.yml") -> Setup:
    def setup(world: Path) -> None:
        path = _answers(world, file)
        lines = [f"{key}: {value}" if line.startswith(f"{key}:") else line for line in path.read_text().splitlines()]
        path.write_text("\n".join(lines) + "\n")
        commit_all(world / PROJECT, f"set {key}")
    return setup


def in_git(action: Callable[[Path], None]) -> Setup:
    def setup(world: Path) -> None:
        action(world / PROJECT)
    return setup


def plain_repo(action: Callable[[Path], None]) -> Setup:
    """A repository of the user's (not a project) with one commit, then `action` in it."""
    def setup(world: Path) -> None:
        repo = world / "repo"
        repo.mkdir()
        git(repo, "init", "-q")
        (repo / "README.md").write_text("mine\n")
        commit_all(repo, "first")
        action(repo)
    return setup


def symlink_out(folder: str) -> Setup:
    """`folder` of the project becomes a symlink to a folder beside the project (committed that way)."""
    def setup(world: Path) -> None:
        outside = world / "outside"
        shutil.move(str(world / PROJECT / folder), outside)
        (world / PROJECT / folder).symlink_to(Path("..") / "outside")
        commit_all(world / PROJECT, "symlinked")
    return setup


def module_symlink_out(world: Path) -> None:
    (world / "victim.py").write_text("precious\n")
    module = world / PROJECT / "model" / "my_net.py"
    module.unlink()
    module.symlink_to(world / "victim.py")
    commit_all(world / PROJECT, "module is a link")


def stale_index_lock(world: Path) -> None:
    (world / PROJECT / ".git" / "index.lock").write_text("")


def no_commit_yet(world: Path) -> None:
    shutil.rmtree(world / PROJECT / ".git")
    git(world / PROJECT, "init", "-q")


def cache_is_a_file(world: Path) -> dict[str, str]:
    (world / "cachefile").write_text("not a folder\n")
    return {"LITSCAFFOLD_CACHE_DIR": str(world / "cachefile")}


def cache_unwritable(world: Path) -> dict[str, str]:
    return {"LITSCAFFOLD_CACHE_DIR": "/proc/litscaffold-cache"}


def untracked_hidden(world: Path) -> None:
    """status.showUntrackedFiles=no: `git status` shows nothing, yet the file is there."""
    git(world / PROJECT, "config", "status.showUntrackedFiles", "no")
    (world / PROJECT / "notes.txt").write_text("mine, not committed\n")


def ignored_where_template_adds(world: Path) -> None:
    root = world / PROJECT
    (root / ".git" / "info" / "exclude").write_text(f"{ADDED_FILE}\n")
    (root / ADDED_FILE).write_text("my own launcher, ignored by git\n")


def folder_where_template_adds(world: Path) -> None:
    root = world / PROJECT
    (root / ADDED_FILE).mkdir()
    (root / ADDED_FILE / "mine.txt").write_text("tracked, in a folder\n")
    commit_all(root, "a folder named like the template's new file")


def immutable_trainer(world: Path) -> None:
    trainer = world / PROJECT / "trainer.py"
    if subprocess.run(["chattr", "+i", str(trainer)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (root ignores file modes)")


def detached(world: Path) -> None:
    git(world / PROJECT, "checkout", "-q", "--detach")


def nothing(world: Path) -> None:
    return None


# ---- the battery ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    setup: Setup
    args: tuple[str, ...]
    code: int
    fragment: str
    old: bool = False                   # the older project (update has work to do)
    cwd: str = PROJECT
    env: dict[str, str] = field(default_factory=dict)


TRAVERSAL = "../../victim"
CRAFTED = [  # (id, setup, fragment): component answers files that cannot be trusted
    ("traversal", craft(TRAVERSAL), "is damaged"),
    ("absolute", craft("/tmp/victim"), "is damaged"),
    ("dotted", craft("a.b"), "is damaged"),
    ("kind", craft("mynet", kind="../x"), "neither model nor dataset"),
    ("not-its-file", craft("mlp"), "whose answers file is"),
    ("uppercase", craft("MyNet", file=".copier-answers.model-MyNet.yml"), "is damaged"),
    ("private", craft("_mynet", file=".copier-answers.model-_mynet.yml"), "is damaged"),
    ("number", craft(12), "is damaged"),
    ("yaml", corrupt(b"component: model\nname: [unclosed\n"), "not valid YAML at line"),
    ("utf8", corrupt(b"component: model\nname: \xff\xfe\n"), "not UTF-8"),
    ("list", corrupt(b"- component\n- model\n"), "does not hold answers"),
]
CONFLICT = 3  # a file of the user's where the template writes one is a conflict (README: exit codes)
CASES: list[Case] = []
for cid, setup, fragment in CRAFTED:  # every command on the path traversal, two on each other damage
    commands = [("list",), ("check",), ("update",), ("remove", "model", "my_net")]
    for args in commands if cid == "traversal" else commands[1:3]:
        CASES.append(Case(f"{cid}-{args[0]}", setup, args, 1, fragment))
CASES += [
    Case("traversal-remove-force", craft(TRAVERSAL), ("remove", "model", TRAVERSAL, "--force"), 1, "is damaged"),
    Case("traversal-list-json", craft(TRAVERSAL), ("list", "--json"), 1, "is damaged"),
    Case("traversal-dry-run", craft(TRAVERSAL), ("update", "--dry-run"), 1, "is damaged"),
    Case("traversal-uncommitted", craft(TRAVERSAL, commit=False), ("check",), 1, "is damaged"),
    # names typed on the command line
    Case("name-private", nothing, ("add", "model", "_private"), 2, "starts with '_'"),
    Case("name-long", nothing, ("add", "model", "n" * 300), 2, "characters long"),
    Case("name-traversal", nothing, ("add", "model", "../../victim"), 2, "not a module name"),
    Case("name-slash", nothing, ("add", "dataset", "a/b"), 2, "not a module name"),
    Case("name-unicode", nothing, ("add", "model", "ünï"), 2, "not a module name"),
    Case("name-newline", nothing, ("add", "model", "net\nx"), 2, "not a module name"),
    Case("remove-traversal-name", nothing, ("remove", "model", TRAVERSAL), 2, "no model named"),
    Case("update-only-traversal", nothing, ("update", "--only", f"model:{TRAVERSAL}"), 2, "no such part"),
    # the project's own answers file
    Case("project-yaml", corrupt(b"_commit: v0.1.1\n  bad: [indent\n", ".copier-answers.yml"), ("add", "model", "x"),
         1, ".copier-answers.yml is not valid YAML at line"),
    Case("project-yaml-list", corrupt(b"a: [\n", ".copier-answers.yml"), ("list",), 1, "not valid YAML at line"),
    Case("project-utf8", corrupt(b"_commit: \xff\n", ".copier-answers.yml"), ("check",), 1, "not UTF-8"),
    Case("unknown-version-add", set_answer("_commit", "v0.0.3"), ("add", "model", "x"), 1, "does not hold"),
    Case("unknown-version-remove", set_answer("_commit", "v0.0.3", COMPONENT), ("remove", "model", "my_net"), 1,
         "does not hold"),
    Case("unknown-version-update", set_answer("_commit", "v0.0.3"), ("update",), 1, "does not hold"),
    Case("unknown-version-list", set_answer("_commit", "v0.0.3", COMPONENT), ("list",), 1, "does not hold"),
    Case("unknown-version-check", set_answer("_commit", "v0.0.3"), ("check",), 1, "does not hold"),
    Case("garbage-version-update", set_answer("_commit", "'--upload-pack=x'"), ("update",), 1, "records no template"),
    # paths leading out through symlinks
    Case("model-folder-symlinked-out", symlink_out("model"), ("add", "model", "x"), 1, "outside the project"),
    Case("data-folder-symlinked-out", symlink_out("data"), ("add", "dataset", "x"), 1, "outside the project"),
    Case("module-symlinked-out", module_symlink_out, ("remove", "model", "my_net", "--force"), 1,
         "outside the project"),
    Case("update-through-symlink", symlink_out("scripts"), ("update",), 1, "outside the project", old=True),
    # git states where git would refuse our commit
    Case("merge-add", in_git(merge_in_progress), ("add", "model", "x"), 1, "a merge is in progress"),
    Case("merge-remove", in_git(merge_in_progress), ("remove", "model", "my_net"), 1, "a merge is in progress"),
    Case("merge-update", in_git(merge_in_progress), ("update",), 1, "a merge is in progress", old=True),
    Case("merge-dry-run", in_git(merge_in_progress), ("update", "--dry-run"), 1, "a merge is in progress", old=True),
    Case("own-conflict-update", in_git(conflicted_merge), ("update",), 1, "git merge --abort", old=True),
    Case("rebase-add", in_git(rebase_in_progress), ("add", "model", "x"), 1, "a rebase is in progress"),
    Case("rebase-update", in_git(rebase_in_progress), ("update",), 1, "a rebase is in progress", old=True),
    Case("cherry-pick-add", in_git(cherry_pick_in_progress), ("add", "dataset", "x"), 1, "cherry-pick"),
    Case("signing-add", in_git(failing_signing), ("add", "model", "x"), 1, "git refused the commit"),
    Case("signing-remove", in_git(failing_signing), ("remove", "model", "my_net"), 1, "git refused the commit"),
    Case("signing-update", in_git(failing_signing), ("update",), 1, "git refused the commit", old=True),
    Case("hook-add", in_git(failing_ref_hook), ("add", "model", "x"), 1, "git refused the commit"),
    Case("hook-remove", in_git(failing_ref_hook), ("remove", "model", "my_net"), 1, "git refused the commit"),
    Case("hook-update", in_git(failing_ref_hook), ("update",), 1, "git refused the commit", old=True),
    Case("index-lock-add", stale_index_lock, ("add", "model", "x"), 1, "rm "),
    Case("index-lock-remove", stale_index_lock, ("remove", "model", "my_net"), 1, "index.lock exists"),
    Case("index-lock-update", stale_index_lock, ("update",), 1, "index.lock exists", old=True),
    Case("no-commit-update", no_commit_yet, ("update",), 1, "no commit yet", old=True),
    # user files git does not show, or ignores, where the new version writes
    Case("untracked-hidden-update", untracked_hidden, ("update",), 1, "uncommitted changes in notes.txt", old=True),
    Case("ignored-update", ignored_where_template_adds, ("update",), CONFLICT, ADDED_FILE, old=True),
    Case("ignored-dry-run", ignored_where_template_adds, ("update", "--dry-run"), CONFLICT, ADDED_FILE, old=True),
    Case("folder-update", folder_where_template_adds, ("update",), CONFLICT, f"{ADDED_FILE} (a folder)", old=True),
    Case("immutable-update", immutable_trainer, ("update",), 1, "trainer.py", old=True),
    # caches that cannot be used
    Case("cache-file", cache_is_a_file, ("add", "model", "x"), 1, "is a file"),
    Case("cache-unwritable", cache_unwritable, ("add", "model", "x"), 1, "LITSCAFFOLD_CACHE_DIR"),
    Case("cache-file-remove", cache_is_a_file, ("remove", "model", "my_net"), 1, "is a file"),
    # new-project
    Case("np-newline-description", nothing, ("new-project", "p", "--defaults", "-d", "description=two\nlines"), 2,
         "control character", cwd="."),
    Case("np-tab-author", nothing, ("new-project", "p", "--defaults", "-d", "author_name=a\tb"), 2,
         "control character", cwd="."),
    Case("np-private-slug", nothing, ("new-project", "p", "--defaults", "-d", "project_slug=_p"), 2,
         "not a module name", cwd="."),
    Case("np-long-name", nothing, ("new-project", "p" * 300, "--defaults"), 2, "characters long", cwd="."),
    Case("np-newline-name", nothing, ("new-project", "p\nq", "--defaults"), 2, "control character", cwd="."),
    Case("np-dest-under-file", in_git(lambda root: None), ("new-project", "p", "--defaults", "--dest",
                                                           "proj/README.md/sub"), 1, "is a file", cwd="."),
    Case("np-force-into-merge", plain_repo(merge_in_progress), ("new-project", "p", "--defaults", "--force",
                                                                "--dest", "repo"), 1, "a merge is in progress", cwd="."),
    Case("np-force-into-signing", plain_repo(failing_signing), ("new-project", "p", "--defaults", "--force",
                                                                "--dest", "repo"), 1, "git refused the commit", cwd="."),
    Case("np-cache-file", cache_is_a_file, ("new-project", "p", "--defaults"), 1, "is a file", cwd="."),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_in_one_line_and_the_disk_is_as_it_was(case: Case, request: pytest.FixtureRequest) -> None:
    world: Path = request.getfixturevalue("old_world" if case.old else "world")
    env = case.setup(world) or {}
    before = state(world)
    try:
        line = assert_one_line_error(run_cli(*case.args, cwd=world / case.cwd, env=env), case.code)
    finally:
        subprocess.run(["chattr", "-i", str(world / PROJECT / "trainer.py")], capture_output=True)
    assert case.fragment in line, line
    assert "internal error" not in line
    assert state(world) == before


# ---- hostile situations that end well --------------------------------------------------------------

def test_detached_head_add_commits_there(world: Path) -> None:
    root = world / PROJECT
    detached(world)
    head = git(root, "rev-parse", "HEAD").strip()
    run_cli("add", "model", "x", cwd=root, check=True)
    assert git(root, "rev-parse", "HEAD~1").strip() == head
    assert git(root, "status", "--porcelain") == ""


def test_add_without_a_commit_writes_and_says_not_committed(world: Path) -> None:
    root = world / PROJECT
    no_commit_yet(world)
    proc = run_cli("add", "model", "x", cwd=root, check=True)
    assert "not committed" in proc.stdout and (root / "model" / "x.py").is_file()


def test_untracked_user_files_are_never_committed_by_add(world: Path) -> None:
    root = world / PROJECT
    untracked_hidden(world)
    run_cli("add", "model", "x", cwd=root, check=True)
    assert "notes.txt" not in git(root, "show", "--name-only", "HEAD")
    assert (root / "notes.txt").read_text() == "mine, not committed\n"


@pytest.mark.parametrize("damage", ["objects", "repo-is-a-file", "git-is-a-file", "tag-deleted"])
def test_a_damaged_cache_heals(world: Path, tmp_path: Path, damage: str) -> None:
    from litscaffold.template import TemplateSource

    cache = tmp_path / "cache"
    env = {"LITSCAFFOLD_CACHE_DIR": str(cache)}
    run_cli("add", "model", "first", cwd=world / PROJECT, env=env, check=True)
    repo = TemplateSource(root=cache).repo
    if damage == "objects":
        for pack in (repo / ".git" / "objects" / "pack").iterdir():
            pack.unlink()
    elif damage == "tag-deleted":
        git(repo, "tag", "-d", f"v{__version__}")
    elif damage == "repo-is-a-file":
        shutil.rmtree(repo)
        repo.write_text("oops\n")
    else:
        shutil.rmtree(repo / ".git")
        (repo / ".git").write_text("gitdir: /nowhere\n")
    proc = run_cli("add", "model", "second", cwd=world / PROJECT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (world / PROJECT / "model" / "second.py").is_file()


def test_core_autocrlf_does_not_dirty_or_break_add(world: Path) -> None:
    root = world / PROJECT
    git(root, "config", "core.autocrlf", "input")
    run_cli("add", "dataset", "sales", cwd=root, check=True)
    assert git(root, "status", "--porcelain") == ""


def test_names_from_hypothesis_are_refused_or_stay_inside(tmp_path: Path) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from litscaffold.errors import InvalidName
    from litscaffold.names import check_component_name
    from litscaffold.safety import inside

    root = tmp_path / "p"
    root.mkdir()

    @settings(max_examples=400, deadline=None)
    @given(st.one_of(st.text(), st.from_regex(r"[a-z_.\/]{1,12}", fullmatch=True)), st.sampled_from(["model", "dataset"]))
    def check(name: str, kind: str) -> None:
        try:
            check_component_name(name, kind)
        except InvalidName as error:
            assert "\n" not in error.message
            return
        assert name.isidentifier() and not name.startswith("_") and len(name) <= 64
        assert inside(root, f"{kind}/{name}.py").resolve().is_relative_to(root.resolve())

    check()


def test_answer_values_from_hypothesis_render_valid_toml_or_are_refused(tmp_path: Path) -> None:
    import tomllib
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from litscaffold.errors import UsageError
    from litscaffold.render import render
    from litscaffold.scaffold import _check_rendered, parse_data
    from litscaffold.template import TemplateSource, current_version

    source = TemplateSource().ensure()
    counter = iter(range(10**6))

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.text(min_size=1, max_size=30), st.sampled_from(["description", "author_name"]))
    def check(value: str, key: str) -> None:
        try:
            data = parse_data([f"{key}={value}"])
        except UsageError as error:
            assert any(ord(c) < 32 or ord(c) == 127 for c in value) and "\n" not in error.message
            return
        dst = tmp_path / f"r{next(counter)}"
        render(source, dst, {**data, "component": "project", "project_name": "p"}, version=current_version(),
               answers_file=".copier-answers.yml")
        _check_rendered(dst)
        parsed = tomllib.loads((dst / "pyproject.toml").read_text())["project"]
        rendered = parsed["description"] if key == "description" else parsed["authors"][0]["name"]
        assert rendered == value

    check()


def test_a_refused_first_commit_leaves_no_project_and_an_empty_folder_empty(tmp_path: Path) -> None:
    """Failing signing (global config) makes the first commit fail: the empty folder stays empty."""
    config = tmp_path / "gitconfig"
    config.write_text("[commit]\n\tgpgsign = true\n[gpg]\n\tprogram = /bin/false\n")
    (tmp_path / "empty").mkdir()
    env = {"GIT_CONFIG_GLOBAL": str(config)}
    line = assert_one_line_error(run_cli("new-project", "p", "--defaults", "--dest", "empty", cwd=tmp_path, env=env), 1)
    assert "git refused the commit" in line and list((tmp_path / "empty").iterdir()) == []
    line = assert_one_line_error(run_cli("new-project", "p", "--defaults", cwd=tmp_path, env=env), 1)
    assert "no project was created" in line and not (tmp_path / "p").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "gitconfig"]


def _full_disk_at(limit: int):
    """No file may grow past `limit` bytes: writes fail as on a full disk (EFBIG instead of ENOSPC)."""
    def limit_writes() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_writes


@pytest.mark.parametrize(("args", "old"), [(("add", "model", "x"), False), (("remove", "model", "my_net", "--force"), False),
                                           (("update",), True)], ids=["add", "remove", "update"])
def test_a_full_disk_leaves_the_project_as_it_was_or_the_change_whole(args: tuple[str, ...], old: bool,
                                                                       request: pytest.FixtureRequest) -> None:
    import sys

    world: Path = request.getfixturevalue("old_world" if old else "world")
    root = world / PROJECT
    failed = 0
    for limit in (2048, 16384):
        before = state(world)
        proc = subprocess.run([sys.executable, "-m", "litscaffold", *args], cwd=root, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, preexec_fn=_full_disk_at(limit), timeout=300)
        if proc.returncode == 0:
            break
        failed += 1
        line = assert_one_line_error(proc, 1)
        assert "internal error" not in line
        assert state(world) == before, (limit, line)
    assert failed >= 1
