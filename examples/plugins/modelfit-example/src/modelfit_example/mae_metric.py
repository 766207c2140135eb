"""Mean absolute error between simulated and recorded traces, as a modelfit metric.

Registered as ``"mae"``::

    Pipeline.from_names(metric="mae", metric_options={"t_start": 5*ms})
    from modelfit_core import MAEMetric           # the classic interface

It subclasses modelfit's ``TraceMetric``, which applies ``t_start``,
``t_weights`` and ``normalization`` and builds ``calc`` from ``get_features``
(one value per sample and trace) and ``get_errors`` (one per sample).
"""

from __future__ import annotations

import numpy as np
from brian2 import get_dimensions

from modelfit_core import TraceMetric


class MAEMetric(TraceMetric):
    """Mean over traces and time of ``|simulated - recorded|``.

    Less sensitive to a few large deviations (a spike shifted by a millisecond)
    than the mean squared error. The error has the units of the output (V for
    a membrane potential), divided by those of ``normalization``.

    Parameters
    ----------
    t_start, t_weights, normalization
        As for every :class:`~modelfit_core.contracts.metric_bases.Metric`.
    """

    def get_features(self, model_traces, data_traces, dt):
        """Mean absolute difference per sample and trace: (n_samples, n_traces)."""
        difference = np.abs(model_traces - data_traces[np.newaxis])
        if self.t_weights is None:
            return difference.mean(axis=2)
        return (difference * self.t_weights).sum(axis=2) / self.t_weights.sum()

    def get_errors(self, features):
        """Mean over traces: (n_samples,)."""
        return np.asarray(features, dtype=float).mean(axis=1)

    def get_dimensions(self, output_dim):
        return output_dim

    def get_normalized_dimensions(self, output_dim):
        return output_dim / get_dimensions(self.normalization)

    def revert_normalization(self, error):
        return error * self.scale

    def __repr__(self):
        return "MAEMetric()" if self.scale == 1.0 else \
            f"MAEMetric(normalization={self.normalization!r})"
