"""Does the default run converge? The default `python trainer.py` against a 200-epoch run without early stopping.

    python benchmarks/quality.py [--seeds 42 1 2] [--threads 2]

Renders a fresh project from this repository's template as it is on disk (private HOME, cache and template
bundle) and trains the default model (deep_normal) on the embedded data (synthetic_regression), once per seed:

* default: `python trainer.py --seed S`, exactly what a new user types;
* 200 epochs: `python trainer.py --seed S --max_epochs 200 --early_stopping_patience none`.

For each run it prints the wall and CPU time, the epochs trained, the best `loss/val` (read back from the run's
TensorBoard event files), and for the best checkpoint (the one predict.py and the notebook use): the RMSE of
the predicted mean against the true function -0.5 + 1.3 x + 3 cos(0.5 x) on 2000 evenly spaced x over the
data's range [-10, 10], and the share of 20000 fresh samples (a generator seed the training data never used)
that fall within ±1σ and ±2σ of the predicted Normal (a calibrated model: 68.3% and 95.4%). The target of
issue 13: the default run's best `loss/val` within 0.05 of the 200-epoch run's, in well under a minute.
About 2-3 minutes per seed on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scaffold import render_project  # benchmarks/scaffold.py

EVALUATE = r'''
import json, math, sys
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from model import MODELS
from util import runs

run_dir = runs.find_run(sys.argv[1], runs.DEFAULT_SAVE_DIR)
info = runs.read_run_info(run_dir)
model = MODELS[info["model"]].load_from_checkpoint(runs.best_checkpoint(run_dir), map_location="cpu", weights_only=True).eval()
events = EventAccumulator(str(run_dir))
events.Reload()
val = [event.value for event in events.Scalars("loss/val")]

def truth(x):
    return -0.5 + 1.3 * x + 3 * torch.cos(0.5 * x)

with torch.inference_mode():
    grid = torch.linspace(-10, 10, 2000).reshape(-1, 1)
    rmse = float((model(grid).mean - truth(grid)).pow(2).mean().sqrt())
    generator = torch.Generator().manual_seed(123456)  # the training data uses data_seed 0
    x = torch.rand(20000, 1, generator=generator) * 20 - 10
    y = truth(x) + (torch.sin(0.4 * x) + 1) * torch.randn(20000, 1, generator=generator)
    predicted = model(x)
    z = ((y - predicted.mean) / predicted.stddev).abs()
print(json.dumps({"best_val": min(val), "epochs": len(val), "rmse": rmse,
                  "cover1": float((z <= 1).float().mean()), "cover2": float((z <= 2).float().mean())}))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="Training seeds (42 is the default).")
    parser.add_argument("--threads", type=int, default=0, help="OMP/MKL threads per run (0: torch's default).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        project, env = render_project(work, "quality", args.threads)
        (work / "evaluate.py").write_text(EVALUATE)
        rows = []
        for seed in args.seeds:
            for label, extra in (("default", []), ("200 epochs", ["--max_epochs", "200",
                                                               "--early_stopping_patience", "none"])):
                version = f"{label.replace(' ', '-')}-seed{seed}"
                start, cpu_start = time.perf_counter(), children_cpu()
                run([sys.executable, "trainer.py", "--seed", str(seed), "--version", version,
                     "--enable_progress_bar", "false", *extra], project, env)
                seconds, cpu = time.perf_counter() - start, children_cpu() - cpu_start
                measured = json.loads(run([sys.executable, str(work / "evaluate.py"),
                                           str(project / "logs" / "deep_normal-synthetic_regression" / version)],
                                          project, {**env, "PYTHONPATH": str(project)}).splitlines()[-1])
                rows.append((seed, label, seconds, cpu, measured))
    print(f"\n{'seed':>5} {'run':<11} {'wall s':>7} {'CPU s':>6} {'epochs':>6} {'best loss/val':>13} {'RMSE mean':>9} "
          f"{'±1σ cover':>9} {'±2σ cover':>9}")
    for seed, label, seconds, cpu, m in rows:
        print(f"{seed:>5} {label:<11} {seconds:>7.1f} {cpu:>6.1f} {m['epochs']:>6} {m['best_val']:>13.4f} {m['rmse']:>9.3f} "
              f"{m['cover1']:>9.1%} {m['cover2']:>9.1%}")
    for seed in args.seeds:
        default, long = (m for s, _, _, _, m in rows if s == seed)
        gap = default["best_val"] - long["best_val"]
        print(f"seed {seed}: default best loss/val is {gap:+.4f} from the 200-epoch run's "
              f"({'within' if gap <= 0.05 else 'NOT within'} 0.05)")


def children_cpu() -> float:
    """CPU seconds (user + system) of finished child processes: the run's own work, whatever else loads the
    machine (wall time on a shared machine is not)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    return done.stdout


if __name__ == "__main__":
    main()
