"""trainer.py's command line, on jsonargparse (LightningCLI's own parser): every Lightning Trainer argument, the run's
flags and the chosen model's and dataset's constructor arguments as flat flags (``--lr 0.01 --max_epochs 5``), YAML
configs (``--config FILE``, later flags win; ``--print_config``), objects chosen by name with their own flags
(``--net SimpleDenseNet --net.hidden 64``, ``--optimizer Adam --optimizer.lr 1e-3``) and help from reST, Google and
NumPy docstrings.

What jsonargparse does not do, and this module does:
- two phases: which flags exist depends on --model/--dataset, given as flags, in a --config file, or by the run that
  --resume (or a requeued SLURM job) continues;
- flat flags for two classes at once: a dataset argument whose name a run, Trainer or model flag already has gets a
  prefix (``--data_seed``); the arguments a dataset hands to the model (input_shape, num_outputs, task) get none;
- Hydra-style annotations (``optimizer: torch.optim.Optimizer`` that holds a partial, ``scheduler:
  torch.optim.lr_scheduler``) read as LightningCLI's OptimizerCallable and LRSchedulerCallable;
- one line per error, naming the flag.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import docstring_parser
import torch
import yaml
from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentError, ArgumentParser, Namespace
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from data import DATASETS
from data.base import WIRED
from model import MODELS
from util import runs

YES_NO = ActionYesNo(yes_prefix="", no_prefix="no_")  # --swa, --swa true, --no_swa
TRAINER_OBJECTS = {"callbacks", "plugins", "logger"}  # set in trainer.py, not on the command line
# Run flags that say where a run goes or how it reports: they never tell two runs' results apart.
PLACE_ONLY = ("config", "model", "dataset", "save_dir", "name", "version", "resume", "csv", "verbose", "print_config")
# Trainer flags about output only: the progress bar or the summary does not change what is trained.
OUTPUT_ONLY = ("enable_progress_bar", "enable_model_summary", "default_root_dir")


@dataclass(frozen=True)
class Defaults:
    """What trainer.py chose for the flags it owns."""

    model: str
    dataset: str
    seed: int
    csv: bool
    early_stopping_patience: int | None
    description: str
    examples: str
    trainer_note: str  # what trainer.py sets after parsing, shown in the trainer group of --help


@dataclass
class Setup:
    """The parsed command line: everything trainer.py needs to build and run the training."""

    args: Namespace  # every flag, flat; objects as {class_path, init_args} until built
    parser: ArgumentParser
    model_name: str
    data_name: str
    model_keys: dict[str, str]  # constructor argument -> its flag (and key in args)
    data_keys: dict[str, str]
    trainer_keys: list[str]
    argv: list[str]
    resume: runs.Resume | None = None  # the run --resume (or a requeued SLURM job) continues

    @property
    def model_hparams(self) -> dict[str, Any]:
        return {name: self.args[key] for name, key in self.model_keys.items()}

    @property
    def data_hparams(self) -> dict[str, Any]:
        return {name: self.args[key] for name, key in self.data_keys.items()}

    @property
    def series_dir(self) -> Path:
        return Path(self.args.save_dir) / self.args.name

    @functools.cached_property
    def built(self) -> Namespace:
        """The arguments with their objects built (a network, an optimizer waiting for its parameters)."""
        return self.parser.instantiate(self.args)

    def trainer_kwargs(self) -> dict[str, Any]:
        """The Trainer flags given (on the command line or in a config): the others keep Lightning's defaults and
        its PL_TRAINER_* environment variables."""
        defaults = inspect.signature(Trainer.__init__).parameters
        return {name: self.built[name] for name in self.trainer_keys if self.args[name] != defaults[name].default}

    def run_settings(self) -> dict[str, Any]:
        """The Trainer and run flags that differ from their defaults, and the seed: with the hyperparameters they
        name the run's folder and fill its HPARAMS row, so runs that differ only there are told apart."""
        settings = {name: self.args[name] for name in self.trainer_kwargs() if name not in OUTPUT_ONLY}
        for name, default in self.parser.get_defaults().items():
            run_flag = name not in {*self.trainer_keys, *self.model_keys.values(), *self.data_keys.values()}
            if run_flag and name not in PLACE_ONLY and self.args[name] != default:
                settings[name] = self.args[name]
        return settings

    def object_configs(self) -> dict[str, Any]:
        """The model's and dataset's arguments that flags build as objects, as their configs (class_path, init_args)."""
        return {name: runs.jsonable(self.args[key]) for name, key in {**self.model_keys, **self.data_keys}.items()
                if isinstance(self.args[key], Namespace)}

    def changed_hparams(self) -> dict[str, Any]:
        """The model's and dataset's arguments that differ from their defaults, in declaration order."""
        defaults = self.parser.get_defaults()
        return {name: self.args[key] for name, key in {**self.model_keys, **self.data_keys}.items()
                if runs.jsonable(self.args[key]) != runs.jsonable(defaults.get(key))}

    def error(self, message: str) -> NoReturn:
        error(message)


