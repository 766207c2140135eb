"""SQLite storage of a fit: every evaluated parameter set, streamed as computed.

``storage="sqlite:///fit.db"`` (or a plain path) and ``study="name"`` on a
fitter or a Pipeline. Each finished round is written in one transaction
together with the pickled optimizer state, so a fit killed at any moment
(SIGKILL included) loses at most the round in flight and resumes exactly with
``fit(..., resume=True)``. The database is in WAL mode: other processes can
read a running fit (``read_results``, ``modelfit results``).

The store listens to the lifecycle hooks (``modelfit_round_finished``); the
fitting loop does not know it exists.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_core.contracts.hookspecs import hookimpl
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.results.history import History, RoundRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL,
    parameter_names TEXT NOT NULL,
    parameter_units TEXT NOT NULL,
    lower TEXT NOT NULL,
    upper TEXT NOT NULL,
    n_samples INTEGER NOT NULL,
    error_unit TEXT NOT NULL,
    output_names TEXT NOT NULL,
    optimizer TEXT NOT NULL,
    metric TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    study TEXT NOT NULL,
    round INTEGER NOT NULL,
    sample INTEGER NOT NULL,
    parameters TEXT NOT NULL,
    error REAL,
    diverged INTEGER NOT NULL,
    objective_errors TEXT NOT NULL,
    PRIMARY KEY (study, round, sample)
);
CREATE TABLE IF NOT EXISTS rounds (
    study TEXT NOT NULL,
    round INTEGER NOT NULL,
    finished REAL NOT NULL,
    duration_s REAL NOT NULL,
    iteration INTEGER NOT NULL,
    optimizer_state BLOB,
    PRIMARY KEY (study, round)
);
"""


