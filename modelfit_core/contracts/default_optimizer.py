"""Which optimizer a fit that names none uses: the question and the answer.

A ``fit()`` without ``optimizer=`` (and without a pipeline optimizer) describes
itself as a :class:`FitToOptimize` and asks the plugins through the
``modelfit_default_optimizer`` hook (first answer counts). A plugin answers with
an :class:`OptimizerChoice` when its optimizer suits that fit, or None to leave
the choice to others; with no answer the fit uses
:data:`~modelfit_core.registry.parts.DEFAULT_NAMES`' optimizer (pymoo's DE). The
suite of fitting problems (``modelfit benchmark``, docs/benchmark.md) measures
the choice as the method ``default``.

A choice must depend only on what the description holds, so that resuming a
stored fit chooses the same optimizer again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class FitToOptimize:
    """What a fit that names no optimizer tells the plugins choosing one."""

    parameter_names: tuple[str, ...]
    """The fitted parameters."""
    n_samples: int
    """Parameter sets per round the fitter was given: what one round may cost, in
    plain simulations."""
    metric: str
    """The metric's class name (one per output, joined by ``', '``)."""
    objectives: str | None
    """The ``objectives=`` mode of a multi-objective fit, None for one error."""
    gradients_refused: str | None
    """None when the fit can be simulated with its sensitivity equations (the metric
    has residuals, the model can be differentiated, an integration method was given,
    the backend accumulates running sums); otherwise why not, as the refusal of a
    gradient optimizer would say."""
    asynchronous: bool = False
    """Whether the backend evaluates asynchronously (only optimizers that take errors
    as they come can run there)."""

    @property
    def n_parameters(self) -> int:
        return len(self.parameter_names)


@attrs.frozen
class OptimizerChoice:
    """A plugin's answer: make the optimizer plugin ``plugin`` with ``options`` (the
    fit's seed is added when the class takes ``seed=``)."""

    plugin: str
    """A registered optimizer plugin name."""
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    reason: str = ""
    """One sentence for the user: why this optimizer, with these options."""
