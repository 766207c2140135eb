"""brian2modelfitting.inferencer: simulation-based inference and its helpers.

The ``Inferencer`` (an inference plugin) and ``calc_prior`` (defined next to
it) are found through the registry when first used, so torch and sbi are
imported only when a prior is made. ``configure_simulator``,
``get_full_namespace`` and ``get_param_dict`` are brian2modelfitting's helpers
for scripts that drive a Brian network themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from modelfit_core.compat.fitter import get_full_namespace
from modelfit_core.compat.plugin_names import find_plugin_name, module_getattr, plugin_names
from modelfit_core.contracts.errors import DataError

__all__ = ["Inferencer", "calc_prior", "configure_simulator", "get_full_namespace",
           "get_param_dict"]

if TYPE_CHECKING:  # for type checkers; at run time: __getattr__
    from modelfit_plugins.inference.sbi_inference import Inferencer
    from modelfit_plugins.inference.sbi_prior import calc_prior

_KIND = "inference"


def __getattr__(name: str) -> Any:
    return module_getattr(__name__, _KIND, name, __all__)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(plugin_names(_KIND)))


def configure_simulator():
    """The simulator for Brian's active device: a ``RuntimeSimulator``, or a
    ``CPPStandaloneSimulator`` for ``cpp_standalone`` (reset if it has already run),
    as ``setup_fit()`` makes it.

    Returns
    -------
    Simulator
    """
    setup_fit = find_plugin_name("backends", "setup_fit")
    if setup_fit is None:
        raise AttributeError("configure_simulator() needs the Brian backend plugins "
                             "(modelfit-brian2's setup_fit export).")
    return setup_fit()


def get_param_dict(param_values, param_names: Sequence[str], n_values: int
                   ) -> dict[str, np.ndarray]:
    """Columns of a parameter array as a dictionary.

    Parameters
    ----------
    param_values : 2-D array
        One row per sample, one column per parameter (ordered as ``param_names``).
    param_names : list of str
        The parameters.
    n_values : int
        Values per parameter in the result: the number of rows, or any number
        if there is a single row (which is then repeated).

    Returns
    -------
    dict
        Name -> array of ``n_values`` floats.
    """
    names = list(param_names)
    values = np.asarray(param_values, dtype=float)
    if values.ndim == 1:
        values = values.reshape(1, -1) if values.size == len(names) else values.reshape(-1, 1)
    if values.ndim != 2 or values.shape[1] != len(names):
        raise DataError(f"param_values must have one column per parameter "
                        f"({', '.join(names)}); got shape {np.shape(param_values)}.")
    if values.shape[0] not in (1, n_values):
        raise DataError(f"{values.shape[0]} rows of values cannot give {n_values} values "
                        f"per parameter.")
    return {name: np.broadcast_to(values[:, k], (n_values,)).copy()
            for k, name in enumerate(names)}
