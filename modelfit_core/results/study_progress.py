"""How far the studies of one database are, read while other processes write them.

``fit_many`` and ``modelfit benchmark`` on a cluster follow their fits from the
storage file alone: the rounds each study holds, and which process holds each
study's lease now. It works wherever the fits run, as long as the file is shared
(a fit writes every round to it). Reading is read-only (``mode=ro``) and in WAL mode
never blocks a writer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs

from modelfit_core.results.database import open_for_reading, storage_errors


@attrs.frozen
class StudiesProgress:
    """Rounds stored per study, and the process fitting each running study."""

    rounds: dict[str, int]
    """Study name -> rounds stored (studies without rounds are absent)."""
    holders: dict[str, str]
    """Study name -> ``host:pid`` of the process whose lease it holds now."""


class ProgressReader:
    """One read-only connection to a database, asked again and again.

    Parameters
    ----------
    path : Path
        The database (it must exist: the caller creates it before the fits start).
    """

    def __init__(self, path: Path):
        self.path = path
        self.connection: sqlite3.Connection | None = None

    def read(self) -> StudiesProgress:
        """The rounds and lease holders now."""
        if self.connection is None:
            self.connection, _ = open_for_reading(self.path)
        with storage_errors(self.path, "reading the fits' progress"):
            rounds = {str(study): int(count) for study, count in self.connection.execute(
                "SELECT study, COUNT(*) FROM rounds GROUP BY study")}
            holders = {str(study): f"{host}:{pid}" for study, pid, host in
                       self.connection.execute("SELECT study, pid, host FROM leases")}
        return StudiesProgress(rounds, holders)

    def close(self) -> None:
        """Close the connection (reading again opens a new one)."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def stored_rounds(path: Path) -> dict[str, int]:
    """Study name -> rounds stored in the database at ``path`` ({} if it does not exist)."""
    if not path.exists():
        return {}
    reader = ProgressReader(path)
    try:
        return reader.read().rounds
    finally:
        reader.close()
