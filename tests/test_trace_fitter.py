"""TraceFitter: results, generate, continuing and restarting fits, callbacks, seeds,
pipelines and diverging simulations (all on the small passive model)."""

import numpy as np
import pandas as pd
import pytest
from brian2 import Quantity, amp, farad, get_dimensions, mV, ms, nS, pF, siemens, uS, volt

from modelfit_core import MSEMetric, NevergradOptimizer, Pipeline, TraceFitter
from modelfit_core.contracts.errors import ConfigurationError

from conftest import BOUNDS, DT, N_STEPS, N_TRACES, PASSIVE_MODEL, TRUE_PARAMS, El

N_SAMPLES = 30  # nevergrad's DE works in populations of at least 30 (initialize says so)
V2 = get_dimensions(volt) ** 2


def quick_fit(fitter, n_rounds=2, seed=1, **options):
    options.setdefault("optimizer", NevergradOptimizer(seed=seed))
    options.setdefault("callback", None)
    return fitter.fit(n_rounds=n_rounds, **options, **BOUNDS)


@pytest.fixture
def fitted(make_fitter):
    fitter = make_fitter(n_samples=N_SAMPLES)
    quick_fit(fitter)
    return fitter


# -- results -----------------------------------------------------------------------------
def test_results_as_list_with_units(fitted):
    rows = fitted.results(format="list", use_units=True)
    assert len(rows) == 2 * N_SAMPLES
    for k, row in enumerate(rows):
        # 'errors' as in the manual, 'error' as brian2modelfitting's code writes it
        assert set(row) == {"gl", "C", "errors", "error", "diverged", "round"}
        assert row["error"] is row["errors"]
        assert isinstance(row["gl"], Quantity) and row["gl"].dim is get_dimensions(siemens)
        assert isinstance(row["C"], Quantity) and row["C"].dim is get_dimensions(farad)
        assert isinstance(row["errors"], Quantity) and row["errors"].dim is V2
        assert row["diverged"] is False
        assert row["round"] == k // N_SAMPLES
        assert BOUNDS["gl"][0] <= row["gl"] <= BOUNDS["gl"][1]
        assert BOUNDS["C"][0] <= row["C"] <= BOUNDS["C"][1]


def test_results_as_list_without_units(fitted):
    rows = fitted.results(format="list", use_units=False)
    with_units = fitted.results(format="list", use_units=True)
    for row, unit_row in zip(rows, with_units):
        assert type(row["gl"]) is float and type(row["errors"]) is float
        assert row["gl"] == float(unit_row["gl"])
        assert row["errors"] == float(unit_row["errors"])


def test_results_as_dict(fitted):
    with_units = fitted.results(format="dict", use_units=True)
    plain = fitted.results(format="dict", use_units=False)
    assert set(with_units) == {"gl", "C", "errors", "error", "diverged", "round"}
    assert with_units["gl"].shape == (2 * N_SAMPLES,)
    assert with_units["gl"].dim is get_dimensions(siemens)
    assert with_units["C"].dim is get_dimensions(farad)
    assert with_units["errors"].dim is V2
    assert not isinstance(plain["gl"], Quantity) and not isinstance(plain["errors"], Quantity)
    np.testing.assert_array_equal(np.asarray(with_units["gl"]), plain["gl"])
    np.testing.assert_array_equal(plain["round"], np.repeat([0, 1], N_SAMPLES))
    assert plain["diverged"].dtype == bool and not plain["diverged"].any()


@pytest.mark.parametrize("use_units", [True, False])
def test_results_as_dataframe(fitted, use_units):
    frame = fitted.results(format="dataframe", use_units=use_units)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["gl", "C", "errors", "error", "diverged", "round"]
    assert frame.shape == (2 * N_SAMPLES, 6)
    assert frame["gl"].dtype == float and frame["errors"].dtype == float
    plain = fitted.results(format="dict", use_units=False)
    np.testing.assert_array_equal(frame["C"].to_numpy(), plain["C"])
    np.testing.assert_array_equal(frame["errors"].to_numpy(), plain["errors"])


def test_results_default_to_the_fitters_use_units(make_fitter):
    fitter = make_fitter(n_samples=N_SAMPLES, use_units=False)
    best, error = quick_fit(fitter, n_rounds=1)
    assert all(type(value) is float for value in best.values())
    assert type(error) is float
    assert type(fitter.results()[0]["gl"]) is float
    assert isinstance(fitter.results(use_units=True)[0]["gl"], Quantity)


