"""Every evaluated parameter set of a fit, and the formats ``results()`` returns."""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.contracts.protocols import NormalEquations, WorkerActivity
from modelfit_core.contracts.units import error_quantity, with_unit
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.results.pareto import ParetoFront


RESULT_KEYS = ("errors", "error", "diverged", "round", "objective_errors",
               "objective_errors_normalized")
"""The bookkeeping keys of ``results()`` (list, dict) and columns of its DataFrame and
of ``results.csv``, beside one per fitted parameter."""
RESULT_PREFIXES = ("error_", "normalized_error_", "objective_")
"""Prefixes of the DataFrame's columns per output or objective."""


def clashing_result_names(names) -> list[str]:
    """The parameter ``names`` that a results table would confuse with its own keys
    (:data:`RESULT_KEYS`, or a name starting with one of :data:`RESULT_PREFIXES`)."""
    return [name for name in names
            if name in RESULT_KEYS or name.startswith(RESULT_PREFIXES)]


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
    objectives: dict[str, np.ndarray] = attrs.field(factory=dict)
    """With several objectives (``fit(objectives=...)``): each one's values (n_samples,),
    in order; ``told_errors`` is then the (n_samples, n_objectives) matrix told."""
    normal_equations: NormalEquations | None = None
    """With a gradient optimizer: the normal equations it was told with the errors
    (what replaying the round tells again)."""
    workers: tuple[WorkerActivity, ...] = ()
    """With a backend spread over workers (dask): what each worker did this round."""


@attrs.frozen
class OutputErrors:
    """One output's errors over all evaluated parameter sets, with their units."""

    normalized: np.ndarray
    normalized_dim: Any
    raw: np.ndarray
    """Before normalization (the metric's ``revert_normalization``)."""
    raw_dim: Any

    def normalized_values(self, use_units: bool):
        return error_quantity(self.normalized, self.normalized_dim) if use_units \
            else self.normalized

    def raw_values(self, use_units: bool):
        return error_quantity(self.raw, self.raw_dim) if use_units else self.raw

    def normalized_value(self, k: int, use_units: bool):
        value = float(self.normalized[k])
        return error_quantity(value, self.normalized_dim) if use_units else value

    def raw_value(self, k: int, use_units: bool):
        value = float(self.raw[k])
        return error_quantity(value, self.raw_dim) if use_units else value


