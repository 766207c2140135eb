"""The ``modelfit`` command line."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from modelfit_core.contracts.errors import FitStateError
from modelfit_core.tools.terminal_text import escaped

if TYPE_CHECKING:
    import pandas


def _cmd_demo(args) -> int:
    from modelfit_core.tools.demo import run_demo
    run_demo(output_dir=args.output, n_rounds=args.rounds, n_samples=args.samples,
             seed=args.seed, optimizer=args.optimizer, backend=args.backend,
             feedback=None if args.quiet else "progressbar", data_dir=args.data_dir)
    return 0


def _cmd_plugins(args) -> int:
    from modelfit_core.registry.plugin_registry import Registry
    registry = Registry()
    if args.check or args.strict:
        registry.check_all()
    provided = {key: [f"{kind.singular} '{name}'" for kind, name in pairs]
                for key, pairs in registry.provided_by().items()}
    statuses = registry.statuses
    failed = 0
    width = max([len("entry point")] + [len(n) for n in statuses]) + 2
    what_width = max([len("provides")] + [len(", ".join(p)) for p in provided.values()]) + 2
    print(f"{'entry point':<{width}}{'status':<8}{'provides':<{what_width}}distribution")
    for name, status in sorted(statuses.items()):
        what = ", ".join(provided.get(name, [])) or "-"
        state = "ok" if status.loaded else "FAILED"
        print(f"{escaped(name):<{width}}{state:<8}{escaped(what):<{what_width}}"
              f"{escaped(status.distribution)}")
        if not status.loaded:
            failed += 1
            print(f"{'':<{width}}{escaped(status.describe(), keep_newlines=True)}")
    if not (args.check or args.strict):
        print("\n(read from the installed metadata; --check imports each plugin to be sure)")
    return 0 if failed == 0 or not args.strict else 1


def _print_best(history) -> None:
    from modelfit_core.model.parameters import format_quantity
    if history.best_vector is None:
        print("no finite error yet (every simulation diverged)")
        return
    print(f"best error: {history.best_error:.6g} after {len(history.rounds)} rounds "
          f"({history.n_evaluations} evaluations)")
    for name, value, dim in zip(history.space.names, history.best_vector, history.space.dims):
        print(f"  {escaped(name):<12}{format_quantity(float(value), dim):>18}")


def _write_history_plots(history, output: Path) -> list[Path]:
    from modelfit_core.tools.plotting import plot_error_per_round, plot_parameters_explored
    output.mkdir(parents=True, exist_ok=True)
    paths = [output / "errors.png", output / "parameters.png"]
    plot_error_per_round(history, path=paths[0])
    plot_parameters_explored(history, path=paths[1])
    return paths


def _cmd_fit(args) -> int:
    import json

    import numpy as np

    from modelfit_core.tools.config import build_fitter, dashboard_of, load_config
    from modelfit_core.tools.config_files import output_directory
    from modelfit_core.tools.plotting import plot_traces
    if args.workers is not None and args.backend is None:
        from modelfit_core.contracts.errors import ConfigurationError
        raise ConfigurationError("--workers sets how many workers --backend starts: name "
                                 "the backend too, e.g. --backend dask --workers 2.")
    if len(args.configs) > 1:
        return _cmd_fit_many(args)
    args.config = args.configs[0]
    config = _with_command_line_options(load_config(args.config), args)
    if args.resume and not config.get("fit", "storage"):
        raise config.error("fit", None, "--resume continues a fit stored in a database, and "
                           "this configuration has none; add storage = \"sqlite:///fit.db\" "
                           "to [fit] (a fit without storage keeps nothing to resume).")
    fitter, bounds = build_fitter(config)
    output = output_directory(config, args.output)
    try:
        fitter.fit(n_rounds=config.get("fit", "n_rounds"), resume=args.resume,
                   objectives=config.get("fit", "objectives"),
                   dashboard=dashboard_of(config), **bounds)
    except KeyboardInterrupt:
        print(interruption_report(args, config, fitter), file=sys.stderr)
        return INTERRUPTED
    history = fitter.history
    if history is None:  # fit() makes one before its first round
        raise FitStateError("The fit ended before it started; nothing to write.")
    table = cast("pandas.DataFrame", fitter.results(format="dataframe"))
    table.to_csv(output / "results.csv", index=False)
    best = {name: float(v) for name, v in zip(history.space.names, history.best_vector)} \
        if history.best_vector is not None else None
    (output / "best.json").write_text(json.dumps({"parameters_si": best,
                                                  "error": history.best_error}, indent=2))
    paths = _write_history_plots(history, output)
    traces = fitter.problem.recordings.trace_outputs
    if history.best_vector is not None and traces:
        fitted = fitter.generate(output_var=traces[0])
        plot_traces(fitter.problem.recordings.traces[traces[0]].values, np.asarray(fitted),
                    float(fitter.dt), unit_label="SI", scale=1.0,
                    path=output / "fit.png")
        paths.append(output / "fit.png")
    if history.front is not None and len(history.front):
        from modelfit_core.tools.pareto_plots import write_front_plots
        front = cast("pandas.DataFrame", fitter.pareto_front(format="dataframe"))
        front.to_csv(output / "front.csv", index=False)
        paths += [output / "front.csv", *write_front_plots(fitter, output)]
    print()
    _print_best(history)
    print("wrote " + ", ".join(escaped(p) for p in [output / "results.csv",
                                                     output / "best.json", *paths]))
    return 0


def _with_command_line_options(config, args):
    """``config`` with ``--backend``, ``--workers`` and ``--storage`` (relative to the
    working directory) in place of its own ``[fit]`` values."""
    import attrs

    from modelfit_core.results.database import database_path
    fit = dict(config.data.get("fit", {}))
    if args.backend is not None:
        fit["backend"] = args.backend
        fit.pop("backend_options", None)
    if args.workers is not None:
        fit["backend_options"] = {"n_workers": args.workers}
    if args.storage is not None:
        fit["storage"] = f"sqlite:///{database_path(args.storage).resolve()}"
    return attrs.evolve(config, data={**config.data, "fit": fit})


def _common_storage(configs) -> str:
    """The one storage file several configurations name (``[fit] storage``, relative to
    each file), or a ConfigurationError saying to pass ``--storage``."""
    from modelfit_core.contracts.errors import ConfigurationError
    from modelfit_core.results.database import database_path
    named = {}
    for config in configs:
        url = config.get("fit", "storage")
        if url is None:
            named[config.path] = None
            continue
        try:
            path = database_path(url)
        except ConfigurationError as exc:
            raise config.error("fit", "storage", str(exc)) from None
        named[config.path] = (config.path.parent / path).resolve()
    found = set(named.values())
    if len(found) == 1 and None not in found:
        return f"sqlite:///{found.pop()}"
    listed = ", ".join(f"{escaped(path)}: {escaped(where) if where else 'none'}"
                       for path, where in named.items())
    raise ConfigurationError(
        f"Several configurations are fitted into one storage file, and theirs differ "
        f"({listed}): pass --storage sqlite:///many.db, or give them all the same [fit] "
        f"storage.")


def _cmd_fit_many(args) -> int:
    """``modelfit fit A.toml B.toml ...``: every configuration checked, then the fits run
    by fit_many (side by side with ``--backend dask``), each its own study in one file;
    each study's results.csv, best.json and plots in ``OUTPUT/<study>/``."""
    import json
    import re

    from modelfit_core.results.database import database_path
    from modelfit_core.results.storage import read_history
    from modelfit_core.tools.config import load_config
    from modelfit_core.tools.config_files import output_directory
    from modelfit_core.tools.many_fits import FitJob, fit_many
    configs = [load_config(path) for path in args.configs]
    storage = f"sqlite:///{database_path(args.storage).resolve()}" \
        if args.storage is not None else _common_storage(configs)
    outputs = [output_directory(config, args.output) for config in configs]
    options = {"n_workers": args.workers} if args.workers is not None else None
    jobs = [FitJob.from_config(config.path.resolve()) for config in configs]
    try:
        outcomes = fit_many(jobs, storage, backend=args.backend, backend_options=options)
    except KeyboardInterrupt:
        print(f"modelfit fit: interrupted; every round written is kept in {escaped(storage)}. "
              f"Run the same command again to continue: finished fits are read back, the "
              f"others resumed.", file=sys.stderr)
        return INTERRUPTED
    print()
    written = []
    for outcome, output in zip(outcomes, outputs):
        print(escaped(outcome))
        if outcome.rounds == 0:
            continue
        folder = output / re.sub(r"[^A-Za-z0-9_.-]", "_", outcome.study)
        folder.mkdir(parents=True, exist_ok=True)
        history = read_history(storage, outcome.study)
        table = cast("pandas.DataFrame", history.results(format="dataframe"))
        table.to_csv(folder / "results.csv", index=False)
        best = {name: float(v) for name, v in
                zip(history.space.names, history.best_vector)} \
            if history.best_vector is not None else None
        (folder / "best.json").write_text(json.dumps({"parameters_si": best,
                                                      "error": history.best_error}, indent=2))
        _write_history_plots(history, folder)
        written.append(folder)
    if written:
        print("wrote results.csv, best.json, errors.png and parameters.png in "
              + ", ".join(escaped(folder) for folder in written))
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if failed:
        print(f"modelfit fit: {len(failed)} of {len(outcomes)} fits failed (above); the "
              f"others' results are kept. Fix them and run the same command again.",
              file=sys.stderr)
        return 1
    return 0


