"""Reading a study database's rows as data that may be damaged.

A database is a file: it can be edited by hand, truncated by a full disk, or
written by someone else. Every value read from it is decoded here and checked
for its type, shape and range (JSON of the right kind, names distinct, one
value per fitted parameter, finite bounds, ...). A value that is not what
modelfit writes raises :class:`DamagedRow`, which :func:`damaged_rows` turns
into a :class:`~modelfit_core.contracts.errors.StorageError` naming the file,
the study, the row and the column, never a raw ``JSONDecodeError``,
``KeyError``, ``IndexError`` or ``RecursionError``.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from modelfit_core.contracts.errors import StorageError

MAX_JSON_CHARS = 10_000_000
"""Longer JSON texts are refused before parsing (a study row is a few kilobytes)."""
BASE_UNITS = 7
"""A dimension is stored as the exponents of the seven SI base units."""


class DamagedRow(ValueError):
    """A stored value is not what modelfit writes (the message says which and why)."""


def _json(value: Any, column: str) -> Any:
    if isinstance(value, bytes):
        raise DamagedRow(f"column {column} holds bytes, not JSON text")
    if not isinstance(value, str):
        raise DamagedRow(f"column {column} holds {value!r}, not JSON text")
    if len(value) > MAX_JSON_CHARS:
        raise DamagedRow(f"column {column} holds {len(value)} characters of JSON, more than "
                         f"modelfit ever writes")
    try:
        return json.loads(value)
    except RecursionError:
        raise DamagedRow(f"column {column} holds JSON nested too deep") from None
    except ValueError as exc:
        raise DamagedRow(f"column {column} is not valid JSON ({exc})") from None


def _number(value: Any, column: str, *, finite: bool = True, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DamagedRow(f"column {column} holds {_short(value)}, not a number")
    value = float(value)
    if finite and not math.isfinite(value):
        raise DamagedRow(f"column {column} holds {value!r}, not a finite number")
    return value


def integer(value: Any, column: str, minimum: int | None = None) -> int:
    """A stored integer (not a bool, a float or text), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DamagedRow(f"column {column} holds {_short(value)}, not an integer")
    if minimum is not None and value < minimum:
        raise DamagedRow(f"column {column} holds {value}, less than {minimum}")
    return value


def number(value: Any, column: str, *, finite: bool = True, allow_none: bool = False):
    """A stored real number (None where ``allow_none``)."""
    return _number(value, column, finite=finite, allow_none=allow_none)


def names(value: Any, column: str, *, empty: bool = False) -> list[str]:
    """A JSON list of distinct strings."""
    decoded = _json(value, column)
    if not isinstance(decoded, list) or not all(isinstance(n, str) for n in decoded):
        raise DamagedRow(f"column {column} holds {_short(decoded)}, not a list of names")
    if not decoded and not empty:
        raise DamagedRow(f"column {column} holds an empty list")
    repeated = sorted({n for n in decoded if decoded.count(n) > 1})
    if repeated:
        raise DamagedRow(f"column {column} names {', '.join(map(repr, repeated))} twice")
    return decoded


def numbers(value: Any, column: str, length: int | None, *, finite: bool = True,
            allow_none: bool = False) -> list:
    """A JSON list of ``length`` numbers (None entries where ``allow_none``)."""
    decoded = _json(value, column)
    if not isinstance(decoded, list):
        raise DamagedRow(f"column {column} holds {_short(decoded)}, not a list of numbers")
    if length is not None and len(decoded) != length:
        raise DamagedRow(f"column {column} holds {len(decoded)} values where {length} are "
                         f"expected")
    return [_number(v, f"{column}[{k}]", finite=finite, allow_none=allow_none)
            for k, v in enumerate(decoded)]


def dimension(value: Any, column: str) -> list[float]:
    """A dimension's JSON text: the exponents of the seven SI base units."""
    if isinstance(value, list):  # an element of parameter_units, already decoded
        decoded = value
    else:
        decoded = _json(value, column)
    if not isinstance(decoded, list) or len(decoded) != BASE_UNITS:
        raise DamagedRow(f"column {column} holds {_short(decoded)}, not the exponents of "
                         f"the {BASE_UNITS} SI base units")
    exponents = []
    for k, v in enumerate(decoded):
        exponent = _number(v, f"{column}[{k}]")
        assert exponent is not None  # None is refused unless allow_none
        exponents.append(exponent)
    return exponents


def dimensions(value: Any, column: str, length: int) -> list[str]:
    """``parameter_units``: a JSON list of ``length`` dimension texts; returns the texts."""
    decoded = _json(value, column)
    if not isinstance(decoded, list) or len(decoded) != length:
        raise DamagedRow(f"column {column} holds {_short(decoded)}, not a list of "
                         f"{length} units")
    for k, text in enumerate(decoded):
        if not isinstance(text, str):
            raise DamagedRow(f"column {column}[{k}] holds {_short(text)}, not a unit")
        dimension(text, f"{column}[{k}]")
    return decoded


