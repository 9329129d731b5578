"""gradcheck's own numerics: finite differences must survive outputs of very different sizes."""
import numpy as np

import minitensor as mt


def _pow32(x):
    for _ in range(5):
        x = x * x                                  # x**32: outputs from ~1e-25 to ~1e7
    return x


def test_small_changes_are_not_lost_next_to_huge_outputs():
    # Found by hypothesis: contracting the outputs with u *before* differencing buried
    # the 5e-11 change of one element in the rounding error of a 1e7 element (numeric 0.0).
    x = mt.tensor(np.random.default_rng(4).standard_normal(3), requires_grad=True)
    assert mt.gradcheck(_pow32, [x], atol=1e-6, rtol=1e-5, mode="full")
    assert mt.gradcheck(_pow32, [x], atol=1e-6, rtol=1e-5, mode="projection")


def test_a_wrong_gradient_is_still_caught_and_named():
    class WrongSquare(mt.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_arrays
            return g * x                           # should be 2 * g * x

    x = mt.tensor(np.random.default_rng(0).standard_normal(4), requires_grad=True)
    try:
        mt.gradcheck(lambda t: WrongSquare.apply(t), [x], mode="full")
    except mt.GradcheckError as e:
        assert "input 0" in str(e) and "analytic" in str(e) and "numeric" in str(e)
    else:
        raise AssertionError("gradcheck accepted a wrong gradient")
