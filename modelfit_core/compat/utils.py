"""brian2modelfitting.utils: the feedback callbacks of ``fit()`` and ``make_dic``.

A callback is called after each round as ``callback(params, errors,
best_params, best_error, index, additional_info)``; returning True stops the
fit. ``'text'`` and ``'progressbar'`` are the feedback plugins of those names,
so these functions print exactly what ``fit(callback='text')`` prints.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from modelfit_core.compat.plugin_names import shared_registry
from modelfit_core.contracts.errors import ArgumentTypeError, DataError, UnknownPluginError

__all__ = ["ProgressBar", "callback_none", "callback_setup", "callback_text", "make_dic"]


class CallbackError(ArgumentTypeError):
    """``callback`` is neither a feedback name, None, nor a callable (a TypeError, as in
    brian2modelfitting)."""


_text_feedback = None


def callback_text(params, errors, best_params, best_error, index, additional_info=None):
    """Default callback: print the round's best parameters and error (the ``'text'``
    feedback plugin's line, written to the current ``sys.stdout``).

    Parameters
    ----------
    params, errors : list
        The round's parameter sets and their errors (unused).
    best_params : dict
        The best parameters so far (with units when the fitter uses units).
    best_error : float or Quantity
        Their error.
    index : int
        The round, counted from 0.
    additional_info : dict, optional
        What the fitter adds (``best_params_text``, ``objective_errors``, ...).
    """
    global _text_feedback
    if _text_feedback is None:
        _text_feedback = shared_registry().lookup("feedback", "text")()
    _text_feedback(params, errors, best_params, best_error, index, additional_info)


def callback_none(params, errors, best_params, best_error, index, additional_info=None):
    """Non-verbose callback: does nothing (and never stops the fit)."""


class ProgressBar:
    """A tqdm progress bar over the rounds of a fit, usable as a callback.

    Parameters
    ----------
    total : int, optional
        The number of rounds (the bar's length); None for an open-ended bar.
    **kwds
        Options for ``tqdm`` (``desc``, ``disable``, ``file``, ...).

    Notes
    -----
    The bar is the ``'progressbar'`` feedback plugin's (it also shows the best
    error); tqdm is imported when the bar is made. :meth:`close` ends it.
    """

    def __init__(self, total=None, **kwds):
        self.feedback = shared_registry().lookup("feedback", "progressbar")(**kwds)
        self.feedback.start(total)

    def __call__(self, params, errors, best_params, best_error, index, additional_info=None):
        """Advance the bar by one round; returns False (never stops the fit)."""
        self.feedback(params, errors, best_params, best_error, index, additional_info)
        return False

    def close(self) -> None:
        """Close the bar (tqdm's ``close``)."""
        self.feedback.finish()


def callback_setup(set_type, n_rounds) -> Callable:
    """The callback function for ``fit(callback=set_type)``.

    Parameters
    ----------
    set_type : str, None or callable
        ``'text'`` (:func:`callback_text`), ``'progressbar'`` (a new
        :class:`ProgressBar` of ``n_rounds``), None (:func:`callback_none`), a
        callable (returned as it is), or the name of another installed feedback
        plugin (a new instance, started for ``n_rounds`` if it can be).
    n_rounds : int or None
        The number of rounds of the fit.

    Raises
    ------
    CallbackError
        ``set_type`` is none of these (also a TypeError).
    """
    if set_type is None:
        return callback_none
    if isinstance(set_type, str):
        if set_type == "text":
            return callback_text
        if set_type == "progressbar":
            return ProgressBar(n_rounds)
        try:
            feedback = shared_registry().lookup("feedback", set_type)()
        except UnknownPluginError as exc:
            raise CallbackError(f"callback has to be 'text', 'progressbar', None, a "
                                f"callable or a feedback plugin's name: {exc}") from None
        if hasattr(feedback, "start"):
            feedback.start(n_rounds)
        return feedback
    if callable(set_type):
        return set_type
    raise CallbackError(f"callback has to be a str ('text' or 'progressbar'), callable or "
                        f"None; got {set_type!r}.")


def make_dic(names: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """A dictionary ``{name: value}`` from a list of names and one value (or row of a 2-D
    array) per name.

    Raises
    ------
    DataError
        ``names`` and ``values`` have different lengths (also a ValueError).
    """
    names, values = list(names), list(values)
    if len(names) != len(values):
        raise DataError(f"make_dic got {len(names)} names but {len(values)} values.")
    return dict(zip(names, values))
