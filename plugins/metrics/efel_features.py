"""FeatureMetric: compare electrophysiological features computed by eFEL.

The features (spike count, time to first spike, resting potential, ...) are
computed by the Electrophys Feature Extraction Library (eFEL,
https://efel.readthedocs.io) on the simulated and the recorded traces, and
the error of a trace is the weighted sum of the per-feature differences.
Registered as the metric ``"efel"`` (``Pipeline.from_names(metric="efel",
metric_options={...})``) and reachable as ``from modelfit_core import FeatureMetric``.
"""

from __future__ import annotations

import difflib
import hashlib
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
from brian2 import Quantity, get_dimensions, second, volt
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import ConfigurationError, DataError
from modelfit_core.contracts.units import UnitMismatchError
from modelfit_core.contracts.metric_bases import TraceMetric
from modelfit_core.contracts.units import seconds

from .efel_extraction import EfelExtractor, EfelFailure, efel_setting_names

DEFAULT_MISSING_PENALTY = 100.0
"""Error of a feature that eFEL computes for only one of the two traces."""

MULTI_VALUE_MODES = ("error", "mean", "first", "last")


def absolute_difference(model_value: float, data_value: float) -> float:
    """The default ``combine``: ``|model - data|``."""
    return abs(model_value - data_value)


def _efel_feature_names() -> tuple[str, ...]:
    # not cached: efel.register_feature() can add features at any time (~10 ms a call)
    import efel
    return tuple(efel.get_feature_names())


def _deprecation_note(name: str) -> str | None:
    """eFEL's deprecation message of a (Python) feature, e.g. 'Use spike_count instead.'"""
    try:
        import efel.pyfeatures as pyfeatures
    except ImportError:  # pragma: no cover - layout of other eFEL versions
        return None
    if name not in getattr(pyfeatures, "all_pyfeatures", ()):
        return None
    return getattr(getattr(pyfeatures, name, None), "__deprecated__", None)


def _close_names(name: str, candidates: Sequence[str], n: int = 5) -> list[str]:
    """Close feature names, case-insensitively (``spikecount`` -> ``Spikecount``)."""
    lowered: dict[str, str] = {}
    for candidate in candidates:
        lowered.setdefault(candidate.lower(), candidate)
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    found = [lowered[m] for m in matches]
    for candidate in candidates:  # substrings: 'amplitude' -> 'AP_amplitude', ...
        if len(found) >= n:
            break
        if len(name) >= 4 and name.lower() in candidate.lower() and candidate not in found:
            found.append(candidate)
    return found


def _as_seconds(value, what: str) -> float:
    if not isinstance(value, Quantity) or get_dimensions(value) is not second.dim:
        raise UnitMismatchError(f"FeatureMetric: {what} must be a time with units, e.g. "
                                f"50*ms; got {value!r}.")
    return float(value)


def _parse_stim_times(stim_times) -> np.ndarray:
    """(k, 2) array of (start, end) in seconds from the user's intervals."""
    if stim_times is None:
        raise ConfigurationError("FeatureMetric needs stim_times: the (start, end) of the "
                                 "stimulus of each trace, e.g. [(5*ms, 10*ms)] for all.")
    if isinstance(stim_times, Quantity):
        values = np.asarray(stim_times)
        if get_dimensions(stim_times) is not second.dim:
            raise UnitMismatchError(f"FeatureMetric: stim_times must be times with units, "
                                    f"e.g. [(50*ms, 100*ms)]; got {stim_times!r}.")
        values = np.atleast_2d(np.asarray(values, dtype=float))
        if values.ndim != 2 or values.shape[1] != 2:
            raise ConfigurationError("FeatureMetric: stim_times must be (start, end) pairs; "
                                     f"got an array of shape {np.shape(stim_times)}.")
        intervals = values
    else:
        items = list(stim_times)
        if len(items) == 2 and all(isinstance(x, Quantity) and np.ndim(x) == 0
                                   for x in items):
            items = [tuple(items)]  # a single (start, end) pair
        if not items:
            raise ConfigurationError("FeatureMetric: stim_times is empty; give one (start, "
                                     "end) interval per trace, or one for all traces.")
        rows = []
        for index, item in enumerate(items):
            try:
                start, end = item
            except (TypeError, ValueError):
                raise ConfigurationError(
                    f"FeatureMetric: stim_times[{index}] must be a (start, end) pair of "
                    f"times, e.g. (50*ms, 100*ms); got {item!r}.") from None
            rows.append((_as_seconds(start, f"the start of stim_times[{index}]"),
                         _as_seconds(end, f"the end of stim_times[{index}]")))
        intervals = np.array(rows, dtype=float)
    for index, (start, end) in enumerate(intervals):
        if not (np.isfinite(start) and np.isfinite(end)) or end <= start:
            raise ConfigurationError(f"FeatureMetric: stim_times[{index}] must end after it "
                                     f"starts; got ({start * 1e3:g} ms, {end * 1e3:g} ms).")
    return intervals


