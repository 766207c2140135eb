"""What a study stores for display beside its evaluations: details, recordings and the
simulated traces of its best points.

Written by a fit with storage (schema version 3, see
:mod:`~modelfit_core.results.database`), read by the dashboard. Everything is
bounded, whatever the length of the recordings or of the fit:

* each trace is thinned to :data:`MAX_POINTS` points
  (:func:`~modelfit_core.results.decimation.decimate`), each spike train to
  :data:`MAX_SPIKES` spikes, and at most :data:`MAX_TRACES` traces of each
  output are kept;
* the simulated traces of at most :data:`MAX_TRACE_SETS` points per study: a
  fit stores those of each new best point, and when there are more, every
  other one of the older sets is dropped (the first and the newest stay): the
  sets kept span the whole fit, denser towards its end.

Values are SI floats, stored as little-endian binary arrays (time-step
indices ``<i4``, values ``<f4``, spike times ``<f8``): read back with
``numpy.frombuffer``, nothing is ever unpickled. A row that cannot be read (a
damaged or hand-edited database) is left out, and counted.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable, Mapping

import attrs
import numpy as np

from modelfit_core.results.decimation import decimate

MAX_POINTS = 1000
"""Points kept of each trace (minimum and maximum of 499 bins, first and last step)."""
MAX_TRACES = 16
"""Traces kept of each output (the first ones)."""
MAX_SPIKES = 5000
"""Spikes kept of each spike train (the first ones)."""
MAX_TRACE_SETS = 200
"""Points of one study whose simulated traces are kept."""
SPIKES = "spikes"
"""The output name of spike trains (as fitters name them)."""


@attrs.frozen
class DisplayTrace:
    """One trace (or spike train) of one output, thinned for display.

    ``steps`` holds the time-step indices of ``values`` (SI units); for a spike
    train ``steps`` is None and ``values`` holds the spike times in seconds.
    """

    output: str
    trace: int
    steps: np.ndarray | None
    values: np.ndarray

    @classmethod
    def of_trace(cls, output: str, trace: int, values) -> "DisplayTrace":
        """A trace of ``n_steps`` values, decimated to at most :data:`MAX_POINTS`."""
        steps, kept = decimate(values, MAX_POINTS)
        return cls(output=output, trace=int(trace), steps=steps, values=kept)

    @classmethod
    def of_spikes(cls, trace: int, times) -> "DisplayTrace":
        """A spike train (times in seconds), at most :data:`MAX_SPIKES` spikes."""
        times = np.asarray(times, dtype=float).ravel()[:MAX_SPIKES]
        return cls(output=SPIKES, trace=int(trace), steps=None, values=times)

    def blobs(self) -> tuple[bytes | None, bytes]:
        if self.steps is None:
            return None, np.asarray(self.values, dtype="<f8").tobytes()
        return (np.asarray(self.steps, dtype="<i4").tobytes(),
                np.asarray(self.values, dtype="<f4").tobytes())

    @classmethod
    def from_row(cls, output, trace, steps, data) -> "DisplayTrace | None":
        """The trace of a stored row; None if the row is not one this module wrote."""
        if not isinstance(output, str) or not isinstance(trace, int) \
                or not isinstance(data, bytes) or not (steps is None or isinstance(steps, bytes)):
            return None
        if steps is None:
            if len(data) % 8:
                return None
            return cls(output=output, trace=trace, steps=None,
                       values=np.frombuffer(data, dtype="<f8").astype(float))
        if len(steps) % 4 or len(data) % 4 or len(steps) // 4 != len(data) // 4:
            return None
        indices = np.frombuffer(steps, dtype="<i4").astype(np.int64)
        if indices.size and (indices[0] < 0 or np.any(np.diff(indices) <= 0)):
            return None
        return cls(output=output, trace=trace, steps=indices,
                   values=np.frombuffer(data, dtype="<f4").astype(float))


def outputs_for_display(traces: Mapping[str, np.ndarray], spikes=None) -> list[DisplayTrace]:
    """The traces of one point (or of the recordings), thinned and bounded.

    ``traces[name]`` has shape (n_traces, n_steps), SI units; ``spikes`` is a
    list of spike-time arrays (one per trace) or None.
    """
    shown = []
    for name, values in traces.items():
        values = np.asarray(values, dtype=float)
        for k in range(min(values.shape[0], MAX_TRACES)):
            shown.append(DisplayTrace.of_trace(name, k, values[k]))
    if spikes is not None:
        shown += [DisplayTrace.of_spikes(k, times)
                  for k, times in enumerate(list(spikes)[:MAX_TRACES])]
    return shown


# -- writing (inside the caller's transaction) ------------------------------------------
def write_details(connection: sqlite3.Connection, study: str,
                  details: Mapping[str, str]) -> None:
    """Replace the study's details (``key -> text``: backend, time step, units, ...)."""
    connection.execute("DELETE FROM study_details WHERE study = ?", (study,))
    connection.executemany("INSERT INTO study_details VALUES (?, ?, ?)",
                           [(study, str(k), str(v)) for k, v in details.items()])


