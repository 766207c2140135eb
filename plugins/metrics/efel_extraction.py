"""Running eFEL on many traces: serially, in a process pool, or through a map.

The machinery behind :class:`~modelfit_plugins.metrics.efel_features.FeatureMetric`:
eFEL's trace dicts, its process-global settings, and :class:`EfelExtractor`,
which decides how many processes a batch is worth, keeps the pool between
rounds, and isolates the traces and features that make eFEL raise.

eFEL itself is imported by the functions that call it, so that loading the
metric plugin (which every :class:`~modelfit_core.registry.plugin_registry.Registry`
does) stays cheap.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import sys
import warnings
import weakref
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..cores import available_cores

MIN_PARALLEL_TRACES = 64
"""With ``n_jobs=None``, rounds with fewer traces than this are extracted serially."""

MIN_PARALLEL_CPUS = 4
"""With ``n_jobs=None``, machines with fewer CPUs extract serially (see docs/metrics_efel.md)."""


@dataclasses.dataclass(frozen=True)
class EfelFailure:
    """An exception eFEL raised for one feature of one trace (its message)."""

    message: str


def _get_feature_values(traces, features, parallel_map=None):
    """``efel.get_feature_values`` without eFEL's per-trace deprecation warnings
    (FeatureMetric warns once, when it is created)."""
    import efel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return efel.get_feature_values(traces, features, parallel_map=parallel_map,
                                       raise_warnings=False)


def efel_setting_names() -> tuple[str, ...]:
    import efel
    return tuple(f.name for f in dataclasses.fields(efel.get_settings()))


def current_efel_settings() -> dict[str, Any]:
    import efel
    return dataclasses.asdict(efel.get_settings())


@contextmanager
def _efel_settings_applied(settings: Mapping[str, Any]):
    """Temporarily set eFEL's (process-global) settings."""
    import efel
    if not settings:
        yield
        return
    previous = current_efel_settings()
    try:
        for name, value in settings.items():
            efel.set_setting(name, value)
        yield
    finally:
        for name in settings:
            efel.set_setting(name, previous[name])


def _init_worker(settings: dict[str, Any]) -> None:
    """Worker initializer: the parent's eFEL settings plus the metric's."""
    import efel
    warnings.simplefilter("ignore", DeprecationWarning)  # warned once, in the parent
    for name, value in settings.items():
        efel.set_setting(name, value)


def efel_traces(time_ms: np.ndarray, volts_mv: np.ndarray, stimuli_ms: np.ndarray
                ) -> list[dict]:
    """eFEL's trace dicts. ``T`` and ``V`` are given as Python lists: eFEL copies
    them element by element, which is about twice as fast from a list as from a
    numpy array."""
    time_list = np.asarray(time_ms, dtype=float).tolist()
    return [{"T": time_list, "V": v.tolist(), "stim_start": [float(start)],
             "stim_end": [float(end)]}
            for v, (start, end) in zip(np.asarray(volts_mv, dtype=float), stimuli_ms)]


def _extract_chunk(chunk) -> list[dict]:
    """Worker side: ``efel.get_feature_values`` on one chunk of traces, serially.
    The chunk travels as arrays (half the bytes of pickled trace dicts)."""
    time_ms, volts_mv, stimuli_ms, features = chunk
    return _get_feature_values(efel_traces(time_ms, volts_mv, stimuli_ms), features)


def _shutdown(executor: ProcessPoolExecutor) -> None:
    executor.shutdown(wait=False, cancel_futures=True)


