"""pluggy hook specifications of the ``modelfit`` project.

Registration hooks (one per :data:`~modelfit_core.contracts.kinds.KINDS`,
made below from that one description) return ``{name: class}``; every
plugin's answer is merged by the registry. Lifecycle hooks fan out to every
plugin so that listeners (storage, loggers, feedback) never need to be known
by the fitting loop.
"""

from __future__ import annotations

from typing import Any, Mapping

import pluggy

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


@hookspec
def modelfit_round_finished(fitter: Any, round_record: Any) -> None:
    """Called after every round with the :class:`~modelfit_core.results.history.RoundRecord`."""


@hookspec
def modelfit_best_improved(fitter: Any, params: Any, error: float) -> None:
    """Called when a round finds a new best parameter set (a vector of SI floats)."""


@hookspec
def modelfit_fit_finished(fitter: Any, best_params: Any, best_error: float) -> None:
    """Called when ``fit`` returns, interrupted or not."""


@hookspec
def modelfit_checkpoint_written(fitter: Any, location: str) -> None:
    """Called after a storage plugin has persisted the fit state."""


LIFECYCLE_HOOKS: tuple[str, ...] = ("modelfit_round_finished", "modelfit_best_improved",
                                    "modelfit_fit_finished", "modelfit_checkpoint_written")