LAST_ERROR: str | None = None  # the last one-line error, for a sweep's record of why a trial failed


def error(message: str) -> NoReturn:
    """``trainer.py: error: <one line>`` on stderr, exit 2 (argparse's convention)."""
    global LAST_ERROR
    LAST_ERROR = message
    print(f"trainer.py: error: {message}", file=sys.stderr)
    sys.exit(2)


# ---- the parser ---------------------------------------------------------------------------------------------------

def build_parser(defaults: Defaults, model_name: str | None, data_name: str | None) -> tuple[
        ArgumentParser, list[str], dict[str, str], dict[str, str]]:
    """The parser for a model and a dataset (None: only the run and Trainer flags); also returns the Trainer flags
    and each class's argument -> flag."""
    parser = ArgumentParser(
        prog="trainer.py", usage="python trainer.py [--model NAME] [--dataset NAME] [--config FILE] [flags]",
        description=defaults.description, epilog=defaults.examples, exit_on_error=False, allow_abbrev=False)
    parser.add_argument("--config", action=ActionConfigFile,
                        help="A YAML file of flags (e.g. a run's config.yaml); flags after it win.")
    trainer_group = parser.add_argument_group(
        "trainer", f"Lightning Trainer arguments; an unset one keeps Lightning's default (PL_TRAINER_* variables "
                   f"apply), except: {defaults.trainer_note}")
    model_group = parser.add_argument_group(f"model {model_name}") if model_name else None
    data_group = parser.add_argument_group(f"dataset {data_name}") if data_name else None
    _add_run_flags(parser.add_argument_group("run"), defaults)
    trainer_keys = trainer_group.add_class_arguments(Trainer, nested_key=None, as_group=False, fail_untyped=False,
                                                     skip=TRAINER_OBJECTS)
    taken = set(parser.get_defaults().keys()) | {"config", "help", "print_config"}  # the run and Trainer flags
    model_keys = _add_class_flags(model_group, MODELS[model_name], "model", taken, WIRED) \
        if model_group and model_name else {}
    data_keys = _add_class_flags(data_group, DATASETS[data_name], "data", taken) if data_group and data_name else {}
    return parser, trainer_keys, model_keys, data_keys


