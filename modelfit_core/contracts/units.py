"""Brian 2 units at modelfit's edges: checks, names and conversions.

Inside modelfit every value is an SI float; these helpers check what users
give, and attach units again to what they get back.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from brian2 import Quantity, get_dimensions, second
from brian2.units.fundamentalunits import DIMENSIONLESS, DimensionMismatchError, get_unit

from modelfit_core.contracts.errors import ConfigurationError

class UnitMismatchError(ConfigurationError, DimensionMismatchError):
    """A quantity has physical dimensions other than the ones required.

    Also Brian's ``DimensionMismatchError`` (and a ``ValueError``), so that code
    written for brian2modelfitting catches it as before.
    """

    def __init__(self, message: str, *dims):
        DimensionMismatchError.__init__(self, message, *dims)

    def __str__(self) -> str:
        return DimensionMismatchError.__str__(self) if self.dims else str(self.desc)


_SI_BASE_NAMES = ("metre", "kilogram", "second", "amp", "kelvin", "mole", "candle")
_SI_BASE_SYMBOLS = ("m", "kg", "s", "A", "K", "mol", "cd")


def unit_name(dim) -> str:
    """A readable unit for messages: ``'volt'``, ``'siemens / (meter ** 2)'``, ``'dimensionless'``."""
    return "dimensionless" if dim is DIMENSIONLESS else repr(get_unit(dim))


def unit_text(dim) -> str:
    """The unit of ``dim`` as Brian's equation parser reads it: ``'1'`` or SI base units.

    Brian's preferred unit names are not always parseable in equations
    (``volt2``, ``siemens / (meter ** 2)``), so the declaration is written in
    base units, e.g. ``'metre ** 4 * kilogram ** 2 * second ** -6 * amp ** -2'``
    for volt².
    """
    if dim is DIMENSIONLESS:
        return "1"
    parts = []
    for name, symbol in zip(_SI_BASE_NAMES, _SI_BASE_SYMBOLS):
        exponent = float(dim.get_dimension(symbol))
        if exponent == 0:
            continue
        text = f"{int(exponent)}" if exponent.is_integer() else repr(exponent)
        parts.append(name if text == "1" else f"{name} ** {text}")
    return " * ".join(parts)


def format_quantity(value: float, dim) -> str:
    """Human-readable value with the best-fitting Brian unit (e.g. ``'12.3 nS'``)."""
    if dim is DIMENSIONLESS:
        return f"{value:.6g}"
    quantity = cast(Quantity, Quantity(value, dim=dim))  # Brian's __new__ is not annotated
    return str(quantity.in_best_unit(precision=6))


def with_unit(value, dim):
    """SI float(s) -> Brian Quantity (plain float or array when dimensionless)."""
    if dim is DIMENSIONLESS:
        return value
    return Quantity(value, dim=dim)


def error_quantity(value: float | np.ndarray, dim):
    """An error (or an array of errors) as a Brian Quantity (plain float or array when
    dimensionless)."""
    return with_unit(value, dim)


def seconds(value: Any, name: str) -> float:
    """``value`` (a time with units) in seconds; names ``name`` when it is not a time.

    Raises
    ------
    UnitMismatchError
        If ``value`` has no units of time.
    """
    if get_dimensions(value) is not get_dimensions(second):
        raise UnitMismatchError(f"{name} must be a time with units, e.g. {name}=5*ms; "
                                f"got {value!r}.")
    return float(value)
