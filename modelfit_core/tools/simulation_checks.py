"""Contract checks for the plugins that simulate: backends and inference engines.

Unlike optimizers and metrics (:mod:`.contract_checks`), these plugins run Brian
models, so each check runs one tiny model a few times instead of many generated
cases: a passive membrane, ``dv/dt = (gl*(El - v) + I)/C``, whose exact solution
on the time grid is known, so that every neuron's trace can be compared with
what its parameter set and input trace must give.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from modelfit_core.contracts.simulation import InputSignal, SimulationResult, SimulationSpec

__all__ = ["check_backend", "check_inference", "passive_spec", "passive_traces"]

PASSIVE_MODEL = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
"""
EL_V = -0.07
DT_S = 1e-4


def _currents(n_traces: int, n_steps: int) -> np.ndarray:
    """Current steps (A), shape (n_traces, n_steps): trace k steps up to (k + 1) * 0.2 nA."""
    currents = np.zeros((n_traces, n_steps))
    for k in range(n_traces):
        currents[k, n_steps // 5:] = (k + 1) * 0.2e-9
    return currents


def passive_spec(n_samples: int = 3, n_traces: int = 2, n_steps: int = 40,
                 name: str = "modelfit") -> SimulationSpec:
    """The specification of the passive membrane that the checks simulate: ``n_traces``
    current steps, ``v`` recorded, parameters ``gl`` (S) and ``C`` (F)."""
    from brian2 import amp, get_dimensions, mV
    return SimulationSpec(
        model=PASSIVE_MODEL, parameter_names=("gl", "C"), n_samples=n_samples,
        n_traces=n_traces, n_steps=n_steps, dt=DT_S,
        inputs={"I": InputSignal(values=_currents(n_traces, n_steps),
                                 dim=get_dimensions(amp))},
        record=("v",), method="exact", param_init={"v": EL_V},
        namespace={"El": EL_V * 1000 * mV}, name=name)


def passive_traces(spec: SimulationSpec, gl: np.ndarray, C: np.ndarray) -> np.ndarray:
    """What ``v`` must be (V), shape (n_samples, n_traces, n_steps): the exact solution
    on the time grid, each step's input held over the step, recorded at its start."""
    currents = spec.inputs["I"].values
    expected = np.empty((spec.n_samples, spec.n_traces, spec.n_steps))
    for sample in range(spec.n_samples):
        decay = np.exp(-spec.dt * gl[sample] / C[sample])
        for trace in range(spec.n_traces):
            v = EL_V
            for step in range(spec.n_steps):
                expected[sample, trace, step] = v
                v_inf = EL_V + currents[trace, step] / gl[sample]
                v = v_inf + (v - v_inf) * decay
    return expected


def _check_run(prepared, spec: SimulationSpec, gl, C, who: str, rtol: float) -> None:
    result = prepared.run({"gl": np.asarray(gl, dtype=float), "C": np.asarray(C, dtype=float)})
    assert isinstance(result, SimulationResult), (
        f"{who}: run() returned {type(result).__name__}, not a SimulationResult")
    traces = np.asarray(result.traces.get("v"))
    shape = (spec.n_samples, spec.n_traces, spec.n_steps)
    assert traces.shape == shape, (
        f"{who}: traces['v'] has shape {traces.shape}; a batch of {spec.n_samples} parameter "
        f"sets on {spec.n_traces} traces of {spec.n_steps} steps is {shape}")
    expected = passive_traces(spec, np.asarray(gl), np.asarray(C))
    wrong = ~np.isclose(traces, expected, rtol=rtol, atol=1e-9)
    if wrong.any():
        sample, trace, step = np.argwhere(wrong)[0]
        raise AssertionError(
            f"{who}: parameter set {sample} (gl={gl[sample]:.3g} S, C={C[sample]:.3g} F) on "
            f"input trace {trace} gives v = {traces[sample, trace, step]!r} V at step {step}; "
            f"the passive membrane gives {expected[sample, trace, step]!r} V (neuron k "
            f"simulates parameter set k // n_traces on input trace k % n_traces)")
    assert not result.diverged(spec.n_samples).any(), f"{who}: finite traces marked diverged"


def check_backend(factory: Callable[[], Any], *, rtol: float = 1e-6) -> None:
    """Check the :class:`~modelfit_core.contracts.protocols.SimulationBackend` contract.

    The backend prepares the passive membrane (:func:`passive_spec`: 3 parameter
    sets on 2 input traces) once and runs it twice, as a fit's rounds do:

    * ``factory()`` has a ``name`` and ``prepare(spec)``, which returns an object
      with ``run(parameters)`` and ``close()``;
    * ``run`` returns a :class:`SimulationResult` whose ``traces['v']`` has shape
      (n_samples, n_traces, n_steps) and holds, for every parameter set and input
      trace, the membrane's exact solution (within ``rtol``), whatever the order of
      the parameter sets (a repeated set gives the same traces);
    * finite traces are not marked diverged; ``close()`` releases the preparation.

    Raises AssertionError describing the first violation.
    """
    backend = factory()
    who = f"{type(backend).__name__}"
    assert isinstance(getattr(backend, "name", None), str), f"{who} has no name (a str)"
    spec = passive_spec()
    prepared = backend.prepare(spec)
    try:
        for method in ("run", "close"):
            assert callable(getattr(prepared, method, None)), (
                f"{who}.prepare() returned {prepared!r}, which has no {method}()")
        _check_run(prepared, spec, [10e-9, 40e-9, 10e-9], [50e-12, 200e-12, 50e-12], who,
                   rtol)
        # a later round: other parameter sets, the first two swapped
        _check_run(prepared, spec, [40e-9, 20e-9, 5e-9], [200e-12, 100e-12, 400e-12], who,
                   rtol)
    finally:
        prepared.close()


def check_inference(run_inference: Callable[[], Any], bounds: Mapping[str, tuple[float, float]],
                    *, n_draws: int = 50) -> None:
    """Check the :class:`~modelfit_core.contracts.protocols.Inference` contract.

    ``run_inference()`` makes the inference object on the caller's problem,
    calls its ``infer(...)`` (with a few simulations: the check is about shapes,
    not accuracy) and returns what draws from the trained posterior in SI units
    (the inference object itself for the manual's ``Inferencer``): its
    ``sample((n,))`` gives ``n`` parameter sets, one column per parameter of
    ``bounds`` (name -> (lower, upper), SI, in the order of the columns), all
    inside the bounds (the prior's support), and its ``log_prob`` of those sets
    is finite.

    Raises AssertionError describing the first violation.
    """
    posterior = run_inference()
    who = type(posterior).__name__
    assert callable(getattr(posterior, "sample", None)), f"{posterior!r} has no sample()"
    drawn = posterior.sample((n_draws,))
    samples = np.asarray(drawn, dtype=float)
    assert samples.shape == (n_draws, len(bounds)), (
        f"{who}.sample(({n_draws},)) has shape {samples.shape}; expected "
        f"({n_draws}, {len(bounds)}), one column per parameter ({', '.join(bounds)})")
    lower = np.array([low for low, _ in bounds.values()])
    upper = np.array([high for _, high in bounds.values()])
    outside = (samples < lower) | (samples > upper)
    assert not outside.any(), (
        f"{who} sampled {samples[np.argwhere(outside)[0][0]]}, outside the bounds {dict(bounds)}")
    if callable(getattr(posterior, "log_prob", None)):
        log_probs = np.asarray(posterior.log_prob(drawn), dtype=float)
        assert log_probs.shape == (n_draws,) and np.isfinite(log_probs).all(), (
            f"{who}.log_prob of its own samples is not {n_draws} finite values")
