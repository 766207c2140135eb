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

This module holds what a ``fit()`` call and the objective need to know;
:mod:`~modelfit_core.fitting.pareto_results` reads a fit's Pareto front
(``pareto_front()``, ``select()``, ``best_objectives``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.contracts.protocols import (MetricWithUnits, MultiObjectiveMetric,
                                               MultiObjectiveOptimizer)

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


def objectives_of_call(objectives, current_objective) -> str | None:
    """The ``objectives`` of a ``fit()`` call: a continued fit (``current_objective``
    not None) keeps its own, and refuses another."""
    objectives = check_mode(objectives)
    if current_objective is None:
        return objectives
    current = getattr(current_objective, "mode", None)
    if objectives is not None and objectives != current:
        raise ConfigurationError(f"The fit being continued has objectives={current!r}; "
                                 f"pass restart=True to fit with "
                                 f"objectives={objectives!r}.")
    return current


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