def test_unknown_results_format(fitted):
    with pytest.raises(ConfigurationError, match="'list', 'dict' or 'dataframe'"):
        fitted.results(format="csv")


def test_best_params_and_error_are_the_best_row(fitted):
    frame = fitted.results(format="dataframe")
    best_row = frame.loc[frame["errors"].idxmin()]
    assert fitted.best_error.dim is V2
    assert float(fitted.best_error) == best_row["errors"]
    assert float(fitted.best_params["gl"]) == best_row["gl"]
    assert float(fitted.best_params["C"]) == best_row["C"]
    assert float(fitted.best_objective_errors["v"]) == pytest.approx(best_row["errors"])


# -- generate ----------------------------------------------------------------------------
def test_generate_traces_shape_and_units(fitted, passive_data):
    traces = fitted.generate_traces()
    assert isinstance(traces, Quantity) and traces.dim is get_dimensions(volt)
    assert traces.shape == (N_TRACES, N_STEPS)
    # the traces of the best parameters have the best error
    error = np.mean((np.asarray(traces) - np.asarray(passive_data["v"])) ** 2)
    assert error == pytest.approx(float(fitted.best_error), rel=1e-9)
    np.testing.assert_array_equal(np.asarray(fitted.generate(params=fitted.best_params)),
                                  np.asarray(traces))


def test_generate_several_variables_with_params_and_param_init(fitted):
    params = {"gl": 20 * nS, "C": 40 * pF}
    out = fitted.generate(output_var=["v", "gl"], params=params, param_init={"v": -60 * mV})
    assert set(out) == {"v", "gl"}
    assert out["v"].shape == out["gl"].shape == (N_TRACES, N_STEPS)
    np.testing.assert_allclose(np.asarray(out["v"][:, 0]), -0.060, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(out["gl"]), 20e-9, rtol=1e-12)
    # trace 1 has no input during its first 50 steps: v relaxes from -60 mV towards El
    early = np.asarray(out["v"][1, :50])
    assert np.all(np.diff(early) < 0) and early[-1] > float(El)
    # param_init given to generate() applies to that call only
    again = fitted.generate(output_var="v", params=params)
    np.testing.assert_allclose(np.asarray(again[:, 0]), float(El), rtol=1e-12)


def test_generate_with_some_params_uses_the_best_for_the_others(fitted):
    partial = fitted.generate(params={"gl": 20 * nS})
    full = fitted.generate(params={"gl": 20 * nS, "C": fitted.best_params["C"]})
    np.testing.assert_array_equal(np.asarray(partial), np.asarray(full))


def test_generate_needs_all_params_before_a_fit(make_fitter):
    with pytest.raises(ConfigurationError, match="Give values for C"):
        make_fitter().generate(params={"gl": 20 * nS})


def test_generate_rejects_unknown_parameter_names(fitted):
    from modelfit_core.contracts.errors import ParameterError

    with pytest.raises(ParameterError, match="gL"):
        fitted.generate(params={"gL": 20 * nS})


def test_fit_and_generate_with_a_parameter_fixed_in_param_init(make_fitter):
    fitter = make_fitter(param_init={"v": El, "C": TRUE_PARAMS["C"]})
    best, _ = fitter.fit(n_rounds=1, optimizer=NevergradOptimizer(seed=1), callback=None,
                         gl=BOUNDS["gl"])
    assert set(best) == {"gl"}
    traces = fitter.generate(params={"gl": TRUE_PARAMS["gl"]})
    np.testing.assert_allclose(np.asarray(traces), np.asarray(make_fitter().generate(
        params=TRUE_PARAMS)), rtol=1e-12)


def test_generate_before_fit_with_a_parameter_fixed_in_param_init(make_fitter, passive_data):
    fitter = make_fitter(param_init={"v": El, "C": TRUE_PARAMS["C"]})
    traces = fitter.generate(params={"gl": TRUE_PARAMS["gl"]})
    np.testing.assert_allclose(np.asarray(traces), np.asarray(passive_data["v"]), rtol=1e-12)


def test_generate_unknown_variable_and_spikes_without_threshold(fitted):
    with pytest.raises(ConfigurationError, match="Cannot record 'w'"):
        fitted.generate(output_var="w")
    with pytest.raises(ConfigurationError, match="needs a threshold"):
        fitted.generate(output_var="spikes")


