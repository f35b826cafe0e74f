"""trainer.py's command line: run flags, every Trainer argument and the chosen model's and dataset's
hyperparameters as flags (util/flags.py), parsed in two phases, and --resume's rules.

Phase one reads --model/--dataset (or the run named by --resume, or the run a requeued SLURM job started);
phase two builds the full parser with that model's and dataset's hyperparameters and parses everything.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data import DATASETS
from model import MODELS
from util import flags, hparams, naming, runs

DATA_WIRED = ("input_shape", "num_outputs", "task")  # from the dataset's DataInfo, never from flags


@dataclass(frozen=True)
class Defaults:
    """What trainer.py chose for the flags it owns."""

    model: str
    dataset: str
    seed: int
    csv: bool
    early_stopping_patience: int | None
    monitor: str
    description: str
    examples: str
    # Trainer arguments that trainer.py sets after parsing when the flag is not given: shown in --help
    trainer: dict[str, str] = field(default_factory=dict)


@dataclass
class Setup:
    """The parsed command line: everything trainer.py needs to build and run the training."""

    args: argparse.Namespace
    parser: argparse.ArgumentParser
    model_name: str
    data_name: str
    model_hparams: dict[str, Any]
    data_hparams: dict[str, Any]
    model_flags: list[hparams.HParam]
    data_flags: list[hparams.HParam]
    trainer_flags: list[str]
    argv: list[str]
    resume_dir: Path | None = None  # set with --resume, and when a requeued SLURM job continues its run

    @property
    def series_dir(self) -> Path:
        return Path(self.args.save_dir) / self.args.name

    def error(self, message: str) -> None:
        """One line on stderr (``trainer.py: error: ...``) and exit 2."""
        self.parser.error(message)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows defaults that say something (not None/False) and keeps the examples' line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or default is argparse.SUPPRESS or not action.option_strings:
            return action.help
        return f"{action.help} (default: %(default)s)"


def _add_run_flags(group: argparse._ArgumentGroup, defaults: Defaults) -> None:
    group.add_argument("--model", default=defaults.model, choices=sorted(MODELS), help="Model (a module in model/).")
    group.add_argument("--dataset", default=defaults.dataset, choices=sorted(DATASETS),
                       help="Dataset (a module in data/).")
    group.add_argument("--seed", type=int, default=defaults.seed, help="Seed for weights, data order and dropout.")
    group.add_argument("--save_dir", type=Path, default=runs.DEFAULT_SAVE_DIR,
                       help="Root of all runs (default: the project's logs/, wherever trainer.py is started from).")
    group.add_argument("--name", help="Experiment series, the folder under save_dir (default: <model>-<dataset>).")
    group.add_argument("--version", help="Run folder under the series (default: <timestamp>_<changed hparams>).")
    group.add_argument("--gpus", type=int, nargs="+", metavar="ID",
                       help="GPU ids, e.g. --gpus 0 1: accelerator gpu on those devices, DDP when several.")
    group.add_argument("--resume", metavar="RUN_DIR|last",
                       help="Continue a run from its checkpoints/last.ckpt in the same folder ('last': the newest "
                            "run of the series). Other flags given with it override the run's original ones.")
    group.add_argument("--lr_find", action="store_true", help="Find a learning rate first (plot saved in the run).")
    group.add_argument("--scale_batch_size", action="store_true",
                       help="Find the largest batch size that fits first (power-of-two search).")
    group.add_argument("--early_stopping_patience", type=flags.converter_for(int | None),
                       default=defaults.early_stopping_patience, metavar="N|none",
                       help=f"Stop after N validations without improvement of the monitored metric ({defaults.monitor} "
                            "unless --monitor says otherwise); 'none' never stops early.")
    group.add_argument("--monitor", metavar="NAME",
                       help="Validation metric that picks the best checkpoint and stops early (default: loss/val when "
                            "the model logs it, else val_loss; the run says which in one line).")
    group.add_argument("--monitor_mode", choices=("min", "max"), default="min",
                       help="Whether a lower or a higher --monitor value is better.")
    group.add_argument("--swa", action="store_true", help="Stochastic weight averaging over the last epochs.")
    group.add_argument("--swa_lrs", type=float, metavar="LR", help="SWA learning rate (default: the model's lr).")
    group.add_argument("--csv", action=argparse.BooleanOptionalAction, default=defaults.csv,
                       help="Also log metrics to <run>/csv/metrics.csv.")
    # K-fold cross-validation (util/folds.py): --folds K runs every fold; --fold I only the I-th (0-based).
    group.add_argument("--folds", type=int, metavar="K",
                       help="Cross-validate: K runs, each validating on one K-th of train+val (the test split stays "
                            "held out), then the mean and std of their best loss/val.")
    group.add_argument("--fold", type=int, metavar="I", help="With --folds K: train only fold I (0 to K-1).")


def build_parser(defaults: Defaults, model_name: str | None,
                 data_name: str | None) -> tuple[argparse.ArgumentParser, list[str], list[hparams.HParam],
                                                 list[hparams.HParam]]:
    """The full parser for a model and dataset (either None when unknown: only run and Trainer flags)."""
    parser = argparse.ArgumentParser(
        prog="trainer.py", usage="python trainer.py [--model NAME] [--dataset NAME] [flags]  (--help lists them)",
        description=defaults.description, epilog=defaults.examples, formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    # Groups show in --help in this order; flags are added run first, so a hyperparameter whose name is
    # already a run or Trainer flag gets a prefix (--data_seed) instead of clashing.
    trainer_group = parser.add_argument_group(
        "trainer", "Lightning Trainer arguments. An unset flag keeps the default shown: Lightning's own, or the "
                   "one trainer.py sets after parsing; PL_TRAINER_* variables apply too.")
    model_group = parser.add_argument_group(f"model {model_name}") if model_name else None
    data_group = parser.add_argument_group(f"dataset {data_name}") if data_name else None
    _add_run_flags(parser.add_argument_group("run"), defaults)
    trainer_flags = flags.add_trainer_flags(trainer_group, defaults.trainer)
    model_flags = hparams.add_hparam_flags(model_group, MODELS[model_name], "model", DATA_WIRED) if model_group else []
    data_flags = hparams.add_hparam_flags(data_group, DATASETS[data_name], "data") if data_group else []
    return parser, trainer_flags, model_flags, data_flags


def parse_args(argv: list[str] | None, defaults: Defaults) -> Setup:
    """Two phases: --model/--dataset (or --resume) first, then the full parser with their hyperparameters."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag in ("--model", "--dataset", "--resume", "--name"):
        first.add_argument(flag)
    first.add_argument("--save_dir", type=Path, default=runs.DEFAULT_SAVE_DIR)
    known, _ = first.parse_known_args(argv)
    if not known.resume:
        # A SLURM job requeued (preemption, node failure, scontrol requeue) runs the same command again:
        # it continues the run it started, in the same folder.
        series = known.name or f"{known.model or defaults.model}-{known.dataset or defaults.dataset}"
        requeued = naming.requeued_run(known.save_dir / series, argv)
        if requeued is not None:
            print(f"Continuing {requeued} (the same SLURM job, requeued)", flush=True)
            known.resume = str(requeued)

    resume_dir, recorded = None, None
    if known.resume:
        series = known.name or f"{known.model or defaults.model}-{known.dataset or defaults.dataset}"
        bare = build_parser(defaults, None, None)[0]
        try:
            resume_dir = runs.find_run(known.resume, known.save_dir / series)
            recorded = runs.read_run_info(resume_dir)
            runs.load_checkpoint(runs.last_checkpoint(resume_dir))  # readable, and safely (it may come from anyone)
        except runs.RunError as error:
            bare.error(f"--resume: {error}")
        for flag, given, was in (("--model", known.model, recorded["model"]),
                                 ("--dataset", known.dataset, recorded["dataset"])):
            if given not in (None, was):
                bare.error(f"--resume: {resume_dir} trained {flag} {was}, not {given}")
        known.model, known.dataset = recorded["model"], recorded["dataset"]

    model_name = known.model or defaults.model
    data_name = known.dataset or defaults.dataset
    for flag, name, registry in (("--model", model_name, MODELS), ("--dataset", data_name, DATASETS)):
        if name in registry.unusable:  # a file that is there but holds no usable class: say why
            build_parser(defaults, None, None)[0].error(f"{flag} {name}: {registry.unusable[name]}")
    if model_name not in MODELS or data_name not in DATASETS:
        build_parser(defaults, None, None)[0].parse_args(argv)  # argparse reports the invalid choice and exits
    parser, trainer_flags, model_flags, data_flags = build_parser(defaults, model_name, data_name)

    # Resuming: the run's original flags first, today's after (argparse keeps the last value of a flag).
    args = parser.parse_args([*recorded["argv"], *argv] if recorded is not None else argv)
    if args.name is None:
        args.name = f"{args.model}-{args.dataset}"
    if recorded is not None:
        _refuse_changes_on_resume(parser, args, argv, recorded, model_flags + data_flags, resume_dir)
        args.model, args.dataset = model_name, data_name
        args.name, args.save_dir = resume_dir.parent.name, resume_dir.parent.parent
        args.version, args.seed = resume_dir.name, recorded["seed"]
        # hyperparameters as trained (after --lr_find/--scale_batch_size), not as typed
        model_hparams, data_hparams = dict(recorded["model_hparams"]), dict(recorded["data_hparams"])
    else:
        model_hparams = hparams.hparam_values(args, model_flags)
        data_hparams = hparams.hparam_values(args, data_flags)
    return Setup(args, parser, model_name, data_name, model_hparams, data_hparams, model_flags, data_flags,
                 trainer_flags, argv, resume_dir)


def _refuse_changes_on_resume(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str],
                              recorded: dict[str, Any], hyperparameters: list[hparams.HParam], resume_dir: Path) -> None:
    """The checkpoint fixes the hyperparameters and the seed: repeating them is fine, changing them is not."""
    given = {token.split("=", 1)[0] for token in argv if token.startswith("--")}
    was = {**recorded["model_hparams"], **recorded["data_hparams"]}
    tuned = {"lr": "--lr_find", "batch_size": "--scale_batch_size"}  # the run replaced the typed value
    changed = [h.flag for h in hyperparameters if h.flag in given and runs.jsonable(getattr(args, h.dest)) != was.get(h.name)
               and tuned.get(h.name) not in recorded["argv"]]
    if "--seed" in given and args.seed != recorded["seed"]:
        changed.append("--seed")
    if "--version" in given and args.version != resume_dir.name:
        changed.append("--version")
    if changed:
        parser.error(f"{', '.join(changed)} cannot change when resuming (the checkpoint fixes it)")
