"""What each worker of a distributed backend did in each round, stored (schema version 5,
``round_workers``) and read back: by ``read_history`` and resume (strict: a damaged row
is a StorageError naming it), and by the dashboard (bounded, damaged rows left out and
counted); databases of version 4 read as they are and migrated when written."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
from brian2 import farad, siemens, volt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelfit_core import StorageError
from modelfit_core.contracts.protocols import WorkerActivity
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.results import database, round_workers
from modelfit_core.results.history import RoundRecord
from modelfit_core.results.storage import FitStore, read_history, read_results
from modelfit_core.results.study_description import StudyDescription
from storage_helpers import damaged_copy, query

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
LARGEST = 2 ** 63 - 1


def description():
    space = ParameterSpace(names=("gl", "C"), dims=(siemens.dim, farad.dim),
                           lower=np.array([1e-9, 1e-11]), upper=np.array([1e-7, 5e-10]))
    return StudyDescription(space=space, n_samples=3, error_dim=(volt ** 2).dim,
                            output_names=("v",), optimizer="opt", metric="mse")


def write_rounds(path, workers_of_rounds, study="s", first=0, resume=False):
    """Rounds of three evaluations, each with the given worker activity (no simulation)."""
    store = FitStore(path, study)
    if resume:
        store.load_for_resume(description())
    else:
        store.start(description(), restart=False)
    with store.session() as write:
        for k, workers in enumerate(workers_of_rounds):
            errors = np.array([1.0, 2.0, 3.0]) + k
            write(RoundRecord(index=first + k, parameters=np.array([[2e-9, 2e-11]] * 3),
                              errors=errors, diverged=np.zeros(3, bool),
                              objective_errors={"v": errors}, told_errors=errors,
                              iteration=first + k, duration_s=1.0,
                              workers=tuple(workers)), None)
    store.close()
    return path


def resumed_records(path, study="s"):
    store = FitStore(path, study)
    try:
        return store.load_for_resume(description()).records
    finally:
        store.close()


# -- what is written reads back exactly ----------------------------------------------------
ACTIVITY = st.builds(WorkerActivity, worker=st.text(max_size=round_workers.MAX_WORKER_NAME),
                     busy_s=st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),
                     n_samples=st.integers(0, LARGEST), chunks=st.integers(0, LARGEST))
# one entry per worker, in the order of their names: what a distributed backend reports
ONE_ROUND = st.lists(ACTIVITY, max_size=5, unique_by=lambda w: w.worker).map(
    lambda workers: tuple(sorted(workers, key=lambda w: w.worker)))


@FAST
@given(rounds=st.lists(ONE_ROUND, min_size=1, max_size=3))
def test_any_worker_activity_round_trips_exactly(rounds):
    with tempfile.TemporaryDirectory() as folder:
        path = write_rounds(Path(folder) / "fit.db", rounds)
        assert [r.workers for r in read_history(path).rounds] == rounds
        assert [r.workers for r in resumed_records(path)] == rounds
        # one row per round and worker; none for a round without workers
        assert query(path, "SELECT COUNT(*) FROM round_workers") == [
            (sum(len(r) for r in rounds),)]


def test_what_no_worker_could_report_is_made_storable_and_never_stops_the_fit(tmp_path):
    long_a, long_b = "a" * 5000, "a" * 4999 + "b"
    workers = [WorkerActivity(long_a, 1.0, 1, 1), WorkerActivity(long_b, 2.0, 2, 1),
               WorkerActivity("tcp://x", 0.25, 3, 1), WorkerActivity("tcp://x", 0.5, 4, 2),
               WorkerActivity("\udc80 surrogate", 0.1, 1, 1),
               WorkerActivity("nan", float("nan"), 1, 1), WorkerActivity("neg", -1.0, 1, 1),
               WorkerActivity("count", 1.0, -1, 1), WorkerActivity("huge", 1.0, 2 ** 70, 1),
               WorkerActivity("text", "1.0", 1, 1),  # type: ignore[arg-type]
               WorkerActivity("numpy", np.float32(0.5), np.int64(7), np.int32(1))]
    path = write_rounds(tmp_path / "fit.db", [workers])
    (record,) = read_history(path).rounds
    by_name = {w.worker: w for w in record.workers}
    shortened = [name for name in by_name if name.startswith("aaaa")]
    assert len(shortened) == 2 and all(len(n) == round_workers.MAX_WORKER_NAME
                                       for n in shortened)
    assert by_name["tcp://x"] == WorkerActivity("tcp://x", 0.75, 7, 3)  # added up
    assert "\\udc80 surrogate" in by_name  # escaped: valid UTF-8
    assert by_name["numpy"] == WorkerActivity("numpy", 0.5, 7, 1)
    assert not {"nan", "neg", "count", "huge", "text"} & set(by_name)


# -- hostile rows --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_db(tmp_path_factory):
    return write_rounds(tmp_path_factory.mktemp("workers") / "fit.db", [
        (WorkerActivity("tcp://a", 0.9, 2, 1), WorkerActivity("tcp://b", 0.8, 1, 1)),
        (WorkerActivity("tcp://a", 0.7, 1, 1), WorkerActivity("tcp://b", 0.6, 2, 1))])


HOSTILE_VALUES = (st.text(max_size=30) | st.binary(max_size=20)
                  | st.integers(-2 ** 63, 2 ** 63 - 1) | st.floats() | st.none()
                  | st.sampled_from(["x" * 10_000, "<script>alert(1)</script>", "1e400",
                                     "NaN", -0.0, 1e308, True]))


@FAST
@given(column=st.sampled_from(["round", "worker", "busy_s", "n_samples", "chunks"]),
       value=HOSTILE_VALUES)
def test_a_damaged_worker_row_reads_correctly_or_is_a_storage_error(good_db, column, value):
    with tempfile.TemporaryDirectory() as folder:
        path = damaged_copy(good_db, Path(folder) / "fit.db", "round_workers", column, value)
        if path is None:
            return  # a constraint refused the garbage: nothing to read
        try:
            history = read_history(path)
        except StorageError as exc:
            assert str(path) in str(exc) and "round_workers row" in str(exc)
        else:  # read: what modelfit writes
            for record in history.rounds:
                for worker in record.workers:
                    assert isinstance(worker.worker, str)
                    assert len(worker.worker) <= round_workers.MAX_WORKER_NAME
                    assert np.isfinite(worker.busy_s) and worker.busy_s >= 0
                    assert worker.n_samples >= 0 and worker.chunks >= 0
        with contextlib.suppress(StorageError):
            resumed_records(path)
        connection, _ = database.open_for_reading(path)
        try:  # the dashboard's reading leaves the row out and counts it
            rows, unreadable, more = round_workers.read_worker_activity(connection, "s")
        finally:
            connection.close()
        assert len(rows) + unreadable <= 4 and not more
        assert all(isinstance(w.worker, str) and len(w.worker) <= round_workers.MAX_WORKER_NAME
                   for _, w in rows)


def test_a_damaged_worker_row_is_named(good_db, tmp_path):
    path = tmp_path / "fit.db"
    shutil.copy(good_db, path)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE round_workers SET worker = ? WHERE round = 1 AND "
                           "worker = 'tcp://b'", ("w" * 1000,))
    connection.close()
    with pytest.raises(StorageError) as info:
        read_history(path)
    for words in (str(path), "study 's'", "round_workers row (round 1, worker 'www",
                  "1000 characters"):
        assert words in str(info.value)
    connection, _ = database.open_for_reading(path)
    rows, unreadable, more = round_workers.read_worker_activity(connection, "s")
    connection.close()
    assert (len(rows), unreadable, more) == (3, 1, False)


def test_the_dashboards_reading_is_one_bounded_range_of_the_primary_key(good_db):
    connection, _ = database.open_for_reading(good_db)
    try:
        rows, unreadable, more = round_workers.read_worker_activity(connection, "s", limit=3)
        assert len(rows) == 3 and more and unreadable == 0
        assert [r for r, _ in round_workers.read_worker_activity(connection, "s", 0, 1)[0]] \
            == [1, 1]
        plan = " ".join(str(row[-1]) for row in connection.execute(
            "EXPLAIN QUERY PLAN SELECT round, worker, busy_s, n_samples, chunks FROM "
            "round_workers WHERE study = ? AND round > ? AND round <= ? ORDER BY round, "
            "worker LIMIT ?", ("s", -1, 5, 10)))
        assert "USING INDEX sqlite_autoindex_round_workers_1" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort: the index's order
    finally:
        connection.close()


# -- older databases -----------------------------------------------------------------------
def test_a_version_4_database_is_read_as_it_is_and_migrated_when_written(good_db, tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(good_db, path)
    with sqlite3.connect(path) as connection:  # what modelfit wrote before version 5
        for table in database.TABLES_ADDED_IN_5:
            connection.execute(f"DROP TABLE {table}")
        connection.execute("PRAGMA user_version = 4")
    connection.close()
    assert [r.workers for r in read_history(path).rounds] == [(), ()]
    connection, version = database.open_for_reading(path)
    assert version == 4
    assert round_workers.read_worker_activity(connection, "s") == ([], 0, False)
    connection.close()
    assert query(path, "PRAGMA user_version") == [(4,)]  # reading changed nothing
    write_rounds(path, [(WorkerActivity("tcp://c", 0.5, 3, 1),)], first=2, resume=True)
    assert query(path, "PRAGMA user_version") == [(database.SCHEMA_VERSION,)]
    assert [r.workers for r in read_history(path).rounds] == [
        (), (), (WorkerActivity("tcp://c", 0.5, 3, 1),)]
    assert len(read_results(path)) == 9
    # a version-5 file without the table is not modelfit's schema
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE round_workers")
    connection.close()
    with pytest.raises(StorageError, match="round_workers"):
        read_history(path)


def test_a_restarted_study_forgets_its_workers(good_db, tmp_path):
    path = tmp_path / "fit.db"
    shutil.copy(good_db, path)
    store = FitStore(path, "s")
    store.start(description(), restart=True)
    with store.session():
        pass
    store.close()
    assert query(path, "SELECT COUNT(*) FROM round_workers") == [(0,)]


# -- a real fit on dask --------------------------------------------------------------------
@pytest.mark.slow
def test_a_dask_fit_stores_what_each_worker_did(tmp_path):
    pytest.importorskip("distributed")
    pytest.importorskip("starlette", reason="the dashboard extra is not installed")
    from modelfit_core import NevergradOptimizer
    from modelfit_plugins.dashboard import plot_data
    from modelfit_plugins.dashboard.study_reader import DatabaseReader
    from test_dask_asynchronous import BOUNDS, REGISTRY, fitter_on
    db = tmp_path / "dask.db"
    backend = REGISTRY.lookup("backends", "dask")(n_workers=2, chunks_per_worker=2)
    try:
        fitter = fitter_on(backend, storage=f"sqlite:///{db}", study="dask")
        fitter.fit(n_rounds=2, optimizer=NevergradOptimizer(seed=1), callback=None, **BOUNDS)
        in_memory = [r.workers for r in fitter.current_fit.history.rounds]
    finally:
        backend.shutdown()
    stored = [r.workers for r in read_history(db, "dask").rounds]
    assert stored == in_memory and all(stored)
    for workers in stored:
        assert sum(w.n_samples for w in workers) == 30 and sum(w.chunks for w in workers) == 2
        assert all(w.worker.startswith("tcp://") and w.busy_s > 0 for w in workers)
    # the dashboard sends it
    reader = DatabaseReader(db)
    with reader.connection() as connection:
        cache = reader.cache(connection, "dask")
    panel = plot_data.workers_plot(cache.workers, cache.round_times)
    assert panel is not None and panel["round"] == [0, 1] and panel["chunks"] == 4
    names = sorted({w.worker for workers in stored for w in workers})
    assert [w["name"] for w in panel["workers"]] == names
    assert all(0 < share <= 1 for row in panel["share"] for share in row if share is not None)