class EfelExtractor:
    """eFEL feature extraction for batches of traces.

    Parameters
    ----------
    n_jobs : int or None
        Processes for a batch; ``None`` decides from the batch size and the
        CPUs (see :data:`MIN_PARALLEL_TRACES`, :data:`MIN_PARALLEL_CPUS`).
    parallel_map : callable, optional
        A map-like function handed to eFEL instead of the process pool.
    settings : dict
        eFEL settings applied while extracting (eFEL's own are process-global).
    """

    def __init__(self, n_jobs: int | None = None, parallel_map: Callable | None = None,
                 settings: Mapping[str, Any] | None = None):
        self.n_jobs = n_jobs
        self.parallel_map = parallel_map
        self.settings = dict(settings or {})
        self._executor: ProcessPoolExecutor | None = None
        self._executor_key = None
        self._finalizer = None

    def jobs_for(self, n_traces: int) -> int:
        if multiprocessing.current_process().daemon:
            return 1  # e.g. on a dask worker: daemonic processes cannot start a pool
        if self.n_jobs is not None:
            return min(self.n_jobs, max(n_traces, 1))
        cpus = available_cores()
        if not sys.platform.startswith("linux") or n_traces < MIN_PARALLEL_TRACES or \
                cpus < MIN_PARALLEL_CPUS:
            return 1
        return max(1, min(cpus, n_traces // 16))

    def _pool(self, n_jobs: int) -> ProcessPoolExecutor:
        settings = current_efel_settings()
        settings.update(self.settings)
        key = (n_jobs, tuple(sorted((k, repr(v)) for k, v in settings.items())))
        if self._executor is not None and self._executor_key == key:
            return self._executor
        self.close()
        # fork: workers need not re-import the user's script (spawn would, and
        # would need an `if __name__ == "__main__"` guard in every script)
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() and \
            sys.platform.startswith("linux") else "spawn"
        executor = ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context(method),
                                       initializer=_init_worker, initargs=(settings,))
        self._executor, self._executor_key = executor, key
        self._finalizer = weakref.finalize(self, _shutdown, executor)
        return executor

    def close(self) -> None:
        """Shut down the worker processes (they are started again when needed)."""
        if self._finalizer is not None:
            self._finalizer()
        self._executor, self._executor_key, self._finalizer = None, None, None

    def __getstate__(self):
        # the pool stays with this process; a copy starts its own when needed
        state = self.__dict__.copy()
        state.update(_executor=None, _executor_key=None, _finalizer=None)
        return state

    def extract(self, time_ms: np.ndarray, volts_mv: np.ndarray, stimuli_ms: np.ndarray,
                features: Sequence[str], parallel: bool = True) -> list[dict]:
        """eFEL's raw results for traces in mV (rows of ``volts_mv``) on the time
        axis ``time_ms`` with stimuli ``stimuli_ms`` (one (start, end) per row).

        If eFEL raises for some trace, the batch is redone one trace and one
        feature at a time, and each failure becomes an :class:`EfelFailure`.
        """
        n_traces = len(volts_mv)
        if not n_traces:
            return []
        features = list(features)
        try:
            if parallel and self.parallel_map is not None:
                return _get_feature_values(efel_traces(time_ms, volts_mv, stimuli_ms),
                                           features, self.parallel_map)
            n_jobs = self.jobs_for(n_traces) if parallel else 1
            if n_jobs > 1:
                executor = self._pool(n_jobs)
                size = max(1, math.ceil(n_traces / (4 * n_jobs)))
                chunks = [(time_ms, volts_mv[i:i + size], stimuli_ms[i:i + size], features)
                          for i in range(0, n_traces, size)]
                try:
                    return [result for chunk in executor.map(_extract_chunk, chunks)
                            for result in chunk]
                except BrokenProcessPool:  # a worker died: do this round serially
                    self.close()
            with _efel_settings_applied(self.settings):
                return _get_feature_values(efel_traces(time_ms, volts_mv, stimuli_ms),
                                           features)
        except Exception:  # noqa: BLE001 - eFEL failed on some trace: isolate it
            return self._extract_one_by_one(efel_traces(time_ms, volts_mv, stimuli_ms),
                                            features)

    def _extract_one_by_one(self, traces: list[dict], features: list[str]) -> list[dict]:
        results = []
        with _efel_settings_applied(self.settings):
            for trace in traces:
                result = {}
                for name in features:
                    try:
                        result[name] = _get_feature_values([trace], [name])[0][name]
                    except Exception as exc:  # noqa: BLE001
                        result[name] = EfelFailure(f"{type(exc).__name__}: {exc}")
                results.append(result)
        return results
