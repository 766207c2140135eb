"""A problem plugin made ready to benchmark: its recordings, error floor, targets and the
fitter of each run.

Generated recordings are simulated once per process (with the problem's
``data_seed`` for the noise), so every run, and a resumed run, fits the same
data. The error floor of a problem with a ground truth is the error a fit
computes for the ground truth itself: one round of one simulation, scored by
the fitter exactly as the runs are.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from brian2 import Equations, Quantity, get_dimensions, second

from modelfit_core.contracts.benchmark_problem import SPIKE_FITTER, BenchmarkProblem
from modelfit_core.contracts.errors import ConfigurationError, PluginContractError
from modelfit_core.fitting.fitter import Fitter
from modelfit_core.fitting.spike_fitter import SpikeFitter
from modelfit_core.fitting.trace_fitter import TraceFitter
from modelfit_core.registry.parts import Parts
from modelfit_core.registry.plugin_registry import Registry

SPIKES = "spikes"


def checked_definition(factory: Callable[[], Any], where: str) -> BenchmarkProblem:
    """``factory().define()``, checked to be a consistent :class:`BenchmarkProblem`.

    Raises
    ------
    PluginContractError
        ``define()`` fails, returns something else, or an inconsistent problem
        (each inconsistency named); ``where`` names the plugin in the message.
    """
    try:
        problem = factory().define()
    except Exception as exc:
        raise PluginContractError(f"The {where} failed in define(): "
                                  f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(problem, BenchmarkProblem):
        raise PluginContractError(
            f"The {where}: define() must return a modelfit_core.contracts."
            f"benchmark_problem.BenchmarkProblem, got {type(problem).__name__}.")
    found = problem.problems()
    if found:
        raise PluginContractError(f"The {where} breaks the BenchmarkProblem contract: "
                                  + "; ".join(found) + ".")
    return problem


def defined_problem(registry: Registry, name: str) -> BenchmarkProblem:
    """The :class:`BenchmarkProblem` of the problem plugin ``name``, checked.

    Raises
    ------
    UnknownPluginError
        No such problem (the closest installed names are suggested).
    PluginContractError
        The plugin's ``define()`` fails or returns an inconsistent problem.
    """
    cls = registry.lookup("problems", name)
    where = (f"problem plugin {name!r} ({getattr(cls, '__module__', '?')}."
             f"{getattr(cls, '__qualname__', cls)!s})")
    return checked_definition(cls, where)


class FixedPoints:
    """An optimizer that asks given parameter vectors (SI, in the fit's parameter order)
    and nothing else: how the ground truth is scored as the runs are."""

    def __init__(self, points: Sequence[Mapping[str, float]]):
        self.points = [dict(point) for point in points]
        self._names: list[str] = []

    def initialize(self, parameter_names, popsize, rounds, **bounds) -> int:
        self._names = list(parameter_names)
        return len(self.points)

    def ask(self, n_samples: int) -> list[np.ndarray]:
        return [np.array([p[name] for name in self._names], dtype=float)
                for p in self.points[:n_samples]]

    def tell(self, parameters, errors) -> None:
        """Nothing to learn."""

    def recommend(self) -> np.ndarray:
        return np.array([self.points[0][name] for name in self._names], dtype=float)


@attrs.define
class ReadyProblem:
    """A problem with its recordings: what each run of it fits."""

    name: str
    problem: BenchmarkProblem
    outputs: dict[str, Any]
    """Output name -> recordings, with units (spike times: arrays in seconds)."""
    error_floor: float = math.nan
    parameter_names: tuple[str, ...] = ()

    @property
    def targets(self) -> list[float]:
        """Error targets, easiest (largest) first."""
        return sorted((self.error_floor * f for f in self.problem.target_factors),
                      reverse=True)

    @property
    def truth_si(self) -> dict[str, float] | None:
        """The ground truth as SI floats, or None."""
        truth = self.problem.ground_truth
        return None if truth is None else {name: float(np.asarray(truth[name]))
                                           for name in self.parameter_names}

    def bounds(self) -> dict[str, Any]:
        """Bounds as fit() takes them: name -> [lower, upper] with units."""
        return {name: list(pair) for name, pair in self.problem.bounds.items()}

    def fitter(self, n_samples: int, *, parts: Parts | None = None, storage: str | None = None,
               study: str | None = None, backend: str | None = None) -> Fitter:
        """A new fitter of this problem (stored in ``storage`` as ``study`` if given)."""
        problem = self.problem
        cls = SpikeFitter if problem.fitter == SPIKE_FITTER else TraceFitter
        options = dict(problem.fitter_options)
        return cls(model=problem.model, input=dict(problem.inputs), output=dict(self.outputs),
                   dt=problem.dt, n_samples=n_samples, pipeline=parts, storage=storage,
                   study=study, backend=backend, **options)

    def make_metric(self, parts: Parts):
        """A new metric object of the problem's metric plugin."""
        return parts.make("metrics", self.problem.metric, dict(self.problem.metric_options))


def _placeholder_output(problem: BenchmarkProblem) -> tuple[str, Any]:
    """A recorded variable and zero traces of its unit: what a generating fitter is made
    with (the values are never compared)."""
    equations = Equations(problem.model)
    if problem.output_var != SPIKES:
        name = problem.output_var
    else:  # spikes are recorded besides a traced variable: any of the model's will do
        name = min(equations.diff_eq_names, default="")
    if not name or name not in equations:
        raise PluginContractError(f"output_var {problem.output_var!r} is not a variable of "
                                  f"the model (variables: {', '.join(sorted(equations))}).")
    shape = np.shape(np.asarray(next(iter(problem.inputs.values()))))
    return name, Quantity(np.zeros(shape), dim=equations[name].dim)


def generate_outputs(problem: BenchmarkProblem, backend: str | None = None) -> dict[str, Any]:
    """The recordings of a problem without any: its ground truth simulated, then its noise
    (seeded with ``data_seed``) added."""
    assert problem.ground_truth is not None
    name, zeros = _placeholder_output(problem)
    options = {k: v for k, v in problem.fitter_options.items()}
    generator = TraceFitter(model=problem.model, input=dict(problem.inputs),
                            output={name: zeros}, dt=problem.dt, n_samples=1, backend=backend,
                            **options)
    clean = generator.generate(output_var=problem.output_var,
                               params=dict(problem.ground_truth))
    rng = np.random.default_rng(problem.data_seed)
    if problem.output_var == SPIKES:
        trains = [np.asarray(train, dtype=float) for train in clean]
        noisy = problem.noise(trains, rng) if problem.noise is not None else trains
        return {SPIKES: [np.asarray(train, dtype=float) * second for train in noisy]}
    values = np.asarray(clean)
    noisy = problem.noise(values, rng) if problem.noise is not None else values
    return {problem.output_var: Quantity(np.asarray(noisy, dtype=float),
                                         dim=get_dimensions(clean))}


def truth_error(ready: ReadyProblem, parts: Parts, backend: str | None = None) -> float:
    """The error of the ground truth on the recordings, as a run's fit computes it."""
    truth = ready.truth_si
    assert truth is not None
    fitter = ready.fitter(1, parts=parts, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, error = fitter.fit(optimizer=FixedPoints([truth]), metric=ready.make_metric(parts),
                              n_rounds=1, callback=None, **ready.bounds())
    return float(np.asarray(error))


def ready_problem(name: str, problem: BenchmarkProblem, parts: Parts,
                  backend: str | None = None) -> ReadyProblem:
    """Recordings (generated if needed), error floor and parameter order of a problem."""
    outputs = dict(problem.outputs) if problem.outputs is not None else \
        generate_outputs(problem, backend)
    ready = ReadyProblem(name, problem, outputs, parameter_names=tuple(problem.bounds))
    if problem.error_floor is not None:
        ready.error_floor = float(problem.error_floor)
    else:
        floor = truth_error(ready, parts, backend)
        if not (math.isfinite(floor) and floor > 0):
            raise ConfigurationError(
                f"Problem {name!r}: the ground truth's error on its recordings is {floor!r}, "
                f"so targets cannot be multiples of it; add noise, or set error_floor.")
        ready.error_floor = floor
    return ready


def _feed(digest: Any, value: Any) -> None:
    """Hash a problem's description: arrays by their bytes, the rest by repr (sorted)."""
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)) and value and not isinstance(value[0], (int, float)):
        for item in value:
            _feed(digest, item)
    elif isinstance(value, (np.ndarray, Quantity)):
        array = np.ascontiguousarray(np.asarray(value, dtype=float))
        digest.update(repr(array.shape).encode() + array.tobytes())
    else:
        digest.update(repr(value).encode())


def fingerprint(ready: ReadyProblem) -> str:
    """A digest of what a run of this problem fits (model, recordings, bounds, metric,
    options): stored runs of a different version of the problem must not be read back."""
    problem = ready.problem
    digest = hashlib.blake2b(digest_size=12)
    for value in (problem.model, problem.fitter, problem.output_var, problem.dt,
                  dict(problem.inputs), ready.outputs, dict(problem.bounds),
                  problem.metric, dict(problem.metric_options), dict(problem.fitter_options),
                  problem.n_samples):
        _feed(digest, value)
    return digest.hexdigest()
