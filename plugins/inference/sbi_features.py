"""Summary statistics: user features per output variable, or the raw traces.

A feature is a callable that takes one trace (a 1-D array in SI units, e.g.
volts) or one spike train (a 1-D array of spike times in seconds) and
returns one number. Features are applied to every trace of every output;
the statistics of one parameter set are laid out as

    [output 1: trace 1 (f1, f2, ...), trace 2 (f1, f2, ...), ...], [output 2: ...]

Without features (automatic extraction), x is the recorded traces
themselves, flattened in the same order, and an embedding network learns
the features while the density estimator trains.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, DataError

SPIKES = "spikes"


def feature_name(feature: Callable) -> str:
    return getattr(feature, "__name__", None) or type(feature).__name__


def normalise_features(features: Any, output_names: Sequence[str]) -> dict[str, list] | None:
    """Validate ``features`` against the outputs; None means automatic extraction.

    Accepts ``{output: [callables]}`` (the manual's form), a bare list of
    callables when there is a single output, and ``'spike'`` for ``'spikes'``.
    """
    if features is None:
        if SPIKES in output_names:
            raise ConfigurationError(
                "Spike trains have no fixed length, so they need features: pass e.g. "
                "features={'spikes': [lambda s: s.size], ...} with one list of features per "
                "output variable.")
        return None
    if not isinstance(features, Mapping):
        if len(output_names) != 1:
            raise ConfigurationError(
                f"With several outputs ({', '.join(output_names)}) give features as a "
                f"dictionary with one list of features per output variable.")
        features = {output_names[0]: features}
    normalised: dict[str, list] = {}
    for key, value in features.items():
        name = SPIKES if key == "spike" and SPIKES in output_names else key
        if name not in output_names:
            raise ConfigurationError(
                f"features has an entry for {key!r}, which is not an output; the outputs are "
                f"{', '.join(output_names)}.")
        values = [value] if callable(value) else value
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ConfigurationError(f"features[{key!r}] must be a non-empty list of "
                                     f"callables; got {value!r}.")
        for k, feature in enumerate(values):
            if not callable(feature):
                raise ConfigurationError(f"Feature {k} of {name!r} is not callable: "
                                         f"{feature!r}.")
        normalised[name] = list(values)
    missing = [name for name in output_names if name not in normalised]
    if missing:
        raise ConfigurationError(
            f"No features for the output(s) {', '.join(missing)}: give one list of features "
            f"per output variable, or features=None for automatic feature extraction.")
    return {name: normalised[name] for name in output_names}


def _scalar(value: Any, feature: Callable, index: int, output: str, where: str) -> float:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"Feature {index} of {output!r} ({feature_name(feature)}) returned {value!r} for "
            f"{where}; a feature must return one number.") from exc
    if array.size != 1:
        raise ConfigurationError(
            f"Feature {index} of {output!r} ({feature_name(feature)}) returned an array of "
            f"shape {array.shape} for {where}; a feature must return one number per trace "
            f"(e.g. np.mean(x), not x[mask]).")
    return float(array.reshape(()))


def _call(feature, data):
    """``feature(data)``; Brian 2.9's unit-aware functions (``ptp``, ...) fail on plain
    arrays, which older Brian accepted: those get the same SI values as a Quantity."""
    try:
        return feature(data)
    except AttributeError as exc:
        if "dim" not in str(exc) or not isinstance(data, np.ndarray):
            raise
        from brian2 import Quantity
        if isinstance(data, Quantity):
            raise
        return feature(Quantity(data))


def _apply(feature, data, index, output, where) -> float:
    try:
        value = _call(feature, data)
    except ConfigurationError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"Feature {index} of {output!r} ({feature_name(feature)}) failed on {where}: "
            f"{type(exc).__name__}: {exc}. Features must handle every outcome of a "
            f"simulation, e.g. spike trains without spikes.") from exc
    return _scalar(value, feature, index, output, where)


def n_statistics(features: Mapping[str, list] | None, output_names, n_traces, n_steps) -> int:
    if features is None:
        return len(output_names) * n_traces * n_steps
    return sum(len(features[name]) for name in output_names) * n_traces


def summary_statistics(traces: Mapping[str, np.ndarray], spikes, features, output_names,
                       n_samples: int, n_traces: int, first_index: int = 0,
                       recorded: bool = False) -> np.ndarray:
    """Statistics of ``n_samples`` parameter sets, shape (n_samples, n_statistics).

    ``traces[name]`` has shape (n_samples, n_traces, n_steps) in SI units and
    ``spikes[sample][trace]`` holds spike times in seconds. ``first_index`` and
    ``recorded`` only make error messages precise.
    """
    if features is None:
        blocks = [np.asarray(traces[name], dtype=np.float32).reshape(n_samples, -1)
                  for name in output_names]
        return np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0].copy()
    columns = []
    for name in output_names:
        functions = features[name]
        block = np.empty((n_samples, n_traces, len(functions)), dtype=np.float64)
        for sample in range(n_samples):
            for trace in range(n_traces):
                data = spikes[sample][trace] if name == SPIKES else traces[name][sample, trace]
                where = (f"recorded trace {trace}" if recorded else
                         f"the simulation of parameter set {first_index + sample}, "
                         f"trace {trace}")
                for k, feature in enumerate(functions):
                    block[sample, trace, k] = _apply(feature, data, k, name, where)
        columns.append(block.reshape(n_samples, -1))
    return np.concatenate(columns, axis=1).astype(np.float32)


def observed_statistics(signals, spikes, features, output_names, n_traces) -> np.ndarray:
    """The statistics of the recorded data (``x_o``), checked to be finite."""
    traces = {name: signal.values[np.newaxis] for name, signal in signals.items()}
    x_o = summary_statistics(traces, [spikes] if spikes is not None else None, features,
                             output_names, 1, n_traces, recorded=True)[0]
    bad = ~np.isfinite(x_o)
    if bad.any():
        first = describe_statistic(int(np.flatnonzero(bad)[0]), features, output_names,
                                   n_traces)
        raise DataError(f"The summary statistics of the recorded data contain {int(bad.sum())} "
                        f"NaN/inf value(s) ({first} is the first); check the features on the "
                        f"recordings.")
    return x_o


def describe_statistic(index: int, features, output_names, n_traces) -> str:
    """Human name of column ``index`` of x (for messages)."""
    if features is None:
        return f"entry {index}"
    for name in output_names:
        width = len(features[name]) * n_traces
        if index < width:
            trace, k = divmod(index, len(features[name]))
            return f"feature {k} ({feature_name(features[name][k])}) of {name!r}, trace {trace}"
        index -= width
    return f"entry {index}"


def drop_invalid(theta: np.ndarray, x: np.ndarray, warn) -> tuple[np.ndarray, np.ndarray]:
    """Remove rows whose statistics are not finite; ``warn(message)`` says how many."""
    valid = np.isfinite(x).all(axis=1)
    n_bad = int((~valid).sum())
    if n_bad:
        if n_bad == len(valid):
            raise DataError(f"All {n_bad} simulations gave NaN/inf summary statistics; nothing "
                            f"to train on. Check the bounds (diverging models) and features.")
        warn(f"{n_bad} of {len(valid)} simulations gave NaN/inf summary statistics and were "
             f"dropped from the training data ({len(valid) - n_bad} remain).")
    return theta[valid], x[valid]
