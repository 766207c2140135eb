"""OnlineTraceFitter: fit traces with the mean squared error computed while simulating.

See :mod:`modelfit_core.fitting.online_error` for how the error is accumulated.
"""

from __future__ import annotations

from brian2 import get_dimensions, second

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError
from modelfit_core.contracts.units import UnitMismatchError
from modelfit_core.contracts.metric_bases import SPIKES
from modelfit_core.contracts.protocols import LeastSquaresMetric
from modelfit_core.fitting.trace_fitter import TraceFitter
from modelfit_core.registry.parts import DEFAULT


class OnlineTraceFitter(TraceFitter):
    """Fit traces with the mean squared error computed during the simulation.

    For long traces or many samples: no trace is recorded, so a round's memory
    does not grow with the length of the traces (see the module docstring).
    No metric is given to :meth:`fit`: the error is the mean squared error
    from ``t_start`` on, exactly what ``MSEMetric(t_start=t_start)`` gives.

    The manual's positional order is ``(model, input_var, input, output_var,
    output, dt, ...)``; ``(model, input, output, dt, ...)`` with dicts, as the
    other fitters take them, works too.

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

    _owner = "OnlineTraceFitter"

    def __init__(self, model, input_var=None, input=None, output_var=None, output=None,
                 dt=None, n_samples=30, method=None, reset=None, refractory=False,
                 threshold=None, param_init=None, t_start=0 * second, penalty=None,
                 use_units=True, *, backend=None, pipeline=None, namespace=None, storage=None,
                 study=None, level=0):
        if input_var is not None and not isinstance(input_var, str):
            # the dict form given by position, (model, input, output, dt[, n_samples]), as
            # the other fitters take it: shift the arguments into place
            if output is not None:
                n_samples = output
            input, output, dt = input_var, input, output_var
            input_var = output_var = None
        if input is None or output is None or dt is None:
            missing = [name for name, value in (("input", input), ("output", output),
                                                ("dt", dt)) if value is None]
            raise ArgumentTypeError(f"OnlineTraceFitter needs {', '.join(missing)}: e.g. "
                                    f"OnlineTraceFitter(model, input={{'I': traces}}, "
                                    f"output={{'v': traces}}, dt=0.01*ms).")
        super().__init__(model, input, output, dt, n_samples=n_samples, input_var=input_var,
                         output_var=output_var, threshold=threshold, reset=reset,
                         refractory=refractory, method=method, param_init=param_init,
                         penalty=penalty, use_units=use_units, backend=backend,
                         pipeline=pipeline, namespace=namespace, storage=storage, study=study,
                         level=level)
        if SPIKES in self.problem.output_names:
            raise ConfigurationError("OnlineTraceFitter fits traces; fit spike trains with "
                                     "SpikeFitter (or TraceFitter with a 'spikes' output).")
        if t_start is None:
            t_start = 0 * second
        try:
            is_time = getattr(t_start, "dim", None) is get_dimensions(second)
        except AttributeError:
            is_time = False
        if not is_time:
            raise UnitMismatchError(f"t_start must be a time with units, e.g. t_start=5*ms; "
                                    f"got {t_start!r}.")
        duration = self.problem.duration
        if not 0 <= float(t_start) < duration:
            raise ConfigurationError(f"t_start = {t_start!r} must be within the traces "
                                     f"(0 s to {duration} s).")
        self.t_start = t_start
        """Start of the part of the traces that counts (a time)."""
        self._online_metric = self._parts.default_metric(t_start=t_start)
        if not isinstance(self._online_metric, LeastSquaresMetric):
            raise ConfigurationError(
                f"OnlineTraceFitter needs a least-squares metric (with residual_form()) as "
                f"the default metric; {type(self._online_metric).__name__} is not one.")

    def _default_metric(self):
        """The least-squares metric of the default plugin, with ``t_start``."""
        return self._online_metric

    # the manual's signature, which has no metric (the squared error is computed online)
    def fit(self, optimizer=None, n_rounds=1,  # pyright: ignore[reportIncompatibleMethodOverride]
            callback=DEFAULT, restart=False,
            start_iteration=None, penalty=None, level=0, resume=False, metric=None,
            objectives=None, dashboard=False, **params):
        """Run ``n_rounds`` rounds; the error is the online mean squared error.

        Parameters are those of :meth:`TraceFitter.fit` without ``metric`` and
        ``online_error`` (``t_start`` is given to the fitter). Returns
        ``(best_params, error)``; the error has the squared units of the output.
        """
        if metric is not None:
            raise ConfigurationError(
                "OnlineTraceFitter computes the mean squared error itself (from t_start, "
                "given to the fitter); remove metric=, or use TraceFitter.")
        return self._fit(optimizer, None, n_rounds, callback, restart=restart,
                         start_iteration=start_iteration, penalty=penalty, resume=resume,
                         level=level, objectives=objectives, online_error=True, bounds=params,
                         dashboard=dashboard)