def _add_run_flags(group: Any, defaults: Defaults) -> None:
    group.add_argument("--model", type=str, default=defaults.model, help="Model: a module in model/.")
    group.add_argument("--dataset", type=str, default=defaults.dataset, help="Dataset: a module in data/.")
    group.add_argument("--seed", type=int, default=defaults.seed, help="Seed for weights, data order and dropout.")
    group.add_argument("--save_dir", type=Path, default=runs.DEFAULT_SAVE_DIR,
                       help="Root of all runs (default: the project's logs/, wherever trainer.py starts).")
    group.add_argument("--name", type=str | None, default=None,
                       help="Experiment series: the folder under save_dir (default: <model>-<dataset>).")
    group.add_argument("--version", type=str | None, default=None,
                       help="Run folder under the series (default: <timestamp>_<settings that differ>).")
    group.add_argument("--gpus", type=list[int] | None, default=None,
                       help="GPU ids, e.g. [0,1]: accelerator gpu on those devices, DDP when several.")
    group.add_argument("--resume", type=str | None, default=None, metavar="RUN_DIR|last",
                       help="Continue a run in its own folder from its newest checkpoint ('last': the newest run of "
                            "the series); flags given with it override the run's other settings.")
    group.add_argument("--lr_find", action=YES_NO, nargs="?", default=False, help="Find a learning rate first (plot in the run).")
    group.add_argument("--scale_batch_size", action=YES_NO, nargs="?", default=False,
                       help="Find the largest batch size that fits first (power-of-two search).")
    group.add_argument("--early_stopping_patience", type=int | Literal["none"] | None,
                       default=defaults.early_stopping_patience,
                       help="Stop after N validations without improvement of the monitored metric; none: never.")
    group.add_argument("--monitor", type=str | None, default=None,
                       help="Validation metric that picks the best checkpoint and stops early (default: loss/val when "
                            "the model logs it, else val_loss; the run says which).")
    group.add_argument("--monitor_mode", type=Literal["min", "max"], default="min",
                       help="Whether a lower or a higher --monitor value is better.")
    group.add_argument("--swa", action=YES_NO, nargs="?", default=False, help="Stochastic weight averaging over the last epochs.")
    group.add_argument("--swa_lrs", type=float | None, default=None, help="SWA learning rate (default: the model's lr).")
    group.add_argument("--csv", action=YES_NO, nargs="?", default=defaults.csv, help="Also log metrics to <run>/csv/metrics.csv.")
    group.add_argument("--folds", type=int | None, default=None,
                       help="Cross-validate: K runs, each validating on one K-th of train+val (test stays held out), "
                            "then the mean and std of their best monitored value.")
    group.add_argument("--fold", type=int | None, default=None, help="With --folds K: train only fold I (0 to K-1).")
    group.add_argument("--verbose", action=YES_NO, nargs="?", default=False,
                       help="Show every library message (known harmless ones are kept off the screen by default).")


def init_arguments(cls: type) -> list[tuple[str, Any, Any]]:
    """(name, annotation, default) of cls's constructor arguments, following ``**kwargs`` up to the base classes that
    receive them (Lightning's own classes end the walk); a subclass's re-declaration wins."""
    chain: list[list[tuple[str, Any, Any]]] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass is not cls and klass.__module__.startswith(("lightning.", "pytorch_lightning.", "torch.", "builtins")):
            break
        init = vars(klass)["__init__"]
        parameters = list(inspect.signature(init).parameters.values())[1:]
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # noqa: BLE001 - annotations this Python cannot evaluate: keep them as written
            hints = {}
        chain.append([(p.name, hints.get(p.name, p.annotation), p.default) for p in parameters
                      if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)])
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    latest = {name: (name, annotation, default) for own in reversed(chain) for name, annotation, default in own}
    order = dict.fromkeys(name for own in reversed(chain) for name, _, _ in own)
    return [latest[name] for name in order]


def flag_type(annotation: Any, default: Any) -> Any:
    """The type jsonargparse parses a constructor argument with."""
    optional = default is None
    if annotation is inspect.Parameter.empty or annotation is Any:
        annotation = type(default) if isinstance(default, (bool, int, float, str)) else Any
    elif annotation is torch.optim.Optimizer or (
            inspect.isclass(annotation) and issubclass(annotation, torch.optim.Optimizer)):
        annotation = OptimizerCallable  # Hydra's `_partial_`: an optimizer still waiting for its parameters
    elif annotation is torch.optim.lr_scheduler or (
            inspect.isclass(annotation) and issubclass(annotation, torch.optim.lr_scheduler.LRScheduler)):
        annotation = LRSchedulerCallable
    return annotation | None if optional and annotation is not Any else annotation


def docs_of(cls: type) -> dict[str, str]:
    """The first sentence documenting each constructor argument in the docstrings of cls and its bases (reST,
    Google or NumPy style)."""
    found: dict[str, str] = {}
    for klass in cls.__mro__:
        for text in (inspect.getdoc(klass), inspect.getdoc(vars(klass).get("__init__"))):
            for param in docstring_parser.parse(text or "").params:
                description = " ".join((param.description or "").split())
                sentence = re.match(r"(.+?\.)(\s|$)", description)
                found.setdefault(param.arg_name, sentence.group(1) if sentence else description)
    return found


def _add_class_flags(group: Any, cls: type, prefix: str, taken: set[str], skip: tuple[str, ...] = ()) -> dict[str, str]:
    docs = docs_of(cls)
    keys: dict[str, str] = {}
    arguments = init_arguments(cls)
    own = {name for name, _, _ in arguments}
    for name, annotation, default in arguments:
        if name in skip:
            continue
        key = name
        while key in taken or (key != name and key in own):
            key = f"{prefix}_{key}"
        if flag_type(annotation, default) is LRSchedulerCallable and default is inspect.Parameter.empty:
            default = None  # a schedule is optional by nature (Hydra configs say scheduler: null)
        kwargs: dict[str, Any] = {"type": flag_type(annotation, default), "help": docs.get(name) or " "}
        if default is inspect.Parameter.empty:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        group.add_argument(f"--{key}", **kwargs)
        taken.add(key)
        keys[name] = key
    return keys


