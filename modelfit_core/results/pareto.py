"""Pareto fronts: non-domination, the member a fit reports, hypervolume.

All objectives are minimized. A vector ``a`` dominates ``b`` when it is no
worse in every objective and better in at least one; the front of a set of
vectors is the subset that no other vector of the set dominates (equal
vectors do not dominate each other: both stay).

:class:`ParetoFront` keeps the front of every finite objective vector a fit
has evaluated, updated round by round (:class:`~.history.History` owns one
when a fit has several objectives), and the member the fit reports as its
best: the one closest to the ideal point once each objective is scaled to
[0, 1] over the front (``(f - ideal) / (nadir - ideal)``, ideal and nadir the
front's smallest and largest values), or, with ``weights``, the one with the
smallest weighted sum of those scaled objectives.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError


def dominates(a, b) -> bool:
    """Whether the objective vector ``a`` dominates ``b`` (minimization)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated(values) -> np.ndarray:
    """Boolean mask of the rows of ``values`` (n, k) that no other row dominates.

    Rows are visited in lexicographic order: a dominating row always comes
    before the rows it dominates, so each kept row is compared only with the
    rows after it (O(n·m·k) for a front of m rows). Rows with NaN are never on
    the front and dominate nothing.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"objective values must be a 2-D array (n, k); got shape "
                         f"{values.shape}")
    n = len(values)
    mask = np.zeros(n, dtype=bool)
    usable = np.flatnonzero(~np.isnan(values).any(axis=1))
    if usable.size == 0:
        return mask
    order = usable[np.lexsort(values[usable].T[::-1])]
    ranked = values[order]
    keep = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if not keep[i]:
            continue
        rest = ranked[i + 1:]
        beaten = np.all(rest >= ranked[i], axis=1) & np.any(rest > ranked[i], axis=1)
        keep[i + 1:] &= ~beaten
    mask[order[keep]] = True
    return mask


def scaled(values) -> np.ndarray:
    """Each column of ``values`` (m, k) mapped to [0, 1]: ``(f - min) / (max - min)``
    (0 where a column is constant)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return values.copy()
    low, high = values.min(axis=0), values.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return (values - low) / span


def choose(values, weights=None) -> int:
    """Index of the row of a front ``values`` (m, k) that a fit reports.

    Without ``weights``: the row closest (Euclidean) to the ideal point after
    :func:`scaled`; with ``weights`` (k non-negative numbers, not all 0): the
    row with the smallest weighted sum of the scaled objectives. Ties go to
    the earliest row.
    """
    unit = scaled(values)
    if weights is None:
        score = np.sqrt(np.square(unit).sum(axis=1))
    else:
        score = unit @ np.asarray(weights, dtype=float)
    return int(np.argmin(score))


def check_weights(weights, names: Sequence[str]) -> np.ndarray:
    """``weights`` ({objective: weight} or one per objective) as an array in the
    order of ``names``; each finite and >= 0, not all 0.

    Raises
    ------
    ConfigurationError
        Unknown or missing objective names, a wrong count, a negative or
        non-finite weight, or all weights 0.
    """
    names = list(names)
    if isinstance(weights, Mapping):
        unknown = [k for k in weights if k not in names]
        missing = [n for n in names if n not in weights]
        if unknown or missing:
            raise ConfigurationError(
                f"weights must give one weight per objective ({', '.join(names)}); " +
                (f"unknown: {', '.join(map(str, unknown))}. " if unknown else "") +
                (f"missing: {', '.join(missing)}." if missing else ""))
        array = [weights[n] for n in names]
    else:
        try:
            array = list(weights)
        except TypeError:
            raise ConfigurationError(f"weights must be a dict {{objective: weight}} or one "
                                     f"weight per objective ({', '.join(names)}); got "
                                     f"{weights!r}.") from None
        if len(array) != len(names):
            raise ConfigurationError(f"{len(array)} weights for {len(names)} objectives "
                                     f"({', '.join(names)}); give one per objective.")
    try:
        array = np.array([float(w) for w in array])
    except (TypeError, ValueError):
        raise ConfigurationError(f"weights must be numbers; got {weights!r}.") from None
    if not np.all(np.isfinite(array)) or np.any(array < 0) or not np.any(array > 0):
        raise ConfigurationError(f"weights must be finite numbers >= 0, not all 0; got "
                                 f"{weights!r}.")
    return array


