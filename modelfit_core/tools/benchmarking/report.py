"""A benchmark's results as files and text: the raw results (``results.json``, whole;
``results.csv``, one row per run and target), the table, and two result folders
compared.

The table, the figures and ``--compare`` read only ``results.json``, so results of
two versions of modelfit, or of two machines, are compared from their folders.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.tools.benchmarking.measures import ecdf_area
from modelfit_core.tools.benchmarking.problems import ReadyProblem
from modelfit_core.tools.benchmarking.runs import RunResult

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
TABLE = "table.md"
FORMAT = 1
"""Version of results.json's layout."""


def _number(value: float) -> float | None:
    """JSON has no infinity: None stands for 'none yet / not reached'."""
    return float(value) if value is not None and math.isfinite(value) else None


def results_document(ready: Mapping[str, ReadyProblem], results: Sequence[RunResult],
                     default: str, about: Mapping[str, Any]) -> dict[str, Any]:
    """Everything measured, as JSON-ready data."""
    problems = {}
    for name, item in ready.items():
        problem = item.problem
        targets = next((r.targets for r in results if r.run.problem == name), ())
        problems[name] = {
            "title": problem.title, "category": problem.category,
            "error_floor": item.error_floor, "n_samples": problem.n_samples,
            "parameters": list(item.parameter_names), "ground_truth": item.truth_si,
            "targets": [{"label": t.label, "error": t.error, "tolerance": t.tolerance}
                        for t in targets]}
    runs = []
    for result in results:
        run, path = result.run, result.trajectory
        runs.append({
            "problem": run.problem, "method": run.method.label, "seed": run.seed,
            "budget": run.budget, "n_samples": run.n_samples, "status": result.status,
            "setup_seconds": result.setup_seconds, "refused": result.reason or None,
            "evaluations": list(path.evaluations),
            "best_errors": [_number(e) for e in path.best_errors],
            "seconds": list(path.seconds),
            "best_parameters": path.best_parameters,
            "hits": {h.target: {"evaluations": h.evaluations, "seconds": h.seconds}
                     for h in path.hits}})
    return {"format": FORMAT, "default_method": default, "about": dict(about),
            "problems": problems, "runs": runs}


def write_results(folder: Path, document: Mapping[str, Any]) -> list[Path]:
    """``results.json`` and ``results.csv`` in ``folder``."""
    json_path, csv_path = folder / RESULTS_JSON, folder / RESULTS_CSV
    json_path.write_text(json.dumps(document, indent=1) + "\n")
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["problem", "category", "method", "seed", "target", "target_error",
                         "evaluations_to_target", "seconds_to_target", "budget",
                         "final_error", "wall_seconds", "status"])
        for run in document["runs"]:
            problem = document["problems"][run["problem"]]
            errors = [e for e in run["best_errors"] if e is not None]
            for target in problem["targets"]:
                hit = run["hits"][target["label"]]
                writer.writerow([run["problem"], problem["category"], run["method"],
                                 run["seed"], target["label"], target["error"],
                                 hit["evaluations"], hit["seconds"], run["budget"],
                                 errors[-1] if errors else None,
                                 run["seconds"][-1] if run["seconds"] else 0.0,
                                 run["status"]])
    return [json_path, csv_path]


def read_results(folder: Path | str) -> dict[str, Any]:
    """The ``results.json`` of a result folder.

    Raises
    ------
    ConfigurationError
        The folder holds no results.json (or not one this version reads).
    """
    path = Path(folder) / RESULTS_JSON
    if not path.is_file():
        raise ConfigurationError(f"{str(folder)!r} holds no {RESULTS_JSON}: name a folder "
                                 f"written by modelfit benchmark --output.")
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ConfigurationError(f"{path} is not a results file of format {FORMAT}.")
    return document


# -- what the table and figures show ------------------------------------------------------
def methods_of(document: Mapping[str, Any]) -> list[str]:
    """Methods in the order they were run."""
    return list(dict.fromkeys(run["method"] for run in document["runs"]))


def pairs(document: Mapping[str, Any], method: str,
          problems: Iterable[str] | None = None) -> list[float | None]:
    """Evaluations to target of each (problem, target, seed) pair of ``method``."""
    wanted = set(problems) if problems is not None else None
    return [hit["evaluations"] for run in document["runs"] if run["method"] == method
            and (wanted is None or run["problem"] in wanted) for hit in run["hits"].values()]


def max_budget(document: Mapping[str, Any]) -> int:
    return max((run["budget"] for run in document["runs"]), default=1)


def areas(document: Mapping[str, Any], problems: Iterable[str] | None = None
          ) -> dict[str, float]:
    """ECDF area of each method (over ``problems``, default all), largest first."""
    wanted = list(problems) if problems is not None else None
    top = max_budget(document)
    found = {m: ecdf_area(pairs(document, m, wanted), top) for m in methods_of(document)}
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def _median(values: Sequence[float | None]) -> float:
    """Median with unreached (None) counted as infinitely late."""
    if not values:
        return math.nan
    return statistics.median(math.inf if v is None else v for v in values)


def _evals(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.0f}"


REFERENCE_METHOD = "nevergrad:DE"
"""The method each category's winner is compared with: brian2modelfitting's default."""


