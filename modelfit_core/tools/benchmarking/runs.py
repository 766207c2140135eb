"""Running a benchmark's runs, each a stored fit: one study per (problem, method, seed) in
the output folder's database.

A run whose study already holds all its rounds is read back, not simulated; one
with some rounds is resumed (``fit(resume=True)``: its rounds replayed into a new
optimizer of the same seed, only the missing ones simulated); the measures are
taken from the stored rounds either way, so an interrupted benchmark, run again,
gives the results of an uninterrupted one.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, StorageError
from modelfit_core.contracts.protocols import FitExecutor, RunsWholeFits
from modelfit_core.fitting.fitter import Fitter
from modelfit_core.fitting.trace_fitter import TraceFitter
from modelfit_core.registry.parts import Parts
from modelfit_core.registry.plugin_registry import Registry, shared_registry
from modelfit_core.results.database import open_for_writing
from modelfit_core.results.history import RoundRecord
from modelfit_core.results.storage import list_studies, read_history
from modelfit_core.tools.benchmarking.measures import (
    Target,
    Trajectory,
    targets_of,
    trajectory,
)
from modelfit_core.tools.benchmarking.methods import stored_round_cost
from modelfit_core.tools.benchmarking.plan import Plan, Run
from modelfit_core.tools.benchmarking.problems import (
    ReadyProblem,
    fingerprint,
    ready_problem,
)
from modelfit_core.tools.side_by_side import Ended, Job, Watcher, run_side_by_side

STORED, RESUMED, RAN, REFUSED = "stored", "resumed", "ran", "refused"
FINGERPRINTS = "problems.json"
"""Beside the database: the fingerprint of each problem its runs fitted."""


def check_fingerprint(plan: Plan, ready: ReadyProblem) -> None:
    """Record the problem's fingerprint in the output folder, or refuse a folder whose runs
    of it fitted something else (another version of the problem).

    Raises
    ------
    StorageError
        The stored runs of this problem are of a different version of it.
    """
    path = plan.output / FINGERPRINTS
    known = json.loads(path.read_text()) if path.exists() else {}
    found = fingerprint(ready)
    if known.get(ready.name, found) != found:
        raise StorageError(
            f"{plan.output} holds runs of another version of the problem {ready.name!r} "
            f"(its model, recordings, bounds, metric or options changed): write to another "
            f"--output folder, or remove that folder's runs.db and {FINGERPRINTS}.")
    if ready.name not in known:
        known[ready.name] = found
        path.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")


@attrs.frozen
class RunResult:
    """A run and what it measured."""

    run: Run
    trajectory: Trajectory
    targets: tuple[Target, ...]
    status: str
    """``'ran'``, ``'resumed'`` (some rounds were stored), ``'stored'`` (all were) or
    ``'refused'`` (the fit refused the problem before simulating: see ``reason``)."""
    setup_seconds: float
    """Wall seconds of this call outside the measured rounds (building, compiling,
    replaying stored rounds); 0 for a run read back whole."""
    reason: str = ""
    """Why the fit refused the problem (a gradient optimizer on spike trains, say): the
    run counts as solving none of its targets."""


RoundListener = Callable[[int], None]
"""Told how many rounds were just done (or found stored)."""


def _stored_rounds(plan: Plan, study: str) -> int:
    if not plan.database.exists() or study not in list_studies(plan.database):
        return 0
    return len(read_history(plan.database, study).rounds)


def refinement_path(plan: Plan, run: Run) -> Path:
    """Where a run's refinement is kept (the database keeps rounds of a search only)."""
    return plan.output / "refinements" / (re.sub(r"[^A-Za-z0-9_.-]", "_", run.study)
                                          + ".json")


