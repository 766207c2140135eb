"""The Pareto front of a multi-objective fit, as the fitters show it.

After ``fit(objectives=...)`` the history keeps the non-dominated points of
every evaluation (:mod:`modelfit_core.results.pareto`); these functions read a
:class:`~modelfit_core.fitting.fit.Fit`'s front with units, and choose the
member that ``best_params`` reports (``select``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_core.contracts.units import error_quantity, with_unit
from modelfit_core.fitting.fit import Fit
from modelfit_core.results.history import History
from modelfit_core.results.pareto import check_weights


def objective_names(fit: Fit | None) -> tuple[str, ...]:
    """The objectives of ``fit`` (empty for a single-objective fit, or no fit)."""
    return tuple(getattr(fit.objective, "objective_names", ())) if fit is not None else ()


def front_history(fit: Fit | None) -> History:
    """The history of a multi-objective fit with a non-empty front (FitStateError
    otherwise, saying why)."""
    if fit is None:
        raise FitStateError("No Pareto front yet: call fit(objectives=...) first.")
    if not objective_names(fit):
        raise FitStateError("This fit minimizes a single error, so it has no Pareto "
                            "front; fit with objectives='separate' or 'features' "
                            "(restart=True).")
    if fit.history.front is None or not len(fit.history.front):
        raise FitStateError("The Pareto front is empty: no evaluation gave finite "
                            "values of every objective yet.")
    return fit.history


def objective_value(fit: Fit, name: str, value, use_units: bool):
    """An objective's value(s) with the units of its metric (if ``use_units``)."""
    return error_quantity(value, fit.objective.objective_dims[name]) if use_units else value


def best_objectives(fit: Fit | None, use_units: bool) -> dict[str, Any] | None:
    """With several objectives: each objective's value for the chosen member."""
    if not objective_names(fit) or fit.history.front is None:
        return None
    front = fit.history.front
    k = front.chosen()
    if k is None:
        return None
    return {name: objective_value(fit, name, float(front.values[k, j]), use_units)
            for j, name in enumerate(front.names)}


def select(fit: Fit | None, weights=None) -> None:
    """Choose the front member that the fit reports as its best (see ``Fitter.select``)."""
    history = front_history(fit)
    array = None if weights is None else check_weights(weights, history.front.names)
    history.choose_best(array, keep_weights=False)


def pareto_front(fit: Fit | None, format: str = "list", use_units: bool = True):
    """The non-dominated parameter sets of every evaluation so far (see
    ``Fitter.pareto_front`` for the formats)."""
    history = front_history(fit)
    front, space = history.front, history.space
    order = front.order()
    params = np.array([history.rounds[p].parameters[s] for p, s in front.rows[order]])
    totals = np.array([history.rounds[p].errors[s] for p, s in front.rows[order]])
    rounds = np.array([history.rounds[p].index for p, _ in front.rows[order]], dtype=int)
    values = front.values[order]
    error_dim = fit.objective.error_dim
    if format == "dataframe":
        import pandas as pd
        frame = pd.DataFrame({n: params[:, k] for k, n in enumerate(space.names)})
        for j, name in enumerate(front.names):
            frame[f"objective_{name}"] = values[:, j]
        frame["errors"], frame["round"] = totals, rounds
        return frame
    if format == "dict":
        out: dict[str, Any] = {n: with_unit(params[:, k], d) if use_units else params[:, k]
                               for k, (n, d) in enumerate(zip(space.names, space.dims))}
        out["objectives"] = {name: objective_value(fit, name, values[:, j], use_units)
                             for j, name in enumerate(front.names)}
        out["errors"] = error_quantity(totals, error_dim) if use_units else totals
        out["round"] = rounds
        return out
    if format == "list":
        rows = []
        for k in range(len(order)):
            entry = space.to_dict(params[k], use_units=use_units)
            entry["objectives"] = {name: objective_value(fit, name, float(values[k, j]),
                                                         use_units)
                                   for j, name in enumerate(front.names)}
            entry["errors"] = error_quantity(float(totals[k]), error_dim) \
                if use_units else float(totals[k])
            entry["round"] = int(rounds[k])
            rows.append(entry)
        return rows
    raise ConfigurationError(f"Unknown format {format!r}; use 'list', 'dict' or "
                             f"'dataframe'.")
