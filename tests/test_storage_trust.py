"""A fit database is safe to open, holds one fit per study, and fails clearly.

* resuming never unpickles the database (the optimizer is rebuilt by replaying
  the stored rounds), unless the store was created with pickle_optimizer=True;
* resuming checks that it continues the same fit and lists every difference;
* one running fit owns a study (a lease): a second writer fails, a dead
  owner's lease is taken over;
* broken, foreign, newer, read-only or missing databases: tests/test_storage_files.py.
"""

import os
import pickle
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from brian2 import ms, nS

from modelfit_core import StorageError
from modelfit_core.results import study_lease
from modelfit_core.results.database import transaction
from modelfit_core.results.storage import FitStore, read_history, read_results

from storage_helpers import (BOUNDS, MODEL, execute, make_fitter, query, run_worker,
                             stored_rounds, wait_for_rounds, worker_command)


class TouchFile:
    """A pickle that creates a file when loaded: what a crafted database could hold."""

    def __init__(self, path):
        self.path = Path(path)

    def __reduce__(self):
        return (Path.touch, (self.path,))


def keep_first_rounds(db, study, count):
    """What a fit interrupted after ``count`` rounds leaves (no lease: it ended)."""
    execute(db, *[(f"DELETE FROM {table} WHERE study = ? AND round >= ?", (study, count))
                  for table in ("evaluations", "rounds")])


