"""``TraceFitter.refine``: least-squares refinement with :func:`scipy.optimize.least_squares`.

Starting from the best fit (or given parameters), scipy minimizes the sum of
squared residuals ``(simulated - recorded)/normalization`` over every time
step of every trace (after ``t_start``, or weighted by ``sqrt(t_weights)``,
as the fit's :class:`MSEMetric` says), so the mean of the squared residuals
of one output is exactly the fit's MSE error. One parameter set is simulated
per evaluation, on all traces, with a simulation prepared (compiled) once per
configuration and kept on the fitting problem.

With ``calc_gradient=True`` the model is extended with sensitivity equations
(:mod:`modelfit_core.model.sensitivity`) and scipy receives the analytic Jacobian;
otherwise scipy estimates it by finite differences.

scipy works in coordinates scaled to the bounds (each parameter mapped
linearly onto [0, 1]): SI values such as 1e-8 S would otherwise make scipy's
finite-difference steps and ``x_scale`` meaningless. The returned
``OptimizeResult`` is converted back: ``x`` is in SI units, and ``jac`` and
``grad`` are per SI unit of each parameter.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Mapping

import attrs
import numpy as np
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import (ArgumentTypeError, ConfigurationError, ParameterError,
                                            SimulationError)
from modelfit_core.contracts.protocols import LeastSquaresMetric
from modelfit_core.contracts.simulation import SimulationResult
from modelfit_core.contracts.units import error_quantity, with_unit
from modelfit_core.fitting.objective import normalized_dimensions
from modelfit_core.fitting.problem import GENERATE_ITERATION, FittingProblem
from modelfit_core.model.equations import initial_values
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.model.sensitivity import build_sensitivity_system, sensitivity_name


class RefineArgumentError(ParameterError, TypeError):
    """refine() lacks a starting point or bounds (a TypeError, as in brian2modelfitting)."""


class _StopRefine(Exception):
    """Raised inside the residual function when the callback asks to stop."""


_RESERVED_SCIPY = {"fun", "x0", "bounds", "args", "kwargs"}


@attrs.define
class _Residuals:
    """How one output's traces become residuals, following its MSEMetric."""

    name: str
    data: np.ndarray
    start: int
    weights: np.ndarray | None
    scale: float

    def select(self, traces: np.ndarray) -> np.ndarray:
        """(n_traces, n_steps) -> residual-shaped values (flattened)."""
        if self.weights is not None:
            return (traces * self.weights / self.scale).ravel()
        return (traces[:, self.start:] / self.scale).ravel()

    def residual(self, simulated: np.ndarray) -> np.ndarray:
        return self.select(simulated - self.data)


def _residual_makers(problem: FittingProblem, metric,
                     use_units: bool = True) -> tuple[dict[str, _Residuals], Any]:
    """Validate ``metric`` (one least-squares metric or one per output) -> residual
    makers, error dim.

    Only trace outputs are refined; a spike output of the fitter is left out.
    """
    names = problem.recordings.trace_outputs
    if isinstance(metric, (list, tuple)):  # the deprecated list form that fit() accepted
        outputs = problem.recordings.output_names
        if len(metric) != len(outputs):
            raise ConfigurationError(f"The list of metrics has {len(metric)} entries for "
                                     f"{len(outputs)} outputs ({', '.join(outputs)}).")
        metric = dict(zip(outputs, metric))
    if isinstance(metric, Mapping):
        missing = [n for n in names if n not in metric]
        if missing:
            raise ConfigurationError(f"The metric dictionary has no metric for "
                                     f"{', '.join(map(repr, missing))}.")
    makers, dims = {}, {}
    for name in names:
        m = metric[name] if isinstance(metric, Mapping) else metric
        if not isinstance(m, LeastSquaresMetric):  # a TypeError, as the reference's
            raise ArgumentTypeError(
                f"refine() fits squared differences of traces, so it only takes a "
                f"least-squares metric such as MSEMetric (for its t_start, t_weights and "
                f"normalization); got {type(m).__name__} for {name!r}.")
        dims[name] = normalized_dimensions(m, problem.output_dims[name])
        data = np.asarray(problem.recordings.traces[name].values, dtype=float)
        n_steps = data.shape[1]
        form = m.residual_form(n_steps, float(problem.dt))
        weights = form.weights
        if weights is not None:
            weights = np.asarray(weights, dtype=float)
            if weights.shape != (n_steps,):
                raise ConfigurationError(f"t_weights has {weights.size} entries but the "
                                         f"traces have {n_steps} time steps.")
            weights = np.sqrt(weights * n_steps / weights.sum())
        elif form.start_step >= n_steps:
            raise ConfigurationError("t_start is beyond the end of the traces.")
        makers[name] = _Residuals(name=name, data=data, start=form.start_step,
                                  weights=weights, scale=float(form.scale))
    if len({str(d) for d in dims.values()}) > 1 and not use_units:
        # use_units=False, as the manual says: plain numbers, SI values added
        dims = dict.fromkeys(dims, DIMENSIONLESS)
    if len({str(d) for d in dims.values()}) > 1:
        raise ConfigurationError(
            "The normalized errors of the outputs have different units and cannot be "
            "added; give one MSEMetric per output with a normalization that makes them "
            "compatible.")
    return makers, next(iter(dims.values()))