INTERRUPTED = 130
"""Exit status after Ctrl-C, as shells report a process ended by SIGINT (128 + 2)."""


def interruption_report(args, config, fitter) -> str:
    """What ``modelfit fit`` says after Ctrl-C: rounds kept, and how to resume."""
    command = f"modelfit fit {shlex.quote(str(args.config))}"
    if args.output is not None:
        command += f" --output {shlex.quote(str(args.output))}"
    done = len(fitter.history.rounds) if fitter.history is not None else 0
    if fitter.storage is None:
        return (f"modelfit fit: interrupted after {done} completed round(s). Without a "
                f"storage nothing was kept on disk. To make a fit resumable, add\n"
                f"    storage = \"sqlite:///fit.db\"\n"
                f"to the [fit] section of {config.path}; after an interruption, continue "
                f"with: {command} --resume")
    # a round joins the history only once it is stored, and Ctrl-C waits for that
    stored = done
    where = fitter.storage.location
    if stored == 0:
        return (f"modelfit fit: interrupted before the first round was completed; nothing "
                f"was stored in {where}. Start again with: {command}")
    return (f"modelfit fit: interrupted; {stored} round(s) completed and stored in {where}. "
            f"Resume with:\n    {command} --resume")


def _cmd_results(args) -> int:
    """Summarize a stored study; an unusable database is a message and exit status 2."""
    from modelfit_core.contracts.errors import ModelfitError
    from modelfit_core.results.storage import list_studies, read_history
    try:  # reading needs no write access: read-only files and folders are fine
        if args.output:  # checked first: a summary should not end in a traceback
            _check_output_folder(Path(args.output))
        studies = list_studies(args.database)
        history = read_history(args.database, args.study)
    except ModelfitError as exc:
        print(f"modelfit results: error: {escaped(exc, keep_newlines=True)}", file=sys.stderr)
        return 2
    print(f"{escaped(args.database)}: studies "
          f"{', '.join(escaped(s) for s in studies) or '(none)'}")
    best, rows = np.inf, []
    for record in history.rounds:
        finite = record.errors[np.isfinite(record.errors)]
        best = min(best, float(finite.min())) if finite.size else best
        rows.append((record.index, best, int(record.diverged.sum())))
    print(f"{'round':>6}{'best so far':>16}{'diverged':>10}")
    for index, value, n_diverged in rows:
        print(f"{index:>6}{value:>16.6g}{n_diverged:>10}")
    _print_best(history)
    if history.front is not None and len(history.front):
        from modelfit_core.tools.pareto_plots import front_table
        print(front_table(history))
    if args.output:
        paths = _write_history_plots(history, Path(args.output))
        if history.front is not None and len(history.front):
            from modelfit_core.tools.pareto_plots import write_front_plots
            paths += write_front_plots(history, Path(args.output))
        print("wrote " + ", ".join(map(escaped, paths)))
    return 0


