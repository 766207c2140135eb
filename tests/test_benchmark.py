"""The benchmark suite (``modelfit benchmark``, docs/benchmark.md) on one tiny problem.

The problem is a third party's as far as the suite knows: registered by a hook
plugin, it is the conftest's passive membrane (compiled once for the whole test
suite) with two rounds of four parameter sets per run. The suite's own problems
are contract-checked in tests/test_plugin_contracts.py.
"""

from __future__ import annotations

import json
import math

import attrs
import numpy as np
import pytest
from brian2 import ms, mV, nS, pF
from conftest import DT, PASSIVE_MODEL, step_currents
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfit_core import hookimpl
from modelfit_core.contracts.benchmark_problem import BenchmarkProblem
from modelfit_core.contracts.errors import (
    ConfigurationError,
    PluginContractError,
    UnknownPluginError,
)
from modelfit_core.registry.entry_points import DISTRIBUTION
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.results.history import RoundRecord
from modelfit_core.testing import check_problem
from modelfit_core.tools.benchmarking.measures import (
    Target,
    ecdf,
    ecdf_area,
    round_seconds,
    trajectory,
)
from modelfit_core.tools.benchmarking.plan import make_plan
from modelfit_core.tools.benchmarking.report import read_results
from modelfit_core.tools.benchmarking.suite import compare_folders, run_benchmark
from modelfit_core.tools.cli import main


def noisy(clean, rng):
    return clean + rng.normal(0.0, 0.5e-3, np.shape(clean))


class TinyPassive:
    """Two parameters of the conftest's passive membrane, 2 rounds of 4 per run."""

    def define(self):
        return BenchmarkProblem(
            title="tiny passive", category="passive", model=PASSIVE_MODEL, dt=DT,
            inputs={"I": step_currents()},
            bounds={"gl": (1 * nS, 100 * nS), "C": (10 * pF, 500 * pF)},
            ground_truth={"gl": 10 * nS, "C": 50 * pF}, noise=noisy, data_seed=2,
            fitter_options={"param_init": {"v": -70 * mV}, "namespace": {"El": -70 * mV}},
            n_samples=4, budget=8, quick_budget=8, refinable=True)


class RaisesInDefine:
    def define(self):
        raise RuntimeError("the data server is down")


class NoData(TinyPassive):
    def define(self):
        return attrs.evolve(super().define(), ground_truth=None, noise=None)


class TruthOutsideBounds(TinyPassive):
    def define(self):
        return attrs.evolve(super().define(), ground_truth={"gl": 500 * nS, "C": 50 * pF})


class Plugin:
    """A third party's hook plugin registering problems."""

    def __init__(self, problems):
        self.problems = problems

    @hookimpl
    def modelfit_register_problems(self):
        return self.problems


def registry_with(**problems) -> Registry:
    return Registry(distributions=[DISTRIBUTION], plugins=[Plugin(problems)])


@pytest.fixture(scope="module")
def tiny_registry():
    return registry_with(tiny=TinyPassive)


def run_tiny(registry, output, **options):
    options = {"problems": ["tiny"], "optimizers": ["random", "pymoo"], "seeds": 2,
               "progress": False, **options}
    return run_benchmark(registry=registry, output=output, **options)


def test_a_benchmark_measures_every_run_and_writes_its_outputs(tiny_registry, tmp_path):
    document = run_tiny(tiny_registry, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"results.json", "results.csv", "table.md", "ecdf.png", "runs.db",
            "convergence_tiny.png"} <= names
    assert document["default_method"] == "default"  # what fit() does, named nothing
    assert [(r["method"], r["seed"]) for r in document["runs"]] == [
        ("random", 1), ("random", 2), ("pymoo:DE", 1), ("pymoo:DE", 2)]
    floor = document["problems"]["tiny"]["error_floor"]
    assert floor == pytest.approx(0.25e-6, rel=0.3)  # (0.5 mV)^2 noise
    for run in document["runs"]:
        assert run["evaluations"] == [4, 8] and run["status"] == "ran"
        errors = run["best_errors"]
        assert errors[1] <= errors[0] and errors[1] >= floor * 0.5
        for label, hit in run["hits"].items():
            target = next(t for t in document["problems"]["tiny"]["targets"]
                          if t["label"] == label)
            if hit["evaluations"] is not None and target["error"] is not None:
                # reached no later than the round whose best error is below it
                k = run["evaluations"].index(math.ceil(hit["evaluations"] / 4) * 4)
                assert errors[k] <= target["error"]
    table = (tmp_path / "table.md").read_text()
    assert "| pymoo:DE |" in table and "random" in table and "ECDF area" in table
    assert "By problem category" in table
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 * 4  # header, 4 runs x (3 error targets + parameters)
    assert read_results(tmp_path) == json.loads((tmp_path / "results.json").read_text())


