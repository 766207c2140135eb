"""A fit database is safe to open, holds one fit per study, and fails clearly.

* resuming never unpickles the database (the optimizer is rebuilt by replaying
  the stored rounds), unless the store was created with pickle_optimizer=True;
* resuming checks that it continues the same fit and lists every difference;
* one running fit owns a study (a lease): a second writer fails, a dead
  owner's lease is taken over;
* broken, foreign, newer, read-only or missing databases are StorageErrors
  naming the file, from the Python API and from the command line.
"""

import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from brian2 import amp, mV, ms, nS, pF

from modelfit_core import ConfigurationError, Pipeline, StorageError
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.results import study_lease
from modelfit_core.results.database import (APPLICATION_ID, SCHEMA_VERSION, open_for_writing,
                                            transaction)
from modelfit_core.results.storage import FitStore, list_studies, read_history, read_results
from modelfit_core.tools.cli import main

from storage_helpers import (query, run_worker, stored_rounds, wait_for_rounds,
                             worker_command)

MODEL = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
"""
BOUNDS = {"gl": [1 * nS, 50 * nS], "C": [50 * pF, 500 * pF]}


class TouchFile:
    """A pickle that creates a file when loaded: what a crafted database could hold."""

    def __init__(self, path):
        self.path = Path(path)

    def __reduce__(self):
        return (Path.touch, (self.path,))


def execute(db, *statements):
    """Run ``(sql, parameters)`` statements in one transaction, then close (the last
    connection to close also folds the -wal file into the database)."""
    connection = sqlite3.connect(db)
    try:
        with connection:
            for sql, *parameters in statements:
                connection.execute(sql, *parameters)
    finally:
        connection.close()


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
def make_fitter(db, model=MODEL, seed=11, metric="mse", n_samples=8, **options):
    t = np.arange(300) * 1e-4
    currents = np.zeros((2, 300))
    currents[:, 30:] = [[0.1e-9], [0.3e-9]]
    v = -70e-3 + currents / 10e-9 * (1 - np.exp(-np.clip(t - 3e-3, 0, None) / 20e-3))
    pipe = Pipeline.from_names(seed=seed, feedback=None, metric=metric, storage=str(db),
                               study="s", registry=Registry(distributions=["modelfit-brian2"]),
                               **options)
    return pipe.trace_fitter(model=model, input={"I": currents * amp},
                             output={"v": v * 1e3 * mV}, dt=0.1 * ms, n_samples=n_samples,
                             param_init={"v": -70 * mV}, namespace={"El": -70 * mV})


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
    assert changed.simulation is None  # refused before anything was prepared or simulated
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
    process.wait()
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


# -- 5. unusable databases ------------------------------------------------------------------
def real_database(path):
    run_worker(path, "s", 1)
    execute(path)  # no -wal or -shm file left behind
    return path


def truncated(path):
    real_database(path)
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)


def random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(20000))


def text_file(path):
    path.write_text("gl,C,error\n1,2,3\n" * 100)


def foreign_schema(path):
    execute(path, ("CREATE TABLE customers (id INTEGER, name TEXT)",))


def missing_column(path):
    open_for_writing(path).close()
    execute(path, ("ALTER TABLE evaluations DROP COLUMN told",))


def newer_version(path):
    open_for_writing(path).close()
    execute(path, ("PRAGMA user_version = 99",))


def other_application(path):
    execute(path, ("PRAGMA application_id = 1234",), ("CREATE TABLE studies (name TEXT)",))


BROKEN = {
    "truncated": (truncated, "corrupted"),
    "random bytes": (random_bytes, "not an SQLite database"),
    "text file": (text_file, "not an SQLite database"),
    "foreign schema": (foreign_schema, "customers"),
    "missing column": (missing_column, "lacks told"),
    "newer version": (newer_version, "schema version 99"),
    "other application": (other_application, "another application"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_unusable_databases_are_storage_errors_naming_the_file(kind, tmp_path, capsys):
    make, words = BROKEN[kind]
    db = tmp_path / "fit.db"
    make(db)
    before = db.read_bytes()
    attempts = {"FitStore": lambda: FitStore(db, "s"),
                "read_history": lambda: read_history(db, "s"),
                "read_results": lambda: read_results(db),
                "list_studies": lambda: list_studies(db),
                "fit(resume=True)": lambda: make_fitter(db).fit(n_rounds=1, resume=True,
                                                                **BOUNDS)}
    for what, attempt in attempts.items():
        with pytest.raises(StorageError) as info:
            attempt()
        assert str(db) in str(info.value), (what, str(info.value))
        assert words in str(info.value), (what, str(info.value))
    assert db.read_bytes() == before  # nothing was written to someone else's file
    capsys.readouterr()
    assert main(["results", str(db)]) == 2
    err = capsys.readouterr().err
    assert str(db) in err and words in err and "Traceback" not in err


def test_newer_version_names_found_and_supported(tmp_path):
    db = tmp_path / "fit.db"
    newer_version(db)
    with pytest.raises(StorageError) as info:
        read_history(db)
    assert "version 99" in str(info.value) and f"version {SCHEMA_VERSION}" in str(info.value)
    assert "Upgrade modelfit" in str(info.value)


def legacy_database(path):
    """A database written before the schema had a version (schema 0)."""
    connection = sqlite3.connect(path)
    with connection:
        connection.executescript("""
            CREATE TABLE studies (name TEXT PRIMARY KEY, created REAL NOT NULL,
                parameter_names TEXT NOT NULL, parameter_units TEXT NOT NULL,
                lower TEXT NOT NULL, upper TEXT NOT NULL, n_samples INTEGER NOT NULL,
                error_unit TEXT NOT NULL, output_names TEXT NOT NULL, optimizer TEXT NOT NULL,
                metric TEXT NOT NULL);
            CREATE TABLE evaluations (study TEXT NOT NULL, round INTEGER NOT NULL,
                sample INTEGER NOT NULL, parameters TEXT NOT NULL, error REAL,
                diverged INTEGER NOT NULL, objective_errors TEXT NOT NULL,
                PRIMARY KEY (study, round, sample));
            CREATE TABLE rounds (study TEXT NOT NULL, round INTEGER NOT NULL,
                finished REAL NOT NULL, duration_s REAL NOT NULL, iteration INTEGER NOT NULL,
                optimizer_state BLOB, PRIMARY KEY (study, round));
        """)
        siemens = '"[-2.0, -1.0, 3.0, 2.0, 0.0, 0.0, 0.0]"'
        volt2 = "[4.0, 2.0, -6.0, -2.0, 0.0, 0.0, 0.0]"
        connection.execute("INSERT INTO studies VALUES ('old', 0, '[\"gl\"]', ?, '[1e-09]', "
                           "'[5e-08]', 2, ?, '[\"v\"]', 'opt', 'metric')",
                           (f"[{siemens}]", volt2))
        connection.execute("INSERT INTO rounds VALUES ('old', 0, 0, 0.1, 1, NULL)")
        for sample, (gl, error) in enumerate([(2e-9, 3.0), (3e-9, 1.5)]):
            connection.execute("INSERT INTO evaluations VALUES ('old', 0, ?, ?, ?, 0, ?)",
                               (sample, f"[{gl}]", error, f'{{"v": {error}}}'))
    connection.close()


def test_version_0_databases_are_read_but_never_written(tmp_path, capsys):
    db = tmp_path / "old.db"
    legacy_database(db)
    history = read_history(db)
    assert history.best_error == 1.5 and float(history.best_vector[0]) == 3e-9
    assert main(["results", str(db)]) == 0
    with pytest.raises(StorageError, match="schema version 0") as info:
        FitStore(db, "old")
    assert "read_results" in str(info.value) and "new file" in str(info.value)


# -- read-only and missing ------------------------------------------------------------------
def test_a_read_only_database_file_is_read_but_not_written(tmp_path, capsys):
    db = real_database(tmp_path / "fit.db")
    db.chmod(0o444)
    with pytest.raises(StorageError, match="read-only") as info:
        make_fitter(db)
    assert str(db) in str(info.value)
    assert len(read_results(db, "s")) == 30  # one round of a DE population
    assert main(["results", str(db)]) == 0


@pytest.fixture
def shared_folder():
    """A folder others can enter (pytest's tmp_path is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="modelfit-ro-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder)


def rows_read_as_nobody(db) -> str:
    """``read_results`` in a forked child that became user nobody, whom a read-only
    folder really refuses (root writes anywhere); its answer, or its error."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(reader)
            os.setgid(65534)
            os.setuid(65534)
            answer = str(len(read_results(db, "s", format="dataframe")))
        except BaseException as exc:
            answer = f"{type(exc).__name__}: {exc}"
        os.write(writer, answer.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    return answer


def test_a_study_in_a_read_only_folder_is_readable(shared_folder, capsys):
    folder = shared_folder / "results"
    folder.mkdir()
    db = real_database(folder / "fit.db")
    db.chmod(0o644)
    folder.chmod(0o555)
    with pytest.raises(StorageError, match="folder .* is read-only"):
        FitStore(db, "s")
    assert len(read_results(db, "s", format="dataframe")) == 30  # one round of a DE population
    assert main(["results", str(db), "--study", "s"]) == 0
    assert "best error" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["fit.db"]  # no -wal/-shm left
    if os.geteuid() == 0:
        assert rows_read_as_nobody(db) == "30"
        assert sorted(p.name for p in folder.iterdir()) == ["fit.db"]


def test_a_missing_database_or_folder_is_a_storage_error(tmp_path, capsys):
    for db in (tmp_path / "nowhere" / "fit.db", tmp_path / "fit.db"):
        for attempt in (lambda: read_history(db), lambda: read_results(db),
                        lambda: list_studies(db)):
            with pytest.raises(StorageError, match="No fit database at") as info:
                attempt()
            assert str(db) in str(info.value)
        assert main(["results", str(db)]) == 2
        assert str(db) in capsys.readouterr().err
        assert not db.exists()  # reading never creates a database


def test_a_missing_study_is_named_with_those_stored(tmp_path):
    db = real_database(tmp_path / "fit.db")
    with pytest.raises(StorageError, match="No study 'other'.*'s'"):
        read_history(db, "other")


CONFIG = """
[model]
equations = '''
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
'''
param_init = { v = "-70*mV" }
constants = { El = "-70*mV" }

[data]
input = "input.csv"
input_variable = "I"
input_unit = "amp"
output = "output.csv"
output_variable = "v"
output_unit = "mV"
dt = "0.1*ms"

[fit]
n_samples = 8
n_rounds = 1
seed = 2
storage = "sqlite:///fit.db"
study = "passive"
feedback = "text"

[bounds]
gl = ["1*nS", "50*nS"]
C = ["50*pF", "500*pF"]
"""


def test_modelfit_fit_reports_a_corrupted_database(tmp_path, capsys):
    currents = np.zeros((2, 300))
    currents[:, 30:] = [[0.1e-9], [0.3e-9]]
    pd.DataFrame(currents).to_csv(tmp_path / "input.csv")
    pd.DataFrame(np.full((2, 300), -70.0)).to_csv(tmp_path / "output.csv")
    (tmp_path / "fit.toml").write_text(CONFIG)
    random_bytes(tmp_path / "fit.db")
    assert main(["fit", str(tmp_path / "fit.toml")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "fit.db") in err and "not an SQLite database" in err
    assert "Traceback" not in err


def test_new_databases_carry_the_schema_version(tmp_path):
    db = tmp_path / "fit.db"
    FitStore(db, "s").close()
    assert query(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert query(db, "PRAGMA application_id") == [(APPLICATION_ID,)]


def test_an_existing_study_is_refused_without_restart(tmp_path):
    db = tmp_path / "fit.db"
    make_fitter(db).fit(n_rounds=1, **BOUNDS)
    with pytest.raises(ConfigurationError, match="resume=True"):
        make_fitter(db).fit(n_rounds=1, **BOUNDS)
    make_fitter(db).fit(n_rounds=2, restart=True, **BOUNDS)
    assert stored_rounds(db, "s") == 2
