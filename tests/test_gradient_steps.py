"""The Levenberg-Marquardt steps of the gradient optimizer: inside the box, downhill."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from modelfit_plugins.optimizers.gradient_steps import (
    damped_step,
    predicted_decrease,
    projected_gradient_norm,
)


@st.composite
def models(draw, max_parameters=5):
    p = draw(st.integers(1, max_parameters))
    finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
    jacobian = draw(arrays(float, (p + 2, p), elements=finite))
    residuals = draw(arrays(float, p + 2, elements=finite))
    x = draw(arrays(float, p, elements=st.sampled_from([0.0, 1.0]) | st.floats(0, 1)))
    damping = draw(st.sampled_from([0.0, 1e-3, 1e-1, 10.0, 1e4]))
    return x, jacobian.T @ jacobian, jacobian.T @ residuals, damping


@settings(max_examples=200, deadline=None)
@given(model=models(), max_step=st.floats(0.01, 1))
def test_steps_stay_in_the_box_and_go_downhill(model, max_step):
    x, jtj, jtr, damping = model
    step = damped_step(x, jtj, jtr, damping, max_step)
    assert np.all(x + step >= 0) and np.all(x + step <= 1)
    assert np.max(np.abs(step), initial=0) <= max_step * (1 + 1e-12)
    scale = 1e-9 * (1 + np.abs(jtr).sum() + np.abs(jtj).sum())
    assert predicted_decrease(jtj, jtr, step) >= -scale


def test_an_unconstrained_gauss_newton_step_reaches_the_minimum():
    jtj = np.array([[2.0, 0.5], [0.5, 1.0]])
    minimum = np.array([0.4, 0.7])
    x = np.array([0.5, 0.5])
    step = damped_step(x, jtj, jtj @ (x - minimum), damping=0.0)
    assert np.allclose(x + step, minimum)
    assert projected_gradient_norm(minimum, np.zeros(2)) == 0