def test_an_interrupted_benchmark_resumes_without_redoing_finished_runs(tiny_registry,
                                                                        tmp_path):
    whole = run_tiny(tiny_registry, tmp_path / "whole")
    rounds = []

    def interrupt_after_three(n):
        rounds.append(n)
        if sum(rounds) >= 3:
            raise KeyboardInterrupt

    from modelfit_core.tools.benchmarking.runs import run_plan
    plan = make_plan(tiny_registry, problems=["tiny"], optimizers=["random", "pymoo"],
                     seeds=2, output=tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, tiny_registry, on_rounds=interrupt_after_three)
    resumed = run_tiny(tiny_registry, tmp_path / "cut")
    assert [r["status"] for r in resumed["runs"]] == ["stored", "resumed", "ran", "ran"]
    for before, after in zip(whole["runs"], resumed["runs"]):
        assert after["best_errors"] == before["best_errors"]
        assert after["hits"].keys() == before["hits"].keys()
    again = run_tiny(tiny_registry, tmp_path / "cut")
    assert {r["status"] for r in again["runs"]} == {"stored"}


def test_compare_puts_two_result_folders_side_by_side(tiny_registry, tmp_path, capsys):
    run_tiny(tiny_registry, tmp_path / "a", optimizers=["random"], seeds=1)
    run_tiny(tiny_registry, tmp_path / "b", optimizers=["random", "pymoo"], seeds=1)
    text = compare_folders(tmp_path / "a", tmp_path / "b")
    assert "| random |" in text and "| pymoo:DE | not run |" in text
    assert main(["benchmark", "--compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "ECDF area" in capsys.readouterr().out
    assert main(["benchmark", "--compare", str(tmp_path / "a"), str(tmp_path)]) == 2
    assert "holds no results.json" in capsys.readouterr().err


# -- bad input: errors before anything is simulated -----------------------------------------
@pytest.mark.parametrize("options,error,message", [
    ({"problems": ["tinny"]}, UnknownPluginError, "tiny"),
    ({"optimizers": ["nevergrd"]}, UnknownPluginError, "nevergrad"),
    ({"optimizers": ["nevergrad:DEE"]}, ConfigurationError, "DE"),
    ({"optimizers": ["nsga2"]}, ConfigurationError, "multi-objective"),
    ({"optimizers": ["default:DE"]}, ConfigurationError, "takes no method"),
    ({"budget": 3}, ConfigurationError, "below one round"),
    ({"seeds": 0}, ConfigurationError, "at least 1"),
    ({"backend": "dsak"}, UnknownPluginError, "dask"),
])
def test_bad_arguments_are_refused_before_any_simulation(tiny_registry, tmp_path, options,
                                                         error, message):
    with pytest.raises(error, match=message):
        run_tiny(tiny_registry, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_an_output_folder_that_is_a_file_is_refused(tiny_registry, tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(ConfigurationError, match="is a file"):
        run_tiny(tiny_registry, tmp_path / "taken")
    with pytest.raises(ConfigurationError, match="is a file"):
        run_tiny(tiny_registry, tmp_path / "taken" / "below")


@pytest.mark.parametrize("broken,message", [
    (RaisesInDefine, "failed in define\\(\\): RuntimeError: the data server is down"),
    (NoData, "give outputs .* or ground_truth"),
])
def test_a_broken_third_party_problem_is_named_before_any_simulation(tmp_path, broken,
                                                                      message):
    registry = registry_with(tiny=TinyPassive, broken=broken)
    with pytest.raises(PluginContractError, match=f"'broken'.*{message}"):
        run_tiny(registry, tmp_path / "out", problems=["tiny", "broken"])
    assert not (tmp_path / "out").exists()


def test_the_cli_reports_bad_input_as_an_error_message(capsys, tmp_path):
    assert main(["benchmark", "--problems", "pasive", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "modelfit benchmark: error" in err and "passive" in err


# -- the contract check for problem authors ----------------------------------------------------
def test_check_problem_passes_a_correct_problem_and_simulates_two_rounds():
    check_problem(TinyPassive)


@pytest.mark.parametrize("broken,message", [
    (RaisesInDefine, "the data server is down"),
    (NoData, "ground_truth"),
    (TruthOutsideBounds, "outside its bounds"),
])
def test_check_problem_catches_broken_problems(broken, message):
    with pytest.raises(AssertionError, match=message):
        check_problem(broken, simulate=False)


# -- measures ------------------------------------------------------------------------------
def record(index, errors, parameters, duration=1.0):
    errors = np.asarray(errors, dtype=float)
    return RoundRecord(index=index, parameters=np.asarray(parameters, dtype=float),
                       errors=errors, diverged=~np.isfinite(errors), duration_s=duration)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(0.0, 10.0) | st.just(math.inf), min_size=1, max_size=4),
                min_size=1, max_size=5),
       st.floats(0.1, 5.0))
def test_a_trajectory_is_the_running_best_and_targets_are_hit_when_it_crosses_them(
        rounds_errors, level):
    rounds = [record(k, errors, [[float(e if math.isfinite(e) else 99.0)] for e in errors])
              for k, errors in enumerate(rounds_errors)]
    targets = [Target("level", error=level), Target("near", tolerance=0.05)]
    path = trajectory(rounds, ["x"], targets, {"x": 1.0})
    flat = [e for errors in rounds_errors for e in errors]
    running = np.minimum.accumulate(flat)
    assert list(path.evaluations) == list(np.cumsum([len(e) for e in rounds_errors]))
    assert list(path.best_errors) == [running[n - 1] for n in path.evaluations]
    first = next((k + 1 for k, e in enumerate(running) if e <= level), None)
    assert path.hit("level").evaluations == first
    near = next((k + 1 for k in range(len(flat)) if abs(_best_value(flat, k) - 1.0) <= 0.05),
                None)
    assert path.hit("near").evaluations == near


def _best_value(flat, k):
    """The parameter (equal to its error here) of the best evaluation among the first k+1."""
    best = min(range(k + 1), key=lambda i: (flat[i], i))
    value = flat[best]
    return value if math.isfinite(value) else math.nan


def test_the_first_round_counts_without_its_one_time_build():
    assert round_seconds([9.0, 1.0, 1.2, 0.8]) == [1.0, 1.0, 1.2, 0.8]
    assert round_seconds([0.5, 1.0]) == [0.5, 1.0]
    assert round_seconds([3.0]) == [3.0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.none() | st.integers(1, 1000), max_size=20), st.integers(2, 1000))
def test_the_ecdf_area_is_a_fraction_that_grows_when_a_pair_is_solved_sooner(hits, top):
    area = ecdf_area(hits, top)
    assert 0.0 <= area <= 1.0
    sooner = [1 if h is None else max(1, h // 2) for h in hits]
    assert ecdf_area(sooner, top) >= area - 1e-12
    grid = np.array([1.0, float(top)])
    assert np.all(np.diff(ecdf(hits, grid)) >= 0)


class LouderNoise(TinyPassive):
    """The tiny problem with other recordings (a new version of it)."""

    def define(self):
        return attrs.evolve(super().define(), data_seed=3)


def test_stored_runs_of_another_version_of_a_problem_are_not_read_back(tiny_registry,
                                                                        tmp_path):
    from modelfit_core.contracts.errors import StorageError
    run_tiny(tiny_registry, tmp_path, optimizers=["random"], seeds=1)
    with pytest.raises(StorageError, match="another version of the problem 'tiny'"):
        run_tiny(registry_with(tiny=LouderNoise), tmp_path, optimizers=["random"], seeds=1)


def test_a_refined_method_gives_a_fifth_of_its_budget_to_refine_where_the_metric_allows(
        tmp_path):
    registry = registry_with(tiny=TinyPassive)
    document = run_tiny(registry, tmp_path, optimizers=["pymoo+refine"], seeds=1, budget=40)
    run = document["runs"][0]
    assert run["method"] == "pymoo:DE+refine" and run["budget"] == 40
    # 32 evaluations of search (8 rounds of 4), then refine() one simulation at a time
    assert run["evaluations"][:8] == [4 * k for k in range(1, 9)]
    assert run["evaluations"][8:] == list(range(33, 33 + len(run["evaluations"]) - 8))
    assert len(run["evaluations"]) > 8 and run["evaluations"][-1] <= 40
    assert run["best_errors"][-1] <= run["best_errors"][7]
    assert (tmp_path / "refinements").is_dir()
    again = run_tiny(registry, tmp_path, optimizers=["pymoo+refine"], seeds=1, budget=40)
    assert again["runs"][0]["status"] == "stored"
    assert again["runs"][0]["best_errors"] == run["best_errors"]


class NotRefinable(TinyPassive):
    def define(self):
        return attrs.evolve(super().define(), refinable=False)


def test_a_refined_method_is_the_search_alone_where_refine_does_not_apply(tmp_path):
    document = run_tiny(registry_with(tiny=NotRefinable), tmp_path,
                        optimizers=["pymoo+refine"], seeds=1)
    assert document["runs"][0]["evaluations"] == [4, 8]


class SixPerRound(TinyPassive):
    def define(self):
        return attrs.evolve(super().define(), n_samples=6, budget=24, quick_budget=24)


def test_an_evaluation_with_sensitivities_counts_as_one_plus_n_parameters_simulations(
        tmp_path):
    """The gradient optimizer simulates every point with its 2 sensitivity systems: on
    the 2-parameter problem each evaluation costs 3, its budget buys a third of the
    rounds (of the 4 starts its class asks for), and evaluations to target are counted
    in plain simulations."""
    document = run_tiny(registry_with(tiny=SixPerRound), tmp_path,
                        optimizers=["gradient", "random"], seeds=1, budget=24)
    by_method = {run["method"]: run for run in document["runs"]}
    assert by_method["gradient"]["n_samples"] == 4
    assert by_method["gradient"]["evaluations"] == [12, 24]
    assert by_method["gradient"]["budget"] == 24
    assert by_method["random"]["evaluations"] == [6, 12, 18, 24]
    for hit in by_method["gradient"]["hits"].values():
        assert hit["evaluations"] is None or hit["evaluations"] % 3 == 0


class TinyFeatures(TinyPassive):
    """The tiny problem fitted to eFEL features: no residuals for a gradient optimizer."""

    def define(self):
        return attrs.evolve(super().define(), metric="efel", refinable=False,
                            metric_options={"stim_times": [(2 * ms, 15 * ms),
                                                           (5 * ms, 18 * ms)],
                                            "feat_list": ["steady_state_voltage_stimend"],
                                            "n_jobs": 1})


def test_a_method_that_refuses_a_problem_solves_none_of_its_targets(tmp_path):
    pytest.importorskip("efel")
    document = run_tiny(registry_with(tiny=TinyFeatures), tmp_path,
                        optimizers=["gradient", "random"], seeds=1)
    refused = next(run for run in document["runs"] if run["method"] == "gradient")
    assert refused["status"] == "refused" and "residuals" in refused["refused"]
    assert refused["evaluations"] == [] and all(
        hit["evaluations"] is None for hit in refused["hits"].values())
    assert "random" in {run["method"] for run in document["runs"]}
    assert "gradient" in (tmp_path / "table.md").read_text()


class SixPerRoundEuler(SixPerRound):
    def define(self):
        problem = super().define()
        return attrs.evolve(problem, fitter_options={**problem.fitter_options,
                                                     "method": "euler"})


def test_the_default_runs_what_fit_chooses_and_counts_what_it_simulates(tmp_path):
    """``default`` is a fit naming no optimizer: on a problem without an integration
    method it is pymoo's DE (the same run as ``pymoo:DE``); with one, the gradient
    optimizer with the starts that fit in n_samples (6 // (1 + 2) = 2), each evaluation
    counted as 3 simulations, so its rounds cost n_samples as DE's do."""
    plain = run_tiny(registry_with(tiny=SixPerRound), tmp_path / "plain",
                     optimizers=["default", "pymoo"], seeds=1, budget=24)
    runs = {run["method"]: run for run in plain["runs"]}
    assert runs["default"]["best_errors"] == runs["pymoo:DE"]["best_errors"]
    assert runs["default"]["evaluations"] == [6, 12, 18, 24]
    euler = run_tiny(registry_with(tiny=SixPerRoundEuler), tmp_path / "euler",
                     optimizers=["default", "gradient"], seeds=1, budget=24)
    runs = {run["method"]: run for run in euler["runs"]}
    assert runs["default"]["evaluations"] == [6, 12, 18, 24]  # 2 starts x 3 per round
    assert runs["gradient"]["evaluations"] == [12, 24]  # its own 4 starts
    assert "**default** (default)" in (tmp_path / "euler" / "table.md").read_text()
