"""Recording noise added to generated data: the error a perfect fit cannot go below."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def gaussian(sigma: float) -> Callable:
    """Gaussian noise of standard deviation ``sigma`` (SI, e.g. volt) on traces."""

    def add(clean, rng: np.random.Generator):
        clean = np.asarray(clean, dtype=float)
        return clean + rng.normal(0.0, sigma, clean.shape)

    return add


def jitter(sigma_s: float) -> Callable:
    """Gaussian jitter of ``sigma_s`` seconds on every spike time (kept sorted and >= 0)."""

    def add(trains, rng: np.random.Generator):
        return [np.sort(np.clip(np.asarray(train, dtype=float)
                                + rng.normal(0.0, sigma_s, len(train)), 0.0, None))
                for train in trains]

    return add
