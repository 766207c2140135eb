"""How each ``fit()`` call on a study ended, and whether a fit is running now.

A fit with storage writes a row of the ``sessions`` table when its rounds
start and fills in how they ended (``finished``, ``interrupted`` by Ctrl-C, or
``failed`` with the error's message) when they end, in the transaction that
gives its lease back (:mod:`~modelfit_core.results.study_lease`). A row left
without an ending belongs to a process that was killed or crashed.

:func:`study_status` tells a reader (the dashboard, ``modelfit results``)
what a study is doing: ``running`` while a live process holds its lease,
else how its last fit ended.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time

import attrs

from modelfit_core.results import study_lease

FINISHED, INTERRUPTED, FAILED = "finished", "interrupted", "failed"
RUNNING = "running"
ENDED = "ended"
"""A study written before schema version 3, which records no ending, and not running."""
MESSAGE_LENGTH = 500
"""Characters kept of an error's message."""


def begin(connection: sqlite3.Connection, study: str) -> int:
    """Record that a fit's rounds start (inside its write transaction); the row's id."""
    cursor = connection.execute(
        "INSERT INTO sessions (study, started, pid, host) VALUES (?, ?, ?, ?)",
        (study, time.time(), os.getpid(), socket.gethostname()))
    row_id = cursor.lastrowid
    assert row_id is not None, "an INSERT gives its row an id"
    return row_id


def ending_of(error: BaseException | None) -> tuple[str, str]:
    """``(outcome, message)`` of rounds that ended with ``error`` (None: normally)."""
    if error is None:
        return FINISHED, ""
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED, "stopped with Ctrl-C (or an interrupted simulation)"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return FAILED, f"{type(error).__name__}: {text}"[:MESSAGE_LENGTH]


def end(connection: sqlite3.Connection, session: int, outcome: str, message: str) -> None:
    """Record how the rounds of ``session`` ended (inside a write transaction)."""
    connection.execute("UPDATE sessions SET ended = ?, outcome = ?, message = ? "
                       "WHERE rowid = ?", (time.time(), outcome, message, session))


@attrs.frozen
class StudyStatus:
    """What a study is doing: ``state`` is running, finished, interrupted or ended."""

    state: str
    detail: str = ""
    """Why, in words (how it was interrupted, which process runs it)."""
    since: float | None = None
    """When the state began (Unix time), if known."""


def study_status(connection: sqlite3.Connection, study: str,
                 lease_timeout: float = study_lease.LEASE_TIMEOUT_S) -> StudyStatus:
    """The state of ``study`` as a reader sees it (read-only; nothing is written)."""
    tables = {row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    holder = study_lease.current_lease(connection, study) if "leases" in tables else None
    last = None
    if "sessions" in tables:
        last = connection.execute(
            "SELECT started, ended, outcome, message FROM sessions WHERE study = ? "
            "ORDER BY started DESC LIMIT 1", (study,)).fetchone()
    if holder is not None and not holder.stale(lease_timeout):
        started = last[0] if last is not None else holder.acquired
        return StudyStatus(RUNNING, f"fitted by {holder.describe()}", started)
    if last is None:
        if holder is not None:
            return StudyStatus(INTERRUPTED, f"the fitting process stopped ({holder.describe()})",
                               holder.heartbeat)
        return StudyStatus(ENDED, "how its fit ended was not recorded (a database written "
                                  "before modelfit recorded it)")
    started, ended, outcome, message = last
    if outcome == FINISHED:
        return StudyStatus(FINISHED, "", ended)
    if outcome in (INTERRUPTED, FAILED):
        return StudyStatus(INTERRUPTED, str(message or outcome), ended)
    return StudyStatus(INTERRUPTED, "the fitting process stopped without ending its fit "
                                    "(killed, or it crashed)", started)
