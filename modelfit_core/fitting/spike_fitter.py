"""SpikeFitter: fit recorded spike trains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError
from modelfit_core.contracts.metric_bases import SPIKES
from modelfit_core.fitting.fitter import Fitter
from modelfit_core.fitting.problem import GENERATE_ITERATION
from modelfit_core.registry.parts import Parts

DEFAULT_METHODS = ("exponential_euler", "exact", "euler", "heun")
"""SpikeFitter's integration methods when none is given: brian2modelfitting's
``exponential_euler``, or, for equations it cannot integrate, Brian's own choice."""


def spike_outputs(output) -> dict[str, Any]:
    """SpikeFitter's outputs as ``{name: recordings}``: a bare list is the spike trains."""
    if isinstance(output, Mapping):
        if SPIKES not in output:
            raise ConfigurationError("SpikeFitter's output dict needs a 'spikes' entry "
                                     "(one array of spike times per input trace).")
        return dict(output)
    return {SPIKES: output}


class SpikeFitter(Fitter):
    """Fit the free parameters of a spiking model to recorded spike times.

    Parameters
    ----------
    model : str or Equations
        Model equations with fitted parameters declared ``name : unit (constant)``.
    input : dict
        ``{'I': traces}``, (n_traces, n_steps) Quantity.
    output : list or dict
        One array of spike times (with units of time) per input trace, or
        ``{'spikes': [...]}``; more outputs (e.g. ``'v'`` traces) may be added
        to the dict, each with its own metric.
    dt : Quantity
        Time step.
    threshold : str
        Spike condition, e.g. ``'v > -50*mV'`` (required).
    reset : str, optional
        Statements executed after a spike, e.g. ``'v = vre; w += wadd'``.
    refractory : Quantity, str or bool, optional
        A duration (``2*ms``), an expression for a duration (``'tref'``, may be
        a fitted parameter), or a condition (``'v > -40*mV'``).
    n_samples, method, param_init, penalty, use_units, backend, pipeline, namespace
        As for :class:`~modelfit_core.fitting.trace_fitter.TraceFitter`.
    """

    _owner = "SpikeFitter"
    _default_method = DEFAULT_METHODS

    def __init__(self, model, input, output, dt, reset=None, threshold=None, input_var=None,
                 refractory=False, n_samples=30, method=None, param_init=None, penalty=None,
                 use_units=True, *, backend=None, pipeline: Parts | None = None,
                 namespace=None, storage=None, study=None, level=0):
        if threshold is None:
            raise ConfigurationError("SpikeFitter needs a threshold, e.g. "
                                     "threshold='v > -50*mV'.")
        if input_var is None and not isinstance(input, Mapping):
            input_var = "I"  # the manual's default for the old form (input as an array)
        super().__init__(dt, model, input, output, n_samples, input_var=input_var,
                         threshold=threshold, reset=reset, refractory=refractory,
                         method=method, param_init=param_init, penalty=penalty,
                         use_units=use_units, backend=backend, pipeline=pipeline,
                         namespace=namespace, storage=storage, study=study, level=level)

    @staticmethod
    def _named_outputs(output, output_var=None) -> dict[str, Any]:
        return spike_outputs(output)

    def _default_metric(self):
        metric = self._parts.metric
        if metric is None:
            # brian2modelfitting has no default spike metric: fit(metric=None) is its
            # TypeError "You can only use SpikeMetric child metric with SpikeFitter"
            raise ArgumentTypeError("SpikeFitter needs a spike metric (there is no default, "
                                    "as in brian2modelfitting): pass "
                                    "metric=GammaFactor(delta=..., time=...) to fit(), or "
                                    "use Pipeline.from_names(metric='gamma_factor', ...).")
        return metric

    def generate_spikes(self, params=None, param_init=None, iteration=GENERATE_ITERATION,
                        level=0):
        """Spike times (one array of seconds per input trace, without units, as in
        brian2modelfitting) for the best (or given) parameters."""
        return self.generate(output_var=SPIKES, params=params, param_init=param_init,
                             iteration=iteration, level=level)
