"""Base classes for metrics, as described in the manual's "Custom Metric".

Subclass :class:`TraceMetric` or :class:`SpikeMetric` and override
``get_features`` and/or ``get_errors``; ``calc`` applies ``t_start``,
``t_weights`` and ``normalization``. Any object satisfying the
:class:`~modelfit_core.contracts.protocols.Metric` protocol works too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from brian2 import second
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError
from modelfit_core.contracts.units import seconds

# The manual names the parameters of get_features() and calc() differently in Metric,
# TraceMetric and SpikeMetric (model_results/model_traces/model_spikes, ...); the core
# passes them by position, and ported subclasses keep the manual's names: the overrides
# below are marked for the type checker rather than renamed.

SPIKES = "spikes"
"""The output name of spike trains, and the ``compares`` value of spike metrics."""


def compares_spikes(metric: Any) -> bool:
    """Whether ``metric`` compares spike trains (``compares = "spikes"``) rather than traces."""
    return getattr(metric, "compares", "traces") == SPIKES



def check_normalization(normalization) -> None:
    """A metric's ``normalization``: a number or a quantity (``10*mV``), finite and not
    zero; text such as ``"mV"`` (a config file's unit without a number) is refused.

    Raises
    ------
    ArgumentTypeError
        Not a number or quantity.
    ConfigurationError
        NaN, infinite or zero.
    """
    if isinstance(normalization, (str, bytes, bool)) or normalization is None:
        raise ArgumentTypeError(f"normalization must be a number or a quantity such as "
                                f"10*mV; got {normalization!r}.")
    try:
        values = np.asarray(normalization, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"normalization must be a number or a quantity such as "
                                f"10*mV; got {normalization!r}.") from None
    if not np.isfinite(values).all():
        raise ConfigurationError(f"normalization must be finite; got {normalization!r} (every "
                                 f"error would be NaN or zero).")
    if np.any(values == 0):
        raise ConfigurationError("normalization must not be zero.")

class Metric:
    """Common options of every metric.

    Parameters
    ----------
    t_start : Quantity, optional
        Ignore the simulation before this time (in units of time).
    t_weights : array, optional
        One non-negative weight per time step; cannot be combined with t_start.
    normalization : float or Quantity, optional
        The error is computed on values divided by ``normalization``; e.g.
        ``MSEMetric(normalization=10*mV)`` makes the error dimensionless and an
        error of 10 mV weigh 1. Default 1.
    """

    def __init__(self, t_start=0 * second, t_weights=None, normalization=1.0, **kwds):
        if kwds:
            raise ConfigurationError(f"{type(self).__name__} got unknown option(s) "
                                     f"{', '.join(sorted(kwds))}.")
        self.t_start = 0 * second if t_start is None else t_start
        start = seconds(self.t_start, "t_start")
        if np.ndim(start) != 0 or not np.isfinite(start) or start < 0:
            raise ConfigurationError(f"t_start must be one time >= 0 (the part of the traces "
                                     f"that counts starts there); got {self.t_start!r}.")
        if t_weights is not None:
            if float(self.t_start) != 0:
                raise ConfigurationError("t_weights cannot be combined with t_start; set "
                                         "the weights of the first steps to 0 instead.")
            t_weights = np.asarray(t_weights, dtype=float)
            if t_weights.ndim != 1 or not np.isfinite(t_weights).all() \
                    or (t_weights < 0).any() or t_weights.sum() <= 0:
                raise ConfigurationError("t_weights must be a 1-D array of finite, "
                                         "non-negative weights, one per time step, not all "
                                         "zero (NaN and inf are not weights).")
        self.t_weights = t_weights
        check_normalization(normalization)
        self.normalization = normalization

    @property
    def scale(self) -> float:
        """The normalization as an SI float."""
        return float(np.asarray(self.normalization))

    def get_dimensions(self, output_dim):
        """Physical dimensions of the error for an output with ``output_dim``."""
        return DIMENSIONLESS

    def get_normalized_dimensions(self, output_dim):
        """Dimensions of the error after normalization."""
        return self.get_dimensions(output_dim)

    def revert_normalization(self, error):
        """Undo the normalization of an error (identity unless overridden)."""
        return error

    def validate_data(self, data_results, dt=None, /) -> None:
        """Check the recorded data before any simulation (override to add checks)."""

    def get_features(self, model_results, target_results, dt):
        """Per-trace values (n_samples, n_traces) from which ``get_errors`` makes the
        errors (parameter names as in the manual)."""
        raise NotImplementedError

    def get_errors(self, features):
        """Mean over traces of the per-trace values: shape (n_samples,)."""
        return np.asarray(features, dtype=float).mean(axis=1)

    def calc(self, model_results, data_results, dt):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class TraceMetric(Metric):
    """A metric on traces: ``get_features`` gets (n_samples, n_traces, n_steps) arrays."""

    compares = "traces"

    def get_features(self, model_traces, data_traces, dt):  # pyright: ignore[reportIncompatibleMethodOverride]
        """Per-trace values (n_samples, n_traces) of simulated traces (n_samples,
        n_traces, n_steps) against recorded ones (n_traces, n_steps), cut at ``t_start``
        and normalized."""
        raise NotImplementedError

    def validate_data(self, data_traces, dt=None) -> None:
        """``t_start`` must leave some of the trace, ``t_weights`` match its length."""
        n_steps = np.shape(data_traces)[-1]
        if self.t_weights is not None and self.t_weights.shape[0] != n_steps:
            raise ConfigurationError(f"t_weights has {self.t_weights.shape[0]} entries but the "
                                     f"recorded traces have {n_steps} time steps.")
        if dt is not None:
            start = int(round(seconds(self.t_start, "t_start") / float(dt)))
            if start >= n_steps:
                raise ConfigurationError(
                    f"t_start = {self.t_start!r} is at or beyond the end of the recorded traces "
                    f"({n_steps} steps of {dt!r}); nothing would be compared. Use a smaller "
                    f"t_start.")

    def calc(self, model_traces, data_traces, dt):  # pyright: ignore[reportIncompatibleMethodOverride]
        """Errors (n_samples,) between simulated and recorded traces (SI, no units)."""
        model_traces = np.asarray(model_traces, dtype=float)
        data_traces = np.asarray(data_traces, dtype=float)
        scale = self.scale
        if self.t_weights is not None:
            if self.t_weights.shape[0] != data_traces.shape[-1]:
                raise ConfigurationError(
                    f"t_weights has {self.t_weights.shape[0]} entries but the traces have "
                    f"{data_traces.shape[-1]} time steps.")
            features = self.get_features(model_traces / scale, data_traces / scale, dt)
        else:
            start = int(round(seconds(self.t_start, "t_start") / float(dt)))
            features = self.get_features(model_traces[:, :, start:] / scale,
                                         data_traces[:, start:] / scale, dt)
        return np.asarray(self.get_errors(features), dtype=float)


class SpikeMetric(Metric):
    """A metric on spike trains: nested lists of spike-time arrays in seconds."""

    compares = SPIKES

    def get_features(self, model_spikes, data_spikes, dt):  # pyright: ignore[reportIncompatibleMethodOverride]
        """Per-train values (n_samples, n_traces) of simulated spike trains
        (``[sample][trace]``) against recorded ones (``[trace]``), in seconds."""
        raise NotImplementedError

    def calc(self, model_spikes, data_spikes, dt):  # pyright: ignore[reportIncompatibleMethodOverride]
        """Errors (n_samples,) between simulated and recorded spike trains."""
        start = seconds(self.t_start, "t_start")
        if start > 0:
            model_spikes = [[np.asarray(s)[np.asarray(s) >= start] for s in sample]
                            for sample in model_spikes]
            data_spikes = [np.asarray(s)[np.asarray(s) >= start] for s in data_spikes]
        features = self.get_features(model_spikes, data_spikes, dt)
        return np.asarray(self.get_errors(features), dtype=float) / self.scale