def database_path(url: str | Path) -> Path:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or a plain path -> Path."""
    text = str(url)
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///"):])
    if "://" in text:
        raise ConfigurationError(f"Unsupported storage URL {text!r}; use "
                                 f"'sqlite:///path/to/fit.db' or a file path.")
    return Path(text)


def connect(url: str | Path, read_only: bool = False) -> sqlite3.Connection:
    path = database_path(url)
    if read_only:
        if not path.exists():
            raise FitStateError(f"No fit database at {path}.")
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(SCHEMA)
    return connection


@attrs.frozen
class StudyDescription:
    """What a study records about its fit when it starts."""

    space: ParameterSpace
    n_samples: int
    error_dim: Any
    output_names: tuple[str, ...]
    optimizer: str
    """``repr()`` of the optimizer."""
    metric: str
    """``repr()`` of the metric."""


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
    """

    def __init__(self, url: str | Path, study: str = "default"):
        self.url, self.study = str(url), str(study)
        self.connection = connect(url)
        self._fitter = None
        self._registry = None
        self._warned_pickle = False

    # -- lifecycle hooks -----------------------------------------------------------
    def attach(self, fitter, registry) -> None:
        """Listen to ``fitter``'s rounds through the hooks of ``registry``."""
        self._fitter = fitter
        self._registry = registry
        registry.register(self, name=f"storage:{id(fitter)}")

    @hookimpl
    def modelfit_round_finished(self, fitter, round_record):
        if fitter is not self._fitter:
            return
        self.write_round(round_record, fitter.optimizer, fitter.iteration)
        self._registry.hook.modelfit_checkpoint_written(
            fitter=fitter, location=f"{self.url}#{self.study}")

    # -- writing -------------------------------------------------------------------
    def n_rounds(self) -> int:
        row = self.connection.execute("SELECT COUNT(*) FROM rounds WHERE study = ?",
                                      (self.study,)).fetchone()
        return int(row[0])

    def start(self, description: StudyDescription, restart: bool) -> None:
        """Record the study's description; a fresh fit must not reuse a stored study."""
        existing = self.n_rounds()
        if existing and not restart:
            raise ConfigurationError(
                f"Study {self.study!r} in {self.url} already holds {existing} rounds. Pass "
                f"resume=True to continue it, restart=True to overwrite it, or another "
                f"study= name.")
        space = description.space
        with self.connection:
            for table in ("evaluations", "rounds", "studies"):
                key = "name" if table == "studies" else "study"
                self.connection.execute(f"DELETE FROM {table} WHERE {key} = ?", (self.study,))
            self.connection.execute(
                "INSERT INTO studies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.study, time.time(), json.dumps(list(space.names)),
                 json.dumps([_unit_text(d) for d in space.dims]),
                 json.dumps(space.lower.tolist()), json.dumps(space.upper.tolist()),
                 description.n_samples, _unit_text(description.error_dim),
                 json.dumps(list(description.output_names)), description.optimizer,
                 description.metric))

    def write_round(self, record: RoundRecord, optimizer, iteration: int) -> None:
        """Store a finished round and the optimizer's state after it, in one transaction."""
        state = None
        try:
            state = pickle.dumps(optimizer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # user optimizers need not be picklable
            if not self._warned_pickle:
                warnings.warn(f"The optimizer {optimizer!r} cannot be pickled ({exc}); "
                              f"rounds are stored but the fit cannot be resumed.",
                              RuntimeWarning, stacklevel=2)
                self._warned_pickle = True
        rows = [(self.study, record.index, k, json.dumps(record.parameters[k].tolist()),
                 _finite_or_none(record.errors[k]), int(record.diverged[k]),
                 json.dumps({n: _finite_or_none(v[k])
                             for n, v in record.objective_errors.items()}))
                for k in range(len(record.errors))]
        with self.connection:  # one transaction: a round is stored whole or not at all
            self.connection.executemany(
                "INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self.connection.execute(
                "INSERT OR REPLACE INTO rounds VALUES (?, ?, ?, ?, ?, ?)",
                (self.study, record.index, time.time(), record.duration_s,
                 int(iteration), state))

    # -- reading -------------------------------------------------------------------
    def load_for_resume(self, space) -> tuple[Any, list, int]:
        """(optimizer, round records, iteration) of the last stored round."""
        description = self.connection.execute(
            "SELECT parameter_names, lower, upper FROM studies WHERE name = ?",
            (self.study,)).fetchone()
        if description is None or self.n_rounds() == 0:
            raise FitStateError(f"Nothing to resume: study {self.study!r} in {self.url} has "
                                f"no stored round. Run fit() without resume=True first.")
        names, lower, upper = (json.loads(v) for v in description)
        if tuple(names) != tuple(space.names) or not (
                np.allclose(lower, space.lower) and np.allclose(upper, space.upper)):
            raise ConfigurationError(f"Study {self.study!r} was fitted with other parameters "
                                     f"or bounds ({names}, {lower}, {upper}); resume needs "
                                     f"the same ones.")
        last, iteration, state = self.connection.execute(
            "SELECT round, iteration, optimizer_state FROM rounds WHERE study = ? "
            "ORDER BY round DESC LIMIT 1", (self.study,)).fetchone()
        if state is None:
            raise FitStateError(f"The optimizer of study {self.study!r} could not be pickled, "
                                f"so the fit cannot resume from {self.url}.")
        return pickle.loads(state), read_round_records(self.connection, self.study), iteration

    def close(self) -> None:
        self.connection.close()


_BASE_UNITS = ("m", "kg", "s", "A", "K", "mol", "cd")


def _unit_text(dim) -> str:
    """Dimensions as JSON exponents of the SI base units (exact, parseable back)."""
    return json.dumps([float(dim.get_dimension(base)) for base in _BASE_UNITS])


def read_round_records(connection, study: str) -> list:
    """The stored rounds as :class:`~modelfit_core.results.history.RoundRecord` objects."""
    durations = dict(connection.execute(
        "SELECT round, duration_s FROM rounds WHERE study = ?", (study,)).fetchall())
    rows = connection.execute(
        "SELECT round, parameters, error, diverged, objective_errors FROM evaluations "
        "WHERE study = ? AND round IN (SELECT round FROM rounds WHERE study = ?) "
        "ORDER BY round, sample", (study, study)).fetchall()
    records, by_round = [], {}
    for index, parameters, error, diverged, objective in rows:
        by_round.setdefault(index, []).append((parameters, error, diverged, objective))
    for index in sorted(by_round):
        entries = by_round[index]
        objective_rows = [json.loads(e[3]) for e in entries]
        names = objective_rows[0].keys() if objective_rows else []
        records.append(RoundRecord(
            index=index,
            parameters=np.array([json.loads(e[0]) for e in entries], dtype=float),
            errors=np.array([np.inf if e[1] is None else e[1] for e in entries], dtype=float),
            diverged=np.array([bool(e[2]) for e in entries]),
            objective_errors={n: np.array([np.inf if r[n] is None else r[n]
                                           for r in objective_rows]) for n in names},
            duration_s=float(durations.get(index, 0.0))))
    return records


def list_studies(url: str | Path) -> list[str]:
    connection = connect(url, read_only=True)
    try:
        return [row[0] for row in connection.execute("SELECT name FROM studies ORDER BY created")]
    finally:
        connection.close()


def read_history(url: str | Path, study: str | None = None):
    """A :class:`~modelfit_core.results.history.History` rebuilt from a database (read-only,
    safe while another process is still writing it)."""
    connection = connect(url, read_only=True)
    try:
        if study is None:
            names = [r[0] for r in connection.execute("SELECT name FROM studies "
                                                      "ORDER BY created DESC")]
            if not names:
                raise FitStateError(f"{url} holds no study.")
            study = names[0]
        row = connection.execute(
            "SELECT parameter_names, parameter_units, lower, upper, error_unit FROM studies "
            "WHERE name = ?", (study,)).fetchone()
        if row is None:
            raise FitStateError(f"No study {study!r} in {url}.")
        names, units, lower, upper = (json.loads(v) for v in row[:4])
        dims = tuple(_dim_from_text(u) for u in units)
        space = ParameterSpace(names=tuple(names), dims=dims, lower=np.array(lower),
                               upper=np.array(upper))
        error_dim = _dim_from_text(row[4])
        history = History(space=space, error_dim=error_dim)
        for record in read_round_records(connection, study):
            history.add(record)
        return history
    finally:
        connection.close()


def read_results(url: str | Path, study: str | None = None, format: str = "list",
                 use_units: bool = True):
    """``results()`` of a stored study, in the same formats as ``Fitter.results``."""
    return read_history(url, study).results(format=format, use_units=use_units)


def _dim_from_text(text: str):
    """Inverse of :func:`_unit_text`."""
    from brian2.units.fundamentalunits import get_or_create_dimension
    return get_or_create_dimension(json.loads(text))
