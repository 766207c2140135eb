"""Checking and normalising the recorded data given to a fitter.

Inputs and trace outputs become (n_traces, n_steps) float arrays in SI
units plus a Brian dimension; spike outputs a list of spike-time arrays in
seconds. Every problem is reported before any simulation starts.
"""

from __future__ import annotations

from typing import Any, Mapping, NoReturn

import numpy as np
from brian2 import Quantity, get_dimensions, second
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import DataError
from modelfit_core.contracts.units import UnitMismatchError
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


def raise_unless_numbers(values: Any, name: str, role: str, exc: Exception) -> NoReturn:
    """Raise a DataError naming ``name`` when ``values`` is no rectangular array of numbers."""
    raise DataError(f"The {role} {name!r} is not a rectangular array of numbers "
                    f"(n_traces, n_steps): {exc}. Give every trace the same number of "
                    f"steps, as numbers (with units).") from exc


def trace_array(values: Any, name: str, role: str, expected_dim=None) -> InputSignal:
    """Validate a 2-D trace array (n_traces, n_steps); returns SI values and dimension.

    Raises
    ------
    DataError
        Ragged, non-numeric or complex data, NaN/inf, or not 1-D/2-D.
    UnitMismatchError
        Units other than ``expected_dim`` (when given).
    """
    try:
        dim = get_dimensions(values)
    except (TypeError, ValueError) as exc:  # lists of lists: plain numbers, or ragged
        raise_unless_numbers(values, name, role, exc)
        dim = DIMENSIONLESS
    if expected_dim is not None and dim is not expected_dim:
        raise UnitMismatchError(
            f"The {role} {name!r} has units of {unit_name(dim)}, but the model declares "
            f"{name!r} with units of {unit_name(expected_dim)}. Multiply the array by the "
            f"right unit, e.g. traces*{unit_name(expected_dim)}.")
    raw = values.view(np.ndarray) if isinstance(values, Quantity) else values
    try:
        array = np.asarray(raw)
    except (TypeError, ValueError) as exc:
        raise_unless_numbers(raw, name, role, exc)
    if np.iscomplexobj(array):
        raise DataError(f"The {role} {name!r} holds complex numbers; give real values.")
    try:
        array = array.astype(float)
    except (TypeError, ValueError) as exc:
        raise_unless_numbers(raw, name, role, exc)
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


def _times(train: Any, k: int, name: str) -> np.ndarray:
    """One spike train as seconds: a Quantity of time, or unitless numbers (seconds, as
    Brian's ``spike_monitor.t_`` gives them)."""
    try:
        dim = get_dimensions(train)
    except (TypeError, ValueError):  # e.g. a list of objects: judged by its values below
        dim = None
    # Brian's unitless views (VariableView of ``t_``) have no dimensions at all
    if dim is not None and dim is not DIMENSIONLESS and dim is not get_dimensions(second):
        raise UnitMismatchError(f"Spike train {k} of {name!r} has units of "
                                f"{unit_name(dim)}; spike times must be in seconds.")
    try:
        values = np.asarray(train)
    except (TypeError, ValueError) as exc:
        raise DataError(f"Spike train {k} of {name!r} is not an array of numbers: "
                        f"{exc}.") from exc
    if np.iscomplexobj(values) or not (np.issubdtype(values.dtype, np.number)
                                       or values.dtype == bool or values.size == 0):
        raise DataError(f"Spike train {k} of {name!r} holds {values.dtype} values; give "
                        f"spike times as real numbers (seconds) or a Quantity of time.")
    return np.sort(values.astype(float).ravel())


def spike_trains(values: Any, name: str = "spikes",
                 duration: float | None = None) -> list[np.ndarray]:
    """Validate target spike trains: one array of spike times per trace.

    Each train is a Quantity of time, or unitless numbers taken as seconds
    (e.g. ``spike_monitor.t_``); a single array is one train. With the
    ``duration`` of the recordings (seconds), times must lie within it, and
    times that look like milliseconds passed as seconds get a warning.

    Raises
    ------
    UnitMismatchError
        A train with units other than time.
    DataError
        NaN/inf, complex or non-numeric values, negative times, or times after
        the end of the recordings.
    """
    if getattr(values, "ndim", None) == 1 and getattr(values, "dtype", None) != object:
        values = [values]  # one train (an array, a Quantity or a Brian view)
    trains = []
    for k, train in enumerate(values):
        array = _times(train, k, name)
        if not np.isfinite(array).all():
            raise DataError(f"Spike train {k} of {name!r} contains NaN/inf.")
        if array.size and array[0] < 0:
            raise DataError(f"Spike train {k} of {name!r} has a negative spike time "
                            f"({array[0]} s); spike times count from the start of the "
                            f"recording.")
        if duration is not None and array.size and array[-1] > duration:
            hint = (" They look like milliseconds given as seconds: multiply by ms "
                    "(e.g. times*ms) instead." if array[-1] <= 1000 * duration else "")
            raise DataError(f"Spike train {k} of {name!r} has a spike at {array[-1]} s, "
                            f"after the end of the recordings ({duration} s).{hint}")
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