def _non_negative_numbers(values: Mapping[str, Any], what: str) -> dict[str, float]:
    """``values`` as floats, each finite and >= 0; ``what`` names one in errors."""
    checked = {}
    for name, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not np.isfinite(number) or number < 0:
            raise ConfigurationError(f"FeatureMetric: {what.format(name=name)} must be a "
                                     f"finite number >= 0; got {value!r}.")
        checked[name] = number
    return checked


class FeatureMetric(TraceMetric):
    """Weighted differences of eFEL features between simulated and recorded traces.

    For each trace, eFEL computes every feature of ``feat_list`` on the
    recorded and on the simulated membrane potential; the error of the trace
    is ``sum_f weights[f] * combine(model_f, data_f)``, the error of a
    parameter set is the mean over traces, divided by ``normalization``.

    Parameters
    ----------
    stim_times : list of (start, end) pairs
        Start and end of the stimulus of each trace, with units of time
        (e.g. ``[(5*ms, 10*ms)] * 5``), or a single interval used for all
        traces (``[(5*ms, 10*ms)]``). Times are counted from the start of the
        simulation, also when ``t_start`` is set. eFEL uses them for many
        features (``voltage_base`` is the mean potential over the last 10 % of
        the time before the stimulus, ``time_to_first_spike`` is counted from
        the stimulus start, ...).
    feat_list : list of str
        eFEL feature names (``efel.get_feature_names()``), each describing a
        trace by a single value, e.g. ``['voltage_base', 'Spikecount',
        'time_to_first_spike']``. Unknown names are an error at construction,
        listing close names.
    weights : dict or sequence of float, optional
        Weight of each feature: ``{name: weight}`` (features not named weigh
        1) or one weight per entry of ``feat_list``. Default: all 1.
    combine : callable, optional
        ``combine(model_value, data_value) -> float``, called with the two
        values of one feature in eFEL's units (ms, mV, counts, ...). Default:
        the absolute difference ``|model - data|``.
    t_start : Quantity, optional
        Only the part of the traces after ``t_start`` is given to eFEL (its
        time axis still starts at ``t_start``, so ``stim_times`` keep their
        meaning).
    normalization : float, optional
        The error is divided by this dimensionless number. Default 1.
    missing_penalty : float or dict, optional (keyword only)
        The penalty for a feature that eFEL cannot compute (see below);
        one number for all features or ``{name: penalty}``. Default 100.
    multi_value : {'error', 'mean', 'first', 'last'}, optional (keyword only)
        What to do when a feature yields several values for one trace (e.g.
        ``AP_amplitude`` with several spikes in the stimulus). ``'error'``
        (default, as in brian2modelfitting) raises an error naming the
        feature; the others reduce the values to one.
    n_jobs : int, optional (keyword only)
        Processes extracting features in parallel, each running
        ``efel.get_feature_values`` on chunks of traces. ``None`` (default):
        all available CPUs, on Linux with at least 4 CPUs and for rounds of
        at least 64 traces; serial otherwise. ``1``: always serial.
    parallel_map : callable, optional (keyword only)
        A ``map``-like function given to ``efel.get_feature_values`` instead
        of the built-in process pool (e.g. ``multiprocessing.Pool().map``);
        its workers must have the eFEL settings wanted.
    efel_settings : dict, optional (keyword only)
        eFEL settings for this metric, e.g. ``{'Threshold': -10.0}`` (mV),
        applied around each extraction and in the worker processes.

    Units
    -----
    The metric receives traces in volts and ``dt`` in seconds (a Brian
    Quantity); eFEL gets time in ms and voltage in mV, whatever unit the
    model declares its voltage in. The output variable must be a voltage.

    Penalty for features eFEL cannot compute
    ----------------------------------------
    eFEL returns no value for a feature it cannot compute (``time_to_first_spike``
    or ``AP_amplitude`` without spikes, ...); an empty or non-finite result
    counts as no value too. For each trace and feature:

    * value for both the simulation and the recording: ``combine(model, data)``;
    * value for neither: 0 (they agree that the feature is absent);
    * value for only one of them: ``missing_penalty`` (default 100, in the
      feature's units, i.e. 100 ms, 100 mV or 100 spikes: larger than any
      difference of a plausible trace of a few hundred ms).

    If eFEL raises an exception for a feature of a simulated trace, that
    counts as no value too; for a recorded trace it is an error naming the
    feature (raised in the first round).

    The penalty is multiplied by the feature's weight like any difference.
    A simulated trace containing NaN or inf (a diverging simulation) is not
    given to eFEL: its error is inf, which the fitter flags as diverged.
    """

    def __init__(self, stim_times, feat_list, weights=None, combine=None, t_start=0 * second,
                 normalization=1.0, *, missing_penalty=DEFAULT_MISSING_PENALTY,
                 multi_value="error", n_jobs=None, parallel_map=None, efel_settings=None):
        if isinstance(normalization, Quantity) and \
                get_dimensions(normalization) is not DIMENSIONLESS:
            raise UnitMismatchError(
                f"FeatureMetric's normalization divides an error that mixes features of "
                f"different units, so it must be a plain number; got {normalization!r}.")
        super().__init__(t_start=t_start, normalization=normalization)
        if not np.isfinite(self.scale) or self.scale <= 0:
            raise ConfigurationError(f"FeatureMetric: normalization must be a positive "
                                     f"number; got {normalization!r}.")
        self.stim_times = stim_times
        self._intervals_s = _parse_stim_times(stim_times)
        self.feat_list = self._check_feature_names(feat_list)
        self.weights = self._check_weights(weights)
        if combine is not None and not callable(combine):
            raise ConfigurationError(f"FeatureMetric: combine must be a function "
                                     f"(model_value, data_value) -> float; got {combine!r}.")
        self.combine = combine if combine is not None else absolute_difference
        self.missing_penalty = self._check_penalty(missing_penalty)
        if multi_value not in MULTI_VALUE_MODES:
            raise ConfigurationError(f"FeatureMetric: multi_value must be one of "
                                     f"{', '.join(map(repr, MULTI_VALUE_MODES))}; got "
                                     f"{multi_value!r}.")
        self.multi_value = multi_value
        if n_jobs is not None and (not isinstance(n_jobs, (int, np.integer))
                                   or isinstance(n_jobs, bool) or n_jobs < 1):
            raise ConfigurationError(f"FeatureMetric: n_jobs must be None or an integer "
                                     f">= 1; got {n_jobs!r}.")
        self.n_jobs = None if n_jobs is None else int(n_jobs)
        if parallel_map is not None and not callable(parallel_map):
            raise ConfigurationError(f"FeatureMetric: parallel_map must be a map-like "
                                     f"function; got {parallel_map!r}.")
        self.parallel_map = parallel_map
        self.efel_settings = self._check_settings(efel_settings)
        self._extractor = EfelExtractor(self.n_jobs, parallel_map, self.efel_settings)
        self._data_cache: dict[Any, np.ndarray] = {}

    # -- validation --------------------------------------------------------------
    @staticmethod
    def _check_feature_names(feat_list) -> list[str]:
        if isinstance(feat_list, str):
            feat_list = [feat_list]
        try:
            names = list(feat_list)
        except TypeError:
            raise ConfigurationError(f"FeatureMetric: feat_list must be a list of eFEL "
                                     f"feature names; got {feat_list!r}.") from None
        if not names:
            raise ConfigurationError("FeatureMetric: feat_list is empty; give eFEL feature "
                                     "names such as ['voltage_base', 'Spikecount'].")
        import efel
        known = _efel_feature_names()
        known_set = set(known)
        problems = []
        for name in names:
            if not isinstance(name, str):
                problems.append(f"{name!r} is not a feature name (a string)")
            elif name not in known_set:
                close = _close_names(name, known)
                hint = (f"close names: {', '.join(close)}" if close
                        else "no close name; see efel.get_feature_names()")
                problems.append(f"{name!r} ({hint})")
        if problems:
            raise ConfigurationError(
                f"FeatureMetric: unknown eFEL feature{'s' if len(problems) > 1 else ''} "
                f"{'; '.join(problems)}. eFEL {efel.__version__} has {len(known)} features "
                f"(efel.get_feature_names()).")
        for name in names:
            note = _deprecation_note(name)
            if note:
                warnings.warn(f"eFEL {efel.__version__} deprecates the feature {name!r}: "
                              f"{note}", DeprecationWarning, stacklevel=3)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigurationError(f"FeatureMetric: feat_list names "
                                     f"{', '.join(duplicates)} more than once.")
        return names

    def _check_weights(self, weights) -> dict[str, float]:
        if weights is None:
            values = {name: 1.0 for name in self.feat_list}
        elif isinstance(weights, Mapping):
            unknown = [k for k in weights if k not in self.feat_list]
            if unknown:
                raise ConfigurationError(
                    f"FeatureMetric: weights for {', '.join(map(repr, unknown))}, which "
                    f"{'is' if len(unknown) == 1 else 'are'} not in feat_list "
                    f"({', '.join(self.feat_list)}).")
            values = {name: weights.get(name, 1.0) for name in self.feat_list}
        else:
            try:
                sequence = list(weights)
            except TypeError:
                raise ConfigurationError(f"FeatureMetric: weights must be a dict "
                                         f"{{feature: weight}} or one weight per feature; "
                                         f"got {weights!r}.") from None
            if len(sequence) != len(self.feat_list):
                raise ConfigurationError(f"FeatureMetric: {len(sequence)} weights for "
                                         f"{len(self.feat_list)} features; give one per "
                                         f"feature or a dict {{feature: weight}}.")
            values = dict(zip(self.feat_list, sequence))
        return _non_negative_numbers(values, "the weight of {name!r}")

    def _check_penalty(self, penalty) -> dict[str, float]:
        if isinstance(penalty, Mapping):
            unknown = [k for k in penalty if k not in self.feat_list]
            if unknown:
                raise ConfigurationError(f"FeatureMetric: missing_penalty for "
                                         f"{', '.join(map(repr, unknown))}, not in feat_list.")
            values = {n: penalty.get(n, DEFAULT_MISSING_PENALTY) for n in self.feat_list}
        else:
            values = {n: penalty for n in self.feat_list}
        return _non_negative_numbers(values, "missing_penalty for {name!r}")

    @staticmethod
    def _check_settings(settings) -> dict[str, Any]:
        settings = dict(settings or {})
        known = efel_setting_names()
        unknown = [k for k in settings if k not in known]
        if unknown:
            close = {k: _close_names(k, known, n=3) for k in unknown}
            raise ConfigurationError(
                "FeatureMetric: unknown eFEL setting(s) " + "; ".join(
                    f"{k!r}" + (f" (close: {', '.join(v)})" if v else "")
                    for k, v in close.items()) + f". Settings: {', '.join(known)}.")
        return settings

    def _check_output_dim(self, output_dim):
        if output_dim is not None and output_dim is not volt.dim:
            raise UnitMismatchError(
                f"FeatureMetric computes eFEL features of a membrane potential, so the "
                f"fitted output must be a voltage; it has dimensions {output_dim}.")

    def get_dimensions(self, output_dim):
        """DIMENSIONLESS: the error adds features of different units."""
        self._check_output_dim(output_dim)
        return DIMENSIONLESS

    def get_normalized_dimensions(self, output_dim):
        self._check_output_dim(output_dim)
        return DIMENSIONLESS

    def revert_normalization(self, error):
        return error * self.scale

    def validate_data(self, data_traces, dt=None):
        """Check the recordings against ``stim_times`` before anything is simulated."""
        super().validate_data(data_traces, dt)
        data_traces = np.asarray(data_traces, dtype=float)
        if data_traces.ndim == 2:
            self._intervals_ms(data_traces.shape[0])

    # -- time and intervals ------------------------------------------------------
    def _intervals_ms(self, n_traces: int) -> np.ndarray:
        intervals = self._intervals_s
        if len(intervals) == 1:
            intervals = np.repeat(intervals, n_traces, axis=0)
        elif len(intervals) != n_traces:
            raise DataError(f"FeatureMetric: stim_times has {len(intervals)} intervals but "
                            f"there are {n_traces} traces; give one interval per trace, or "
                            f"a single interval for all.")
        return intervals * 1e3

    def _time_ms(self, n_steps: int, dt) -> np.ndarray:
        """eFEL's time axis (ms) of traces already cut at ``t_start``."""
        dt_s = seconds(dt, "dt") if isinstance(dt, Quantity) else float(dt)
        if not dt_s > 0:
            raise ConfigurationError(f"FeatureMetric: dt must be positive; got {dt!r}.")
        offset = int(round(seconds(self.t_start, "t_start") / dt_s))
        return (offset + np.arange(n_steps)) * dt_s * 1e3

    def _start_step(self, dt) -> int:
        dt_s = seconds(dt, "dt") if isinstance(dt, Quantity) else float(dt)
        return int(round(seconds(self.t_start, "t_start") / dt_s))

    def close(self) -> None:
        """Shut down the extraction processes (they are started again when needed)."""
        self._extractor.close()

    def _extract(self, time_ms, volts_mv, stimuli_ms, parallel: bool = True) -> list[dict]:
        return self._extractor.extract(time_ms, volts_mv, stimuli_ms, self.feat_list,
                                       parallel=parallel)

    def _scalar(self, name: str, values, where: str, strict: bool = False) -> float | None:
        """One feature value of one trace, or None when eFEL could not compute it.

        With ``strict`` (recorded traces) an exception inside eFEL is an error."""
        if isinstance(values, EfelFailure):
            if strict:
                raise ConfigurationError(f"FeatureMetric: eFEL failed to compute {name!r} "
                                         f"for {where}: {values.message}")
            return None
        if values is None:
            return None
        values = np.asarray(values, dtype=float).ravel()
        if values.size > 1:
            if self.multi_value == "error":
                alternatives = [n for n in (f"mean_{name}", f"{name}_mean")
                                if n in _efel_feature_names()]
                if name == "AP_amplitude":
                    alternatives += ["AP1_amp", "APlast_amp"]
                raise ConfigurationError(
                    f"FeatureMetric: the eFEL feature {name!r} has {values.size} values for "
                    f"{where} ({', '.join(f'{v:.4g}' for v in values[:5])}"
                    f"{', ...' if values.size > 5 else ''}); FeatureMetric compares one value "
                    f"per feature and trace. Use a single-valued feature"
                    f"{' such as ' + ', '.join(alternatives) if alternatives else ''}, or "
                    f"FeatureMetric(..., multi_value='mean') (or 'first', 'last').")
            values = values[~np.isnan(values)]
            if values.size == 0:
                return None
            value = {"mean": values.mean, "first": lambda: values[0],
                     "last": lambda: values[-1]}[self.multi_value]()
        elif values.size == 1:
            value = values[0]
        else:
            return None
        return float(value) if np.isfinite(value) else None

    def check_values(self, feat_list: list[dict], where: str = "trace",
                     strict: bool = False, labels=None) -> list[dict]:
        """eFEL results -> ``{feature: float or None}`` per trace (None: not computable);
        raises for multi-valued features (unless ``multi_value`` reduces them), and
        with ``strict`` for features that made eFEL raise an exception. ``labels``
        name the traces in error messages (default: ``'<where> <index>'``)."""
        if labels is None:
            labels = [f"{where} {index}" for index in range(len(feat_list))]
        return [{name: self._scalar(name, result.get(name), label, strict)
                 for name in self.feat_list}
                for label, result in zip(labels, feat_list)]

    def feat_to_err(self, d1: Mapping[str, float | None], d2: Mapping[str, float | None]
                    ) -> float:
        """Weighted error between model features ``d1`` and data features ``d2``
        (values as returned by :meth:`check_values`)."""
        error = 0.0
        for value in self.feature_errors(d1, d2):
            error += value
        return error

    def feature_errors(self, d1: Mapping[str, float | None],
                       d2: Mapping[str, float | None]) -> list[float]:
        """The weighted error of each feature of ``feat_list`` (see :meth:`feat_to_err`)."""
        errors = []
        for name in self.feat_list:
            x, y = d1.get(name), d2.get(name)
            if x is None and y is None:
                difference = 0.0
            elif x is None or y is None:
                difference = self.missing_penalty[name]
            else:
                difference = float(self.combine(x, y))
            errors.append(self.weights[name] * difference)
        return errors

    def compute_features(self, traces, dt, parallel: bool = True) -> list[dict]:
        """Feature values of traces in volts, shape (n_traces, n_steps).

        Returns one ``{feature: float or None}`` per trace, in eFEL's units;
        ``t_start`` and ``stim_times`` apply as in :meth:`calc`.
        """
        traces = np.atleast_2d(np.asarray(traces, dtype=float))
        traces = traces[:, self._start_step(dt):]
        time_ms = self._time_ms(traces.shape[-1], dt)
        intervals = self._intervals_ms(traces.shape[0])
        self._check_window(time_ms, intervals)
        finite = np.flatnonzero(np.isfinite(traces).all(axis=1))
        raw = self._extract(time_ms, traces[finite] * 1e3, intervals[finite], parallel)
        values = [dict.fromkeys(self.feat_list) for _ in range(traces.shape[0])]
        for index, result in zip(finite, self.check_values(
                raw, labels=[f"trace {i}" for i in finite])):
            values[index] = result
        return values

    def _check_window(self, time_ms: np.ndarray, intervals_ms: np.ndarray):
        if time_ms.size < 2:
            raise DataError("FeatureMetric: the traces (after t_start) have fewer than two "
                            "time steps.")
        for index, (start, end) in enumerate(intervals_ms):
            if start >= time_ms[-1] or end <= time_ms[0]:
                raise DataError(
                    f"FeatureMetric: the stimulus of trace {index} ({start:g} ms to {end:g} "
                    f"ms) lies outside the analysed traces ({time_ms[0]:g} ms to "
                    f"{time_ms[-1]:g} ms); stim_times count from the start of the "
                    f"simulation.")

    def _data_features(self, data_traces: np.ndarray, time_ms: np.ndarray,
                       intervals_ms: np.ndarray) -> list[dict]:
        key = (hashlib.blake2b(np.ascontiguousarray(data_traces).tobytes(),
                               digest_size=16).hexdigest(), data_traces.shape,
               time_ms[0], time_ms[-1], intervals_ms.tobytes())
        if key not in self._data_cache:
            if not np.isfinite(data_traces).all():
                raise DataError("FeatureMetric: the recorded traces contain NaN or inf.")
            raw = self._extract(time_ms, data_traces * 1e3, intervals_ms, parallel=False)
            self._data_cache.clear()
            self._data_cache[key] = self.check_values(raw, where="recorded trace",
                                                      strict=True)
        return self._data_cache[key]

    # -- the Metric interface ------------------------------------------------------
    def get_features(self, traces, output, dt):
        """Error of each simulated trace: (n_samples, n_traces).

        ``traces`` (n_samples, n_traces, n_steps) simulated and ``output``
        (n_traces, n_steps) recorded, in volts, already cut at ``t_start`` (names
        as in the manual); ``dt`` the time step (Quantity or seconds).
        """
        return self._trace_errors(traces, output, dt, self.feat_to_err, ())

    def _trace_errors(self, model_traces, data_traces, dt, compare, shape):
        """``compare(model features, data features)`` (of ``shape``) for each simulated
        trace: (n_samples, n_traces, *shape); inf for a trace with NaN or inf."""
        model_traces = np.asarray(model_traces, dtype=float)
        data_traces = np.asarray(data_traces, dtype=float)
        if model_traces.ndim == 2:
            model_traces = model_traces[np.newaxis]
        n_samples, n_traces, n_steps = model_traces.shape
        if data_traces.shape != (n_traces, n_steps):
            raise DataError(f"FeatureMetric: simulated traces {model_traces.shape[1:]} and "
                            f"recorded traces {data_traces.shape} differ in shape.")
        time_ms = self._time_ms(n_steps, dt)
        intervals = self._intervals_ms(n_traces)
        self._check_window(time_ms, intervals)
        data_features = self._data_features(data_traces, time_ms, intervals)

        flat = model_traces.reshape(n_samples * n_traces, n_steps)
        finite = np.isfinite(flat).all(axis=1)
        indices = np.flatnonzero(finite)
        raw = self._extract(time_ms, flat[indices] * 1e3, intervals[indices % n_traces])
        model_features = self.check_values(
            raw, labels=[f"the simulation of parameter set {i // n_traces} on trace "
                         f"{i % n_traces}" for i in indices])
        errors = np.full((n_samples * n_traces, *shape), np.inf)
        for position, flat_index in enumerate(indices):
            errors[flat_index] = compare(model_features[position],
                                         data_features[flat_index % n_traces])
        return errors.reshape(n_samples, n_traces, *shape)

    def get_errors(self, features):
        """Mean over traces: (n_samples,)."""
        return np.asarray(features, dtype=float).mean(axis=1)

    def calc(self, model_traces, data_traces, dt):
        """Errors (n_samples,): mean over traces of the weighted feature differences,
        divided by ``normalization``. Traces in volts, ``dt`` a time."""
        model_traces = np.asarray(model_traces, dtype=float)
        data_traces = np.asarray(data_traces, dtype=float)
        start = self._start_step(dt)
        features = self.get_features(model_traces[..., start:], data_traces[:, start:], dt)
        return np.asarray(self.get_errors(features), dtype=float) / self.scale

    # -- the MultiObjectiveMetric capability (fit(objectives="features")) ----------------
    def objective_names(self) -> list[str]:
        """The features, each an objective of ``fit(objectives="features")``."""
        return list(self.feat_list)

    def calc_objectives(self, model_traces, data_traces, dt):
        """Errors of each feature (n_samples, n_features): the mean over traces of its
        weighted difference (or penalty), divided by ``normalization``; each row adds
        up to :meth:`calc`."""
        model_traces = np.asarray(model_traces, dtype=float)
        data_traces = np.asarray(data_traces, dtype=float)
        start = self._start_step(dt)
        per_trace = self._trace_errors(model_traces[..., start:], data_traces[:, start:], dt,
                                       self.feature_errors, (len(self.feat_list),))
        return per_trace.mean(axis=1) / self.scale

    def __repr__(self):
        options = [f"stim_times={self.stim_times!r}", f"feat_list={self.feat_list!r}"]
        if any(w != 1.0 for w in self.weights.values()):
            options.append(f"weights={self.weights!r}")
        if self.combine is not absolute_difference:
            options.append(f"combine={getattr(self.combine, '__name__', self.combine)!r}")
        if float(self.t_start) != 0:
            options.append(f"t_start={self.t_start!r}")
        if self.scale != 1.0:
            options.append(f"normalization={self.normalization!r}")
        return f"FeatureMetric({', '.join(options)})"
