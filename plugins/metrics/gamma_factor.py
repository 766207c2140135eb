"""The gamma factor (coincidence factor) between spike trains, as an error."""

from __future__ import annotations

import warnings

import numpy as np
from brian2 import get_dimensions, second
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError
from modelfit_core.contracts.units import UnitMismatchError
from modelfit_core.contracts.metric_bases import SpikeMetric


def count_coincidences(model: np.ndarray, data: np.ndarray, window: float) -> int:
    """Recorded spikes with a model spike at most ``window`` away (s), each model
    spike matched at most once (trains sorted, in seconds)."""
    if model.size == 0 or data.size == 0:
        return 0
    # nearest model spike for each recorded spike
    right = np.clip(np.searchsorted(model, data), 0, model.size - 1)
    left = np.clip(right - 1, 0, model.size - 1)
    nearest = np.where(np.abs(model[left] - data) <= np.abs(model[right] - data), left, right)
    close = np.abs(model[nearest] - data) <= window + 1e-12
    return int(np.unique(nearest[close]).size)


def gamma_factor_error(model, data, delta: float, time: float,
                       rate_correction: bool = True) -> float:
    """Error 1 + 2|r_data - r_model|/r_data - Γ (or 1 - Γ without rate correction).

    0 for identical trains. Γ is the coincidence factor of Jolivet et al.
    (2008) as the manual writes it: coincidences within ±``delta`` beyond the
    2·delta·N_data·r_data expected by chance, normalised to 1 for a perfect match.
    Times in seconds. A recording without spikes scores 0 if the model has
    none either, else ``1 + n_model / (n_model + 1)`` (grows with the count).
    """
    model = np.sort(np.asarray(model, dtype=float))
    data = np.sort(np.asarray(data, dtype=float))
    n_model, n_data = model.size, data.size
    if n_data == 0:
        return 0.0 if n_model == 0 else 1.0 + n_model / (n_model + 1.0)
    data_rate = n_data / time
    model_rate = n_model / time
    norm = 1.0 - 2.0 * data_rate * delta
    if norm <= 0:
        raise ConfigurationError(
            f"GammaFactor: delta = {delta * 1e3:g} ms is too long for a recording firing at "
            f"{data_rate:g} Hz (2·delta·rate must stay below 1); use a smaller delta.")
    expected = 2.0 * delta * n_data * data_rate
    gamma = (count_coincidences(model, data, delta) - expected) / (
        0.5 * (n_model + n_data) * norm)
    rate_term = 1.0 + 2.0 * abs(data_rate - model_rate) / data_rate if rate_correction else 1.0
    return max(float(rate_term - gamma), 0.0)  # Γ <= 1; clip rounding below zero


def _as_seconds(values, what: str) -> np.ndarray:
    """Times as plain seconds: Brian quantities (checked to be times) or numbers."""
    if hasattr(values, "dim"):
        if get_dimensions(values) is not second.dim:
            raise UnitMismatchError(f"{what} must be times (e.g. 2*ms); got {values!r}.")
        values = values / second
    return np.asarray(values, dtype=float)


def firing_rate(spikes) -> float:
    """Firing rate (Hz) of one spike train: the inverse of the mean interspike interval.

    ``spikes`` in seconds (or a Brian time quantity); 0 with fewer than two spikes.
    """
    times = np.sort(_as_seconds(spikes, "spikes"))
    if times.size < 2:
        return 0.0
    return float(1.0 / np.mean(np.diff(times)))


def get_gamma_factor(model, data, delta, time, dt=None, rate_correction=True) -> float:
    """The gamma-factor error of one model train against one recorded train.

    As in the manual's API reference: ``1 + 2|r_data - r_model|/r_data - Γ``
    with ``rate_correction``, else ``1 - Γ``. ``model`` and ``data`` are spike
    times in seconds (or time quantities); ``delta`` (the coincidence window)
    and ``time`` (the recording's duration) are durations; ``dt`` is accepted
    for compatibility and not needed (times are not rounded to steps).
    """
    return gamma_factor_error(_as_seconds(model, "model"), _as_seconds(data, "data"),
                              float(_as_seconds(delta, "delta")),
                              float(_as_seconds(time, "time")),
                              rate_correction=rate_correction)


