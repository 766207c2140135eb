"""What the storage, trust and interruption tests share: running tests/storage_worker.py
in a subprocess, and looking into its database with plain sqlite3."""

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from brian2 import amp, mV, ms, nS, pF

from modelfit_core import Pipeline
from modelfit_core.registry.plugin_registry import Registry

WORKER = Path(__file__).with_name("storage_worker.py")
INTERRUPTED_EXIT = 130


def worker_command(db, study, n_rounds, *extra):
    return [sys.executable, str(WORKER), str(db), study, str(n_rounds), *map(str, extra)]


def run_worker(db, study, n_rounds, *extra, expect_success=True):
    """Run a fit to completion; its (gl, C, error), or the CompletedProcess if it failed
    as expected."""
    completed = subprocess.run(worker_command(db, study, n_rounds, *extra),
                               capture_output=True, text=True, timeout=300)
    if not expect_success:
        assert completed.returncode != 0, completed.stdout[-2000:]
        return completed
    assert completed.returncode == 0, completed.stderr[-3000:]
    return best_of(completed.stdout)


def best_of(stdout: str):
    line = [l for l in stdout.splitlines() if l.startswith("BEST")][-1]
    return tuple(float(x) for x in line.split()[1:])


def query(db, sql, *args):
    """Rows of ``sql`` in a read-only connection (no -wal/-shm kept open)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute(sql, args).fetchall()


def stored_rounds(db, study):
    if not Path(db).exists():
        return 0
    try:
        return query(db, "SELECT COUNT(*) FROM rounds WHERE study = ?", study)[0][0]
    except sqlite3.OperationalError:
        return 0


def wait_for_rounds(process, db, study, count, timeout=240):
    deadline = time.time() + timeout
    while stored_rounds(db, study) < count:
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "the fit stored too few rounds in time"
        time.sleep(0.05)


def wait_for_line(process, text, timeout=240):
    """Read the process's stdout until a line starts with ``text``; return that line."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"the process ended before printing {text!r}: "
                                 f"{process.stderr.read()[-3000:]}")
        if line.startswith(text):
            return line
    raise AssertionError(f"no {text!r} within {timeout} s")


MODEL = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
"""
BOUNDS = {"gl": [1 * nS, 50 * nS], "C": [50 * pF, 500 * pF]}


def execute(db, *statements):
    """Run ``(sql, parameters)`` statements in one transaction, then close (the last
    connection to close also folds the -wal file into the database)."""
    connection = sqlite3.connect(db)
    try:
        with connection:
            for sql, *parameters in statements:
                connection.execute(sql, *parameters)
    finally:
        connection.close()


def make_fitter(db, model=MODEL, seed=11, metric="mse", n_samples=8, **options):
    t = np.arange(300) * 1e-4
    currents = np.zeros((2, 300))
    currents[:, 30:] = [[0.1e-9], [0.3e-9]]
    v = -70e-3 + currents / 10e-9 * (1 - np.exp(-np.clip(t - 3e-3, 0, None) / 20e-3))
    pipe = Pipeline.from_names(seed=seed, feedback=None, metric=metric, storage=str(db),
                               study="s", registry=Registry(distributions=["modelfit-brian2"]),
                               **options)
    return pipe.trace_fitter(model=model, input={"I": currents * amp},
                             output={"v": v * 1e3 * mV}, dt=0.1 * ms, n_samples=n_samples,
                             param_init={"v": -70 * mV}, namespace={"El": -70 * mV})


def damaged_copy(good_db, path, table, column, value):
    """A copy of ``good_db`` at ``path`` with ``value`` written into ``column`` of the
    first row of ``table``; None when a constraint of the table refuses it (nothing to
    read then)."""
    shutil.copy(good_db, path)
    with sqlite3.connect(path) as connection:
        try:
            connection.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = "
                               f"(SELECT min(rowid) FROM {table})", (value,))
        except sqlite3.IntegrityError:
            return None
    connection.close()
    return path
