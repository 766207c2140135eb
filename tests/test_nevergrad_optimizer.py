"""NevergradOptimizer: asked points stay in the bounds, seeds repeat, names are checked."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfit_core import NevergradOptimizer, Optimizer
from modelfit_core.contracts.errors import ConfigurationError, FitStateError

METHODS = ["DE", "CMA", "PSO", "TwoPointsDE", "OnePlusOne", "RandomSearch"]


def quiet_rounds(optimizer, n_rounds, n_samples, objective):
    """ask/tell rounds; returns every asked vector (CMA warns about small populations)."""
    asked = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n_rounds):
            vectors = optimizer.ask(n_samples)
            asked.extend(vectors)
            optimizer.tell(vectors, [objective(v) for v in vectors])
    return asked


@st.composite
def boxes(draw):
    """1-3 parameters with bounds of very different magnitudes (1e-12 .. 1e-3)."""
    n = draw(st.integers(1, 3))
    lower, upper = [], []
    for _ in range(n):
        exponent = draw(st.integers(-12, -4))
        low = draw(st.floats(1.0, 9.0)) * 10.0 ** exponent
        width = draw(st.floats(1e-3, 100.0)) * 10.0 ** exponent
        lower.append(low)
        upper.append(min(low + width, 1e-3))  # low <= 9e-4, so upper > low
    return np.array(lower), np.array(upper)


@settings(max_examples=40, deadline=None)
@given(box=boxes(), method=st.sampled_from(METHODS), n_samples=st.integers(1, 8),
       seed=st.integers(0, 2 ** 16), target=st.floats(-0.5, 1.5))
def test_asked_vectors_stay_inside_the_bounds(box, method, n_samples, seed, target):
    lower, upper = box
    names = [f"p{k}" for k in range(len(lower))]
    optimizer = NevergradOptimizer(method=method, seed=seed)
    optimizer.initialize(names, popsize=n_samples, rounds=3,
                         **{n: [lo, hi] for n, lo, hi in zip(names, lower, upper)})
    # an objective whose optimum may lie outside the box pushes towards its edges
    goal = lower + target * (upper - lower)
    asked = quiet_rounds(optimizer, 3, n_samples,
                         lambda v: float(np.sum(((v - goal) / (upper - lower)) ** 2)))
    assert len(asked) == 3 * n_samples
    for vector in asked:
        assert vector.shape == (len(names),)
        assert np.all(vector >= lower) and np.all(vector <= upper), (vector, lower, upper)
    recommended = optimizer.recommend()
    assert np.all(recommended >= lower) and np.all(recommended <= upper)


def _asked_points(seed, method="DE"):
    optimizer = NevergradOptimizer(method=method, seed=seed)
    optimizer.initialize(["a", "b"], popsize=5, rounds=3, a=[1e-9, 1e-7], b=[1e-12, 1e-10])
    return np.array(quiet_rounds(optimizer, 3, 5, lambda v: float(v[0] * 1e7 + v[1] * 1e10)))


@pytest.mark.parametrize("method", ["DE", "CMA", "OnePlusOne"])
def test_same_seed_asks_the_same_points(method):
    np.testing.assert_array_equal(_asked_points(7, method), _asked_points(7, method))


def test_different_seeds_ask_different_points():
    assert not np.array_equal(_asked_points(7), _asked_points(8))


@pytest.mark.parametrize("name,suggestion", [("DEE", "'DE'"), ("TwoPointDE", "'TwoPointsDE'"),
                                             ("CMAA", "'CMA'")])
def test_unknown_method_suggests_close_names(name, suggestion):
    with pytest.raises(ConfigurationError) as info:
        NevergradOptimizer(method=name)
    message = str(info.value)
    assert f"Unknown nevergrad method {name!r}" in message
    assert "Did you mean" in message and suggestion in message
    assert "nevergrad.optimizers.registry" in message


def test_unknown_method_without_close_name():
    with pytest.raises(ConfigurationError, match="Unknown nevergrad method 'qwertyuiop'"):
        NevergradOptimizer(method="qwertyuiop")


def test_unknown_bounding():
    with pytest.raises(ConfigurationError, match="bounding"):
        NevergradOptimizer(bounding="reflect")


def test_misspelled_option_is_a_configuration_error(registry):
    """Regression: **options once swallowed typos until nevergrad raised a TypeError in fit()."""
    from modelfit_core import Pipeline

    with pytest.raises(ConfigurationError, match="methd"):
        NevergradOptimizer(methd="DE")
    with pytest.raises(ConfigurationError, match="methd"):
        Pipeline.from_names(optimizer_options={"methd": "DE"}, registry=registry)


def test_ask_before_initialize():
    with pytest.raises(FitStateError, match="initialize"):
        NevergradOptimizer().ask(3)


def test_initialize_needs_every_bound():
    with pytest.raises(ConfigurationError, match="b"):
        NevergradOptimizer().initialize(["a", "b"], popsize=2, rounds=1, a=[0.0, 1.0])


def test_tell_needs_one_error_per_vector():
    optimizer = NevergradOptimizer(seed=1)
    optimizer.initialize(["a"], popsize=2, rounds=1, a=[0.0, 1.0])
    vectors = optimizer.ask(2)
    with pytest.raises(ConfigurationError, match="one error per parameter vector"):
        optimizer.tell(vectors, [1.0])


@pytest.mark.parametrize("method", ["OnePlusOne", "DE", "CMA"])
def test_telling_points_that_were_not_asked_for(method):
    """Externally chosen points are told as they are: the best one is recommended."""
    optimizer = NevergradOptimizer(method=method, seed=1)
    optimizer.initialize(["a"], popsize=2, rounds=2, a=[0.0, 10.0])
    optimizer.ask(2)
    optimizer.tell([np.array([3.0]), np.array([7.0])], [0.0, 100.0])
    assert optimizer.recommend()[0] == pytest.approx(3.0, rel=1e-9)


def test_satisfies_the_optimizer_protocol():
    assert isinstance(NevergradOptimizer(), Optimizer)
