"""``calc_eFEL``: brian2modelfitting's helper that runs eFEL on voltage traces.

Offered by ``from modelfit_core import *`` and ``modelfit_core.compat.metric``
(a ``modelfit.exports`` entry point); eFEL is imported when it is called.
"""

from __future__ import annotations

import numpy as np
from brian2 import Quantity, get_dimensions, mV, ms, second

from modelfit_core.contracts.errors import DataError, PluginLoadError
from modelfit_core.contracts.units import UnitMismatchError
from modelfit_core.plugin_api import DISTRIBUTION, install_hint

from .efel_extraction import efel_traces


def _in_unit(values, unit, what: str) -> np.ndarray:
    """Brian quantities converted to ``unit``; plain numbers are taken as given in it."""
    if isinstance(values, Quantity):
        if get_dimensions(values) is not get_dimensions(unit):
            raise UnitMismatchError(f"{what} must be in units of {unit!r}; got {values!r}.")
        return np.asarray(values / unit, dtype=float)
    return np.asarray(values, dtype=float)


def calc_eFEL(traces, inp_times, feat_list, dt) -> list[dict]:
    """eFEL features of each voltage trace.

    Parameters
    ----------
    traces : 2-D array or Quantity
        Voltage traces, one per row (a 1-D array is one trace); in volts as a
        Brian quantity, or plain numbers in mV (what eFEL takes).
    inp_times : list of (start, end)
        The stimulus of each trace (or one for all); Brian times, or plain
        numbers in ms.
    feat_list : list of str
        eFEL feature names (``efel.get_feature_names()``).
    dt : Quantity or float
        The time step (a plain number is in seconds).

    Returns
    -------
    list of dict
        One dictionary per trace: feature name -> array of values, or None
        where eFEL found no value (``efel.get_feature_values``).
    """
    try:
        import efel
    except ImportError as exc:
        raise PluginLoadError(f"calc_eFEL needs eFEL: "
                              f"{install_hint(DISTRIBUTION, 'efel', 'efel')}.") from exc
    volts = _in_unit(traces, mV, "traces")
    if volts.ndim == 1:
        volts = volts[np.newaxis, :]
    if volts.ndim != 2:
        raise DataError(f"traces must be a 2-D array (n_traces, n_steps); got shape "
                        f"{volts.shape}.")
    stimuli = np.array([_in_unit(pair, ms, "inp_times") for pair in inp_times], dtype=float)
    if stimuli.ndim != 2 or stimuli.shape[1] != 2:
        raise DataError("inp_times must hold one (start, end) pair per trace.")
    if len(stimuli) == 1:
        stimuli = np.repeat(stimuli, len(volts), axis=0)
    if len(stimuli) != len(volts):
        raise DataError(f"inp_times has {len(stimuli)} pairs for {len(volts)} traces; give "
                        f"one per trace (or one for all).")
    step_ms = float(_in_unit(dt, second, "dt")) * 1e3
    time_ms = np.arange(volts.shape[1]) * step_ms
    return efel.get_feature_values(efel_traces(time_ms, volts, stimuli), list(feat_list),
                                   raise_warnings=False)
