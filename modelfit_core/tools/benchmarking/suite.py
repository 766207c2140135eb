"""``modelfit benchmark`` as a function: plan, run with a progress bar, write the results,
the table and the figures; and two result folders compared."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from modelfit_core.registry.plugin_registry import Registry, shared_registry
from modelfit_core.tools.benchmarking.figures import write_figures
from modelfit_core.tools.benchmarking.plan import make_plan
from modelfit_core.tools.benchmarking.report import (
    TABLE,
    compare,
    read_results,
    results_document,
    table,
    write_results,
)
from modelfit_core.tools.benchmarking.runs import RunResult, run_plan
from modelfit_core.version import __version__


def run_benchmark(*, problems: Iterable[str] | None = None,
                  optimizers: Iterable[str] | None = None,
                  seeds: int | Sequence[int] | None = None, budget: int | None = None,
                  quick: bool = False, output: Path | str = "benchmark",
                  backend: str | None = None, registry: Registry | None = None,
                  progress: bool = True, stream: TextIO | None = None) -> dict[str, Any]:
    """Run the suite and write ``results.json``, ``results.csv``, ``table.md``,
    ``ecdf.png`` and ``convergence_<problem>.png`` into ``output``.

    Arguments as :func:`~modelfit_core.tools.benchmarking.plan.make_plan` (checked
    before anything is simulated); ``progress`` shows a progress bar of rounds on
    ``stream`` (default stderr). Runs already stored in ``output/runs.db`` are read
    back, partly stored ones resumed. Returns the results document.
    """
    registry = registry if registry is not None else shared_registry()
    stream = stream if stream is not None else sys.stderr
    plan = make_plan(registry, problems=problems, optimizers=optimizers, seeds=seeds,
                     budget=budget, quick=quick, output=output, backend=backend)
    total = sum(run.n_rounds for run in plan.runs)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, unit="round", file=stream, dynamic_ncols=True)

    def rounds_done(n: int) -> None:
        if bar is not None and n:
            bar.update(n)

    def problem_started(name: str) -> None:
        if bar is not None:
            bar.set_description(f"{name}: recordings")

    def run_finished(result: RunResult) -> None:
        if bar is not None:
            bar.set_description(f"{result.run.problem} {result.run.method.label} "
                                f"seed {result.run.seed}")

    started = time.perf_counter()
    try:
        ready, results = run_plan(plan, registry, on_rounds=rounds_done,
                                  on_problem=problem_started, on_result=run_finished)
    finally:
        if bar is not None:
            bar.close()
    about = {"modelfit": __version__, "python": platform.python_version(),
             "machine": platform.machine(), "processor": platform.processor(),
             "quick": quick, "seeds": list(plan.seeds), "backend": backend,
             "wall_seconds": time.perf_counter() - started}
    document = results_document(ready, results, plan.default.label, about)
    write_results(plan.output, document)
    (plan.output / TABLE).write_text(table(document))
    write_figures(plan.output, document)
    return document


def compare_folders(old: Path | str, new: Path | str) -> str:
    """The comparison of two result folders (Markdown)."""
    return compare(read_results(old), read_results(new), str(old), str(new))
