"""The contract check of gradient optimizers (the ``GradientOptimizer`` capability), for
plugin authors: ``from modelfit_core.testing import check_gradient_optimizer``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings

from modelfit_core.contracts.protocols import GradientOptimizer
from modelfit_core.tools.contract_checks import (
    accepts_keyword,
    check_optimizer,
    drive_optimizer,
    optimizer_problems,
    plugin_name,
)

__all__ = ["check_gradient_optimizer"]


def check_gradient_optimizer(factory: Callable[..., Any], *, n_rounds: int = 4,
                             max_parameters: int = 4, max_samples: int = 8,
                             max_examples: int = 10) -> None:
    """Check an optimizer with the
    :class:`~modelfit_core.contracts.protocols.GradientOptimizer` capability.

    Everything :func:`check_optimizer` checks (told through ``tell_gradients``, with
    the normal equations of the generated quadratic, zeros for the diverged point),
    and that it uses them: on ``E(u) = |u - target|²`` (exact normal equations,
    ``u`` the parameters scaled to the bounds) the best error of the last round is
    at most a hundredth of the first round's best (or below 1e-12).
    """
    seeded = accepts_keyword(factory, "seed")
    probe = factory(seed=0) if seeded else factory()
    assert isinstance(probe, GradientOptimizer), (
        f"{plugin_name(factory)} has no tell_gradients(parameters, errors, normal_equations): "
        f"it is not a gradient optimizer; check it with check_optimizer()")
    check_optimizer(factory, seeded=seeded, n_rounds=n_rounds, max_parameters=max_parameters,
                    max_samples=max_samples, max_examples=max_examples)

    @settings(max_examples=max_examples, deadline=None, report_multiple_bugs=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(problem=optimizer_problems(max_parameters, max_samples))
    def descends(problem):
        optimizer = factory(seed=problem.seed) if seeded else factory()
        _, told, _ = drive_optimizer(optimizer, problem, n_rounds, problem.errors, factory)
        rounds = told.reshape(n_rounds, -1)
        first, last = rounds[0].min(), rounds[-1].min()
        assert last <= max(first / 100, 1e-12), (
            f"{plugin_name(factory)}: told exact normal equations of a quadratic, its best error "
            f"went from {first:.3g} (round 0) only to {last:.3g} (round {n_rounds - 1}); "
            f"a gradient optimizer should take Gauss-Newton steps towards the minimum")

    descends()
