"""Likely unit slips: values a thousand times off a neuron model's physiological range.

A recording in mV given as volt (``v * volt`` with v = -70) or a current in nA
given as amp, a time step in seconds where ms was meant: Brian's unit check
accepts them (the dimensions are right), and the fit then searches in vain.
:func:`warn_unit_slips` warns before the fit; it never refuses, since a user
may mean it (a model of something else than a neuron, say).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from brian2 import amp, farad, get_dimensions, siemens, volt

from modelfit_core.model.namespace import user_stacklevel

PLAUSIBLE_MAXIMUM = {
    get_dimensions(volt): (1.0, "1 V", "membrane potentials are tens of mV: mV numbers given as volt?"),
    get_dimensions(amp): (1e-6, "1 uA", "currents into one neuron are pA to nA: nA numbers given as "
                            "amp?"),
    get_dimensions(siemens): (1e-3, "1 mS", "conductances of one neuron are nS to uS: given in the "
                                "wrong unit?"),
    get_dimensions(farad): (1e-6, "1 uF", "capacitances of one neuron are pF to nF: given in the "
                              "wrong unit?"),
}
"""Largest magnitude that is plausible for one neuron, per dimension: beyond it (three
orders of magnitude above typical values) a warning names the likely slip."""
DT_RANGE = (1e-7, 1e-2)
"""Time steps (s) outside this range are likely slips (0.1 s where 0.1 ms was meant)."""


class UnitSlipWarning(UserWarning):
    """A value is about a thousand times off what a neuron model uses."""


def slip_of(label: str, values: Any, dim) -> str | None:
    """The warning text if ``values`` (SI, of dimension ``dim``) look like a unit slip."""
    limit = PLAUSIBLE_MAXIMUM.get(dim)
    if limit is None:
        return None
    try:
        array = np.abs(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        return None
    finite = array[np.isfinite(array)]
    if not finite.size:
        return None
    largest = float(finite.max())
    if largest <= limit[0]:
        return None
    return (f"{label} reaches {largest:.3g} (SI), above the {limit[1]} plausible for one "
            f"neuron; {limit[2]} Check its units (e.g. values*mV rather than values*volt).")


def dt_slip(dt_s: float) -> str | None:
    """The warning text if a time step of ``dt_s`` seconds looks like a unit slip."""
    low, high = DT_RANGE
    if low <= dt_s <= high:
        return None
    return (f"dt = {dt_s:.3g} s is outside the {low:g} s to {high:g} s of neuron "
            f"simulations; given in seconds where ms was meant (dt=0.1*ms)? Brian will "
            f"integrate with it as given.")


def warn_unit_slips(messages) -> None:
    """Warn once per likely slip (``messages``: texts, Nones skipped)."""
    for message in messages:
        if message is not None:
            warnings.warn(message, UnitSlipWarning, stacklevel=user_stacklevel())


def recording_slips(recordings, dt_s: float, param_init, describe) -> list[str | None]:
    """The slips among a fit's recordings, time step and numeric initial values
    (``describe(name)`` gives a model variable's dimension)."""
    found = [dt_slip(dt_s)]
    for name, signal in recordings.inputs.items():
        found.append(slip_of(f"The input {name!r}", signal.values, signal.dim))
    for name, signal in recordings.traces.items():
        found.append(slip_of(f"The recorded output {name!r}", signal.values, signal.dim))
    for name, value in (param_init or {}).items():
        if not isinstance(value, str):
            found.append(slip_of(f"param_init[{name!r}]", value, describe(name)))
    return found


def bound_slips(space) -> list[str | None]:
    """The slips among a parameter space's bounds."""
    return [slip_of(f"The bounds of {name!r}", [lower, upper], dim)
            for name, dim, lower, upper in zip(space.names, space.dims, space.lower,
                                               space.upper)]


