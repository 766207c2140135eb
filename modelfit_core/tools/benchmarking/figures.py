"""The benchmark's figures (matplotlib, from ``results.json`` alone): the runtime ECDF of
every method over all (problem, target, seed) pairs, COCO-style on a log evaluation
axis, and each problem's convergence (best error against evaluations)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modelfit_core.tools.benchmarking.measures import ecdf
from modelfit_core.tools.benchmarking.report import areas, max_budget, methods_of, pairs
from modelfit_core.tools.plotting import finish_figure, new_figure

ECDF_FILE = "ecdf.png"


def _styles(methods: list[str], default: str | None) -> dict[str, dict[str, Any]]:
    """A colour and line style per method; the default optimizer drawn thick."""
    colours = [f"C{k % 10}" for k in range(len(methods))]
    dashes = ["-", "--", "-.", ":"]
    return {m: {"color": colours[k], "linestyle": dashes[(k // 10) % len(dashes)],
                "linewidth": 2.6 if m == default else 1.4}
            for k, m in enumerate(methods)}


def plot_ecdf(document: Mapping[str, Any], path: Path | None = None):
    """Fraction of (problem, target, seed) pairs solved against evaluations, per method
    (legend ordered by ECDF area, largest first)."""
    top = max_budget(document)
    grid = np.unique(np.round(np.logspace(0, math.log10(max(top, 2)), 200)))
    default = document.get("default_method")
    ranked = areas(document)
    styles = _styles(methods_of(document), default)
    fig = new_figure((7.5, 4.8))
    ax = fig.add_subplot(1, 1, 1)
    for method, area in ranked.items():
        # the default is drawn thick; named so in the legend unless its name says it
        label = f"{method} ({area:.3f})" + (" default" if method == default
                                             and "default" not in method else "")
        ax.step(grid, ecdf(pairs(document, method), grid), where="post", label=label,
                **styles[method])
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("evaluations (plain simulations; one with sensitivities counts 1 + n_parameters)")
    ax.set_ylabel("fraction of (problem, target, seed) solved")
    n_problems = len(document["problems"])
    ax.set_title(f"runtime ECDF, {n_problems} problems (legend: ECDF area)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return finish_figure(fig, path)


def plot_convergence(document: Mapping[str, Any], problem: str, path: Path | None = None):
    """Median best error (and the quartiles, shaded) against evaluations for each method
    on one problem, with its error targets as horizontal lines."""
    info = document["problems"][problem]
    default = document.get("default_method")
    styles = _styles(methods_of(document), default)
    fig = new_figure((7.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for method in methods_of(document):
        runs = [r for r in document["runs"] if r["problem"] == problem
                and r["method"] == method and r["evaluations"]]
        if not runs:
            continue
        length = min(len(r["evaluations"]) for r in runs)
        x = np.asarray(runs[0]["evaluations"][:length], dtype=float)
        y = np.array([[np.inf if e is None else e for e in r["best_errors"][:length]]
                      for r in runs], dtype=float)
        low, mid, high = np.percentile(y, [25, 50, 75], axis=0)
        ax.plot(x, mid, label=method, **styles[method])
        ax.fill_between(x, low, high, color=styles[method]["color"], alpha=0.12)
    for target in info["targets"]:
        if target["error"] is not None:
            ax.axhline(target["error"], color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best error so far (SI)")
    ax.set_title(f"{problem}: {info['title']}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return finish_figure(fig, path)


def write_figures(folder: Path, document: Mapping[str, Any]) -> list[Path]:
    """``ecdf.png`` and ``convergence_<problem>.png`` in ``folder``."""
    written = [folder / ECDF_FILE]
    plot_ecdf(document, written[0])
    for problem in document["problems"]:
        path = folder / f"convergence_{re.sub(r'[^A-Za-z0-9_.-]', '_', problem)}.png"
        plot_convergence(document, problem, path)
        written.append(path)
    return written
