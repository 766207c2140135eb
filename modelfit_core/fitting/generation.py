"""Simulating a problem's inputs once, with the best or given parameters.

``Fitter.generate`` (and ``generate_traces``/``generate_spikes``) and the
inference plugins run here: on the problem's single-run backend, each
combination of recorded variables and initial values prepared once and kept
on the problem.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from brian2 import Quantity
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_core.contracts.metric_bases import SPIKES
from modelfit_core.fitting.problem import FittingProblem
from modelfit_core.model.parameters import ParameterSpace


def parameter_point(problem: FittingProblem, space: ParameterSpace | None,
                    best_vector: np.ndarray | None,
                    params: Mapping[str, Any] | None) -> tuple[ParameterSpace, np.ndarray]:
    """The parameters of a single run (SI vector): the best ones, or ``params`` (with
    units) completed by the best ones.

    Before any fit (``space`` None) every parameter not fixed in ``param_init``
    must be given.
    """
    if params is None:
        if space is None or best_vector is None:
            raise FitStateError("There are no best parameters to simulate yet: call fit() "
                                "first, or pass params={...}.")
        return space, best_vector
    if space is None:
        space = problem.free_parameters()
    merged = space.to_dict(best_vector, use_units=True) if best_vector is not None else {}
    merged.update(params)
    return space, space.vector_from(merged)


def recorded_names(problem: FittingProblem, output_var) -> list[str]:
    """The variables to record (``'spikes'`` included), checked against the model."""
    names = [output_var] if isinstance(output_var, str) else list(output_var)
    for name in names:
        if name != SPIKES and name not in problem.model.equations.names:
            raise ConfigurationError(
                f"Cannot record {name!r}: not a variable of the model (variables: "
                f"{', '.join(sorted(problem.model.equations.names))}).")
    if SPIKES in names and problem.threshold is None:
        raise ConfigurationError("Recording 'spikes' needs a threshold; pass threshold= "
                                 "to the fitter.")
    return names


def generate_outputs(problem: FittingProblem, space: ParameterSpace, vector: np.ndarray, *,
                     output_var=None, param_init: Mapping[str, Any] | None = None,
                     iteration: float, level: int = 0, use_units: bool = True):
    """What ``Fitter.generate`` returns (see there) for the SI parameter ``vector``:
    traces as Quantities (plain arrays with ``use_units=False``), spike times as
    plain arrays in seconds (as brian2modelfitting returns them)."""
    if output_var is None:
        output_var = problem.output_names if len(problem.output_names) > 1 else \
            problem.output_names[0]
    names = recorded_names(problem, output_var)
    init = dict(problem.param_init)
    init.update(param_init or {})
    record = tuple(n for n in names if n != SPIKES)
    batch = problem.batch_recording(record, SPIKES in names, space.names, init)
    if batch is not None:  # the fit's compiled simulation, the point in every slot
        simulation, n_samples = batch
    else:
        n_samples = 1
        key = ("generate", record, SPIKES in names, space.names,
               repr(sorted(init.items(), key=str)))
        simulation = problem.prepared(key, lambda: problem.simulation_spec(
            1, space.names, problem.resolve_namespace(level), name="modelfit_generate",
            record=record, record_spikes=SPIKES in names, param_init=init),
            backend=problem.single_run_backend)
    result = simulation.run({n: np.full(n_samples, v) for n, v in zip(space.names, vector)},
                            iteration=iteration)
    out = {}
    for name in names:
        if name == SPIKES:  # plain arrays of seconds, as brian2modelfitting returns them
            out[name] = [np.asarray(s, dtype=float) for s in result.spikes[0]]
        else:
            values = result.traces[name][0]
            dim = problem.model.dimension_of(name)
            out[name] = Quantity(values, dim=dim) if use_units and \
                dim is not DIMENSIONLESS else values
    return out[names[0]] if isinstance(output_var, str) else out
