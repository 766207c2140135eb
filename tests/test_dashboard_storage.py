"""What a fit with storage keeps for the dashboard (schema version 3): details,
recordings and the best points' traces, thinned and bounded; how each fit() ended;
older databases read as they are and migrated when written; fit(dashboard=...)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError
from modelfit_core.results import display_tables, fit_sessions
from modelfit_core.results.database import (ADDED_IN_3, ADDED_IN_4, SCHEMA_VERSION,
                                             TABLES_ADDED_IN_4, TABLES_ADDED_IN_5,
                                             open_for_reading)
from modelfit_core.results.decimation import decimate
from modelfit_core.results.storage import read_results
from storage_helpers import BOUNDS, make_fitter, query


# -- decimation ----------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(values=arrays(float, st.integers(1, 5000),
                     elements=st.floats(-1e6, 1e6, allow_nan=False)),
       max_points=st.integers(4, 400))
def test_decimation_is_bounded_in_order_and_keeps_each_bins_extremes(values, max_points):
    steps, kept = decimate(values, max_points)
    assert len(steps) <= max_points or len(steps) == len(values) <= max_points
    assert np.all(np.diff(steps) > 0) and steps[0] == 0 and steps[-1] == len(values) - 1
    np.testing.assert_array_equal(kept, values[steps])
    assert kept.max() == values.max() and kept.min() == values.min()
    if len(values) <= max_points:
        assert len(steps) == len(values)
    else:
        # every bin's extremes: brute force over the same bins
        n_bins = (max_points - 2) // 2
        size = -(-len(values) // n_bins)
        for start in range(0, len(values), size):
            chunk = values[start:start + size]
            inside = kept[(steps >= start) & (steps < start + size)]
            assert inside.max() == chunk.max() and inside.min() == chunk.min()


def test_decimation_keeps_nan_and_infinite_values_where_they_are_extremes():
    values = np.zeros(10_000)
    values[1234], values[5678] = np.inf, np.nan
    steps, kept = decimate(values, 100)
    assert 1234 in steps and np.isinf(kept[steps.tolist().index(1234)])
    with pytest.raises(ValueError, match="at least 4"):
        decimate(values, 3)


@settings(max_examples=30, deadline=None)
@given(n_traces=st.integers(1, 40), n_steps=st.integers(1, 3000))
def test_what_is_stored_of_a_point_is_bounded_whatever_the_recordings(n_traces, n_steps):
    traces = np.random.default_rng(0).normal(size=(n_traces, n_steps))
    shown = display_tables.outputs_for_display({"v": traces},
                                               [np.arange(10_000) * 1e-4] * n_traces)
    per_output = {name: [t for t in shown if t.output == name] for name in ("v", "spikes")}
    assert len(per_output["v"]) == min(n_traces, display_tables.MAX_TRACES)
    assert all(t.values.size <= display_tables.MAX_POINTS for t in per_output["v"])
    assert all(t.values.size == display_tables.MAX_SPIKES for t in per_output["spikes"])
    for trace in shown:  # what is written reads back the same (float32 values)
        back = display_tables.DisplayTrace.from_row(trace.output, trace.trace, *trace.blobs())
        np.testing.assert_allclose(back.values, trace.values, rtol=1e-6)


def test_stored_trace_sets_are_thinned_to_a_bound_spanning_the_fit(tmp_path):
    from modelfit_core.results.database import open_for_writing
    connection = open_for_writing(tmp_path / "fit.db")
    trace = display_tables.outputs_for_display({"v": np.zeros((1, 50))})
    for r in range(3 * display_tables.MAX_TRACE_SETS):
        display_tables.write_best_traces(connection, "s", r, 0, trace)
    points = display_tables.traced_points(connection, "s")
    assert len(points) <= display_tables.MAX_TRACE_SETS
    assert points[0] == (0, 0) and points[-1] == (3 * display_tables.MAX_TRACE_SETS - 1, 0)
    # spread over the whole fit, denser towards its end (older sets thinned more often)
    gaps = np.diff([r for r, _ in points])
    assert np.all(np.diff(gaps) <= 0) and gaps[-1] == 1


def test_unreadable_rows_are_left_out_and_counted():
    good = display_tables.DisplayTrace.of_trace("v", 0, np.arange(5.0))
    assert display_tables.DisplayTrace.from_row("v", 0, *good.blobs()) is not None
    for row in [("v", 0, b"\x01\x02\x03", good.blobs()[1]), ("v", "0", *good.blobs()),
                ("v", 0, "text", b""), ("v", 0, np.array([3, 1], "<i4").tobytes(),
                                        np.zeros(2, "<f4").tobytes()), ("v", 0, None, b"\x00")]:
        assert display_tables.DisplayTrace.from_row(*row) is None


# -- a real fit ----------------------------------------------------------------------------
def test_a_fit_stores_details_recordings_best_traces_and_how_it_ended(tmp_path):
    db = tmp_path / "fit.db"
    fitter = make_fitter(db)
    fitter.fit(n_rounds=4, **BOUNDS)
    connection, version = open_for_reading(db)
    assert version == SCHEMA_VERSION
    details = display_tables.read_details(connection, "s")
    assert details["dt"] == repr(1e-4) and details["n_traces"] == "2"
    assert "RuntimeBackend" in details["backend"]
    recordings, bad = display_tables.read_recordings(connection, "s")
    assert bad == 0 and [(t.output, t.trace) for t in recordings] == [("v", 0), ("v", 1)]
    np.testing.assert_allclose(recordings[1].values[-1],
                               fitter.problem.recordings.traces["v"].values[1, -1], rtol=1e-6)
    points = display_tables.traced_points(connection, "s")
    assert points and points[0][0] == 0
    # each stored point was a new best, and the last one is the best of the fit
    history = fitter.history
    bests = [float(history.rounds[r].errors[s]) for r, s in points]
    assert bests == sorted(bests, reverse=True) and bests[-1] == history.best_error
    simulated, _ = display_tables.read_best_traces(connection, "s", *points[-1])
    generated = np.asarray(fitter.generate(output_var="v"))  # SI volts
    np.testing.assert_allclose(simulated[0].values, generated[0][simulated[0].steps], atol=1e-6)
    assert fit_sessions.study_status(connection, "s").state == fit_sessions.FINISHED
    connection.close()
    # continued: a second session; restarted: the display rows start anew
    fitter.fit(n_rounds=1)
    assert len(query(db, "SELECT * FROM sessions WHERE study = 's'")) == 2
    fitter.fit(n_rounds=1, restart=True, **BOUNDS)
    assert len(query(db, "SELECT * FROM sessions WHERE study = 's'")) == 1
    assert query(db, "SELECT MIN(round) FROM best_traces WHERE study = 's'") == [(0,)]


def test_an_online_error_fit_stores_best_traces_simulated_once_each(tmp_path):
    """Online errors record no traces: each new best point is simulated once here for
    the dashboard."""
    from storage_helpers import MODEL
    db = tmp_path / "fit.db"
    fitter = make_fitter(db, model=MODEL)
    fitter.fit(n_rounds=2, online_error=True, **BOUNDS)
    stored = query(db, "SELECT COUNT(DISTINCT round) FROM best_traces")[0][0]
    assert 1 <= stored <= 2
    assert query(db, "SELECT COUNT(*) FROM recordings") == [(2,)]


def test_how_a_fit_ended_is_recorded(tmp_path):
    db = tmp_path / "fit.db"
    fitter = make_fitter(db)

    def stop(*args):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fitter.fit(n_rounds=3, callback=stop, **BOUNDS)
    connection, _ = open_for_reading(db)
    status = fit_sessions.study_status(connection, "s")
    assert status.state == fit_sessions.INTERRUPTED and "Ctrl-C" in status.detail

    def fail(*args):
        raise RuntimeError("the callback broke\nsecond line")

    with pytest.raises(RuntimeError):
        fitter.fit(n_rounds=1, callback=fail)
    status = fit_sessions.study_status(connection, "s")
    assert status.state == fit_sessions.INTERRUPTED
    assert status.detail == "RuntimeError: the callback broke"
    connection.close()


def test_a_killed_fit_reads_as_interrupted_and_a_live_one_as_running(tmp_path):
    from modelfit_core.results.database import open_for_writing, transaction
    db = tmp_path / "fit.db"
    make_fitter(db).fit(n_rounds=1, **BOUNDS)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    writer = open_for_writing(db)
    with transaction(writer):  # what a fit killed in its rounds leaves
        session = fit_sessions.begin(writer, "s")
        writer.execute("INSERT INTO leases VALUES ('s', 't', ?, ?, NULL, 0, 0)",
                       (gone.pid, os.uname().nodename))
    connection, _ = open_for_reading(db)
    status = fit_sessions.study_status(connection, "s")
    assert status.state == fit_sessions.INTERRUPTED and "killed" in status.detail
    with transaction(writer):
        writer.execute("UPDATE leases SET pid = ?", (os.getpid(),))
    assert fit_sessions.study_status(connection, "s").state == fit_sessions.RUNNING
    with transaction(writer):
        fit_sessions.end(writer, session, *fit_sessions.ending_of(None))
        writer.execute("DELETE FROM leases")
    assert fit_sessions.study_status(connection, "s").state == fit_sessions.FINISHED
    connection.close()
    writer.close()


def test_a_version_2_database_is_read_as_it_is_and_migrated_when_written(tmp_path):
    db = tmp_path / "old.db"
    make_fitter(db).fit(n_rounds=2, **BOUNDS)
    connection = sqlite3.connect(db)
    with connection:  # what modelfit wrote before the dashboard
        for table in (*ADDED_IN_3, *TABLES_ADDED_IN_4, *TABLES_ADDED_IN_5):
            connection.execute(f"DROP TABLE {table}")
        for table, columns in ADDED_IN_4.items():
            for column in columns:
                connection.execute(f"ALTER TABLE {table} DROP COLUMN {column.split()[0]}")
        connection.execute("PRAGMA user_version = 2")
    connection.close()
    reader, version = open_for_reading(db)
    assert version == 2
    assert display_tables.read_details(reader, "s") == {}
    assert display_tables.read_recordings(reader, "s") == ([], 0)
    assert display_tables.traced_points(reader, "s") == []
    assert fit_sessions.study_status(reader, "s").state == fit_sessions.ENDED
    reader.close()
    assert query(db, "PRAGMA user_version") == [(2,)]  # reading changed nothing
    resumed = make_fitter(db)
    resumed.fit(n_rounds=3, resume=True, **BOUNDS)
    assert query(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert len(read_results(db, "s")) == 3 * 8
    assert query(db, "SELECT COUNT(*) FROM recordings") == [(2,)]


# -- fit(dashboard=...) ----------------------------------------------------------------------
def test_dashboard_arguments_are_checked_before_any_simulation(tmp_path, monkeypatch):
    from modelfit_core.contracts.errors import UnknownPluginError
    from dashboard_studies import passive_fitter
    from modelfit_core import Pipeline
    from modelfit_core.registry.plugin_registry import Registry
    without_storage = passive_fitter(Pipeline.from_names(
        feedback=None, registry=Registry(distributions=["modelfit-brian2"])))
    with_storage = make_fitter(tmp_path / "b.db")
    for fitter in (without_storage, with_storage):
        monkeypatch.setattr(type(fitter.problem), "prepared",
                            lambda *a, **k: pytest.fail("simulated"))
    with pytest.raises(ConfigurationError, match="storage='sqlite:///fit.db'"):
        without_storage.fit(dashboard=True, **BOUNDS)
    with pytest.raises(UnknownPluginError, match="dashboard"):
        with_storage.fit(dashboard="nope", **BOUNDS)
    with pytest.raises(ArgumentTypeError, match="dashboard must be True"):
        with_storage.fit(dashboard=3, **BOUNDS)