def _refined_space(problem: FittingProblem, fit_space: ParameterSpace | None,
                   kwds: dict) -> ParameterSpace:
    """Bounds from the last fit, overridden by ``name=[lower, upper]`` in ``kwds``."""
    declared = problem.model.parameters
    fixed = problem.fixed_parameters
    bounds = {}
    if fit_space is not None:
        for name, low, high, dim in zip(fit_space.names, fit_space.lower,
                                        fit_space.upper, fit_space.dims):
            bounds[name] = [with_unit(float(low), dim), with_unit(float(high), dim)]
    for name in [k for k in kwds if k in declared]:
        bounds[name] = kwds.pop(name)
    missing = [n for n in declared if n not in bounds and n not in fixed]
    if missing:
        raise RefineArgumentError(
            f"No bounds for {', '.join(map(repr, missing))}: call fit() first (n_rounds=0 is "
            f"enough) or pass them to refine(), e.g. {missing[0]}=[lower, upper].")
    return ParameterSpace.from_bounds(declared, bounds, fixed=fixed)


def _check_scipy_options(kwds: dict, calc_gradient: bool, space: ParameterSpace):
    from scipy.optimize import least_squares  # imported when refining: it costs 0.25 s

    accepted = set(inspect.signature(least_squares).parameters) - _RESERVED_SCIPY
    unknown = sorted(set(kwds) - accepted)
    if unknown:
        raise ConfigurationError(
            f"refine() got {', '.join(map(repr, unknown))}, which is neither a parameter of "
            f"the model ({', '.join(space.names)}) nor an argument of "
            f"scipy.optimize.least_squares ({', '.join(sorted(accepted))}).")
    if calc_gradient and "jac" in kwds:
        raise ConfigurationError("jac cannot be given with calc_gradient=True, which "
                                 "provides the analytic Jacobian.")
    if kwds.get("method") == "lm":
        raise ConfigurationError("method='lm' (Levenberg-Marquardt) cannot honour bounds; "
                                 "use the default 'trf' or 'dogbox'.")


def _start_vector(problem: FittingProblem, best: dict, params,
                  space: ParameterSpace) -> np.ndarray:
    start = dict(best)
    if params is None and not start:
        raise RefineArgumentError("refine() needs a starting point: pass params={...} or "
                                  "call fit() first.")
    unknown = sorted(set(params or {}) - set(problem.model.parameters))
    if unknown:
        raise ParameterError(f"params has {', '.join(map(repr, unknown))}: not a parameter "
                             f"of the model ({', '.join(problem.model.parameters)}).")
    start.update(params or {})
    missing = [n for n in space.names if n not in start]
    if missing:
        raise RefineArgumentError(f"No starting value for {', '.join(map(repr, missing))}; "
                                  f"give it in params.")
    x0 = space.vector_from(start)
    outside = [n for n, v, lo, hi in zip(space.names, x0, space.lower, space.upper)
               if not lo <= v <= hi]
    if outside:
        raise ParameterError(f"The starting value of {', '.join(map(repr, outside))} is "
                             f"outside its bounds.")
    return x0


