"""Flags for the hyperparameters of a model or dataset class: every typed ``__init__`` argument (following
``**kwargs`` up to the base class), parsed by util/flags.py's rules, with help from the docstring.
"""

from __future__ import annotations

import argparse
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from util.flags import choices_help, converter_for, metavar_for, signature_with_hints
from util.helptext import arg_docs, comment_docs

if TYPE_CHECKING:
    from util.cli import Setup

# Lightning's own base classes end the walk up the MRO: their __init__ takes no hyperparameters. (Classes that
# Lightning ships as examples, lightning.pytorch.demos, are user classes like any other: their arguments count.)
_FRAMEWORK_PREFIXES = ("lightning.pytorch.core", "lightning.fabric", "pytorch_lightning.core", "torch.", "builtins")

@dataclass(frozen=True)
class HParam:
    """One constructor hyperparameter exposed as a flag."""

    name: str  # the keyword argument of __init__
    dest: str  # where argparse stores it ("model.hidden")
    flag: str  # the option string ("--hidden", or "--model_seed" when --seed was already taken)
    default: Any  # inspect.Parameter.empty when required


def init_parameters(cls: type) -> list[tuple[inspect.Parameter, Any, type]]:
    """(parameter, annotation, defining class) of ``cls.__init__``, following **kwargs up to the base class.

    A subclass that forwards ``**kwargs`` to ``super().__init__`` inherits its parent's hyperparameters;
    the walk stops at the first __init__ without **kwargs or at Lightning's own classes. Parameters come
    base class first, in declaration order.
    """
    chain: list[list[tuple[inspect.Parameter, Any, type]]] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass.__module__.startswith(_FRAMEWORK_PREFIXES) and klass is not cls:
            break
        signature, hints = signature_with_hints(klass.__init__)
        own, forwards = [], False
        for name, parameter in list(signature.parameters.items())[1:]:  # skip self
            if parameter.kind is parameter.VAR_KEYWORD:
                forwards = True
            elif parameter.kind is not parameter.VAR_POSITIONAL:
                own.append((parameter, hints.get(name, parameter.annotation), klass))
        chain.append(own)
        if not forwards:
            break
    seen: set[str] = set()
    ordered = []
    for own in reversed(chain):
        for parameter, annotation, klass in own:
            if parameter.name not in seen:
                seen.add(parameter.name)
                ordered.append((parameter, annotation, klass))
    # a subclass may re-declare a parent's parameter with another default: the subclass wins
    latest = {p.name: (p, a, k) for own in chain[::-1] for p, a, k in own}
    return [latest[p.name] for p, _, _ in ordered]


def add_hparam_flags(
    group: argparse._ArgumentGroup, cls: type, prefix: str, exclude: tuple[str, ...] = ()
) -> list[HParam]:
    """Add a typed flag with default and help for each hyperparameter of ``cls`` (minus ``exclude``).

    A name already used by another flag gets the prefix: a dataset's ``seed`` becomes ``--data_seed``
    because ``--seed`` is the run's seed.
    """
    hparams = []
    for parameter, annotation, klass in init_parameters(cls):
        if parameter.name in exclude:
            continue
        convert = converter_for(annotation, parameter.default)
        if convert is None:
            continue
        docs = {**comment_docs(klass.__init__), **arg_docs(klass.__init__, klass)}
        required = parameter.default is inspect.Parameter.empty
        kwargs: dict[str, Any] = {
            "type": convert,
            "dest": f"{prefix}.{parameter.name}",
            "metavar": metavar_for(convert, parameter.name),
            "help": (docs.get(parameter.name) or f"{klass.__name__} hyperparameter.") + choices_help(convert),
        }
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = parameter.default
        for flag in (f"--{parameter.name}", f"--{prefix}_{parameter.name}"):
            try:
                group.add_argument(flag, **kwargs)
                break
            except argparse.ArgumentError:
                continue  # taken by a run/Trainer flag (or the other component): use the prefixed form
        else:
            raise ValueError(f"no free flag name for {cls.__name__} hyperparameter {parameter.name!r}")
        hparams.append(HParam(parameter.name, kwargs["dest"], flag, parameter.default))
    return hparams


def hparam_values(args: argparse.Namespace, hparams: list[HParam]) -> dict[str, Any]:
    """The parsed values of ``hparams``, keyed by constructor argument name."""
    return {hparam.name: getattr(args, hparam.dest) for hparam in hparams}


def changed_from_defaults(values: dict[str, Any], hparams: list[HParam]) -> dict[str, Any]:
    """The subset of ``values`` that differs from the constructor defaults (in declaration order)."""
    return {h.name: values[h.name] for h in hparams if h.name in values and values[h.name] != h.default}


# Run flags that only say where a run goes or how it reports: they never tell two runs' results apart.
# (--model and --dataset name the series; the resumed run keeps its own name.)
_PLACE_ONLY = ("model", "dataset", "save_dir", "name", "version", "resume", "csv")
# Trainer flags about output only: the progress bar or the summary does not change what is trained.
_OUTPUT_ONLY = ("enable_progress_bar", "enable_model_summary", "default_root_dir", "logger")


def run_settings(setup: Setup) -> dict[str, Any]:
    """The run's settings beside its hyperparameters that differ from their defaults: Trainer flags given with
    another value than Lightning's default, run flags (--swa, --early_stopping_patience ...) and the seed.
    They name the run's folder and show in its HPARAMS row, so runs that differ only there are told apart."""
    from lightning.pytorch import Trainer

    from util.flags import signature_with_hints

    args = setup.args
    trainer_defaults = signature_with_hints(Trainer.__init__)[0].parameters
    changed = {}
    for name in setup.trainer_flags:
        if hasattr(args, name) and name not in _OUTPUT_ONLY and getattr(args, name) != trainer_defaults[name].default:
            changed[name] = getattr(args, name)
    for action in setup.parser._actions:
        name = action.dest
        if (not action.option_strings or name in _PLACE_ONLY or "." in name or name in changed
                or action.default is argparse.SUPPRESS or name == "help"):
            continue
        if getattr(args, name, action.default) != action.default:
            changed[name] = getattr(args, name)
    return changed
