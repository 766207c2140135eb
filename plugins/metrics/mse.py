"""Mean squared error between simulated and recorded traces."""

from __future__ import annotations

import numpy as np
from brian2 import get_dimensions

from modelfit_core.contracts.metric_bases import TraceMetric
from modelfit_core.contracts.protocols import ResidualForm
from modelfit_core.contracts.units import seconds


class MSEMetric(TraceMetric):
    """Mean over traces and time of the squared difference.

    Options as :class:`~modelfit_core.contracts.metric_bases.Metric` (``t_start``,
    ``t_weights``, ``normalization``). The error has the squared units of the
    output divided by the squared normalization (V² for a voltage). A
    least-squares metric: it can be accumulated during the simulation
    (``online_error=True``) and refined (``TraceFitter.refine``).
    """

    def get_features(self, model_traces, data_traces, dt):
        difference = model_traces - data_traces[np.newaxis]
        squared = np.square(difference, out=difference)
        if self.t_weights is None:
            return squared.mean(axis=2)
        return (squared * self.t_weights).sum(axis=2) / self.t_weights.sum()

    def get_errors(self, features):
        return np.asarray(features).mean(axis=1)

    def get_dimensions(self, output_dim):
        return output_dim ** 2

    def get_normalized_dimensions(self, output_dim):
        return output_dim ** 2 / get_dimensions(self.normalization) ** 2

    def revert_normalization(self, error):
        return error * self.scale ** 2

    def residual_form(self, n_steps: int, dt: float) -> ResidualForm:
        """The error is a mean of squared residuals: a least-squares metric (online
        error, ``refine``)."""
        if self.t_weights is not None:
            return ResidualForm(scale=self.scale, weights=self.t_weights)
        start = int(round(seconds(self.t_start, "t_start") / float(dt)))
        return ResidualForm(scale=self.scale, start_step=start)

    def __repr__(self):
        options = []
        if float(self.t_start) != 0:
            options.append(f"t_start={self.t_start!r}")
        if self.t_weights is not None:
            options.append("t_weights=[...]")
        if self.scale != 1.0:
            options.append(f"normalization={self.normalization!r}")
        return f"MSEMetric({', '.join(options)})"
