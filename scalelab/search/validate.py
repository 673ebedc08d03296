"""Typed reading of settings tables (a study file's tables, or flags in the same shape) into dataclasses.

Each value is checked against the field's annotation before the dataclass is made, so that a wrong type
is one line naming where it came from, the key, what was expected and what was given: TOML's
``trials = 2.5``, ``prune = "no"`` or ``lr = "1e-3"`` never reach a study. Numbers must be finite.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from scalelab.errors import ScalelabError, SearchError
from scalelab.search.targets import Target, parse_target


def make(cls: type, values: Any, where: str, from_flags: Mapping[str, str] | None = None) -> Any:
    """``cls(**values)`` after checking every key and value; ``where`` names the table in messages
    (for example ``studies/grid.toml: [search]``); keys in ``from_flags`` came from the command line and
    are named by the flag given there."""
    from_flags = from_flags or {}
    if not isinstance(values, dict):
        raise SearchError(f"{where} must be a table of settings, got {_given(values)}")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(values) - set(names))
    flagged = [from_flags[key] for key in unknown if key in from_flags]
    if flagged:  # a flag of another kind of study, such as --no-prune given for a sweep
        raise SearchError(f"{', '.join(flagged)} does not apply to {where}, whose settings are {', '.join(names)}")
    if unknown:
        raise SearchError(f"{where}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(names)}")
    hints = typing.get_type_hints(cls)
    checked = {key: convert(value, hints[key], from_flags.get(key, f"{where} {key}")) for key, value in values.items()}
    try:
        return cls(**checked)
    except ScalelabError as exc:
        raise type(exc)(f"{where}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise SearchError(f"{where}: {exc}") from exc


def convert(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the type ``hint`` describes (lists become tuples, target strings :class:`Target`)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return convert(value, options[0], where)
        raise SearchError(f"{where}: unsupported setting type {hint}")  # not used by any settings class
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise SearchError(f"{where}: expected a list, got {_given(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise SearchError(f"{where}: expected a list of {len(args)} values, got {_given(value)}")
        return tuple(convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is typing.Literal:
        if value not in args:
            raise SearchError(f"{where}: expected one of {', '.join(map(repr, args))}, got {_given(value)}")
        return value
    if hint is Target:
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Target)):
            raise SearchError(f"{where}: expected a target such as \"2x\" or \"800M\", got {_given(value)}")
        return parse_target(value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise SearchError(f"{where}: expected true or false, got {_given(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SearchError(f"{where}: expected a whole number, got {_given(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SearchError(f"{where}: expected a number, got {_given(value)}")
        if not math.isfinite(value):
            raise SearchError(f"{where}: expected a finite number, got {value}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SearchError(f"{where}: expected a string, got {_given(value)}")
        return value
    return value


def _given(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"
