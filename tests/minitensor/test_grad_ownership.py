"""A leaf's .grad owns its memory: the engine keeps a gradient without copying it only
when nothing else refers to it or to its memory (autograd._sole_user). Optimizers and
clipping change .grad in place, so an alias would change another gradient, a hook's
tensor or what backward_steps showed."""
import numpy as np
import pytest

import minitensor as mt
from minitensor import autograd, kernels, nn
from minitensor.kernels import buffers


def _independent(a: np.ndarray, *others: np.ndarray) -> bool:
    return not any(np.shares_memory(a, o) for o in others)


def test_add_gives_each_leaf_its_own_gradient(backend):
    a = mt.randn(300, 100, requires_grad=True)
    b = mt.randn(300, 100, requires_grad=True)
    (a + b).sum().backward()
    assert _independent(a.grad.data, b.grad.data)
    a.grad.data *= 3
    np.testing.assert_array_equal(b.grad.data, np.ones((300, 100), np.float32))


def test_a_gradient_kept_by_a_hook_is_not_the_leafs_grad(backend):
    x = mt.randn(200, 100, requires_grad=True)
    y = x.reshape(100, 200)                    # its backward returns a view of y's gradient
    kept = []
    y.register_hook(lambda g: kept.append(g))
    (y * 2).sum().backward()
    assert _independent(x.grad.data, kept[0].data)
    x.grad.data[...] = 0
    np.testing.assert_array_equal(kept[0].data, np.full((100, 200), 2, np.float32))


def test_leaf_hooks_see_a_gradient_that_stays_theirs(backend):
    x = mt.randn(100, 100, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g))
    (x * 3).sum().backward()
    x.grad.data[...] = 0
    np.testing.assert_array_equal(seen[0].data, np.full((100, 100), 3, np.float32))


def test_a_broadcast_gradient_becomes_a_writable_array(backend):
    x = mt.randn(64, 64, requires_grad=True)
    x.sum().backward()                         # the gradient is a broadcast of one number
    g = x.grad.data
    assert g.flags.writeable and g.flags.c_contiguous
    g *= 2
    np.testing.assert_array_equal(g, np.full((64, 64), 2, np.float32))


def test_views_of_one_gradient_are_copied_apart(backend):
    a = mt.randn(100, 50, requires_grad=True)
    b = mt.randn(100, 50, requires_grad=True)
    (mt.cat([a, b], dim=1) * mt.arange(100).reshape(100, 1).float()).sum().backward()
    assert _independent(a.grad.data, b.grad.data)
    expected = np.broadcast_to(np.arange(100, dtype=np.float32)[:, None], (100, 50))
    np.testing.assert_array_equal(a.grad.data, expected)
    a.grad.data[...] = -1
    np.testing.assert_array_equal(b.grad.data, expected)


def test_backward_steps_shows_gradients_that_stay_as_shown():
    from minitensor.autograd import backward_steps
    w = mt.randn(100, 100, requires_grad=True)
    x = mt.randn(8, 100)
    loss = (x @ w).sum()
    sent = []
    for step in backward_steps(loss):
        sent += [g.copy() for g in step.grads_out if g is not None]
        shown = [g for g in step.grads_out if g is not None]
    w.grad.data[...] = 0
    np.testing.assert_array_equal(shown[-1], sent[-1])


def test_a_linear_layers_weight_gradient_is_kept_without_a_copy():
    """The point of it: a kernel's freshly made gradient becomes .grad as it is."""
    if not kernels.numba_available() or not buffers.enabled():
        pytest.skip("needs the numba backend with its buffer pool")
    with kernels.use("numba"):
        layer = nn.Linear(256, 512)
        x = mt.randn(64, 256)
        layer(x).sum().backward()      # (a first call may compile: Numba then holds the
        layer.weight.grad = None       # arguments a moment longer, and g is copied, safely)
        layer(x).sum().backward()
    g = layer.weight.grad.data
    assert g.base is not None and buffers.holds(g.base)    # the kernel's own output buffer
    assert autograd._SOLE_REFS[0] > 0


def test_gradients_are_the_same_when_kept_or_copied(backend, monkeypatch):
    def grads():
        mt.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64))
        x = mt.randn(32, 64)
        (model(x) ** 2).mean().backward()
        (model(x) ** 2).mean().backward()      # a second backward adds into .grad
        return [p.grad.data.copy() for p in model.parameters()]
    kept = grads()
    monkeypatch.setattr(autograd, "_sole_user", lambda g: False)
    copied = grads()
    for a, b in zip(kept, copied):
        np.testing.assert_array_equal(a, b)
