"""What the generated sweep.py costs over training the same runs by hand, and what a second worker buys.

    python benchmarks/sweep.py [--trials 8] [--repeats 1]

Renders a fresh project from this repository's template as it is on disk (private HOME, cache and template
bundle) and trains the same TRIALS tiny runs three ways, each run a fresh `python trainer.py` process:

* by hand: `python trainer.py --hidden H <flags>` for each H, one after another (what a user does today);
* `python sweep.py --sampler grid --hidden H1,...,Hn <flags> --workers 1`: the same runs as one study;
* the same sweep with `--workers 2`.

The grid sampler makes the sweep train exactly the runs trained by hand (one per H). Each trial is a
`python trainer.py` process in both cases, so the sweep's overhead per trial is the study's own work (Optuna's
import in the worker, the SQLite study, asking and telling, reading the trial's result) plus the worker start:
(sweep with 1 worker - by hand) / TRIALS, printed in seconds and relative to a run by hand.
Targets (issue 10 point 5): at most 10% per trial; 2 workers at least 1.6x faster than 1 on 2 cores.
Every run gets OMP_NUM_THREADS=MKL_NUM_THREADS=1, so two workers do not fight over the cores inside a run.
Wall times on a shared machine move with its other load: --repeats N keeps the best of N for each way.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scaffold import render_project  # benchmarks/scaffold.py

FLAGS = ["--max_epochs", "2", "--limit_train_batches", "4", "--limit_val_batches", "2", "--limit_test_batches", "2",
         "--enable_progress_bar", "false", "--enable_model_summary", "false", "--early_stopping_patience", "none"]


def run(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Wall time of a subprocess; its output goes to log (shown when it fails)."""
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{log.read_text()[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    hidden = [str(4 + i) for i in range(args.trials)]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as scratch:
        work = Path(scratch)
        project, env = render_project(work, "bench", threads=1)
        best: dict[str, float] = {}
        for repeat in range(args.repeats):
            save_dir = work / f"logs-{repeat}"
            by_hand = sum(run([sys.executable, "trainer.py", "--save_dir", str(save_dir), "--name", "by-hand",
                               "--hidden", h, *FLAGS], project, env, work / f"hand-{repeat}-{h}.log") for h in hidden)
            sweeps = {}
            for workers in (1, 2):
                sweeps[workers] = run([sys.executable, "sweep.py", "--save_dir", str(save_dir), "--study",
                                       f"w{workers}", "--sampler", "grid", "--workers", str(workers), "--hidden",
                                       ",".join(hidden), *FLAGS], project, env, work / f"sweep-{repeat}-{workers}.log")
                trials = len([p for p in (save_dir / f"w{workers}").glob("*/run.json")])
                if trials != args.trials:
                    sys.exit(f"the sweep with {workers} worker(s) trained {trials} runs, not {args.trials}")
            for key, seconds in (("by hand", by_hand), ("1 worker", sweeps[1]), ("2 workers", sweeps[2])):
                best[key] = min(best.get(key, float("inf")), seconds)
    per_run = best["by hand"] / args.trials
    overhead = (best["1 worker"] - best["by hand"]) / args.trials
    speedup = best["1 worker"] / best["2 workers"]
    print(f"{args.trials} tiny runs (best of {args.repeats}), wall time on {os.cpu_count()} cores:")
    print(f"  trainer.py one after another  {best['by hand']:7.1f} s   ({per_run:.2f} s per run)")
    print(f"  sweep.py --workers 1          {best['1 worker']:7.1f} s")
    print(f"  sweep.py --workers 2          {best['2 workers']:7.1f} s")
    verdict = "ok" if overhead <= 0.10 * per_run else "MISSED"
    print(f"overhead per trial: {overhead:+.2f} s ({overhead / per_run:+.1%} of a run; target <= +10%: {verdict})")
    verdict = "ok" if speedup >= 1.6 else "MISSED"
    print(f"2 workers vs 1: {speedup:.2f}x faster (target >= 1.6x: {verdict})")


if __name__ == "__main__":
    main()