def refine(fitter: Fitter, ready: ReadyProblem, evaluations: int) -> dict[str, Any]:
    """``fitter.refine()`` from the search's best point, stopped after ``evaluations``
    simulations: each evaluation's index, parameters (SI), error and the wall seconds
    since the refinement started (its first includes building its simulation)."""
    seen: list[tuple[int, list[float], float, float]] = []

    def record(params, errors, best_params, best_error, index, info=None) -> bool:
        vector = [float(np.asarray(params[name])) for name in ready.parameter_names]
        seen.append((int(index), vector, float(np.asarray(errors).ravel()[0]),
                     time.perf_counter() - started))
        return index + 1 >= evaluations

    if not isinstance(fitter, TraceFitter):  # BenchmarkProblem.problems() refuses it
        raise ConfigurationError(f"Problem {ready.name!r} is refinable but not fitted with "
                                 f"a TraceFitter.")
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.refine(callback=record)
    return {"evaluations": seen, "seconds": time.perf_counter() - started}


def refinement_rounds(kept: dict[str, Any], first_index: int,
                      n_parameters: int) -> list[RoundRecord]:
    """A refinement as rounds of one evaluation each (evaluations before its first finite
    error, which refine() reports to nobody, as diverged ones)."""
    by_index = {index: (vector, error, at) for index, vector, error, at in kept["evaluations"]}
    count = max(by_index, default=-1) + 1
    # evaluations reported to nobody (before the first finite error) share the time up to
    # the first reported one; the first evaluation's building is left out as a round's is
    stamps = [at for _, _, _, at in kept["evaluations"]]
    durations = np.diff([0.0, *stamps]) if stamps else np.array([])
    if durations.size > 1:
        durations[0] = min(durations[0], float(np.median(durations[1:])))
    each: dict[int, float] = {}
    previous = -1
    for (index, _, _, _), duration in zip(kept["evaluations"], durations):
        for k in range(previous + 1, index + 1):
            each[k] = duration / (index - previous)
        previous = index
    rounds = []
    for k in range(count):
        vector, error, _ = by_index.get(k, ([np.nan] * n_parameters, np.inf, 0.0))
        rounds.append(RoundRecord(index=first_index + k, parameters=np.array([vector]),
                                  errors=np.array([error]),
                                  diverged=np.array([not np.isfinite(error)]),
                                  duration_s=each.get(k, 0.0)))
    return rounds


@attrs.frozen
class Fitted:
    """What fitting a run did: the part of :func:`run_one` that may run on a worker."""

    status: str
    stored_before: int
    """Rounds its study held before (those of an interrupted benchmark)."""
    elapsed: float
    """Wall seconds of the fitting (building, replaying, rounds, refinement)."""
    reason: str = ""
    """Why the fit refused the problem (status ``'refused'``)."""


def _complete(plan: Plan, run: Run, stored: int) -> bool:
    return stored >= run.n_rounds and (run.refine_evaluations <= 0
                                       or refinement_path(plan, run).exists())


def fit_run(plan: Plan, ready: ReadyProblem, run: Run, registry: Registry, parts: Parts,
            on_rounds: RoundListener = lambda n: None) -> Fitted:
    """Run (resume, or find complete) one run's fit, stored in the plan's database, and
    its refinement; nothing is measured."""
    stored = _stored_rounds(plan, run.study)
    started = time.perf_counter()
    if _complete(plan, run, stored):
        on_rounds(run.n_rounds)
        return Fitted(STORED, stored, 0.0)
    on_rounds(min(stored, run.n_rounds))
    if run.method.is_default:  # the fit chooses its optimizer, seeded by its parts
        parts = attrs.evolve(parts, optimizer=None, seed=run.seed)
    fitter = ready.fitter(run.n_samples, parts=parts, storage=plan.storage, study=run.study)

    def round_done(*_args: Any) -> None:
        on_rounds(1)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # runs on random parameters warn often
            fitter.fit(optimizer=run.method.make(registry, run.seed),
                       metric=ready.make_metric(parts), n_rounds=run.n_rounds,
                       callback=round_done, resume=bool(stored), **ready.bounds())
    except ConfigurationError as refusal:
        # a method that cannot fit this kind of problem says so before simulating
        # (nothing stored): a result that solves nothing, not the benchmark's end
        if stored or _stored_rounds(plan, run.study):
            raise
        on_rounds(run.n_rounds)
        return Fitted(REFUSED, stored, 0.0, reason=str(refusal).splitlines()[0])
    if run.refine_evaluations > 0:
        kept_path = refinement_path(plan, run)
        kept_path.parent.mkdir(exist_ok=True)
        kept_path.write_text(json.dumps(refine(fitter, ready, run.refine_evaluations)))
    return Fitted(RESUMED if stored else RAN, stored, time.perf_counter() - started)


