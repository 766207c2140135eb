"""Where the time of a round goes, on the driver and on each dask worker.

Fits the HH tutorial model (the bundled recordings, 5 traces x 1497 steps, default
optimizer) on the runtime backend and on the dask backend with 2 workers, and
prints, for the later rounds, the driver's phases (ask, simulate, score, tell and
store, listeners) and each worker's share of the simulate phase (busy in its
chunks, idle). The driver's phases are timed by wrapping the functions the fit
calls; the workers' by dask's task stream.

    .venv/bin/python benchmarks/dask_round_timeline.py [--samples 400] [--rounds 5]

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import functools
import statistics
import time

import numpy as np


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--optimizer", default="pymoo",
                        help="an optimizer plugin (default: pymoo, i.e. pymoo's DE)")
    parser.add_argument("--chunks-per-worker", type=int, default=None,
                        help="the dask backend's option (default: its default)")
    parser.add_argument("--figure", default=None,
                        help="also draw the last 3 rounds as a timeline (PNG) here")
    return parser.parse_args()


class PhaseClock:
    """Seconds spent in each wrapped function, per round, and when (epoch seconds, the
    clock dask's task stream uses)."""

    def __init__(self):
        self.seconds = collections.defaultdict(list)
        self.spans: list[tuple[str, float, float]] = []

    def wrap(self, owner, attribute: str, phase: str) -> None:
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started, wall = time.perf_counter(), time.time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase].append(time.perf_counter() - started)
                self.spans.append((phase, wall, time.time()))

        setattr(owner, attribute, timed)

    def means(self, skip: int) -> dict[str, float]:
        return {phase: statistics.mean(values[skip:]) if values[skip:] else 0.0
                for phase, values in self.seconds.items()}


def tutorial_fitter(backend, n_samples, stamps):
    from brian2 import amp, mV, ms

    from modelfit_core import Pipeline
    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset
    data = load_hh_dataset()
    pipe = Pipeline.from_names(backend=backend, seed=3,
                               feedback=lambda *a: stamps.append(time.perf_counter()))
    return pipe.trace_fitter(model=HH_MODEL, input={"I": data.inputs * amp},
                             output={"v": data.outputs * mV}, dt=0.01 * ms,
                             n_samples=n_samples, method="exponential_euler",
                             param_init={"v": -65 * mV}, namespace=hh_constants())


def timeline(backend, args, client=None):
    from brian2 import msiemens, nsiemens, psiemens, usiemens

    from modelfit_core.fitting import events, fit, objective
    clock = PhaseClock()
    clock.wrap(fit, "ask_points", "ask")
    clock.wrap(fit, "tell_round", "tell")
    clock.wrap(objective.Objective, "score", "score")
    clock.wrap(events.FitEvents, "round_finished", "listeners")
    stamps: list[float] = []
    fitter = tutorial_fitter(backend, args.samples, stamps)
    bounds = dict(gl=[2 * psiemens, 200 * nsiemens], g_na=[200 * nsiemens, 0.4 * msiemens],
                  g_kd=[200 * nsiemens, 200 * usiemens])
    options = {"optimizer": args.optimizer}
    warm = 2
    fitter.fit(n_rounds=warm, **options, **bounds)
    clock.wrap(type(fitter.current_fit.simulation), "run", "simulate")
    tasks = []
    started = time.perf_counter()
    if client is not None:
        from dask.distributed import get_task_stream
        with get_task_stream(client) as stream:
            fitter.fit(n_rounds=args.rounds, **options, **bounds)
        tasks = stream.data
    else:
        fitter.fit(n_rounds=args.rounds, **options, **bounds)
    rounds = np.diff([started] + stamps[warm:])
    phases = clock.means(skip=warm)
    phases["simulate"] = statistics.mean(clock.seconds["simulate"])
    return statistics.mean(rounds), phases, tasks, clock.spans


def worker_shares(tasks, n_rounds):
    """Per worker: seconds computing per round, and the chunks it ran."""
    busy = collections.defaultdict(float)
    count = collections.Counter()
    for task in tasks:
        for span in task["startstops"]:
            if span["action"] == "compute":
                busy[task["worker"]] += span["stop"] - span["start"]
        count[task["worker"]] += 1
    return {worker: (busy[worker] / n_rounds, count[worker] / n_rounds) for worker in busy}


