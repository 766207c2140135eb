"""Unusable fit databases fail clearly: broken, foreign, newer, read-only or missing
databases are StorageErrors naming the file, from the Python API and from the
command line; the schema carries a version (tests/test_storage_trust.py covers
resume, pickles and leases).
"""

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest

from modelfit_core import ConfigurationError, StorageError
from modelfit_core.results.database import APPLICATION_ID, SCHEMA_VERSION, open_for_writing
from modelfit_core.results.storage import FitStore, list_studies, read_history, read_results
from modelfit_core.tools.cli import main

from config_project import passive_config, write_project
from storage_helpers import BOUNDS, execute, make_fitter, query, run_worker, stored_rounds


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


CONFIG = passive_config(n_samples=8, n_rounds=1, output_dir=None)


def test_modelfit_fit_reports_a_corrupted_database(tmp_path, capsys):
    currents = np.zeros((2, 300))
    currents[:, 30:] = [[0.1e-9], [0.3e-9]]
    write_project(tmp_path, CONFIG, currents, np.full((2, 300), -70.0))
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


# -- closing ------------------------------------------------------------------------------
def test_a_store_collected_in_another_thread_closes_its_database(tmp_path):
    """The store's finalizer runs in whichever thread collects it (a dask or tqdm thread,
    say): closing there works, and SQLite folds its -wal file back into the database."""
    import threading

    path = tmp_path / "fit.db"
    store = FitStore(path, "s")
    assert path.with_name("fit.db-wal").exists()
    failures = []

    def close_here():
        try:
            store.close()
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    thread = threading.Thread(target=close_here)
    thread.start()
    thread.join()
    assert failures == []
    assert not path.with_name("fit.db-wal").exists()
    assert list_studies(path) == []
