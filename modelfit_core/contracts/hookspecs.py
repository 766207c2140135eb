"""pluggy hook specifications of the ``modelfit`` project.

Registration hooks return ``{name: class}``; every plugin's answer is merged
by :mod:`modelfit_core.registry.plugin_registry`. Lifecycle hooks fan out to every plugin so
that listeners (storage, loggers, feedback) never need to be known by the
fitting loop.
"""

import pluggy

PROJECT_NAME = "modelfit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def modelfit_register_optimizers():
    """Return ``{name: optimizer class}`` (classes satisfy ``Optimizer``)."""


@hookspec
def modelfit_register_metrics():
    """Return ``{name: metric class}`` (classes satisfy ``Metric``)."""


@hookspec
def modelfit_register_backends():
    """Return ``{name: backend class}`` (classes satisfy ``SimulationBackend``)."""


@hookspec
def modelfit_register_feedback():
    """Return ``{name: feedback class}``; instances are callables (``Feedback``)."""


@hookspec
def modelfit_register_inference():
    """Return ``{name: inference class}`` (classes satisfy ``Inference``)."""


@hookspec
def modelfit_round_finished(fitter, round_record):
    """Called after every round with the :class:`~modelfit_core.results.history.RoundRecord`."""


@hookspec
def modelfit_best_improved(fitter, params, error):
    """Called when a round finds a new best parameter set (SI floats)."""


@hookspec
def modelfit_fit_finished(fitter, best_params, best_error):
    """Called when ``fit`` returns, interrupted or not."""


@hookspec
def modelfit_checkpoint_written(fitter, location):
    """Called after a storage plugin has persisted the fit state."""


KINDS = ("optimizers", "metrics", "backends", "feedback", "inference")
"""The kinds of named plugin classes, each with its ``modelfit_register_<kind>`` hook."""

SINGULAR = {"optimizers": "optimizer", "metrics": "metric", "backends": "backend",
            "feedback": "feedback", "inference": "inference"}