class _Evaluator:
    """Simulates one parameter set (and its sensitivities) and caches the last run."""

    def __init__(self, space, makers, prepared, sensitivities, iteration):
        self.space, self.makers = space, makers
        self.prepared, self.sensitivities, self.iteration = prepared, sensitivities, iteration
        self.width = space.upper - space.lower
        self.n_simulations = 0
        self._last_x = None
        self._last = None

    def to_si(self, x_unit) -> np.ndarray:
        return self.space.lower + np.asarray(x_unit, dtype=float) * self.width

    def simulate(self, x_unit) -> SimulationResult:
        x_unit = np.asarray(x_unit, dtype=float)
        if self._last is not None and self._last_x is not None \
                and np.array_equal(x_unit, self._last_x):
            return self._last
        vector = self.to_si(x_unit)
        result = self.prepared.run({n: np.array([v]) for n, v in zip(self.space.names, vector)},
                                   iteration=self.iteration)
        self.n_simulations += 1
        self._last_x, self._last = x_unit.copy(), result
        return result

    def residuals(self, x_unit) -> tuple[np.ndarray, dict[str, float]]:
        traces = self.simulate(x_unit).traces
        pieces = {name: maker.residual(traces[name][0]) for name, maker in self.makers.items()}
        errors = {name: float(np.mean(piece ** 2)) for name, piece in pieces.items()}
        return np.concatenate(list(pieces.values())), errors

    def jacobian(self, x_unit) -> np.ndarray:
        traces = self.simulate(x_unit).traces
        columns = []
        for k, parameter in enumerate(self.space.names):
            column = []
            for name, maker in self.makers.items():
                sname = sensitivity_name(name, parameter)
                if sname in traces:
                    column.append(maker.select(traces[sname][0]) * self.width[k])
                else:  # a sensitivity that stays zero was left out of the simulation
                    column.append(np.zeros_like(maker.select(maker.data)))
            columns.append(np.concatenate(column))
        jac = np.column_stack(columns)
        if not np.isfinite(jac).all():
            raise SimulationError(
                "The sensitivity equations produced NaN/inf at "
                f"{self.space.describe(self.to_si(x_unit))}; use calc_gradient=False.")
        return jac


@attrs.frozen
class SensitivityModel:
    """The model extended with the sensitivities of its variables to the parameters."""

    model_text: str
    reset: Any
    init: dict
    """Initial values of the sensitivity variables."""
    system: Any
    """The :class:`~modelfit_core.model.sensitivity.SensitivitySystem`."""


def sensitivity_model(problem: FittingProblem, space: ParameterSpace,
                      optimize: bool = True) -> SensitivityModel:
    """``problem``'s model plus sensitivity equations for the parameters of ``space``
    (``optimize``: leave out those that stay zero)."""
    initial, _ = initial_values(problem.param_init, problem.model, set(space.names))
    system = build_sensitivity_system(
        problem.model.equations, space.names, dict(zip(space.names, space.dims)),
        param_init=initial, reset=problem.reset if isinstance(problem.reset, str) else None,
        optimize=optimize, method=problem.method if isinstance(problem.method, str) else None)
    return SensitivityModel(
        model_text=problem.model.text + "\n" + system.equations_text(include_zero=False),
        reset=system.reset if system.reset is not None else problem.reset,
        init=dict(system.init), system=system)


def _prepare(problem: FittingProblem, space, makers, calc_gradient, optimize, level):
    """Prepared simulation of one parameter set on all traces (kept on the problem)."""
    initial, constants = initial_values(problem.param_init, problem.model, set(space.names))
    record = list(makers)
    model_text, reset, init = problem.model.text, problem.reset, {}
    if calc_gradient:
        extended = sensitivity_model(problem, space, optimize)
        model_text, reset, init = extended.model_text, extended.reset, extended.init
        record += [sensitivity_name(name, p) for name in makers for p in space.names
                   if sensitivity_name(name, p) in extended.system.rhs]
    key = ("refine", space.names, tuple(record), model_text, str(reset),
           repr(sorted(init.items(), key=str)), repr(sorted(initial.items(), key=str)),
           repr(sorted(constants.items())))
    return problem.prepared(key, lambda: problem.simulation_spec(
        1, space.names, problem.resolve_namespace(level), name="modelfit_refine",
        record=record, model_text=model_text, reset=reset, extra_init=init),
        backend=problem.single_run_backend)


