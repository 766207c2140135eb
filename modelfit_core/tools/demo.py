"""``modelfit demo``: fit the bundled Hodgkin–Huxley recordings end to end."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def run_demo(output_dir: str | Path = "output/demo", n_rounds: int = 30, n_samples: int = 100,
             seed: int | None = 1, optimizer: str | None = None, backend: str = "runtime",
             feedback: str | None = "progressbar", data_dir: str | Path | None = None) -> dict:
    """Fit the HH conductances with the default pipeline; write plots; return a summary.

    Parameters
    ----------
    output_dir : path
        Where ``hh_fit.png`` (fitted vs recorded) and ``hh_errors.png`` are written.
    n_rounds, n_samples : int
        Optimization rounds and parameter sets per round.
    seed : int, optional
        Makes the fit repeat exactly.
    optimizer : str, optional
        An optimizer plugin's name; default: the one ``fit()`` chooses for this fit
        (docs/optimizers.md, "The default optimizer").
    """
    from brian2 import mV, msiemens, nsiemens, psiemens, usiemens

    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset
    from modelfit_core.model.parameters import format_quantity
    from modelfit_core.fitting.pipeline import Pipeline
    from modelfit_core.tools.plotting import plot_error_per_round, plot_traces

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    dataset = load_hh_dataset(data_dir)
    inputs, outputs, dt = dataset.quantities()
    pipe = Pipeline.from_names(optimizer=optimizer, metric="mse", backend=backend,
                               feedback=feedback, seed=seed)
    fitter = pipe.trace_fitter(model=HH_MODEL, input={"I": inputs}, output={"v": outputs},
                               dt=dt, n_samples=n_samples, method="exponential_euler",
                               param_init={"v": -65 * mV}, namespace=hh_constants())
    started = time.perf_counter()
    best, error = fitter.fit(n_rounds=n_rounds, gl=[2 * psiemens, 200 * nsiemens],
                             g_na=[200 * nsiemens, 0.4 * msiemens],
                             g_kd=[200 * nsiemens, 200 * usiemens])
    elapsed = time.perf_counter() - started
    assert best is not None, "a fit of one round or more has a best parameter set"
    fitted = fitter.generate_traces()
    plot_traces(dataset.outputs * 1e-3, np.asarray(fitted), dataset.dt_s,
                title=f"bundled HH data: fit after {n_rounds} rounds",
                path=output_dir / "hh_fit.png")
    fit = fitter.current_fit
    assert fit is not None, "fit() made one"
    plot_error_per_round(fit.history, path=output_dir / "hh_errors.png")

    if fitter.optimizer_choice is not None:
        print(f"\nNo optimizer named: fitted with {fit.optimizer!r}, "
              f"{fitter.optimizer_choice.reason}.")
    print(f"\nFitted {n_rounds} rounds x {fit.n_samples} parameter sets in {elapsed:.2f} s "
          f"({fit.history.n_evaluations} simulations"
          + (", each with its sensitivity equations)" if fit.gradient_round is not None
             else ")"))
    print(f"{'parameter':<10}{'fitted':>16}{'ground truth':>16}{'ratio':>8}")
    space = fit.space
    for name, dim in zip(space.names, space.dims):
        value = float(best[name])
        truth = dataset.ground_truth.get(name)
        truth_text = format_quantity(truth, dim) if truth is not None else "?"
        ratio = f"{value / truth:.2f}" if truth else ""
        print(f"{name:<10}{format_quantity(value, dim):>16}{truth_text:>16}{ratio:>8}")
    noise_floor = dataset.noise_mv ** 2
    print(f"error (MSE): {error}  (recording noise alone gives {noise_floor:.4g} mV^2)")
    print(f"plots: {output_dir / 'hh_fit.png'}, {output_dir / 'hh_errors.png'}")
    return {"best": best, "error": error, "elapsed_s": elapsed, "fitter": fitter}
