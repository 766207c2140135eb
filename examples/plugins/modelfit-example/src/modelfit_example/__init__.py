"""Example third-party plugins for modelfit.

* ``cmaes`` -- :class:`~modelfit_example.cma_optimizer.CMAESOptimizer`, CMA-ES
  from pycma through its ask/tell interface;
* ``mae`` -- :class:`~modelfit_example.mae_metric.MAEMetric`, the mean absolute
  error between simulated and recorded traces.

Nothing here is imported by modelfit by name: the two modules are found through
the ``modelfit`` entry points in this distribution's ``pyproject.toml``.
"""

__version__ = "0.1.0"