# ---- parsing --------------------------------------------------------------------------------------------------


def parse(argv: list[str] | None, defaults: Defaults) -> Setup:
    """Phase one finds the model and dataset (flags, --config files, --resume's run, a requeued SLURM job's run);
    phase two parses everything with their flags."""
    argv = list(sys.argv[1:] if argv is None else argv)
    picked = chosen(argv)
    model_name, data_name = picked.get("model") or defaults.model, picked.get("dataset") or defaults.dataset
    series_dir = Path(picked.get("save_dir") or runs.DEFAULT_SAVE_DIR) / (
        picked.get("name") or runs.series_name(model_name, data_name))
    resume = None
    try:
        if picked.get("resume"):
            resume = runs.resume(str(picked["resume"]), series_dir)
        elif (requeued := runs.requeued_run(series_dir, argv)) is not None:
            resume = requeued
            print(f"Continuing {requeued.dir} (the same SLURM job, requeued)", flush=True)
    except runs.RunError as problem:
        error(f"--resume: {problem}")
    if resume is not None:
        for flag, given, was in (("--model", picked.get("model"), resume.info["model"]),
                                 ("--dataset", picked.get("dataset"), resume.info["dataset"])):
            if given not in (None, was):
                error(f"--resume: {resume.dir} trained {flag} {was}, not {given}")
        model_name, data_name = resume.info["model"], resume.info["dataset"]
    for flag, name, registry in (("--model", model_name, MODELS), ("--dataset", data_name, DATASETS)):
        if name in registry.unusable:  # a file that is there but holds no usable class: say why
            error(f"{flag} {name}: {registry.unusable[name]}")
        if name not in registry:
            error(f"{flag} {name}: choose one of {', '.join(sorted(registry))}")
    parser, trainer_keys, model_keys, data_keys = build_parser(defaults, model_name, data_name)
    base = resume.base_argv() if resume is not None else []  # the run's own settings, today's flags on top
    try:
        args = parser.parse_args(_project_classes([*base, *argv]))
    except ArgumentError as problem:
        error(one_line(problem))
    if args.name is None:
        args.name = runs.series_name(args.model, args.dataset)
    unset = parser.get_defaults()
    for name, key in {**model_keys, **data_keys}.items():  # a file or folder given: resolved once, recorded whole
        if isinstance(args[key], str) and args[key] not in ("", unset.get(key)) and not Path(args[key]).is_absolute() \
                and (name == "path" or name.endswith(("_path", "_dir", "_file")) or Path(args[key]).exists()):
            args[key] = str(Path(args[key]).expanduser().absolute())
    setup = Setup(args, parser, model_name, data_name, model_keys, data_keys, trainer_keys, argv, resume)
    if resume is not None:
        _keep_what_the_checkpoint_fixes(setup, resume)
    return setup


