"""Whole fits run side by side on a :class:`~modelfit_core.contracts.protocols.FitExecutor`,
followed from their storage file.

Every job writes its rounds to one SQLite file; the driver (this process) reads
the rounds each study holds and which process holds each study's lease
(:mod:`~modelfit_core.results.study_progress`), so progress needs nothing from the
executor but its futures, and works as well when the workers are on other
machines sharing the file. ``fit_many`` and ``modelfit benchmark`` use it.
"""

from __future__ import annotations

import socket
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from modelfit_core.contracts.protocols import FitExecutor
from modelfit_core.results.study_progress import ProgressReader

POLL_S = 0.1
"""Seconds between two looks at the storage file and the futures."""
OTHER_MACHINE = (
    "A fit writing {database} runs on {host}, another machine than this one ({here}). "
    "SQLite's WAL mode shares memory between the processes writing a file, so writers "
    "on several machines (over NFS, say) can corrupt it: keep the workers of one "
    "storage file on one machine, or give each machine's fits a file of their own "
    "(docs/distributed_and_storage.md, 'Many fits').")


@attrs.frozen
class Job:
    """One fit to run on an executor: ``fn(*args)``, which writes study ``study``."""

    study: str
    n_rounds: int
    """Rounds the study holds when the job is done (for progress)."""
    fn: Callable[..., Any]
    args: tuple


@attrs.frozen
class Ended:
    """What a job gave back: its value, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None


class Watcher:
    """Told what the jobs do; the base class ignores it all."""

    def started(self, job: Job, where: str) -> None:
        """``job``'s study is held by the process ``where`` (``host:pid``)."""

    def rounds(self, job: Job, stored: int) -> None:
        """``job``'s study holds ``stored`` rounds (told at every look, changed or not)."""

    def ended(self, job: Job, ended: Ended) -> None:
        """``job`` returned or raised."""


def run_side_by_side(executor: FitExecutor, jobs: Sequence[Job], database: Path,
                     watcher: Watcher, *, stop_on_error: bool = False,
                     poll_s: float = POLL_S) -> list[Ended]:
    """Submit every job, follow them until each has ended, and return how each ended,
    in the order of ``jobs``.

    A job's exception is kept in its :class:`Ended` (the others go on), unless
    ``stop_on_error``: then the jobs not finished are cancelled and it is raised.
    Ctrl-C (or any exception here) cancels the jobs not finished and is raised.
    """
    futures = [executor.submit(job.fn, *job.args) for job in jobs]
    ended: dict[int, Ended] = {}
    announced: set[int] = set()
    reader = ProgressReader(database)
    try:
        while len(ended) < len(jobs):
            time.sleep(poll_s)
            progress = reader.read()
            for k, job in enumerate(jobs):
                if k in ended:
                    continue
                where = progress.holders.get(job.study)
                if where is not None and k not in announced:
                    announced.add(k)
                    _warn_if_elsewhere(where, database)
                    watcher.started(job, where)
                watcher.rounds(job, progress.rounds.get(job.study, 0))
            for k, future in enumerate(futures):
                if k in ended or not future.done():
                    continue
                try:
                    result = Ended(value=future.result())
                except Exception as exc:  # noqa: BLE001 - the job's own error, kept
                    result = Ended(error=exc)
                ended[k] = result
                watcher.rounds(jobs[k], reader.read().rounds.get(jobs[k].study, 0))
                watcher.ended(jobs[k], result)
                if stop_on_error and result.error is not None:
                    raise result.error
    except BaseException:
        for k, future in enumerate(futures):
            if k not in ended:
                future.cancel()
        raise
    finally:
        reader.close()
    return [ended[k] for k in range(len(jobs))]


_warned: set[str] = set()


def _warn_if_elsewhere(where: str, database: Path) -> None:
    host, here = where.rsplit(":", 1)[0], socket.gethostname()
    if host != here and str(database) not in _warned:
        _warned.add(str(database))
        warnings.warn(OTHER_MACHINE.format(database=database, host=host, here=here),
                      RuntimeWarning, stacklevel=3)