def test_constants_are_looked_up_in_the_callers_namespace(passive_data):
    """Like Brian's run(): El is taken from where the fitter is created, unless given."""
    El = -60 * mV  # noqa: N806 (shadows the conftest value on purpose)
    fitter = TraceFitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                         output={"v": passive_data["v"]}, dt=DT, n_samples=1,
                         param_init={"v": -60 * mV})
    traces = fitter.generate(params=TRUE_PARAMS)
    np.testing.assert_allclose(np.asarray(traces[1, :50]), float(El), rtol=1e-12)
    explicit = TraceFitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                           output={"v": passive_data["v"]}, dt=DT, n_samples=1,
                           param_init={"v": -50 * mV}, namespace={"El": -50 * mV})
    traces = explicit.generate(params=TRUE_PARAMS)
    np.testing.assert_allclose(np.asarray(traces[1, :50]), -0.050, rtol=1e-12)


# -- continuing, restarting, callbacks ---------------------------------------------------
class Recorder:
    """A callback that records its arguments; returns ``stop_after`` rounds later True."""

    def __init__(self, stop_after=None):
        self.calls = []
        self.stop_after = stop_after

    def __call__(self, params, errors, best_params, best_error, index, additional_info):
        self.calls.append(dict(params=params, errors=errors, best_params=best_params,
                               best_error=best_error, index=index, info=additional_info))
        return self.stop_after is not None and len(self.calls) >= self.stop_after


def test_fit_twice_continues(make_fitter):
    fitter = make_fitter(n_samples=N_SAMPLES)
    optimizer, recorder = NevergradOptimizer(seed=4), Recorder()
    _, error1 = quick_fit(fitter, n_rounds=2, optimizer=optimizer, callback=recorder)
    metric = fitter.metric
    _, error2 = quick_fit(fitter, n_rounds=3, optimizer=optimizer, metric=metric,
                          callback=recorder)
    assert fitter.optimizer is optimizer and fitter.metric is metric
    assert len(fitter.history.rounds) == 5 and fitter.iteration == 5
    assert [r.index for r in fitter.history.rounds] == [0, 1, 2, 3, 4]
    assert [call["index"] for call in recorder.calls] == [0, 1, 2, 3, 4]
    frame = fitter.results(format="dataframe")
    assert len(frame) == 5 * N_SAMPLES
    np.testing.assert_array_equal(frame["round"], np.repeat(np.arange(5), N_SAMPLES))
    best_errors = [float(call["best_error"]) for call in recorder.calls]
    assert all(later <= earlier for earlier, later in zip(best_errors, best_errors[1:]))
    assert error2 <= error1
    assert float(error2) == frame["errors"].min()


def test_continuing_without_passing_optimizer_and_metric(make_fitter):
    fitter = make_fitter(n_samples=N_SAMPLES)
    quick_fit(fitter, n_rounds=1)
    optimizer = fitter.optimizer
    fitter.fit(n_rounds=1, callback=None, **BOUNDS)
    assert fitter.optimizer is optimizer and len(fitter.history.rounds) == 2


def test_restart_resets_the_fit(make_fitter):
    fitter = make_fitter(n_samples=N_SAMPLES)
    quick_fit(fitter, n_rounds=3, seed=1)
    new_optimizer = NevergradOptimizer(method="CMA", seed=2)
    quick_fit(fitter, n_rounds=1, optimizer=new_optimizer, metric=MSEMetric(t_start=1 * ms),
              restart=True)
    assert fitter.optimizer is new_optimizer
    assert len(fitter.history.rounds) == 1 and fitter.history.rounds[0].index == 0
    assert fitter.iteration == 1
    frame = fitter.results(format="dataframe")
    assert len(frame) == N_SAMPLES and set(frame["round"]) == {0}
    assert float(fitter.best_error) == frame["errors"].min()


def test_callback_returning_true_stops_after_the_first_round(make_fitter):
    fitter = make_fitter(n_samples=N_SAMPLES)
    recorder = Recorder(stop_after=1)
    best, error = quick_fit(fitter, n_rounds=5, callback=recorder)
    assert len(recorder.calls) == 1
    assert len(fitter.history.rounds) == 1
    assert len(fitter.results()) == N_SAMPLES
    assert best == fitter.best_params and error == fitter.best_error