class GammaFactor(SpikeMetric):
    """Gamma factor between simulated and recorded spike trains, turned into an error.

    Parameters
    ----------
    delta : Quantity
        Half-width of the coincidence window (time); should be below the
        smallest interspike interval.
    time : Quantity
        Duration of the recording (time), for the firing rates.
    rate_correction : bool
        Add 2|r_data - r_model|/r_data so that extra spikes are penalised
        (Clopath et al. 2007); default True.
    """

    compares = "spikes"

    def __init__(self, delta=None, time=None, rate_correction=True, **kwds):
        super().__init__(**kwds)
        for name, value in (("delta", delta), ("time", time)):
            if value is None:  # a TypeError, as the reference's missing argument
                raise ArgumentTypeError(
                    f"GammaFactor needs {name}= (a time, e.g. "
                    f"{name}={'2*ms' if name == 'delta' else '1*second'}).")
            if get_dimensions(value) is not second.dim:
                raise UnitMismatchError(f"GammaFactor's {name} must be a time with units, "
                                        f"e.g. 2*ms; got {value!r}.")
            if not np.isfinite(float(value)):
                raise ConfigurationError(f"GammaFactor's {name} must be a finite time; got "
                                         f"{value!r}.")
            if float(value) <= 0:
                raise ConfigurationError(f"GammaFactor's {name} must be positive; got {value!r}.")
        if float(delta) * 2 >= float(time):
            # brian2modelfitting accepts it: the coincidence window then spans the
            # recording, and the gamma factor says little
            warnings.warn(f"GammaFactor's delta ({delta!r}) is not much shorter than the "
                          f"recording time ({time!r}); the gamma factor then hardly "
                          f"tells spike trains apart.", UserWarning, stacklevel=2)
        self.delta, self.time, self.rate_correction = delta, time, bool(rate_correction)

    def validate_data(self, data_spikes, dt=None) -> None:
        """Warn, before any simulation runs, where delta is long for the recorded rates.

        brian2modelfitting accepts such settings (docs/compatibility.md): with
        ``2·delta·rate >= 1`` the coincidence windows of neighbouring spikes
        overlap, so the gamma factor's chance-coincidence correction is no longer
        meaningful; a warning, not a refusal.
        """
        for k, train in enumerate(data_spikes):
            rate = len(train) / float(self.time)
            if 2.0 * rate * float(self.delta) >= 1.0:
                warnings.warn(
                    f"GammaFactor: delta = {self.delta!r} is long for recorded trace {k} "
                    f"({len(train)} spikes in {self.time!r}): 2·delta·rate = "
                    f"{2.0 * rate * float(self.delta):.3g} >= 1, so coincidence windows "
                    f"overlap and the gamma factor's chance correction is not meaningful. "
                    f"A shorter delta is advised.", UserWarning, stacklevel=2)
                return

    def get_features(self, traces, output, dt):
        """Gamma-factor errors (n_samples, n_traces) of the simulated spike trains
        ``traces[sample][trace]`` against the recorded ``output[trace]`` (names as in
        the manual)."""
        delta, time = float(self.delta), float(self.time)
        return np.array([[gamma_factor_error(model, data, delta, time, self.rate_correction)
                          for model, data in zip(sample, output)]
                         for sample in traces])

    def get_errors(self, features):
        return np.asarray(features, dtype=float).mean(axis=1)

    def get_dimensions(self, output_dim):
        return DIMENSIONLESS

    def __repr__(self):
        return (f"GammaFactor(delta={self.delta!r}, time={self.time!r}, "
                f"rate_correction={self.rate_correction})")
