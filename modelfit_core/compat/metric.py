"""brian2modelfitting.metric: the metric classes and helpers.

``Metric``, ``TraceMetric`` and ``SpikeMetric`` are the core's base classes;
the metric plugins (``MSEMetric``, ``GammaFactor``, ``FeatureMetric``, ...)
and the helpers defined next to them (``firing_rate``, ``get_gamma_factor``,
``calc_eFEL``) are found through the registry when first used, so eFEL is
imported only when a feature is computed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import numpy as np

from modelfit_core.compat.plugin_names import module_getattr, plugin_names
from modelfit_core.contracts.errors import ConfigurationError

__all__ = ["FeatureMetric", "GammaFactor", "MSEMetric", "Metric", "SpikeMetric", "TraceMetric",
           "calc_eFEL", "firing_rate", "get_gamma_factor", "normalize_weights"]

if TYPE_CHECKING:  # for type checkers; at run time: __getattr__
    from modelfit_core.contracts.metric_bases import Metric, SpikeMetric, TraceMetric
    from modelfit_plugins.metrics.efel_calc import calc_eFEL
    from modelfit_plugins.metrics.efel_features import FeatureMetric
    from modelfit_plugins.metrics.gamma_factor import GammaFactor, firing_rate, get_gamma_factor
    from modelfit_plugins.metrics.mse import MSEMetric

_KIND = "metrics"
_CORE = {name: "modelfit_core.contracts.metric_bases"
         for name in ("Metric", "TraceMetric", "SpikeMetric")}


def __getattr__(name: str) -> Any:
    if name in _CORE:
        value = getattr(importlib.import_module(_CORE[name]), name)
        globals()[name] = value
        return value
    return module_getattr(__name__, _KIND, name, __all__)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(plugin_names(_KIND)))


def normalize_weights(t_weights) -> np.ndarray:
    """Time weights divided by their mean (so that they average 1).

    Parameters
    ----------
    t_weights : array
        One non-negative weight per time step, not all zero.

    Returns
    -------
    ndarray
        ``t_weights / mean(t_weights)``.

    Raises
    ------
    ConfigurationError
        A weight is negative or not finite, or all are zero (also a ValueError).
    """
    weights = np.asarray(t_weights, dtype=float)
    if not np.isfinite(weights).all():
        raise ConfigurationError("Weights in 't_weights' have to be finite numbers.")
    if (weights < 0).any():
        raise ConfigurationError("Weights in 't_weights' have to be positive.")
    mean_weight = weights.mean() if weights.size else 0.0
    if mean_weight == 0:
        raise ConfigurationError("Weights in 't_weights' cannot be all zero.")
    return weights / mean_weight
