"""brian2modelfitting.fitter: the fitter classes and the helpers around them.

The classes and ``get_spikes``/``get_sensitivity_*`` are the core's own
(imported when first used); ``get_param_dic``, ``get_full_namespace`` and
``setup_fit`` (from the Brian backend plugins) are brian2modelfitting's
helpers for scripts that drive a Brian network themselves (with
:mod:`modelfit_core.compat.simulator`).
"""

from __future__ import annotations

import importlib
import numbers
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from modelfit_core.compat.plugin_names import find_plugin_name
from modelfit_core.contracts.errors import DataError
from modelfit_core.model.namespace import user_namespace
from modelfit_core.public_names import offered_name

_CORE = {
    "Fitter": "modelfit_core.fitting.fitter",
    "TraceFitter": "modelfit_core.fitting.trace_fitter",
    "SpikeFitter": "modelfit_core.fitting.spike_fitter",
    "OnlineTraceFitter": "modelfit_core.fitting.online_trace_fitter",
    "get_spikes": "modelfit_core.model.data",
    "get_sensitivity_equations": "modelfit_core.model.sensitivity",
    "get_sensitivity_init": "modelfit_core.model.sensitivity",
}
_FROM_PLUGINS = ("setup_fit",)
"""Names the Brian backend plugins offer (``modelfit.exports``)."""

__all__ = ["Fitter", "OnlineTraceFitter", "SpikeFitter", "TraceFitter", "get_full_namespace",
           "get_param_dic", "get_sensitivity_equations", "get_sensitivity_init", "get_spikes",
           "setup_fit"]

if TYPE_CHECKING:  # for type checkers; at run time: __getattr__
    from modelfit_core.fitting.fitter import Fitter
    from modelfit_core.fitting.online_trace_fitter import OnlineTraceFitter
    from modelfit_core.fitting.spike_fitter import SpikeFitter
    from modelfit_core.fitting.trace_fitter import TraceFitter
    from modelfit_core.model.data import get_spikes
    from modelfit_core.model.sensitivity import get_sensitivity_equations, get_sensitivity_init
    from modelfit_plugins.backends.brian2_manual_simulator import setup_fit


def __getattr__(name: str) -> Any:
    if name in _CORE:
        value = getattr(importlib.import_module(_CORE[name]), name)
        globals()[name] = value
        return value
    if name in _FROM_PLUGINS:
        return offered_name(__name__, name, __all__,
                            lambda wanted: find_plugin_name("backends", wanted))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def get_param_dic(params, param_names: Sequence[str], n_traces: int, n_samples: int
                  ) -> dict[str, np.ndarray]:
    """Parameter sets as one value per neuron: each set repeated for every trace.

    Parameters
    ----------
    params : list of dict, or 2-D array
        ``n_samples`` parameter sets: dictionaries ``{name: value}`` (the
        manual's form), or rows of values ordered as ``param_names`` (the form
        ``Optimizer.ask`` returns).
    param_names : list of str
        The parameters.
    n_traces, n_samples : int
        Input traces, and parameter sets.

    Returns
    -------
    dict
        Name -> array of ``n_samples * n_traces`` values (SI units, no units):
        neuron ``sample * n_traces + trace`` gets set ``sample``.
    """
    names = list(param_names)
    params = list(params) if not isinstance(params, np.ndarray) else params
    try:
        if len(params) and isinstance(params[0], Mapping):
            missing = sorted({n for row in params for n in names if n not in row})
            if missing:
                raise DataError(f"Parameter sets lack {', '.join(missing)}.")
            matrix = np.array([[np.asarray(row[n], dtype=float) for n in names]
                               for row in params])
        else:
            matrix = np.asarray(params, dtype=float)
        matrix = matrix.reshape(len(params), -1) if matrix.size else \
            matrix.reshape(0, len(names))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"Parameter sets must be dictionaries or rows of numbers: {exc}") \
            from exc
    if matrix.shape != (n_samples, len(names)):
        raise DataError(f"Expected {n_samples} parameter sets of {len(names)} value(s) "
                        f"({', '.join(names)}); got an array of shape {matrix.shape}.")
    return {name: np.repeat(matrix[:, k], n_traces) for k, name in enumerate(names)}


def get_full_namespace(additional_namespace: Mapping[str, Any], level: int = 0
                       ) -> dict[str, Any]:
    """The caller's constants and functions, plus ``additional_namespace``.

    Parameters
    ----------
    additional_namespace : dict
        Names to add (they win over the caller's).
    level : int, optional
        How many frames further up than the caller to look.

    Returns
    -------
    dict
        The caller's locals and globals that are numbers, Brian quantities or
        Brian functions (``TimedArray`` included), updated with
        ``additional_namespace``.
    """
    from brian2 import Quantity
    from brian2.core.functions import Function
    namespace = {key: value for key, value in user_namespace(level).items()
                 if isinstance(value, (Quantity, numbers.Number, Function))}
    namespace.update(additional_namespace)
    return namespace