def measure_run(plan: Plan, ready: ReadyProblem, run: Run, fitted: Fitted) -> RunResult:
    """A fitted run measured from its stored rounds (and refinement)."""
    problem = ready.problem
    targets = tuple(targets_of(ready.error_floor, problem.target_factors, ready.truth_si,
                               problem.parameter_tolerance))
    if fitted.status == REFUSED:
        nothing = trajectory([], ready.parameter_names, targets, ready.truth_si)
        return RunResult(run, nothing, targets, REFUSED, 0.0, reason=fitted.reason)
    rounds = read_history(plan.database, run.study).rounds[:run.n_rounds]
    if run.refine_evaluations > 0:
        kept = json.loads(refinement_path(plan, run).read_text())
        rounds = rounds + refinement_rounds(kept, len(rounds), len(ready.parameter_names))
    costs = [(stored_round_cost(record, len(ready.parameter_names)) if run.method.is_default
              else run.cost) if k < run.n_rounds else 1 for k, record in enumerate(rounds)]
    measured = trajectory(rounds, ready.parameter_names, targets, ready.truth_si, costs)
    done_before = min(fitted.stored_before, run.n_rounds)
    setup = 0.0 if fitted.status == STORED else \
        max(fitted.elapsed - (measured.seconds[-1] - (measured.seconds[done_before - 1]
                                                      if done_before else 0.0)), 0.0)
    return RunResult(run, measured, targets, fitted.status, setup)


def run_one(plan: Plan, ready: ReadyProblem, run: Run, registry: Registry, parts: Parts,
            on_rounds: RoundListener = lambda n: None) -> RunResult:
    """Run (resume, or read back) one run and measure it."""
    return measure_run(plan, ready, run, fit_run(plan, ready, run, registry, parts, on_rounds))


def run_plan(plan: Plan, registry: Registry, *,
             on_rounds: RoundListener = lambda n: None,
             on_problem: Callable[[str], None] = lambda name: None,
             on_result: Callable[[RunResult], None] = lambda result: None
             ) -> tuple[dict[str, ReadyProblem], list[RunResult]]:
    """Every run of ``plan``, problem by problem (each problem's recordings are made
    once); returns the ready problems and the results in the plan's order.

    On a backend that runs whole fits (``--backend dask``) the runs go side by side
    (:func:`run_side_by_side_plan`); on any other, one after another here, each
    simulating on it.
    """
    plan.output.mkdir(parents=True, exist_ok=True)
    parts = Parts(registry=registry)
    if plan.backend is not None:
        parts.backend = parts.resolve_backend(plan.backend)
    ready: dict[str, ReadyProblem] = {}
    results: list[RunResult] = []
    try:
        if isinstance(parts.backend, RunsWholeFits):
            return run_side_by_side_plan(plan, registry, parts.backend.fit_executor(),
                                         on_rounds, on_problem, on_result)
        for run in plan.runs:
            if run.problem not in ready:
                on_problem(run.problem)
                ready[run.problem] = ready_problem(run.problem, plan.problems[run.problem],
                                                   parts)
                check_fingerprint(plan, ready[run.problem])
            result = run_one(plan, ready[run.problem], run, registry, parts, on_rounds)
            results.append(result)
            on_result(result)
    finally:
        shutdown = getattr(parts.backend, "shutdown", None)
        if plan.backend is not None and callable(shutdown):
            shutdown()
    return ready, results


