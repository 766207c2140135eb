"""The SQLite file behind a study: where it is, how it is opened, what it must hold.

Every way a database can be unusable (missing, not SQLite, corrupted, read-only,
of another schema or a newer modelfit) becomes a
:class:`~modelfit_core.contracts.errors.StorageError` that names the file and
says what to do; :func:`storage_errors` turns SQLite's own errors into one.

The schema carries a version (``PRAGMA user_version``) and modelfit's
``PRAGMA application_id``. Version 5 is written and read. Versions 4 (before
each round recorded what the workers of a distributed backend did), 3 (before
the gradient optimizer's normal equations and before studies recorded their
data's identity), 2 (before the dashboard's tables) and 1 (before multi-objective
fits) are read as they are, and brought to version 5 when opened for writing
(tables and columns added, nothing else changed: their studies read, resume and
continue as before; what the new tables and columns hold is then missing for
what was already stored, so a study started before version 4 resumes without
its data being checked, and rounds stored before version 5 have no worker
activity). Version 0 (databases written before the schema had a version) is
read only (``read_results``, ``modelfit results``): it lacks what resuming
safely needs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
from pathlib import Path
from urllib.parse import quote

from modelfit_core.contracts.errors import ConfigurationError, StorageError

SCHEMA_VERSION = 5
"""The version this modelfit writes (``PRAGMA user_version``)."""
PREVIOUS_VERSION = 1
"""Databases before multi-objective fits: read as they are, migrated when written."""
MIGRATED_VERSIONS = (1, 2, 3, 4)
"""Earlier versions read as they are and brought to :data:`SCHEMA_VERSION` when written."""
LEGACY_VERSION = 0
"""Databases written before the schema had a version: read, never written."""
APPLICATION_ID = 0x4D464954
"""``PRAGMA application_id`` of modelfit databases ("MFIT")."""
BUSY_TIMEOUT_S = 30.0

TABLES = {
    "studies": """
        name TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        created REAL NOT NULL,
        model TEXT NOT NULL,
        parameter_names TEXT NOT NULL,
        parameter_units TEXT NOT NULL,
        lower TEXT NOT NULL,
        upper TEXT NOT NULL,
        n_samples INTEGER NOT NULL,
        error_unit TEXT NOT NULL,
        output_names TEXT NOT NULL,
        optimizer_class TEXT NOT NULL,
        optimizer TEXT NOT NULL,
        optimizer_seed TEXT NOT NULL,
        optimizer_rounds INTEGER NOT NULL,
        first_iteration INTEGER NOT NULL,
        metric TEXT NOT NULL,
        objective_names TEXT NOT NULL DEFAULT '[]',
        data_identity TEXT NOT NULL DEFAULT ''""",
    "evaluations": """
        study TEXT NOT NULL,
        round INTEGER NOT NULL,
        sample INTEGER NOT NULL,
        parameters TEXT NOT NULL,
        error REAL,
        diverged INTEGER NOT NULL,
        objective_errors TEXT NOT NULL,
        told REAL,
        objectives TEXT,
        told_objectives TEXT,
        PRIMARY KEY (study, round, sample)""",
    "rounds": """
        study TEXT NOT NULL,
        round INTEGER NOT NULL,
        finished REAL NOT NULL,
        duration_s REAL NOT NULL,
        iteration INTEGER NOT NULL,
        optimizer_state BLOB,
        PRIMARY KEY (study, round)""",
    "leases": """
        study TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        process_start TEXT,
        acquired REAL NOT NULL,
        heartbeat REAL NOT NULL""",
    # what the dashboard draws (version 3; see results/display_tables.py, fit_sessions.py)
    "study_details": """
        study TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (study, key)""",
    "sessions": """
        study TEXT NOT NULL,
        started REAL NOT NULL,
        ended REAL,
        outcome TEXT,
        message TEXT,
        pid INTEGER,
        host TEXT""",
    "recordings": """
        study TEXT NOT NULL,
        output TEXT NOT NULL,
        trace INTEGER NOT NULL,
        steps BLOB,
        data BLOB NOT NULL,
        PRIMARY KEY (study, output, trace)""",
    "best_traces": """
        study TEXT NOT NULL,
        round INTEGER NOT NULL,
        sample INTEGER NOT NULL,
        output TEXT NOT NULL,
        trace INTEGER NOT NULL,
        steps BLOB,
        data BLOB NOT NULL,
        PRIMARY KEY (study, round, sample, output, trace)""",
    # what a gradient optimizer was told besides the errors (version 4)
    "normal_equations": """
        study TEXT NOT NULL,
        round INTEGER NOT NULL,
        n_samples INTEGER NOT NULL,
        n_parameters INTEGER NOT NULL,
        jtj BLOB NOT NULL,
        jtr BLOB NOT NULL,
        PRIMARY KEY (study, round)""",
    # what each worker of a distributed backend did in a round (version 5)
    "round_workers": """
        study TEXT NOT NULL,
        round INTEGER NOT NULL,
        worker TEXT NOT NULL,
        busy_s REAL NOT NULL,
        n_samples INTEGER NOT NULL,
        chunks INTEGER NOT NULL,
        PRIMARY KEY (study, round, worker)""",
}
"""The tables of schema version 5 and their columns."""

TABLES_ADDED_IN_5 = ("round_workers",)
"""The table version 5 adds to version 4: what each worker of a distributed backend
(dask) did in each round (``RoundRecord.workers``: seconds busy, parameter sets,
chunks), written with the round; none for single-process backends."""

ADDED_IN_4 = {"studies": ("data_identity TEXT NOT NULL DEFAULT ''",)}
"""The column version 4 adds to version 3: what the fit's data were (a content hash of
each recording, dt, the namespace's values, t_start/t_weights), as JSON; '' for
studies written before (their data cannot be checked on resume)."""
TABLES_ADDED_IN_4 = ("normal_equations",)
"""The table version 4 adds to version 3: the normal equations (JᵀJ and Jᵀr of every
point, float64) each round told a gradient optimizer, which resuming tells again."""

ADDED_IN_3 = ("study_details", "sessions", "recordings", "best_traces")
"""The tables version 3 adds to version 2: what the dashboard shows besides the
evaluations (the fit's backend and time step, how each fit() call ended, the
recordings and the best points' simulated traces, decimated for display)."""

ADDED_IN_2 = {"studies": ("objective_names TEXT NOT NULL DEFAULT '[]'",),
              "evaluations": ("objectives TEXT", "told_objectives TEXT")}
"""The columns version 2 adds to version 1: with several objectives, each evaluation's
objective values and the values told to the optimizer (JSON lists), and the
objectives' names (NULL and '[]' for a single objective)."""

LEGACY_COLUMNS = {
    "studies": {"name", "created", "parameter_names", "parameter_units", "lower", "upper",
                "n_samples", "error_unit", "output_names", "optimizer", "metric"},
    "evaluations": {"study", "round", "sample", "parameters", "error", "diverged",
                    "objective_errors"},
    "rounds": {"study", "round", "finished", "duration_s", "iteration", "optimizer_state"},
}
"""What readers need of a version-0 database."""


def _columns(definition: str) -> set[str]:
    names = set()
    for line in definition.strip().splitlines():
        word = line.strip().split()[0]
        if word != "PRIMARY":
            names.add(word)
    return names


COLUMNS = {table: _columns(definition) for table, definition in TABLES.items()}
VERSION_4_COLUMNS = {table: columns for table, columns in COLUMNS.items()
                     if table not in TABLES_ADDED_IN_5}
VERSION_3_COLUMNS = {table: columns - {c.split()[0] for c in ADDED_IN_4.get(table, ())}
                     for table, columns in VERSION_4_COLUMNS.items()
                     if table not in TABLES_ADDED_IN_4}
VERSION_2_COLUMNS = {table: columns for table, columns in VERSION_3_COLUMNS.items()
                     if table not in ADDED_IN_3}
PREVIOUS_COLUMNS = {table: columns - {c.split()[0] for c in ADDED_IN_2.get(table, ())}
                    for table, columns in VERSION_2_COLUMNS.items()}
COLUMNS_OF_VERSION = {SCHEMA_VERSION: COLUMNS, 4: VERSION_4_COLUMNS, 3: VERSION_3_COLUMNS,
                      2: VERSION_2_COLUMNS, PREVIOUS_VERSION: PREVIOUS_COLUMNS}
"""What each version written by modelfit holds (its tables and their columns)."""


def database_path(url: str | Path) -> Path:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or a plain path -> Path."""
    text = str(url)
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///"):])
    if "://" in text:
        raise ConfigurationError(f"Unsupported storage URL {text!r}; use "
                                 f"'sqlite:///path/to/fit.db' or a file path.")
    return Path(text)


def _path_problem(path: Path) -> str | None:
    """Why ``path`` cannot name a file at all (a NUL character, a name too long for the
    file system), or None; asked before any other check, which would raise OSError."""
    if "\x00" in str(path):
        return "the path holds a NUL character"
    try:
        os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ENAMETOOLONG, errno.ENOTDIR, errno.ELOOP):
            return exc.strerror
    return None


def _check_nameable(path: Path) -> None:
    problem = _path_problem(path)
    if problem is not None:
        raise StorageError(f"{_short_path(path)} cannot be a fit database: {problem}. Give "
                           f"storage= another path.")


def _short_path(path: Path) -> str:
    text = repr(str(path))
    return text if len(text) <= 120 else text[:117] + "..."


def _advice(message: str) -> str:
    lowered = message.lower()
    if "not a database" in lowered:
        return ("is not an SQLite database (or its header was overwritten). Check the "
                "path; to fit, give storage= a new file")
    if "malformed" in lowered or "corrupt" in lowered or "short read" in lowered:
        return ("is corrupted (truncated or overwritten). Restore it from a copy, or give "
                "storage= a new file to start again")
    if "readonly" in lowered or "read-only" in lowered:
        return ("is read-only. Make the file and its folder writable, or give storage= a "
                "writable location")
    if "locked" in lowered or "busy" in lowered:
        return (f"stayed locked by another process for more than {BUSY_TIMEOUT_S:.0f} s. "
                f"Try again when the other fit has written its round")
    if "unable to open" in lowered:
        return ("cannot be opened (a missing folder, or no permission). Check the path and "
                "its permissions")
    if "disk" in lowered and "full" in lowered:
        return "cannot be written: the disk is full"
    return "cannot be used"


@contextlib.contextmanager
def storage_errors(path: Path, action: str):
    """SQLite's errors inside the block become a :class:`StorageError` naming ``path``."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(f"The fit database {path} {_advice(str(exc))} (SQLite: {exc}, "
                           f"while {action}).") from exc


