"""What each plot of the dashboard is sent: aggregated and thinned on the server.

A study of 10^5 evaluations is not sent point by point: a scatter plot a few
hundred pixels wide shows one point per cell of a grid at most, so each plot
gets, per occupied cell, the point with the lowest error there (the lower
envelope that tells which values fit), plus the best points and the points
whose traces are stored, always. Rounds are summarized by quantiles of their
errors, in groups of consecutive rounds when there are more than a plot shows.

Everything returned is JSON-ready: numbers are finite floats or None (NaN,
infinities), text is left as it is (the page puts it in the DOM as text, and
:func:`label` escapes what plotly renders as markup).
"""

from __future__ import annotations

import html
import math
from typing import Any, Sequence

import numpy as np

from modelfit_core import plugin_api

from modelfit_plugins.dashboard.display_units import axis_unit, format_value, unit_symbol

PARAMETER_GRID = (40, 20)
"""Cells (x, y) of a parameter-against-error plot (about 10 pixels each): at most 800
points, the most a page of many such plots draws quickly (every point is an SVG node)."""
PAIR_GRID = (20, 20)
"""Cells of a pair-of-parameters plot."""
MAX_ROUND_GROUPS = 1000
"""Points of the error-per-round plot."""
BEST_KEPT = 20
"""The best points, always sent to every scatter plot."""
MAX_PAIR_PARAMETERS = 6
"""Parameters of the pairs plot at once (15 pairs)."""
MAX_FRONT_ROWS = 200
"""Members of a Pareto front listed."""
MAX_WORKER_GROUPS = 200
"""Points per worker of the workers plot (groups of consecutive rounds beyond)."""
MAX_WORKERS_SHOWN = 64
"""Workers drawn (the busiest ones) and listed; the others are counted."""


def label(text: str) -> str:
    """``text`` for plotly, which renders a subset of HTML in labels: ``&``, ``<`` and
    ``>`` escaped (no tag can be formed; plotly shows the entities as the characters)."""
    return html.escape(str(text), quote=False)


def json_floats(values) -> list:
    """A list of floats with None where ``values`` is NaN or infinite."""
    array = np.asarray(values, dtype=float)
    out = array.tolist()
    for k in np.flatnonzero(~np.isfinite(array)):
        out[int(k)] = None
    return out


