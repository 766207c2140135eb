"""Checking and normalising the recorded data given to a fitter.

Inputs and trace outputs become (n_traces, n_steps) float arrays in SI
units plus a Brian dimension; spike outputs a list of spike-time arrays in
seconds. Every problem is reported before any simulation starts.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from brian2 import Quantity, get_dimensions, second
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import DataError, UnitMismatchError
from modelfit_core.contracts.simulation import InputSignal
from modelfit_core.contracts.units import unit_name


def as_named(data: Any, var: Any, role: str) -> dict[str, Any]:
    """Accept ``{'I': traces}`` or the deprecated ``(traces, input_var='I')`` form."""
    if isinstance(data, Mapping):
        if var is not None:
            raise DataError(f"Give the {role} either as a dict {{name: values}} or with "
                            f"{role}_var, not both.")
        if not data:
            raise DataError(f"The {role} dictionary is empty.")
        return dict(data)
    if var is None:
        raise DataError(
            f"Name the {role} variable: pass {role}={{'NAME': values}} with NAME the "
            f"model variable (e.g. {role}={{'{'I' if role == 'input' else 'v'}': values}}).")
    if isinstance(var, (list, tuple)):
        if not isinstance(data, (list, tuple)) or len(data) != len(var):
            raise DataError(f"{role}_var lists {len(var)} names; give as many {role} arrays.")
        return dict(zip(var, data))
    return {var: data}


def trace_array(values: Any, name: str, role: str, expected_dim=None) -> InputSignal:
    """Validate a 2-D trace array (n_traces, n_steps); returns SI values and dimension."""
    dim = get_dimensions(values)
    if expected_dim is not None and dim is not expected_dim:
        raise UnitMismatchError(
            f"The {role} {name!r} has units of {unit_name(dim)}, but the model declares "
            f"{name!r} with units of {unit_name(expected_dim)}. Multiply the array by the "
            f"right unit, e.g. traces*{unit_name(expected_dim)}.")
    array = np.asarray(values.view(np.ndarray) if isinstance(values, Quantity) else values,
                       dtype=float)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise DataError(f"The {role} {name!r} must be a 2-D array (n_traces, n_steps); "
                        f"got shape {array.shape}.")
    if array.shape[1] < 1 or array.shape[0] < 1:
        raise DataError(f"The {role} {name!r} is empty (shape {array.shape}).")
    bad = ~np.isfinite(array)
    if bad.any():
        trace, step = np.argwhere(bad)[0]
        raise DataError(f"The {role} {name!r} contains {int(bad.sum())} NaN/inf value(s), "
                        f"the first in trace {trace} at step {step}. Remove or interpolate "
                        f"them before fitting.")
    return InputSignal(values=np.ascontiguousarray(array), dim=dim)


def check_same_shape(inputs: Mapping[str, InputSignal],
                     outputs: Mapping[str, InputSignal]) -> tuple[int, int]:
    """All inputs and trace outputs must have one (n_traces, n_steps) shape; return it."""
    shapes = {f"input {n!r}": s.values.shape for n, s in inputs.items()}
    shapes.update({f"output {n!r}": s.values.shape for n, s in outputs.items()})
    distinct = set(shapes.values())
    if len(distinct) > 1:
        listing = ", ".join(f"{k} has {v[0]} traces x {v[1]} steps" for k, v in shapes.items())
        raise DataError(f"Inputs and outputs must have the same number of traces and time "
                        f"steps: {listing}.")
    return next(iter(distinct))


def spike_trains(values: Any, name: str = "spikes") -> list[np.ndarray]:
    """Validate target spike trains: a list (one per trace) of spike times."""
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype != object:
        values = [values]
    trains = []
    for k, train in enumerate(values):
        dim = get_dimensions(train)
        if dim is not DIMENSIONLESS and dim is not get_dimensions(second):
            raise UnitMismatchError(f"Spike train {k} of {name!r} has units of "
                                    f"{unit_name(dim)}; spike times must be in seconds.")
        array = np.sort(np.asarray(train, dtype=float).ravel())
        if not np.isfinite(array).all():
            raise DataError(f"Spike train {k} of {name!r} contains NaN/inf.")
        trains.append(array)
    return trains


def get_spikes(monitor, n_samples: int, n_traces: int) -> list[list[np.ndarray]]:
    """Spike times of a SpikeMonitor over ``n_samples * n_traces`` neurons.

    Neuron ``sample * n_traces + trace`` holds parameter set ``sample`` on
    input trace ``trace`` (the layout every fitter uses).

    Returns
    -------
    list of list of ndarray
        ``spikes[sample][trace]``: spike times in seconds, without units.
    """
    indices = np.asarray(monitor.variables["i"].get_value())
    times = np.asarray(monitor.variables["t"].get_value())
    order = np.argsort(indices, kind="stable")
    boundaries = np.searchsorted(indices[order], np.arange(n_samples * n_traces + 1))
    per_neuron = [times[order[boundaries[k]:boundaries[k + 1]]]
                  for k in range(n_samples * n_traces)]
    return [per_neuron[s * n_traces:(s + 1) * n_traces] for s in range(n_samples)]
