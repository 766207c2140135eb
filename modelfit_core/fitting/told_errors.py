"""What an optimizer is told about a round: finite errors, diverged sets made bad.

Optimizers do not all survive inf or NaN, so a diverged simulation (NaN/inf in
its traces, or an error that is not finite) is told as ten times the worst
finite error seen, plus one: bad, but finite. The history keeps the real
values (inf) and flags the divergence.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from modelfit_core.results.history import History


def errors_for_optimizer(errors: np.ndarray, diverged: np.ndarray, history: History) -> np.ndarray:
    """Diverged sets are told as 10x the worst finite error seen: bad, but not inf/NaN,
    which optimizers do not all survive."""
    if not diverged.any():
        return errors
    worst = history.worst_finite_error()
    finite_now = errors[~diverged]
    candidates = [w for w in (worst, finite_now.max() if finite_now.size else None)
                  if w is not None]
    penalty = 10.0 * max(candidates) + 1.0 if candidates else 1e10
    return np.where(diverged, penalty, errors)


def objectives_for_optimizer(objectives: Mapping[str, np.ndarray], diverged: np.ndarray,
                             history: History) -> np.ndarray:
    """The (n_samples, n_objectives) matrix told to a multi-objective optimizer: each
    objective of a diverged set is told as 10x the worst finite value of that
    objective seen (this round included), plus one."""
    matrix = np.column_stack([np.asarray(v, dtype=float) for v in objectives.values()])
    bad = np.asarray(diverged, dtype=bool) | ~np.isfinite(matrix).all(axis=1)
    if not bad.any():
        return matrix
    seen = [matrix[~bad]]
    for record in history.rounds:
        if record.objectives:
            rows = np.column_stack([record.objectives[n] for n in objectives])
            ok = ~record.diverged & np.isfinite(rows).all(axis=1)
            seen.append(rows[ok])
    seen = np.vstack(seen)
    penalty = 10.0 * seen.max(axis=0) + 1.0 if len(seen) else np.full(matrix.shape[1], 1e10)
    return np.where(bad[:, None], penalty, matrix)
