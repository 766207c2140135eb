"""pymoo's DE with its duplicate check in numpy (plugins/optimizers/pymoo_de.py): the same
proposals as pymoo's own DE, without importing scipy.spatial."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pymoo.algorithms.soo.nonconvex.de import DE as PymooDE
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.termination import NoTermination

from modelfit_plugins.optimizers.pymoo_de import DE, duplicated_rows

# few distinct values (and NaN), so that equal rows are common
values = st.sampled_from([0.0, -0.0, 0.25, 1.0, np.nan])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3).flatmap(lambda d: st.tuples(
    arrays(float, st.tuples(st.integers(0, 12), st.just(d)), elements=values),
    arrays(float, st.tuples(st.integers(0, 12), st.just(d)), elements=values))))
def test_finds_the_duplicates_pymoo_finds(rows_and_others):
    rows, others = rows_and_others
    _, _, expected = DefaultDuplicateElimination(epsilon=0.0).do(
        Population.new(X=rows), Population.new(X=others), return_indices=True)
    assert list(np.flatnonzero(duplicated_rows(rows, others))) == list(expected)


def test_large_populations():
    rng = np.random.default_rng(0)
    others = rng.random((3000, 2))
    rows = np.vstack([rng.random((1500, 2)), others[::2], others[:1]])
    duplicated = duplicated_rows(rows, others)
    assert not duplicated[:1500].any() and duplicated[1500:].all()


def sphere(x):
    return ((x - 0.3) ** 2).sum(axis=1, keepdims=True)


def proposals(algorithm_class, seed, variant, generations=6, n_var=3, pop_size=12):
    problem = Problem(n_var=n_var, n_obj=1, xl=[0.0] * n_var, xu=[1.0] * n_var)
    algorithm = algorithm_class(pop_size=pop_size, variant=variant, CR=0.9)
    algorithm.setup(problem, seed=seed, termination=NoTermination())
    asked = []
    for _ in range(generations):
        population = algorithm.ask()
        X = population.get("X")
        # a grid of 4 values per axis: offspring often equal a member
        population.set("F", sphere(np.round(X * 4) / 4))
        algorithm.tell(infills=population)
        asked.append(X)
    return np.array(asked), algorithm.pop.get("X")


@pytest.mark.parametrize("variant", ["DE/best/1/bin", "DE/rand/1/bin", "DE/rand/2/exp"])
@pytest.mark.parametrize("seed", [1, 2])
def test_proposes_exactly_what_pymoos_de_proposes(seed, variant):
    ours, our_population = proposals(DE, seed, variant)
    theirs, their_population = proposals(PymooDE, seed, variant)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_population, their_population)


def test_a_fit_with_de_does_not_import_scipy_spatial():
    program = """
import sys
import numpy as np
from modelfit_plugins.optimizers.pymoo_optimizer import PymooOptimizer
optimizer = PymooOptimizer("DE", seed=3)
optimizer.initialize(["a", "b"], popsize=20, rounds=3, a=[0.0, 1.0], b=[-1.0, 1.0])
for _ in range(3):
    points = optimizer.ask(20)
    optimizer.tell(points, [float(np.sum(np.square(p))) for p in points])
assert "scipy.spatial" not in sys.modules, "scipy.spatial was imported"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