def write_recordings(connection: sqlite3.Connection, study: str,
                     traces: Iterable[DisplayTrace]) -> None:
    """Replace the study's recordings (what the fit is fitted to)."""
    connection.execute("DELETE FROM recordings WHERE study = ?", (study,))
    connection.executemany("INSERT INTO recordings VALUES (?, ?, ?, ?, ?)",
                           [(study, t.output, t.trace, *t.blobs()) for t in traces])


def has_recordings(connection: sqlite3.Connection, study: str) -> bool:
    return connection.execute("SELECT 1 FROM recordings WHERE study = ? LIMIT 1",
                              (study,)).fetchone() is not None


def write_best_traces(connection: sqlite3.Connection, study: str, round_index: int,
                      sample: int, traces: Iterable[DisplayTrace]) -> None:
    """Store the simulated traces of one point, then keep at most :data:`MAX_TRACE_SETS`."""
    rows = [(study, int(round_index), int(sample), t.output, t.trace, *t.blobs())
            for t in traces]
    if not rows:
        return
    connection.executemany("INSERT OR REPLACE INTO best_traces VALUES (?, ?, ?, ?, ?, ?, ?)",
                           rows)
    points = traced_points(connection, study)
    if len(points) > MAX_TRACE_SETS:
        # every other one of the older sets (the first and the newest stay): the sets
        # left still span the whole fit
        dropped = points[1:-1:2]
        connection.executemany("DELETE FROM best_traces WHERE study = ? AND round = ? AND "
                               "sample = ?", [(study, r, s) for r, s in dropped])


def delete_display(connection: sqlite3.Connection, study: str) -> None:
    """Remove what the study stored for display (a restarted study starts anew)."""
    for table in ("study_details", "sessions", "recordings", "best_traces"):
        connection.execute(f"DELETE FROM {table} WHERE study = ?", (study,))


# -- reading (tables a database older than version 3 lacks read as empty) ---------------
def _tables(connection: sqlite3.Connection) -> set[str]:
    return {row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}


def read_details(connection: sqlite3.Connection, study: str) -> dict[str, str]:
    """The study's details (empty for a study written before schema version 3)."""
    if "study_details" not in _tables(connection):
        return {}
    return {str(k): str(v) for k, v in connection.execute(
        "SELECT key, value FROM study_details WHERE study = ?", (study,))}


def _read_traces(rows) -> tuple[list[DisplayTrace], int]:
    traces, unreadable = [], 0
    for row in rows:
        trace = DisplayTrace.from_row(*row)
        if trace is None:
            unreadable += 1
        else:
            traces.append(trace)
    return traces, unreadable


def read_recordings(connection: sqlite3.Connection,
                    study: str) -> tuple[list[DisplayTrace], int]:
    """The study's recordings, and how many stored rows could not be read."""
    if "recordings" not in _tables(connection):
        return [], 0
    return _read_traces(connection.execute(
        "SELECT output, trace, steps, data FROM recordings WHERE study = ? "
        "ORDER BY output, trace", (study,)))


def read_best_traces(connection: sqlite3.Connection, study: str, round_index: int,
                     sample: int) -> tuple[list[DisplayTrace], int]:
    """The simulated traces stored for one point (none if they were not stored)."""
    if "best_traces" not in _tables(connection):
        return [], 0
    return _read_traces(connection.execute(
        "SELECT output, trace, steps, data FROM best_traces WHERE study = ? AND round = ? "
        "AND sample = ? ORDER BY output, trace", (study, int(round_index), int(sample))))


def traced_points(connection: sqlite3.Connection, study: str) -> list[tuple[int, int]]:
    """``(round, sample)`` of every point whose simulated traces are stored, in order."""
    if "best_traces" not in _tables(connection):
        return []
    return [(r, s) for r, s in connection.execute(
        "SELECT DISTINCT round, sample FROM best_traces WHERE study = ? ORDER BY round, "
        "sample", (study,)) if isinstance(r, int) and isinstance(s, int)]
