"""Every evaluated parameter set of a fit, and the formats ``results()`` returns."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.contracts.units import error_quantity, with_unit
from modelfit_core.model.parameters import ParameterSpace


@attrs.define
class RoundRecord:
    """One round: parameters (n_samples, n_params) in SI and their errors."""

    index: int
    parameters: np.ndarray
    errors: np.ndarray
    diverged: np.ndarray
    objective_errors: dict[str, np.ndarray] = attrs.field(factory=dict)
    duration_s: float = 0.0
    told_errors: np.ndarray | None = None
    """The errors the optimizer was told (diverged sets replaced, see
    ``errors_for_optimizer``): what replaying the round tells again."""
    iteration: int = 0
    """Value of the model's ``iteration`` variable in this round."""


@attrs.define
class History:
    """All rounds of a fit, with the best parameter set found so far."""

    space: ParameterSpace
    error_dim: Any
    rounds: list[RoundRecord] = attrs.field(factory=list)
    best_vector: np.ndarray | None = None
    best_error: float = np.inf
    best_objective_errors: dict[str, float] = attrs.field(factory=dict)

    def add(self, record: RoundRecord) -> bool:
        """Append a round; return True if it holds a new best (diverged sets never do)."""
        self.rounds.append(record)
        finite = np.where(record.diverged | ~np.isfinite(record.errors), np.inf, record.errors)
        if finite.size == 0 or not np.isfinite(finite).any():
            return False
        k = int(np.argmin(finite))
        if finite[k] < self.best_error:
            self.best_error = float(finite[k])
            self.best_vector = record.parameters[k].copy()
            self.best_objective_errors = {name: float(values[k]) for name, values
                                          in record.objective_errors.items()}
            return True
        return False

    def worst_finite_error(self) -> float | None:
        """The largest finite error seen, used to score diverged simulations."""
        worst = None
        for record in self.rounds:
            finite = record.errors[np.isfinite(record.errors) & ~record.diverged]
            if finite.size:
                value = float(finite.max())
                worst = value if worst is None else max(worst, value)
        return worst

    @property
    def n_evaluations(self) -> int:
        return sum(len(r.errors) for r in self.rounds)

    def stacked(self):
        """All rounds concatenated: (parameters, errors, diverged, round index)."""
        if not self.rounds:
            n = len(self.space.names)
            return (np.empty((0, n)), np.empty(0), np.empty(0, dtype=bool),
                    np.empty(0, dtype=int))
        return (np.concatenate([r.parameters for r in self.rounds]),
                np.concatenate([r.errors for r in self.rounds]),
                np.concatenate([r.diverged for r in self.rounds]),
                np.concatenate([np.full(len(r.errors), r.index) for r in self.rounds]))

    def results(self, format: str = "list", use_units: bool = True):
        """Every evaluated parameter set with its error.

        Parameters
        ----------
        format : {"list", "dict", "dataframe"}
            A list of dicts, a dict of arrays, or a pandas DataFrame (no units).
        use_units : bool
            Attach Brian units to parameters and errors (list and dict only).
        """
        parameters, errors, diverged, rounds = self.stacked()
        names, dims = self.space.names, self.space.dims
        if format == "dataframe":
            import pandas as pd
            frame = pd.DataFrame({name: parameters[:, k] for k, name in enumerate(names)})
            frame["errors"] = errors
            frame["diverged"] = diverged
            frame["round"] = rounds
            return frame
        if format == "dict":
            out: dict[str, Any] = {}
            for k, (name, dim) in enumerate(zip(names, dims)):
                out[name] = with_unit(parameters[:, k], dim) if use_units else parameters[:, k]
            out["errors"] = error_quantity(errors, self.error_dim) if use_units else errors
            out["diverged"] = diverged
            out["round"] = rounds
            return out
        if format == "list":
            rows = []
            for row, error, flag, index in zip(parameters, errors, diverged, rounds):
                entry = self.space.to_dict(row, use_units=use_units)
                entry["errors"] = error_quantity(float(error), self.error_dim) \
                    if use_units else float(error)
                entry["diverged"] = bool(flag)
                entry["round"] = int(index)
                rows.append(entry)
            return rows
        raise ConfigurationError(f"Unknown results format {format!r}; use 'list', 'dict' "
                                 f"or 'dataframe'.")
