"""The online error: a squared error accumulated while simulating.

With an online error nothing is recorded: each neuron carries one extra
variable to which a ``run_regularly`` operation adds, at the start of every
step from the metric's start step on, its share of the mean squared
difference between the simulated variable and the recorded trace (the trace
is held once, as a ``TimedArray`` indexed by the neuron's trace). A round's
memory is then a few numbers per neuron, whatever the length of the traces.
The error equals the metric's on recorded traces (same steps, same start
rounding, same normalization), up to floating-point summation order.

Any metric with the :class:`~modelfit_core.contracts.protocols.LeastSquaresMetric`
capability (``MSEMetric`` among them) can be accumulated, if it weighs all
steps from its start alike.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.contracts.metric_bases import SPIKES
from modelfit_core.contracts.protocols import LeastSquaresMetric, ResidualForm
from modelfit_core.contracts.simulation import SimulationResult
from modelfit_core.model.recordings import Recordings


def residual_forms(metrics: Mapping[str, Any], recordings: Recordings,
                   dt) -> dict[str, ResidualForm]:
    """The residuals of each trace output, for accumulating them during the simulation.

    Raises
    ------
    ConfigurationError
        A trace output's metric is no least-squares metric, weighs time steps,
        or starts beyond the traces.
    """
    forms = {}
    for name, metric in metrics.items():
        if name == SPIKES:
            continue
        if not isinstance(metric, LeastSquaresMetric):
            raise ConfigurationError(
                f"online_error=True accumulates a mean squared error during the "
                f"simulation, so the metric for {name!r} must be a least-squares metric "
                f"such as MSEMetric (with a residual_form() method); got "
                f"{type(metric).__name__}. Use online_error=False to compute "
                f"{type(metric).__name__} on recorded traces.")
        form = metric.residual_form(recordings.n_steps, float(dt))
        if form.weights is not None:
            raise ConfigurationError(
                f"The online error cannot use t_weights (output {name!r}); give the "
                f"metric a t_start instead, or fit with online_error=False.")
        if not 0 <= form.start_step < recordings.n_steps:
            raise ConfigurationError(
                f"The metric for {name!r} starts at step {form.start_step}, outside the "
                f"traces (0 to {recordings.n_steps - 1}); use a smaller t_start.")
        forms[name] = form
    return forms


def errors(result: SimulationResult, forms: Mapping[str, ResidualForm], n_samples: int,
           n_traces: int) -> dict[str, np.ndarray]:
    """Normalized error (n_samples,) of each online output, from the values accumulated
    during the run: the mean over time (done online), then over traces, divided by
    the squared normalization."""
    out = {}
    for name, form in forms.items():
        per_neuron = np.asarray(result.online_errors[name], dtype=float).reshape(
            n_samples, n_traces)
        with np.errstate(invalid="ignore", over="ignore"):
            out[name] = per_neuron.mean(axis=1) / form.scale ** 2
    return out
