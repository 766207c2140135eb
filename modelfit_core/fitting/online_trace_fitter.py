"""Online error: the squared error accumulated while simulating, and OnlineTraceFitter.

With an online error nothing is recorded: each neuron carries one extra
variable to which a ``run_regularly`` operation adds, at the start of every
step from ``t_start`` on, its share of the mean squared difference between the
simulated variable and the recorded trace (the trace is held once, as a
``TimedArray`` indexed by the neuron's trace). A round's memory is then a few
numbers per neuron, whatever the length of the traces; the error equals
``MSEMetric``'s on recorded traces (same steps, same ``t_start`` rounding,
same normalization), up to floating-point summation order.

``OnlineTraceFitter`` always uses it; ``TraceFitter.fit(..., online_error=True)``
uses it for its trace outputs (with ``MSEMetric``), spike outputs are still
recorded and compared with their metric.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy as np
from brian2 import second

from modelfit_core.contracts.errors import ConfigurationError, UnitMismatchError, UnknownPluginError
from modelfit_core.fitting.fitter import _DEFAULT
from modelfit_core.model.recordings import SPIKES
from modelfit_core.fitting.trace_fitter import TraceFitter


def _mse_class(registry):
    try:
        return registry.lookup("metrics", "mse")
    except UnknownPluginError:
        return None


def is_mse(metric, registry) -> bool:
    """Whether ``metric`` is the registered ``mse`` metric (MSEMetric)."""
    mse = _mse_class(registry)
    return (mse is not None and isinstance(metric, mse)) or \
        type(metric).__name__ == "MSEMetric"


def check_online_metrics(fitter, metrics: Mapping[str, Any]) -> None:
    """Online errors are mean squared errors: every trace output needs an
    ``MSEMetric`` without ``t_weights``, whose ``t_start`` lies within the traces."""
    duration = fitter.recordings.n_steps * float(fitter.dt)
    for name, metric in metrics.items():
        if name == SPIKES:
            continue
        if not is_mse(metric, fitter.pipeline.registry):
            raise ConfigurationError(
                f"online_error=True accumulates the mean squared error during the "
                f"simulation, so the metric for {name!r} must be MSEMetric (for its "
                f"t_start and normalization); got {type(metric).__name__}. Use "
                f"online_error=False to compute {type(metric).__name__} on recorded traces.")
        if getattr(metric, "t_weights", None) is not None:
            raise ConfigurationError(
                f"The online error cannot use t_weights (output {name!r}); give the "
                f"MSEMetric a t_start instead, or fit with online_error=False.")
        t_start = float(metric.t_start)
        if not 0 <= t_start < duration:
            raise ConfigurationError(
                f"t_start = {metric.t_start!r} for {name!r} must be within the traces "
                f"(0 s to {duration} s).")


def online_error_spec(metrics: Mapping[str, Any]) -> dict[str, float]:
    """{trace output: t_start in seconds} for the simulation spec."""
    return {name: float(metric.t_start) for name, metric in metrics.items() if name != SPIKES}


def online_objective_errors(fitter, result, metrics, online) -> dict[str, np.ndarray]:
    """Normalized error per output (n_samples,): online outputs from the values
    accumulated during the run, the others (spikes) with their metric."""
    errors = {}
    offline = [name for name in fitter.output_names if name not in online]
    if offline:
        recordings = attrs.evolve(fitter.recordings, output_names=offline)
        errors.update(recordings.objective_errors(result, metrics, fitter.dt))
    shape = (fitter.n_samples, fitter.n_traces)
    for name in online:
        per_neuron = np.asarray(result.online_errors[name], dtype=float).reshape(shape)
        # MSEMetric: mean over time (done online) then over traces, divided by
        # the squared normalization (what revert_normalization multiplies by)
        with np.errstate(invalid="ignore", over="ignore"):
            errors[name] = per_neuron.mean(axis=1) / float(
                metrics[name].revert_normalization(1.0))
    return {name: errors[name] for name in fitter.output_names}


class OnlineTraceFitter(TraceFitter):
    """Fit traces with the mean squared error computed during the simulation.

    For long traces or many samples: no trace is recorded, so a round's memory
    does not grow with the length of the traces (see the module docstring).
    No metric is given to :meth:`fit`: the error is the mean squared error
    from ``t_start`` on, exactly what ``MSEMetric(t_start=t_start)`` gives.

    Parameters
    ----------
    model : str or Equations
        Model equations; fitted parameters are declared ``name : unit (constant)``.
    input : dict
        ``{'I': traces}``, (n_traces, n_steps) Quantity.
    output : dict
        ``{'v': traces}``, (n_traces, n_steps) Quantity (traces only, no spikes;
        several variables need units that add up, e.g. all voltages).
    dt : Quantity
        Time step.
    n_samples : int
        Parameter sets simulated per round (default 30).
    t_start : Quantity
        Start of the part of the traces that counts (default 0 s).
    method, reset, refractory, threshold, param_init, penalty, use_units, backend,
    pipeline, namespace, storage, study, input_var, output_var
        As for :class:`~modelfit_core.fitting.trace_fitter.TraceFitter`.
    """

    fitter_name = "OnlineTraceFitter"

    def __init__(self, model, input, output, dt, n_samples=30, input_var=None,
                 output_var=None, method=None, reset=None, refractory=False, threshold=None,
                 param_init=None, t_start=0 * second, penalty=None, use_units=True,
                 backend=None, pipeline=None, namespace=None, storage=None, study=None,
                 level=0):
        super().__init__(dt=dt, model=model, input=input, output=output, n_samples=n_samples,
                         input_var=input_var, output_var=output_var, threshold=threshold,
                         reset=reset, refractory=refractory, method=method,
                         param_init=param_init, penalty=penalty, use_units=use_units,
                         backend=backend, pipeline=pipeline, namespace=namespace,
                         storage=storage, study=study, level=level)
        if SPIKES in self.output_names:
            raise ConfigurationError("OnlineTraceFitter fits traces; fit spike trains with "
                                     "SpikeFitter (or TraceFitter with a 'spikes' output).")
        if t_start is None:
            t_start = 0 * second
        try:
            is_time = getattr(t_start, "dim", None) is second.dim
        except AttributeError:
            is_time = False
        if not is_time:
            raise UnitMismatchError(f"t_start must be a time with units, e.g. t_start=5*ms; "
                                    f"got {t_start!r}.")
        duration = self._n_steps * float(self.dt)
        if not 0 <= float(t_start) < duration:
            raise ConfigurationError(f"t_start = {t_start!r} must be within the traces "
                                     f"(0 s to {duration} s).")
        self.t_start = t_start
        self._online_error = True
        self._online_metric = None

    def _default_metric(self):
        if self._online_metric is None:
            mse = _mse_class(self.pipeline.registry)
            if mse is None:
                raise ConfigurationError("OnlineTraceFitter needs the 'mse' metric plugin "
                                         "(it defines the error's units); it is disabled or "
                                         "not installed.")
            self._online_metric = mse(t_start=self.t_start)
        return self._online_metric

    def fit(self, optimizer=None, n_rounds=1, callback=_DEFAULT, restart=False,
            start_iteration=None, penalty=None, level=0, resume=False, metric=None,
            **params):
        """Run ``n_rounds`` rounds; the error is the online mean squared error.

        Parameters are those of :meth:`TraceFitter.fit` without ``metric`` and
        ``online_error`` (``t_start`` is given to the fitter). Returns
        ``(best_params, error)``; the error has the squared units of the output.
        """
        if metric is not None:
            raise ConfigurationError(
                "OnlineTraceFitter computes the mean squared error itself (from t_start, "
                "given to the fitter); remove metric=, or use TraceFitter.")
        return super().fit(optimizer=optimizer, metric=None, n_rounds=n_rounds,
                           callback=callback, restart=restart, online_error=True,
                           start_iteration=start_iteration, penalty=penalty, level=level,
                           resume=resume, **params)
