"""TraceFitter: fit recorded traces (membrane potential and other variables)."""

from __future__ import annotations

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
        ``{'v': traces}``: recorded variable(s) -> (n_traces, n_steps) Quantity;
        ``'spikes'`` -> one array of spike times per trace (needs a threshold).
        With several outputs, ``fit(metric=...)`` takes one metric for all or
        a dict ``{name: metric}``; their normalized errors are added.
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

    fitter_name = "TraceFitter"

    def generate_traces(self, params=None, param_init=None, iteration=GENERATE_ITERATION,
                        level=0):
        """Traces of the fitted output variable(s) for the best (or given) parameters."""
        traces = [name for name in self.output_names if name != "spikes"]
        return self.generate(output_var=traces[0] if len(traces) == 1 else traces,
                             params=params, param_init=param_init, iteration=iteration,
                             level=level + 1)