def chosen(argv: list[str]) -> dict[str, Any]:
    """--model, --dataset, --resume, --name, --save_dir as the command line and its --config files give them (the
    last one wins, as in the full parse)."""
    found: dict[str, Any] = {}
    wanted = ("model", "dataset", "resume", "name", "save_dir")
    for i, token in enumerate(argv):
        flag, equals, inline = token.partition("=")
        value = inline if equals else (argv[i + 1] if i + 1 < len(argv) else None)
        if flag == "--config" and value is not None:
            try:
                loaded = yaml.safe_load(Path(value).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as problem:
                error(f"--config {value}: cannot read it ({' '.join(str(problem).split())[:200]})")
            if not isinstance(loaded, dict):
                error(f"--config {value}: not a YAML mapping of flags (flag: value lines)")
            found.update({key: loaded[key] for key in wanted if loaded.get(key) is not None})
        elif flag.startswith("--") and flag[2:] in wanted and value is not None:
            found[flag[2:]] = value
    return found


def _project_classes(argv: list[str]) -> list[str]:
    """A class of model/ or data/ (helpers included) named on its own (--net SimpleDenseNet) as its dotted path:
    jsonargparse resolves a short name only outside modules whose names start with "_"."""
    classes = {obj.__name__: f"{obj.__module__}.{obj.__name__}" for name, module in list(sys.modules.items())
               if name.startswith(("model.", "data.")) for obj in vars(module).values()
               if inspect.isclass(obj) and obj.__module__ == name}
    return [classes.get(token, token) if i and argv[i - 1].startswith("--") and "." not in token else token
            for i, token in enumerate(argv)]


def _keep_what_the_checkpoint_fixes(setup: Setup, resume: runs.Resume) -> None:
    """The checkpoint fixes the hyperparameters and the seed: repeating them is fine, changing them is not."""
    recorded = {**resume.info["model_hparams"], **resume.info["data_hparams"], "seed": resume.info["seed"]}
    now = {**setup.model_hparams, **setup.data_hparams, "seed": setup.args.seed}
    keys = {**setup.model_keys, **setup.data_keys, "seed": "seed"}
    changed = [f"--{keys[name]}" for name in now
               if name in recorded and runs.jsonable(now[name]) != runs.jsonable(recorded[name])]
    if setup.args.version not in (None, resume.dir.name):
        changed.append("--version")
    if changed:
        error(f"{', '.join(changed)} cannot change when resuming (the checkpoint fixes it)")
    setup.args.name, setup.args.save_dir, setup.args.version = resume.dir.parent.name, resume.dir.parent.parent, \
        resume.dir.name


def one_line(problem: Exception) -> str:
    """jsonargparse's error, several lines long, as one line naming the flag and what it takes."""
    text = str(problem).strip()
    match = re.match(r'Parser key "([^"]+)":', text)
    if text.startswith("unrecognized arguments:"):
        return f"unknown flag {text.split(':', 1)[1].strip()} (python trainer.py --help [--model NAME] lists them)"
    if not match:
        return " ".join(text.splitlines()[0].split()) if text else type(problem).__name__
    given = re.search(r"(?:Given value|Got value): (.*)", text)
    literals = re.findall(r"Literal\[([^\]]*)\]", text)
    kinds = [] if literals else re.findall(r"<class '([\w.]+)'>", re.split("Given value|Got value", text)[0])
    expected = [value.strip() for group in literals for value in group.split(",")]
    expected += ["null" if kind == "NoneType" else kind.rsplit(".", 1)[-1] for kind in dict.fromkeys(kinds)]
    if "NoneType" in text and "null" not in expected:
        expected.append("null")
    value = given.group(1).strip() if given else "?"
    hint = "; give null for none" if value.lower() == "none" and "null" in expected else ""
    takes = f"expected {', '.join(dict.fromkeys(expected))}" if expected else text.splitlines()[-1].strip()
    return f"--{match.group(1)} {value}: {takes}{hint}"


def config_to_keep(setup: Setup) -> str:
    """The run's config.yaml: every flag as trained (tuned values included), so that `python trainer.py --config
    <run>/config.yaml` trains the same run again, as a new run of the same series."""
    args = setup.args.clone()
    for name in ("config", "version", "resume", "save_dir", "print_config"):
        if name in args:
            del args[name]
    args.lr_find, args.scale_batch_size = False, False  # their findings are the values below
    return setup.parser.dump(args)


def set_tuned(setup: Setup, batch_size: int | None, lr: float | None) -> None:
    """What --scale_batch_size and --lr_find chose replaces the flags' values (run name, HPARAMS, config.yaml)."""
    for name, value, keys in (("batch_size", batch_size, setup.data_keys), ("lr", lr, setup.model_keys)):
        if value is not None and name in keys:
            setup.args[keys[name]] = value


def trainer_refusal(setup: Setup, problem: Exception) -> str:
    """'--devices banana: <Lightning's reason>' for the first Trainer flag Lightning rejects on its own."""
    reason = " ".join(str(problem).split())
    alone = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}
    for name, value in setup.trainer_kwargs().items():
        try:
            Trainer(**{**alone, name: value})
        except Exception:  # noqa: BLE001 - whatever Lightning raises for it, this flag is the culprit
            return f"--{name} {runs.jsonable(setup.args[name])}: {reason}"
    return f"{f'--gpus {setup.args.gpus}' if setup.args.gpus else 'Trainer'}: {reason}"
