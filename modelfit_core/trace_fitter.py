"""TraceFitter: fit recorded traces (membrane potential and other variables)."""

from __future__ import annotations

import numpy as np

from modelfit_core.data import as_named, check_same_shape, trace_array
from modelfit_core.errors import ConfigurationError
from modelfit_core.fitter_base import GENERATE_ITERATION, Fitter


class TraceFitter(Fitter):
    """Fit the free parameters of a model to recorded traces.

    Parameters
    ----------
    model : str or Equations
        Model equations; fitted parameters are declared ``name : unit (constant)``.
    input : dict
        ``{'I': traces}``: input variable name -> (n_traces, n_steps) Quantity.
        The variable is used, but not defined, in the equations.
    output : dict
        ``{'v': traces}``: recorded variable(s) -> (n_traces, n_steps) Quantity.
    dt : Quantity
        Time step of the data and of the simulation.
    n_samples : int
        Parameter sets simulated per round.
    method : str, optional
        Brian integration method (e.g. ``'exponential_euler'``).
    threshold, reset, refractory : optional
        Spiking behaviour, as for a Brian NeuronGroup.
    param_init : dict, optional
        Initial values of variables (quantities or expressions), or fixed
        values of declared parameters that are not fitted.
    penalty : str, optional
        Model variable added to the error (value at the end of the run).
    use_units : bool
        Return parameters and errors with units (default True).
    backend : str or SimulationBackend, optional
        Where batches are simulated; default ``"runtime"`` (Brian 2 in this process).
    pipeline : Pipeline, optional
        Supplies registry, default optimizer, metric and feedback.
    namespace : dict, optional
        Constants the equations refer to; by default they are looked up in
        the caller's namespace, as Brian's ``run()`` does.
    input_var, output_var : str, deprecated
        Old form: ``input=array, input_var='I'``.
    """

    def _set_data(self, input, output, input_var, output_var):
        inputs = as_named(input, input_var, "input")
        outputs = as_named(output, output_var, "output")
        self.input_signals = {name: trace_array(values, name, "input")
                              for name, values in inputs.items()}
        self._raw_outputs = outputs
        self.output_names = list(outputs)
        self.output_signals = {name: trace_array(values, name, "output")
                               for name, values in outputs.items()}
        self._n_traces, self._n_steps = check_same_shape(self.input_signals,
                                                         self.output_signals)
        self.input_var = list(inputs)[0] if len(inputs) == 1 else list(inputs)
        self.output_var = self.output_names[0] if len(outputs) == 1 else self.output_names

    def _check_outputs_against_model(self):
        self.output_dims = {}
        for name, signal in self.output_signals.items():
            expected = self.model.dimension_of(name)
            if signal.dim is not expected:
                # re-run the check to raise the standard unit error message
                trace_array(self._raw_outputs[name], name, "output", expected_dim=expected)
            self.output_dims[name] = expected

    def _record(self):
        return tuple(self.output_names), False

    def _check_metric_kinds(self, metrics):
        for name, metric in metrics.items():
            if self._is_spike_metric(metric):
                raise ConfigurationError(
                    f"{type(metric).__name__} compares spike trains, but TraceFitter fits "
                    f"traces ({name!r}). Use a trace metric such as MSEMetric(), or "
                    f"SpikeFitter for spikes.")

    @staticmethod
    def _is_spike_metric(metric) -> bool:
        from modelfit_core.metric_base import SpikeMetric
        return isinstance(metric, SpikeMetric)

    def _objective_errors(self, result, metrics):
        errors = {}
        for name in self.output_names:
            simulated = result.traces[name]
            with np.errstate(invalid="ignore", over="ignore"):
                errors[name] = np.asarray(metrics[name].calc(
                    simulated, self.output_signals[name].values, self.dt), dtype=float)
        return errors

    def generate_traces(self, params=None, param_init=None, iteration=GENERATE_ITERATION,
                        level=0):
        """Traces of the fitted output variable(s) for the best (or given) parameters."""
        return self.generate(output_var=None, params=params, param_init=param_init,
                             iteration=iteration, level=level + 1)
