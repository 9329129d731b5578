"""What the engine's fast paths must keep: NumPy's error state around ops (quiet inside,
the caller's own outside), nodes that record nothing, per-node hook registries, ops whose
forward is replaced at run time, and Module attribute lookup. (Speed is measured by
bench/dispatch.py, never here.)"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import minitensor as mt
from minitensor import autograd, nn
from minitensor.ops.elementwise import Add, Log


def leaf(*values):
    return mt.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


# ----------------------------------------------------------------------------- error state

def test_forward_and_backward_are_quiet_even_when_the_caller_raises():
    x = leaf(0.0, 1.0)
    with np.errstate(all="raise"):
        y = x.log()                                   # log(0) = -inf, no FloatingPointError
        (1 / x).sum().backward()                      # 1/0 forward, -1/0^2 backward
    assert y.data[0] == -np.inf
    assert x.grad.data[0] == -np.inf


def test_ops_emit_no_runtime_warnings():
    x = leaf(0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with mt.no_grad():
            x.log()
        (x.log() * 2).sum().backward()


def test_the_callers_error_state_is_back_after_each_op():
    x = leaf(0.0, 1.0)
    with np.errstate(divide="raise", over="warn", invalid="ignore", under="print"):
        before = np.geterr()
        x.log().sum().backward()
        with mt.no_grad():
            x.log()
        assert np.geterr() == before
        with pytest.raises(FloatingPointError):      # user code in between is not quiet
            np.log(np.zeros(1))


def test_hooks_run_under_the_callers_error_state():
    x = leaf(0.0, 1.0)
    h = x * 1
    h.register_hook(lambda g: np.divide(g.data, 0.0))   # NumPy itself, not an op
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            h.sum().backward()


def test_a_replaced_forward_is_the_one_that_runs(monkeypatch):
    x = mt.tensor([1.0, 2.0])
    assert np.allclose((x + x).data, [2.0, 4.0])      # the original, quiet version cached
    monkeypatch.setattr(Add, "forward", staticmethod(lambda ctx, a, b: a - b))
    assert np.allclose(Add.apply(x, x).data, [0.0, 0.0])
    monkeypatch.undo()
    assert np.allclose(Add.apply(x, x).data, [2.0, 4.0])


# ----------------------------------------------------------------------------- nodes

class _ReadsCtx(autograd.Function):
    """An op whose forward reads what the node knows of its inputs."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.seen = (ctx.input_shapes, ctx.input_dtypes, ctx.needs_input_grad, ctx.requires_grad)
        ctx.save_for_backward(a)
        return a * 2

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_arrays
        return g * 2, None


@pytest.mark.parametrize("recording", [False, True])
def test_forward_sees_input_shapes_dtypes_and_needs_in_every_mode(recording):
    a = mt.tensor(np.ones((2, 3)), requires_grad=True)
    b = mt.tensor(np.ones(3, np.float32))
    captured = {}
    original = _ReadsCtx.forward

    def spy(ctx, *arrays):
        out = original(ctx, *arrays)
        captured["seen"] = ctx.seen
        return out

    with mt.set_grad_enabled(recording):
        _ReadsCtx.forward = staticmethod(spy)
        try:
            y = _ReadsCtx.apply(a, b)
        finally:
            _ReadsCtx.forward = staticmethod(original)
    shapes, dtypes, needs, requires_grad = captured["seen"]
    assert shapes == ((2, 3), (3,))
    assert dtypes == (np.dtype(np.float64), np.dtype(np.float32))
    assert needs == ((True, False) if recording else (False, False))
    assert requires_grad is recording
    assert (y.grad_fn is not None) is recording


def test_a_node_that_records_nothing_keeps_no_graph_and_saves_nothing():
    a = leaf(1.0, 2.0)
    with mt.no_grad():
        y = a.exp()
    assert y.grad_fn is None and not y.requires_grad
    z = mt.tensor([1.0, 2.0]).exp()                   # no input requires grad
    assert z.grad_fn is None and not z.requires_grad


def test_recording_node_keeps_shapes_not_input_arrays():
    a = leaf(1.0, 2.0)
    y = a * 3
    node = y.grad_fn
    assert node.input_shapes == ((2,), ())
    assert node._input_arrays == ()                    # no activation memory held


def test_hooks_and_retain_grad_belong_to_one_node():
    x = leaf(1.0, 2.0)
    h, k = x * 2, x * 3
    h.register_hook(lambda g: g * 10)
    h.retain_grad()
    assert not k.grad_fn.hooks and not k.grad_fn.retained   # the shared default untouched
    assert not (x * 4).grad_fn.hooks
    (h + k).sum().backward()
    np.testing.assert_array_equal(h.grad.data, [10.0, 10.0])
    assert k.grad is None
    np.testing.assert_array_equal(x.grad.data, [23.0, 23.0])


def test_leaf_hooks_belong_to_one_tensor():
    x, y = leaf(1.0), leaf(1.0)
    x.register_hook(lambda g: g * 5)
    (x * 1 + y * 1).sum().backward()
    assert x.grad.data[0] == 5.0 and y.grad.data[0] == 1.0


def test_saved_versions_only_for_saved_arrays():
    x = leaf(1.0, 2.0)
    y = x + 1                                          # Add saves nothing
    assert not y.grad_fn._saved_versions
    z = x.exp()                                        # Exp saves its output
    assert len(z.grad_fn._saved_versions) == 1


def test_log_of_zero_gradient_matches_numpy_semantics():
    x = leaf(0.0, 2.0)
    y = Log.apply(x)
    y.sum().backward()
    assert x.grad.data[0] == np.inf and x.grad.data[1] == 0.5


# ----------------------------------------------------------------------------- modules

def test_module_attribute_lookup_order_and_errors():
    m = nn.Linear(2, 3)
    assert m.weight is m._parameters["weight"]
    m.register_buffer("running", mt.zeros(3))
    assert m.running is m._buffers["running"]
    seq = nn.Sequential(m)
    assert getattr(seq, "0") is m
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'nope'"):
        m.nope


def test_module_lookup_before_init_is_an_attribute_error():
    class Early(nn.Module):
        def __init__(self):
            self.peek = hasattr(self, "weight")       # before Module.__init__: no registries
            super().__init__()

    assert Early().peek is False