def table(document: Mapping[str, Any], reference: str | None = REFERENCE_METHOD) -> str:
    """The results table (Markdown): per problem and method, the median evaluations to
    each target over seeds ("—": not reached by half the seeds) with how many seeds
    reached it, the success rate over targets and seeds, the median final error and the
    median wall time; then each method's ECDF area, and per problem category the method
    with the largest area against ``reference`` (if it was run)."""
    lines = []
    default = document.get("default_method")
    for name, problem in document["problems"].items():
        labels = [t["label"] for t in problem["targets"]]
        lines += [f"### {name}: {problem['title']}", "",
                  (f"error floor {problem['error_floor']:.4g} (SI), category "
                   f"{problem['category']}"), "",
                  "| method | " + " | ".join(labels) +
                  " | success | median final error | median wall s |",
                  "|---|" + "---|" * (len(labels) + 3)]
        for method in methods_of(document):
            runs = [r for r in document["runs"] if r["problem"] == name
                    and r["method"] == method]
            if not runs:
                continue
            cells = []
            for label in labels:
                hits = [r["hits"][label]["evaluations"] for r in runs]
                reached = sum(h is not None for h in hits)
                cells.append(f"{_evals(_median(hits))} ({reached}/{len(runs)})")
            total = sum(h["evaluations"] is not None for r in runs for h in r["hits"].values())
            success = total / max(len(runs) * len(labels), 1)
            finals = [next((e for e in reversed(r["best_errors"]) if e is not None),
                           math.inf) for r in runs]
            wall = statistics.median(r["seconds"][-1] + r["setup_seconds"] if r["seconds"]
                                     else r["setup_seconds"] for r in runs)
            shown = f"**{method}**" if method == default else method
            lines.append(f"| {shown} | " + " | ".join(cells) +
                         f" | {success:.0%} | {statistics.median(finals):.4g} | {wall:.1f} |")
        lines.append("")
    lines += [("### ECDF area (all problems, targets and seeds; log evaluations, 1 to "
               f"{max_budget(document)})"), "", "| method | ECDF area |", "|---|---|"]
    for method, area in areas(document).items():
        shown = f"**{method}** (default)" if method == default else method
        lines.append(f"| {shown} | {area:.3f} |")
    ran = reference if reference in methods_of(document) else None
    lines += ["", "### By problem category (ECDF area)", "", by_category(document, ran)]
    return "\n".join(lines)


def by_category(document: Mapping[str, Any], reference: str | None) -> str:
    """Per problem category: the method with the largest ECDF area, and how it compares
    with ``reference`` (a method label, e.g. nevergrad's DE)."""
    categories: dict[str, list[str]] = {}
    for name, problem in document["problems"].items():
        categories.setdefault(problem["category"], []).append(name)
    lines = ["| category | problems | best method (ECDF area) |" +
             (f" {reference} | ratio |" if reference else ""),
             "|---|---|---|" + ("---|---|" if reference else "")]
    for category, names in categories.items():
        found = areas(document, names)
        if not found:
            continue
        best, area = next(iter(found.items()))
        cells = [category, ", ".join(names),
                 f"{best} ({area:.3f})" if area > 0 else "no method reached a target"]
        if reference:
            theirs = found.get(reference)
            cells.append("not run" if theirs is None else f"{theirs:.3f}")
            cells.append("—" if not theirs else f"{area / theirs:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare(old: Mapping[str, Any], new: Mapping[str, Any], old_name: str = "old",
            new_name: str = "new") -> str:
    """Two result folders side by side: each method's ECDF area over the problems both
    ran, and per (problem, method) the median evaluations to the hardest error target
    and the median wall seconds per evaluation."""
    shared = [p for p in new["problems"] if p in old["problems"]]
    if not shared:
        raise ConfigurationError(f"{old_name} and {new_name} have no problem in common.")
    lines = [f"ECDF area over the problems both ran ({', '.join(shared)})", "",
             f"| method | {old_name} | {new_name} |", "|---|---|---|"]
    old_areas, new_areas = areas(old, shared), areas(new, shared)
    for method in dict.fromkeys([*new_areas, *old_areas]):
        cells = [f"{a[method]:.3f}" if method in a else "not run"
                 for a in (old_areas, new_areas)]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", (f"| problem | method | median evaluations to the hardest error target "
                   f"({old_name} / {new_name}) | median ms per evaluation ({old_name} / "
                   f"{new_name}) |"), "|---|---|---|---|"]
    for name in shared:
        hardest = [t["label"] for t in new["problems"][name]["targets"]
                   if t["error"] is not None][-1:]
        for method in dict.fromkeys([*methods_of(new), *methods_of(old)]):
            cells = []
            for document in (old, new):
                runs = [r for r in document["runs"] if r["problem"] == name
                        and r["method"] == method]
                if not runs:
                    cells.append(("not run", "not run"))
                    continue
                hits = [r["hits"].get(hardest[0], {}).get("evaluations") if hardest else None
                        for r in runs]
                per_eval = statistics.median(1e3 * r["seconds"][-1] / r["evaluations"][-1]
                                             for r in runs if r["evaluations"])
                cells.append((_evals(_median(hits)), f"{per_eval:.2f}"))
            if all(c == ("not run", "not run") for c in cells):
                continue
            lines.append(f"| {name} | {method} | {cells[0][0]} / {cells[1][0]} | "
                         f"{cells[0][1]} / {cells[1][1]} |")
    return "\n".join(lines) + "\n"
