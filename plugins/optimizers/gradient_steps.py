"""Damped Gauss-Newton (Levenberg-Marquardt) steps inside the unit box.

Coordinates are the parameters scaled to their bounds (``[0, 1]`` each), as
:class:`~modelfit_core.contracts.protocols.NormalEquations` gives them. With
``H = JᵀJ`` and ``g = Jᵀr`` (both divided by the residual count), the error
near ``u`` is modelled as ``E(u + d) = E(u) + 2 g.d + d.H.d`` and the step
solves ``(H + lambda D) d = -g`` with Marquardt's scaling ``D = diag(H)``.
Bounds are kept by an active set: a coordinate the step would push out of the
box is held on its bound and the step solved again for the others; the step is
also capped to ``max_step`` in every coordinate (a trust region in the box's
units). Where holding coordinates turns the step uphill (a nearly singular
``H``), the minimum along the projected steepest descent is taken instead.
"""

from __future__ import annotations

import numpy as np

TINY = 1e-12


def predicted_decrease(jtj: np.ndarray, jtr: np.ndarray, step: np.ndarray) -> float:
    """E(u) - E(u + step) of the quadratic model (positive for a descent step)."""
    return float(-(2 * jtr @ step + step @ jtj @ step))


def damped_step(x: np.ndarray, jtj: np.ndarray, jtr: np.ndarray, damping: float,
                max_step: float = 0.5) -> np.ndarray:
    """The Levenberg-Marquardt step from ``x`` (in the unit box) that stays in the box.

    Parameters
    ----------
    x : array (p,)
        The current point, each coordinate in [0, 1].
    jtj, jtr : arrays (p, p) and (p,)
        The normal equations at ``x``.
    damping : float
        lambda: 0 is a Gauss-Newton step, large values a short gradient step.
    max_step : float
        The largest change of any coordinate (a fraction of its range).

    Returns
    -------
    step : array (p,)
        With ``x + step`` inside [0, 1] in every coordinate.
    """
    p = len(x)
    scale = np.maximum(np.diag(jtj), TINY * max(float(np.max(np.diag(jtj), initial=0)), 1.0))
    free = np.ones(p, dtype=bool)
    step = np.zeros(p)
    # a coordinate on its bound whose gradient pushes outwards stays there
    free &= ~(((x <= 0) & (jtr > 0)) | ((x >= 1) & (jtr < 0)))
    for _ in range(p):
        if not free.any():
            break
        held = ~free
        matrix = jtj[np.ix_(free, free)] + damping * np.diag(scale[free])
        rhs = -(jtr[free] + jtj[np.ix_(free, held)] @ step[held])
        try:
            solved = np.linalg.solve(matrix, rhs)
        except np.linalg.LinAlgError:
            solved = np.linalg.lstsq(matrix, rhs, rcond=None)[0]
        step[free] = solved
        target = x + step
        leaving = free & ((target < 0) | (target > 1))
        if not leaving.any():
            break
        # hold the coordinates that leave the box on the bound they cross
        step[leaving] = np.clip(target[leaving], 0, 1) - x[leaving]
        free &= ~leaving
    largest = float(np.max(np.abs(step), initial=0))
    if largest > max_step:
        step *= max_step / largest
    step = np.clip(x + step, 0, 1) - x
    if predicted_decrease(jtj, jtr, step) < 0:
        # holding coordinates on their bounds can turn a (nearly singular) Gauss-Newton
        # step uphill: take the best step along the projected steepest descent instead,
        # which always goes down the model
        step = _projected_descent_step(x, jtj, jtr, max_step)
    return step


def _projected_descent_step(x: np.ndarray, jtj: np.ndarray, jtr: np.ndarray,
                            max_step: float) -> np.ndarray:
    """The minimum of the quadratic model along ``-g`` (components pushing out of the
    box at a bound removed), within the box and ``max_step``."""
    direction = -jtr.copy()
    direction[((x <= 0) & (direction < 0)) | ((x >= 1) & (direction > 0))] = 0
    size = float(np.max(np.abs(direction)))
    if size == 0 or not np.isfinite(size):
        return np.zeros_like(x)
    direction /= size  # its largest component 1: no underflow in the curvature below
    # longest move along the direction that stays in the box and within max_step
    room = np.where(direction > 0, (1 - x) / np.where(direction > 0, direction, 1),
                    np.where(direction < 0, -x / np.where(direction < 0, direction, 1),
                             np.inf))
    longest = min(float(np.min(room)), max_step)
    curvature = float(direction @ jtj @ direction)
    slope = float(-(jtr @ direction))  # > 0: E falls along the direction
    length = longest if curvature <= 0 else min(longest, slope / curvature)
    return np.clip(x + length * direction, 0, 1) - x


def projected_gradient_norm(x: np.ndarray, jtr: np.ndarray) -> float:
    """The size of the gradient once the components pushing out of the box at a bound
    are removed: zero at a (bound-constrained) stationary point."""
    gradient = 2 * jtr.copy()
    gradient[(x <= 0) & (gradient > 0)] = 0
    gradient[(x >= 1) & (gradient < 0)] = 0
    return float(np.linalg.norm(gradient))
