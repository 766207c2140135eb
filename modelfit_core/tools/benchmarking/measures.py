"""What a run's history says: the best error after each evaluation, and when each target
was reached (evaluations and wall seconds), as COCO/BBOB measures a run.

An evaluation is one simulated parameter set; a round's evaluations are numbered
in the order the optimizer asked them, and are reached, in wall time, when their
round ends (rounds are simulated as one batch). Diverged simulations count as
evaluations that reached nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np


@attrs.frozen
class Target:
    """One target of a problem: an error level, or every parameter close to the truth."""

    label: str
    """``'error <= 3x floor'`` or ``'parameters within 5%'`` (the column header)."""
    error: float | None = None
    """Reached when the best error is at most this (SI); None for the parameter target."""
    tolerance: float | None = None
    """Reached when the best parameters are each within this fraction of the truth."""


def targets_of(error_floor: float, factors: Sequence[float],
               truth: Mapping[str, float] | None, tolerance: float | None) -> list[Target]:
    """The targets of a problem, easiest first: error levels, then the parameter target."""
    found = [Target(f"error <= {factor:g}x floor", error=error_floor * factor)
             for factor in sorted(factors, reverse=True)]
    if truth is not None and tolerance is not None:
        found.append(Target(f"parameters within {tolerance:.0%}", tolerance=tolerance))
    return found


@attrs.frozen
class Hit:
    """When a run reached one target (None: not reached within its budget)."""

    target: str
    evaluations: int | None
    seconds: float | None


@attrs.frozen
class Trajectory:
    """A run's progress after each round."""

    evaluations: tuple[int, ...]
    """Evaluations done after each round, in plain simulations (an evaluation with
    sensitivities counts as several: see :func:`trajectory`)."""
    best_errors: tuple[float, ...]
    """Best error so far after each round (inf before a finite one)."""
    seconds: tuple[float, ...]
    """Wall seconds of the rounds so far (simulation, scoring, optimizer; the one-time
    build of the first round left out, see :func:`round_seconds`)."""
    hits: tuple[Hit, ...]
    best_parameters: dict[str, float]
    """The best parameter set (SI) at the end."""

    @property
    def final_error(self) -> float:
        return self.best_errors[-1] if self.best_errors else math.inf

    def hit(self, target: str) -> Hit:
        return next(h for h in self.hits if h.target == target)


def within(vector: np.ndarray, truth: np.ndarray, tolerance: float) -> bool:
    """Whether every parameter is within ``tolerance`` (a fraction) of its true value."""
    scale = np.where(truth != 0, np.abs(truth), 1.0)
    return bool(np.all(np.abs(vector - truth) <= tolerance * scale))


def round_seconds(durations: Sequence[float]) -> list[float]:
    """Each round's wall seconds without the one-time work of a new fit's first round
    (building and compiling the simulation, which a cache may or may not spare): the
    first round counts as much as the median later round, if that is less."""
    found = list(durations)
    if len(found) > 1:
        found[0] = min(found[0], float(np.median(found[1:])))
    return found


def trajectory(rounds: Iterable[Any], parameter_names: Sequence[str],
               targets: Sequence[Target], truth: Mapping[str, float] | None,
               costs: Sequence[float] | None = None) -> Trajectory:
    """Measure a run from its rounds (:class:`~modelfit_core.results.history.RoundRecord`:
    ``errors``, ``diverged``, ``parameters`` (n_samples, n_parameters) SI, ``duration_s``).

    ``costs`` gives, per round, the plain simulations one of its evaluations counts as
    (default 1 each): evaluations are counted in that currency."""
    rounds = list(rounds)
    costs = [1] * len(rounds) if costs is None else [int(c) for c in costs]
    true_vector = None if truth is None else np.array([truth[n] for n in parameter_names])
    durations = round_seconds([float(r.duration_s) for r in rounds])
    evaluations, best_errors, seconds = [], [], []
    reached: dict[str, tuple[int, float]] = {}
    best, best_vector, done, elapsed = math.inf, None, 0, 0.0
    for record, duration, cost in zip(rounds, durations, costs):
        errors = np.where(np.asarray(record.diverged, dtype=bool), np.inf,
                          np.asarray(record.errors, dtype=float))
        errors = np.where(np.isnan(errors), np.inf, errors)
        elapsed += duration
        for k, error in enumerate(errors):
            if error < best:
                best, best_vector = float(error), np.asarray(record.parameters[k], dtype=float)
            for target in targets:
                if target.label in reached:
                    continue
                if target.error is not None and best <= target.error or (target.tolerance is not None and true_vector is not None
                      and best_vector is not None
                      and within(best_vector, true_vector, target.tolerance)):
                    reached[target.label] = (done + (k + 1) * cost, elapsed)
        done += len(errors) * cost
        evaluations.append(done)
        best_errors.append(best)
        seconds.append(elapsed)
    hits = tuple(Hit(t.label, *reached.get(t.label, (None, None))) for t in targets)
    best_parameters = {} if best_vector is None else \
        {name: float(v) for name, v in zip(parameter_names, best_vector)}
    return Trajectory(tuple(evaluations), tuple(best_errors), tuple(seconds), hits,
                      best_parameters)


def ecdf(evaluations_to_target: Sequence[float | None], grid: np.ndarray) -> np.ndarray:
    """Fraction of (problem, target, seed) pairs solved within each budget of ``grid``
    (None or NaN: not solved)."""
    hits = np.array([math.inf if e is None or not math.isfinite(e) else e
                     for e in evaluations_to_target], dtype=float)
    if hits.size == 0:
        return np.zeros_like(grid, dtype=float)
    return (hits[None, :] <= grid[:, None]).mean(axis=1)


def ecdf_area(evaluations_to_target: Sequence[float | None], max_evaluations: float) -> float:
    """The area under the runtime ECDF on a log10 evaluation axis from 1 to
    ``max_evaluations``, as a fraction of the whole (1: every pair solved at the first
    evaluation; 0: none solved). Larger is better, as in COCO's aggregated ECDFs."""
    span = math.log10(max_evaluations)
    if span <= 0 or not evaluations_to_target:
        return 0.0
    total = 0.0
    for e in evaluations_to_target:
        if e is not None and math.isfinite(e) and e <= max_evaluations:
            total += (span - math.log10(max(e, 1.0))) / span
    return total / len(evaluations_to_target)
