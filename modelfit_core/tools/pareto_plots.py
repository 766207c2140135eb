"""Figures of a multi-objective fit: its Pareto front in 2-D or 3-D, as parallel
coordinates, and the traces of chosen front members against the recording.

As :mod:`modelfit_core.tools.plotting`: each function builds a
:class:`matplotlib.figure.Figure` without pyplot (the backend is never
switched, no figure is left open) and returns it; ``path=`` also saves it as
PNG. ``source`` is a fitter after ``fit(objectives=...)`` or a
:class:`~modelfit_core.results.history.History` (e.g. ``read_history(db)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelfit_core.contracts.errors import FitStateError
from modelfit_core.results.pareto import scaled
from modelfit_core.tools.plotting import finish_figure, new_figure


def _front_history(source):
    history = getattr(source, "history", source)
    if history is None or getattr(history, "front", None) is None or not len(history.front):
        raise FitStateError("No Pareto front to plot: fit with objectives='separate' or "
                            "'features' first (or read a multi-objective study).")
    return history


def _columns(names, chosen) -> list[int]:
    if chosen is None:
        return list(range(min(len(names), 3)))
    unknown = [n for n in chosen if n not in names]
    if unknown or not 2 <= len(chosen) <= 3:
        raise FitStateError(f"objectives= must name two or three of the objectives "
                            f"({', '.join(names)}); got {list(chosen)}.")
    return [list(names).index(n) for n in chosen]


def plot_pareto_front(source, objectives=None, path: str | Path | None = None):
    """The front (coloured, chosen member starred) among every evaluation (grey).

    ``objectives``: the two or three objectives to draw (default: the first
    three, or both of two); three give a 3-D scatter. Diverged evaluations are
    left out; axes are logarithmic when every value is positive and they span
    more than two decades.
    """
    history = _front_history(source)
    front = history.front
    columns = _columns(front.names, objectives)
    values = history.objective_values()[:, columns]
    values = values[np.isfinite(values).all(axis=1)]
    members = front.values[front.order()][:, columns]
    chosen = front.values[front.chosen()][columns]
    labels = [front.names[c] for c in columns]
    fig = new_figure((5.2, 4.2))
    if len(columns) == 3:
        ax = fig.add_subplot(projection="3d")
        ax.scatter(*values.T, s=3, color="0.75", label="evaluated")
        ax.scatter(*members.T, s=12, c=members[:, 0], cmap="viridis", label="Pareto front")
        ax.scatter(*chosen, marker="*", s=160, color="C3", label="best_params")
        ax.set_zlabel(labels[2])
    else:
        ax = fig.add_subplot()
        ax.plot(values[:, 0], values[:, 1], ".", ms=2, color="0.75", label="evaluated")
        ax.plot(members[:, 0], members[:, 1], "-o", ms=3, color="C0", label="Pareto front",
                drawstyle="steps-post")  # the edge of the dominated region
        ax.plot(*chosen, marker="*", ms=14, color="C3", ls="", label="best_params")
        for axis, column in (("x", members[:, 0]), ("y", members[:, 1])):
            if column.min() > 0 and column.max() / column.min() > 100:
                getattr(ax, f"set_{axis}scale")("log")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(f"{len(front)} non-dominated of {len(values)} evaluations")
    ax.legend(fontsize="small")
    return finish_figure(fig, path)


def plot_parallel_coordinates(source, parameters: bool = True,
                              path: str | Path | None = None):
    """One line per front member across the objectives (each scaled to [0, 1] over
    the front, 0 best) and, with ``parameters``, the fitted parameters (scaled to
    their bounds); coloured by the first objective, the chosen member in red."""
    history = _front_history(source)
    front = history.front
    order = front.order()
    columns = [scaled(front.values[order])]
    labels = list(front.names)
    if parameters:
        space = history.space
        vectors = np.array([history.rounds[p].parameters[s] for p, s in front.rows[order]])
        columns.append((vectors - space.lower) / (space.upper - space.lower))
        labels += [f"{name}\n(bounds)" for name in space.names]
    lines = np.hstack(columns)
    fig = new_figure((1.3 * len(labels) + 2, 3.6))
    ax = fig.add_subplot()
    positions = np.arange(len(labels))
    from matplotlib import colormaps
    colours = colormaps["viridis"](np.linspace(0, 1, len(lines)))
    for line, colour in zip(lines, colours):
        ax.plot(positions, line, color=colour, alpha=0.6, lw=1)
    best = int(np.flatnonzero(order == front.chosen())[0])
    ax.plot(positions, lines[best], color="C3", lw=2.5, label="best_params")
    for x in positions:
        ax.axvline(float(x), color="0.3", lw=0.6)
    ax.set_xticks(positions, labels, fontsize="small")
    ax.set_ylabel("scaled (0 = best objective / lower bound)")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize="small", loc="upper right")
    return finish_figure(fig, path)


def front_members(fitter, n: int = 3) -> list[int]:
    """Indices into ``fitter.pareto_front()`` of ``n`` members spread along the front
    (both ends included) plus the chosen member (:attr:`best_params`)."""
    front = fitter.history.front
    order = list(front.order())
    picks = {int(round(k)) for k in np.linspace(0, len(order) - 1, max(1, n))}
    picks.add(order.index(front.chosen()))
    return sorted(picks)


def plot_front_traces(fitter, members=None, output_var: str | None = None,
                      scale: float = 1e3, unit_label: str = "mV",
                      path: str | Path | None = None):
    """The recorded trace output (grey) and the traces of front members, one panel
    per input trace.

    ``members``: indices into ``fitter.pareto_front()`` (default
    :func:`front_members`: the two ends, the middle and the chosen member);
    ``output_var``: the trace output to draw (default the first); ``scale``
    converts SI values to ``unit_label`` (default V -> mV).
    """
    front = fitter.pareto_front(use_units=True)
    members = front_members(fitter) if members is None else list(members)
    traces = fitter.problem.recordings.trace_outputs
    if not traces:
        raise FitStateError("plot_front_traces draws trace outputs; this fit has only "
                            "spike trains.")
    name = output_var or traces[0]
    recorded = np.atleast_2d(fitter.problem.recordings.traces[name].values)
    time_ms = np.arange(recorded.shape[1]) * float(fitter.dt) * 1e3
    fig = new_figure((3.2 * recorded.shape[0], 3.4))
    axes = fig.subplots(1, recorded.shape[0], sharey=True, squeeze=False)[0]
    best = fitter.best_params
    for k, ax in enumerate(axes):
        ax.plot(time_ms, recorded[k] * scale, color="0.6", lw=2, label="recorded")
        ax.set_xlabel("time (ms)")
        ax.set_title(f"trace {k}")
    for colour, index in enumerate(members):
        entry = front[index]
        params = {p: entry[p] for p in fitter.parameter_names}
        simulated = np.atleast_2d(np.asarray(fitter.generate(output_var=name, params=params)))
        text = ", ".join(f"{o}={float(v):.3g}" for o, v in entry["objectives"].items())
        starred = " *" if all(params[p] == best[p] for p in params) else ""
        for k, ax in enumerate(axes):
            ax.plot(time_ms, simulated[k] * scale, color=f"C{colour % 10}", lw=1,
                    label=f"#{index}{starred}: {text}" if k == 0 else None)
    axes[0].set_ylabel(f"{name} ({unit_label})")
    axes[0].legend(fontsize="x-small", loc="upper right")
    return finish_figure(fig, path)


def front_table(history, max_rows: int = 20) -> str:
    """The front of ``history`` as text (``modelfit results``): one line per member,
    sorted by the first objective, its objectives and parameters (SI), ``*`` marking
    the chosen one; at most ``max_rows`` members, spread along the front."""
    from modelfit_core.model.parameters import format_quantity
    from modelfit_core.tools.terminal_text import escaped
    front, space = history.front, history.space
    order = list(front.order())
    shown = order if len(order) <= max_rows else \
        [order[int(round(k))] for k in np.linspace(0, len(order) - 1, max_rows)]
    chosen = front.chosen()
    lines = [f"Pareto front: {len(front)} non-dominated of {history.n_evaluations} "
             f"evaluations" + ("" if len(shown) == len(order) else f" ({len(shown)} shown)"),
             "  " + "".join(f"{escaped(name):>14}" for name in front.names) + "  " +
             "".join(f"{escaped(name):>16}" for name in space.names)]
    for k in shown:
        position, sample = front.rows[k]
        vector = history.rounds[position].parameters[sample]
        lines.append(("* " if k == chosen else "  ") +
                     "".join(f"{v:>14.6g}" for v in front.values[k]) + "  " +
                     "".join(f"{format_quantity(float(v), d):>16}"
                             for v, d in zip(vector, space.dims)))
    return "\n".join(lines)


def write_front_plots(source, output: str | Path, traces: bool = True) -> list[Path]:
    """``front.png`` (2-D/3-D front), ``front_parallel.png`` and, for a fitter with a
    trace output and ``traces``, ``front_traces.png`` in the folder ``output``."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    paths = [output / "front.png", output / "front_parallel.png"]
    plot_pareto_front(source, path=paths[0])
    plot_parallel_coordinates(source, path=paths[1])
    if traces and hasattr(source, "generate") and \
            source.problem.recordings.trace_outputs:
        paths.append(output / "front_traces.png")
        plot_front_traces(source, scale=1.0, unit_label="SI", path=paths[-1])
    return paths
