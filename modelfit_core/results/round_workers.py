"""What each worker of a distributed backend did in each round (schema version 5).

A fit on dask attaches to every round one
:class:`~modelfit_core.contracts.protocols.WorkerActivity` per worker
(``RoundRecord.workers``); the SQLite store writes them to the table
``round_workers`` (one row per round and worker, primary key ``(study, round,
worker)``) in the round's transaction, and reads them back with the rounds
(:func:`read_round_workers`, strict: a damaged row is a
:class:`~modelfit_core.results.stored_rows.DamagedRow`). The dashboard reads
them with :func:`read_worker_activity`, which is bounded and leaves out (and
counts) what it cannot read.

Worker names come from another machine (a scheduler's address, a name given
to ``dask worker``): they are text of anyone's choosing. Longer than
:data:`MAX_WORKER_NAME` characters, a name is shortened when written (its
start, ``…`` and a hash of the whole, so that two long names stay apart) and
refused when read; what cannot be encoded as UTF-8 is written escaped. An
entry that no worker could report (a busy time that is negative or not a
finite number, a negative count) is not written: activity is shown, never a
reason to stop a fit.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import operator
import sqlite3
from typing import Any, Iterable

from modelfit_core.contracts.protocols import WorkerActivity
from modelfit_core.results import stored_rows

MAX_WORKER_NAME = 256
"""Characters of a worker's name that are stored (and read back: longer is refused)."""
MAX_DISPLAY_ROWS = 200_000
"""Rows :func:`read_worker_activity` reads of one study at most (1000 rounds of 200
workers), whatever the table holds."""
_LARGEST = 2 ** 63 - 1


def stored_name(worker: Any) -> str:
    """The name as written: valid UTF-8, at most :data:`MAX_WORKER_NAME` characters."""
    text = str(worker).encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) <= MAX_WORKER_NAME:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:9]
    return f"{text[:MAX_WORKER_NAME - 10]}…{digest}"


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        value = operator.index(value)
    except TypeError:
        return None
    return value if 0 <= value <= _LARGEST else None


def storable(workers: Iterable[WorkerActivity]) -> list[tuple[str, float, int, int]]:
    """``(worker, busy_s, n_samples, chunks)`` rows of one round: one per stored name
    (entries of one worker added up), entries no worker could report left out."""
    rows: dict[str, list] = {}
    for activity in workers:
        busy, n_samples, chunks = activity.busy_s, _count(activity.n_samples), \
            _count(activity.chunks)
        if isinstance(busy, bool) or not isinstance(busy, numbers.Real) \
                or not math.isfinite(busy) or busy < 0 or n_samples is None or chunks is None:
            continue
        row = rows.setdefault(stored_name(activity.worker), [0.0, 0, 0])
        row[0] += float(busy)
        row[1] += n_samples
        row[2] += chunks
    return [(name, busy, n, chunks) for name, (busy, n, chunks) in sorted(rows.items())
            if math.isfinite(busy) and n <= _LARGEST and chunks <= _LARGEST]


def write_round_workers(connection: sqlite3.Connection, study: str, index: int,
                        workers: Iterable[WorkerActivity]) -> None:
    """Store what each worker did in round ``index`` (inside the caller's transaction)."""
    rows = [(study, int(index), *row) for row in storable(workers)]
    if rows:
        connection.executemany("INSERT INTO round_workers (study, round, worker, busy_s, "
                               "n_samples, chunks) VALUES (?, ?, ?, ?, ?, ?)", rows)


def decoded(index: Any, worker: Any, busy_s: Any, n_samples: Any,
            chunks: Any) -> tuple[int, WorkerActivity]:
    """The round and activity of a stored row (raises
    :class:`~modelfit_core.results.stored_rows.DamagedRow`)."""
    index = stored_rows.integer(index, "round", 0)
    if not isinstance(worker, str):
        raise stored_rows.DamagedRow(f"column worker holds {stored_rows.short(worker)}, "
                                     f"not text")
    if len(worker) > MAX_WORKER_NAME:
        raise stored_rows.DamagedRow(f"column worker holds {len(worker)} characters, more "
                                     f"than modelfit writes ({MAX_WORKER_NAME})")
    busy = stored_rows.number(busy_s, "busy_s")
    assert busy is not None  # None is refused unless allow_none
    if busy < 0:
        raise stored_rows.DamagedRow(f"column busy_s holds {busy!r}, a negative time")
    return index, WorkerActivity(worker=worker, busy_s=busy,
                                 n_samples=stored_rows.integer(n_samples, "n_samples", 0),
                                 chunks=stored_rows.integer(chunks, "chunks", 0))


def _has_table(connection: sqlite3.Connection) -> bool:
    return connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                              "name = 'round_workers'").fetchone() is not None


def read_round_workers(connection: sqlite3.Connection,
                       study: str) -> dict[int, tuple[WorkerActivity, ...]]:
    """Round -> what each worker did, in the order of the workers' names (none in
    databases before version 5; raises :class:`~modelfit_core.results.stored_rows.DamagedRow`)."""
    if not _has_table(connection):
        return {}
    found: dict[int, list[WorkerActivity]] = {}
    for row in connection.execute(
            "SELECT round, worker, busy_s, n_samples, chunks FROM round_workers "
            "WHERE study = ? ORDER BY round, worker", (study,)):
        with stored_rows.located(f"round_workers row (round {stored_rows.short(row[0])}, "
                                 f"worker {stored_rows.short(row[1])})"):
            index, activity = decoded(*row)
        found.setdefault(index, []).append(activity)
    return {index: tuple(activities) for index, activities in found.items()}


def read_worker_activity(connection: sqlite3.Connection, study: str, after: int = -1,
                         newest: int | None = None, limit: int = MAX_DISPLAY_ROWS
                         ) -> tuple[list[tuple[int, WorkerActivity]], int, bool]:
    """For display: the activity of rounds ``after < round <= newest``, in order of round
    and worker, at most ``limit`` rows (one indexed range of the primary key).

    Returns ``(rows, unreadable, more)``: ``(round, WorkerActivity)`` of every
    readable row, how many rows could not be read (left out), and whether rows
    beyond ``limit`` were not read. A database before version 5 has none.
    """
    if not _has_table(connection):
        return [], 0, False
    last = _LARGEST if newest is None else int(newest)
    rows = connection.execute(
        "SELECT round, worker, busy_s, n_samples, chunks FROM round_workers WHERE study = ? "
        "AND round > ? AND round <= ? ORDER BY round, worker LIMIT ?",
        (study, int(after), last, int(limit) + 1)).fetchall()
    more = len(rows) > limit
    kept, unreadable = [], 0
    for row in rows[:limit]:
        try:
            kept.append(decoded(*row))
        except stored_rows.DamagedRow:
            unreadable += 1
    return kept, unreadable, more
