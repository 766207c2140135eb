"""Thinning a long trace for display, keeping what a plot of it shows.

A plot a thousand pixels wide cannot show more than a few thousand points;
a recording of 10^6 steps is stored and sent as the minimum and maximum of
each of a few hundred bins (in time order), so that action potentials and
other brief excursions stay visible, which taking every n-th point would lose.
"""

from __future__ import annotations

import numpy as np


def decimate(values, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """The time-step indices and values of ``values`` thinned to at most ``max_points``.

    Parameters
    ----------
    values : array_like, shape (n_steps,)
        One trace (SI units); NaN and infinite values are kept where they are
        a bin's extreme.
    max_points : int
        At least 4. A trace of at most ``max_points`` steps is returned whole.

    Returns
    -------
    steps : ndarray of int64, strictly increasing
    kept : ndarray of float64, ``values[steps]``
        The first and last steps, and the smallest and largest value of each of
        ``max_points // 2`` bins of equal length (at most ``max_points`` points).
    """
    values = np.asarray(values, dtype=float).ravel()
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4; got {max_points}.")
    n = values.size
    if n <= max_points:
        steps = np.arange(n)
        return steps, values.copy()
    # the first and last steps are kept for the time axis: two bins fewer for extremes
    n_bins = (max_points - 2) // 2
    size = -(-n // n_bins)  # bins of equal length; the last one padded
    padded = np.full(size * -(-n // size), np.nan)
    padded[:n] = values
    rows = padded.reshape(-1, size)
    finite_low = np.where(np.isnan(rows), np.inf, rows)
    finite_high = np.where(np.isnan(rows), -np.inf, rows)
    offsets = np.arange(rows.shape[0]) * size
    low = offsets + np.argmin(finite_low, axis=1)
    high = offsets + np.argmax(finite_high, axis=1)
    steps = np.unique(np.concatenate(([0, n - 1], low[low < n], high[high < n])))
    return steps, values[steps]
