"""Multi-objective fits: ``fit(..., objectives="separate" | "features")``.

Instead of adding the errors of the outputs into one number, each becomes an
objective of its own and a multi-objective optimizer (one with the
:class:`~modelfit_core.contracts.protocols.MultiObjectiveOptimizer`
capability, NSGA-II by default) searches the trade-offs between them:

* ``"separate"``: one objective per output (``'v'``, ``'spikes'``, ...), the
  error of its metric (normalized as usual);
* ``"features"``: as ``"separate"``, but the error of a metric with the
  :class:`~modelfit_core.contracts.protocols.MultiObjectiveMetric` capability
  (``FeatureMetric``: one per eFEL feature) is split into its objectives.

A ``penalty`` variable becomes one more objective. The total error (what
``results()`` reports as ``errors``) stays the sum of the objectives. The
fit's best parameters are the member of the Pareto front closest to the
ideal point once each objective is scaled to [0, 1] over the front, or the
member a weighting chooses (:meth:`MultiObjectiveResults.select`); see
:mod:`modelfit_core.results.pareto`.

This module holds what the fitter, the objective and the loop need to know;
:class:`MultiObjectiveResults` gives the fitters ``pareto_front()``,
``select()`` and ``best_objectives``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_core.contracts.protocols import (MetricWithUnits, MultiObjectiveMetric,
                                               MultiObjectiveOptimizer)
from modelfit_core.contracts.units import error_quantity, with_unit
from modelfit_core.results.history import History
from modelfit_core.results.pareto import check_weights

MODES = ("separate", "features")
"""The values of ``fit(objectives=...)``."""
DEFAULT_OPTIMIZER = "nsga2"
"""The optimizer plugin of a multi-objective fit that names none."""


def check_mode(objectives) -> str | None:
    """``objectives`` if it is None or one of :data:`MODES`, else a ConfigurationError."""
    if objectives is None or (isinstance(objectives, str) and objectives in MODES):
        return objectives
    raise ConfigurationError(f"objectives must be 'separate' (one objective per output) or "
                             f"'features' (one per feature of a FeatureMetric), or None for "
                             f"a single error; got {objectives!r}.")


def layout(mode: str | None, metrics: Mapping[str, Any], output_names: Sequence[str],
           output_dims: Mapping[str, Any], penalty: str | None) -> dict[str, Any]:
    """The objectives of a fit: ``objective_names``, ``split`` (output -> the objectives
    its metric's :meth:`calc_objectives` columns become) and ``objective_dims``.

    Raises
    ------
    ConfigurationError
        An unknown mode, fewer than two objectives, ``"features"`` without a
        metric that splits its error, or two objectives of the same name.
    """
    mode = check_mode(mode)
    if mode is None:
        return {}
    names, split, dims = [], {}, {}
    for output in output_names:
        metric = metrics[output]
        if mode == "features" and isinstance(metric, MultiObjectiveMetric):
            parts = [str(n) for n in metric.objective_names()]
            split[output] = tuple(parts if len(output_names) == 1
                                  else [f"{output}.{n}" for n in parts])
            names.extend(split[output])
            dims.update(dict.fromkeys(split[output], _normalized(metric, output_dims[output])))
        else:
            names.append(output)
            dims[output] = _normalized(metric, output_dims[output])
    if mode == "features" and not split:
        raise ConfigurationError(
            "objectives='features' splits the error of a metric with objective_names() "
            "and calc_objectives() (e.g. FeatureMetric: one objective per eFEL feature) "
            f"into its objectives, and no metric of this fit ({', '.join(output_names)}) "
            f"has them; use objectives='separate' for one objective per output.")
    if penalty:
        names.append(penalty)
        dims[penalty] = DIMENSIONLESS
    if len(names) < 2:
        hint = ("give the FeatureMetric several features" if split else
                "fit several outputs (e.g. output={'v': traces, 'spikes': trains} with a "
                "metric per output), or use objectives='features' with a FeatureMetric "
                "of several features")
        raise ConfigurationError(f"objectives={mode!r} found a single objective "
                                 f"({', '.join(names)}); a multi-objective fit needs at "
                                 f"least two: {hint}. Without objectives= the fit "
                                 f"minimizes one error.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigurationError(f"Two objectives are called {', '.join(repeated)} (an "
                                 f"output, a feature or the penalty); rename one.")
    return {"mode": mode, "objective_names": tuple(names), "split": split,
            "objective_dims": dims}


def _normalized(metric, output_dim):
    return metric.get_normalized_dimensions(output_dim) \
        if isinstance(metric, MetricWithUnits) else DIMENSIONLESS


def objectives_for_optimizer(objectives: Mapping[str, np.ndarray], diverged: np.ndarray,
                             history: History) -> np.ndarray:
    """The (n_samples, n_objectives) matrix told to a multi-objective optimizer: each
    objective of a diverged set is told as 10x the worst finite value of that
    objective seen (this round included), plus one."""
    matrix = np.column_stack([np.asarray(v, dtype=float) for v in objectives.values()])
    bad = np.asarray(diverged, dtype=bool) | ~np.isfinite(matrix).all(axis=1)
    if not bad.any():
        return matrix
    seen = [matrix[~bad]]
    for record in history.rounds:
        if record.objectives:
            rows = np.column_stack([record.objectives[n] for n in objectives])
            ok = ~record.diverged & np.isfinite(rows).all(axis=1)
            seen.append(rows[ok])
    seen = np.vstack(seen)
    penalty = 10.0 * seen.max(axis=0) + 1.0 if len(seen) else np.full(matrix.shape[1], 1e10)
    return np.where(bad[:, None], penalty, matrix)


class MultiObjectiveResults:
    """What a fitter offers after ``fit(objectives=...)``: the Pareto front and the
    choice of its best member. Mixed into :class:`~modelfit_core.fitting.fitter.Fitter`
    (it uses ``self.state``, ``self.pipeline`` and ``self.use_units``)."""

    # -- used by fit() ------------------------------------------------------------------
    def objective_with(self, metric, optimizer, objectives, continuing: bool):
        """The fit's :class:`~modelfit_core.fitting.objective.Objective` (from the
        fitter's ``objective_for``) with its objectives, the optimizer checked against
        them (both before anything is simulated)."""
        mode = self.objectives_mode(objectives, continuing)
        objective = self.objective_for(metric, self.problem.penalty, objectives=mode)
        self.check_objectives(optimizer, objective)
        return objective

    def objectives_mode(self, objectives, continuing: bool) -> str | None:
        """The ``objectives`` of this ``fit()`` call: a continued fit keeps its own (and
        refuses another)."""
        objectives = check_mode(objectives)
        if not continuing:
            return objectives
        current = getattr(self.state.objective, "mode", None)
        if objectives is not None and objectives != current:
            raise ConfigurationError(f"The fit being continued has objectives={current!r}; "
                                     f"pass restart=True to fit with "
                                     f"objectives={objectives!r}.")
        return current

    def optimizer_for(self, objectives):
        """The optimizer of a fit that names none: the pipeline's if it has one (a
        single-objective one is then refused with ``objectives``), else the default
        optimizer, NSGA-II (:data:`DEFAULT_OPTIMIZER`) with ``objectives``."""
        pipeline = self.pipeline
        if check_mode(objectives) is None or pipeline.optimizer is not None:
            return pipeline.default_optimizer()
        options = {"seed": pipeline.seed} if pipeline.seed is not None else {}
        return pipeline.make("optimizers", DEFAULT_OPTIMIZER, options)

    @staticmethod
    def check_objectives(optimizer, objective) -> None:
        """Refuse an optimizer that cannot optimize the fit's objectives (before any
        simulation); tell a multi-objective one their names."""
        names = tuple(getattr(objective, "objective_names", ()))
        several = isinstance(optimizer, MultiObjectiveOptimizer)
        if names and not several:
            raise ConfigurationError(
                f"{type(optimizer).__name__} minimizes a single error, but this fit has "
                f"{len(names)} objectives ({', '.join(names)}). Use a multi-objective "
                f"optimizer: optimizer='nsga2' or 'nsga3' (extra pymoo), or leave optimizer= "
                f"out; one needs set_objectives() (the MultiObjectiveOptimizer capability).")
        if several and not names:
            raise ConfigurationError(
                f"{type(optimizer).__name__} optimizes several objectives; pass "
                f"objectives='separate' (one per output) or objectives='features' (one per "
                f"feature of a FeatureMetric) to fit(), or use a single-objective optimizer.")
        if several:
            optimizer.set_objectives(list(names))

    # -- results ------------------------------------------------------------------------
    def front_history(self) -> History:
        """The history of a multi-objective fit (FitStateError otherwise)."""
        if self.state is None:
            raise FitStateError("No Pareto front yet: call fit(objectives=...) first.")
        if not getattr(self.state.objective, "objective_names", ()):
            raise FitStateError("This fit minimizes a single error, so it has no Pareto "
                                "front; fit with objectives='separate' or 'features' "
                                "(restart=True).")
        if self.state.history.front is None or not len(self.state.history.front):
            raise FitStateError("The Pareto front is empty: no evaluation gave finite "
                                "values of every objective yet.")
        return self.state.history

    @property
    def objective_names(self) -> tuple[str, ...]:
        """The objectives of the current fit (empty for a single-objective fit)."""
        return tuple(getattr(self.state.objective, "objective_names", ())) \
            if self.state is not None else ()

    def objective_value(self, name: str, value, use_units: bool):
        """An objective's value(s) with the units of its metric (if ``use_units``)."""
        return error_quantity(value, self.state.objective.objective_dims[name]) \
            if use_units else value

    @property
    def best_objectives(self) -> dict[str, Any] | None:
        """With several objectives: each objective's value for :attr:`best_params`."""
        if not self.objective_names or self.state.history.front is None:
            return None
        front = self.state.history.front
        k = front.chosen()
        if k is None:
            return None
        return {name: self.objective_value(name, float(front.values[k, j]), self.use_units)
                for j, name in enumerate(front.names)}

    def select(self, weights=None):
        """Choose the front member that ``best_params`` (and ``generate()``, the
        feedback, the hooks) report, and return its parameters.

        Parameters
        ----------
        weights : dict or sequence of float, optional
            ``{objective: weight}`` or one weight per objective (in the order of
            :attr:`objective_names`), finite and >= 0: the member with the
            smallest weighted sum of its objectives scaled to [0, 1] over the
            front. None (the default): the member closest to the ideal point
            after that scaling. The choice holds for later rounds too.
        """
        history = self.front_history()
        array = None if weights is None else check_weights(weights, history.front.names)
        history.choose_best(array, keep_weights=False)
        return self.best_params

    def pareto_front(self, format="list", use_units=None):
        """The non-dominated parameter sets of every evaluation so far, sorted by the
        first objective, then the next ones.

        ``'list'`` (of dicts: the parameters, ``objectives`` ({name: value}),
        ``errors`` (their sum), ``round``), ``'dict'`` (of arrays, ``objectives``
        a dict of arrays) or ``'dataframe'`` (no units; a column ``objective_<name>``
        per objective), with units unless ``use_units=False``, as :meth:`results`.
        """
        history = self.front_history()
        use_units = self.use_units if use_units is None else use_units
        front, space = history.front, history.space
        order = front.order()
        params = np.array([history.rounds[p].parameters[s] for p, s in front.rows[order]])
        totals = np.array([history.rounds[p].errors[s] for p, s in front.rows[order]])
        rounds = np.array([history.rounds[p].index for p, _ in front.rows[order]], dtype=int)
        values = front.values[order]
        error_dim = self.state.objective.error_dim
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
            out["objectives"] = {name: self.objective_value(name, values[:, j], use_units)
                                 for j, name in enumerate(front.names)}
            out["errors"] = error_quantity(totals, error_dim) if use_units else totals
            out["round"] = rounds
            return out
        if format == "list":
            rows = []
            for k in range(len(order)):
                entry = space.to_dict(params[k], use_units=use_units)
                entry["objectives"] = {name: self.objective_value(name, float(values[k, j]),
                                                                  use_units)
                                       for j, name in enumerate(front.names)}
                entry["errors"] = error_quantity(float(totals[k]), error_dim) \
                    if use_units else float(totals[k])
                entry["round"] = int(rounds[k])
                rows.append(entry)
            return rows
        raise ConfigurationError(f"Unknown format {format!r}; use 'list', 'dict' or "
                                 f"'dataframe'.")
