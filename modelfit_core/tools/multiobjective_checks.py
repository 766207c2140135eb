"""Contract checks for multi-objective optimizers (``fit(objectives=...)``).

:func:`check_multiobjective_optimizer` drives an optimizer with the
:class:`~modelfit_core.contracts.protocols.MultiObjectiveOptimizer`
capability as a multi-objective fit does, on boxes and objectives generated
by `Hypothesis <https://hypothesis.readthedocs.io>`_::

    from modelfit_core.testing import check_multiobjective_optimizer

    def test_my_optimizer_keeps_the_contract():
        check_multiobjective_optimizer(MyParetoOptimizer)

Needs ``hypothesis`` (``pip install 'modelfit-brian2[test]'``).
"""

from __future__ import annotations

from typing import Any, Callable

import attrs
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelfit_core.contracts.protocols import MultiObjectiveOptimizer
from modelfit_core.results.pareto import non_dominated
from modelfit_core.tools.contract_checks import (OptimizerProblem, accepts_keyword,
                                                 assert_repeated, drive_optimizer,
                                                 optimizer_problems)

__all__ = ["check_multiobjective_optimizer", "objective_problems"]


@attrs.frozen
class ObjectivesProblem:
    """A box (:class:`~modelfit_core.tools.contract_checks.OptimizerProblem`) and
    conflicting objectives over it: the scaled squared distance to one target each."""

    box: OptimizerProblem
    targets: np.ndarray
    """(n_objectives, n_parameters)."""

    @property
    def names(self) -> list[str]:
        return [f"f{j}" for j in range(len(self.targets))]

    def errors(self, vectors) -> np.ndarray:
        """(n_vectors, n_objectives), finite and >= 0."""
        box = self.box
        scaled = (np.asarray(vectors, dtype=float)[:, None, :] - self.targets[None]) \
            / (box.upper - box.lower)
        return np.square(scaled).sum(axis=2)


@st.composite
def objective_problems(draw, max_parameters: int = 4, max_samples: int = 12,
                       max_objectives: int = 3):
    """Hypothesis strategy of :class:`ObjectivesProblem`: a box of
    :func:`~modelfit_core.testing.optimizer_problems` with 2..``max_objectives``
    objectives, each the distance to a target drawn inside the box."""
    box = draw(optimizer_problems(max_parameters, max_samples))
    n = draw(st.integers(2, max(2, max_objectives)))
    where = np.array(draw(st.lists(st.lists(st.floats(0, 1), min_size=len(box.names),
                                            max_size=len(box.names)),
                                   min_size=n, max_size=n)))
    return ObjectivesProblem(box=box, targets=box.lower + where * (box.upper - box.lower))


def _called(factory) -> str:
    return getattr(factory, "__qualname__", None) or repr(factory)


def _run(factory, problem: ObjectivesProblem, n_rounds: int, seeded: bool, who: str
         ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    box = problem.box
    optimizer = factory(seed=box.seed) if seeded else factory()
    assert isinstance(optimizer, MultiObjectiveOptimizer), (
        f"{who} has no set_objectives(names): it is not a multi-objective optimizer "
        f"(the MultiObjectiveOptimizer capability); check it with check_optimizer()")
    optimizer.set_objectives(problem.names)
    asked, told, recommended = drive_optimizer(optimizer, box, n_rounds, problem.errors,
                                               factory)
    return optimizer, asked, told, recommended


def check_multiobjective_optimizer(factory: Callable[..., Any], *, seeded: bool | None = None,
                                   n_rounds: int = 3, max_parameters: int = 4,
                                   max_samples: int = 12, max_objectives: int = 3,
                                   recommends_told_front: bool = True,
                                   max_examples: int = 20) -> None:
    """Check the :class:`~modelfit_core.contracts.protocols.MultiObjectiveOptimizer`
    contract (with the :class:`~modelfit_core.contracts.protocols.Optimizer` one).

    On generated boxes and 2..``max_objectives`` conflicting objectives, for
    ``n_rounds`` rounds, as a fit with ``objectives=`` drives it:

    * it has ``set_objectives(names)``, called before ``initialize``, which
      returns the population size used (an integer >= 1) or None;
    * ``ask(n)`` returns ``n`` finite vectors inside the bounds;
    * ``tell(vectors, errors)`` accepts an (n, n_objectives) array (a list of
      arrays for the vectors), including a diverged simulation's penalty row;
    * ``tell`` refuses (raises) an array with another number of objectives;
    * ``recommend()`` returns a finite vector inside the bounds, and (with
      ``recommends_told_front``) one of the told vectors whose objectives no
      other told vector dominates;
    * with a seed (``seeded``; by default when ``factory`` accepts ``seed=``),
      the same seed asks exactly the same vectors and recommends the same point.

    Raises AssertionError describing the first violation and the case.
    """
    seeded = accepts_keyword(factory, "seed") if seeded is None else seeded
    who = _called(factory)

    @settings(max_examples=max_examples, deadline=None, report_multiple_bugs=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(problem=objective_problems(max_parameters, max_samples, max_objectives))
    def run(problem):
        optimizer, asked, told, recommended = _run(factory, problem, n_rounds, seeded, who)
        if recommends_told_front:
            matches = np.flatnonzero(np.all(asked == recommended, axis=1))
            assert matches.size, f"{who}.recommend() = {recommended} was never asked"
            front = non_dominated(told)
            assert front[matches].any(), (
                f"{who}.recommend() = {recommended} is dominated by another told vector; "
                f"a multi-objective optimizer recommends a member of the Pareto front")
        vectors = optimizer.ask(problem.box.n_samples)
        wrong = problem.errors(np.vstack(vectors))[:, :-1]
        try:
            optimizer.tell(vectors, wrong)
        except Exception:  # noqa: BLE001 - any clear error will do
            pass
        else:
            raise AssertionError(f"{who}.tell() accepted {wrong.shape[1]} objectives after "
                                 f"set_objectives() named {len(problem.names)}")
        if seeded:
            _, again, _, recommended_again = _run(factory, problem, n_rounds, seeded, who)
            assert_repeated((asked, recommended), (again, recommended_again),
                            problem.box.seed, factory)

    run()
