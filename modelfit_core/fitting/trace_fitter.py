"""TraceFitter: fit recorded traces (membrane potential and other variables)."""

from __future__ import annotations

from modelfit_core.fitting.fitter import Fitter
from modelfit_core.fitting.problem import GENERATE_ITERATION
from modelfit_core.fitting.refine import refine_fit
from modelfit_core.registry.parts import DEFAULT, Parts


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
        Parameter sets simulated per round (default 60; a population optimizer
        may use more, see ``fit()``).
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

    _owner = "TraceFitter"

    def __init__(self, model, input, output, dt, n_samples=60, input_var=None,
                 output_var=None, method=None, reset=None, refractory=False, threshold=None,
                 param_init=None, penalty=None, use_units=True, *, backend=None,
                 pipeline: Parts | None = None, namespace=None, storage=None, study=None,
                 level=0):
        super().__init__(dt, model, input, output, n_samples, input_var=input_var,
                         output_var=output_var, threshold=threshold, reset=reset,
                         refractory=refractory, method=method, param_init=param_init,
                         penalty=penalty, use_units=use_units, backend=backend,
                         pipeline=pipeline, namespace=namespace, storage=storage, study=study,
                         level=level)

    # the manual's signature, which puts online_error before the arguments Fitter.fit shares
    def fit(self, optimizer=None, metric=None, n_rounds=1,  # pyright: ignore[reportIncompatibleMethodOverride]
            callback=DEFAULT, restart=False, online_error=False, start_iteration=None,
            penalty=None, level=0, resume=False, objectives=None, dashboard=False, **params):
        """As :meth:`Fitter.fit`, plus ``online_error``.

        online_error : bool
            Accumulate the squared error of the trace outputs during the
            simulation instead of recording them (memory independent of the
            trace length); needs a least-squares metric such as ``MSEMetric``
            (``t_start`` and ``normalization`` are honoured, ``t_weights`` are
            not), and gives the same errors. Default False.
        """
        return self._fit(optimizer, metric, n_rounds, callback, restart=restart,
                         start_iteration=start_iteration, penalty=penalty, resume=resume,
                         level=level, objectives=objectives, online_error=bool(online_error),
                         bounds=params, dashboard=dashboard)

    def generate_traces(self, params=None, param_init=None, iteration=GENERATE_ITERATION,
                        level=0):
        """Traces of the fitted output variable(s) for the best (or given) parameters."""
        traces = self.problem.recordings.trace_outputs
        return self.generate(output_var=traces[0] if len(traces) == 1 else traces,
                             params=params, param_init=param_init, iteration=iteration,
                             level=level)

    def refine(self, params=None, metric=None, callback=DEFAULT, calc_gradient=False,
               optimize=True, iteration=GENERATE_ITERATION, level=0, **kwds):
        """Refine the fitting results with a sequentially operating minimization
        algorithm: the ``least_squares`` algorithm from ``scipy.optimize``. Has to
        be called after :meth:`fit`, but a call with ``n_rounds=0`` is enough (or
        give ``params`` and the bounds).

        Parameters
        ----------
        params : dict, optional
            A dictionary with the parameters to use as a starting point for the
            refinement. If not given, the best parameters found so far by
            :meth:`fit` will be used.
        metric : MSEMetric or dict, optional
            Optimization metrics to use. Since the refinement only supports
            mean-squared-error metrics, this is only useful to provide the
            ``t_start``/``t_weights``/``normalization`` values. In the case of
            multiple fitted output variables, can either be a single
            ``MSEMetric`` that is applied to all variables, or a dictionary
            with a ``MSEMetric`` for each variable. If not given, will reuse
            the metrics of a previous :meth:`fit` call.
        callback : str or callable
            Either the name of a provided callback function (``'text'`` or
            ``'progressbar'``), ``None``, or a custom feedback function
            ``func(parameters, errors, best_parameters, best_error, index,
            additional_info)``; it is called after each evaluation, and if it
            returns ``True`` the refinement stops (returning the best point).
        calc_gradient : bool, optional
            Whether to add "sensitivity variables" to the equation that track
            the sensitivity of the equation variables to the parameters. This
            information will be used to pass the local gradient of the error
            with respect to the parameters to the optimization function. This
            can lead to much faster convergence than with an estimated gradient
            but comes at the expense of additional computation. Defaults to
            ``False``.
        optimize : bool, optional
            Whether to remove sensitivity variables from the equations that do
            not evolve if initialized to zero (e.g. ``dS_x_y/dt = -S_x_y/tau``
            would be removed). Sensitivities with a non-zero initial value or
            reset are kept. Only taken into account if ``calc_gradient`` is
            ``True``. Defaults to ``True``.
        iteration : int, optional
            Value for the ``iteration`` variable provided to the simulation.
            Defaults to a high value (1e9): a coupling of the model to the
            target that fades with the iterations is then switched off.
        level : int, optional
            How much farther to go down in the stack to find the namespace.
        **kwds
            Bounds ``name=[lower, upper]`` overwrite those given to :meth:`fit`
            for individual parameters; all other arguments are passed on to
            ``scipy.optimize.least_squares`` (e.g. ``max_nfev``, ``ftol``,
            ``method='dogbox'``). ``x_scale`` and ``diff_step`` act on the
            coordinates scipy works in, where each parameter's bounds are [0, 1].

        Returns
        -------
        parameters : dict
            The parameters at the end of the optimization process as a dictionary.
        result : scipy.optimize.OptimizeResult
            The result of the optimization process; ``x`` in SI units, plus
            ``n_simulations``, ``wall_time``, ``errors`` (every evaluation) and
            ``error`` (at the returned parameters, as the fit's metric computes it).

        Notes
        -----
        There is no support for specifying a Metric, the given output trace(s)
        will be subtracted from the simulated trace(s) and passed on to the
        minimization algorithm which will internally calculate the sum of
        squares. Spike outputs and a ``penalty`` are not part of the refinement.
        """
        if metric is None:
            metric = self.metric if self.metric is not None else self._default_metric()
        fit = self.current_fit
        return refine_fit(self.problem, fit.space if fit is not None else None,
                          fit.best_vector if fit is not None else None, metric=metric,
                          feedback=self._parts.resolve_feedback(callback), params=params,
                          calc_gradient=calc_gradient, optimize=optimize, iteration=iteration,
                          level=level, use_units=self.use_units, **kwds)
