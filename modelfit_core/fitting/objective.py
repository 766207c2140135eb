"""The objective of a fit: how a simulated batch becomes one error per parameter set.

One metric per output (a trace variable or ``'spikes'``); their normalized
errors are added, plus the ``penalty`` variable. A trace output may instead be
scored *online*, its squared error accumulated during the simulation
(:mod:`.online_error`); a backend that simulates elsewhere may score there
(:class:`ErrorsWhereSimulated`).
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import attrs
import numpy as np
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError
from modelfit_core.contracts.units import UnitMismatchError
from modelfit_core.contracts.metric_bases import SPIKES, compares_spikes
from modelfit_core.contracts.protocols import MetricWithUnits, ResidualForm
from modelfit_core.contracts.simulation import SimulationResult
from modelfit_core.contracts.units import error_quantity, unit_text
from modelfit_core.fitting import online_error
from modelfit_core.fitting.multiobjective import layout
from modelfit_core.model.namespace import user_stacklevel
from modelfit_core.model.recordings import Recordings
from modelfit_core.results.history import History, OutputErrors



def check_penalty_units(model, penalty: str, error_dim) -> None:
    """The ``penalty`` variable is added to the error: its units must be the error's
    (after the metric's normalization), as brian2modelfitting checks.

    Raises
    ------
    UnitMismatchError
        Naming the penalty, its units and the error's.
    """
    try:
        penalty_dim = model.dimension_of(penalty)
    except (KeyError, AttributeError):
        return  # an unknown name is reported by the model check
    if penalty_dim != error_dim:
        shown = {dim: unit_text(dim) for dim in (penalty_dim, error_dim)}
        raise UnitMismatchError(
            f"penalty={penalty!r} is in {shown[penalty_dim]} but the errors it is added to "
            f"are in {shown[error_dim]}; declare the penalty variable with the error's units "
            f"(e.g. '{penalty} : {shown[error_dim]}'), or normalize the metric so that "
            f"the error has the penalty's units.")

@attrs.frozen
class Scores:
    """The errors of one batch: total (n_samples,), divergence flags, and per output."""

    total: np.ndarray
    diverged: np.ndarray
    per_output: dict[str, np.ndarray]
    objectives: dict[str, np.ndarray] = attrs.field(factory=dict)
    """With several objectives: each one's errors, in order (empty otherwise)."""


def metrics_per_output(metric, output_names: list[str]) -> dict[str, Any]:
    """One metric for all outputs, or a dict with exactly one metric per output (a list
    in the order of the outputs is accepted with a warning, as brian2modelfitting does)."""
    if isinstance(metric, (list, tuple)):
        warnings.warn("Using a list of metrics is deprecated, use a dictionary instead: "
                      "metric={" + ", ".join(f"{n!r}: ..." for n in output_names) + "}.",
                      FutureWarning, stacklevel=user_stacklevel())
        if len(metric) != len(output_names):
            raise ArgumentTypeError(
                f"The list of metrics has {len(metric)} entries for {len(output_names)} "
                f"output variables ({', '.join(output_names)}); give one metric per output, "
                f"preferably as a dict.")
        metric = dict(zip(output_names, metric))
    if isinstance(metric, Mapping):
        unknown = set(metric) - set(output_names)
        missing = set(output_names) - set(metric)
        if unknown or missing:
            raise ConfigurationError(
                f"The metric dictionary must have one metric per output variable "
                f"({', '.join(output_names)}); " +
                (f"unknown: {', '.join(sorted(unknown))}. " if unknown else "") +
                (f"missing: {', '.join(sorted(missing))}." if missing else ""))
        metrics = dict(metric)
    else:
        metrics = {name: metric for name in output_names}
    for name, m in metrics.items():
        if not callable(getattr(m, "calc", None)):
            raise ArgumentTypeError(f"The metric for {name!r} ({m!r}) has no calc() "
                                    f"method; pass a Metric such as MSEMetric().")
    return metrics


def check_metric_kinds(metrics: Mapping[str, Any], owner: str) -> None:
    """Spike outputs need spike metrics and trace outputs trace metrics; a metric of
    the wrong kind is an :class:`ArgumentTypeError` (a ``TypeError``, as
    brian2modelfitting raises, and a modelfit error)."""
    for name, metric in metrics.items():
        spiky = compares_spikes(metric)
        if name == SPIKES and not spiky:
            raise ArgumentTypeError(
                f"{type(metric).__name__} compares traces, but the output 'spikes' holds "
                f"spike trains. Use a spike metric such as GammaFactor(delta=..., "
                f"time=...).")
        if name != SPIKES and spiky:
            raise ArgumentTypeError(
                f"{type(metric).__name__} compares spike trains, but {owner} fits "
                f"the trace {name!r}. Use a trace metric such as MSEMetric(), or fit "
                f"output={{'spikes': ...}} (SpikeFitter).")


def raw_dimensions(metric, output_dim):
    """Dimensions of a metric's error before normalization (dimensionless without units)."""
    return metric.get_dimensions(output_dim) if isinstance(metric, MetricWithUnits) \
        else DIMENSIONLESS


def normalized_dimensions(metric, output_dim):
    """Dimensions of a metric's error after normalization."""
    return metric.get_normalized_dimensions(output_dim) if isinstance(metric, MetricWithUnits) \
        else DIMENSIONLESS


def recorded_errors(recordings: Recordings, names, result: SimulationResult,
                    metrics: Mapping[str, Any], dt,
                    split: Mapping[str, tuple] | None = None) -> dict[str, np.ndarray]:
    """Normalized error (n_samples,) of each output in ``names`` from recorded results
    (or from errors the backend computed already); an output in ``split`` is scored
    by ``calc_objectives``, its objectives (the names ``split`` gives) added too."""
    errors, split = {}, split or {}
    for name in names:
        if name in result.errors:
            errors.update({key: np.asarray(result.errors[key], dtype=float)
                           for key in (name, *split.get(name, ()))})
            continue
        calc = metrics[name].calc_objectives if name in split else metrics[name].calc
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            if name == SPIKES:
                values = calc(result.spikes, recordings.spikes, dt)
            else:
                values = calc(result.traces[name], recordings.traces[name].values, dt)
        values = np.asarray(values, dtype=float)
        if name in split:
            values = values.reshape(len(values), -1)
            if values.shape[1] != len(split[name]):
                raise ConfigurationError(
                    f"{type(metrics[name]).__name__}.calc_objectives() gave {values.shape[1]} "
                    f"objectives for {name!r}, but objective_names() names "
                    f"{len(split[name])} ({', '.join(split[name])}).")
            errors.update({key: values[:, k] for k, key in enumerate(split[name])})
            values = values.sum(axis=1)
        errors[name] = values
    return errors


@attrs.define
class ErrorsWhereSimulated:
    """Turns a batch's traces and spikes into objective errors where it ran.

    A backend that simulates in other processes (dask) applies this to each
    chunk there, so that only ``n_samples`` errors per output travel back
    instead of ``n_samples × n_traces × n_steps`` values. Metrics score each
    parameter set on its own (the metric contract), so errors computed chunk
    by chunk equal those of the whole batch.
    """

    recordings: Recordings
    metrics: dict[str, Any]
    dt: Any
    split: dict[str, tuple] = attrs.field(factory=dict)
    """Outputs scored per objective (see :func:`recorded_errors`)."""

    def __call__(self, result: SimulationResult, n_samples: int) -> SimulationResult:
        errors = recorded_errors(self.recordings, self.recordings.output_names, result,
                                 self.metrics, self.dt, self.split)
        kept = {name: values for name, values in result.traces.items()
                if name not in self.recordings.output_names}
        return SimulationResult(traces=kept, final=result.final, errors=errors,
                                failed=result.diverged(n_samples))


@attrs.define
class Objective:
    """How a batch of a fit is scored. Make one with :meth:`build`."""

    metrics: dict[str, Any]
    """The metric of each output."""
    recordings: Recordings
    output_dims: dict[str, Any]
    dt: Any
    online: dict[str, ResidualForm] = attrs.field(factory=dict)
    """Trace outputs whose squared error is accumulated during the simulation."""
    penalty: str | None = None
    error_dim: Any = DIMENSIONLESS
    """Dimensions of the total error."""
    mode: str | None = None
    """``fit(objectives=...)``: None (one error), ``'separate'`` or ``'features'``."""
    objective_names: tuple[str, ...] = ()
    """With several objectives: their names, in the order told to the optimizer."""
    split: dict[str, tuple] = attrs.field(factory=dict)
    """Outputs whose metric's error is split into objectives (output -> their names)."""
    objective_dims: dict[str, Any] = attrs.field(factory=dict)
    """The dimensions of each objective."""

    @classmethod
    def build(cls, problem, metric, *, online: bool = False, penalty: str | None = None,
              owner: str = "TraceFitter", objectives: str | None = None,
              use_units: bool = True) -> "Objective":
        """Check ``metric`` (one, or ``{output: metric}``) against the recordings.

        Raises
        ------
        ConfigurationError
            A metric of the wrong kind for its output, data the metric rejects,
            or ``online`` with a metric that is no least-squares metric.
        UnitMismatchError
            Errors of several outputs that cannot be added (with ``objectives``, or
            ``use_units=False``, they need not: the total is then a dimensionless sum
            of SI values, as brian2modelfitting adds them).
        """
        recordings = problem.recordings
        metrics = metrics_per_output(metric, recordings.output_names)
        check_metric_kinds(metrics, owner)
        for name, m in metrics.items():
            check = getattr(m, "validate_data", None)
            if callable(check):
                check(recordings.spikes if name == SPIKES else recordings.traces[name].values,
                      problem.dt)
        forms = online_error.residual_forms(metrics, recordings, problem.dt) if online else {}
        output_dims = problem.output_dims
        dims = {name: normalized_dimensions(m, output_dims[name]) for name, m in metrics.items()}
        several = layout(objectives, metrics, recordings.output_names, output_dims, penalty)
        if len({str(d) for d in dims.values()}) > 1 and (several or not use_units):
            # with several objectives, or use_units=False as the manual says (errors are
            # plain numbers, normalizations too): the total is a sum of SI values
            dims = dict.fromkeys(dims, DIMENSIONLESS)
        if len({str(d) for d in dims.values()}) > 1:
            listing = ", ".join(f"{n}: {d if d is not DIMENSIONLESS else '1'}"
                                for n, d in dims.items())
            raise UnitMismatchError(
                f"The errors of the outputs have different units ({listing}) and cannot be "
                f"added. Give one metric per output with a normalization that makes them "
                f"compatible, e.g. metric={{'v': MSEMetric(normalization=10*mV), "
                f"'w': MSEMetric(normalization=0.1*nA)}}.")
        error_dim = next(iter(dims.values()))
        if penalty and not several:
            check_penalty_units(problem.model, penalty, error_dim)
        return cls(metrics=metrics, recordings=recordings, output_dims=output_dims,
                   dt=problem.dt, online=forms, penalty=penalty,
                   error_dim=error_dim, **several)

    # -- what the simulation must provide ------------------------------------------------
    @property
    def recorded_outputs(self) -> list[str]:
        """Outputs scored from recorded traces or spikes (not online)."""
        return [name for name in self.recordings.output_names if name not in self.online]

    @property
    def record(self) -> tuple[str, ...]:
        """State variables to record during a round."""
        return tuple(name for name in self.recordings.traces if name not in self.online)

    @property
    def record_spikes(self) -> bool:
        return SPIKES in self.recordings.output_names

    @property
    def record_final(self) -> tuple[str, ...]:
        """Variables whose final value is needed (the penalty)."""
        return (self.penalty,) if self.penalty else ()

    @property
    def online_spec(self) -> dict[str, float]:
        """``{output: t_start in seconds}`` for :attr:`SimulationSpec.online_error`."""
        return {name: form.start_step * float(self.dt) for name, form in self.online.items()}

    def where_simulated(self) -> ErrorsWhereSimulated | None:
        """What scores the recorded outputs where a batch is simulated (None if none are)."""
        recorded = self.recorded_outputs
        if not recorded:
            return None
        # only what scoring needs: the inputs are in the simulation's specification
        subset = attrs.evolve(self.recordings, output_names=recorded, inputs={},
                              traces={n: self.recordings.traces[n] for n in recorded
                                      if n != SPIKES})
        return ErrorsWhereSimulated(subset, {n: self.metrics[n] for n in recorded}, self.dt,
                                    {n: v for n, v in self.split.items() if n in recorded})

    # -- scoring ---------------------------------------------------------------------------
    def score(self, result: SimulationResult, n_samples: int) -> Scores:
        """Errors of a batch; NaN/inf anywhere makes a parameter set diverged (error inf)."""
        found = recorded_errors(self.recordings, self.recorded_outputs, result,
                                self.metrics, self.dt, self.split)
        found.update(online_error.errors(result, self.online, n_samples,
                                         self.recordings.n_traces))
        per_output = {name: found[name] for name in self.recordings.output_names}
        total = np.zeros(n_samples)
        for values in per_output.values():
            total = total + np.asarray(values, dtype=float)
        if self.penalty:
            # a constant subexpression comes back as one value for the whole group
            penalty = np.broadcast_to(np.asarray(result.final[self.penalty], dtype=float),
                                      (n_samples * self.recordings.n_traces,)).reshape(
                n_samples, self.recordings.n_traces).mean(axis=1)
            total = total + penalty
            found[self.penalty] = penalty
        diverged = result.diverged(n_samples) | ~np.isfinite(total)
        return Scores(total=np.where(diverged, np.inf, total), diverged=diverged,
                      per_output=per_output,
                      objectives={n: np.asarray(found[n], dtype=float)
                                  for n in self.objective_names})

    # -- errors with units ---------------------------------------------------------------
    def output_errors(self, history: History) -> dict[str, OutputErrors]:
        """With several outputs, each one's errors over the whole history (for
        ``results()``); nothing for a single output, as brian2modelfitting."""
        names = self.recordings.output_names
        if len(names) < 2:
            return {}
        out = {}
        for name in names:
            metric, dim = self.metrics[name], self.output_dims[name]
            normalized = history.objective_errors(name)
            raw = np.asarray(metric.revert_normalization(normalized), dtype=float) \
                if isinstance(metric, MetricWithUnits) else normalized
            out[name] = OutputErrors(normalized=normalized,
                                     normalized_dim=normalized_dimensions(metric, dim),
                                     raw=raw, raw_dim=raw_dimensions(metric, dim))
        return out

    def normalized_errors(self, values: Mapping[str, float], use_units: bool) -> dict[str, Any]:
        """Per-output errors as scored (normalized), with units if asked."""
        return {name: error_quantity(value, normalized_dimensions(
            self.metrics[name], self.output_dims[name])) if use_units else value
            for name, value in values.items()}

    def raw_errors(self, values: Mapping[str, float], use_units: bool) -> dict[str, Any]:
        """Per-output errors before normalization, with units if asked."""
        out = {}
        for name, value in values.items():
            metric = self.metrics[name]
            raw = float(metric.revert_normalization(value)) \
                if isinstance(metric, MetricWithUnits) else float(value)
            out[name] = error_quantity(raw, raw_dimensions(metric, self.output_dims[name])) \
                if use_units else raw
        return out
