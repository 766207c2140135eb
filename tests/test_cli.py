"""The command line: modelfit fit CONFIG.toml, modelfit results, config errors (issue 7),
Ctrl-C during a fit."""

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from modelfit_core.tools.cli import main
from modelfit_core.tools.config import ConfigError, load_config

from config_project import passive_config, write_project
from passive_membrane import step_responses

CONFIG = passive_config(n_samples=30, n_rounds=3)


@pytest.fixture
def project(tmp_path):
    currents, v = step_responses(300)
    v_mv = v * 1e3
    return write_project(tmp_path, CONFIG, currents, v_mv)


def test_fit_and_results_commands(project, capsys):
    assert main(["fit", str(project / "fit.toml")]) == 0
    out = project / "out"
    for name in ("results.csv", "best.json", "errors.png", "parameters.png", "fit.png"):
        assert (out / name).exists(), name
    assert len(pd.read_csv(out / "results.csv")) == 3 * 30
    best = json.loads((out / "best.json").read_text())
    assert set(best["parameters_si"]) == {"gl", "C"}
    capsys.readouterr()
    assert main(["results", str(project / "fit.db"), "--output", str(project / "plots")]) == 0
    printed = capsys.readouterr().out
    assert "studies passive" in printed and "best error" in printed
    assert (project / "plots" / "errors.png").exists()
    # a second run refuses to overwrite the stored study, --resume continues it
    assert main(["fit", str(project / "fit.toml")]) == 2
    assert "resume" in capsys.readouterr().err
    assert main(["fit", str(project / "fit.toml"), "--resume"]) == 0


@pytest.mark.parametrize("change, key, message", [
    (("n_samples = 30", "n_sample = 30"), "n_sample", "unknown key"),
    (("[bounds]", "[bound]"), "[bound]", "unknown section"),
    (('dt = "0.1*ms"', 'dt = "0.1*msec*"'), "dt", "cannot read"),
    (('gl = ["1*nS", "50*nS"]', 'gl = ["1*nS"]'), "gl", "[lower, upper]"),
    (('input = "input.csv"', 'input = "missing.csv"'), "input", "does not exist"),
])
def test_bad_config_names_key_and_line(project, change, key, message):
    text = CONFIG.replace(*change)
    (project / "fit.toml").write_text(text)
    line = next(n for n, l in enumerate(text.splitlines(), 1)
                if l.strip() == key or l.strip().startswith(f"{key} ="))
    with pytest.raises(ConfigError) as info:
        from modelfit_core.tools.config import build_fitter
        build_fitter(load_config(project / "fit.toml"))
    assert message in str(info.value)
    assert f"line {line}" in str(info.value)


def test_bad_config_from_the_command_line(project, capsys):
    (project / "fit.toml").write_text(CONFIG.replace("n_samples = 30", "n_sample = 30"))
    assert main(["fit", str(project / "fit.toml")]) == 2
    assert "n_sample" in capsys.readouterr().err


def stored_rounds(database) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            return connection.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


def test_ctrl_c_reports_stored_rounds_and_how_to_resume(project):
    config = project / "fit.toml"
    config.write_text(CONFIG.replace("n_rounds = 3", "n_rounds = 100000"))
    with open(project / "stdout.txt", "w") as stdout:
        process = subprocess.Popen([sys.executable, "-m", "modelfit_core", "fit", str(config)],
                                   cwd=project, stdout=stdout, stderr=subprocess.PIPE,
                                   text=True)
        try:
            deadline = time.monotonic() + 240
            while stored_rounds(project / "fit.db") < 1:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "no round stored in 240 s"
                time.sleep(0.2)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    stored = stored_rounds(project / "fit.db")
    assert f"{stored} round(s) completed and stored" in err
    assert f"modelfit fit {config} --resume" in err
    # the hint works: the stored study continues to one more round than was kept
    config.write_text(CONFIG.replace("n_rounds = 3", f"n_rounds = {stored + 1}"))
    assert main(["fit", str(config), "--resume"]) == 0
    assert stored_rounds(project / "fit.db") == stored + 1


def test_ctrl_c_without_storage_says_nothing_was_kept(project, monkeypatch, capsys):
    from modelfit_core.fitting.trace_fitter import TraceFitter
    original = TraceFitter.fit

    def fit_then_ctrl_c(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "n_rounds": 1})
        raise KeyboardInterrupt

    monkeypatch.setattr(TraceFitter, "fit", fit_then_ctrl_c)
    config = project / "fit.toml"
    config.write_text(CONFIG.replace('storage = "sqlite:///fit.db"\n', ""))
    assert main(["fit", str(config)]) == 130
    err = capsys.readouterr().err
    assert "interrupted after 1 completed round(s)" in err
    assert "nothing was kept on disk" in err and 'storage = "sqlite:///fit.db"' in err
    assert not (project / "fit.db").exists()
