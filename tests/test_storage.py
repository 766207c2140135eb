"""SQLite storage: streaming, concurrent reading, resume after SIGKILL (issue 7)."""

import os
import signal
import subprocess
import sys

import pytest

from modelfit_core import ConfigurationError
from modelfit_core.results.storage import list_studies, read_history, read_results

from storage_helpers import WORKER, run_worker, stored_rounds, wait_for_rounds


def test_every_round_is_stored_and_readable(tmp_path):
    db = tmp_path / "fit.db"
    best = run_worker(db, "passive", 4)
    assert list_studies(db) == ["passive"]
    frame = read_results(db, "passive", format="dataframe")
    assert len(frame) == 4 * 30 and sorted(frame["round"].unique()) == [0, 1, 2, 3]
    history = read_history(db)
    assert history.best_error == pytest.approx(best[2])
    rows = read_results(db, format="list")
    assert rows[0]["gl"].has_same_dimensions(1e-9 * __import__("brian2").siemens)


def test_existing_study_needs_resume_or_restart(tmp_path):
    db = tmp_path / "fit.db"
    run_worker(db, "s", 1)
    completed = subprocess.run([sys.executable, str(WORKER), str(db), "s", "1"],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode != 0
    assert "resume=True" in completed.stderr and ConfigurationError.__name__ in completed.stderr


def test_killed_fit_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL mid-fit, resume from the store: same evaluations, same best as a fit
    that was never interrupted (same seed)."""
    n_rounds = 8
    reference = run_worker(tmp_path / "ref.db", "s", n_rounds)
    db = tmp_path / "killed.db"
    process = subprocess.Popen([sys.executable, str(WORKER), str(db), "s", str(n_rounds),
                                "--sleep", "0.4"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    wait_for_rounds(process, db, "s", 3)
    # a concurrent reader sees the running fit
    assert len(read_results(db, "s", format="dataframe")) >= 3 * 30
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()  # reaps it and closes its pipes
    done = stored_rounds(db, "s")
    assert 3 <= done < n_rounds
    resumed = run_worker(db, "s", n_rounds, "--resume")
    assert resumed == pytest.approx(reference, rel=0, abs=0)
    frame = read_results(db, "s", format="dataframe")
    expected = read_results(tmp_path / "ref.db", "s", format="dataframe")
    assert len(frame) == n_rounds * 30
    assert frame.drop(columns=[]).equals(expected)