def test_callback_arguments(make_fitter):
    fitter = make_fitter(n_samples=N_SAMPLES)
    recorder = Recorder()
    quick_fit(fitter, n_rounds=2, callback=recorder)
    assert [call["index"] for call in recorder.calls] == [0, 1]
    for call, record in zip(recorder.calls, fitter.history.rounds):
        assert len(call["params"]) == N_SAMPLES
        for params, row in zip(call["params"], record.parameters):
            assert set(params) == {"gl", "C"}
            assert params["gl"].dim is get_dimensions(siemens)
            np.testing.assert_array_equal([float(params["gl"]), float(params["C"])], row)
        np.testing.assert_array_equal(np.asarray(call["errors"]), record.errors)
        assert set(call["best_params"]) == {"gl", "C"}
        assert call["best_error"].dim is V2
        assert float(call["best_error"]) <= np.min(record.errors)
        assert set(call["info"]) >= {"best_params_text", "diverged", "objective_errors",
                                     "objective_errors_normalized", "output_var"}
        # one array of the round's errors, a Quantity in the error's units (as the reference)
        assert isinstance(call["errors"], np.ndarray) and call["errors"].dim is V2
        assert call["info"]["best_params_text"].startswith("gl=")
        assert not call["info"]["diverged"].any()
    assert recorder.calls[-1]["best_params"] == fitter.best_params


def test_text_feedback_prints_each_round(make_fitter, capsys):
    fitter = make_fitter(n_samples=N_SAMPLES)
    fitter.fit(n_rounds=2, optimizer=NevergradOptimizer(seed=1), **BOUNDS)  # default: text
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Round")]
    assert [line.split(":")[0] for line in lines] == ["Round 0", "Round 1"]
    assert "best gl=" in lines[-1] and "with error:" in lines[-1]


# -- pipelines and seeds -----------------------------------------------------------------
def seeded_results(registry, passive_data, seed):
    pipe = Pipeline.from_names(seed=seed, feedback=None, registry=registry)
    fitter = pipe.trace_fitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                               output={"v": passive_data["v"]}, dt=DT, n_samples=N_SAMPLES,
                               param_init={"v": El})
    fitter.fit(n_rounds=3, **BOUNDS)
    return fitter.results(format="dataframe")


def test_same_seed_gives_identical_fits(registry, passive_data):
    first = seeded_results(registry, passive_data, seed=3)
    second = seeded_results(registry, passive_data, seed=3)
    pd.testing.assert_frame_equal(first, second)
    other = seeded_results(registry, passive_data, seed=4)
    assert not np.array_equal(first["gl"].to_numpy(), other["gl"].to_numpy())


def test_pipeline_from_names_with_options(registry, passive_data, capsys):
    from modelfit_plugins.feedback.progressbar import ProgressBarFeedback

    pipe = Pipeline.from_names(optimizer="nevergrad", metric="mse", backend="runtime",
                               feedback="progressbar", optimizer_options={"method": "CMA"},
                               metric_options={"t_start": 1 * ms}, seed=1, registry=registry)
    assert pipe.optimizer.method == "CMA"
    assert pipe.optimizer.seed == 1
    assert pipe.metric.t_start == 1 * ms
    assert pipe.backend.name == "runtime"
    assert isinstance(pipe.feedback, ProgressBarFeedback)

    fitter = pipe.trace_fitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                               output={"v": passive_data["v"]}, dt=DT, n_samples=N_SAMPLES,
                               param_init={"v": El})
    best, error = fitter.fit(n_rounds=2, **BOUNDS)
    assert fitter.optimizer is pipe.optimizer and fitter.metric is pipe.metric
    assert fitter.problem.backend is pipe.backend
    assert set(best) == {"gl", "C"} and error.dim is V2
    assert len(fitter.results()) == 2 * N_SAMPLES
    assert "2/2" in capsys.readouterr().err  # the progress bar ran to the end


def test_pipeline_seed_zero_reaches_the_default_optimizer(registry):
    assert Pipeline(registry=registry, seed=0).default_optimizer().seed == 0


def test_pipeline_seed_reaches_the_default_optimizer(registry):
    assert Pipeline(registry=registry, seed=5).default_optimizer().seed == 5
    assert Pipeline.from_names(seed=0, registry=registry).default_optimizer().seed == 0
    assert Pipeline.from_names(seed=0, registry=registry).optimizer is None  # fit chooses


