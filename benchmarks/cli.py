"""How long the litscaffold commands take, against plain copier on the same template.

    python benchmarks/cli.py [--repeats 7]

Prints a table of median wall times (each command a fresh subprocess, as a user runs it) and the
targets they are held to. Uses a private cache and HOME so it neither reads nor changes yours.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_of(repeats: int, run: Callable[[int], float]) -> float:
    run(-1)  # warm-up: file-system caches, the template cache repository
    return statistics.median(run(i) for i in range(repeats))


class Bench:
    def __init__(self, work: Path, repeats: int) -> None:
        from litscaffold.snapshot import snapshot
        from litscaffold.template import TemplateSource

        self.work, self.repeats = work, repeats
        home = work / "home"
        home.mkdir()
        bundle = work / "template.bundle"
        snapshot(root=REPO, bundle=bundle)
        self.env = {**os.environ, "HOME": str(home), "LITSCAFFOLD_CACHE_DIR": str(home / ".cache" / "ls"),
                    "LITSCAFFOLD_TEMPLATE_BUNDLE": str(bundle), "GIT_AUTHOR_NAME": "b",
                    "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
        os.environ.update(self.env)
        self.source = TemplateSource(bundle=bundle).ensure()
        self.cli = [sys.executable, "-m", "litscaffold"]
        self.rows: list[tuple[str, float, str]] = []

    def fresh(self, label: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.work))
        return path

    def help(self) -> None:
        seconds = median_of(self.repeats, lambda i: timed([*self.cli, "--help"], self.work, self.env))
        self.rows.append(("litscaffold --help", seconds, "<= 0.15 s"))

    def new_project(self) -> None:
        from litscaffold.template import current_version, tag_of

        def ours(i: int) -> float:
            return timed([*self.cli, "new-project", "demo", "--defaults"], self.fresh("ours"), self.env)

        def plain(i: int) -> float:
            dst = self.fresh("plain") / "demo"
            return timed([sys.executable, "-m", "copier", "copy", "--defaults", "--quiet", "--vcs-ref", tag_of(current_version()),
                          "-d", "project_name=demo", str(self.source.repo), str(dst)], self.work, self.env)

        copier_s = median_of(self.repeats, plain)
        ours_s = median_of(self.repeats, ours)
        self.rows.append(("copier copy (same template)", copier_s, "reference"))
        self.rows.append(("litscaffold new-project", ours_s, f"<= 1.1x copier: x{ours_s / copier_s:.2f}"))

    def add_model(self) -> None:
        from litscaffold.template import current_version, tag_of

        base = self.fresh("addbase")
        subprocess.run([*self.cli, "new-project", "demo", "--defaults"], cwd=base, env=self.env, check=True,
                       capture_output=True)

        def run(i: int) -> float:
            project = self.fresh("add") / "demo"
            shutil.copytree(base / "demo", project)
            return timed([*self.cli, "add", "model", "net", "--blueprint", "convnet"], project, self.env)

        def plain(i: int) -> float:  # copier alone rendering the same component, for reference
            return timed([sys.executable, "-m", "copier", "copy", "--defaults", "--quiet", "--vcs-ref",
                          tag_of(current_version()), "-d", "component=model", "-d", "name=net", "-d",
                          "blueprint=convnet", "-a", ".copier-answers.model-net.yml", str(self.source.repo),
                          str(self.fresh("plainadd"))], self.work, self.env)

        self.rows.append(("copier copy (same component)", median_of(self.repeats, plain), "reference"))
        self.rows.append(("litscaffold add model", median_of(self.repeats, run), "<= 0.6 s"))

    def print(self) -> None:
        print(f"{'command':32} {'median s':>9}  target")
        for label, seconds, target in self.rows:
            print(f"{label:32} {seconds:9.3f}  {target}")


def bench_update(bench: Bench) -> None:
    """`litscaffold update` of a project with two added components, from an older template version
    (a changed wiring line, a new file, a dropped file, a changed component line) to the current one;
    each run on a fresh copy of the same committed project."""
    from litscaffold.components import add_component
    from litscaffold.project import Project
    from litscaffold.scaffold import new_project
    from litscaffold.snapshot import snapshot
    from litscaffold.template import TemplateSource, current_version

    old = bench.work / "old-template"
    shutil.copytree(REPO / "template", old / "template", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(REPO / "copier.yml", old / "copier.yml")
    trainer = next((old / "template" / "project").glob("trainer.py*"))
    trainer.write_text(trainer.read_text().replace("\n", "\n# wording of the old template\n", 1))
    for added in (old / "template" / "project" / "scripts").glob("*"):
        added.unlink()
    (old / "template" / "project" / "OLD.md").write_text("dropped by the next version\n")
    wrapper = old / "template" / "model" / "model" / "{{name}}.py.jinja"
    wrapper.write_text("# old component header\n" + wrapper.read_text())
    bundle = bench.work / "history.bundle"
    snapshot(root=old, bundle=bundle, version="0.0.1")
    snapshot(root=REPO, bundle=bundle, version=current_version())
    home = bench.work / "update-home"
    env = {**bench.env, "HOME": str(home), "LITSCAFFOLD_CACHE_DIR": str(home / ".cache" / "ls"),
           "LITSCAFFOLD_TEMPLATE_BUNDLE": str(bundle)}
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        source = TemplateSource(bundle=bundle)
        base = bench.fresh("update-base") / "demo"
        new_project("demo", base, version="0.0.1", source=source)
        add_component(Project(base), "model", "net", "convnet", source=source)
        add_component(Project(base), "dataset", "sales", "csv", source=source)
    finally:
        os.environ.clear()
        os.environ.update(saved)

    def run(i: int) -> float:
        project = bench.fresh("update") / "demo"
        shutil.copytree(base, project, symlinks=True)
        return timed([*bench.cli, "update"], project, env)

    bench.rows.append(("litscaffold update (project + 2)", median_of(bench.repeats, run), "<= 3 s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), args.repeats)
        bench.help()
        bench.new_project()
        bench.add_model()
        bench_update(bench)
        bench.print()


if __name__ == "__main__":
    main()