def fit_run_where_it_runs(plan: Plan, ready: ReadyProblem, run: Run,
                          backend: tuple[str, dict[str, Any]]) -> Fitted:
    """:func:`fit_run` in a worker: the process's registry, simulating on ``backend``
    (a backend plugin's name and options)."""
    registry = shared_registry()
    parts = Parts(registry=registry)
    parts.backend = parts.resolve_backend(*backend)
    return fit_run(plan, ready, run, registry, parts)


class _RunsWatcher(Watcher):
    """Rounds found in the database reported as the sequential runs report them, and each
    run measured (in this process, from the stored rounds) when it ends."""

    def __init__(self, plan: Plan, ready: dict[str, ReadyProblem], runs: dict[str, Run],
                 on_rounds: RoundListener, on_result: Callable[[RunResult], None]):
        self.plan, self.ready, self.runs = plan, ready, runs
        self.on_rounds, self.on_result = on_rounds, on_result
        self.reported = {study: 0 for study in runs}
        self.results: dict[str, RunResult] = {}

    def rounds(self, job: Job, stored: int) -> None:
        now = min(stored, job.n_rounds)
        if now > self.reported[job.study]:
            self.on_rounds(now - self.reported[job.study])
            self.reported[job.study] = now

    def ended(self, job: Job, ended: Ended) -> None:
        if ended.error is not None:
            return  # raised by run_side_by_side
        self.rounds(job, job.n_rounds)  # a refused run counts its rounds, as in sequence
        run = self.runs[job.study]
        result = measure_run(self.plan, self.ready[run.problem], run, ended.value)
        self.results[job.study] = result
        self.on_result(result)


def run_side_by_side_plan(plan: Plan, registry: Registry, executor: FitExecutor,
                          on_rounds: RoundListener = lambda n: None,
                          on_problem: Callable[[str], None] = lambda name: None,
                          on_result: Callable[[RunResult], None] = lambda result: None
                          ) -> tuple[dict[str, ReadyProblem], list[RunResult]]:
    """Every run of ``plan`` side by side on ``executor``'s workers, each a job that fits
    its run there (simulating on the executor's job backend) and stores it in the plan's
    database; each is measured here from the stored rounds, as :func:`run_one` does, so
    the results equal a sequential benchmark's (only wall seconds differ).

    The problems are made ready here first (recordings, error floor, fingerprint), and
    sent with their runs: every worker fits the recordings measured here. The first run
    that fails stops the benchmark (the others are cancelled; what they stored is kept).
    """
    try:
        backend = (executor.job_backend, dict(executor.job_backend_options))
        here = Parts(registry=registry)
        here.backend = here.resolve_backend(*backend)
        ready: dict[str, ReadyProblem] = {}
        for name in dict.fromkeys(run.problem for run in plan.runs):
            on_problem(name)
            ready[name] = ready_problem(name, plan.problems[name], here)
            check_fingerprint(plan, ready[name])
        # what a worker needs of the plan: where the database and refinements are
        sent = attrs.evolve(plan, problems={}, runs=(), output=plan.output.resolve())
        watcher = _RunsWatcher(plan, ready, {run.study: run for run in plan.runs},
                               on_rounds, on_result)
        jobs = []
        for run in plan.runs:
            stored = _stored_rounds(plan, run.study)
            if _complete(plan, run, stored):
                watcher.ended(Job(run.study, run.n_rounds, fit_run, ()),
                              Ended(value=Fitted(STORED, stored, 0.0)))
            else:
                jobs.append(Job(run.study, run.n_rounds, fit_run_where_it_runs,
                                (sent, ready[run.problem], run, backend)))
        if jobs:
            plan.database.parent.mkdir(parents=True, exist_ok=True)
            open_for_writing(plan.database).close()  # created, in WAL mode, before a worker
            run_side_by_side(executor, jobs, plan.database, watcher, stop_on_error=True)
    finally:
        executor.shutdown()
    return ready, [watcher.results[run.study] for run in plan.runs]
