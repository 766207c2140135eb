"""The sbi Inferencer: simple and flexible interfaces, analysis, storage, bad input.

A passive membrane with two parameters (leak conductance and capacitance)
driven by a current step keeps every test small: 40 ms traces, a few
hundred simulations, small networks and few training epochs.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import torch
from brian2 import amp, mV, ms, nS, pF, volt

from modelfit_core import ConfigurationError, DataError, FitStateError, ParameterError

torch.set_num_threads(1)
pytestmark = [pytest.mark.filterwarnings("ignore:Maximum number of epochs"),
              pytest.mark.filterwarnings("ignore:Data has extreme outliers")]

El = -70 * mV
EQS = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
"""
DT = 0.1 * ms
N_STEPS = 400
TRUTH = {"gl": 20e-9, "C": 200e-12}
BOUNDS = {"gl": [5 * nS, 50 * nS], "C": [50 * pF, 500 * pF]}
QUIET = {"show_progress_bars": False}


def step_current(n_steps=N_STEPS, start=50, amplitude=0.5e-9):
    current = np.zeros(n_steps)
    current[start:] = amplitude
    return current


def passive_response(gl, C, current):
    """Exact solution on the time grid (what Brian's 'exact' method computes)."""
    v = np.empty(len(current))
    v[0] = float(El)
    decay = np.exp(-float(DT) * gl / C)
    for n in range(len(current) - 1):
        v_inf = float(El) + current[n] / gl
        v[n + 1] = v_inf + (v[n] - v_inf) * decay
    return v


CURRENT = step_current()
RECORDED = passive_response(TRUTH["gl"], TRUTH["C"], CURRENT)
FEATURES = [lambda x: x[-1] - x[0],           # steady-state deflection: I/gl
            lambda x: x[100] - x[0],          # 5 ms into the step: the time constant
            lambda x: np.mean(x[50:])]


def make_inferencer(features=FEATURES, **kwargs):
    from modelfit_core import Inferencer
    kwargs.setdefault("param_init", {"v": El})
    return Inferencer(dt=DT, model=EQS, input={"I": CURRENT[None] * amp},
                      output={"v": RECORDED[None] * volt},
                      features=None if features is None else {"v": features},
                      method="exact", **kwargs)


def in_credible_region(inferencer, point, level=0.95, n=2000):
    """Whether ``point`` lies in the highest-density region holding ``level`` of the mass."""
    samples = inferencer.sample((n,))
    log_probs = inferencer.log_prob(samples)
    threshold = np.quantile(log_probs, 1 - level)
    return inferencer.log_prob(np.array([point]))[0] >= threshold


@pytest.fixture(scope="module")
def trained():
    """One amortized SNPE posterior shared by the analysis and storage tests."""
    inferencer = make_inferencer()
    inferencer.infer(n_samples=500, inference_method="SNPE", density_estimator_model="mdn",
                     inference_kwargs=QUIET, train_kwargs={"max_num_epochs": 150}, seed=1,
                     **BOUNDS)
    return inferencer


# -- names ------------------------------------------------------------------------
def test_method_names_old_and_new():
    from modelfit_plugins.inference.sbi_methods import resolve_estimator, resolve_method
    assert resolve_method("SNPE").name == "NPE_C"
    assert resolve_method("npe").name == "NPE_C"
    assert resolve_method("SNLE").name == "NLE_A"
    assert resolve_method("NRE").name == "NRE_B"
    assert resolve_method("SNRE_C").name == "NRE_C"
    assert resolve_estimator(resolve_method("SNRE"), None) == "resnet"
    assert resolve_estimator(resolve_method("SNPE"), None) == "maf"
    assert resolve_estimator(resolve_method("NLE"), "nsf") == "nsf"
    with pytest.raises(ConfigurationError, match="Did you mean 'SNPE'"):
        resolve_method("SNPF")
    with pytest.raises(ConfigurationError, match="linear"):
        resolve_estimator(resolve_method("SNRE"), "maf")