def _check_output_folder(path: Path) -> None:
    from modelfit_core.contracts.errors import ConfigurationError
    from modelfit_core.tools.config_files import unusable_folder
    problem = unusable_folder(path)
    if problem is not None:
        raise ConfigurationError(f"--output {escaped(path)} {problem}; choose another "
                                 f"folder.")


def _cmd_dashboard(args) -> int:
    """Serve the pages of a fit database until Ctrl-C (the ``dashboards`` plugin)."""
    from modelfit_core.registry.parts import Parts
    options = {"host": args.host} if args.port is None else {"host": args.host,
                                                             "port": args.port}
    dashboard = Parts.lazy_default().make("dashboards", args.plugin, options)
    dashboard.serve(args.storage, study=args.study)
    return 0


def _cmd_benchmark(args) -> int:
    """Run the suite of fitting problems, or compare two result folders (docs/benchmark.md)."""
    from modelfit_core.tools.benchmarking.suite import compare_folders, run_benchmark
    if args.compare is not None:
        print(compare_folders(*args.compare), end="")
        return 0
    document = run_benchmark(problems=args.problems, optimizers=args.optimizers,
                             seeds=args.seeds, budget=args.budget, quick=args.quick,
                             output=args.output, backend=args.backend,
                             progress=not args.quiet)
    from modelfit_core.tools.benchmarking.report import TABLE, areas
    best = next(iter(areas(document)), None)
    print(f"wrote {Path(args.output) / TABLE}, results.json, results.csv, ecdf.png and "
          f"the convergence plots in {args.output} "
          f"({document['about']['wall_seconds']:.0f} s); largest ECDF area: {best} "
          f"(the method '{document['default_method']}' is what fit() uses when it names "
          f"no optimizer)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from modelfit_core.registry.parts import DEFAULT_NAMES
    parser = argparse.ArgumentParser(prog="modelfit", description="Fit Brian 2 neuron models "
                                     "to recordings.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit the bundled Hodgkin-Huxley data, write plots")
    demo.add_argument("--output", default="output/demo", help="folder for the PNG files")
    demo.add_argument("--rounds", type=int, default=30)
    demo.add_argument("--samples", type=int, default=100)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--optimizer", default=None,
                      help="an optimizer plugin (default: the one fit() chooses for the "
                           "fit, see docs/optimizers.md)")
    demo.add_argument("--backend", default="runtime")
    demo.add_argument("--data-dir", default=None,
                      help="folder with input_traces_hh.csv/output_traces_hh.csv")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_cmd_demo)
    fit = commands.add_parser(
        "fit", help="run the fit described in a TOML file (or several fits at once)",
        description="Run the fit a configuration describes. With several configurations, "
                    "every one is checked first, then the fits run (side by side with "
                    "--backend dask), each its own study in one storage file; running the "
                    "same command again reads finished fits back and resumes the others "
                    "(docs/distributed_and_storage.md, 'Many fits').")
    fit.add_argument("configs", nargs="+", metavar="CONFIG",
                     help="CONFIG.toml (see docs/distributed_and_storage.md)")
    fit.add_argument("--output", default=None,
                     help="folder for results and plots (several configurations: a "
                          "subfolder per study)")
    fit.add_argument("--resume", action="store_true",
                     help="continue the stored study after an interruption (several "
                          "configurations always do)")
    fit.add_argument("--backend", default=None,
                     help="one configuration: the backend simulating it; several: where "
                          "they run (dask: side by side on its workers; else one after "
                          "another here)")
    fit.add_argument("--workers", type=int, default=None,
                     help="workers the backend starts (its n_workers option)")
    fit.add_argument("--storage", default=None,
                     help="the storage file (sqlite:///many.db or a path, relative to the "
                          "working directory) instead of the configurations' [fit] storage")
    fit.set_defaults(func=_cmd_fit)
    results = commands.add_parser("results", help="summarize a stored fit (fit.db)")
    results.add_argument("database")
    results.add_argument("--study", default=None, help="default: the most recent")
    results.add_argument("--output", default=None, help="folder for plots")
    results.set_defaults(func=_cmd_results)
    dashboard = commands.add_parser(
        "dashboard", help="serve web pages about the studies of a fit database, live",
        description="Serve the studies of a fit database as web pages, read-only, updated "
                    "while fits write it (docs/dashboard.md). Ctrl-C stops.")
    dashboard.add_argument("storage", help="sqlite:///fit.db or a path to the database")
    dashboard.add_argument("--host", default="127.0.0.1",
                           help="address to listen on (default 127.0.0.1: this machine "
                                "only; 0.0.0.0 serves the network)")
    dashboard.add_argument("--port", type=int, default=None,
                           help="port (default 8080; 0: any free port)")
    dashboard.add_argument("--study", default=None, help="the study the address opens")
    dashboard.add_argument("--plugin", default=DEFAULT_NAMES["dashboards"],
                           help="the dashboards plugin to serve with (default: web)")
    dashboard.set_defaults(func=_cmd_dashboard)
    benchmark = commands.add_parser(
        "benchmark", help="run every optimizer on the suite of fitting problems",
        description="Run installed optimizers on installed fitting problems (the "
                    "modelfit.problems plugins) and write the table, the runtime ECDF, "
                    "convergence plots and raw results (docs/benchmark.md). Every run is "
                    "stored in OUTPUT/runs.db: run again to resume.")
    benchmark.add_argument("--problems", nargs="+", default=None, metavar="NAME",
                           help="problem plugins (default: all installed)")
    benchmark.add_argument("--optimizers", nargs="+", default=None, metavar="PLUGIN[:METHOD]",
                           help="e.g. default pymoo:DE nevergrad:CMA random, each "
                                "optionally +refine ('default': what fit() chooses when it "
                                "names no optimizer; default: it and every installed "
                                "optimizer with the methods it lists)")
    benchmark.add_argument("--seeds", type=int, default=None,
                           help="seeds per (problem, method) (default 10; --quick: 1)")
    benchmark.add_argument("--budget", type=int, default=None,
                           help="evaluations per run (default: each problem's)")
    benchmark.add_argument("--quick", action="store_true",
                           help="every problem at a small budget, the default optimizer "
                                "and the baselines (random search), one seed (about a "
                                "minute)")
    benchmark.add_argument("--backend", default=None, help="e.g. dask (default: runtime)")
    benchmark.add_argument("--output", default="benchmark", help="result folder")
    benchmark.add_argument("--compare", nargs=2, default=None, metavar=("OLD", "NEW"),
                           help="compare two result folders instead of running")
    benchmark.add_argument("--quiet", action="store_true", help="no progress bar")
    benchmark.set_defaults(func=_cmd_benchmark)
    plugins = commands.add_parser("plugins", help="list installed plugins and their status")
    plugins.add_argument("--check", action="store_true",
                         help="import every plugin and check its class (slower)")
    plugins.add_argument("--strict", action="store_true",
                         help="imply --check; exit 1 if a plugin fails to load")
    plugins.set_defaults(func=_cmd_plugins)
    return parser


def main(argv=None) -> int:
    from modelfit_core.contracts.errors import ModelfitError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ModelfitError as exc:  # user errors: the message, not a traceback
        print(f"modelfit {args.command}: error: {escaped(exc, keep_newlines=True)}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a fit's rounds: nothing to report but that
        print(f"modelfit {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
