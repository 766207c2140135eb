"""The contract check for authors of benchmark problems (``modelfit.problems`` plugins).

::

    from modelfit_core.testing import check_problem

    def test_my_problem_keeps_the_contract():
        check_problem(MyProblem)                  # simulates two small rounds
        check_problem(MyProblem, simulate=False)  # the description only, in milliseconds
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from brian2 import Equations, Quantity, get_dimensions

from modelfit_core.contracts.benchmark_problem import BenchmarkProblem
from modelfit_core.contracts.errors import PluginContractError
from modelfit_core.registry.parts import Parts
from modelfit_core.registry.plugin_registry import Registry, shared_registry
from modelfit_core.tools.benchmarking.problems import checked_definition, ready_problem


def _si(value: Any) -> float:
    return float(np.asarray(value, dtype=float))


def _check_description(problem: BenchmarkProblem, parts: Parts, where: str) -> None:
    equations = Equations(problem.model)
    parameters = set(equations.parameter_names)
    unknown = sorted(set(problem.bounds) - parameters)
    assert not unknown, (f"{where}: bounds name {unknown}, which are not parameters of the "
                         f"model (its parameters: {sorted(parameters)})")
    for name, (lower, upper) in problem.bounds.items():
        dim = equations[name].dim
        for value in (lower, upper):
            assert get_dimensions(value) is dim or get_dimensions(value) == dim, (
                f"{where}: the bound {value!r} of {name} does not have the parameter's "
                f"unit ({dim})")
        assert _si(lower) < _si(upper), f"{where}: bounds of {name} are not lower < upper"
        if problem.ground_truth is not None:
            true = _si(problem.ground_truth[name])
            assert _si(lower) <= true <= _si(upper), (
                f"{where}: the ground truth of {name} ({problem.ground_truth[name]!r}) is "
                f"outside its bounds")
    for name, values in problem.inputs.items():
        assert np.ndim(np.asarray(values)) == 2, (
            f"{where}: input {name!r} must be (n_traces, n_steps)")
        assert isinstance(values, Quantity) or get_dimensions(values) is not None
    parts.make("metrics", problem.metric, dict(problem.metric_options))


def check_problem(factory: Callable[[], Any], *, simulate: bool = True, n_rounds: int = 2,
                  n_samples: int = 2, registry: Registry | None = None) -> None:
    """Check a benchmark problem plugin the way ``modelfit benchmark`` uses it.

    ``factory()`` (usually the class) must make an object whose ``define()`` returns a
    consistent :class:`~modelfit_core.contracts.benchmark_problem.BenchmarkProblem`:
    fitted parameters of the model with bounds in their units, the ground truth inside
    them, inputs of shape (n_traces, n_steps), a metric plugin that accepts the options.
    With ``simulate`` its recordings are made (generated from the ground truth if
    needed), the error floor must be positive and finite, and a fit of ``n_rounds``
    rounds of ``n_samples`` parameter sets (the default optimizer) must run and score finite errors.

    Raises
    ------
    AssertionError
        What is wrong, naming the problem.
    """
    registry = registry if registry is not None else shared_registry()
    where = f"problem {getattr(factory, '__qualname__', factory)!r}"
    try:
        problem = checked_definition(factory, where)
    except PluginContractError as exc:
        raise AssertionError(str(exc)) from exc
    parts = Parts(registry=registry, seed=1)
    _check_description(problem, parts, where)
    if not simulate:
        return
    ready = ready_problem("checked", problem, parts)
    assert math.isfinite(ready.error_floor) and ready.error_floor > 0, (
        f"{where}: the error floor is {ready.error_floor!r}")
    fitter = ready.fitter(n_samples, parts=parts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.fit(metric=ready.make_metric(parts), n_rounds=n_rounds,
                   callback=None, **ready.bounds())
    history = fitter.history
    assert history is not None and len(history.rounds) == n_rounds
    errors = np.concatenate([np.asarray(r.errors, dtype=float) for r in history.rounds])
    assert np.isfinite(errors).any(), (
        f"{where}: every simulation of {n_rounds} rounds diverged "
        f"or scored a non-finite error")
