"""A fitting problem of the benchmark suite, as a ``problems`` plugin describes it.

A problem plugin is a class whose ``define()`` returns a :class:`BenchmarkProblem`:
everything a fit needs (model, recordings or the ground truth that generates
them, bounds, metric, fitter kind), its budget and its targets. ``modelfit
benchmark`` (:mod:`modelfit_core.tools.benchmarking`) runs every installed
optimizer on it; :func:`modelfit_core.testing.check_problem` checks one for its
author. Values with units are Brian quantities; errors are in the metric's SI
unit (V² for the MSE of a voltage).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs

TRACE_FITTER = "TraceFitter"
SPIKE_FITTER = "SpikeFitter"
FITTERS = (TRACE_FITTER, SPIKE_FITTER)

DEFAULT_TARGET_FACTORS = (3.0, 1.5, 1.05)
"""Error targets as multiples of the problem's error floor, easiest first (for synthetic
data the floor is the error of the ground truth on the noisy recordings)."""


def _positive_int(instance, attribute, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"BenchmarkProblem.{attribute.name} must be a positive integer, "
                         f"got {value!r}")


def _optional_positive(instance, attribute, value) -> None:
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)
                                  and value > 0):
        raise ValueError(f"BenchmarkProblem.{attribute.name} must be a positive finite "
                         f"number or None, got {value!r}")


@attrs.frozen(kw_only=True)
class BenchmarkProblem:
    """One fitting problem of the suite.

    Either ``outputs`` holds the recordings, or ``ground_truth`` generates them
    (simulated once with ``data_seed``, then passed through ``noise``).
    """

    title: str
    """One line for tables and plots."""
    category: str
    """The class of problem the closing comparison groups by (``'passive'``,
    ``'conductance-based'``, ``'integrate-and-fire'``, ``'spike trains'``,
    ``'features'``, ``'real recordings'``, ...)."""
    model: str
    """Brian equations; fitted parameters are ``(constant)`` parameters of it."""
    dt: Any
    """Time step of the recordings (a Brian quantity)."""
    inputs: Mapping[str, Any]
    """Input name -> Quantity of shape (n_traces, n_steps)."""
    bounds: Mapping[str, tuple[Any, Any]]
    """Fitted parameter -> (lower, upper), with units."""
    n_samples: int = attrs.field(validator=_positive_int)
    """Parameter sets per round."""
    budget: int = attrs.field(validator=_positive_int)
    """Evaluations (simulated parameter sets) of a full run."""
    quick_budget: int = attrs.field(validator=_positive_int)
    """Evaluations of a ``--quick`` run."""
    outputs: Mapping[str, Any] | None = None
    """Output name -> recordings (Quantity, or a list of spike-time arrays in seconds for
    ``'spikes'``); None: generated from ``ground_truth``."""
    output_var: str = "v"
    """The recorded variable (``'spikes'`` for a SpikeFitter)."""
    fitter: str = attrs.field(default=TRACE_FITTER, validator=attrs.validators.in_(FITTERS))
    """``'TraceFitter'`` or ``'SpikeFitter'``."""
    fitter_options: Mapping[str, Any] = attrs.field(factory=dict)
    """Further fitter keywords: ``method``, ``threshold``, ``reset``, ``refractory``,
    ``param_init``, ``namespace``."""
    metric: str = "mse"
    """The metric plugin's name."""
    metric_options: Mapping[str, Any] = attrs.field(factory=dict)
    """Its options (``{'delta': 2*ms, 'time': ...}`` for ``gamma_factor``)."""
    ground_truth: Mapping[str, Any] | None = None
    """The parameters that generated the data (with units), if known."""
    noise: Callable[[Any, Any], Any] | None = None
    """``noise(clean, rng)`` -> noisy recordings: SI arrays (a list of spike-time arrays for
    spikes), ``rng`` a ``numpy.random.Generator``; only for generated outputs."""
    data_seed: int = 0
    """Seed of the generated data's noise (every run fits the same data)."""
    error_floor: float | None = attrs.field(default=None, validator=_optional_positive)
    """The error the targets are multiples of; None: the error of ``ground_truth``."""
    target_factors: tuple[float, ...] = DEFAULT_TARGET_FACTORS
    """Error targets are ``error_floor`` times these."""
    parameter_tolerance: float | None = 0.05
    """With a ground truth, a further target: every parameter within this fraction of
    its true value (None: no such target)."""
    refinable: bool = False
    """Whether ``refine()`` (least squares on the traces) applies to its metric."""

    @property
    def has_generated_data(self) -> bool:
        """Whether the recordings are simulated from the ground truth."""
        return self.outputs is None

    def problems(self) -> list[str]:
        """What is inconsistent in this description (empty when it is usable)."""
        found = []
        if not self.bounds:
            found.append("bounds is empty: name at least one fitted parameter")
        for name, pair in self.bounds.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                found.append(f"bounds[{name!r}] must be (lower, upper), got {pair!r}")
        if self.outputs is None and self.ground_truth is None:
            found.append("give outputs (the recordings) or ground_truth (to generate them)")
        if self.outputs is not None and self.noise is not None:
            found.append("noise applies to generated outputs only; outputs were given")
        if self.ground_truth is not None:
            missing = sorted(set(self.bounds) - set(self.ground_truth))
            if missing:
                found.append(f"ground_truth lacks the fitted parameters {missing}")
        if self.quick_budget > self.budget:
            found.append(f"quick_budget ({self.quick_budget}) exceeds budget ({self.budget})")
        for label, budget in (("budget", self.budget), ("quick_budget", self.quick_budget)):
            if budget < self.n_samples:
                found.append(f"{label} ({budget}) is below one round of n_samples "
                             f"({self.n_samples})")
        if not self.target_factors or any(
                not (isinstance(f, (int, float)) and f >= 1) for f in self.target_factors):
            found.append(f"target_factors must be numbers >= 1, got {self.target_factors!r}")
        if self.ground_truth is None and self.error_floor is None:
            found.append("without a ground_truth, error_floor (e.g. the best error of the "
                         "reference runs) must be given")
        if self.refinable and (self.fitter != TRACE_FITTER or self.metric != "mse"):
            found.append("refinable (least squares on the traces) needs fitter='TraceFitter' "
                         "and metric='mse'")
        if self.output_var == "spikes" and self.fitter != SPIKE_FITTER:
            found.append("output_var 'spikes' needs fitter='SpikeFitter'")
        return found
