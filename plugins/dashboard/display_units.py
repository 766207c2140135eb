"""Values and axes in the units a user reads (``12.3 nS``, an axis in mV).

Units are stored as JSON exponents of the SI base units (m, kg, s, A, K, mol,
cd; :func:`~modelfit_core.results.study_description.dimension_json`). They
are named here without Brian (which the server need not import): a named
unit (V, A, S, F, Ω, s, ...) or a power of one (V^2 for a squared error), a
named unit per length power (S/m^2), or else the base units. Anything else in
a database (a hand-edited or damaged file) is shown as a plain SI number,
never raised.
"""

from __future__ import annotations

import json
import math

Dimension = tuple[float, ...]
"""Exponents of m, kg, s, A, K, mol, cd."""

_BASE = ("m", "kg", "s", "A", "K", "mol", "cd")
_NAMED: dict[str, Dimension] = {
    "V": (2, 1, -3, -1, 0, 0, 0), "A": (0, 0, 0, 1, 0, 0, 0), "S": (-2, -1, 3, 2, 0, 0, 0),
    "F": (-2, -1, 4, 2, 0, 0, 0), "Ω": (2, 1, -3, -2, 0, 0, 0), "s": (0, 0, 1, 0, 0, 0, 0),
    "Hz": (0, 0, -1, 0, 0, 0, 0), "C": (0, 0, 1, 1, 0, 0, 0), "W": (2, 1, -3, 0, 0, 0, 0),
    "m": (1, 0, 0, 0, 0, 0, 0), "K": (0, 0, 0, 0, 1, 0, 0), "mol": (0, 0, 0, 0, 0, 1, 0),
}
"""Units a neuron model uses, by symbol."""
_PREFIXED = {"V", "A", "S", "F", "Ω", "s", "Hz", "C", "W", "m"}
_PREFIXES = {-15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M"}
SECOND: Dimension = _NAMED["s"]
DIMENSIONLESS: Dimension = (0, 0, 0, 0, 0, 0, 0)


def dimension_of(text) -> Dimension | None:
    """The dimension stored as ``text``; None if it cannot be read."""
    try:
        exponents = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        return None
    if not (isinstance(exponents, list) and len(exponents) == 7
            and all(isinstance(e, (int, float)) and not isinstance(e, bool)
                    and math.isfinite(e) and abs(e) <= 24 for e in exponents)):
        return None
    return tuple(float(e) for e in exponents)


def _power_text(symbol: str, power: float) -> str:
    if power == 1:
        return symbol
    shown = f"{power:g}"
    return f"{symbol}^{shown}"


def unit_symbol(dim: Dimension | None) -> str:
    """The unit of ``dim`` (``'V'``, ``'V^2'``, ``'S/m^2'``, ``'m^2 kg s^-1'``);
    ``''`` when dimensionless or unknown."""
    if dim is None or all(e == 0 for e in dim):
        return ""
    for symbol, unit in _NAMED.items():
        for power in (1, 2, 3, -1, -2, 0.5):
            if all(abs(d - power * u) < 1e-9 for d, u in zip(dim, unit)):
                return _power_text(symbol, power)
    for symbol, unit in _NAMED.items():
        if symbol == "m":
            continue
        rest = [d - u for d, u in zip(dim, unit)]
        if rest[0] != 0 and all(abs(r) < 1e-9 for r in rest[1:]):
            length = rest[0]
            return f"{symbol}/{_power_text('m', -length)}" if length < 0 else \
                f"{symbol} {_power_text('m', length)}"
    return " ".join(_power_text(b, e) for b, e in zip(_BASE, dim) if e != 0)


def axis_unit(dim: Dimension | None, typical: float) -> tuple[str, float]:
    """``(label, scale)``: values divided by ``scale`` read in ``label`` (``('mV', 1e-3)``).

    A prefix is chosen for a named unit (V, A, S, F, s, ...) so that
    ``typical`` (a value of the data, SI) reads between 1 and 1000.
    """
    symbol = unit_symbol(dim)
    if symbol not in _PREFIXED or not math.isfinite(typical) or typical == 0:
        return symbol, 1.0
    power = 3 * math.floor(math.log10(abs(typical)) / 3)
    power = min(max(power, min(_PREFIXES)), max(_PREFIXES))
    return _PREFIXES[power] + symbol, 10.0 ** power


def format_value(value, dim: Dimension | None) -> str:
    """``value`` (SI) with its unit, six significant digits; ``'—'`` if not a number."""
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    if not math.isfinite(value):
        return str(value)
    label, scale = axis_unit(dim, value)
    text = f"{value / scale:.6g}"
    return f"{text} {label}" if label else text
