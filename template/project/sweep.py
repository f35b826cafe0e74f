"""Search hyperparameters: many ordinary trainer.py runs chosen by Optuna, compared in TensorBoard's HPARAMS tab.

    python sweep.py --trials 20 --lr 1e-4:1e-1:log --hidden 16,32,64
    python sweep.py --trials 40 --workers 2 --prune --lr 1e-4:1e-1:log --depth 1:4 --max_epochs 30
    python sweep.py --sampler grid --hidden 16,32,64 --optimizer adam,sgd

A trainer.py flag given LOW:HIGH (LOW:HIGH:log for a log scale) is searched in that range, typed by the flag (int or
float); a,b,c is searched among those choices; any other trainer.py flag is the same for all trials. Each trial is an
ordinary run, logs/<study>/trial-<n>_<its values>, so `tensorboard --logdir logs` shows every trial beside every other
run (the trial, its state and its searched values lead its HPARAMS row). The study lives in logs/<study>/study.db (or
--storage): the same command again continues it, trials that were stopped (Ctrl-C, a killed worker, a requeued SLURM
task) from their last checkpoint. At the end: the best trials, the trainer.py command that trains the best again, and
Optuna's plots beside the study. The machinery is util/sweeps.py.
"""

from __future__ import annotations

import argparse
import os
import sys

import trainer
from util import sweeps

EPILOG = """examples:
  python sweep.py --trials 20 --workers 2 --lr 1e-4:1e-1:log --hidden 16,32,64 --max_epochs 20
  python sweep.py --prune --trials 50 --lr 1e-5:1e-1:log --weight_decay 0,1e-4,1e-2
  python sweep.py --sampler grid --optimizer adam,sgd --scheduler none,cosine
  python sweep.py --study big --storage postgresql+psycopg2://me@dbhost/optuna ...   shared by many machines
  scripts/slurm-sweep.sbatch 8 --study big --storage /shared/big.journal ...         8 SLURM tasks, one study
  optuna-dashboard sqlite:///logs/<study>/study.db                                  watch it live in a browser
"""


def parse(argv: list[str] | None) -> sweeps.Plan:
    """The sweep's own flags, then trainer.py's: searched ones become the space, the others stay fixed."""
    parser = argparse.ArgumentParser(prog="sweep.py", description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                     usage="python sweep.py [sweep flags] [trainer.py flags, searched or fixed]",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--trials", type=int, help="Trials to complete (pruned ones count; failed ones do not). "
                                                   "Default: 20, or the grid's size with --sampler grid.")
    parser.add_argument("--workers", type=int, default=1, help="Trials at a time on this machine (default: 1).")
    parser.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe",
                        help="How Optuna chooses the next trial (default: tpe).")
    parser.add_argument("--sampler_seed", type=int, help="Seed of the sampler, for a repeatable sequence of trials.")
    parser.add_argument("--prune", action="store_true",
                        help="Stop unpromising trials early: worse than the median of earlier trials at a validation.")
    parser.add_argument("--prune_warmup", type=int, default=3,
                        help="Validations every trial runs before it may be pruned (default: 3).")
    parser.add_argument("--study", help="Name of the study and of its series folder (default: sweep-<model>-<dataset>).")
    parser.add_argument("--storage", help="Optuna storage: an RDB URL (postgresql+psycopg2://..., sqlite:///...) or a "
                                          "journal file path (default: sqlite in logs/<study>/study.db).")
    args, trainer_flags = parser.parse_known_args(argv)
    try:
        return sweeps.make_plan(args, trainer_flags, trainer.DEFAULTS)
    except sweeps.SweepError as problem:
        parser.error(str(problem))


def main(argv: list[str] | None = None) -> int:
    if sweeps.WORKER_ENV in os.environ:  # one of the workers started below: trials in this process
        plan = sweeps.Plan.from_json(os.environ[sweeps.WORKER_ENV])
        return sweeps.work(plan, trainer.main, int(os.environ.get("SWEEP_WORKER_INDEX", "0")))
    plan = parse(argv)
    print(f"Study {plan.study}: {plan.trials} trials in {plan.series_dir}", flush=True)
    code = sweeps.run(plan, __file__)
    if code in sweeps.INTERRUPTED:
        print("sweep.py: interrupted; the running trials saved their state: the same command continues them",
              file=sys.stderr)
        return code
    print(sweeps.summary(plan))
    return 1 if code else 0


if __name__ == "__main__":
    sys.exit(main())