def objective_errors(value: Any, column: str) -> dict[str, float | None]:
    """``{output name: error or None}``."""
    decoded = _json(value, column)
    if not isinstance(decoded, dict):
        raise DamagedRow(f"column {column} holds {_short(decoded)}, not a table of errors "
                         f"per output")
    return {str(name): _number(v, f"{column}[{name!r}]", finite=False, allow_none=True)
            for name, v in decoded.items()}


def study_columns(stored: dict[str, Any]) -> dict[str, Any]:
    """The decoded columns of a ``studies`` row (raises :class:`DamagedRow`)."""
    parameter_names = names(stored.get("parameter_names"), "parameter_names")
    n = len(parameter_names)
    decoded = {
        "parameter_names": parameter_names,
        "parameter_units": dimensions(stored.get("parameter_units"), "parameter_units", n),
        "lower": numbers(stored.get("lower"), "lower", n),
        "upper": numbers(stored.get("upper"), "upper", n),
        "error_unit": dimension(stored.get("error_unit"), "error_unit"),
    }
    for k, name in enumerate(parameter_names):
        if decoded["lower"][k] > decoded["upper"][k]:
            raise DamagedRow(f"the bounds of {name!r} are reversed (lower "
                             f"{decoded['lower'][k]!r} > upper {decoded['upper'][k]!r})")
    if "output_names" in stored:
        decoded["output_names"] = names(stored["output_names"], "output_names", empty=True)
    if "objective_names" in stored:
        objectives = stored["objective_names"]
        decoded["objective_names"] = [] if objectives is None else \
            names(objectives, "objective_names", empty=True)
    for column, minimum in (("n_samples", 1), ("optimizer_rounds", 1),
                            ("first_iteration", None)):
        if column in stored:
            decoded[column] = integer(stored[column], column, minimum)
    if stored.get("data_identity"):
        identity = _json(stored["data_identity"], "data_identity")
        if not isinstance(identity, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in identity.items()):
            raise DamagedRow(f"column data_identity holds {_short(identity)}, not a table "
                             f"of texts")
        decoded["data_identity"] = identity
    if "name" in stored and not isinstance(stored["name"], str):
        raise DamagedRow(f"column name holds {_short(stored['name'])}, not text")
    return decoded


@contextlib.contextmanager
def located(where: str):
    """A :class:`DamagedRow` raised in the block names ``where``."""
    try:
        yield
    except DamagedRow as exc:
        raise DamagedRow(f"{where}: {exc}") from None


def parameter_count(connection: sqlite3.Connection, study: str) -> int:
    """How many parameters the study fits (its evaluations hold as many values)."""
    row = connection.execute("SELECT parameter_names FROM studies WHERE name = ?",
                             (study,)).fetchone()
    if row is None:
        raise DamagedRow("its evaluations have no studies row")
    with located("studies row"):
        return len(names(row[0], "parameter_names"))


def evaluation(entry, width: int, objective_names, has_told: bool) -> dict[str, Any]:
    """The decoded columns of one ``evaluations`` row (``entry``: parameters, error,
    diverged, objective_errors, told, objectives, told_objectives)."""
    parameters, error, diverged, errors, told, objectives, told_objectives = entry
    decoded = {
        "parameters": numbers(parameters, "parameters", width),
        "error": number(error, "error", allow_none=True),
        "diverged": bool(integer(diverged, "diverged", 0)),
        "objective_errors": objective_errors(errors, "objective_errors"),
        "told": number(told, "told", finite=False, allow_none=True)
        if has_told else None,
    }
    if decoded["error"] is None:
        decoded["error"] = np.inf
    if objective_names:
        count = len(objective_names)
        decoded["objectives"] = [np.inf if v is None else v for v in numbers(
            objectives, "objectives", count, allow_none=True)]
        decoded["told_objectives"] = numbers(told_objectives, "told_objectives",
                                                         count)
    return decoded


def short(value: Any) -> str:
    """``repr(value)``, at most 60 characters (a stored value quoted in a message)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_short = short


@contextlib.contextmanager
def damaged_rows(path: Path, study: str):
    """A :class:`DamagedRow` raised in the block becomes a :class:`StorageError` naming
    the database and the study."""
    try:
        yield
    except DamagedRow as exc:
        raise StorageError(
            f"The fit database {path} holds a damaged row in study {study!r}: {exc}. Was "
            f"it changed by hand or by another program? Restore it from a copy, or give "
            f"storage= a new file (or another study=) to start again.") from None
