"""Studies for the dashboard's tests and benchmarks, written through the real FitStore.

:func:`write_study` stores a study of ``n_rounds`` rounds of ``n_samples``
synthetic evaluations (a smooth error around a known optimum, some diverged
sets) with recordings and the best points' traces, exactly as a fit writes
them (``FitStore.session(display=...)``) but without simulating: a study of
10^5 evaluations is written in seconds. :func:`make_hostile` then damages a
database the ways a hostile or broken file can be.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
from brian2 import farad, siemens, volt

from modelfit_core.contracts.protocols import WorkerActivity
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.results import display_tables
from modelfit_core.results.history import RoundRecord
from modelfit_core.results.storage import FitStore, StudyDescription

N_STEPS, DT = 2000, 1e-4
MODEL = "dv/dt = (gl*(El - v) + I)/C : volt\ngl : siemens (constant)\nC : farad (constant)"


class SyntheticDisplay:
    """What ``FitDisplay`` gives the storage, for a synthetic study: recorded traces of a
    spiking-like voltage, and the "simulated" traces of each new best point."""

    def __init__(self, n_traces: int, optimum: np.ndarray):
        self.n_traces = n_traces
        self.optimum = optimum
        self.best = np.inf
        self.t = np.arange(N_STEPS) * DT

    def traces_of(self, vector: np.ndarray) -> np.ndarray:
        shift = float(np.sum((vector / self.optimum - 1) ** 2))
        rows = []
        for k in range(self.n_traces):
            phase = 2 * np.pi * (k + 1) * 20 * self.t
            spikes = (np.sin(phase) > 0.995).astype(float) * 0.09
            rows.append(-0.065 + 0.005 * np.sin(phase / 7) * (1 + shift) + spikes)
        return np.array(rows)

    def write_study(self, connection, study):
        display_tables.write_details(connection, study, {
            "backend": "SyntheticBackend()", "dt": repr(DT), "n_steps": str(N_STEPS),
            "n_traces": str(self.n_traces), "modelfit": "test",
            "unit:v": "[2.0, 1.0, -3.0, -1.0, 0.0, 0.0, 0.0]"})
        if not display_tables.has_recordings(connection, study):
            display_tables.write_recordings(connection, study, display_tables.outputs_for_display(
                {"v": self.traces_of(self.optimum)}))

    def best_traces(self, record):
        usable = np.isfinite(record.errors) & ~record.diverged
        if not usable.any():
            return None
        sample = int(np.argmin(np.where(usable, record.errors, np.inf)))
        if record.errors[sample] >= self.best:
            return None
        self.best = float(record.errors[sample])
        return sample, display_tables.outputs_for_display(
            {"v": self.traces_of(record.parameters[sample])})


def write_study(db: Path, name: str, n_rounds: int, n_samples: int, *, seed: int = 0,
                names=("gl", "C"), objectives=(), n_traces: int = 3,
                optimizer: str = "SyntheticOptimizer(method='DE')", workers=()) -> None:
    """A finished study of ``n_rounds`` x ``n_samples`` evaluations in ``db``; with
    ``workers`` (their names), each round says what each of them did, as a fit on
    dask does (rounds of 0.5 s, each worker busy 60 to 99 % of it)."""
    rng = np.random.default_rng(seed)
    dims = tuple(siemens.dim if k % 2 == 0 else farad.dim for k in range(len(names)))
    lower = np.array([1e-9 if k % 2 == 0 else 1e-11 for k in range(len(names))])
    upper = lower * 500
    optimum = np.sqrt(lower * upper)
    space = ParameterSpace(names=tuple(names), dims=dims, lower=lower, upper=upper)
    store = FitStore(db, name)
    store.start(StudyDescription(space=space, n_samples=n_samples, error_dim=(volt ** 2).dim,
                                 output_names=("v",), optimizer=optimizer,
                                 metric="MSEMetric()", model=MODEL,
                                 optimizer_class="tests.SyntheticOptimizer", seed=repr(seed),
                                 objectives=tuple(objectives)), restart=True)
    display = SyntheticDisplay(n_traces, optimum)
    width = 1.0
    with store.session(display=display) as write:
        for r in range(n_rounds):
            width = max(0.02, width * 0.97)
            log_points = np.log(optimum) + rng.normal(0, width * 2, (n_samples, len(names)))
            points = np.clip(np.exp(log_points), lower, upper)
            errors = 1e-6 * np.sum((np.log(points / optimum)) ** 2, axis=1) + 1e-9 * rng.random(
                n_samples)
            diverged = rng.random(n_samples) < 0.02
            errors = np.where(diverged, np.inf, errors)
            record = RoundRecord(index=r, parameters=points, errors=errors, diverged=diverged,
                                 objective_errors={"v": errors}, told_errors=np.where(
                                     diverged, 1.0, errors), iteration=r)
            if workers:
                record.duration_s = 0.5
                shares = rng.uniform(0.6, 0.99, len(workers))
                split = np.array_split(np.arange(n_samples), len(workers))
                record.workers = tuple(WorkerActivity(worker, 0.5 * float(share),
                                                      len(part), 2)
                                       for worker, share, part in zip(workers, shares, split))
            if objectives:  # in conflict: each is best at another value of the first
                shift = np.log(points / optimum)
                values = np.stack([1e-6 * ((shift[:, 0] + k - 0.5) ** 2
                                           + np.sum(shift[:, 1:] ** 2, axis=1))
                                   for k in range(len(objectives))], axis=1)
                values = np.where(diverged[:, None], np.inf, values)
                record.objectives = {n: values[:, k] for k, n in enumerate(objectives)}
                record.told_errors = np.where(diverged[:, None], 1.0, values)
            write(record, None)
    store.close()


def make_hostile(db: Path) -> None:
    """Damage the studies of ``db`` as a hostile or broken file could: script tags in
    every name and text, NaN/inf/huge values, text where numbers belong, JSON that does
    not parse, lists of the wrong length, blobs of the wrong size."""
    script = "<script>window.__pwned = 1; alert('pwned')</script>"
    image = "<img src=x onerror=\"window.__pwned=1\">"
    connection = sqlite3.connect(db)
    with connection:
        (name,) = connection.execute("SELECT name FROM studies LIMIT 1").fetchone()
        hostile = f"{script}{image}"
        for table in ("studies",):
            connection.execute(f"UPDATE {table} SET name = ? WHERE name = ?", (hostile, name))
        for table in ("evaluations", "rounds", "study_details", "recordings", "best_traces",
                      "sessions", "leases", "round_workers"):
            connection.execute(f"UPDATE {table} SET study = ? WHERE study = ?", (hostile, name))
        connection.execute(
            "UPDATE studies SET parameter_names = ?, model = ?, optimizer = ?, metric = ?",
            (json.dumps([image, "C</script><script>alert(1)</script>"]),
             f"{script}\n{MODEL}", script, image))
        connection.execute("UPDATE study_details SET value = ? WHERE key = 'backend'", (script,))
        connection.execute("INSERT OR REPLACE INTO study_details VALUES (?, 'unit:v', 'not json')",
                           (hostile,))
        rows = connection.execute("SELECT round, sample FROM evaluations WHERE study = ? "
                                  "ORDER BY round, sample LIMIT 6", (hostile,)).fetchall()
        damage = ["error = 'not a number'", "parameters = '[1e308, 1e999]'",
                  "parameters = 'not json ['", "parameters = '[1, 2, 3]'",
                  "error = -1e308", "diverged = 'yes'"]
        for (r, s), change in zip(rows, damage):
            connection.execute(f"UPDATE evaluations SET {change} WHERE study = ? AND round = ? "
                               f"AND sample = ?", (hostile, r, s))
        # worker names are text from another machine; a row of garbage is left out
        connection.execute("UPDATE round_workers SET worker = ? WHERE round = 0 AND rowid IN "
                           "(SELECT min(rowid) FROM round_workers WHERE round = 0)",
                           (hostile,))
        connection.execute("UPDATE round_workers SET busy_s = 'busy' WHERE round = 1 AND "
                           "rowid IN (SELECT min(rowid) FROM round_workers WHERE round = 1)")
        connection.execute("UPDATE best_traces SET data = x'0102' WHERE rowid IN "
                           "(SELECT rowid FROM best_traces LIMIT 1)")
        connection.execute("UPDATE recordings SET steps = 'text' WHERE rowid IN "
                           "(SELECT rowid FROM recordings LIMIT 1)")
    connection.close()


def passive_fitter(pipeline, n_samples: int = 8):
    """The storage tests' passive-membrane fitter (``storage_helpers.make_fitter``'s data)
    on any pipeline."""
    from brian2 import amp, mV, ms
    from storage_helpers import MODEL as PASSIVE
    t = np.arange(300) * 1e-4
    currents = np.zeros((2, 300))
    currents[:, 30:] = [[0.1e-9], [0.3e-9]]
    v = -70e-3 + currents / 10e-9 * (1 - np.exp(-np.clip(t - 3e-3, 0, None) / 20e-3))
    return pipeline.trace_fitter(model=PASSIVE, input={"I": currents * amp},
                                 output={"v": v * 1e3 * mV}, dt=0.1 * ms, n_samples=n_samples,
                                 param_init={"v": -70 * mV}, namespace={"El": -70 * mV})