@attrs.define
class ParetoFront:
    """The front of all evaluated objective vectors of a fit, and its chosen member.

    Members are kept in the order they were evaluated (``rows``: round
    position in the history and sample within the round).
    """

    names: tuple[str, ...]
    """The objectives, in order."""
    values: np.ndarray = attrs.field(default=None)
    """(m, k): each member's objective values."""
    rows: np.ndarray = attrs.field(default=None)
    """(m, 2) integers: (position of the round in the history, sample in the round)."""
    weights: np.ndarray | None = None
    """The weights of :meth:`chosen` (None: closest to the ideal point)."""

    def __attrs_post_init__(self):
        if self.values is None:
            self.values = np.empty((0, len(self.names)))
        if self.rows is None:
            self.rows = np.empty((0, 2), dtype=int)

    def __len__(self) -> int:
        return len(self.values)

    def add(self, position: int, values, valid) -> None:
        """Merge the objective vectors (n, k) of the round at ``position`` in the history;
        rows not ``valid`` (diverged, non-finite) are left out."""
        values = np.asarray(values, dtype=float)
        valid = np.asarray(valid, dtype=bool) & np.isfinite(values).all(axis=1)
        samples = np.flatnonzero(valid)
        if samples.size == 0:
            return
        merged = np.vstack([self.values, values[samples]])
        rows = np.vstack([self.rows, np.column_stack([np.full(samples.size, position),
                                                       samples])])
        keep = non_dominated(merged)
        self.values, self.rows = merged[keep], rows[keep]

    def chosen(self) -> int | None:
        """Index (into the members) of the member a fit reports, or None when empty."""
        if len(self.values) == 0:
            return None
        return choose(self.values, self.weights)

    def order(self) -> np.ndarray:
        """Member indices sorted by the first objective, then the next ones."""
        return np.lexsort(self.values.T[::-1]) if len(self.values) else np.empty(0, int)


def hypervolume(values, reference) -> float:
    """Volume of objective space (minimization) dominated by ``values`` (n, k) and
    bounded by the ``reference`` point; points not strictly better than the
    reference in every objective add nothing.

    Exact: sweeps the last objective and recurses on the others (2-D is a
    sum of rectangles), fast enough for fronts of hundreds of points in up to
    four objectives.
    """
    reference = np.asarray(reference, dtype=float).ravel()
    values = np.asarray(values, dtype=float).reshape(-1, reference.size)
    values = values[np.all(values < reference, axis=1)]
    if len(values) == 0:
        return 0.0
    values = values[non_dominated(values)]
    return float(_volume(values, reference))


def _volume(values: np.ndarray, reference: np.ndarray) -> float:
    if values.shape[1] == 1:
        return float(reference[0] - values[:, 0].min())
    if values.shape[1] == 2:
        ordered = values[np.argsort(values[:, 0])]
        volume, best_second = 0.0, reference[1]
        for x, y in ordered:
            if y < best_second:
                volume += (reference[0] - x) * (best_second - y)
                best_second = y
        return volume
    ordered = values[np.argsort(values[:, -1])]
    volume = 0.0
    for i in range(len(ordered)):
        top = ordered[i + 1, -1] if i + 1 < len(ordered) else reference[-1]
        depth = top - ordered[i, -1]
        if depth <= 0:
            continue
        slab = ordered[:i + 1, :-1]
        slab = slab[non_dominated(slab)]
        volume += depth * _volume(slab, reference[:-1])
    return volume
