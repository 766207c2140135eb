"""FeatureMetric (the ``efel`` metric plugin) with the real eFEL on simulated HH traces.

The traces are the bundled dataset's five step currents (0.1–30 nA from 5 to
10 ms) simulated with the ground-truth conductances: 0, 1, 2, 3 and 3 spikes.
"""

import numpy as np
import pytest
from brian2 import mV, ms, msiemens, nA, nsiemens, psiemens, second, usiemens

import efel
from modelfit_core.contracts.errors import ConfigurationError, DataError
from modelfit_core.contracts.units import UnitMismatchError
from modelfit_plugins.metrics.efel_features import FeatureMetric

DT = 0.01 * ms
STIM = [(5 * ms, 10 * ms)]
BASIC = ["voltage_base", "Spikecount", "time_to_first_spike", "AP_amplitude"]

# eFEL 5.7 deprecates 'Spikecount' (the manual's name) for 'spike_count'; tested below
pytestmark = pytest.mark.filterwarnings("ignore:eFEL .* deprecates:DeprecationWarning")


@pytest.fixture(scope="module")
def hh_volts():
    """(5, 1497) membrane potential in volts, as a metric receives it."""
    from modelfit_core.tools.datasets import HH_GROUND_TRUTH, simulate_hh, step_currents
    volts = simulate_hh(step_currents(), HH_GROUND_TRUTH)
    assert np.isfinite(volts).all()
    return volts


@pytest.fixture(scope="module")
def recorded():
    from modelfit_core.tools.datasets import load_hh_dataset
    return load_hh_dataset().outputs * 1e-3  # mV in the CSV -> volts


def metric(features=BASIC, **options):
    options.setdefault("n_jobs", 1)
    return FeatureMetric(options.pop("stim_times", STIM), features, **options)


# -- the four features, in eFEL's units -----------------------------------------
def test_basic_features_on_hh_traces(hh_volts):
    values = metric(multi_value="first").compute_features(hh_volts, DT)
    for trace in values:  # resting potential before the stimulus, in mV (not V)
        assert trace["voltage_base"] == pytest.approx(-65.0, abs=1.0)
    counts = [trace["Spikecount"] for trace in values]
    assert counts[0] == 0 and counts[1] >= 1  # a unit slip (volts to eFEL) gives 0 spikes
    assert counts == sorted(counts) and counts[-1] >= 2
    assert values[0]["time_to_first_spike"] is None  # no spike: not computable
    latencies = [trace["time_to_first_spike"] for trace in values[1:]]
    assert all(0 < t < 5.0 for t in latencies)  # ms after stimulus onset
    assert latencies == sorted(latencies, reverse=True)  # more current, earlier spike
    assert values[1]["AP_amplitude"] == pytest.approx(100.0, abs=25.0)  # mV


def test_single_valued_features_and_units(hh_volts):
    one_spike = hh_volts[1:2]
    (values,) = metric().compute_features(one_spike, DT)
    assert values["Spikecount"] == 1
    # dt as a Quantity or in seconds, and a coarser time step: same times in ms
    (plain,) = metric().compute_features(one_spike, float(DT))
    assert plain == values
    (coarse,) = metric().compute_features(one_spike[:, ::2], 2 * DT)
    assert coarse["Spikecount"] == 1
    assert coarse["time_to_first_spike"] == pytest.approx(values["time_to_first_spike"],
                                                         abs=0.05)
    assert coarse["voltage_base"] == pytest.approx(values["voltage_base"], abs=0.1)


def test_stim_times_change_features(hh_volts):
    late = metric(stim_times=[(6 * ms, 10 * ms)]).compute_features(hh_volts[1:2], DT)[0]
    early = metric().compute_features(hh_volts[1:2], DT)[0]
    assert late["time_to_first_spike"] == pytest.approx(early["time_to_first_spike"] - 1.0,
                                                        abs=0.05)
    features = BASIC[:3]
    per_trace = metric(features, stim_times=[(5 * ms, 10 * ms)] * 5)
    assert per_trace.compute_features(hh_volts, DT) == \
        metric(features).compute_features(hh_volts, DT)
    shifted = [(5 * ms, 10 * ms)] * 4 + [(4 * ms, 10 * ms)]
    last = metric(features, stim_times=shifted).compute_features(hh_volts, DT)[-1]
    assert last["time_to_first_spike"] == pytest.approx(
        per_trace.compute_features(hh_volts, DT)[-1]["time_to_first_spike"] + 1.0, abs=0.05)