@attrs.define
class History:
    """All rounds of a fit, with the best parameter set found so far."""

    space: ParameterSpace
    error_dim: Any
    rounds: list[RoundRecord] = attrs.field(factory=list)
    best_vector: np.ndarray | None = None
    best_error: float = np.inf
    best_objective_errors: dict[str, float] = attrs.field(factory=dict)
    front: ParetoFront | None = None
    """With several objectives: the Pareto front of every evaluation so far; the best
    is then its chosen member (:meth:`ParetoFront.chosen`), not the smallest total."""

    def add(self, record: RoundRecord) -> bool:
        """Append a round; return True if it holds a new best (diverged sets never do)."""
        self.rounds.append(record)
        if record.objectives:
            if self.front is None:
                self.front = ParetoFront(tuple(record.objectives))
            self.front.add(len(self.rounds) - 1, np.column_stack(list(
                record.objectives.values())), ~record.diverged & np.isfinite(record.errors))
            return self.choose_best()
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

    def choose_best(self, weights=None, keep_weights: bool = True) -> bool:
        """With several objectives: make the front's chosen member the best (with new
        ``weights`` unless ``keep_weights``); return True if the best changed."""
        if self.front is None:  # one objective: the best is the lowest error already
            return False
        if not keep_weights:
            self.front.weights = weights
        k = self.front.chosen()
        if k is None:
            return False
        position, sample = self.front.rows[k]
        record = self.rounds[position]
        vector = record.parameters[sample]
        if self.best_vector is not None and np.array_equal(vector, self.best_vector):
            return False
        self.best_vector, self.best_error = vector.copy(), float(record.errors[sample])
        self.best_objective_errors = {name: float(values[sample]) for name, values
                                      in record.objective_errors.items()}
        return True

    def objective_values(self) -> np.ndarray:
        """With several objectives: every evaluation's objective vector (n, k)."""
        if self.front is None:
            return np.empty((0, 0))
        return np.vstack([np.column_stack([r.objectives[n] for n in self.front.names])
                          for r in self.rounds])

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

    def objective_errors(self, name: str) -> np.ndarray:
        """The normalized error of output ``name`` of every evaluated parameter set."""
        if not self.rounds:
            return np.empty(0)
        return np.concatenate([np.asarray(r.objective_errors[name], dtype=float)
                               for r in self.rounds])

    def results(self, format: str = "list", use_units: bool = True,
                per_output: Mapping[str, "OutputErrors"] | None = None):
        """Every evaluated parameter set with its error.

        Parameters
        ----------
        format : {"list", "dict", "dataframe"}
            A list of dicts, a dict of arrays, or a pandas DataFrame (no units).
        use_units : bool
            Attach Brian units to parameters and errors (list and dict only).
        per_output : dict, optional
            With several outputs, each output's errors (:class:`OutputErrors`):
            added as ``objective_errors`` and ``objective_errors_normalized``
            ({output: value}) to each entry, or as columns ``error_<output>``
            and ``normalized_error_<output>`` of the DataFrame, as
            brian2modelfitting gives them.

        The error is under ``errors`` (the manual's key) and ``error``
        (brian2modelfitting's code's key). With several objectives the DataFrame
        also has a column ``objective_<name>`` per objective (the values told to
        the optimizer, before the penalty of diverged sets).
        """
        parameters, errors, diverged, rounds = self.stacked()
        names, dims = self.space.names, self.space.dims
        per_output = dict(per_output or {})
        if format == "dataframe":
            import pandas as pd
            frame = pd.DataFrame({name: parameters[:, k] for k, name in enumerate(names)})
            frame["errors"] = errors
            frame["error"] = errors
            frame["diverged"] = diverged
            frame["round"] = rounds
            for output, values in per_output.items():
                frame[f"normalized_error_{output}"] = values.normalized
            for output, values in per_output.items():
                frame[f"error_{output}"] = values.raw
            if self.front is not None:
                for name, column in zip(self.front.names, self.objective_values().T):
                    frame[f"objective_{name}"] = column
            return frame
        if format == "dict":
            out: dict[str, Any] = {}
            for k, (name, dim) in enumerate(zip(names, dims)):
                out[name] = with_unit(parameters[:, k], dim) if use_units else parameters[:, k]
            out["errors"] = error_quantity(errors, self.error_dim) if use_units else errors
            out["error"] = out["errors"]
            out["diverged"] = diverged
            out["round"] = rounds
            if per_output:
                out["objective_errors"] = {n: v.raw_values(use_units)
                                           for n, v in per_output.items()}
                out["objective_errors_normalized"] = {n: v.normalized_values(use_units)
                                                      for n, v in per_output.items()}
            return out
        if format == "list":
            rows = []
            for k, (row, error, flag, index) in enumerate(zip(parameters, errors, diverged,
                                                              rounds)):
                entry = self.space.to_dict(row, use_units=use_units)
                entry["errors"] = error_quantity(float(error), self.error_dim) \
                    if use_units else float(error)
                entry["error"] = entry["errors"]
                entry["diverged"] = bool(flag)
                entry["round"] = int(index)
                if per_output:
                    entry["objective_errors"] = {n: v.raw_value(k, use_units)
                                                 for n, v in per_output.items()}
                    entry["objective_errors_normalized"] = {
                        n: v.normalized_value(k, use_units) for n, v in per_output.items()}
                rows.append(entry)
            return rows
        raise ConfigurationError(f"Unknown results format {format!r}; use 'list', 'dict' "
                                 f"or 'dataframe'.")
