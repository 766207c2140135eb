"""Pareto fronts without simulations: non-domination (a Hypothesis property), the
member a fit reports, weights, hypervolume, and the front kept round by round."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.results.pareto import (ParetoFront, check_weights, choose, dominates,
                                          hypervolume, non_dominated)

# few distinct values, so that ties and duplicate vectors are common
VALUES = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 1e-9, 7.25])
MATRICES = st.integers(1, 3).flatmap(lambda k: arrays(
    np.float64, st.tuples(st.integers(0, 30), st.just(k)), elements=VALUES))


@settings(max_examples=150, deadline=None)
@given(values=MATRICES)
def test_the_front_is_exactly_the_non_dominated_rows(values):
    mask = non_dominated(values)
    for i, row in enumerate(values):
        beaten = any(dominates(other, row) for other in values)
        assert mask[i] == (not beaten), (i, row)
    front = values[mask]
    # no member dominates another, and every row is dominated by or equal to a member
    assert not any(dominates(a, b) for a in front for b in front)
    for row in values[~mask]:
        assert any(dominates(member, row) for member in front)


@settings(max_examples=60, deadline=None)
@given(values=MATRICES, split=st.integers(0, 30))
def test_a_front_kept_round_by_round_equals_the_front_of_everything(values, split):
    front = ParetoFront(tuple(f"f{j}" for j in range(values.shape[1])))
    rounds = [values[:split], values[split:]]
    for position, block in enumerate(rounds):
        front.add(position, block, np.ones(len(block), dtype=bool))
    expected = values[non_dominated(values)]
    assert sorted(map(tuple, front.values)) == sorted(map(tuple, expected))
    for (position, sample), row in zip(front.rows, front.values):
        assert np.array_equal(rounds[position][sample], row)


def test_invalid_rows_never_join_the_front():
    front = ParetoFront(("a", "b"))
    front.add(0, np.array([[0.0, 0.0], [1.0, np.nan], [np.inf, 0.0], [2.0, 2.0]]),
              np.array([False, True, True, True]))
    assert front.values.tolist() == [[2.0, 2.0]] and front.rows.tolist() == [[0, 3]]
    assert non_dominated(np.array([[np.nan, 0.0], [1.0, 1.0]])).tolist() == [False, True]


def test_the_chosen_member_is_closest_to_the_ideal_point_or_weighted():
    # scaled to [0, 1]: (0, 1), (0.25, 0.25), (1, 0)
    front = np.array([[0.0, 8.0], [1.0, 2.0], [4.0, 0.0]])
    assert choose(front) == 1
    assert choose(front, weights=[1.0, 0.0]) == 0
    assert choose(front, weights=[0.0, 1.0]) == 2
    assert choose(front, weights=check_weights({"b": 1, "a": 0}, ["a", "b"])) == 2
    assert choose(np.array([[1.0, 1.0], [1.0, 1.0]])) == 0  # ties: the earliest


@pytest.mark.parametrize("weights,message", [
    ({"a": 1}, "missing: b"),
    ({"a": 1, "b": 1, "c": 2}, "unknown: c"),
    ([1, 2, 3], "3 weights for 2 objectives"),
    ([1, -1], ">= 0"),
    ([0, 0], "not all 0"),
    ([1, float("nan")], "finite"),
    (["x", 1], "numbers"),
    (3, "one weight per objective"),
])
def test_bad_weights_are_clear_errors(weights, message):
    with pytest.raises(ConfigurationError, match=message):
        check_weights(weights, ["a", "b"])


def test_hypervolume_of_known_fronts():
    assert hypervolume(np.array([[1.0, 1.0]]), [2.0, 2.0]) == 1.0
    # a staircase: 3x1 + 2x1 + 1x1
    assert hypervolume(np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]), [4, 4]) == 6.0
    # dominated and out-of-reference points add nothing
    assert hypervolume(np.array([[1.0, 3.0], [2.0, 3.5], [5.0, 0.0]]), [4, 4]) == 3.0
    assert hypervolume(np.array([[1.0, 1.0, 1.0]]), [2, 3, 4]) == 6.0
    assert hypervolume(np.empty((0, 2)), [1, 1]) == 0.0


@settings(max_examples=40, deadline=None)
@given(values=arrays(np.float64, st.tuples(st.integers(1, 12), st.sampled_from([2, 3])),
                     elements=st.floats(0, 1, allow_nan=False)))
def test_hypervolume_matches_a_monte_carlo_count_of_the_dominated_region(values):
    k = values.shape[1]
    grid = np.stack(np.meshgrid(*[np.linspace(0.0125, 1.1875, 48)] * k), -1).reshape(-1, k)
    dominated = (grid[:, None, :] >= values[None]).all(axis=2).any(axis=1)
    estimate = dominated.mean() * 1.2 ** k
    assert hypervolume(values, [1.2] * k) == pytest.approx(estimate, abs=0.1 * 1.2 ** k)


def test_hypervolume_agrees_with_pymoo():
    from pymoo.indicators.hv import HV
    rng = np.random.default_rng(3)
    for k in (2, 3, 4):
        values = rng.random((40, k))
        assert hypervolume(values, [1.1] * k) == pytest.approx(
            HV(ref_point=np.full(k, 1.1))(values), rel=1e-9)