def plant_pickle(db, study, blob):
    execute(db, ("UPDATE rounds SET optimizer_state = ? WHERE study = ?", (blob, study)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 4-round fit: its database and its result."""
    db = tmp_path_factory.mktemp("reference") / "ref.db"
    return db, run_worker(db, "s", 4)


# -- 1. nothing is unpickled without the opt-in ---------------------------------------------
def test_resume_replays_the_rounds_and_never_loads_a_pickle(reference, tmp_path):
    ref_db, ref_best = reference
    marker = tmp_path / "pwned"
    blob = pickle.dumps(TouchFile(marker))
    canary = tmp_path / "canary"
    pickle.loads(pickle.dumps(TouchFile(canary)))
    assert canary.exists()  # the blob is really dangerous when unpickled
    db = tmp_path / "crafted.db"
    shutil.copy(ref_db, db)
    keep_first_rounds(db, "s", 2)
    plant_pickle(db, "s", blob)
    resumed = run_worker(db, "s", 4, "--resume")
    assert not marker.exists()
    assert resumed == ref_best
    assert read_results(db, "s", format="dataframe").equals(
        read_results(ref_db, "s", format="dataframe"))
    # nothing pickled is written without the opt-in either
    assert query(db, "SELECT COUNT(*) FROM rounds WHERE optimizer_state IS NOT NULL "
                     "AND round >= 2")[0][0] == 0


def test_pickle_opt_in_stores_and_loads_the_optimizer(reference, tmp_path):
    ref_db, ref_best = reference
    db = tmp_path / "pickled.db"
    run_worker(db, "s", 4, "--pickle")
    assert query(db, "SELECT COUNT(*) FROM rounds WHERE optimizer_state IS NULL")[0][0] == 0
    keep_first_rounds(db, "s", 2)
    assert run_worker(db, "s", 4, "--resume", "--pickle") == ref_best
    # what the opt-in means: a pickle in the database is loaded (here: it runs code)
    marker = tmp_path / "loaded"
    keep_first_rounds(db, "s", 2)
    plant_pickle(db, "s", pickle.dumps(TouchFile(marker)))
    run_worker(db, "s", 4, "--resume", "--pickle")  # (the blob loads as None: replayed)
    assert marker.exists()


def test_an_optimizer_that_does_not_replay_is_refused(reference, tmp_path):
    ref_db, _ = reference
    db = tmp_path / "fit.db"
    shutil.copy(ref_db, db)
    keep_first_rounds(db, "s", 2)
    # the stored points say otherwise than the optimizer: as an unseeded one would
    execute(db, ("UPDATE evaluations SET parameters = '[2e-08, 1e-10]' "
                 "WHERE study = 's' AND round = 1 AND sample = 3",))
    failed = run_worker(db, "s", 4, "--resume", expect_success=False)
    assert "StorageError" in failed.stderr and "replaying round 1" in failed.stderr
    assert "pickle_optimizer=True" in failed.stderr and "seed" in failed.stderr


# -- 2. resuming checks that it is the same fit ----------------------------------------------
def test_resume_lists_every_difference_before_simulating(tmp_path):
    db = tmp_path / "fit.db"
    make_fitter(db).fit(n_rounds=1, **BOUNDS)
    changed = make_fitter(db, model=MODEL.replace("+ I)/C", "+ 2*I)/C"), seed=12,
                          n_samples=6, metric_options={"t_start": 1 * ms})
    bounds = {"gl": [1 * nS, 50.000001 * nS], "C": BOUNDS["C"]}
    with pytest.raises(StorageError) as info:
        changed.fit(n_rounds=2, resume=True, **bounds)
    message = str(info.value)
    for expected in ("model", "metric: stored 'MSEMetric()'", "t_start", "n_samples: stored 8, "
                     "now 6", "optimizer seed: stored 11, now 12",
                     "bounds of gl (SI): stored [1e-09, 5.0000000000000004e-08], now "
                     "[1e-09, 5.0000001e-08]",
                     str(db), "'s'", "restart=True", "study="):
        assert expected in message, (expected, message)
    assert changed.simulator is None  # refused before anything was prepared or simulated
    # nanosiemens matter: a change far below np.allclose's tolerance is still a change
    tiny = {"gl": [1 * nS, 50.00000001 * nS], "C": BOUNDS["C"]}
    with pytest.raises(StorageError, match="bounds of gl"):
        make_fitter(db).fit(n_rounds=2, resume=True, **tiny)
    # the same fit resumes
    best, _ = make_fitter(db).fit(n_rounds=2, resume=True, **BOUNDS)
    assert len(read_history(db, "s").rounds) == 2


def test_resume_of_a_missing_study_says_how_to_start(tmp_path):
    with pytest.raises(Exception, match="Nothing to resume") as info:
        make_fitter(tmp_path / "fit.db").fit(n_rounds=1, resume=True, **BOUNDS)
    assert "resume=True" in str(info.value)


# -- 3. one running fit per study ---------------------------------------------------------
def test_two_writers_started_together_never_lose_a_run(tmp_path):
    db = tmp_path / "fit.db"
    processes = [subprocess.Popen(worker_command(db, "s", 8, "--sleep", 0.5),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    codes = [process.returncode for process in processes]
    assert sorted(codes) != [0, 0] and 0 in codes, outputs
    winner = codes.index(0)
    loser_err = outputs[1 - winner][1]
    assert "StorageError" in loser_err and "is being fitted by process" in loser_err
    assert f"process {processes[winner].pid} on host" in loser_err and str(db) in loser_err
    frame = read_results(db, "s", format="dataframe")
    assert len(frame) == 8 * 30 and sorted(frame["round"].unique()) == list(range(8))
    assert query(db, "SELECT COUNT(*) FROM leases")[0][0] == 0  # released at the end


def test_a_killed_fits_lease_is_taken_over_by_resume(tmp_path):
    db = tmp_path / "fit.db"
    process = subprocess.Popen(worker_command(db, "s", 6, "--sleep", 0.4),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_rounds(process, db, "s", 2)
    assert query(db, "SELECT pid FROM leases WHERE study = 's'") == [(process.pid,)]
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()  # reaps it and closes its pipes
    assert query(db, "SELECT pid FROM leases WHERE study = 's'") == [(process.pid,)]
    run_worker(db, "s", 6, "--resume")
    assert stored_rounds(db, "s") == 6
    assert query(db, "SELECT COUNT(*) FROM leases")[0][0] == 0


def put_lease(db, study, pid, host, heartbeat):
    execute(db, ("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (study, "other-token", pid, host, None, heartbeat, heartbeat)))


def test_a_lease_elsewhere_is_respected_until_its_heartbeat_is_old(tmp_path):
    db = tmp_path / "fit.db"
    store = FitStore(db, "s", lease_timeout=60)
    put_lease(db, "s", 4242, "another-host", time.time() - 30)
    with pytest.raises(StorageError, match="process 4242 on host another-host") as info:
        with transaction(store.connection):
            study_lease.take(store.connection, "s", store.token, store.path, 60)
    assert str(db) in str(info.value) and "'s'" in str(info.value)
    put_lease(db, "s", 4242, "another-host", time.time() - 120)  # older than the timeout
    with transaction(store.connection):
        study_lease.take(store.connection, "s", store.token, store.path, 60)
    assert query(db, "SELECT token, pid FROM leases") == [(store.token, os.getpid())]
    # a live process on this host keeps its lease whatever its heartbeat's age
    put_lease(db, "s", os.getppid(), __import__("socket").gethostname(), 0.0)
    with pytest.raises(StorageError, match=f"process {os.getppid()}"):
        with transaction(store.connection):
            study_lease.take(store.connection, "s", store.token, store.path, 60)
    store.close()


def test_rows_are_never_silently_replaced(tmp_path):
    db = tmp_path / "fit.db"
    reference = make_fitter(tmp_path / "ref.db")
    reference.fit(n_rounds=4, **BOUNDS)
    fitter = make_fitter(db)
    fitter.fit(n_rounds=4, callback=lambda *args: args[4] == 1, **BOUNDS)  # stops after 2
    # another process wrote a row of the next round behind this fitter's back
    stray = ("INSERT INTO evaluations SELECT study, 2, sample, parameters, error, diverged, "
             "objective_errors, told, objectives, told_objectives FROM evaluations WHERE "
             "round = 1 AND sample = 0",)
    execute(db, stray)
    with pytest.raises(StorageError, match="Round 2 of study 's' is already in"):
        fitter.fit(n_rounds=2, **BOUNDS)
    assert len(fitter.history.rounds) == 2  # memory never holds what the disk lacks
    assert query(db, "SELECT COUNT(*) FROM evaluations WHERE round = 2") == [(1,)]
    execute(db, ("DELETE FROM evaluations WHERE round = 2",))
    # the optimizer was told the lost round: the next fit() replays the history into it
    fitter.fit(n_rounds=2, **BOUNDS)
    assert fitter.results(format="dataframe").equals(reference.results(format="dataframe"))
    # a whole round appended elsewhere: this fitter no longer continues the stored study
    execute(db, ("INSERT INTO rounds SELECT study, 4, finished, duration_s, iteration, "
                 "NULL FROM rounds WHERE round = 3",))
    with pytest.raises(StorageError, match="changed by another process"):
        fitter.fit(n_rounds=1, **BOUNDS)
    assert len(fitter.history.rounds) == 4