def main():
    args = parse_args()
    from modelfit_core.registry.plugin_registry import Registry
    options = {} if args.chunks_per_worker is None else \
        {"chunks_per_worker": args.chunks_per_worker}
    dask = Registry().lookup("backends", "dask")(n_workers=args.workers, **options)
    client = dask._ensure_client()
    try:
        runtime_round, runtime_phases, _, _ = timeline("runtime", args)
        dask_round, dask_phases, tasks, spans = timeline(dask, args, client)
    finally:
        dask.shutdown()
    print(f"HH tutorial, 5 traces x 1497 steps, {args.samples} samples/round, "
          f"{args.rounds} timed rounds (ms per round)")
    print(f"{'':<28}{'runtime':>10}{f'dask x{args.workers}':>10}")
    for phase in ("ask", "simulate", "score", "tell", "listeners"):
        print(f"{'driver: ' + phase:<28}{runtime_phases.get(phase, 0) * 1e3:>10.1f}"
              f"{dask_phases.get(phase, 0) * 1e3:>10.1f}")
    other_rt = runtime_round - sum(runtime_phases.values())
    other_dask = dask_round - sum(dask_phases.values())
    print(f"{'driver: rest':<28}{other_rt * 1e3:>10.1f}{other_dask * 1e3:>10.1f}")
    print(f"{'round':<28}{runtime_round * 1e3:>10.1f}{dask_round * 1e3:>10.1f}"
          f"   speed-up {runtime_round / dask_round:.2f}")
    for worker, (busy, chunks) in sorted(worker_shares(tasks, args.rounds).items()):
        print(f"{'worker ' + worker.rsplit(':', 1)[-1]:<28}{'':>10}{busy * 1e3:>10.1f}"
              f"   busy in {chunks:g} chunk(s)/round, "
              f"{busy / dask_phases['simulate']:.0%} of the simulate phase")
    if args.figure:
        draw(spans, tasks, args.figure, f"{args.samples} samples per round, "
             f"{args.workers} workers: the last 3 rounds")
        print(f"timeline: {args.figure}")


def draw(spans, tasks, path, title) -> None:
    """The driver's phases and each worker's chunks (compute, transfer) on one time
    axis, for the last three rounds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    asks = [start for phase, start, _ in spans if phase == "ask"]
    begin = asks[-3] if len(asks) >= 3 else spans[0][1]
    end = max(stop for _, _, stop in spans)
    colours = {"ask": "tab:blue", "simulate": "lightgrey", "score": "tab:olive",
               "tell": "tab:orange", "listeners": "tab:purple",
               "compute": "tab:green", "transfer": "tab:red", "deserialize": "tab:pink",
               "disk-read": "tab:brown"}
    workers = sorted({task["worker"] for task in tasks})
    figure, axes = plt.subplots(figsize=(10, 1.2 + 0.6 * (1 + len(workers))))
    for phase, start, stop in spans:
        if stop >= begin:
            axes.broken_barh([((start - begin) * 1e3, (stop - start) * 1e3)], (0, 0.8),
                             color=colours.get(phase, "black"), label=f"driver: {phase}")
    for row, worker in enumerate(workers, start=1):
        for task in tasks:
            if task["worker"] != worker:
                continue
            for span in task["startstops"]:
                if span["stop"] >= begin:
                    axes.broken_barh([((span["start"] - begin) * 1e3,
                                       (span["stop"] - span["start"]) * 1e3)],
                                     (row, 0.8), color=colours.get(span["action"], "black"),
                                     label=f"worker: {span['action']}")
    axes.set_yticks([0.4 + k for k in range(1 + len(workers))],
                    ["driver"] + [f"worker {w.rsplit(':', 1)[-1]}" for w in workers])
    axes.set_xlim(0, (end - begin) * 1e3)
    axes.set_xlabel("ms")
    axes.set_title(title)
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes.legend(unique.values(), unique.keys(), loc="upper center", ncol=4, fontsize=7,
                bbox_to_anchor=(0.5, -0.35))
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
