"""A gradient round: errors and normal equations of every point, in one simulation.

A fit whose optimizer has the
:class:`~modelfit_core.contracts.protocols.GradientOptimizer` capability
simulates, instead of the plain round, the model extended with its sensitivity
equations (:mod:`modelfit_core.model.sensitivity`, with the jumps at spikes of
:mod:`modelfit_core.model.spike_jumps`), one row per point and trace as a plain
round. Nothing is recorded: every row accumulates, while it is simulated (as
the online error does), for each output ``o`` with normalized residual
``r = (o - recorded) / scale`` and scaled sensitivities
``s_k = dO/du_k / scale`` (``u`` the parameters scaled to their bounds):

    e = sum_t w_t r²,   g_k = sum_t w_t r s_k,   h_kl = sum_t w_t s_k s_l

with ``w_t`` the metric's weight of step ``t`` (``1/count`` from its
``t_start`` on, or its ``t_weights`` divided by their sum). Averaged over the
traces, ``e`` is exactly the metric's error, and ``g`` and ``h`` are the
:class:`~modelfit_core.contracts.protocols.NormalEquations`. A round's memory is
``p (p + 3) / 2 + 1`` numbers per row and output, whatever the length of the
traces; it is estimated before anything is allocated.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
from brian2.units.fundamentalunits import DIMENSIONLESS, get_unit

from modelfit_core.contracts.errors import ConfigurationError, ModelDefinitionError
from modelfit_core.contracts.metric_bases import SPIKES
from modelfit_core.contracts.protocols import (
    GradientOptimizer,
    LeastSquaresMetric,
    NormalEquations,
    RunningSumBackend,
)
from modelfit_core.contracts.simulation import SimulationResult, SimulationSpec
from modelfit_core.fitting.problem import FittingProblem, available_memory
from modelfit_core.model.equations import initial_values
from modelfit_core.model.namespace import user_stacklevel
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.model.sensitivity import build_sensitivity_system, sensitivity_name

GRADIENT_SIMULATION = "modelfit_gradient"
"""The name of the simulation of a gradient round."""

DERIVATIVE_FREE = ("de (pymoo's differential evolution), cmaes, nevergrad's DE or any other "
                   "derivative-free optimizer")
"""What a refusal suggests instead of the gradient optimizer."""

MEMORY_COPIES = 3
"""Each per-row value is held about three times (Brian's array, temporaries of the
generated code, the copy read back at the end)."""


def wants_gradients(optimizer) -> bool:
    """Whether the fit must simulate sensitivities for ``optimizer``."""
    return isinstance(optimizer, GradientOptimizer)


def _quantity_code(value: float, dim) -> str:
    """Brian code for the SI value ``value`` of dimension ``dim``."""
    return repr(float(value)) if dim is DIMENSIONLESS else \
        f"({float(value)!r} * {get_unit(dim)!r})"


@attrs.frozen
class OutputSums:
    """The running sums of one output."""

    name: str
    error: str
    """The variable holding e."""
    gradient: tuple[str | None, ...]
    """Per parameter, the variable holding g_k (None: the sensitivity is zero)."""
    hessian: dict[tuple[int, int], str]
    """(k, l) with k <= l -> the variable holding h_kl (pairs of non-zero ones)."""


ANALYTIC_METHODS = frozenset({"exact", "linear", "independent"})
"""Brian's analytic integration methods, which cannot integrate a model with its
sensitivity equations."""


@attrs.define
class SensitivityRound:
    """How a fit's gradient rounds are simulated and read; make one with :meth:`build`,
    which refuses (before anything is simulated) what cannot be differentiated."""

    space: ParameterSpace
    model_text: str
    reset: Any
    init: dict[str, Any]
    outputs: tuple[OutputSums, ...]
    running_code: str
    step_weights: dict[str, np.ndarray]
    per_row_values: int
    """Numbers each row (point × trace) holds: state, sensitivities, sums, temporaries."""
    method: str
    """The integration method (the sensitivities are exact derivatives of its steps for
    'euler' and 'exponential_euler')."""

    @property
    def running_sums(self) -> tuple[str, ...]:
        names: list[str] = []
        for output in self.outputs:
            names.append(output.error)
            names.extend(n for n in output.gradient if n is not None)
            names.extend(output.hessian.values())
        return tuple(names)

    # -- building, with every refusal ---------------------------------------------------
    @classmethod
    def build(cls, problem: FittingProblem, objective, space: ParameterSpace,
              optimizer_name: str = "the gradient optimizer",
              spike_jumps: bool = True, implicit_method: bool = True) -> SensitivityRound:
        """Check that the fit can be differentiated and derive what it simulates
        (``spike_jumps=False`` leaves out the shift of spike times, for comparisons;
        ``implicit_method=False`` refuses a fitter without an integration method instead
        of integrating with 'euler', as the choice of a default optimizer must).

        Raises
        ------
        ConfigurationError
            A metric without residuals (a spike metric, the gamma factor, eFEL
            features), several objectives, a penalty, or a backend that cannot
            accumulate running sums.
        ModelDefinitionError
            The model's derivatives cannot be computed (noise, a function sympy
            cannot differentiate, a random or parameter-changing reset, a
            threshold that is no comparison), or an output that is no
            differential equation.
        """
        instead = f"Use {DERIVATIVE_FREE}"
        if SPIKES in problem.output_names:
            raise ConfigurationError(
                f"{optimizer_name} needs residuals (traces minus recordings), which spike "
                f"trains compared by a spike metric do not have. Fit the voltage trace "
                f"with MSEMetric, or fit spikes with a derivative-free optimizer. {instead}.")
        for name, metric in objective.metrics.items():
            if not isinstance(metric, LeastSquaresMetric):
                raise ConfigurationError(
                    f"{optimizer_name} needs the residuals of the error, but the metric "
                    f"for {name!r} ({type(metric).__name__}) is no least-squares metric "
                    f"(it has no residual_form()). Use MSEMetric (t_start, t_weights and "
                    f"normalization are supported), or keep {type(metric).__name__} and "
                    f"fit with a derivative-free optimizer: {DERIVATIVE_FREE}.")
        if objective.mode is not None:
            raise ConfigurationError(f"{optimizer_name} minimizes one error; fit(objectives="
                                     f"...) needs a multi-objective optimizer such as "
                                     f"'nsga2'.")
        if problem.penalty:
            raise ConfigurationError(
                f"{optimizer_name} cannot differentiate the penalty {problem.penalty!r} (a "
                f"value at the end of the run, not a residual); fit without penalty= or "
                f"with a derivative-free optimizer. {instead}.")
        backend = problem.backend
        if not isinstance(backend, RunningSumBackend) or not backend.simulates_running_sums:
            raise ConfigurationError(
                f"The backend {getattr(backend, 'name', type(backend).__name__)!r} cannot "
                f"accumulate the sums of a gradient round (it lacks the RunningSumBackend "
                f"capability); use backend='runtime', 'cpp_standalone' or 'dask', or a "
                f"derivative-free optimizer with this backend.")
        if problem.threshold is not None and not isinstance(problem.threshold, str):
            raise ModelDefinitionError(f"{optimizer_name} needs the threshold as Brian code "
                                       f"(a string); got {problem.threshold!r}.")
        method = problem.method if isinstance(problem.method, str) else None
        if method is None and not implicit_method:
            raise ConfigurationError(
                f"{optimizer_name} needs the integration method named: the fitter was "
                f"given none, and Brian's choice may be an analytic one, which cannot "
                f"integrate the sensitivity equations. Give the fitter "
                f"method='exponential_euler' or 'euler'.")
        if method is None:
            # Brian would pick 'exact' for a linear model, but the model with its
            # sensitivities is not linear: integrate it with the method whose
            # derivatives are exact, and say so
            warnings.warn(f"No integration method given: {optimizer_name} simulates the "
                          f"model with its sensitivities with method='euler'; give "
                          f"method='exponential_euler' or 'euler' to the fitter so that every "
                          f"simulation of the fit integrates alike.", UserWarning,
                          stacklevel=user_stacklevel())
            method = "euler"
        elif method in ANALYTIC_METHODS:
            # Brian solves only linear systems analytically; the model with its
            # sensitivities is not linear, so Brian would fail while compiling
            raise ConfigurationError(
                f"{optimizer_name} simulates the model with its sensitivity equations, "
                f"which method={method!r} cannot integrate (Brian solves only linear "
                f"systems analytically, and the sensitivity equations multiply states by "
                f"sensitivities). Give the fitter method='exponential_euler' (exact for a "
                f"linear model under a constant input) or 'euler', or use "
                f"{DERIVATIVE_FREE} with method={method!r}.")
        initial, _ = initial_values(problem.param_init, problem.model, set(space.names))
        try:
            system = build_sensitivity_system(
                problem.model.equations, space.names, dict(zip(space.names, space.dims)),
                param_init=initial, reset=problem.reset if isinstance(problem.reset, str)
                else None, method=method,
                threshold=problem.threshold if problem.reset and spike_jumps else None)
        except ModelDefinitionError as exc:
            raise ModelDefinitionError(
                f"{optimizer_name} cannot differentiate this model: {exc} {instead}.") from exc
        outputs, lines, weights = [], [], {}
        lines_sums: list[str] = []
        reset_before: list[str] = []
        reset_after: list[str] = []
        for name in problem.recordings.trace_outputs:
            if name not in system.variables:
                raise ModelDefinitionError(
                    f"{optimizer_name} differentiates the outputs through the sensitivity "
                    f"equations of the model's differential equations, but {name!r} is not "
                    f"one. Fit a variable defined by a differential equation, or use "
                    f"{DERIVATIVE_FREE}.")
            output, code, sums, weight = _output_code(
                problem, space, system, name, objective.metrics[name])
            before, after = _moving_jump_code(problem, space, system, name, output, code)
            reset_before.extend(before)
            reset_after.extend(after)
            outputs.append(output)
            lines.extend(code)
            lines_sums.extend(sums)
            weights.update(weight)
        n_sums = sum(1 + sum(g is not None for g in o.gradient) + len(o.hessian)
                     for o in outputs)
        n_temporaries = len(lines)
        per_row = (len(problem.model.equations.names) + len(system.rhs) + len(system.helpers)
                   + n_sums + n_temporaries)
        reset = system.reset if system.reset is not None else problem.reset
        if reset_after:
            reset = "\n".join([*reset_before, str(reset), *reset_after])
        return cls(space=space,
                   model_text=problem.model.text + "\n" + system.equations_text(
                       include_zero=False),
                   reset=reset,
                   init=dict(system.init), outputs=tuple(outputs),
                   running_code="\n".join(lines + lines_sums), step_weights=weights,
                   per_row_values=per_row, method=method)

    # -- simulating ------------------------------------------------------------------------
    def memory_needed(self, n_samples: int, n_traces: int) -> int:
        """Bytes a round of ``n_samples`` points holds (8 bytes per value)."""
        return 8 * MEMORY_COPIES * self.per_row_values * n_samples * n_traces

    def check_memory(self, n_samples: int, n_traces: int, *, remote: bool = False) -> None:
        """Refuse, before anything is allocated, a round that does not fit in memory."""
        needed = self.memory_needed(n_samples, n_traces)
        available = available_memory()
        if remote or available is None or needed <= available:
            return
        p = len(self.space.names)
        raise ConfigurationError(
            f"A gradient round would hold {self.per_row_values} values (state, "
            f"sensitivities and the p(p+3)/2+1 sums per output for p = {p} parameters) for "
            f"each of {n_samples} points x {n_traces} traces, about "
            f"{needed / 2**30:.1f} GiB, but only {available / 2**30:.1f} GiB of memory is "
            f"available. Use fewer points per round (n_samples), fix some parameters "
            f"(param_init) to fit fewer, a machine with more memory, or backend='dask' to "
            f"spread the points over workers.")

    def spec(self, problem: FittingProblem, n_samples: int,
             namespace: Mapping[str, Any]) -> SimulationSpec:
        """What the backend prepares: the extended model, nothing recorded, the sums
        returned at the end."""
        spec = problem.simulation_spec(
            n_samples, self.space.names, namespace, name=GRADIENT_SIMULATION, record=(),
            record_final=self.running_sums, model_text=self.model_text, reset=self.reset,
            extra_init=self.init)
        targets = dict(spec.targets)
        targets.update({o.name: problem.recordings.traces[o.name] for o in self.outputs})
        return attrs.evolve(spec, targets=targets, method=self.method, running_sums=self.running_sums,
                            running_code=self.running_code, step_weights=self.step_weights)

    # -- reading ------------------------------------------------------------------------------
    def complete(self, result: SimulationResult, n_samples: int,
                 n_traces: int) -> NormalEquations:
        """The normal equations of a simulated round; each output's error is written to
        ``result.errors`` (where the objective reads it), and a point whose sums are not
        finite is marked failed (diverged)."""
        p = len(self.space.names)
        jtj = np.zeros((n_samples, p, p))
        jtr = np.zeros((n_samples, p))

        def per_point(variable: str) -> np.ndarray:
            values = np.asarray(result.final[variable], dtype=float)
            values = np.broadcast_to(values, (n_samples * n_traces,))
            with np.errstate(invalid="ignore", over="ignore"):
                return values.reshape(n_samples, n_traces).mean(axis=1)

        for output in self.outputs:
            result.errors[output.name] = per_point(output.error)
            for k, variable in enumerate(output.gradient):
                if variable is not None:
                    jtr[:, k] += per_point(variable)
            for (k, l), variable in output.hessian.items():
                values = per_point(variable)
                jtj[:, k, l] += values
                if k != l:
                    jtj[:, l, k] += values
        bad = ~(np.isfinite(jtj).all(axis=(1, 2)) & np.isfinite(jtr).all(axis=1))
        if bad.any():
            jtj[bad], jtr[bad] = 0.0, 0.0
            failed = np.zeros(n_samples, bool) if result.failed is None else result.failed
            result.failed = failed | bad
        return NormalEquations(jtj=jtj, jtr=jtr)


def _moving_jump_code(problem: FittingProblem, space: ParameterSpace, system, name: str,
                      output: OutputSums, code: list[str]) -> tuple[list[str], list[str]]:
    """Reset statements adding to the gradient sums of output ``name`` the effect of its
    jump moving with the spike: while the spike is later by dt*, the trace keeps its
    value before the reset, so the error changes by (w/dt) (r-² - r+²) dt* (Leibniz's
    rule at the discontinuity), which the sensitivities (derivatives at fixed times)
    do not see. Returns (statements before the reset, statements after it)."""
    if not system.spike_shifts:
        return [], []
    prefix = f"modelfit_grad_{name}"
    weight, residual = code[0], code[1]  # "<prefix>_w = ...", "<prefix>_r = ..."
    before = [weight, residual.replace(f"{prefix}_r =", f"{prefix}_rpre =", 1)]
    after = [residual]
    for k, (parameter, width, pdim) in enumerate(zip(space.names, space.upper - space.lower,
                                                     space.dims)):
        shift = system.spike_shifts.get(parameter)
        if shift is None or output.gradient[k] is None:
            continue
        after.append(f"{output.gradient[k]} += 0.5 * {prefix}_w / dt * "
                     f"({prefix}_rpre**2 - {prefix}_r**2) * {shift} * "
                     f"{_quantity_code(width, pdim)}")
    return before, after


def _output_code(problem: FittingProblem, space: ParameterSpace, system, name: str, metric):
    """The sums of output ``name``: (OutputSums, temporaries, sum statements, weights)."""
    n_steps, dt = problem.n_steps, float(problem.dt)
    form = metric.residual_form(n_steps, dt)
    if form.weights is not None:
        weights = np.asarray(form.weights, dtype=float)
        if weights.shape != (n_steps,) or not np.isfinite(weights).all() \
                or (weights < 0).any() or weights.sum() <= 0:
            raise ConfigurationError(
                f"The metric for {name!r} gives t_weights that are not {n_steps} "
                f"non-negative finite numbers with a positive sum (one per time step).")
        weights = weights / weights.sum()
    else:
        if not 0 <= form.start_step < n_steps:
            raise ConfigurationError(f"The metric for {name!r} starts at step "
                                     f"{form.start_step}, outside the traces (0 to "
                                     f"{n_steps - 1}); use a smaller t_start.")
        weights = np.zeros(n_steps)
        weights[form.start_step:] = 1.0 / (n_steps - form.start_step)
    dim = problem.output_dims[name]
    scale = _quantity_code(form.scale, dim)
    prefix = f"modelfit_grad_{name}"
    weight_function = f"modelfit_weight_{name}"
    code = [f"{prefix}_w = {weight_function}(t)",
            f"{prefix}_r = ({name} - {name}_target) / {scale}"]
    error = f"{prefix}_e"
    sums = [f"{error} += {prefix}_w * {prefix}_r**2"]
    gradient: list[str | None] = []
    for k, (parameter, width, pdim) in enumerate(zip(space.names, space.upper - space.lower,
                                                     space.dims)):
        sensitivity = sensitivity_name(name, parameter)
        if sensitivity not in system.rhs:
            gradient.append(None)  # stays zero: not simulated
            continue
        code.append(f"{prefix}_s{k} = {sensitivity} * {_quantity_code(width, pdim)} / {scale}")
        gradient.append(f"{prefix}_g{k}")
        sums.append(f"{prefix}_g{k} += {prefix}_w * {prefix}_r * {prefix}_s{k}")
    hessian = {}
    live = [k for k, g in enumerate(gradient) if g is not None]
    for a, k in enumerate(live):
        for m in live[a:]:
            hessian[k, m] = f"{prefix}_h{k}_{m}"
            sums.append(f"{prefix}_h{k}_{m} += {prefix}_w * {prefix}_s{k} * {prefix}_s{m}")
    return (OutputSums(name=name, error=error, gradient=tuple(gradient), hessian=hessian),
            code, sums, {weight_function: weights})