def test_pipeline_bad_names_and_options(registry):
    from modelfit_core.contracts.errors import UnknownPluginError

    with pytest.raises(UnknownPluginError, match="Did you mean 'nevergrad'"):
        Pipeline.from_names(optimizer="nevergard", registry=registry)
    with pytest.raises(ConfigurationError, match="Cannot create the feedback 'text' with "
                       "options .*colour.*It accepts: stream"):
        Pipeline.from_names(feedback="text", feedback_options={"colour": "red"},
                            registry=registry)
    with pytest.raises(ConfigurationError, match="unknown option"):
        Pipeline.from_names(metric_options={"t_stop": 1 * ms}, registry=registry)


# -- diverging simulations ---------------------------------------------------------------
# gl < 0 turns the leak into positive feedback: v grows like exp(|gl| t / C) and
# overflows to inf/NaN within the 20 ms of the traces when |gl|/C > ~3.5e4 / s,
# i.e. in a part of the negative half of this box.
DIVERGING_BOUNDS = {"gl": [-3 * uS, 3 * uS], "C": [10 * pF, 100 * pF]}


def test_diverging_parameter_sets_are_flagged_and_never_best(make_fitter):
    fitter = make_fitter(n_samples=8)
    told = []
    optimizer = NevergradOptimizer(seed=1)
    original_tell = optimizer.tell

    def recording_tell(parameters, errors):
        told.append(np.array(errors, dtype=float))
        return original_tell(parameters, errors)

    optimizer.tell = recording_tell
    recorder = Recorder()
    fitter.fit(n_rounds=3, optimizer=optimizer, callback=recorder, **DIVERGING_BOUNDS)

    frame = fitter.results(format="dataframe")
    diverged = frame["diverged"].to_numpy()
    assert diverged.any() and not diverged.all()
    assert np.isinf(frame["errors"][diverged]).all()
    assert np.isfinite(frame["errors"][~diverged]).all()
    assert (frame["gl"][diverged] < 0).all()  # only positive feedback blows up

    best = np.array([float(fitter.best_params["gl"]), float(fitter.best_params["C"])])
    diverged_rows = frame.loc[diverged, ["gl", "C"]].to_numpy()
    assert not any(np.array_equal(best, row) for row in diverged_rows)
    assert float(fitter.best_error) == frame["errors"][~diverged].min()
    assert recorder.calls[-1]["best_params"] is not None
    for call in recorder.calls:  # the best so far is never a diverged set either
        if call["best_params"] is not None:
            vector = np.array([float(call["best_params"]["gl"]), float(call["best_params"]["C"])])
            assert not any(np.array_equal(vector, row) for row in diverged_rows)
            assert np.isfinite(float(call["best_error"]))

    # the optimizer is told finite errors, worse than every finite error of the round
    for errors, record in zip(told, fitter.history.rounds):
        assert np.isfinite(errors).all()
        if record.diverged.any() and (~record.diverged).any():
            assert errors[record.diverged].min() > errors[~record.diverged].max()
    rows = fitter.results(format="list")
    assert [row["diverged"] for row in rows] == list(diverged)


def test_fit_where_everything_diverges(make_fitter):
    """The first round diverges entirely: the fit stops after it, naming the cause."""
    from modelfit_core.contracts.errors import SimulationError
    fitter = make_fitter(n_samples=3)
    with pytest.raises(SimulationError, match="first round diverged.*'gl'"):
        fitter.fit(n_rounds=2, optimizer=NevergradOptimizer(seed=1), callback=None,
                   gl=[-5 * uS, -4 * uS], C=[10 * pF, 20 * pF])
    assert fitter.best_params is None and fitter.best_error is None
    frame = fitter.results(format="dataframe")
    assert frame["diverged"].all() and set(frame["round"]) == {0}  # one round, kept
    from modelfit_core.contracts.errors import FitStateError
    with pytest.raises(FitStateError, match="diverged"):
        fitter.generate_traces()


def test_input_current_reaches_the_model(passive_data):
    """Sanity check of the fixture data: the 0.4 nA step depolarises more than 0.2 nA."""
    v = np.asarray(passive_data["v"])
    rise = v[:, -60] - v[:, 0]
    assert rise[1] > rise[0] > 0.01
    assert np.asarray(passive_data["I"]).max() == pytest.approx(float(0.4e-9 * amp))