def test_deprecated_feature_names_warn_once_at_construction(hh_volts):
    import warnings
    with pytest.warns(DeprecationWarning, match="'Spikecount'.*spike_count"):
        m = FeatureMetric(STIM, ["Spikecount"], n_jobs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (values,) = m.compute_features(hh_volts[1:2], DT)
    assert not [w for w in caught if "spike_count" in str(w.message)]  # none per trace
    assert values["Spikecount"] == FeatureMetric(STIM, ["spike_count"]).compute_features(
        hh_volts[1:2], DT)[0]["spike_count"] == 1


# -- errors ------------------------------------------------------------------------
def test_identical_traces_score_zero_and_differences_add_up(hh_volts, recorded):
    m = metric(["voltage_base", "Spikecount", "time_to_first_spike"])
    model = np.stack([hh_volts, hh_volts + 2e-3])
    errors = m.calc(model, hh_volts, DT)
    assert errors.shape == (2,)
    assert errors[0] == 0.0
    assert errors[1] == pytest.approx(2.0, abs=0.05)  # voltage_base differs by 2 mV
    # the recording has noise: small but non-zero error for the ground truth
    assert 0 < m.calc(hh_volts[np.newaxis], recorded, DT)[0] < 1.0


def test_combine_weights_and_normalization(hh_volts):
    model = (hh_volts + 2e-3)[np.newaxis]
    m = metric(["voltage_base", "Spikecount"], combine=lambda x, y: (x - y) ** 2,
               weights={"voltage_base": 0.5})
    assert m.calc(model, hh_volts, DT)[0] == pytest.approx(0.5 * 4.0, rel=1e-3)
    listed = metric(["voltage_base", "Spikecount"], weights=[3.0, 1.0], normalization=2.0)
    assert listed.calc(model, hh_volts, DT)[0] == pytest.approx(3.0, rel=1e-3)
    assert listed.revert_normalization(1.5) == 3.0
    with pytest.raises(ConfigurationError, match="not in feat_list"):
        metric(["voltage_base"], weights={"Spikecount": 2})
    with pytest.raises(ConfigurationError, match="2 weights for 1 features"):
        metric(["voltage_base"], weights=[1, 2])
    with pytest.raises(UnitMismatchError, match="plain number"):
        metric(["voltage_base"], normalization=10 * mV)
    with pytest.raises(ConfigurationError, match="weight of 'voltage_base' must be a finite"):
        metric(["voltage_base"], weights={"voltage_base": -1})
    with pytest.raises(ConfigurationError, match="missing_penalty for 'Spikecount' must be"):
        metric(["Spikecount"], missing_penalty={"Spikecount": "high"})


def test_missing_feature_gets_the_documented_penalty(hh_volts):
    silent = np.repeat(hh_volts[:1], 5, axis=0)  # no spikes at all
    m = metric(["time_to_first_spike"])
    features = m.get_features(silent[np.newaxis], hh_volts, DT)
    # trace 0: no spike in either -> 0; traces 1-4: only the recording spikes -> penalty
    assert features[0].tolist() == [0.0, 100.0, 100.0, 100.0, 100.0]
    assert m.calc(silent[np.newaxis], hh_volts, DT)[0] == pytest.approx(80.0)
    custom = metric(["time_to_first_spike"], missing_penalty=7.0, weights=[2.0])
    assert custom.calc(silent[np.newaxis], hh_volts, DT)[0] == pytest.approx(2 * 7 * 4 / 5)
    # the other way round (model spikes, recording silent) costs the same
    assert m.calc(hh_volts[np.newaxis], silent, DT)[0] == pytest.approx(80.0)


def test_exception_inside_efel_is_a_missing_value_for_simulations(hh_volts, monkeypatch):
    import efel.pyfeatures as pyfeatures

    def modelfit_test_fragile():
        """Raises for traces that go above 0 mV (spiking ones)."""
        voltage = pyfeatures.voltage()
        if voltage.max() > 0:
            raise ValueError("cannot handle spikes")
        return np.array([voltage.min()])

    monkeypatch.setattr(pyfeatures, "modelfit_test_fragile", modelfit_test_fragile,
                        raising=False)
    monkeypatch.setattr(pyfeatures, "all_pyfeatures",
                        [*pyfeatures.all_pyfeatures, "modelfit_test_fragile"])
    m = metric(["modelfit_test_fragile", "voltage_base"], missing_penalty=5.0)
    silent = np.repeat(hh_volts[:1], 5, axis=0)
    features = m.get_features(hh_volts[np.newaxis], silent, DT)  # model spikes, data not
    assert features[0, 0] == 0.0 and features[0, 1:].tolist() == pytest.approx([5.0] * 4)
    with pytest.raises(ConfigurationError, match="modelfit_test_fragile.*recorded trace 1"
                                                 ".*cannot handle spikes"):
        m.calc(silent[np.newaxis], hh_volts, DT)


def test_diverged_simulation_scores_inf_without_calling_efel(hh_volts):
    model = np.stack([hh_volts, hh_volts])
    model[1, 2, 100] = np.nan
    errors = metric(["Spikecount"]).calc(model, hh_volts, DT)
    assert errors[0] == 0.0 and errors[1] == np.inf


def test_multi_valued_feature_is_a_clear_error(hh_volts):
    three_spikes = hh_volts[3:4]  # AP_amplitude has two values in the stimulus
    with pytest.raises(ConfigurationError, match="'AP_amplitude' has 2 values.*mean_AP_amp"):
        metric(["AP_amplitude"]).calc(three_spikes[np.newaxis], three_spikes, DT)
    with pytest.raises(ConfigurationError, match="'AP_amplitude' has 2 values for the "
                                                 "simulation of parameter set 1 on trace 0"):
        metric(["AP_amplitude"]).calc(np.stack([hh_volts[1:2], three_spikes]),
                                      hh_volts[1:2], DT)
    (mean,) = metric(["AP_amplitude", "mean_AP_amplitude"],
                     multi_value="mean").compute_features(three_spikes, DT)
    assert mean["AP_amplitude"] == pytest.approx(mean["mean_AP_amplitude"])


def test_unknown_feature_lists_close_names_at_construction():
    with pytest.raises(ConfigurationError, match="'spikecount'.*Spikecount") as info:
        FeatureMetric(STIM, ["voltage_base", "spikecount"])
    assert "spike_count" in str(info.value)
    with pytest.raises(ConfigurationError, match="AP_amplitude"):
        FeatureMetric(STIM, ["AP_amplitud"])
    with pytest.raises(ConfigurationError, match="empty"):
        FeatureMetric(STIM, [])


def test_stim_times_are_checked(hh_volts):
    with pytest.raises(UnitMismatchError, match="stim_times"):
        FeatureMetric([(50, 100 * ms)], ["Spikecount"])
    with pytest.raises(ConfigurationError, match="end after it starts"):
        FeatureMetric([(10 * ms, 5 * ms)], ["Spikecount"])
    m = metric(["Spikecount"], stim_times=[(5 * ms, 10 * ms)] * 3)
    with pytest.raises(DataError, match="3 intervals but there are 5 traces"):
        m.calc(hh_volts[np.newaxis], hh_volts, DT)
    with pytest.raises(DataError, match="outside the analysed traces"):
        metric(["Spikecount"], stim_times=[(20 * ms, 30 * ms)]).calc(
            hh_volts[np.newaxis], hh_volts, DT)


def test_t_start_keeps_absolute_stimulus_times(hh_volts):
    m = metric(["voltage_base", "time_to_first_spike"], t_start=1 * ms)
    (cut,) = m.compute_features(hh_volts[1:2], DT)
    (full,) = metric(["voltage_base", "time_to_first_spike"]).compute_features(
        hh_volts[1:2], DT)
    assert cut == pytest.approx(full)
    assert m.calc(hh_volts[np.newaxis], hh_volts, DT)[0] == 0.0


def test_output_must_be_a_voltage():
    m = metric(["Spikecount"])
    assert m.get_normalized_dimensions(mV.dim) is m.get_dimensions(mV.dim)
    with pytest.raises(UnitMismatchError, match="voltage"):
        m.get_normalized_dimensions(nA.dim)


# -- parallel extraction -------------------------------------------------------------
def test_parallel_extraction_matches_serial(hh_volts, recorded):
    model = hh_volts[np.newaxis] + np.linspace(-3e-3, 3e-3, 8)[:, None, None]
    serial = metric(BASIC[:3]).calc(model, recorded, DT)
    parallel_metric = FeatureMetric(STIM, BASIC[:3], n_jobs=2,
                                    efel_settings={"Threshold": -20.0})
    try:
        parallel = parallel_metric.calc(model, recorded, DT)
        again = parallel_metric.calc(model, recorded, DT)  # the pool is reused
    finally:
        parallel_metric.close()
    np.testing.assert_allclose(parallel, serial)
    np.testing.assert_allclose(again, serial)
    mapped = FeatureMetric(STIM, BASIC[:3], parallel_map=map).calc(model, recorded, DT)
    np.testing.assert_allclose(mapped, serial)


def test_efel_settings_apply_and_are_restored(hh_volts):
    before = efel.get_settings().Threshold
    high = metric(["Spikecount"], efel_settings={"Threshold": 100.0})  # above every peak
    assert high.compute_features(hh_volts[1:2], DT)[0]["Spikecount"] == 0
    assert efel.get_settings().Threshold == before
    with pytest.raises(ConfigurationError, match="Threshold"):
        metric(["Spikecount"], efel_settings={"threshold": 0.0})


# -- plugin registration and a fit ------------------------------------------------------
def test_registered_as_efel_and_reachable_from_the_core(registry):
    from modelfit_core import FeatureMetric as Lazy
    from modelfit_core import Pipeline
    assert Lazy is FeatureMetric
    assert registry.lookup("metrics", "efel") is FeatureMetric
    pipe = Pipeline.from_names(metric="efel", feedback=None, registry=registry,
                               metric_options={"stim_times": STIM,
                                               "feat_list": ["Spikecount"]})
    assert isinstance(pipe.metric, FeatureMetric)
    with pytest.raises(ConfigurationError, match="Spikecount"):
        Pipeline.from_names(metric="efel", feedback=None, registry=registry,
                            metric_options={"stim_times": STIM, "feat_list": ["spikecont"]})


@pytest.mark.slow
def test_fitting_hh_data_lowers_the_feature_error(registry):
    from modelfit_core import Pipeline
    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset
    inputs, outputs, dt = load_hh_dataset().quantities()
    pipe = Pipeline.from_names(
        metric="efel", feedback=None, seed=3, registry=registry,
        metric_options={"stim_times": STIM, "feat_list": ["voltage_base", "Spikecount",
                                                          "time_to_first_spike"],
                        "missing_penalty": 10.0})
    fitter = pipe.trace_fitter(model=HH_MODEL, input={"I": inputs}, output={"v": outputs},
                               dt=dt, n_samples=10, method="exponential_euler",
                               param_init={"v": -65 * mV}, namespace=hh_constants())
    best, error = fitter.fit(n_rounds=3, gl=[2 * psiemens, 200 * nsiemens],
                             g_na=[200 * nsiemens, 0.4 * msiemens],
                             g_kd=[200 * nsiemens, 200 * usiemens])
    first_round = fitter.history.rounds[0].errors
    assert np.isfinite(error)
    assert error < np.median(first_round[np.isfinite(first_round)])
    assert error < first_round[np.isfinite(first_round)].min()  # later rounds improved
    assert not isinstance(error, type(1 * second))  # dimensionless
