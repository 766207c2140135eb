"""Simulating a fitter's inputs once, with the best or given parameters.

``Fitter.generate`` (and ``generate_traces``/``generate_spikes``) run here:
always in this process, on the runtime backend, each combination of recorded
variables and initial values prepared once and kept on the fitter.
"""

from __future__ import annotations

import numpy as np
from brian2 import Quantity, second
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.fitting.fitter import _user_frame_namespace
from modelfit_core.model.equations import initial_values
from modelfit_core.model.parameters import ParameterSpace


def generate_outputs(fitter, output_var, params, param_init, iteration: float, level: int):
    """What :meth:`modelfit_core.fitting.fitter.Fitter.generate` returns (see there)."""
    if output_var is None:
        output_var = fitter.output_names if len(fitter.output_names) > 1 else \
            fitter.output_names[0]
    names = [output_var] if isinstance(output_var, str) else list(output_var)
    for name in names:
        if name != "spikes" and name not in fitter.model.equations.names:
            raise ConfigurationError(
                f"Cannot record {name!r}: not a variable of the model (variables: "
                f"{', '.join(sorted(fitter.model.equations.names))}).")
    if "spikes" in names and fitter.threshold is None:
        raise ConfigurationError("Recording 'spikes' needs a threshold; pass threshold= "
                                 "to the fitter.")
    if params is None:
        fitter._require_fit()
        vector, space = fitter.history.best_vector, fitter.space
    else:
        space = fitter.space
        if space is None:  # before any fit: every parameter not fixed in param_init
            free = [n for n in fitter.model.parameters if n not in fitter.param_init]
            space = ParameterSpace(names=tuple(free),
                                   dims=tuple(fitter.model.parameters[n] for n in free),
                                   lower=np.zeros(len(free)), upper=np.zeros(len(free)))
        merged = dict(fitter.best_params or {}) if fitter.space is not None else {}
        merged.update(params)
        vector = space.vector_from(merged)
    init = dict(fitter.param_init)
    init.update(param_init or {})
    initial, constants = initial_values(init, fitter.model, set(space.names))
    record = tuple(n for n in names if n != "spikes")
    key = (record, "spikes" in names, space.names, repr(sorted(init.items(), key=str)))
    prepared = fitter._generators.get(key)
    if prepared is None:
        spec = fitter._spec(1, record, "spikes" in names, space.names, constants, initial,
                          fitter._namespace(_user_frame_namespace(level)),
                          name="modelfit_generate")
        prepared = fitter._generation_backend().prepare(spec)
        fitter._generators[key] = prepared
    result = prepared.run({n: np.array([v]) for n, v in zip(space.names, vector)},
                          iteration=iteration)
    out = {}
    for name in names:
        if name == "spikes":
            out[name] = [np.asarray(s) * (second if fitter.use_units else 1)
                         for s in result.spikes[0]]
        else:
            values = result.traces[name][0]
            dim = fitter.model.dimension_of(name)
            out[name] = Quantity(values, dim=dim) if fitter.use_units and \
                dim is not DIMENSIONLESS else values
    return out[names[0]] if isinstance(output_var, str) else out
