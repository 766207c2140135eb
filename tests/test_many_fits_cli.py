"""``modelfit fit A.toml B.toml ...`` and ``modelfit benchmark --backend dask`` (issue 25):
several configurations checked first and fitted into one storage file, side by side on a
2-worker LocalCluster; the benchmark's runs side by side give what the sequential
benchmark gives."""

from __future__ import annotations

import re
import sqlite3

import pandas as pd
import pytest
from config_project import passive_config, write_project
from test_benchmark import TinyPassive, registry_with

from modelfit_core.results.storage import list_studies, read_results
from modelfit_core.tools.benchmarking.plan import make_plan
from modelfit_core.tools.benchmarking.runs import run_plan
from modelfit_core.tools.benchmarking.suite import run_benchmark
from modelfit_core.tools.cli import main
from passive_membrane import step_responses


@pytest.fixture
def two_configs(tmp_path):
    """``a.toml`` (seed 2) and ``b.toml`` (seed 3) of the passive fit, one folder of data."""
    currents, v = step_responses(300)
    v_mv = v * 1e3
    text = passive_config(n_samples=6, n_rounds=3).replace('study = "passive"\n', "")
    write_project(tmp_path, text, currents, v_mv)
    (tmp_path / "fit.toml").rename(tmp_path / "a.toml")
    (tmp_path / "b.toml").write_text(text.replace("seed = 2", "seed = 3"))
    return tmp_path


@pytest.mark.slow
def test_several_configurations_side_by_side_equal_one_after_another(two_configs, capsys):
    folder = two_configs
    configs = [str(folder / "a.toml"), str(folder / "b.toml")]
    assert main(["fit", *configs, "--backend", "dask", "--workers", "2",
                 "--storage", str(folder / "many.db")]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"a: ran on \S+:\d+, 3 rounds, best error", printed)
    for study in ("a", "b"):
        for name in ("results.csv", "best.json", "errors.png", "parameters.png"):
            assert (folder / "out" / study / name).exists(), (study, name)
    # the same configurations one after another here, in their own [fit] storage
    assert main(["fit", *configs]) == 0
    assert "b: ran on this process" in capsys.readouterr().out
    assert list_studies(folder / "fit.db") == ["a", "b"]
    for study in ("a", "b"):
        here = read_results(folder / "fit.db", study, format="dataframe")
        assert isinstance(here, pd.DataFrame) and len(here) == 3 * 6
        assert here.equals(read_results(folder / "many.db", study, format="dataframe"))
    # again: both read back, nothing simulated
    assert main(["fit", *configs]) == 0
    assert "a: stored, 3 rounds" in capsys.readouterr().out


def test_a_bad_configuration_among_several_is_refused_before_any_simulation(two_configs,
                                                                            capsys):
    folder = two_configs
    (folder / "b.toml").write_text((folder / "b.toml").read_text().replace(
        'C = ["50*pF", "500*pF"]', 'C = ["500*pF", "50*pF"]'))
    assert main(["fit", str(folder / "a.toml"), str(folder / "b.toml"), "--backend", "dask",
                 "--storage", str(folder / "many.db")]) == 2
    error = capsys.readouterr().err
    assert "b.toml" in error and "Bounds of 'C'" in error
    assert not (folder / "many.db").exists() or not list_studies(folder / "many.db")
    # a file that is not TOML: named, before the others are even built
    (folder / "b.toml").write_text("[fit\n")
    assert main(["fit", str(folder / "a.toml"), str(folder / "b.toml")]) == 2
    assert "b.toml: not valid TOML" in capsys.readouterr().err
    assert not (folder / "fit.db").exists()


def test_several_configurations_need_one_storage(two_configs, capsys):
    folder = two_configs
    (folder / "b.toml").write_text((folder / "b.toml").read_text().replace(
        "sqlite:///fit.db", "sqlite:///other.db"))
    assert main(["fit", str(folder / "a.toml"), str(folder / "b.toml")]) == 2
    assert "pass --storage" in capsys.readouterr().err
    assert main(["fit", str(folder / "a.toml"), "--workers", "2"]) == 2
    assert "--backend dask --workers 2" in capsys.readouterr().err


def _without_seconds(table: str) -> str:
    """The table with its wall-seconds column blanked (timings differ run to run)."""
    return re.sub(r"\| [0-9.]+ \|\n", "| s |\n", table)


@pytest.mark.slow
def test_benchmark_side_by_side_on_dask_equals_the_sequential_benchmark(tmp_path):
    registry = registry_with(tiny=TinyPassive)
    options = dict(registry=registry, problems=["tiny"], optimizers=["random", "pymoo"],
                   seeds=2, progress=False)
    sequential = run_benchmark(output=tmp_path / "sequential", **options)
    distributed = run_benchmark(output=tmp_path / "dask", backend="dask", **options)
    for before, after in zip(sequential["runs"], distributed["runs"], strict=True):
        for key in ("problem", "method", "seed", "status", "evaluations", "best_errors",
                    "best_parameters"):
            assert before[key] == after[key], key
        assert {t: h["evaluations"] for t, h in before["hits"].items()} == \
            {t: h["evaluations"] for t, h in after["hits"].items()}
    assert sequential["problems"] == distributed["problems"]
    assert _without_seconds((tmp_path / "sequential" / "table.md").read_text()) == \
        _without_seconds((tmp_path / "dask" / "table.md").read_text())
    for study in list_studies(tmp_path / "sequential" / "runs.db"):
        assert read_results(tmp_path / "sequential" / "runs.db", study,
                            format="dataframe").equals(
            read_results(tmp_path / "dask" / "runs.db", study, format="dataframe"))
    with sqlite3.connect(tmp_path / "dask" / "runs.db") as connection:
        pids = {pid for pid, in connection.execute("SELECT DISTINCT pid FROM sessions")}
    assert len(pids) == 2  # fitted by the two workers, not here
    again = run_benchmark(output=tmp_path / "dask", backend="dask", **options)
    assert {run["status"] for run in again["runs"]} == {"stored"}
    # interrupted after 3 rounds (one after another), then finished side by side
    rounds = []

    def interrupt_after_three(n):
        rounds.append(n)
        if sum(rounds) >= 3:
            raise KeyboardInterrupt

    plan = make_plan(registry, problems=["tiny"], optimizers=["random", "pymoo"], seeds=2,
                     output=tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, registry, on_rounds=interrupt_after_three)
    resumed = run_benchmark(output=tmp_path / "cut", backend="dask", **options)
    assert [run["status"] for run in resumed["runs"]] == ["stored", "resumed", "ran", "ran"]
    assert [run["best_errors"] for run in resumed["runs"]] == \
        [run["best_errors"] for run in sequential["runs"]]
