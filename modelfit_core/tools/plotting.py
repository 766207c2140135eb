"""Figures: fitted vs recorded traces and the error per round (matplotlib).

The figures are built with :class:`matplotlib.figure.Figure` directly, not
through :mod:`matplotlib.pyplot`: the functions never change the user's
matplotlib backend and never leave a figure open in pyplot's figure manager
(so repeated calls do not accumulate open figures). Each function returns the
figure; in a Jupyter notebook it is shown as the cell's value (IPython's inline
backend displays a returned ``Figure``); save it with ``fig.savefig(path)``
(matplotlib attaches an Agg canvas when saving), or pass ``path=``.

matplotlib is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def new_figure(figsize):
    """A Figure that is not registered with pyplot (backend left untouched)."""
    from matplotlib.figure import Figure
    return Figure(figsize=figsize)


def finish_figure(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def plot_traces(recorded, fitted, dt_s: float, unit_label: str = "mV", scale: float = 1e3,
                title: str | None = None, path: str | Path | None = None):
    """One panel per trace: recorded (grey) and fitted (colour) against time in ms.

    ``recorded`` and ``fitted`` are (n_traces, n_steps) arrays in SI units;
    ``scale`` converts them to ``unit_label`` (default V -> mV).

    Returns the :class:`matplotlib.figure.Figure`; in a notebook it is shown as
    the cell's value; save it with ``fig.savefig``. When ``path`` is given the
    figure is also saved there as PNG. pyplot is not used: the matplotlib
    backend is unchanged and no figure is left open in pyplot.
    """
    recorded = np.atleast_2d(np.asarray(recorded, dtype=float))
    fitted = np.atleast_2d(np.asarray(fitted, dtype=float))
    n_traces = recorded.shape[0]
    time_ms = np.arange(recorded.shape[1]) * dt_s * 1e3
    fig = new_figure((3.2 * n_traces, 3.2))
    axes = fig.subplots(1, n_traces, sharey=True, squeeze=False)
    for k, ax in enumerate(axes[0]):
        ax.plot(time_ms, recorded[k] * scale, color="0.6", lw=1.5, label="recorded")
        ax.plot(time_ms, fitted[k] * scale, color="C3", lw=1.0, label="fitted")
        ax.set_xlabel("time (ms)")
        ax.set_title(f"trace {k}")
    axes[0][0].set_ylabel(unit_label)
    axes[0][0].legend(loc="upper right", fontsize="small")
    if title:
        fig.suptitle(title)
    return finish_figure(fig, path)


def plot_error_per_round(history, path: str | Path | None = None):
    """Best error so far and the spread of errors in each round (log scale).

    ``history`` is a :class:`~modelfit_core.results.history.History` (e.g.
    ``fitter.history``); non-finite (diverged) errors are left out.

    Returns the :class:`matplotlib.figure.Figure`; in a notebook it is shown as
    the cell's value; save it with ``fig.savefig``. When ``path`` is given the
    figure is also saved there as PNG. pyplot is not used: the matplotlib
    backend is unchanged and no figure is left open in pyplot.
    """
    fig = new_figure((5, 3.2))
    ax = fig.subplots()
    best, rounds = np.inf, []
    for record in history.rounds:
        finite = record.errors[np.isfinite(record.errors)]
        if finite.size:
            best = min(best, float(finite.min()))
            ax.plot(np.full(finite.size, record.index), finite, ".", color="0.75", ms=2)
        rounds.append((record.index, best))
    if rounds:
        ax.plot(*zip(*rounds), "-o", color="C0", ms=3, label="best so far")
    ax.set_yscale("log")
    ax.set_xlabel("round")
    ax.set_ylabel("error")
    ax.legend(fontsize="small")
    return finish_figure(fig, path)


def plot_parameters_explored(history, path: str | Path | None = None):
    """Each parameter against the round, coloured by error (log), best marked.

    ``history`` is a :class:`~modelfit_core.results.history.History`; diverged
    parameter sets are drawn as red crosses, the best value as a line.

    Returns the :class:`matplotlib.figure.Figure`; in a notebook it is shown as
    the cell's value; save it with ``fig.savefig``. When ``path`` is given the
    figure is also saved there as PNG. pyplot is not used: the matplotlib
    backend is unchanged and no figure is left open in pyplot.
    """
    parameters, errors, diverged, rounds = history.stacked()
    names = history.space.names
    fig = new_figure((3.2 * len(names), 3.0))
    axes = fig.subplots(1, len(names), squeeze=False)
    finite = np.isfinite(errors) & ~diverged
    colour = np.log10(np.where(finite, errors, np.nan)) if finite.any() else None
    for k, (ax, name) in enumerate(zip(axes[0], names)):
        if colour is not None:
            ax.scatter(rounds[finite], parameters[finite, k], c=colour[finite], s=6,
                       cmap="viridis_r")
        else:  # nothing finite to colour by (no cmap, so matplotlib does not warn)
            ax.scatter(rounds[finite], parameters[finite, k], s=6)
        if (~finite).any():
            ax.scatter(rounds[~finite], parameters[~finite, k], marker="x", s=8, color="red",
                       label="diverged")
        if history.best_vector is not None:
            ax.axhline(history.best_vector[k], color="C3", lw=0.8)
        ax.set_xlabel("round")
        ax.set_title(f"{name} (SI)")
    return finish_figure(fig, path)