def _marked_read_only(path: Path) -> bool:
    """No write permission bit, or no write access: read-only even for root, who could
    write anyway, so that a file or folder marked read-only is never changed."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) \
        or not os.access(path, os.W_OK)


def _check_readable(path: Path) -> None:
    _check_nameable(path)
    if not path.exists():
        where = "its folder does not exist" if not path.parent.exists() else "no such file"
        raise StorageError(f"No fit database at {path} ({where}). Check the path; a fit "
                           f"writes one with storage='sqlite:///{path}'.")
    if path.is_dir():
        raise StorageError(f"{path} is a folder, not a fit database file.")
    if not stat.S_ISREG(path.stat().st_mode):
        raise StorageError(f"{path} is not a regular file (a FIFO, a device or a socket), "
                           f"so not a fit database; give the path of a fit database file.")
    if not os.access(path, os.R_OK):
        raise StorageError(f"The fit database {path} is not readable (permissions); make "
                           f"it readable or copy it somewhere readable.")


def _uri(path: Path, **options: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"file:{quote(str(path.resolve()))}?{query}"


def open_for_reading(path: Path) -> tuple[sqlite3.Connection, int]:
    """A read-only connection to a checked modelfit database, and its schema version.

    In WAL mode even a reader needs to create ``-shm``/``-wal`` files next to the
    database; in a folder that cannot (or must not) be written, the database is
    opened as immutable: it is then read as it is on disk, without the rounds a
    fit still running elsewhere holds in its ``-wal`` file.
    """
    _check_readable(path)
    wal = Path(f"{path}-wal")
    frozen = _marked_read_only(path.parent) and not (wal.exists() and wal.stat().st_size)
    options = {"mode": "ro", "immutable": "1"} if frozen else {"mode": "ro"}
    with storage_errors(path, "opening it to read"):
        try:
            return _checked_reader(path, options)
        except sqlite3.OperationalError:
            if frozen:
                raise
            # a folder on read-only media or owned by someone else: no -shm possible
            return _checked_reader(path, {"mode": "ro", "immutable": "1"})


def _checked_reader(path: Path, options: dict) -> tuple[sqlite3.Connection, int]:
    connection = sqlite3.connect(_uri(path, **options), uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        version = check_schema(connection, path, writing=False)
        if version is None:
            raise StorageError(f"{path} is an empty database: it holds no study yet. Check "
                               f"the path (a fit writes its study when its first round "
                               f"starts).")
    except BaseException:
        connection.close()
        raise
    return connection, version


def open_for_writing(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) to a database of the
    current schema, created if the file is new or empty."""
    _check_nameable(path)
    if path.exists() and not path.is_dir() and not stat.S_ISREG(path.stat().st_mode):
        raise StorageError(f"{path} is not a regular file (a FIFO, a device or a socket); "
                           f"give storage= a file path such as fit.db.")
    if path.is_dir():
        raise StorageError(f"{path} is a folder, not a fit database file; give storage= a "
                           f"file path such as {path / 'fit.db'}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"Cannot create the folder {path.parent} of the fit database "
                           f"{path}: {exc}. Give storage= a writable location.") from exc
    if path.exists() and _marked_read_only(path):
        raise StorageError(f"The fit database {path} is read-only. A fit writes every round "
                           f"to it: make it writable (chmod u+w), or give storage= another "
                           f"file. Reading it needs no write access (modelfit results, "
                           f"read_results).")
    if _marked_read_only(path.parent):
        raise StorageError(f"The folder {path.parent} is read-only, but SQLite needs to "
                           f"create {path.name}-wal and {path.name}-shm next to the fit "
                           f"database {path}. Give storage= a file in a writable folder.")
    with storage_errors(path, "opening it to write"):
        # The store closes this connection from a weakref.finalize, which runs in the
        # thread that happens to collect the store (a dask or tqdm thread, say), or at
        # exit. Python's default check_same_thread=True would make that close raise
        # ProgrammingError and leave the -wal file behind; rounds are still written by
        # one thread only (the fit's), and SQLite's own locking serializes the rest.
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                     check_same_thread=False)
        try:
            # checked before anything is written, so that another application's file
            # is left as it was
            check_schema(connection, path, writing=True)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            with transaction(connection):
                version = check_schema(connection, path, writing=True)
                if version is None:
                    for table, definition in TABLES.items():
                        connection.execute(f"CREATE TABLE {table} ({definition})")
                    connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                elif version in MIGRATED_VERSIONS:
                    if version == PREVIOUS_VERSION:
                        for table, columns in ADDED_IN_2.items():
                            for column in columns:
                                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
                    if version < 3:
                        for table in ADDED_IN_3:
                            connection.execute(f"CREATE TABLE IF NOT EXISTS {table} "
                                               f"({TABLES[table]})")
                    if version < 4:
                        for table in TABLES_ADDED_IN_4:
                            connection.execute(f"CREATE TABLE IF NOT EXISTS {table} "
                                               f"({TABLES[table]})")
                        for table, columns in ADDED_IN_4.items():
                            for column in columns:
                                connection.execute(f"ALTER TABLE {table} ADD COLUMN "
                                                   f"{column}")
                    for table in TABLES_ADDED_IN_5:
                        connection.execute(f"CREATE TABLE IF NOT EXISTS {table} "
                                           f"({TABLES[table]})")
                    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            connection.close()
            raise
    return connection


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection):
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: the write lock is taken at once, so that what
    is read in the block is still true when the block writes."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def table_columns(connection: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}


