"""Reading a fit database for the dashboard: read-only, tolerant, incremental.

Every request opens the database with the core's
:func:`~modelfit_core.results.database.open_for_reading` (``mode=ro``, the
schema checked) and closes it again, so a file replaced, truncated or
deleted while the server runs is reported on the next request. Nothing is
written and nothing is unpickled (the ``optimizer_state`` column is never
selected).

A database written by someone else may hold anything: text where numbers
belong, JSON that does not parse, lists of the wrong length, NaN, infinities
or 1e308. Such a row is left out and counted (the page says how many); a
study whose description cannot be read is listed with its error; neither
stops the other studies or the server.

The evaluations of a study are kept in memory between requests (one
:class:`StudyCache` per study): a request reads only the rounds stored since
the last one, so a page polling a running fit costs SQLite one indexed query.
So is what each worker of a distributed backend did in each round
(:class:`WorkerRows`, schema version 5): one range of the table's primary key
per request that finds new rounds, and at most
:data:`WorkerRows.MAX_ROWS` rows of a study in all.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from modelfit_core import plugin_api
from modelfit_core.contracts.errors import StorageError

from modelfit_plugins.dashboard.display_units import dimension_of


class StudyNotFound(LookupError):
    """No study of that name in the database."""


def _text(value, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _number(value) -> float | None:
    """A finite or infinite float from a column; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _json(value, default):
    if not isinstance(value, str):
        return default
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return default


def _float_list(value, length: int | None = None) -> list[float] | None:
    items = _json(value, None)
    if not isinstance(items, list) or (length is not None and len(items) != length):
        return None
    out = []
    for item in items:
        number = _number(item)
        if number is None:
            return None
        out.append(number)
    return out


