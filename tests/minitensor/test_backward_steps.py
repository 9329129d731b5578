"""autograd.backward_steps: the engine's backward one node at a time, and writing your own op."""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
from minitensor import nn
from minitensor import functional as F
from minitensor.autograd import backward_steps


def _model_loss(seed=0):
    mt.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 3))
    x = mt.randn(4, 6)
    loss = F.cross_entropy(model(x), mt.tensor([0, 2, 1, 2]))
    return model, loss


def test_steps_leave_the_same_grads_as_backward():
    model, loss = _model_loss()
    loss.backward()
    expected = [p.grad.data.copy() for p in model.parameters()]
    model, loss = _model_loss()
    steps = list(backward_steps(loss))
    assert [p.grad.data for p in model.parameters()] and all(
        np.array_equal(a, p.grad.data) for a, p in zip(expected, model.parameters()))
    assert [s.op for s in steps] == ["CrossEntropy", "Linear", "LayerNorm", "GELU", "Linear"]


def test_step_records_what_flows():
    a = mt.tensor([1.0, 2.0], requires_grad=True)
    b = mt.tensor([3.0, 5.0], requires_grad=True)
    loss = (a * b).sum()
    first, second = backward_steps(loss)
    assert first.op == "Sum" and first.grad_in[0].shape == () and first.grad_in[0] == 1.0
    assert np.array_equal(first.grads_out[0], [1.0, 1.0])
    assert second.op == "Mul" and second.parents == (a, b)
    assert np.array_equal(second.grads_out[0], b.data) and np.array_equal(second.grads_out[1], a.data)
    assert "MulBackward" in second.describe() and "|g|=" in second.describe()


def test_steps_can_be_paused_in_the_callers_grad_mode():
    x = mt.randn(3, requires_grad=True)
    steps = backward_steps((x * 2).sum())
    next(steps)
    assert mt.is_grad_enabled()                      # the engine's no_grad is not leaked
    y = x * 3
    assert y.requires_grad
    list(steps)
    assert np.allclose(x.grad.data, 2.0)


def test_steps_name_where_nodes_were_made_under_anomaly_mode():
    x = mt.randn(3, requires_grad=True)
    with mt.detect_anomaly():
        loss = x.exp().sum()
    steps = list(backward_steps(loss))
    assert all("test_backward_steps.py" in s.created_at for s in steps)


def test_non_scalar_needs_a_gradient():
    x = mt.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        next(backward_steps(x * 2))
    list(backward_steps(x * 2, gradient=np.ones(3, np.float32)))
    assert np.allclose(x.grad.data, 2.0)


# ------------------------------------------------------------ writing your own op

class Softplus(mt.Function):
    """f(x) = log(1 + e^x); f'(x) = sigmoid(x)."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.logaddexp(0.0, x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g / (1.0 + np.exp(-x))


class WrongSoftplus(Softplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g / (1.0 + np.exp(x))                 # sign error: sigmoid(-x)


def test_custom_op_gradcheck_in_one_call():
    x = mt.randn(4, 3, dtype=mt.float64, requires_grad=True)
    assert mt.gradcheck(Softplus.apply, [x])
    with pytest.raises(mt.GradcheckError):
        mt.gradcheck(WrongSoftplus.apply, [x])
