"""SQLite storage of a fit: every evaluated parameter set, streamed as computed.

``storage="sqlite:///fit.db"`` (or a plain path) and ``study="name"`` on a
fitter or a Pipeline. Each finished round is written in one transaction before
it joins the fit's history in memory, so a fit stopped at any moment (Ctrl-C,
SIGKILL) loses at most the round in flight and resumes exactly with
``fit(..., resume=True)``. The database is in WAL mode: other processes can
read a running fit (``read_results``, ``modelfit results``).

Nothing in a database is unpickled unless asked for (``pickle_optimizer``): a
resumed fit rebuilds its optimizer by replaying the stored rounds (see
:mod:`modelfit_core.fitting.replay`). A study belongs to one running fit at a
time (:mod:`~modelfit_core.results.study_lease`); the file's schema is checked
when it is opened (:mod:`~modelfit_core.results.database`).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import sqlite3
import time
import uuid
import warnings
import weakref
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, FitStateError, StorageError
from modelfit_core.contracts.protocols import NormalEquations
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.results import (display_tables, fit_sessions, round_workers, stored_rows,
                                   study_lease)
from modelfit_core.results.database import (database_path, open_for_reading, open_for_writing,
                                            storage_errors, table_columns, transaction)
from modelfit_core.results.history import History, RoundRecord
from modelfit_core.results.study_description import StudyDescription, dimension_from_json

__all__ = ["FitStore", "StoredStudy", "StudyDescription", "database_path", "list_studies",
           "read_history", "read_results", "read_round_records"]


@attrs.frozen
class StoredStudy:
    """What :meth:`FitStore.load_for_resume` finds: enough to continue the fit."""

    records: list
    """The stored rounds (:class:`RoundRecord`), in order."""
    next_iteration: int
    """Value of the model's ``iteration`` variable in the next round."""
    optimizer_rounds: int
    """The ``rounds`` the optimizer was first initialized with."""
    optimizer: Any = None
    """The unpickled optimizer, only with ``pickle_optimizer=True`` (else None)."""


def _finite_or_none(value: float):
    return float(value) if np.isfinite(value) else None


