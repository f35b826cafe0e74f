"""The search space of a sweep, read from trainer.py's own flags (util/search.py runs the study).

A trainer.py flag given ``LOW:HIGH`` (``LOW:HIGH:log`` for a log scale) is a range, an int or a float one as the
flag's annotation says (an int|float flag such as --limit_train_batches is int when both bounds are); ``a,b,c``
is a set of choices, each parsed like the flag itself; anything else is fixed for all trials. Flags that take a
comma-separated list (--devices 0,1) keep their comma. Bad input is a SweepError: one line, before any trial.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

RANGE = re.compile(r"^(?P<low>[^:,]+):(?P<high>[^:,]+)(?P<log>:log)?$")


class SweepError(ValueError):
    """Bad input, reported in one line before any trial starts."""


@dataclass
class Param:
    """One searched flag: a range (low, high, log, integer) or a list of choices (parsed like the flag)."""

    flag: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: list[Any] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.flag.lstrip("-")

    def distribution(self) -> Any:
        import optuna.distributions as d

        if self.choices:
            return d.CategoricalDistribution(self.choices)
        if self.integer:
            return d.IntDistribution(int(self.low), int(self.high), log=self.log)
        return d.FloatDistribution(self.low, self.high, log=self.log)

    def grid(self) -> list[Any]:
        if self.choices:
            return list(self.choices)
        if self.integer and not self.log:
            return list(range(int(self.low), int(self.high) + 1))
        raise SweepError(f"{self.flag}: --sampler grid needs choices (a,b,c) or an integer range, not a float range")


def split_flags(tokens: list[str], parser: Any) -> list[tuple[str, list[str]]]:
    """(flag, values) pairs of trainer.py flags, as typed; an unknown flag is a SweepError."""
    actions = {option: action for action in parser._actions for option in action.option_strings}
    pairs, i = [], 0
    while i < len(tokens):
        token = tokens[i]
        flag, _, inline = token.partition("=")
        if not flag.startswith("--") or flag not in actions:
            raise SweepError(f"unknown flag {token!r} (python trainer.py --help lists the flags a trial takes)")
        action = actions[flag]
        if inline:
            values, i = [inline], i + 1
        elif action.nargs == 0:  # --swa, --lr_find: no value
            values, i = [], i + 1
        elif action.nargs in ("+", "*"):  # --gpus 0 1
            end = i + 1
            while end < len(tokens) and not tokens[end].startswith("--"):
                end += 1
            values, i = tokens[i + 1:end], end
        else:  # exactly one value, which may start with "-" (--seed -1)
            values, i = tokens[i + 1:i + 2], i + 2
        if action.nargs != 0 and not values:
            raise SweepError(f"{flag} needs a value")
        pairs.append((flag, values))
    return pairs


def classify(flag: str, text: str, convert: Any) -> Param | None:
    """A Param when text is a range or a set of choices of this flag, else None (a fixed value)."""
    kinds = [description for description, _ in getattr(convert, "attempts", [])]
    takes_list = any(kind.startswith("comma-separated") for kind in kinds)
    if match := RANGE.match(text):
        try:
            low, high = float(match["low"]), float(match["high"])
        except ValueError:
            match = None
    if match:
        if "a number" not in kinds and "an integer" not in kinds:
            raise SweepError(f"{flag} {text}: a range needs a numeric flag")
        integer = "an integer" in kinds and (
            "a number" not in kinds or all(re.fullmatch(r"[+-]?\d+", bound) for bound in (match["low"], match["high"])))
        if integer and not all(re.fullmatch(r"[+-]?\d+", bound) for bound in (match["low"], match["high"])):
            raise SweepError(f"{flag} {text}: {flag} takes integers")
        if low >= high:
            raise SweepError(f"{flag} {text}: empty range (LOW must be below HIGH)")
        if match["log"] and low <= 0:
            raise SweepError(f"{flag} {text}: a log range must stay above 0")
        for bound in (match["low"], match["high"]):
            _convert(flag, bound, convert)
        return Param(flag, low=low, high=high, log=bool(match["log"]), integer=integer)
    if "," in text and not takes_list:
        choices = text.split(",")
        if any(not choice.strip() for choice in choices):
            raise SweepError(f"{flag} {text}: an empty choice")
        # Parsed like the flag (--hidden 16,32 gives ints): Optuna then records typed values.
        values = [_convert(flag, choice.strip(), convert) for choice in choices]
        values = [value if isinstance(value, (bool, int, float, str, type(None))) else text
                  for value, text in zip(values, choices)]
        return Param(flag, choices=list(dict.fromkeys(values)))
    return None


def _convert(flag: str, text: str, convert: Any) -> Any:
    try:
        return convert(text) if convert is not None else text
    except Exception as error:  # noqa: BLE001 - argparse's ArgumentTypeError, or a plain type's own error
        raise SweepError(f"{flag} {text}: {error}") from None


def fixed_and_searched(tokens: list[str], parser: Any) -> tuple[list[str], list[Param]]:
    """trainer.py's flags (tokens, checked against its parser) split into the fixed ones and the searched ones."""
    fixed: list[str] = []
    space: list[Param] = []
    for flag, values in split_flags(tokens, parser):
        if flag in ("--name", "--version", "--resume"):
            raise SweepError(f"{flag}: a sweep names its runs itself (the series is --study)")
        action = next(action for action in parser._actions if flag in action.option_strings)
        param = classify(flag, values[0], action.type) if len(values) == 1 and action.nargs is None else None
        if param is None:
            fixed += [flag, *values]
        elif flag in ("--model", "--dataset", "--save_dir"):
            raise SweepError(f"{flag} cannot be searched: a study trains one model on one dataset")
        elif any(other.flag == flag for other in space):
            raise SweepError(f"{flag} is searched twice")
        else:
            space.append(param)
    _check_parses(parser, fixed, space)
    return fixed, space


def given_value(tokens: list[str], flag: str) -> str | None:
    """The value of a flag among the tokens (the last one given), or None."""
    value = None
    for i, token in enumerate(tokens):
        if token == flag and i + 1 < len(tokens):
            value = tokens[i + 1]
        elif token.startswith(f"{flag}="):
            value = token.split("=", 1)[1]
    return value


def _check_parses(parser: Any, fixed: list[str], space: list[Param]) -> None:
    """Every trial's command line must parse: try the fixed flags with the first value of each searched one."""
    probe = list(fixed)
    for param in space:
        first = param.choices[0] if param.choices else (int(param.low) if param.integer else param.low)
        probe += [param.flag, str(first)]

    def refuse(message: str) -> None:
        raise SweepError(message)

    parser.error = refuse  # argparse would print its usage and exit: one line is enough here
    parser.parse_args(probe)


def values_of(params: dict[str, Any], space: list[Param]) -> list[str]:
    """The trainer.py flags for a trial's sampled parameters."""
    argv = []
    for param in space:
        value = params[param.name]
        argv += [param.flag, repr(value) if isinstance(value, float) else str(value)]
    return argv
