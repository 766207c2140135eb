"""Where a fit announces what happens: the lifecycle hooks and its own listeners.

A fit tells every hook plugin of its registry (the ``modelfit_*`` lifecycle
hooks of :mod:`modelfit_core.contracts.hookspecs`) and, through the same hook
calls, the listeners of this fit only: the feedback of a ``fit()`` call is
one (see :mod:`~modelfit_core.fitting.feedback_listener`). A listener is any
object with methods named after the hooks, taking any of the hook's
arguments, as pluggy's ``call_extra`` passes them; it never has to be
registered, so two fits in one process never hear each other's listeners.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs
import pluggy

from modelfit_core.contracts import hookspecs
from modelfit_core.contracts.kinds import PROJECT


@functools.cache
def _no_plugins():
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager.hook


@attrs.frozen
class FitEvents:
    """The lifecycle hooks a fit calls, with ``fitter=subject``.

    Parameters
    ----------
    hook : pluggy hook relay, optional
        The registry's hooks (``registry.hook``); None: no hook plugins.
    subject : object
        What the hooks receive as ``fitter`` (the Fitter running the fit).
    listeners : tuple
        Objects listening to this fit only (methods named after the hooks).
    """

    hook: Any = None
    subject: Any = None
    listeners: tuple = ()

    def _call(self, name: str, **kwargs) -> list:
        caller = getattr(self.hook if self.hook is not None else _no_plugins(), name)
        extra = [method for method in (getattr(listener, name, None)
                                       for listener in self.listeners) if callable(method)]
        kwargs["fitter"] = self.subject
        return caller.call_extra(extra, kwargs) if extra else caller(**kwargs)

    def started(self, n_rounds: int) -> None:
        """Before the first round of a ``fit()`` call."""
        self._call("modelfit_fit_started", n_rounds=n_rounds)

    def round_finished(self, record) -> bool:
        """After each round is complete everywhere; True when a listener asks to stop."""
        return any(answer is True for answer in
                   self._call("modelfit_round_finished", round_record=record))

    def checkpoint_written(self, location: str) -> None:
        """After the storage wrote a round."""
        self._call("modelfit_checkpoint_written", location=location)

    def best_improved(self, params, error: float) -> None:
        """When a round found a new best parameter set (SI vector)."""
        self._call("modelfit_best_improved", params=params, error=error)

    def finished(self, best_params, best_error) -> None:
        """When the rounds end, normally or not (best None if every simulation diverged)."""
        self._call("modelfit_fit_finished", best_params=best_params, best_error=best_error)