def scaled(values, scale: float) -> list:
    """``values / scale`` as :func:`json_floats` (what overflows is None: not drawable)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return json_floats(np.asarray(values, dtype=float) / scale)


def finite_or_none(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def log_scale_suits(lower: float, upper: float) -> bool:
    """Bounds spanning two decades or more of positive values read best on a log axis."""
    return lower > 0 and upper > 0 and upper / lower >= 100


def thin(x: np.ndarray, y: np.ndarray, score: np.ndarray, grid: tuple[int, int],
         log_x: bool, log_y: bool, keep: Sequence[int] = ()) -> np.ndarray:
    """Indices of the points to draw: the lowest ``score`` of each occupied grid cell
    (in the plot's coordinates), and ``keep``; sorted.

    Points with a coordinate that is not finite (or not positive on a log axis)
    cannot be drawn and are left out, even from ``keep``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        tx = np.log10(x) if log_x else np.asarray(x, dtype=float)
        ty = np.log10(y) if log_y else np.asarray(y, dtype=float)
    drawable = np.isfinite(tx) & np.isfinite(ty)
    index = np.flatnonzero(drawable)
    nx, ny = grid
    keep = np.asarray([k for k in keep if 0 <= k < len(x) and drawable[k]], dtype=np.int64)
    if index.size <= nx * ny // 4:
        return index
    cells = []
    for values, n in ((tx[index], nx), (ty[index], ny)):
        low, high = float(values.min()), float(values.max())
        span = high - low if high > low else 1.0
        cells.append(np.clip(((values - low) / span * n).astype(np.int64), 0, n - 1))
    cell = cells[0] * ny + cells[1]
    order = np.lexsort((score[index], cell))
    _, first = np.unique(cell[order], return_index=True)
    return np.union1d(index[order[first]], keep)


def best_indices(evaluations, count: int = BEST_KEPT) -> np.ndarray:
    usable = np.flatnonzero(evaluations.usable)
    if usable.size == 0:
        return usable
    order = np.argsort(evaluations.errors[usable], kind="stable")
    return usable[order[:count]]


def traced_indices(evaluations, traced: Sequence[tuple[int, int]]) -> list[int]:
    if not traced or not len(evaluations):
        return []
    key = evaluations.rounds * (int(evaluations.samples.max()) + 1) + evaluations.samples
    wanted = [r * (int(evaluations.samples.max()) + 1) + s for r, s in traced]
    return [int(k) for k in np.flatnonzero(np.isin(key, wanted))]


def error_axis(info, errors: np.ndarray) -> dict:
    finite = errors[np.isfinite(errors)]
    log = bool(finite.size) and bool(np.all(finite > 0))
    unit = unit_symbol(info.error_dim)
    return {"log": log, "title": label(f"error ({unit})" if unit else "error")}


def rounds_plot(evaluations, max_groups: int = MAX_ROUND_GROUPS) -> dict:
    """Per round (or per group of consecutive rounds): the quantiles 0, 25, 50, 75 and
    100 % of the finite errors, the best so far, the evaluations so far."""
    if not len(evaluations):
        return {"round": [], "evaluations": [], "min": [], "q25": [], "median": [],
                "q75": [], "max": [], "best": [], "diverged": [], "group": 1}
    unique_rounds = np.unique(evaluations.rounds)
    size = max(1, -(-len(unique_rounds) // max_groups))
    group_of_round = np.searchsorted(unique_rounds, evaluations.rounds) // size
    n_groups = int(group_of_round.max()) + 1
    counts = np.bincount(group_of_round, minlength=n_groups)
    diverged = np.bincount(group_of_round, weights=(~evaluations.usable).astype(float),
                           minlength=n_groups)
    usable = evaluations.usable
    groups, errors = group_of_round[usable], evaluations.errors[usable]
    order = np.lexsort((errors, groups))
    groups, errors = groups[order], errors[order]
    n_usable = np.bincount(groups, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(n_usable)[:-1]))
    quantiles = {}
    for name, q in (("min", 0.0), ("q25", 0.25), ("median", 0.5), ("q75", 0.75),
                    ("max", 1.0)):
        values = np.full(n_groups, np.nan)
        present = n_usable > 0
        position = starts[present] + np.floor(q * (n_usable[present] - 1)).astype(np.int64)
        values[present] = errors[position]
        quantiles[name] = values
    best = np.fmin.accumulate(np.where(np.isnan(quantiles["min"]), np.inf, quantiles["min"]))
    last_round = unique_rounds[np.minimum((np.arange(n_groups) + 1) * size,
                                          len(unique_rounds)) - 1]
    return {"round": last_round.tolist(), "evaluations": np.cumsum(counts).tolist(),
            **{name: json_floats(values) for name, values in quantiles.items()},
            "best": json_floats(best), "diverged": diverged.astype(int).tolist(),
            "group": size}


def workers_plot(workers, round_times: dict, max_groups: int = MAX_WORKER_GROUPS,
                 max_workers: int = MAX_WORKERS_SHOWN) -> dict | None:
    """What each worker of a distributed backend did: per round (or group of consecutive
    rounds), the share of the round's duration each worker spent busy (at most 1; 0
    for a worker without a chunk in a round that others worked in), and over the whole
    study each worker's busy share (its busy seconds over the duration of the rounds
    with activity), chunks and parameter sets. None for a study without activity.

    ``workers`` holds one entry per stored row (:class:`study_reader.WorkerRows`),
    ``round_times`` round -> (finished, duration_s). At most ``max_workers`` workers
    are sent (the busiest), in the order of their names."""
    if not len(workers):
        return None
    rounds = np.asarray(workers.rounds, dtype=np.int64)
    busy = np.asarray(workers.busy_s, dtype=float)
    names, worker_of_row = np.unique(np.asarray(workers.workers, dtype=object),
                                     return_inverse=True)
    worker_of_row = worker_of_row.ravel()
    n_workers = len(names)
    unique_rounds, round_of_row = np.unique(rounds, return_inverse=True)
    round_of_row = round_of_row.ravel()
    durations = np.array([_duration(round_times.get(int(r))) for r in unique_rounds])
    size = max(1, -(-len(unique_rounds) // max_groups))
    group_of_round = np.arange(len(unique_rounds)) // size
    n_groups = int(group_of_round[-1]) + 1
    known = np.isfinite(durations)
    group_seconds = np.bincount(group_of_round[known], weights=durations[known],
                                minlength=n_groups)
    counted = known[round_of_row]  # rows of rounds whose duration is known
    cell = worker_of_row * n_groups + group_of_round[round_of_row]
    group_busy = np.bincount(cell[counted], weights=busy[counted],
                             minlength=n_workers * n_groups).reshape(n_workers, n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(group_seconds > 0, np.minimum(group_busy / group_seconds, 1.0),
                          np.nan)
        overall = np.minimum(group_busy.sum(axis=1) / group_seconds.sum(), 1.0)

    def per_worker(values) -> np.ndarray:
        return np.bincount(worker_of_row, weights=np.asarray(values, dtype=float),
                           minlength=n_workers)

    total_busy, chunks, samples = (per_worker(busy), per_worker(workers.chunks),
                                   per_worker(workers.n_samples))
    worker_rounds = np.bincount(np.unique(worker_of_row * len(unique_rounds) + round_of_row)
                                // len(unique_rounds), minlength=n_workers)
    shown = np.sort(np.argsort(-total_busy, kind="stable")[:max_workers])
    listed = [{"name": str(names[w]), "label": label(names[w]),
               "busy_share": finite_or_none(float(overall[w])),
               "busy_s": finite_or_none(float(total_busy[w])),
               "chunks": int(chunks[w]), "n_samples": int(samples[w]),
               "rounds": int(worker_rounds[w])} for w in shown]
    last_round = unique_rounds[np.minimum((np.arange(n_groups) + 1) * size,
                                          len(unique_rounds)) - 1]
    return {"round": last_round.tolist(), "group": size, "workers": listed,
            "share": [json_floats(shares[w]) for w in shown], "n_workers": int(n_workers),
            "n_rounds": int(len(unique_rounds)), "chunks": int(chunks.sum()),
            "unreadable": int(workers.unreadable), "truncated": bool(workers.truncated)}


def _duration(times) -> float:
    """A round's duration in seconds from its ``(finished, duration_s)``; NaN if unknown."""
    if not times or times[1] is None or not math.isfinite(times[1]) or times[1] <= 0:
        return math.nan
    return float(times[1])


def _point_columns(info, evaluations, chosen: np.ndarray, traced: set[int]) -> dict:
    return {"round": evaluations.rounds[chosen].tolist(),
            "sample": evaluations.samples[chosen].tolist(),
            "error": json_floats(evaluations.errors[chosen]),
            "traced": [int(k) in traced for k in chosen]}


def parameter_axis(info, k: int) -> dict:
    lower, upper = info.lower[k], info.upper[k]
    typical = max(abs(lower), abs(upper)) if math.isfinite(lower) and math.isfinite(upper) \
        else 1.0
    unit, scale = axis_unit(info.dims[k], typical)
    name = info.parameter_names[k]
    return {"name": name, "title": label(f"{name} ({unit})" if unit else name),
            "scale": scale, "log": log_scale_suits(lower, upper),
            "lower": finite_or_none(lower / scale), "upper": finite_or_none(upper / scale)}


def parameter_plots(info, evaluations, traced_points) -> dict:
    """Each parameter against the error: every usable evaluation, thinned per plot."""
    usable = evaluations.usable
    traced = set(traced_indices(evaluations, traced_points))
    keep = set(best_indices(evaluations).tolist()) | traced
    errors = np.where(usable, evaluations.errors, np.nan)
    axis = error_axis(info, evaluations.errors[usable])
    plots = []
    for k in range(len(info.parameter_names)):
        x_axis = parameter_axis(info, k)
        chosen = thin(evaluations.params[:, k], errors, errors, PARAMETER_GRID,
                      x_axis["log"], axis["log"], sorted(keep))
        plots.append({"axis": x_axis,
                      "x": scaled(evaluations.params[chosen, k], x_axis["scale"]),
                      **_point_columns(info, evaluations, chosen, traced)})
    return {"error_axis": axis, "plots": plots, "n_usable": int(usable.sum())}


def pair_plots(info, evaluations, chosen_parameters: Sequence[int], traced_points) -> dict:
    """Pairs of the chosen parameters, each point coloured by its error (log10 if the
    errors are positive): which combinations fit."""
    chosen_parameters = [k for k in dict.fromkeys(chosen_parameters)
                         if 0 <= k < len(info.parameter_names)][:MAX_PAIR_PARAMETERS]
    usable = evaluations.usable
    errors = np.where(usable, evaluations.errors, np.nan)
    axis = error_axis(info, evaluations.errors[usable])
    with np.errstate(divide="ignore", invalid="ignore"):
        colour = np.log10(errors) if axis["log"] else errors
    traced = set(traced_indices(evaluations, traced_points))
    keep = sorted(set(best_indices(evaluations).tolist()) | traced)
    axes = {k: parameter_axis(info, k) for k in chosen_parameters}
    pairs = []
    for a, i in enumerate(chosen_parameters):
        for j in chosen_parameters[a + 1:]:
            x, y = evaluations.params[:, i], evaluations.params[:, j]
            drawable = np.where(usable, x, np.nan)
            chosen = thin(drawable, y, errors, PAIR_GRID, axes[i]["log"], axes[j]["log"], keep)
            pairs.append({"x_axis": axes[i], "y_axis": axes[j],
                          "x": scaled(x[chosen], axes[i]["scale"]),
                          "y": scaled(y[chosen], axes[j]["scale"]),
                          "colour": json_floats(colour[chosen]),
                          **_point_columns(info, evaluations, chosen, traced)})
    return {"parameters": chosen_parameters, "colour_title": label(
        "log10 error" if axis["log"] else "error"), "pairs": pairs}


def best_table(info, evaluations) -> dict:
    """The best point's parameters with units and bounds, where in its bounds each lies,
    and how widely each spreads among the best 5 % of the evaluations (a narrow spread:
    the data pin the parameter down)."""
    usable = np.flatnonzero(evaluations.usable)
    if usable.size == 0:
        return {"rows": [], "error": None, "round": None, "sample": None}
    best = usable[np.argmin(evaluations.errors[usable])]
    top = usable[np.argsort(evaluations.errors[usable], kind="stable")][
        :max(2, int(math.ceil(0.05 * usable.size)))]
    rows = []
    for k, name in enumerate(info.parameter_names):
        lower, upper, value = info.lower[k], info.upper[k], float(evaluations.params[best, k])
        log = log_scale_suits(lower, upper)
        position = spread = None
        if math.isfinite(lower) and math.isfinite(upper) and upper > lower:
            to_unit = (lambda v: np.log10(np.maximum(v, 1e-300))) if log else (lambda v: v)
            width = float(to_unit(upper) - to_unit(lower))
            position = float(np.clip((to_unit(value) - to_unit(lower)) / width, 0, 1)) \
                if math.isfinite(value) else None
            values = to_unit(evaluations.params[top, k])
            values = values[np.isfinite(values)]
            if values.size >= 2:
                q10, q90 = np.quantile(values, [0.1, 0.9])
                spread = float(np.clip((q90 - q10) / width, 0, 1))
        rows.append({"name": name, "value": format_value(value, info.dims[k]),
                     "lower": format_value(lower, info.dims[k]),
                     "upper": format_value(upper, info.dims[k]),
                     "position": position, "spread": spread,
                     "at_bound": position is not None and (position < 0.01 or position > 0.99)})
    return {"rows": rows, "error": format_value(float(evaluations.errors[best]),
                                                info.error_dim),
            "round": int(evaluations.rounds[best]), "sample": int(evaluations.samples[best]),
            "n_top": int(top.size)}


def pareto_plot(info, evaluations, traced_points) -> dict | None:
    """The Pareto front of a multi-objective study: the first two objectives of every
    evaluation (thinned) and of the front, and the front's members."""
    names = info.objective_names
    if len(names) < 2 or not len(evaluations):
        return None
    values = evaluations.objectives
    usable = np.isfinite(values).all(axis=1) & ~evaluations.diverged
    index = np.flatnonzero(usable)
    front = index[plugin_api.non_dominated(values[index])] if index.size else index
    front = front[np.lexsort(values[front].T[::-1])]
    log_x = bool(index.size) and bool(np.all(values[index, 0] > 0))
    log_y = bool(index.size) and bool(np.all(values[index, 1] > 0))
    score = np.where(usable, evaluations.errors, np.inf)
    traced = set(traced_indices(evaluations, traced_points))
    shown = thin(np.where(usable, values[:, 0], np.nan), values[:, 1], score, PARAMETER_GRID,
                 log_x, log_y, sorted(set(front.tolist()) | traced))
    members = []
    for k in front[:MAX_FRONT_ROWS]:
        members.append({"round": int(evaluations.rounds[k]),
                        "sample": int(evaluations.samples[k]),
                        "objectives": json_floats(values[k]),
                        "parameters": [format_value(float(v), d) for v, d in
                                       zip(evaluations.params[k], info.dims)]})
    return {"names": list(names), "titles": [label(n) for n in names[:2]],
            "log_x": log_x, "log_y": log_y,
            "all": {"x": json_floats(values[shown, 0]), "y": json_floats(values[shown, 1]),
                    **_point_columns(info, evaluations, shown, traced)},
            "front": {"x": json_floats(values[front, 0]), "y": json_floats(values[front, 1]),
                      **_point_columns(info, evaluations, front, traced)},
            "members": members, "n_front": int(front.size)}


def trace_plots(details: dict[str, str], recordings, simulated) -> list[dict]:
    """The recordings of each output with a point's simulated traces on top, in the
    output's display unit (time in ms)."""
    from modelfit_plugins.dashboard.display_units import dimension_of
    try:
        dt = float(details.get("dt", "nan"))
    except ValueError:
        dt = math.nan
    dt = dt if math.isfinite(dt) and dt > 0 else 1e-3  # unknown: steps read as ms
    outputs: dict[str, dict[str, Any]] = {}
    for source, traces in (("recorded", recordings), ("simulated", simulated)):
        for trace in traces:
            entry = outputs.setdefault(trace.output, {"name": trace.output, "traces": {}})
            entry["spikes"] = trace.steps is None
            if trace.steps is None:
                t = np.asarray(trace.values) * 1e3
                series = {"t": json_floats(t)}
            else:
                series = {"t": json_floats(np.asarray(trace.steps) * dt * 1e3),
                          "v": np.asarray(trace.values)}
            entry["traces"].setdefault(trace.trace, {})[source] = series
    shown = []
    for name, entry in outputs.items():
        dim = dimension_of(details.get(f"unit:{name}", ""))
        typical = max([float(np.nanmax(np.abs(s["v"]))) for t in entry["traces"].values()
                       for s in t.values() if "v" in s and np.isfinite(s["v"]).any()]
                      or [1.0])
        unit, scale = axis_unit(dim, typical) if not entry.get("spikes") else ("", 1.0)
        traces = []
        for k in sorted(entry["traces"]):
            pair = entry["traces"][k]
            for series in pair.values():
                if "v" in series:
                    series["v"] = scaled(series["v"], scale)
            traces.append({"trace": int(k), **pair})
        shown.append({"name": name, "spikes": bool(entry.get("spikes")),
                      "title": label(f"{name} ({unit})" if unit else name), "traces": traces})
    return shown
