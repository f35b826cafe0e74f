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
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

TRUE_WORDS = ("true", "yes", "1", "on")
FALSE_WORDS = ("false", "no", "0", "off")
NONE_WORDS = ("none", "null")

# Lightning's own base classes end the walk up the MRO: their __init__ takes no hyperparameters.
_FRAMEWORK_PREFIXES = ("lightning.", "torch.", "builtins")


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
# Help text from Google-style docstrings ("Args:" sections)
# ----------------------------------------------------------------------------------------------------


def arg_docs(*objects: Any) -> dict[str, str]:
    """The first sentence documenting each argument in the "Args:" sections of the objects' docstrings."""
    docs: dict[str, str] = {}
    for obj in objects:  # the first object documenting an argument wins
        for name, text in _args_section(inspect.getdoc(obj) or "").items():
            docs.setdefault(name, _first_sentence(text))
    return docs


def _args_section(docstring: str) -> dict[str, str]:
    match = re.search(r"^(Args|Arguments|Parameters):\s*$(.*?)(?=^\S|\Z)", docstring, re.DOTALL | re.MULTILINE)
    if not match:
        return {}
    entries: dict[str, str] = {}
    current, indent = None, None
    for line in match.group(2).splitlines():
        stripped = line.lstrip()
        if not stripped:
            current = None
            continue
        depth = len(line) - len(stripped)
        entry = re.match(r"(\*{0,2}\w+)(\s*\(.*?\))?:\s*(.*)", stripped)
        if entry and (indent is None or depth <= indent):  # "name: text" at the section's own indent
            indent = depth
            current = entry.group(1).lstrip("*")
            entries[current] = entry.group(3)
        elif current is not None:  # the entry's text continues
            entries[current] += " " + stripped
    return entries


def comment_docs(function: Callable) -> dict[str, str]:
    """Help from trailing comments in a signature: ``hidden: int = 64,  # units per hidden layer``."""
    try:
        lines = inspect.getsource(function).splitlines()
    except (OSError, TypeError):
        return {}
    docs = {}
    for line in lines:
        match = re.match(r"\s*(?:def \w+\()?\*{0,2}(\w+)\s*[:=,][^#]*#\s*(.+)$", line)
        if match:
            docs.setdefault(match.group(1), match.group(2).strip().replace("%", "%%"))
        if re.search(r"\)\s*(->.*)?:\s*(#.*)?$", line):
            break  # end of the signature
    return docs


def _first_sentence(text: str) -> str:
    text = re.sub(r":\w+:`~?([^`]*)`", r"\1", text).replace("``", "").replace("%", "%%")
    match = re.match(r"(.+?\.)(\s|$)", text)
    return (match.group(1) if match else text).strip()


# ----------------------------------------------------------------------------------------------------
# Trainer flags
# ----------------------------------------------------------------------------------------------------


def _signature_with_hints(function: Callable) -> tuple[inspect.Signature, dict[str, Any]]:
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError, AttributeError):  # annotations this Python cannot evaluate: keep them raw
        hints = {name: p.annotation for name, p in signature.parameters.items()}
    return signature, hints


def add_trainer_flags(group: argparse._ArgumentGroup) -> list[str]:
    """Add a flag for every Trainer.__init__ argument that text can express; return their names.

    Defaults are SUPPRESSed: an unset flag is absent from the parsed namespace, so the Trainer keeps its
    own default and still honours PL_TRAINER_* environment variables.
    """
    from lightning.pytorch import Trainer

    signature, hints = _signature_with_hints(Trainer.__init__)
    docs = arg_docs(Trainer.__init__)
    names = []
    for name, parameter in signature.parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        convert = converter_for(hints.get(name, parameter.annotation), parameter.default)
        if convert is None:
            continue  # object-only (callbacks, plugins ...): configured in trainer.py
        help_text = f"{docs.get(name, '')}{_choices(convert)} Trainer default: {parameter.default!r}.".strip()
        group.add_argument(
            f"--{name}", type=convert, default=argparse.SUPPRESS, metavar=_metavar(convert, name), help=help_text
        )
        names.append(name)
    return names


def _choices(convert: Converter) -> str:
    literal = [description for description, _ in convert.attempts if description.startswith("one of ")]
    return f" Choices: {literal[0][len('one of '):]}." if literal else ""


def _metavar(convert: Converter, name: str) -> str:
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


# ----------------------------------------------------------------------------------------------------
# Hyperparameter flags of a model or dataset class
# ----------------------------------------------------------------------------------------------------


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
        if klass.__module__.startswith(_FRAMEWORK_PREFIXES):
            break
        signature, hints = _signature_with_hints(klass.__init__)
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
            "metavar": _metavar(convert, parameter.name),
            "help": (docs.get(parameter.name) or f"{klass.__name__} hyperparameter.") + _choices(convert),
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