class FitStore:
    """One study of one database, written by one fitter.

    Parameters
    ----------
    url : str or Path
        ``sqlite:///fit.db`` or a path.
    study : str
        Name of the study (one fit); several studies can share a database.
    pickle_optimizer : bool
        Also store the pickled optimizer with every round, and resume from it
        instead of replaying the rounds: for optimizers that cannot be replayed
        (not deterministic). Only for databases you trust: unpickling runs code.
        Off by default: then nothing pickled is written or ever loaded.
    lease_timeout : float
        Seconds without a written round after which a fit on another host is
        considered gone and its study can be taken over (default 600).
    """

    def __init__(self, url: str | Path, study: str = "default", *,
                 pickle_optimizer: bool = False,
                 lease_timeout: float = study_lease.LEASE_TIMEOUT_S):
        self.url, self.study = str(url), str(study)
        self.path = database_path(url)
        self.pickle_optimizer = bool(pickle_optimizer)
        self.lease_timeout = float(lease_timeout)
        self.token = uuid.uuid4().hex
        self.connection = open_for_writing(self.path)
        # closed when the store is collected, or at the latest when the interpreter
        # exits (even if the store sits in a reference cycle that no collection reaches):
        # SQLite then folds its -wal file back into the database and removes it
        self._closer = weakref.finalize(self, self.connection.close)
        self._new_study: tuple[StudyDescription, bool] | None = None
        self._run_id: str | None = None
        self._stored = 0
        self._warned_pickle = False

    @property
    def location(self) -> str:
        """``url#study``, as the ``modelfit_checkpoint_written`` hook reports it."""
        return f"{self.url}#{self.study}"

    def _errors(self, action: str):
        return storage_errors(self.path, f"{action} (study {self.study!r})")

    def n_rounds(self) -> int:
        """Rounds stored in this study."""
        with self._errors("counting rounds"):
            row = self.connection.execute("SELECT COUNT(*) FROM rounds WHERE study = ?",
                                          (self.study,)).fetchone()
        return int(row[0])

    def _refuse_existing(self, existing: int) -> ConfigurationError:
        return ConfigurationError(
            f"Study {self.study!r} in {self.path} already holds {existing} rounds. Pass "
            f"resume=True to continue it, restart=True to overwrite it, or another study= "
            f"name.")

    # -- before the rounds: checks only ---------------------------------------------------
    def start(self, description: StudyDescription, restart: bool) -> None:
        """Plan a new study: checked now (a stored study needs ``restart``, a running fit
        keeps its study), written when the rounds begin (:meth:`session`)."""
        with self._errors("checking the study"):
            study_lease.check_free(self.connection, self.study, self.token, self.path,
                                   self.lease_timeout)
        existing = self.n_rounds()
        if existing and not restart:
            raise self._refuse_existing(existing)
        self._new_study = (description, bool(restart))

    def load_for_resume(self, description: StudyDescription) -> StoredStudy:
        """The stored rounds of a study that ``description`` continues.

        Raises
        ------
        StorageError
            The study was fitted differently (each difference listed), or
            another running fit holds it.
        FitStateError
            There is no such study to resume.
        """
        with self._errors("reading the study to resume"):
            self.connection.execute("BEGIN")  # one snapshot of study, rounds and lease
            try:
                study_lease.check_free(self.connection, self.study, self.token, self.path,
                                       self.lease_timeout)
                cursor = self.connection.execute("SELECT * FROM studies WHERE name = ?",
                                                 (self.study,))
                values = cursor.fetchone()
                if values is None:
                    raise FitStateError(
                        f"Nothing to resume: there is no study {self.study!r} in {self.path} "
                        f"(it holds {', '.join(map(repr, self._names())) or 'none'}). Run "
                        f"fit() without resume=True to start it.")
                stored = dict(zip([c[0] for c in cursor.description], values))
                with stored_rows.damaged_rows(self.path, self.study), stored_rows.located("studies row"):
                    decoded = stored_rows.study_columns(stored)
                differences = description.differences(stored)
                if differences:
                    raise StorageError(
                        f"Study {self.study!r} in {self.path} holds another fit; resuming "
                        f"needs the same one. Differences:\n  - " + "\n  - ".join(differences)
                        + "\nResume with the arguments of the stored fit, or start a new "
                        "study: another study= name, or restart=True to overwrite this one.")
                with stored_rows.damaged_rows(self.path, self.study):
                    records = read_round_records(self.connection, self.study)
                state = self.connection.execute(
                    "SELECT optimizer_state FROM rounds WHERE study = ? ORDER BY round DESC "
                    "LIMIT 1", (self.study,)).fetchone() if self.pickle_optimizer else None
            finally:
                self.connection.execute("COMMIT")
        optimizer = None
        if state is not None and state[0] is not None:
            try:  # the caller opted in: pickle_optimizer=True
                optimizer = pickle.loads(state[0])
            except Exception as exc:  # noqa: BLE001 - whatever a damaged pickle raises
                raise StorageError(
                    f"The optimizer stored with the last round of study {self.study!r} in "
                    f"{self.path} cannot be unpickled ({type(exc).__name__}: {exc}). Resume "
                    f"without pickle_optimizer to replay the stored rounds instead.") from exc
        self._run_id, self._stored, self._new_study = stored["run_id"], len(records), None
        next_iteration = (records[-1].iteration + 1 if records
                          else decoded["first_iteration"])
        return StoredStudy(records=records, next_iteration=next_iteration,
                           optimizer_rounds=decoded["optimizer_rounds"],
                           optimizer=optimizer)

    def _names(self) -> list[str]:
        return [row[0] for row in self.connection.execute("SELECT name FROM studies")]

    # -- while the rounds run ---------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, display=None):
        """Own the study while the rounds run (the ``persist`` of ``run_rounds``).

        On entry the study's lease is taken (a stale one is taken over) and a
        planned new study is written, or the study is checked to be still the one
        this fitter continues; it yields :meth:`write_round`; on exit, normal or
        not, the lease is given back and how the rounds ended is recorded.

        ``display`` (a :class:`~modelfit_core.fitting.fit_display.FitDisplay`, or
        None) supplies what the dashboard draws: the study's details and
        recordings, written on entry, and the traces of each round's new best
        point, written with the round.
        """
        with self._errors("starting the rounds"), transaction(self.connection):
            study_lease.take(self.connection, self.study, self.token, self.path,
                             self.lease_timeout)
            if self._new_study is not None:
                self._write_new_study(*self._new_study)
            else:
                self._check_unchanged()
            if display is not None:
                display.write_study(self.connection, self.study)
            session = fit_sessions.begin(self.connection, self.study)
        ending = fit_sessions.ending_of(None)
        try:
            yield self.write_round if display is None else (
                lambda record, optimizer: self.write_round(record, optimizer, display))
        except BaseException as exc:
            ending = fit_sessions.ending_of(exc)
            raise
        finally:
            self._release(session, ending)

    def display_session(self, display):
        """:meth:`session` writing what the dashboard draws (``KeepsDisplayData``)."""
        return self.session(display=display)

    def _write_new_study(self, description: StudyDescription, restart: bool) -> None:
        existing = self.connection.execute("SELECT COUNT(*) FROM rounds WHERE study = ?",
                                           (self.study,)).fetchone()[0]
        if existing and not restart:
            raise self._refuse_existing(existing)
        for table, key in (("evaluations", "study"), ("rounds", "study"),
                           ("normal_equations", "study"), ("round_workers", "study"),
                           ("studies", "name")):
            self.connection.execute(f"DELETE FROM {table} WHERE {key} = ?", (self.study,))
        display_tables.delete_display(self.connection, self.study)
        row = {"name": self.study, "run_id": uuid.uuid4().hex, "created": time.time(),
               **description.row()}
        self.connection.execute(f"INSERT INTO studies ({', '.join(row)}) VALUES "
                                f"({', '.join('?' * len(row))})", tuple(row.values()))
        self._run_id, self._stored, self._new_study = row["run_id"], 0, None

    def _check_unchanged(self) -> None:
        row = self.connection.execute("SELECT run_id FROM studies WHERE name = ?",
                                      (self.study,)).fetchone()
        count = self.connection.execute("SELECT COUNT(*) FROM rounds WHERE study = ?",
                                        (self.study,)).fetchone()[0]
        if row is None or row[0] != self._run_id or count != self._stored:
            raise StorageError(
                f"Study {self.study!r} in {self.path} was changed by another process since "
                f"this fitter last wrote it (restarted, deleted or written to). Resume it "
                f"with fit(resume=True) to continue from what it holds now, or use another "
                f"study= name.")

    def write_round(self, record: RoundRecord, optimizer, display=None) -> str:
        """Store a finished round (what each worker did, if a distributed backend said;
        the pickled optimizer, if asked; the traces of a new best point, if ``display``
        gives them) in one transaction; returns :attr:`location`."""
        state = self._pickled(optimizer) if self.pickle_optimizer else None
        best_traces = display.best_traces(record) if display is not None else None
        told = record.told_errors if record.told_errors is not None else record.errors
        several = bool(record.objectives)
        rows = [(self.study, record.index, k, json.dumps(record.parameters[k].tolist()),
                 _finite_or_none(record.errors[k]), int(record.diverged[k]),
                 json.dumps({n: _finite_or_none(v[k])
                             for n, v in record.objective_errors.items()}),
                 None if several else float(told[k]),
                 json.dumps([_finite_or_none(v[k]) for v in record.objectives.values()])
                 if several else None,
                 json.dumps(np.asarray(told[k], dtype=float).tolist()) if several else None)
                for k in range(len(record.errors))]
        try:
            with self._errors(f"writing round {record.index}"), transaction(self.connection):
                study_lease.refresh(self.connection, self.study, self.token, self.path,
                                    self.lease_timeout)
                self.connection.executemany(
                    "INSERT INTO evaluations (study, round, sample, parameters, error, "
                    "diverged, objective_errors, told, objectives, told_objectives) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                if record.normal_equations is not None:
                    write_normal_equations(self.connection, self.study, record.index,
                                           record.normal_equations)
                if record.workers:
                    round_workers.write_round_workers(self.connection, self.study,
                                                      record.index, record.workers)
                self.connection.execute(
                    "INSERT INTO rounds VALUES (?, ?, ?, ?, ?, ?)",
                    (self.study, record.index, time.time(), record.duration_s,
                     int(record.iteration), state))
                if best_traces is not None:
                    display_tables.write_best_traces(self.connection, self.study,
                                                     record.index, *best_traces)
        except StorageError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise StorageError(
                    f"Round {record.index} of study {self.study!r} is already in {self.path}: "
                    f"another process wrote this study. Nothing was overwritten; resume "
                    f"with fit(resume=True) to continue from what it holds.") from exc
            raise
        self._stored += 1
        return self.location

    def _pickled(self, optimizer) -> bytes | None:
        try:
            return pickle.dumps(optimizer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # user optimizers need not be picklable
            if not self._warned_pickle:
                warnings.warn(f"The optimizer {optimizer!r} cannot be pickled ({exc}); "
                              f"resuming will replay the stored rounds instead.",
                              RuntimeWarning, stacklevel=3)
                self._warned_pickle = True
            return None

    def _release(self, session: int, ending: tuple[str, str]) -> None:
        try:
            with transaction(self.connection):
                study_lease.release(self.connection, self.study, self.token)
                fit_sessions.end(self.connection, session, *ending)
        except sqlite3.Error as exc:  # never hide why the rounds ended
            warnings.warn(f"Could not release study {self.study!r} in {self.path} ({exc}); "
                          f"it becomes free when this process ends.", RuntimeWarning,
                          stacklevel=3)

    def close(self) -> None:
        """Close the database connection (also done at exit)."""
        self._closer()


def write_normal_equations(connection: sqlite3.Connection, study: str, index: int,
                           normal: NormalEquations) -> None:
    """Store the normal equations told with round ``index`` (float64, row-major)."""
    jtj = np.ascontiguousarray(normal.jtj, dtype="<f8")
    jtr = np.ascontiguousarray(normal.jtr, dtype="<f8")
    connection.execute("INSERT INTO normal_equations VALUES (?, ?, ?, ?, ?, ?)",
                       (study, index, jtr.shape[0], jtr.shape[1], jtj.tobytes(),
                        jtr.tobytes()))


def read_normal_equations(connection: sqlite3.Connection,
                          study: str) -> dict[int, NormalEquations]:
    """Round -> the normal equations it told (none in databases before version 4)."""
    tables = {row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "normal_equations" not in tables:
        return {}
    found = {}
    for index, n, p, jtj, jtr in connection.execute(
            "SELECT round, n_samples, n_parameters, jtj, jtr FROM normal_equations "
            "WHERE study = ?", (study,)):
        with stored_rows.located(f"normal_equations row (round {index!r})"):
            index = stored_rows.integer(index, "round", 0)
            n = stored_rows.integer(n, "n_samples", 0)
            p = stored_rows.integer(p, "n_parameters", 1)
            if not isinstance(jtj, bytes) or len(jtj) != 8 * n * p * p:
                raise stored_rows.DamagedRow(f"jtj is not {n}x{p}x{p} float64 numbers")
            if not isinstance(jtr, bytes) or len(jtr) != 8 * n * p:
                raise stored_rows.DamagedRow(f"jtr is not {n}x{p} float64 numbers")
            found[index] = NormalEquations(
                jtj=np.frombuffer(jtj, dtype="<f8").reshape(n, p, p).astype(float),
                jtr=np.frombuffer(jtr, dtype="<f8").reshape(n, p).astype(float))
    return found


# -- reading ------------------------------------------------------------------------------
def read_round_records(connection: sqlite3.Connection, study: str) -> list[RoundRecord]:
    """The stored rounds as :class:`~modelfit_core.results.history.RoundRecord` objects.

    Raises
    ------
    stored_rows.DamagedRow
        A row holds what modelfit never writes (see :func:`stored_rows.damaged_rows`).
    """
    durations = {}
    for index, duration, iteration in connection.execute(
            "SELECT round, duration_s, iteration FROM rounds WHERE study = ?", (study,)):
        where = f"rounds row (round {index!r})"
        with stored_rows.located(where):
            durations[stored_rows.integer(index, "round", 0)] = (
                stored_rows.number(duration, "duration_s"),
                stored_rows.integer(iteration, "iteration"))
    columns = table_columns(connection, "evaluations")
    told = "told" if "told" in columns else "NULL"
    several = ", objectives, told_objectives" if "objectives" in columns else ", NULL, NULL"
    objective_names = objective_names_of(connection, study)
    width = stored_rows.parameter_count(connection, study)
    rows = connection.execute(
        f"SELECT round, sample, parameters, error, diverged, objective_errors, {told}"
        f"{several} FROM evaluations WHERE study = ? AND round IN (SELECT round FROM rounds "
        f"WHERE study = ?) ORDER BY round, sample", (study, study)).fetchall()
    by_round: dict[int, list] = {}
    for index, sample, *entry in rows:
        with stored_rows.located(f"evaluations row (round {index!r}, sample {sample!r})"):
            stored_rows.integer(sample, "sample", 0)
            by_round.setdefault(stored_rows.integer(index, "round", 0), []).append(
                stored_rows.evaluation(entry, width, objective_names, told != "NULL"))
    records = []
    normal_equations = read_normal_equations(connection, study)
    workers = round_workers.read_round_workers(connection, study)
    for index in sorted(by_round):
        entries = by_round[index]
        names = list(entries[0]["objective_errors"])
        if any(list(e["objective_errors"]) != names for e in entries):
            raise stored_rows.DamagedRow(
                f"the evaluations of round {index} name different outputs in "
                f"objective_errors")
        told_errors = None if told == "NULL" else np.array(
            [np.nan if e["told"] is None else e["told"] for e in entries], dtype=float)
        objectives = {}
        if objective_names:
            values = np.array([e["objectives"] for e in entries], dtype=float)
            objectives = {n: values[:, j] for j, n in enumerate(objective_names)}
            told_errors = np.array([e["told_objectives"] for e in entries], dtype=float)
        duration, iteration = durations.get(index, (0.0, 0))
        records.append(RoundRecord(
            index=index,
            parameters=np.array([e["parameters"] for e in entries], dtype=float)
            .reshape(len(entries), width),
            errors=np.array([e["error"] for e in entries], dtype=float),
            diverged=np.array([e["diverged"] for e in entries]),
            objective_errors={n: np.array([np.inf if e["objective_errors"][n] is None
                                           else e["objective_errors"][n] for e in entries])
                              for n in names},
            duration_s=duration, told_errors=told_errors, iteration=iteration,
            objectives=objectives, normal_equations=normal_equations.get(index),
            workers=workers.get(index, ())))
    return records


def objective_names_of(connection: sqlite3.Connection, study: str) -> tuple[str, ...]:
    """The objectives of a multi-objective study (empty for one error, or a database
    older than schema version 2)."""
    if "objective_names" not in table_columns(connection, "studies"):
        return ()
    row = connection.execute("SELECT objective_names FROM studies WHERE name = ?",
                             (study,)).fetchone()
    if row is None or not row[0]:
        return ()
    with stored_rows.located("studies row"):
        return tuple(stored_rows.names(row[0], "objective_names", empty=True))


@contextlib.contextmanager
def _reading(url: str | Path, action: str):
    path = database_path(url)
    connection, _ = open_for_reading(path)
    try:
        with storage_errors(path, action):
            yield connection, path
    finally:
        connection.close()


def list_studies(url: str | Path) -> list[str]:
    """Names of the studies in a database, oldest first."""
    with _reading(url, "listing its studies") as (connection, _):
        return [row[0] for row in connection.execute("SELECT name FROM studies "
                                                     "ORDER BY created")]


def read_history(url: str | Path, study: str | None = None) -> History:
    """A :class:`~modelfit_core.results.history.History` rebuilt from a database (read-only,
    safe while another process is still writing it).

    Parameters
    ----------
    url : str or Path
        ``sqlite:///fit.db`` or a path; a read-only file or folder is fine.
    study : str, optional
        Default: the most recent study.
    """
    with _reading(url, "reading a study") as (connection, path):
        names = [r[0] for r in connection.execute("SELECT name FROM studies "
                                                  "ORDER BY created DESC")]
        if study is None:
            if not names:
                raise StorageError(f"{path} holds no study yet.")
            study = str(names[0])
        with stored_rows.damaged_rows(path, study):
            stored = _study_row(connection, study)
            if stored is None:
                raise StorageError(f"No study {study!r} in {path}; it holds "
                                   f"{', '.join(map(repr, names)) or 'none'}.")
            with stored_rows.located("studies row"):
                columns = stored_rows.study_columns(stored)
            space = ParameterSpace(
                names=tuple(columns["parameter_names"]),
                dims=tuple(dimension_from_json(u) for u in columns["parameter_units"]),
                lower=np.array(columns["lower"], dtype=float),
                upper=np.array(columns["upper"], dtype=float))
            history = History(space=space,
                              error_dim=dimension_from_json(stored["error_unit"]))
            for record in read_round_records(connection, study):
                history.add(record)
        return history


def _study_row(connection: sqlite3.Connection, study: str) -> dict[str, Any] | None:
    cursor = connection.execute("SELECT * FROM studies WHERE name = ?", (study,))
    values = cursor.fetchone()
    return None if values is None else dict(zip([c[0] for c in cursor.description], values))




def read_results(url: str | Path, study: str | None = None, format: str = "list",
                 use_units: bool = True):
    """``results()`` of a stored study, in the same formats as ``Fitter.results``."""
    return read_history(url, study).results(format=format, use_units=use_units)
