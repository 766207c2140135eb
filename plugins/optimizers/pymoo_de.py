"""pymoo's differential evolution, with its duplicate check done in numpy.

pymoo's DE keeps an offspring only if it improves on its parent and is not
already in the population; that last check measures distances with
``scipy.spatial.distance.cdist``, whose import costs 0.1–0.2 s in a fresh
process, in the middle of a fit's second round (and more than the rest of
pymoo's import). With ``epsilon = 0`` the check only asks whether two rows are
equal, which numpy answers directly. :class:`DE` is pymoo's class with that one
step replaced; ``tests/test_pymoo_optimizer.py`` checks that it proposes
exactly what pymoo's own DE proposes.

Imported by :func:`~.pymoo_methods.build_algorithm` when a fit starts, never
with the package (it imports pymoo).
"""

from __future__ import annotations

import numpy as np
from pymoo.algorithms.soo.nonconvex import de as pymoo_de
from pymoo.core.replacement import ImprovementReplacement

__all__ = ["DE", "NumpyImprovementReplacement", "duplicated_rows"]


def duplicated_rows(rows, others) -> np.ndarray:
    """For each row of ``rows`` (n × d): whether it equals an earlier row of ``rows`` or
    any row of ``others`` (m × d); pymoo's duplicate check with ``epsilon = 0``.

    Rows are compared by their bytes (after -0.0 is made 0.0), in one pass over a
    set: linear in n + m, where distances between all pairs grow with n × m.
    NaN equals nothing, as pymoo counts no NaN distance as a duplicate.
    """
    rows, others = (np.asarray(a, dtype=float) for a in (rows, others))
    rows, others = (a[:, None] if a.ndim == 1 else a for a in (rows, others))
    rows, others = rows + 0.0, others + 0.0  # -0.0 + 0.0 is 0.0: equal values, equal bytes
    seen = {row.tobytes() for row in others[~np.isnan(others).any(axis=1)]}
    duplicated = np.zeros(len(rows), dtype=bool)
    for index in np.flatnonzero(~np.isnan(rows).any(axis=1)):
        key = rows[index].tobytes()
        duplicated[index] = key in seen
        seen.add(key)
    return duplicated


class NumpyImprovementReplacement(ImprovementReplacement):
    """pymoo's ``ImprovementReplacement``: an offspring replaces its parent if it is
    better, and is neither in the population nor equal to an earlier offspring
    (equal rows found with numpy)."""

    def _do(self, problem, pop, off, **kwargs):
        replace = np.full((len(pop), 1), False)
        if problem.has_constraints() > 0:
            pop_F, pop_CV, pop_feas = pop.get("F", "CV", "FEAS")
            off_F, off_CV, off_feas = off.get("F", "CV", "FEAS")
            replace[(~pop_feas & ~off_feas) & (off_CV < pop_CV)] = True
            replace[~pop_feas & off_feas] = True
            replace[(pop_feas & off_feas) & (off_F < pop_F)] = True
        else:
            # unconstrained (every fit): the violations are never read, and pymoo
            # computes them individual by individual (a third of a 2000-point tell)
            replace[off.get("F") < pop.get("F")] = True
        replace[duplicated_rows(off.get("X"), pop.get("X"))] = False
        return replace[:, 0]


class DE(pymoo_de.DE):
    """pymoo's DE (same options, same proposals) without scipy.spatial."""

    def _advance(self, infills=None, **kwargs):
        assert infills is not None, "DE is driven through ask and tell: tell it the infills"
        parents = infills.get("index")
        self.pop[parents] = NumpyImprovementReplacement().do(self.problem, self.pop[parents],
                                                             infills)
        pymoo_de.FitnessSurvival().do(self.problem, self.pop, return_indices=True)