def test_reached_through_the_registry_without_importing_torch():
    code = ("import sys; from modelfit_core import Registry; r = Registry(); "
            "assert r.names('inference') == ['sbi'], r.names('inference'); "
            "assert 'torch' not in sys.modules and 'sbi' not in sys.modules; "
            "from modelfit_core import Inferencer; print(Inferencer.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "sbi_inference" in out.stdout


# -- bad input ------------------------------------------------------------------------
def test_bounds_missing_or_inverted():
    inferencer = make_inferencer()
    with pytest.raises(ParameterError, match="'C'.*no bounds.*infer\\(\\)"):
        inferencer.init_prior(gl=[5 * nS, 50 * nS])
    with pytest.raises(ParameterError, match="not below"):
        inferencer.init_prior(gl=[50 * nS, 5 * nS], C=[50 * pF, 500 * pF])
    with pytest.raises(ParameterError, match="not a parameter"):
        inferencer.init_prior(gl=[5 * nS, 50 * nS], C=[50 * pF, 500 * pF], El=[1 * mV, 2 * mV])
    with pytest.raises(ParameterError):
        inferencer.infer(n_samples=10, gl=[5 * nS, 50 * nS])


def test_features_must_return_scalars():
    with pytest.raises(ConfigurationError, match="Feature 1 of 'v'.*shape \\(400,\\)"):
        make_inferencer(features=[np.max, lambda x: x * 2])
    with pytest.raises(ConfigurationError, match="not callable"):
        make_inferencer(features=[np.max, "mean"])
    with pytest.raises(ConfigurationError, match="not an output"):
        from modelfit_core import Inferencer
        Inferencer(dt=DT, model=EQS, input={"I": CURRENT[None] * amp},
                   output={"v": RECORDED[None] * volt}, features={"w": [np.max]})


def test_spike_outputs_need_features_and_threshold():
    from modelfit_core import Inferencer
    common = dict(dt=DT, model=EQS, input={"I": CURRENT[None] * amp})
    with pytest.raises(ConfigurationError, match="threshold"):
        Inferencer(output={"v": RECORDED[None] * volt, "spikes": [np.array([0.01])]},
                   features={"v": FEATURES, "spikes": [len]}, **common)
    with pytest.raises(ConfigurationError, match="need features"):
        Inferencer(output={"v": RECORDED[None] * volt, "spikes": [np.array([0.01])]},
                   threshold="v > -50*mV", **common)
    with pytest.raises(DataError, match="2 spike trains"):
        Inferencer(output={"v": RECORDED[None] * volt, "spike": [np.array([]), np.array([])]},
                   features={"v": FEATURES, "spike": [len]}, threshold="v > -50*mV", **common)


def test_unknown_names_and_state_errors():
    inferencer = make_inferencer()
    with pytest.raises(FitStateError, match="init_prior"):
        inferencer.extract_summary_statistics(np.ones((2, 2)))
    with pytest.raises(FitStateError, match="infer"):
        inferencer.sample((10,))
    with pytest.raises(ConfigurationError, match="Unknown inference_method"):
        inferencer.infer(n_samples=10, inference_method="SNXX", **BOUNDS)
    with pytest.raises(ConfigurationError, match="does not fit"):
        inferencer.fit(n_rounds=1)
    with pytest.raises(ConfigurationError, match="n_samples"):
        inferencer.infer(**BOUNDS)


def test_nan_statistics_are_dropped_with_a_warning():
    torch.manual_seed(5)  # the draws (and so the count of NaN rows) whatever ran before
    inferencer = make_inferencer(features=FEATURES[:2] + [
        lambda x: np.nan if x[-1] - x[0] > 0.05 else np.mean(x[50:])])
    prior = inferencer.init_prior(**BOUNDS)
    theta = inferencer.generate_training_data(120, prior)
    x = inferencer.extract_summary_statistics(theta)
    n_nan = int(np.isnan(x).any(axis=1).sum())
    assert 0 < n_nan < 120
    inference = inferencer.init_inference("SNPE", "mdn", prior, **QUIET)
    with pytest.warns(RuntimeWarning, match=f"{n_nan} of 120 simulations gave NaN"):
        inferencer.infer_step(prior, inference, theta=theta, x=x,
                              train_kwargs={"max_num_epochs": 2})
    assert inferencer.posterior is not None


def test_the_prior_is_over_the_parameters_own_values():
    """init_prior as in the manual's example: the box is the bounds in SI (the rescaling
    for training stays inside); samples drawn from it are SI values in the bounds."""
    inferencer = make_inferencer()
    prior = inferencer.init_prior(**BOUNDS)
    names = inferencer.space.names
    lower = [float(min(BOUNDS[n])) for n in names]
    upper = [float(max(BOUNDS[n])) for n in names]
    np.testing.assert_allclose(prior.base_dist.low.numpy(), lower, rtol=1e-6)
    np.testing.assert_allclose(prior.base_dist.high.numpy(), upper, rtol=1e-6)
    drawn = np.asarray(prior.sample((50,)))
    assert ((drawn >= np.array(lower) * (1 - 1e-6)) & (drawn <= np.array(upper) * (1 + 1e-6))).all()
    theta = inferencer.generate_training_data(20, prior)
    assert ((theta >= np.array(lower) * (1 - 1e-6)) & (theta <= np.array(upper) * (1 + 1e-6))).all()


def test_training_data_go_through_the_backend_in_fixed_batches():
    calls = []

    class CountingBackend:
        name = "counting"

        def __init__(self):
            from modelfit_plugins.backends.brian2_runtime import Brian2RuntimeBackend
            self.inner = Brian2RuntimeBackend()

        def prepare(self, spec):
            calls.append(("prepare", spec.n_samples))
            prepared = self.inner.prepare(spec)
            run = prepared.run

            def counted(parameters, iteration=0.0):
                calls.append(("run", len(next(iter(parameters.values())))))
                return run(parameters, iteration)
            prepared.run = counted
            return prepared

    inferencer = make_inferencer(batch_size=40, backend=CountingBackend())
    prior = inferencer.init_prior(**BOUNDS)
    theta = inferencer.generate_training_data(100, prior)
    x = inferencer.extract_summary_statistics(theta)
    assert calls == [("prepare", 34), ("run", 34), ("run", 34), ("run", 34)]
    # each parameter set got its own simulation: the deflection is I/gl
    # columns in alphabetical order, as brian2modelfitting's: C, then gl
    assert inferencer.param_names == ["C", "gl"]
    C, gl = theta[:, 0], theta[:, 1]
    np.testing.assert_allclose(x[:, 0], 0.5e-9 / gl * (1 - np.exp(-34.9e-3 * gl / C)),
                               rtol=2e-3)
    assert inferencer.n_neurons == 100


# -- simple interface -----------------------------------------------------------------
# a C++ build, a dask cluster or sbi training: minutes on a shared 2-core machine
@pytest.mark.timeout(900)
@pytest.mark.slow
def test_posterior_covers_the_ground_truth(trained):
    assert trained.param_names == ["C", "gl"]  # alphabetical, as brian2modelfitting's
    assert in_credible_region(trained, [TRUTH[name] for name in trained.param_names])
    samples = trained.sample((1000,))
    assert samples.shape == (1000, 2)
    assert trained.samples is samples
    gl = samples[:, trained.param_names.index("gl")]
    assert (gl >= 5e-9).all() and (gl <= 50e-9).all()
    assert abs(np.median(gl) - TRUTH["gl"]) < 5e-9
    traces = trained.generate_traces(n_samples=200)
    assert traces.shape == (1, N_STEPS) and traces.dim == volt.dim
    assert np.abs(np.asarray(traces)[0] - RECORDED).max() < 5e-3


@pytest.mark.slow
def test_multi_round_and_continuing():
    inferencer = make_inferencer()
    first = inferencer.infer(n_samples=200, n_rounds=2, density_estimator_model="mdn",
                             inference_kwargs=QUIET, train_kwargs={"max_num_epochs": 40},
                             seed=2, **BOUNDS)
    assert inferencer._round == 2
    focused = inferencer.infer(train_kwargs={"max_num_epochs": 20})  # one more round
    assert focused is not first and inferencer._round == 3
    assert inferencer.n_samples == 200
    with pytest.raises(ConfigurationError, match="restart=True"):
        inferencer.infer(n_samples=50, gl=[1 * nS, 50 * nS], C=[50 * pF, 500 * pF])
    inferencer.infer(n_samples=100, restart=True, density_estimator_model="mdn",
                     inference_kwargs=QUIET, train_kwargs={"max_num_epochs": 5}, **BOUNDS)
    assert inferencer._round == 1


@pytest.mark.slow
@pytest.mark.parametrize("method, estimator, posterior_kwargs", [
    ("SNLE", "mdn", {"sample_with": "rejection"}),
    ("NRE", "mlp", {"sample_with": "rejection"}),
])
def test_likelihood_and_ratio_estimation(method, estimator, posterior_kwargs):
    inferencer = make_inferencer()
    inferencer.infer(n_samples=300, inference_method=method, density_estimator_model=estimator,
                     inference_kwargs=QUIET, train_kwargs={"max_num_epochs": 30},
                     posterior_kwargs=posterior_kwargs, seed=3, **BOUNDS)
    samples = inferencer.sample((200,))
    assert samples.shape == (200, 2) and np.isfinite(samples).all()
    C = samples[:, inferencer.param_names.index("C")]
    assert (C >= 50e-12).all() and (C <= 500e-12).all()


# a C++ build, a dask cluster or sbi training: minutes on a shared 2-core machine
@pytest.mark.timeout(900)
@pytest.mark.slow
def test_voltage_and_spike_features():
    from modelfit_core import Inferencer
    lif = Inferencer(dt=DT, model=EQS, input={"I": 2 * CURRENT[None] * amp},
                     output={"v": RECORDED[None] * volt, "spikes": [np.array([0.012, 0.024])]},
                     features={"v": FEATURES[:1], "spikes": [
                         lambda s: s.size, lambda s: 0.0 if s.size == 0 else s[0]]},
                     method="exact", threshold="v > -55*mV", reset="v = -70*mV",
                     param_init={"v": El})
    assert lif.x_o.tolist() == pytest.approx([RECORDED[-1] - RECORDED[0], 2, 0.012], rel=1e-5)
    lif.infer(n_samples=150, density_estimator_model="mdn", inference_kwargs=QUIET,
              train_kwargs={"max_num_epochs": 5}, **BOUNDS)
    x = lif.x
    assert x.shape == (150, 3) and (x[:, 1] > 0).all()
    generated = lif.generate_traces(output_var=["v", "spike"])
    assert set(generated) == {"v", "spikes"} and len(generated["spikes"]) == 1


@pytest.mark.slow
def test_automatic_features_default_and_custom_embedding():
    from torch import nn

    class YuleNet(nn.Module):
        """The manual's YuleNet (Rodrigues & Gramfort 2020), unchanged."""

        def __init__(self, in_features, out_features):
            super().__init__()
            self.conv1 = nn.Conv1d(in_channels=1, out_channels=8, kernel_size=64,
                                   stride=1, padding=32, bias=True)
            self.relu1 = nn.ReLU()
            pooling1 = 16
            self.pool1 = nn.AvgPool1d(kernel_size=pooling1)
            self.conv2 = nn.Conv1d(in_channels=8, out_channels=8, kernel_size=64,
                                   stride=1, padding=32, bias=True)
            self.relu2 = nn.ReLU()
            pooling2 = int((in_features // pooling1) // 16)
            self.pool2 = nn.AvgPool1d(kernel_size=pooling2)
            self.dropout = nn.Dropout(p=0.50)
            linear_in = 8 * in_features // (pooling1 * pooling2) - 1
            self.linear = nn.Linear(in_features=linear_in, out_features=out_features)
            self.relu3 = nn.ReLU()

        def forward(self, x):
            if x.ndim == 1:
                x = x.view(1, 1, -1)
            else:
                x = x.view(len(x), 1, -1)
            x_conv1 = self.conv1(x)
            x_relu1 = self.relu1(x_conv1)
            x_pool1 = self.pool1(x_relu1)
            x_conv2 = self.conv2(x_pool1)
            x_relu2 = self.relu2(x_conv2)
            x_pool2 = self.pool2(x_relu2)
            x_flatten = x_pool2.view(len(x), 1, -1)
            x_dropout = self.dropout(x_flatten)
            x = self.relu3(self.linear(x_dropout))
            return x.view(len(x), -1)

    from modelfit_core import Inferencer
    n_steps = 548  # a length for which the manual's YuleNet layer sizes fit together
    current = step_current(n_steps)
    recorded = passive_response(TRUTH["gl"], TRUTH["C"], current)
    inferencer = Inferencer(dt=DT, model=EQS, input={"I": current[None] * amp},
                            output={"v": recorded[None] * volt}, method="exact",
                            param_init={"v": El})
    assert inferencer.x_o.shape == (n_steps,)
    inferencer.infer(n_samples=150, density_estimator_model="mdn", inference_kwargs=QUIET,
                     train_kwargs={"max_num_epochs": 3}, **BOUNDS)
    assert inferencer.sample((20,)).shape == (20, 2)
    inferencer.infer(n_samples=150, restart=True, inference_method="SNPE",
                     density_estimator_model="maf",
                     inference_kwargs={"embedding_net": YuleNet(n_steps, 10), **QUIET},
                     train_kwargs={"num_atoms": 10, "training_batch_size": 100,
                                   "use_combined_loss": True, "discard_prior_samples": True,
                                   "max_num_epochs": 3},
                     sbi_device="gpu" if not torch.cuda.is_available() else "cuda",
                     **BOUNDS)
    assert inferencer.sample((20,)).shape == (20, 2)
    with pytest.raises(ConfigurationError, match="cannot learn features"):
        inferencer.infer(n_samples=20, restart=True, inference_method="SNLE", **BOUNDS)


# -- flexible interface and storage -----------------------------------------------------
@pytest.mark.slow
def test_flexible_interface_and_round_trips(tmp_path):
    inferencer = make_inferencer()
    prior = inferencer.init_prior(**BOUNDS)
    theta = inferencer.generate_training_data(300, prior)
    assert theta.shape == (300, 2)
    x = inferencer.extract_summary_statistics(theta)
    path = tmp_path / "stats.npz"
    inferencer.save_summary_statistics(path, theta, x)
    theta_loaded, x_loaded = make_inferencer().load_summary_statistics(path)
    np.testing.assert_array_equal(theta_loaded, theta)
    np.testing.assert_array_equal(x_loaded, x)

    torch.manual_seed(4)
    inference = inferencer.init_inference(inference_method="SNPE",
                                          density_estimator_model="mdn", prior=prior, **QUIET)
    posterior = inferencer.infer_step(proposal=prior, inference=inference, theta=theta_loaded,
                                      x=x_loaded, train_kwargs={"max_num_epochs": 60})
    assert inferencer.posterior is posterior
    probe = np.array([[20e-9, 200e-12], [10e-9, 300e-12]])
    before = inferencer.log_prob(probe)

    posterior_path = tmp_path / "posterior.pt"
    inferencer.save_posterior(posterior_path)
    other = make_inferencer()
    other.load_posterior(posterior_path)
    np.testing.assert_allclose(other.log_prob(probe), before, rtol=1e-5)
    assert other.sample((50,)).shape == (50, 2)
    with pytest.raises(DataError, match="save_posterior"):
        torch.save({"something": 1}, tmp_path / "bad.pt")
        other.load_posterior(tmp_path / "bad.pt")

    focused = inferencer.infer(train_kwargs={"max_num_epochs": 10})  # focused continuation
    assert focused is inferencer.posterior and focused is not posterior
    with pytest.raises(ConfigurationError, match="not accepted"):
        inferencer.infer(n_samples=20, train_kwargs={"max_num_epoch": 1})


@pytest.mark.slow
def test_analysis_plots(trained):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained.sample((500,))
    limits = {"gl": [5 * nS, 50 * nS], "C": [50 * pF, 500 * pF]}
    labels = {"gl": r"$g_l$", "C": r"$C$"}
    fig, axes = trained.pairplot(limits=limits, labels=labels, ticks=limits,
                                 points={"gl": 20 * nS, "C": 200 * pF},
                                 points_offdiag={"markersize": 5}, points_colors=["C3"],
                                 figsize=(4, 4))
    assert axes.shape == (2, 2)
    plt.close(fig)
    condition = trained.sample((1,))
    fig, axes = trained.conditional_pairplot(condition=condition, limits=limits,
                                             labels=labels, ticks=limits, figsize=(4, 4),
                                             resolution=20)
    plt.close(fig)
    matrix = trained.conditional_corrcoeff(condition=condition, limits=limits, resolution=20)
    assert matrix.shape == (2, 2)
    np.testing.assert_allclose(np.diag(matrix), 1, atol=1e-4)
    with pytest.raises(ConfigurationError, match="not inferred"):
        trained.pairplot(limits={"g_na": [1 * nS, 2 * nS]})


def test_pipeline_inferencer_uses_the_pipeline_backend():
    """Pipeline.inferencer() gives the registered Inferencer wired to the pipeline."""
    from brian2 import amp, mV, ms

    from modelfit_core import Pipeline
    from modelfit_core.registry.plugin_registry import Registry
    pipe = Pipeline.from_names(feedback=None, registry=Registry(distributions=["modelfit-brian2"]))
    currents = np.zeros((1, 50)) * amp
    inferencer = pipe.inferencer(model="dv/dt = (El - v + R*I)/tau : volt\nR : ohm\n"
                                       "tau : second", input={"I": currents},
                                 output={"v": np.zeros((1, 50)) * mV}, dt=0.1 * ms,
                                 namespace={"El": -70 * mV})
    assert type(inferencer).__name__ == "Inferencer"
    assert inferencer.pipeline is pipe


@pytest.mark.slow
def test_training_data_simulated_on_dask_equals_runtime():
    """The same parameter sets give the same summary statistics on 2 dask workers."""
    from modelfit_core.registry.plugin_registry import Registry
    dask = Registry(distributions=["modelfit-brian2"]).lookup("backends", "dask")(n_workers=2)
    try:
        statistics = []
        theta = None
        for backend in (dask, "runtime"):
            inferencer = make_inferencer(backend=backend)
            prior = inferencer.init_prior(**BOUNDS)
            if theta is None:
                theta = inferencer.generate_training_data(30, prior)
            statistics.append(inferencer.extract_summary_statistics(theta))
    finally:
        dask.shutdown()
    assert statistics[0].shape == (30, len(FEATURES))
    np.testing.assert_array_equal(statistics[0], statistics[1])
