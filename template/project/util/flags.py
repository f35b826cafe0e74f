"""Command-line flags built from signatures.

Every ``Trainer.__init__`` argument becomes a flag, and so does every hyperparameter of the chosen model
and dataset: the flag's parser comes from the parameter's type annotation, its help from the docstring.
Adding a parameter to a model's ``__init__`` therefore adds a flag; nothing here needs editing.

Parsing rules (the same for Trainer flags and hyperparameters):
  int is tried before float whatever the annotation's order, so ``--limit_train_batches 1`` means ONE batch
  and ``--limit_train_batches 1.0`` means all of them; bools read true/false (yes/no, 1/0); an Optional
  reads "none"; lists and tuples read comma-separated values (``--devices 0,1``); Literal values are the
  only accepted choices; str and Path annotations accept anything else.
"""

from __future__ import annotations

import argparse
import collections.abc
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union

from util.helptext import arg_docs

TRUE_WORDS = ("true", "yes", "1", "on")
FALSE_WORDS = ("false", "no", "0", "off")
NONE_WORDS = ("none", "null")



# ----------------------------------------------------------------------------------------------------
# One parser per annotation
# ----------------------------------------------------------------------------------------------------


class Converter:
    """Turns command-line text into a value of an annotated type, trying each accepted form in turn."""

    def __init__(self, attempts: list[tuple[str, Callable[[str], Any]]]):
        self.attempts = attempts  # (description, parse) in the order they are tried
        self.__name__ = "value"  # argparse names the type in some messages

    def __call__(self, text: str) -> Any:
        for _, parse in self.attempts:
            try:
                return parse(text)
            except (ValueError, TypeError, argparse.ArgumentTypeError):
                continue
        raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")

    def describe(self) -> str:
        return " or ".join(description for description, _ in self.attempts)


def _parse_none(text: str) -> None:
    if text.strip().lower() not in NONE_WORDS:
        raise ValueError(text)


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)


def _parse_int(text: str) -> int:
    return int(text.strip())  # int("1.0") raises: floats stay floats


def _parse_float(text: str) -> float:
    return float(text.strip())


