"""Ops with several outputs: one node, one gradient per output, hooks per output.

The op below returns (x * y, x + y): its gradients are known in closed form, so the
engine's bookkeeping (one pending gradient per output, None for an output no gradient
reached, outputs consumed several times) is checked exactly, then by gradcheck.
"""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
from minitensor.autograd import Function


class ProductAndSum(Function):
    """(x * y, x + y), two outputs from one node."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y, x + y

    @staticmethod
    def backward(ctx, g_prod, g_sum):
        x, y = ctx.saved_arrays
        gx = np.zeros_like(x) if g_prod is None else g_prod * y
        gy = np.zeros_like(y) if g_prod is None else g_prod * x
        if g_sum is not None:
            gx, gy = gx + g_sum, gy + g_sum
        return gx, gy


def _leaves(rng):
    x = mt.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = mt.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    return x, y


def test_forward_returns_one_tensor_per_output_on_one_node():
    x, y = _leaves(np.random.default_rng(0))
    p, s = ProductAndSum.apply(x, y)
    np.testing.assert_array_equal(p.data, x.data * y.data)
    np.testing.assert_array_equal(s.data, x.data + y.data)
    assert p.grad_fn is s.grad_fn and p.grad_fn is not None


def test_gradients_of_both_outputs_add_up():
    rng = np.random.default_rng(1)
    x, y = _leaves(rng)
    a, b = rng.standard_normal((2, 3, 4))
    p, s = ProductAndSum.apply(x, y)
    ((p * a).sum() + (s * b).sum() + (p * p).sum()).backward()
    gp = a + 2 * p.data
    np.testing.assert_allclose(x.grad.data, gp * y.data + b, rtol=1e-12)
    np.testing.assert_allclose(y.grad.data, gp * x.data + b, rtol=1e-12)


@pytest.mark.parametrize("used", [0, 1])
def test_an_output_no_gradient_reaches_gets_none(used):
    rng = np.random.default_rng(2)
    x, y = _leaves(rng)
    outs = ProductAndSum.apply(x, y)
    outs[used].sum().backward()
    expected_x = y.data if used == 0 else np.ones_like(x.data)
    np.testing.assert_allclose(x.grad.data, expected_x, rtol=1e-12)


def test_backward_from_the_second_output_and_retain_grad_and_hooks():
    rng = np.random.default_rng(3)
    x, y = _leaves(rng)
    p, s = ProductAndSum.apply(x, y)
    s.retain_grad()
    seen = []
    p.register_hook(lambda g: seen.append(g.data.copy()))
    (s * 3.0 + p).sum().backward()
    np.testing.assert_array_equal(s.grad.data, np.full((3, 4), 3.0))
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], np.ones((3, 4)))
    np.testing.assert_allclose(x.grad.data, y.data + 3.0, rtol=1e-12)


def test_gradcheck_through_a_multi_output_op():
    rng = np.random.default_rng(4)
    x, y = _leaves(rng)
    assert mt.gradcheck(lambda x, y: ProductAndSum.apply(x, y)[0].tanh()
                        + ProductAndSum.apply(x, y)[1].exp(), [x, y])


def test_no_graph_under_no_grad():
    x, y = _leaves(np.random.default_rng(5))
    with mt.no_grad():
        p, s = ProductAndSum.apply(x, y)
    assert p.grad_fn is None and s.grad_fn is None and not p.requires_grad