class _Progress:
    """What ``least_squares`` evaluated: every error, the best point, the feedback.

    Called as ``least_squares``'s residual function: simulates (through the
    evaluator), records the error, tells the feedback (which may stop the
    refinement), and returns the residuals.
    """

    def __init__(self, evaluator: _Evaluator, space: ParameterSpace, feedback, as_error,
                 use_units: bool):
        self.evaluator, self.space, self.feedback = evaluator, space, feedback
        self.as_error, self.use_units = as_error, use_units
        self.index = 0
        self.best_x: np.ndarray | None = None
        self.best_error = np.inf
        self.best_residuals: np.ndarray | None = None
        self.errors: list[float] = []
        """The error of every evaluation, in order."""

    def __call__(self, x_unit) -> np.ndarray:
        residuals, errors = self.evaluator.residuals(x_unit)
        total = float(sum(errors.values()))
        self.errors.append(total)
        if np.isfinite(total) and total < self.best_error:
            self.best_x, self.best_error = np.array(x_unit, dtype=float), total
            self.best_residuals = residuals
        if self.feedback is not None and self.best_x is not None:
            to_si, space = self.evaluator.to_si, self.space
            info = {"best_params_text": space.describe(to_si(self.best_x)),
                    "refine": True, "objective_errors": errors,
                    "n_simulations": self.evaluator.n_simulations}
            # the errors of every evaluation so far, as brian2modelfitting's refine passes
            # them (an array; a Quantity with units), the container fit() passes too
            all_errors = self.as_error(np.array(self.errors, dtype=float))
            if self.feedback(space.to_dict(to_si(x_unit), self.use_units), all_errors,
                             space.to_dict(to_si(self.best_x), self.use_units),
                             self.as_error(self.best_error), self.index, info):
                raise _StopRefine()
        self.index += 1
        return residuals

    def stopped(self):
        """The result of a refinement the feedback stopped: its best point (the
        feedback is only called once there is one)."""
        from scipy.optimize import OptimizeResult
        residuals = np.asarray(self.best_residuals)
        return OptimizeResult(
            x=self.best_x, fun=residuals,
            cost=0.5 * float(np.sum(residuals ** 2)), jac=None, grad=None,
            optimality=None, active_mask=None, nfev=self.index + 1, njev=None,
            status=-1, message="Stopped by the callback.", success=False)


def refine_fit(problem: FittingProblem, fit_space: ParameterSpace | None,
               best_vector: np.ndarray | None, *, metric, feedback=None,
               params: Mapping[str, Any] | None = None, calc_gradient: bool = False,
               optimize: bool = True, iteration: float = GENERATE_ITERATION, level: int = 0,
               use_units: bool = True, **kwds):
    """:meth:`TraceFitter.refine` (see there) of ``problem``, starting from the best
    parameters ``best_vector`` (SI) of a fit over ``fit_space``, or from ``params``."""
    from scipy.optimize import least_squares

    kwds = dict(kwds)
    space = _refined_space(problem, fit_space, kwds)
    _check_scipy_options(kwds, calc_gradient, space)
    best = fit_space.to_dict(best_vector, use_units=True) \
        if fit_space is not None and best_vector is not None else {}
    x0 = _start_vector(problem, best, params, space)
    makers, error_dim = _residual_makers(problem, metric, use_units)
    prepared = _prepare(problem, space, makers, calc_gradient, optimize, level)
    evaluator = _Evaluator(space, makers, prepared, calc_gradient, iteration)

    def as_error(value):
        return error_quantity(value, error_dim) if use_units else value

    progress = _Progress(evaluator, space, feedback, as_error, use_units)
    if calc_gradient:
        kwds["jac"] = evaluator.jacobian
    start, finish = getattr(feedback, "start", None), getattr(feedback, "finish", None)
    if callable(start):
        start(kwds.get("max_nfev"))
    started = time.perf_counter()
    try:
        result = least_squares(progress, np.clip((x0 - space.lower) / evaluator.width, 0, 1),
                               bounds=(np.zeros(len(x0)), np.ones(len(x0))), **kwds)
    except _StopRefine:
        result = progress.stopped()
    except ValueError as exc:
        if "not finite in the initial point" in str(exc):
            raise SimulationError(
                f"The simulation at the starting point "
                f"({space.describe(x0)}) diverged (NaN/inf); start from other "
                f"parameters.") from exc
        raise
    finally:
        if callable(finish):
            finish()
    # back from the unit cube least_squares worked in to SI units
    result.x = evaluator.to_si(result.x)
    for name in ("jac", "grad"):
        value = result.get(name)
        if value is not None:
            width = evaluator.width
            result[name] = np.asarray(value) / (width if name == "grad" else width[None, :])
    result.n_simulations = evaluator.n_simulations
    result.wall_time = time.perf_counter() - started
    result.errors = np.array(progress.errors)
    sizes = np.cumsum([maker.select(maker.data).size for maker in makers.values()])[:-1]
    result.error = as_error(float(sum(np.mean(piece ** 2) for piece in
                                      np.split(np.asarray(result.fun), sizes))))
    return space.to_dict(result.x, use_units), result