def _literal_parser(values: tuple[Any, ...]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        for value in values:
            if text == str(value) or (isinstance(value, bool) and text.lower() == str(value).lower()):
                return value
        raise ValueError(text)

    return parse


def _sequence_parser(container: type, item: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        parts = [part for part in text.split(",") if part.strip()]
        if not parts:
            raise ValueError(text)
        return container(item(part) for part in parts)

    return parse


def _leaves(annotation: Any) -> list[Any]:
    """The alternatives of a (possibly nested) Union or Optional, Literals kept whole."""
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return [leaf for arg in typing.get_args(annotation) for leaf in _leaves(arg)]
    return [annotation]


def converter_for(annotation: Any, default: Any = inspect.Parameter.empty) -> Converter | None:
    """A parser for command-line text of type ``annotation``; None when no text can express it.

    Parameters whose annotation only admits objects (callbacks, plugins, loggers, accelerators ...) get
    None: they are set in code, not on the command line.
    """
    if annotation is inspect.Parameter.empty or annotation is Any:
        # No annotation: guess from the default value, else take the text as it is.
        if default is None or default is inspect.Parameter.empty:
            return Converter([("text", str)])
        annotation = type(default)

    leaves = _leaves(annotation)
    found: dict[str, tuple[str, Callable[[str], Any]]] = {}
    literal_values: list[Any] = []
    for leaf in leaves:
        origin = typing.get_origin(leaf)
        if leaf is type(None):
            found["none"] = ("'none'", _parse_none)
        elif leaf is bool:
            found["bool"] = ("true/false", _parse_bool)
        elif leaf is int:
            found["int"] = ("an integer", _parse_int)
        elif leaf is float:
            found["float"] = ("a number", _parse_float)
        elif origin is Literal:
            literal_values.extend(typing.get_args(leaf))
        elif origin in (list, tuple, collections.abc.Sequence) and "sequence" not in found:
            args = [arg for arg in typing.get_args(leaf) if arg is not Ellipsis]
            item = converter_for(args[0]) if args else Converter([("text", str)])
            if item is not None:
                container = tuple if origin is tuple else list
                found["sequence"] = (f"comma-separated ({item.describe()})", _sequence_parser(container, item))
        elif leaf is str:
            found["str"] = ("text", str)
        elif leaf is Path or (inspect.isclass(leaf) and issubclass(leaf, Path)):
            found["str"] = ("a path", Path)
    if literal_values:
        shown = ", ".join(dict.fromkeys(str(value) for value in literal_values))
        found["literal"] = (f"one of {shown}", _literal_parser(tuple(literal_values)))

    # The order that makes `--limit_train_batches 1` an int and `--devices 0,1` a list.
    order = ("none", "int", "float", "bool", "literal", "sequence", "str")
    attempts = [found[kind] for kind in order if kind in found]
    if not attempts or list(found) == ["none"]:
        return None  # nothing but None can be typed: not worth a flag
    return Converter(attempts)


# ----------------------------------------------------------------------------------------------------
# Trainer flags
# ----------------------------------------------------------------------------------------------------


def signature_with_hints(function: Callable) -> tuple[inspect.Signature, dict[str, Any]]:
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError, AttributeError):  # annotations this Python cannot evaluate: keep them raw
        hints = {name: p.annotation for name, p in signature.parameters.items()}
    return signature, hints


# Flags whose annotation is plain text although only some names work: the names, for --help.
KNOWN_VALUES = {
    "accelerator": "cpu, gpu, cuda, mps, tpu, auto",
    "strategy": "auto, ddp, ddp_spawn, ddp_find_unused_parameters_true, fsdp, deepspeed, single_device",
    "profiler": "simple, advanced, pytorch",
    "gradient_clip_algorithm": "norm, value",
}
FORMATS = {"max_time": "Format: DD:HH:MM:SS, e.g. 00:12:00:00 for twelve hours."}


def add_trainer_flags(group: argparse._ArgumentGroup, set_after_parsing: dict[str, str] | None = None) -> list[str]:
    """Add a flag for every Trainer.__init__ argument that text can express; return their names.

    Defaults are SUPPRESSed: an unset flag is absent from the parsed namespace, so the Trainer keeps its
    own default and still honours PL_TRAINER_* environment variables. ``set_after_parsing`` describes the
    defaults trainer.py applies itself (``{"max_epochs": "100 ..."}``): --help shows those instead.
    """
    from lightning.pytorch import Trainer

    set_after_parsing = set_after_parsing or {}
    signature, hints = signature_with_hints(Trainer.__init__)
    docs = arg_docs(Trainer.__init__)
    names = []
    for name, parameter in signature.parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        convert = converter_for(hints.get(name, parameter.annotation), parameter.default)
        if convert is None:
            continue  # object-only (callbacks, plugins ...): configured in trainer.py
        default = set_after_parsing.get(name, f"{parameter.default!r} (Lightning's)")
        known = f" Known values: {KNOWN_VALUES[name]}." if name in KNOWN_VALUES else ""
        help_text = f"{docs.get(name, '')}{choices_help(convert)}{known} {FORMATS.get(name, '')} Default: {default}."
        group.add_argument(
            f"--{name}", type=convert, default=argparse.SUPPRESS, metavar=metavar_for(convert, name),
            help=" ".join(help_text.split()),
        )
        names.append(name)
    return names


def choices_help(convert: Converter) -> str:
    literal = [description for description, _ in convert.attempts if description.startswith("one of ")]
    return f" Choices: {literal[0][len('one of '):]}." if literal else ""


def metavar_for(convert: Converter, name: str) -> str:
    kinds = []
    for description, _ in convert.attempts:
        if description.startswith("one of "):
            kinds.append(name.upper())  # the values are listed in the help text
        elif description.startswith("comma-separated"):
            kinds.append("A,B,...")
        else:
            kinds.append({"'none'": "none", "an integer": "INT", "a number": "FLOAT", "true/false": "true|false",
                          "text": "TEXT", "a path": "PATH"}.get(description, description))
    return "|".join(kinds)
