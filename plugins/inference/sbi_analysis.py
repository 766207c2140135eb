"""Posterior analysis for the Inferencer: pair plots and conditional correlations.

The Inferencer speaks in parameter names and Brian quantities
(``limits={'gl': [1*nS, 100*nS]}``); sbi's functions take lists ordered as
the parameters and plain numbers. This module translates between the two.

Plots show each parameter in a display unit (the Brian unit that suits its
upper bound, e.g. nS), added to its label: sbi's plots cannot draw values as
small as conductances in siemens (the axis limits collapse).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from modelfit_core.contracts.errors import ConfigurationError


def _si(value: Any) -> float:
    return float(np.asarray(value, dtype=float))


def _check_names(mapping: Mapping, names: Sequence[str], role: str) -> None:
    unknown = [key for key in mapping if key not in names]
    if unknown:
        raise ConfigurationError(f"{role} names {', '.join(map(repr, unknown))}, which "
                                 f"{'is' if len(unknown) == 1 else 'are'} not inferred; the "
                                 f"parameters are {', '.join(names)}.")


def limits_list(limits: Mapping | None, names, lower, upper) -> list[list[float]]:
    """``{name: [lo, hi]}`` -> ``[[lo, hi], ...]`` for every parameter (prior bounds by default)."""
    limits = dict(limits or {})
    _check_names(limits, names, "limits")
    out = []
    for name, low, high in zip(names, lower, upper):
        pair = limits.get(name, (low, high))
        if np.ndim(pair) != 1 or len(pair) != 2:
            raise ConfigurationError(f"limits[{name!r}] must be [lower, upper]; got {pair!r}.")
        out.append([_si(pair[0]), _si(pair[1])])
    return out


def ticks_list(ticks: Mapping | None, names, limits: list[list[float]]):
    if ticks is None:
        return None
    _check_names(ticks, names, "ticks")
    return [[_si(v) for v in ticks[name]] if name in ticks else list(lim)
            for name, lim in zip(names, limits)]


def labels_list(labels: Mapping | Sequence | None, names) -> list[str]:
    if labels is None:
        return list(names)
    if isinstance(labels, Mapping):
        _check_names(labels, names, "labels")
        return [str(labels.get(name, name)) for name in names]
    return [str(label) for label in labels]


def subset_indices(subset: Sequence | None, names) -> list[int] | None:
    if subset is None:
        return None
    indices = []
    for item in subset:
        if isinstance(item, (int, np.integer)):
            indices.append(int(item))
        elif item in names:
            indices.append(list(names).index(item))
        else:
            raise ConfigurationError(f"subset names {item!r}, which is not inferred; the "
                                     f"parameters are {', '.join(names)}.")
    return indices


def points_array(points: Any, names) -> np.ndarray | None:
    """``{name: value}`` (or a list of such dicts, or an array) -> (n_points, n_params)."""
    if points is None:
        return None
    dicts = [points] if isinstance(points, Mapping) else points
    if all(isinstance(p, Mapping) for p in dicts):
        rows = []
        for point in dicts:
            _check_names(point, names, "points")
            missing = [n for n in names if n not in point]
            if missing:
                raise ConfigurationError(f"points lacks a value for {', '.join(missing)}.")
            rows.append([_si(point[n]) for n in names])
        return np.array(rows)
    return np.atleast_2d(np.asarray(points, dtype=float))


def condition_array(condition: Any, names) -> np.ndarray:
    if isinstance(condition, Mapping):
        array = points_array(condition, names)
    else:
        array = np.atleast_2d(np.asarray(condition.detach().cpu() if hasattr(condition, "detach")
                                         else condition, dtype=float))
    if array.shape[-1] != len(names):
        raise ConfigurationError(f"condition must hold one value per parameter "
                                 f"({len(names)}: {', '.join(names)}); got shape {array.shape}.")
    return array


class Display:
    """Parameter names, prior bounds and display units (SI value / scale = shown value)."""

    def __init__(self, names, lower, upper, scale, units):
        self.names, self.scale, self.units = list(names), np.asarray(scale, dtype=float), units
        self.lower, self.upper = np.asarray(lower), np.asarray(upper)

    def limits(self, limits):
        return (np.array(limits_list(limits, self.names, self.lower, self.upper))
                / self.scale[:, None]).tolist()

    def ticks(self, ticks, limits):
        listed = ticks_list(ticks, self.names, (np.array(limits) * self.scale[:, None]).tolist())
        return None if listed is None else [list(np.array(t) / s)
                                            for t, s in zip(listed, self.scale)]

    def labels(self, labels):
        return [f"{label} ({unit})" if unit else label
                for label, unit in zip(labels_list(labels, self.names), self.units)]

    def points(self, points):
        array = points_array(points, self.names)
        return None if array is None else array / self.scale

    def condition(self, condition):
        return torch_tensor(condition_array(condition, self.names) / self.scale)


def torch_tensor(values):
    import torch
    return torch.as_tensor(np.asarray(values), dtype=torch.float32)


def pairplot(samples, display: Display, points=None, limits=None, subset=None, labels=None,
             ticks=None, **kwargs):
    from sbi.analysis import pairplot as sbi_pairplot
    shown = np.asarray(samples) / display.scale
    if limits is None:  # the manual: min and max of the samples
        limits = {name: [shown[:, k].min() * display.scale[k], shown[:, k].max() *
                         display.scale[k]] for k, name in enumerate(display.names)}
    lims = display.limits(limits)
    return sbi_pairplot(shown, points=display.points(points), limits=lims,
                        subset=subset_indices(subset, display.names),
                        labels=display.labels(labels), ticks=display.ticks(ticks, lims),
                        **kwargs)


def conditional_pairplot(density, condition, display: Display, points=None, limits=None,
                         subset=None, labels=None, ticks=None, **kwargs):
    """``density`` is over displayed values."""
    from sbi.analysis import conditional_pairplot as sbi_conditional_pairplot
    lims = display.limits(limits)
    return sbi_conditional_pairplot(
        density=density, condition=display.condition(condition), limits=torch_tensor(lims),
        points=display.points(points), subset=subset_indices(subset, display.names),
        labels=display.labels(labels), ticks=display.ticks(ticks, lims), **kwargs)


def conditional_corrcoeff(density, condition, display: Display, limits=None, subset=None,
                          **kwargs) -> np.ndarray:
    """``density`` is over displayed values (correlations do not depend on the unit)."""
    from sbi.analysis import conditional_corrcoeff as sbi_conditional_corrcoeff
    matrix = sbi_conditional_corrcoeff(density=density,
                                       limits=torch_tensor(display.limits(limits)),
                                       condition=display.condition(condition),
                                       subset=subset_indices(subset, display.names), **kwargs)
    return np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix)
