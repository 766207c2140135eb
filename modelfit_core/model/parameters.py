"""The box of fitted parameters: names, physical dimensions and bounds."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import attrs
import numpy as np
from brian2 import get_dimensions
from brian2.units.fundamentalunits import DIMENSIONLESS
from brian2.units.fundamentalunits import get_unit

from modelfit_core.contracts.errors import ParameterError
from modelfit_core.contracts.units import UnitMismatchError
from modelfit_core.contracts.units import format_quantity, with_unit


def _as_si(value: Any, dim, name: str, role: str) -> float:
    """Convert one bound to an SI float, checking its dimensions."""
    value_dim = get_dimensions(value)
    if value_dim is not dim:
        expected = "no unit" if dim is DIMENSIONLESS else f"units of {get_unit(dim)!r}"
        got = "no unit" if value_dim is DIMENSIONLESS else repr(get_unit(value_dim))
        raise UnitMismatchError(
            f"The {role} bound of parameter {name!r} has {got}, but {name!r} is declared "
            f"with {expected} in the model. Give it as e.g. {name}=[1*{get_unit(dim)!r}, "
            f"10*{get_unit(dim)!r}]." if dim is not DIMENSIONLESS else
            f"The {role} bound of parameter {name!r} has {got}, but {name!r} is "
            f"dimensionless in the model. Give plain numbers.")
    try:
        number = float(np.asarray(value))
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"The {role} bound of {name!r} must be a single number, "
                             f"got {value!r}.") from exc
    if not np.isfinite(number):
        raise ParameterError(f"The {role} bound of {name!r} is {number}; bounds must be finite.")
    return number


@attrs.frozen
class ParameterSpace:
    """Fitted parameters with their dimensions and [lower, upper] bounds in SI units."""

    names: tuple[str, ...]
    dims: tuple[Any, ...]
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def from_bounds(cls, declared: Mapping[str, Any], bounds: Mapping[str, Sequence],
                    fixed: Sequence[str] = ()) -> "ParameterSpace":
        """Validate user bounds against the parameters declared in the model.

        Parameters
        ----------
        declared : mapping
            Parameter name -> Brian dimension, for every ``(constant)`` parameter.
        bounds : mapping
            Parameter name -> [lower, upper], with units.
        fixed : sequence of str
            Declared parameters given a value in ``param_init``; they need no bounds.
        """
        unknown = [name for name in bounds if name not in declared]
        if unknown:
            raise ParameterError(
                f"Bounds given for {', '.join(map(repr, unknown))}, which "
                f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'} of "
                f"the model. Fittable parameters are declared like 'gl : siemens (constant)'; "
                f"the model declares: {', '.join(sorted(declared)) or '(none)'}.")
        missing = [name for name in declared if name not in bounds and name not in fixed]
        if missing:
            raise ParameterError(
                f"Parameter{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                f"{'are' if len(missing) > 1 else 'is'} declared (constant) in the model but "
                f"{'have' if len(missing) > 1 else 'has'} no bounds. Pass bounds to fit(), "
                f"e.g. {missing[0]}=[lower, upper], or fix the value with "
                f"param_init={{{missing[0]!r}: value}}.")
        if not bounds:
            raise ParameterError("No parameters to fit: pass bounds to fit(), "
                                 "e.g. gl=[1*nS, 100*nS].")
        names = tuple(name for name in declared if name in bounds)
        lower, upper = [], []
        for name in names:
            pair = bounds[name]
            if isinstance(pair, (str, bytes)) or np.ndim(pair) != 1 or len(pair) != 2:
                raise ParameterError(f"Bounds of {name!r} must be [lower, upper], got {pair!r}.")
            low = _as_si(pair[0], declared[name], name, "lower")
            high = _as_si(pair[1], declared[name], name, "upper")
            if not low < high:
                raise ParameterError(
                    f"Bounds of {name!r}: the lower bound {pair[0]!r} is not below the upper "
                    f"bound {pair[1]!r}. Give [lower, upper] with lower < upper.")
            lower.append(low)
            upper.append(high)
        return cls(names=names, dims=tuple(declared[n] for n in names),
                   lower=np.array(lower), upper=np.array(upper))

    def sorted_by_name(self) -> "ParameterSpace":
        """The same space with the parameters in alphabetical order (the order of
        brian2modelfitting's Inferencer samples and posteriors)."""
        order = sorted(range(len(self.names)), key=lambda k: self.names[k])
        return ParameterSpace(names=tuple(self.names[k] for k in order),
                              dims=tuple(self.dims[k] for k in order),
                              lower=self.lower[order], upper=self.upper[order])

    def bounds_dict(self) -> dict[str, list[float]]:
        """name -> [lower, upper] in SI, the form optimizers receive."""
        return {n: [float(lo), float(hi)] for n, lo, hi in zip(self.names, self.lower, self.upper)}

    def same_as(self, other: "ParameterSpace | None") -> bool:
        return (other is not None and self.names == other.names
                and np.array_equal(self.lower, other.lower)
                and np.array_equal(self.upper, other.upper))

    def to_dict(self, vector: Sequence[float] | np.ndarray, use_units: bool = True) -> dict[str, Any]:
        """One parameter vector (SI) -> {name: value}, with units if asked."""
        return {name: (with_unit(float(v), dim) if use_units else float(v))
                for name, v, dim in zip(self.names, vector, self.dims)}

    def columns(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """(n_samples, n_params) matrix -> {name: column} in SI."""
        matrix = np.asarray(matrix, dtype=float).reshape(-1, len(self.names))
        return {name: matrix[:, k] for k, name in enumerate(self.names)}

    def vector_from(self, values: Mapping[str, Any]) -> np.ndarray:
        """{name: value with units} -> SI vector, checking units and completeness."""
        missing = [n for n in self.names if n not in values]
        if missing:
            raise ParameterError(f"Give values for {', '.join(missing)}: every fitted "
                                 f"parameter needs one (missing from params).")
        unknown = [n for n in values if n not in self.names]
        if unknown:
            raise ParameterError(
                f"Unknown parameter(s) {', '.join(map(repr, unknown))}; the fitted parameters "
                f"are {', '.join(self.names)}.")
        out = []
        for name, dim in zip(self.names, self.dims):
            value = values[name]
            if get_dimensions(value) is not dim and get_dimensions(value) is not DIMENSIONLESS:
                raise UnitMismatchError(f"Value of {name!r} has the wrong unit: {value!r}.")
            out.append(float(np.asarray(value)))
        return np.array(out)

    def describe(self, vector: Sequence[float] | np.ndarray) -> str:
        """``'gl=12.3 nS, g_na=45 uS'`` for logs and text feedback."""
        return ", ".join(f"{name}={format_quantity(float(v), dim)}"
                         for name, v, dim in zip(self.names, vector, self.dims))