@attrs.frozen
class StudyInfo:
    """The ``studies`` row of a study, read tolerantly (SI floats, Brian dimensions)."""

    name: str
    run_id: str
    created: float | None
    model: str
    parameter_names: tuple[str, ...]
    dims: tuple[Any, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    n_samples: int | None
    error_dim: Any
    output_names: tuple[str, ...]
    optimizer_class: str
    optimizer: str
    seed: str
    metric: str
    objective_names: tuple[str, ...]

    @classmethod
    def from_row(cls, row: dict) -> "StudyInfo":
        """Raises ValueError naming what cannot be read."""
        names = _json(row.get("parameter_names"), None)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("its parameter names cannot be read")
        n = len(names)
        lower = _float_list(row.get("lower"), n)
        upper = _float_list(row.get("upper"), n)
        if lower is None or upper is None:
            raise ValueError("its parameter bounds cannot be read")
        units = _json(row.get("parameter_units"), [])
        units = units if isinstance(units, list) and len(units) == n else [None] * n
        outputs = _json(row.get("output_names"), [])
        objectives = _json(row.get("objective_names"), [])
        n_samples = row.get("n_samples")
        return cls(
            name=str(row["name"]), run_id=_text(row.get("run_id"), str(row.get("created"))),
            created=_number(row.get("created")), model=_text(row.get("model")),
            parameter_names=tuple(names),
            dims=tuple(dimension_of(u) if isinstance(u, str) else None for u in units),
            lower=tuple(lower), upper=tuple(upper),
            n_samples=n_samples if isinstance(n_samples, int) else None,
            error_dim=dimension_of(row.get("error_unit")),
            output_names=tuple(str(o) for o in outputs) if isinstance(outputs, list) else (),
            optimizer_class=_text(row.get("optimizer_class")),
            optimizer=_text(row.get("optimizer")), seed=_text(row.get("optimizer_seed")),
            metric=_text(row.get("metric")),
            objective_names=tuple(str(o) for o in objectives)
            if isinstance(objectives, list) else ())


@attrs.define
class Evaluations:
    """Every readable evaluation of a study, in round order (SI floats)."""

    n_params: int
    n_objectives: int
    rounds: np.ndarray = attrs.field(factory=lambda: np.zeros(0, dtype=np.int64))
    samples: np.ndarray = attrs.field(factory=lambda: np.zeros(0, dtype=np.int64))
    params: np.ndarray = None
    errors: np.ndarray = attrs.field(factory=lambda: np.zeros(0))
    diverged: np.ndarray = attrs.field(factory=lambda: np.zeros(0, dtype=bool))
    objectives: np.ndarray = None
    unreadable: int = 0
    """Stored evaluations left out because they cannot be read."""

    def __attrs_post_init__(self):
        if self.params is None:
            self.params = np.zeros((0, self.n_params))
        if self.objectives is None:
            self.objectives = np.zeros((0, self.n_objectives))

    def __len__(self) -> int:
        return len(self.errors)

    @property
    def usable(self) -> np.ndarray:
        """Finite errors of sets that did not diverge."""
        return np.isfinite(self.errors) & ~self.diverged

    def read(self, connection: sqlite3.Connection, study: str, after: int,
             newest: int) -> None:
        """Append the evaluations of rounds ``after < round <= newest`` (one snapshot)."""
        where = "FROM evaluations WHERE study = ? AND round > ? AND round <= ?"
        order = "ORDER BY round, sample"
        arguments = (study, after, newest)
        connection.execute("BEGIN")
        try:
            if self._read_at_once(connection, where, order, arguments):
                return
            objectives = "objectives" if "objectives" in plugin_api.table_columns(
                connection, "evaluations") else "NULL"
            self._extend_row_by_row(connection.execute(
                f"SELECT round, sample, parameters, error, diverged, {objectives} {where} "
                f"{order}", arguments).fetchall())
        finally:
            connection.execute("COMMIT")

    def _read_at_once(self, connection, where: str, order: str, arguments) -> bool:
        """What modelfit wrote, read and parsed in bulk (a study of 10^5 evaluations in
        well under a second: SQLite joins the JSON lists, pandas' C parser reads them);
        False, with nothing added, if any row is not what modelfit writes."""
        import pandas as pd
        rows = connection.execute(f"SELECT round, sample, error, diverged {where} {order}",
                                  arguments).fetchall()
        if not rows:
            return True
        try:
            table = np.array(rows, dtype=object)
            errors = table[:, 2]
            errors[errors == None] = np.inf  # noqa: E711 (elementwise)
            columns = {"rounds": table[:, 0].astype(np.int64),
                       "samples": table[:, 1].astype(np.int64),
                       "errors": errors.astype(float),
                       "diverged": table[:, 3].astype(np.int64).astype(bool)}
            parsed = {}
            for name, width in (("parameters", self.n_params),
                                ("objectives", self.n_objectives)):
                if width == 0:
                    parsed[name] = np.zeros((len(rows), 0))
                    continue
                (text,) = connection.execute(
                    f"SELECT group_concat(replace(replace({name}, '[', ''), ']', ''), "
                    f"char(10)) FROM (SELECT {name} {where} {order})", arguments).fetchone()
                if not isinstance(text, str) or "\n\n" in text or text.count("\n") != \
                        len(rows) - 1:
                    return False
                values = pd.read_csv(io.StringIO(text), header=None, dtype=float,
                                     engine="c", na_values=["null"]).to_numpy()
                if values.shape != (len(rows), width):
                    return False
                parsed[name] = np.where(np.isnan(values), np.inf, values) \
                    if name == "objectives" else values
        except (ValueError, TypeError, OverflowError, pd.errors.ParserError,
                pd.errors.EmptyDataError):
            return False
        self.rounds = np.concatenate([self.rounds, columns["rounds"]])
        self.samples = np.concatenate([self.samples, columns["samples"]])
        self.params = np.concatenate([self.params, parsed["parameters"]])
        self.errors = np.concatenate([self.errors, columns["errors"]])
        self.diverged = np.concatenate([self.diverged, columns["diverged"]])
        self.objectives = np.concatenate([self.objectives, parsed["objectives"]])
        return True

    def _extend_row_by_row(self, rows: list[tuple]) -> None:
        kept = []
        for r, s, parameters, error, diverged, objectives in rows:
            if not isinstance(r, int) or not isinstance(s, int):
                self.unreadable += 1
                continue
            vector = _float_list(parameters, self.n_params)
            value = math.inf if error is None else _number(error)
            if vector is None or value is None:
                self.unreadable += 1
                continue
            objective_values = [math.inf] * self.n_objectives
            if self.n_objectives:
                parsed = _json(objectives, None)
                if isinstance(parsed, list) and len(parsed) == self.n_objectives:
                    objective_values = [math.inf if v is None else (_number(v) if _number(v)
                                        is not None else math.nan) for v in parsed]
            kept.append((r, s, vector, value, bool(diverged) if isinstance(diverged, int)
                         else True, objective_values))
        if not kept:
            return
        self.rounds = np.concatenate([self.rounds, [k[0] for k in kept]])
        self.samples = np.concatenate([self.samples, [k[1] for k in kept]])
        self.params = np.concatenate([self.params,
                                      np.array([k[2] for k in kept], dtype=float)
                                      .reshape(len(kept), self.n_params)])
        self.errors = np.concatenate([self.errors, np.array([k[3] for k in kept], dtype=float)])
        self.diverged = np.concatenate([self.diverged, np.array([k[4] for k in kept], dtype=bool)])
        self.objectives = np.concatenate([self.objectives, np.array(
            [k[5] for k in kept], dtype=float).reshape(len(kept), self.n_objectives)])

    def index_of(self, round_index: int, sample: int) -> int | None:
        found = np.flatnonzero((self.rounds == round_index) & (self.samples == sample))
        return int(found[0]) if found.size else None


@attrs.define
class WorkerRows:
    """What each worker did in each round of a study (``round_workers``), in round
    order: one entry per readable row, at most :attr:`MAX_ROWS` (the rest is not read)."""

    MAX_ROWS = 200_000
    rounds: list[int] = attrs.field(factory=list)
    workers: list[str] = attrs.field(factory=list)
    busy_s: list[float] = attrs.field(factory=list)
    n_samples: list[int] = attrs.field(factory=list)
    chunks: list[int] = attrs.field(factory=list)
    unreadable: int = 0
    """Stored rows left out because they cannot be read."""
    truncated: bool = False
    """Rows beyond :attr:`MAX_ROWS` were not read."""

    def __len__(self) -> int:
        return len(self.rounds)

    def read(self, connection: sqlite3.Connection, study: str, after: int,
             newest: int) -> None:
        """Append the rows of rounds ``after < round <= newest``."""
        room = self.MAX_ROWS - len(self.rounds)
        if self.truncated or room <= 0:
            self.truncated = True
            return
        rows, unreadable, more = plugin_api.read_worker_activity(connection, study, after,
                                                                 newest, room)
        self.unreadable += unreadable
        self.truncated = more
        for index, activity in rows:
            self.rounds.append(index)
            self.workers.append(activity.worker)
            self.busy_s.append(activity.busy_s)
            self.n_samples.append(activity.n_samples)
            self.chunks.append(activity.chunks)


@attrs.define
class StudyCache:
    """What the server keeps of one study between requests."""

    info: StudyInfo
    evaluations: Evaluations
    last_round: int = -1
    n_rounds: int = 0
    round_times: dict = attrs.field(factory=dict)
    """round -> (finished, duration_s)."""
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    derived: dict = attrs.field(factory=dict)
    """Results computed from the evaluations (plots), keyed by what they depend on."""
    workers: WorkerRows = attrs.field(factory=WorkerRows)

    def refresh(self, connection: sqlite3.Connection) -> None:
        """Read the rounds stored since the last refresh."""
        name = self.info.name
        rounds = connection.execute(
            "SELECT round, finished, duration_s FROM rounds WHERE study = ? AND round > ? "
            "ORDER BY round", (name, self.last_round)).fetchall()
        rounds = [r for r in rounds if isinstance(r[0], int)]
        if not rounds:
            return
        newest = max(r[0] for r in rounds)
        self.evaluations.read(connection, name, self.last_round, newest)
        self.workers.read(connection, name, self.last_round, newest)
        for r, finished, duration in rounds:
            self.round_times[r] = (_number(finished), _number(duration))
        self.last_round = newest
        self.n_rounds += len(rounds)
        self.derived.clear()

    def cached(self, key, compute):
        """``compute()``, computed once per key until new rounds arrive."""
        if key not in self.derived:
            self.derived[key] = compute()
        return self.derived[key]

    @property
    def last_update(self) -> float | None:
        times = [t for t, _ in self.round_times.values() if t is not None and math.isfinite(t)]
        return max(times) if times else None


@attrs.frozen
class StudySummary:
    """One line of the studies page."""

    name: str
    model: str = ""
    state: str = ""
    detail: str = ""
    rounds: int = 0
    evaluations: int = 0
    best_error: float | None = None
    error_dim: Any = None
    last_update: float | None = None
    problem: str | None = None
    """Why the study cannot be shown, if it cannot."""


class DatabaseReader:
    """The dashboard's view of one fit database (thread-safe; one per server)."""

    def __init__(self, storage: str | Path):
        self.storage = str(storage)
        self.path = plugin_api.database_path(storage)
        self._caches: dict[str, StudyCache] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def connection(self):
        """A read-only connection, closed after the block; SQLite errors inside it become
        a StorageError naming the file."""
        connection, _ = plugin_api.open_for_reading(self.path)
        try:
            try:
                yield connection
            except sqlite3.Error as exc:
                raise StorageError(f"The fit database {self.path} cannot be read ({exc}).") \
                    from exc
        finally:
            connection.close()

    def check(self) -> None:
        """Raise a StorageError now if the database cannot be served."""
        with self.connection() as connection:
            connection.execute("SELECT COUNT(*) FROM studies").fetchone()

    def study_names(self, connection) -> list[str]:
        return [row[0] for row in connection.execute(
            "SELECT name FROM studies ORDER BY created") if isinstance(row[0], str)]

    def cache(self, connection: sqlite3.Connection, name: str) -> StudyCache:
        """The study's cache, brought up to date (a restarted study is read anew)."""
        cursor = connection.execute("SELECT * FROM studies WHERE name = ?", (name,))
        row = cursor.fetchone()
        if row is None:
            raise StudyNotFound(name)
        row = dict(zip([c[0] for c in cursor.description], row))
        run_id = _text(row.get("run_id"), str(row.get("created")))
        with self._lock:
            cache = self._caches.get(name)
            if cache is None or cache.info.run_id != run_id:
                info = StudyInfo.from_row(row)
                cache = StudyCache(info=info, evaluations=Evaluations(
                    n_params=len(info.parameter_names),
                    n_objectives=len(info.objective_names)))
                self._caches[name] = cache
        with cache.lock:
            cache.refresh(connection)
        return cache

    def summaries(self) -> list[StudySummary]:
        """Every study of the database, oldest first; an unreadable one says why."""
        out = []
        with self.connection() as connection:
            for name in self.study_names(connection):
                try:
                    cache = self.cache(connection, name)
                    status = self.status(connection, name)
                    usable = cache.evaluations.usable
                    best = float(cache.evaluations.errors[usable].min()) if usable.any() \
                        else None
                    model = next((line.strip() for line in cache.info.model.splitlines()
                                  if line.strip()), "")
                    out.append(StudySummary(
                        name=name, model=model, state=status.state, detail=status.detail,
                        rounds=cache.n_rounds, evaluations=len(cache.evaluations),
                        best_error=best, error_dim=cache.info.error_dim,
                        last_update=cache.last_update))
                except (ValueError, TypeError, sqlite3.Error) as exc:
                    out.append(StudySummary(name=name, problem=f"cannot be read: {exc}"))
        return out

    @staticmethod
    def status(connection: sqlite3.Connection, name: str):
        try:
            return plugin_api.study_status(connection, name)
        except (TypeError, ValueError, OverflowError, sqlite3.Error) as exc:
            return plugin_api.StudyStatus("unknown", f"its lease cannot be read ({exc})")

    def details(self, connection, name: str) -> dict[str, str]:
        try:
            return plugin_api.read_details(connection, name)
        except (TypeError, ValueError, sqlite3.Error):
            return {}

    def traces(self, connection, name: str, point: tuple[int, int] | None):
        """The study's recordings and the stored traces of ``point`` (round, sample)."""
        recordings, bad = plugin_api.read_recordings(connection, name)
        simulated, bad_simulated = ([], 0) if point is None else \
            plugin_api.read_best_traces(connection, name, *point)
        return recordings, simulated, bad + bad_simulated

    def traced_points(self, connection, name: str) -> list[tuple[int, int]]:
        return plugin_api.traced_points(connection, name)


def age_text(timestamp: float | None, now: float | None = None) -> str:
    """``'12 s ago'``, ``'3 min ago'``, ``'2 h ago'``, ``'—'``."""
    if timestamp is None:
        return "—"
    seconds = max(0.0, (time.time() if now is None else now) - timestamp)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
