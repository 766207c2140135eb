"""One running fit per study: the lease a writer holds while its rounds run.

A fit takes its study's lease (a row of the ``leases`` table: study, token,
owner pid and host, heartbeat) in the transaction that starts or resumes the
study, refreshes the heartbeat with every round it writes, and gives it back
when its rounds end, normally or not. Another writer meanwhile gets a
:class:`~modelfit_core.contracts.errors.StorageError` naming the owner.

A lease whose owner is gone is stale and is taken over: on the owner's host
when its process no longer exists (``os.kill(pid, 0)``; a process that reuses
the pid is told apart by its start time), elsewhere when the heartbeat is older
than the timeout (10 minutes by default: longer than a round should take).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path

import attrs

from modelfit_core.contracts.errors import StorageError

LEASE_TIMEOUT_S = 600.0
"""Heartbeat age after which the lease of a process on another host is stale."""


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks after boot, from /proc), None if unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: fields after its ')'
    fields = text[text.rindex(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _zombie(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2:].split()[:1] == ["Z"]


@attrs.frozen
class Lease:
    """Who holds a study: a token, and the process that holds it."""

    token: str
    pid: int
    host: str
    process_start: str | None
    acquired: float
    heartbeat: float

    @classmethod
    def for_this_process(cls, token: str) -> "Lease":
        now = time.time()
        return cls(token=token, pid=os.getpid(), host=socket.gethostname(),
                   process_start=process_start(os.getpid()), acquired=now, heartbeat=now)

    def owner_alive(self) -> bool | None:
        """True/False on the owner's host; None elsewhere (only the heartbeat tells)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process: it exists
            pass
        if _zombie(self.pid):
            return False
        started = process_start(self.pid)
        return not (self.process_start and started and started != self.process_start)

    def stale(self, timeout: float, now: float | None = None) -> bool:
        alive = self.owner_alive()
        if alive is not None:
            return not alive
        return (time.time() if now is None else now) - self.heartbeat > timeout

    def describe(self) -> str:
        age = time.time() - self.heartbeat
        return (f"process {self.pid} on host {self.host} (last round written {age:.0f} s "
                f"ago)")


def current_lease(connection: sqlite3.Connection, study: str) -> Lease | None:
    row = connection.execute(
        "SELECT token, pid, host, process_start, acquired, heartbeat FROM leases "
        "WHERE study = ?", (study,)).fetchone()
    return None if row is None else Lease(*row)


def conflict(study: str, database: Path, holder: Lease, timeout: float) -> StorageError:
    other_host = holder.host != socket.gethostname()
    when = (f"it becomes free when that fit ends, or {timeout / 60:.0f} minutes after its "
            f"last round if that process stopped" if other_host else
            "it becomes free when that process ends")
    return StorageError(
        f"Study {study!r} in {database} is being fitted by {holder.describe()}; two fits "
        f"must not write one study. Wait for it ({when}), or use another study= name.")


def check_free(connection: sqlite3.Connection, study: str, token: str, database: Path,
               timeout: float) -> Lease | None:
    """Raise unless the study's lease is free, stale or ``token``'s; return the holder."""
    holder = current_lease(connection, study)
    if holder is not None and holder.token != token and not holder.stale(timeout):
        raise conflict(study, database, holder, timeout)
    return holder


def take(connection: sqlite3.Connection, study: str, token: str, database: Path,
         timeout: float) -> None:
    """Take the study's lease (inside a write transaction); a stale one is taken over."""
    check_free(connection, study, token, database, timeout)
    lease = Lease.for_this_process(token)
    connection.execute("DELETE FROM leases WHERE study = ?", (study,))
    connection.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (study, lease.token, lease.pid, lease.host, lease.process_start,
                        lease.acquired, lease.heartbeat))


def refresh(connection: sqlite3.Connection, study: str, token: str, database: Path,
            timeout: float) -> None:
    """The heartbeat of a round (inside its write transaction); raises if the lease was
    lost to another fit, which then owns the study."""
    updated = connection.execute("UPDATE leases SET heartbeat = ? WHERE study = ? AND "
                                 "token = ?", (time.time(), study, token)).rowcount
    if updated != 1:
        holder = current_lease(connection, study)
        who = holder.describe() if holder is not None else "nobody"
        raise StorageError(
            f"This fit lost study {study!r} in {database} (now held by {who}): its heartbeat "
            f"was older than {timeout:.0f} s, or the study was taken over. The round was not "
            f"written; resume the study with fit(resume=True) once the other fit is done.")


def release(connection: sqlite3.Connection, study: str, token: str) -> None:
    """Give the lease back (inside a write transaction); nothing if it is not ours."""
    connection.execute("DELETE FROM leases WHERE study = ? AND token = ?", (study, token))
