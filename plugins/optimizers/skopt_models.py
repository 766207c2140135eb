"""The surrogate models of the skopt optimizer, on scikit-optimize and scikit-learn.

Everything here subclasses or calls those libraries, so this module imports
them at module level; :mod:`~modelfit_plugins.optimizers.skopt_optimizer`
imports it only when an optimizer is set up, which keeps loading the plugin cheap.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone, is_regressor
from skopt.learning import GradientBoostingQuantileRegressor
from skopt.utils import cook_estimator


class _QuantileGBRT(GradientBoostingQuantileRegressor):
    """skopt's GBRT surrogate, made usable with current scikit-learn and numpy.

    skopt 0.10 lists ``BaseEstimator`` before ``RegressorMixin``, so with
    scikit-learn >= 1.6 (estimator tags) ``is_regressor`` is False and skopt
    rejects its own estimator; its ``predict(return_std=True)`` calls
    ``np.in1d``, deprecated in numpy 2.0 and removed since.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        try:
            from sklearn.utils import RegressorTags
            tags.regressor_tags = RegressorTags()
        except ImportError:  # pragma: no cover - older scikit-learn
            pass
        return tags

    def predict(self, X, return_std=False, return_quantiles=False):
        if return_std and not return_quantiles:
            missing = [q for q in (0.16, 0.5, 0.84) if q not in self.quantiles]
            if missing:
                raise ValueError("return_std works only if the quantiles during "
                                 "instantiation include 0.16, 0.5 and 0.84")
            low, mean, high = (self.regressors_[self.quantiles.index(q)].predict(X)
                               for q in (0.16, 0.5, 0.84))
            return mean, (high - low) / 2.0
        return super().predict(X, return_std=return_std, return_quantiles=return_quantiles)


def fixed_kernel_copy(model):
    """An unfitted copy of a fitted GP that refits with its kernel as fitted (no search)."""
    from skopt.learning.gaussian_process.gpr import _param_for_white_kernel_in_Sum
    from skopt.learning.gaussian_process.kernels import WhiteKernel

    if not hasattr(model, "kernel_") or "optimizer" not in model.get_params():
        return None
    kernel = model.kernel_.clone_with_theta(model.kernel_.theta)
    noise = getattr(model, "noise_", None)
    if noise is not None:  # skopt zeroes the fitted noise for predictions: put it back
        present, name = _param_for_white_kernel_in_Sum(kernel)
        if present:
            kernel.set_params(**{name: WhiteKernel(noise_level=noise,
                                                   noise_level_bounds="fixed")})
    return clone(model).set_params(kernel=kernel, optimizer=None)


def _needs_gbrt_shim() -> bool:
    return not is_regressor(GradientBoostingQuantileRegressor())


def surrogate(method, dimensions, rng, n_jobs):
    """The surrogate model for ``method``, cooked as skopt would (same random draws)."""
    if isinstance(method, str) and method.upper() == "GBRT" and (
            _needs_gbrt_shim() or not hasattr(np, "in1d")):
        from sklearn.ensemble import GradientBoostingRegressor
        random_state = rng.randint(0, np.iinfo(np.int32).max)
        return _QuantileGBRT(base_estimator=GradientBoostingRegressor(n_estimators=30,
                                                                      loss="quantile"),
                             random_state=random_state, n_jobs=n_jobs)
    if isinstance(method, str):
        return cook_estimator(method.upper(), space=dimensions,
                              random_state=rng.randint(0, np.iinfo(np.int32).max),
                              n_jobs=n_jobs)
    return method
