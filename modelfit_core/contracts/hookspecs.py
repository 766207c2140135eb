"""pluggy hook specifications of the ``modelfit`` project.

Registration hooks (one per :data:`~modelfit_core.contracts.kinds.KINDS`,
made below from that one description) return ``{name: class}``; every
plugin's answer is merged by the registry.

Lifecycle hooks fan out to every hook plugin, and to the listeners of one fit
(the feedback of a ``fit()`` call listens this way: see
:mod:`modelfit_core.fitting.events`), so the fitting loop knows none of them.
The storage is not a listener: writing a round is part of committing it
(tell, store, record, whole or not at all), so a fit calls its
:class:`~modelfit_core.contracts.protocols.StudyStorage` itself, then
announces ``modelfit_checkpoint_written``.

``modelfit_default_backend`` lets a backend plugin say which backend a fitter
uses when none is named (the Brian backends choose after Brian's active device);
``modelfit_default_optimizer`` lets an optimizer plugin claim a fit that names no
optimizer (:mod:`modelfit_core.contracts.default_optimizer`).
"""

from __future__ import annotations

from typing import Any, Mapping

import pluggy

from modelfit_core.contracts.default_optimizer import FitToOptimize, OptimizerChoice
from modelfit_core.contracts.kinds import KINDS, PROJECT, Kind

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


def _registration_hook(kind: Kind):
    def register() -> Mapping[str, type]:
        ...

    register.__name__ = register.__qualname__ = kind.hook
    register.__doc__ = (f"Return ``{{name: {kind.singular} class}}``; the classes satisfy "
                        f"``{kind.protocol.__name__}`` (they have "
                        f"{', '.join(f'``{m}``' for m in kind.required)}).")
    register.__annotations__ = {"return": Mapping[str, type[kind.protocol]]}
    return hookspec(register)


globals().update({kind.hook: _registration_hook(kind) for kind in KINDS})

REGISTRATION_HOOKS: tuple[str, ...] = tuple(kind.hook for kind in KINDS)


@hookspec(firstresult=True)
def modelfit_default_backend() -> str | None:
    """The name of the backend of a fitter that names none, or None to let another
    plugin decide (the first answer counts)."""


@hookspec(firstresult=True)
def modelfit_default_optimizer(fit: FitToOptimize) -> OptimizerChoice | None:
    """The optimizer of a ``fit()`` that names none, when this plugin's suits ``fit``
    better than the default (pymoo's DE); None to let another plugin, or the default,
    decide (the first answer counts). The answer must depend on ``fit`` alone."""


@hookspec
def modelfit_fit_started(fitter: Any, n_rounds: int) -> None:
    """Called when a ``fit()`` call is about to run ``n_rounds`` rounds."""


@hookspec
def modelfit_round_finished(fitter: Any, round_record: Any) -> bool | None:
    """Called after every round with the :class:`~modelfit_core.results.history.RoundRecord`,
    once the round is told, stored and in the history; returning True stops the fit
    after this round (as feedback returning True does)."""


@hookspec
def modelfit_best_improved(fitter: Any, params: Any, error: float) -> None:
    """Called when a round finds a new best parameter set (a vector of SI floats)."""


@hookspec
def modelfit_fit_finished(fitter: Any, best_params: Any, best_error: Any) -> None:
    """Called when the rounds of a ``fit()`` call end, interrupted or not, with the best
    parameter set (SI vector) and its error, both None if every simulation diverged."""


@hookspec
def modelfit_checkpoint_written(fitter: Any, location: str) -> None:
    """Called after the storage wrote a round (``location``: ``"sqlite:///fit.db#study"``)."""


LIFECYCLE_HOOKS: tuple[str, ...] = ("modelfit_fit_started", "modelfit_round_finished",
                                    "modelfit_best_improved", "modelfit_fit_finished",
                                    "modelfit_checkpoint_written")