def check_schema(connection: sqlite3.Connection, path: Path, writing: bool) -> int | None:
    """The schema version of the database, or None when it is empty (no table yet).

    Raises a :class:`StorageError` for another application's database, another
    schema, a newer or unknown version, a table or column missing, or (when
    ``writing``) a version-0 database.
    """
    application = connection.execute("PRAGMA application_id").fetchone()[0]
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    supported = (f"this modelfit writes schema version {SCHEMA_VERSION} and reads versions "
                 f"{LEGACY_VERSION} to {SCHEMA_VERSION}")
    if application not in (0, APPLICATION_ID):
        raise StorageError(f"{path} is another application's SQLite database "
                           f"(application_id {application:#x}), not a fit database. Give "
                           f"storage= another file.")
    if application == 0 and not tables:
        if version != 0:
            raise StorageError(f"{path} is an SQLite database of an unknown schema (version "
                               f"{version}, no tables); {supported}. Give storage= another "
                               f"file.")
        return None
    if application == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise StorageError(f"{path} was written by a newer modelfit (schema version "
                               f"{version}); {supported}. Upgrade modelfit to use it.")
        if version not in COLUMNS_OF_VERSION:
            raise StorageError(f"{path} has an unknown schema version {version}; "
                               f"{supported}.")
        expected = COLUMNS_OF_VERSION[version]
    elif version == 0 and tables >= set(LEGACY_COLUMNS):
        expected = LEGACY_COLUMNS
    elif version == 0 and not tables & set(TABLES):
        raise StorageError(f"{path} is not a fit database: it holds the tables "
                           f"{', '.join(sorted(tables))}. Give storage= another file.")
    else:
        raise StorageError(f"{path} is not a fit database of a known schema (found version "
                           f"{version} with the tables {', '.join(sorted(tables))}); "
                           f"{supported}.")
    for table, columns in expected.items():
        missing = sorted(columns - table_columns(connection, table)) \
            if table in tables else ["(the whole table)"]
        if missing:
            raise StorageError(f"{path} is not a valid fit database of schema version "
                               f"{version}: the table {table!r} lacks {', '.join(missing)}. "
                               f"Was it changed by hand? Give storage= another file.")
    _check_no_foreign_objects(connection, path, version,
                              None if expected is LEGACY_COLUMNS else expected)
    if writing and expected is LEGACY_COLUMNS:
        raise StorageError(f"{path} was written by an earlier modelfit (schema version "
                           f"{LEGACY_VERSION}, before studies recorded what resuming needs); "
                           f"{supported}. Its studies can still be read (read_results, "
                           f"modelfit results); to fit, give storage= a new file.")
    return version if application == APPLICATION_ID else LEGACY_VERSION


def _check_no_foreign_objects(connection: sqlite3.Connection, path: Path, version: int,
                              expected: dict[str, set[str]] | None) -> None:
    """Refuse what modelfit never creates: triggers (they would run SQL of someone
    else's choosing whenever a fit writes), views, indexes, tables, and (for the
    versions modelfit writes, ``expected``) columns. SQLite's own objects
    (``sqlite_*``: automatic indexes, ``sqlite_stat1``) are fine."""
    foreign = []
    for kind, name in connection.execute("SELECT type, name FROM sqlite_master"):
        if str(name).startswith("sqlite_"):
            continue
        if kind != "table" or name not in TABLES:
            foreign.append(f"{kind} {name!r}")
    if expected is not None:
        for table, columns in expected.items():
            extra = sorted(table_columns(connection, table) - columns)
            foreign += [f"column {table}.{column}" for column in extra]
    if foreign:
        raise StorageError(
            f"{path} is not a fit database of modelfit's schema (version {version}): it "
            f"holds what modelfit never creates: {', '.join(foreign)}. Was it changed by "
            f"hand or by another program? Remove them (e.g. DROP TRIGGER) if you trust the "
            f"file, or give storage= another file.")
