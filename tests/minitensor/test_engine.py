"""Semantics of the autograd engine: graph walks, accumulation, grad modes, hooks, memory,
in-place detection, anomaly mode. Gradients here are checked against closed forms."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F


def leaf(*values, shape=None):
    data = np.asarray(values, dtype=np.float64) if shape is None else \
        np.random.default_rng(len(shape)).standard_normal(shape)
    return mt.tensor(data, requires_grad=True)


# ----------------------------------------------------------------------------- graph shapes

def test_reuse_of_one_input():
    x = leaf(0.5, -1.0, 2.0)
    y = x * x + x.exp() * x + x                              # x feeds four ops
    dout = np.array([0.3, -1.2, 0.7])
    y.backward(dout)
    xv = x.data
    np.testing.assert_allclose(x.grad.data, dout * (2 * xv + np.exp(xv) * (1 + xv) + 1), rtol=1e-14)


def test_diamond_graph():
    x = leaf(1.0, 2.0)
    a = x * 2                                                # a -> b, a -> c -> d: a diamond
    b = a + 1
    c = a * 3
    loss = (b * c).sum()
    loss.backward()
    # loss = sum((2x + 1) * 6x) = sum(12 x^2 + 6x)
    np.testing.assert_allclose(x.grad.data, 24 * x.data + 6, rtol=1e-14)


def test_x_plus_x():
    x = leaf(1.0, -2.0)
    (x + x).backward(np.array([1.0, 3.0]))
    np.testing.assert_array_equal(x.grad.data, [2.0, 6.0])


def test_shared_gradient_is_never_modified_in_place():
    """STYLE item 6: Add hands the same array to x and y; a later contribution to x must
    not change y's gradient."""
    x, y = leaf(1.0, 2.0, 3.0), leaf(-1.0, 0.5, 4.0)
    w, v = leaf(2.0, 3.0, 4.0), leaf(10.0, 20.0, 30.0)
    a = x + y
    loss = (a * w).sum() + (x * v).sum()
    loss.backward()
    np.testing.assert_array_equal(y.grad.data, w.data)
    np.testing.assert_array_equal(x.grad.data, w.data + v.data)


@pytest.mark.parametrize("alias", ["reshape", "expand", "getitem", "identity-view"])
def test_aliasing_gradients_through_views(alias):
    """Reshape/view gradients alias the incoming array; accumulation must still allocate."""
    x, y = leaf(shape=(2, 3)), leaf(shape=(2, 3))
    w = np.random.default_rng(5).standard_normal((2, 3))
    a = x + y
    if alias == "reshape":
        b = a.reshape(6).reshape(2, 3)
    elif alias == "expand":
        b = a.expand(2, 2, 3)[0]
    elif alias == "getitem":
        b = a[:, :]
    else:
        b = a.permute(1, 0).T
    loss = (b * mt.tensor(w)).sum() + (x * 5.0).sum() + (y * 7.0).sum()
    loss.backward()
    np.testing.assert_allclose(x.grad.data, w + 5.0, rtol=1e-14)
    np.testing.assert_allclose(y.grad.data, w + 7.0, rtol=1e-14)


def test_deep_chain_has_no_recursion_limit():
    x = leaf(1.0)
    y = x
    for _ in range(20_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad.data, [1.0001 ** 20_000], rtol=1e-10)
    del y  # freeing a 20,000-node chain must not overflow the C stack either
    z = x
    for _ in range(20_000):
        z = z + 1.0
    del z
    gc.collect()


# ----------------------------------------------------------------------------- backward calls

def test_second_backward_without_retain_graph_raises():
    x = leaf(1.0, 2.0)
    loss = (x.exp() * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        loss.backward()


def test_retain_graph_accumulates():
    x = leaf(1.0, 2.0)
    loss = (x.exp() * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.data.copy()
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.data, 2 * first, rtol=1e-14)
    loss.backward()                                            # last one may free
    np.testing.assert_allclose(x.grad.data, 3 * first, rtol=1e-14)
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_leaf_grads_accumulate_across_graphs():
    x = leaf(1.0, 2.0)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 + 2 * x.data)
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])


def test_leaf_grad_is_a_fresh_array():
    """The stored .grad never aliases an array the engine or an op still holds."""
    x = leaf(1.0, 2.0)
    seed = np.array([1.0, 1.0])
    x.backward(seed)
    assert not np.shares_memory(x.grad.data, seed)
    y = leaf(1.0, 2.0)
    z = leaf(3.0, 4.0)
    (y + z).backward(seed)
    assert not np.shares_memory(y.grad.data, z.grad.data)
    y.grad.data *= 10                                          # an optimizer scaling in place
    np.testing.assert_array_equal(z.grad.data, [1.0, 1.0])


def test_backward_on_non_scalar_needs_a_gradient():
    x = leaf(shape=(2, 3))
    with pytest.raises(RuntimeError, match=r"scalar outputs.*shape \(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(mt.ShapeError, match=r"gradient of shape \(3,\) does not match .*\(2, 3\)"):
        (x * 2).backward(np.ones(3))
    (x * 2).sum().backward()                                   # one element: implicit 1
    (x * 2)[0:1, 0:1].backward()                               # shape (1, 1) has one element too


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mt.tensor([1.0, 2.0]).sum().backward()


def test_backward_on_a_leaf():
    x = leaf(1.0, 2.0)
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


def test_unused_parameters_keep_grad_none():
    x, unused, const = leaf(1.0, 2.0), leaf(3.0), mt.tensor([5.0, 6.0], dtype="float64")
    (x * const).sum().backward()
    assert unused.grad is None and const.grad is None
    np.testing.assert_array_equal(x.grad.data, [5.0, 6.0])


def test_input_used_only_in_an_unused_branch():
    x, y = leaf(1.0), leaf(2.0)
    _dead = (y * 3).exp()
    (x * 2).sum().backward()
    assert y.grad is None


def test_non_leaf_grads_are_not_kept_unless_retained():
    x = leaf(1.0, 2.0)
    h = x * 3
    k = x * 4
    k.retain_grad()
    assert not h.is_leaf and h.grad_fn is not None
    ((h * h).sum() + (k * k).sum()).backward()
    assert h.grad is None
    np.testing.assert_allclose(k.grad.data, 2 * k.data)
    np.testing.assert_allclose(x.grad.data, 18 * x.data + 32 * x.data)


def test_gradient_dtype_follows_the_input():
    x = mt.tensor([1.0, 2.0], requires_grad=True)               # float32
    y = x.double() * mt.tensor(np.array([3.0, 4.0]))            # float64 downstream
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


# ----------------------------------------------------------------------------- grad modes

def test_no_grad_builds_no_graph():
    x = leaf(1.0, 2.0)
    with mt.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert (x * 2).requires_grad


def test_grad_mode_nesting():
    x = leaf(1.0)
    assert mt.is_grad_enabled()
    with mt.no_grad():
        assert not mt.is_grad_enabled()
        with mt.enable_grad():
            assert mt.is_grad_enabled()
            assert (x * 2).requires_grad
            with mt.set_grad_enabled(False):
                assert not (x * 2).requires_grad
            assert mt.is_grad_enabled()
        assert not mt.is_grad_enabled()
        with mt.set_grad_enabled(True):
            assert (x * 2).requires_grad
        with mt.no_grad():
            assert not mt.is_grad_enabled()
        assert not mt.is_grad_enabled()
    assert mt.is_grad_enabled()


def test_grad_mode_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with mt.no_grad():
            1 / 0
    assert mt.is_grad_enabled()


def test_grad_modes_as_decorators():
    x = leaf(1.0)

    @mt.no_grad()
    def frozen(t):
        assert not mt.is_grad_enabled()
        return t * 2

    @mt.enable_grad()
    def recorded(t):
        return t * 2

    @mt.set_grad_enabled(False)
    def off(t):
        return t * 2

    assert frozen.__name__ == "frozen"
    assert not frozen(x).requires_grad
    assert mt.is_grad_enabled()
    with mt.no_grad():
        assert recorded(x).requires_grad
        assert not mt.is_grad_enabled()
    assert not off(x).requires_grad and mt.is_grad_enabled()


def test_detach():
    x = leaf(1.0, 2.0)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    assert np.shares_memory(d.data, y.data)
    loss = (d * x).sum()                                       # no gradient through d
    loss.backward()
    np.testing.assert_array_equal(x.grad.data, y.data)


def test_requires_grad_flag():
    x = mt.tensor([1.0, 2.0])
    assert not x.requires_grad and not (x * 2).requires_grad
    assert x.requires_grad_() is x and x.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad = False


# ----------------------------------------------------------------------------- hooks

def test_leaf_hook_replaces_gradient_and_is_called_once():
    x = leaf(1.0, 2.0)
    seen = []

    def hook(g):
        seen.append(g.data.copy())
        return g * 10

    handle = x.register_hook(hook)
    (x * 2 + x * 3).sum().backward()                           # two contributions, one call
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [5.0, 5.0])
    np.testing.assert_array_equal(x.grad.data, [50.0, 50.0])
    handle.remove()
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])
    assert len(seen) == 1


def test_non_leaf_hook():
    x = leaf(1.0, 2.0)
    h = x * 3
    seen = []
    h.register_hook(lambda g: seen.append(g.data.copy()))      # returns None: observes only
    h.register_hook(lambda g: g * 0.5)                         # replaces
    ((h * 2).sum() + h.sum()).backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.data, [4.5, 4.5])


def test_non_leaf_hook_remove_and_retain_grad_sees_hooked_grad():
    x = leaf(1.0, 2.0)
    h = x * 3
    h.retain_grad()
    handle = h.register_hook(lambda g: g * 2)
    handle.remove()
    handle.remove()                                            # removing twice is harmless
    (h * 4).sum().backward()
    np.testing.assert_array_equal(h.grad.data, [4.0, 4.0])
    np.testing.assert_array_equal(x.grad.data, [12.0, 12.0])


def test_hook_requires_grad():
    with pytest.raises(RuntimeError, match="register_hook"):
        mt.tensor([1.0]).register_hook(lambda g: g)


# ----------------------------------------------------------------------------- memory

def _nodes(root):
    stack, seen = [root.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or any(node is s for s in seen):
            continue
        seen.append(node)
        stack.extend(p for p in node.parents if isinstance(p, mt.autograd.Context))
    return seen


def test_intermediate_tensors_are_not_kept_alive_by_the_graph():
    x = leaf(shape=(50, 50))
    h = x * 2
    out = h.sigmoid().sum()
    ref = weakref.ref(h)
    del h
    assert ref() is None                                       # the graph holds nodes, not tensors
    out.backward()


def test_saved_arrays_die_with_the_output():
    x = leaf(shape=(50, 50))
    y = x.sigmoid()                                            # saves its output array
    loss = (y * 3.0).sum()
    saved = y.grad_fn._saved[0]
    ref = weakref.ref(saved)
    del saved, y
    assert ref() is not None                                   # still needed for backward
    del loss
    gc.collect()
    assert ref() is None


def test_saved_arrays_freed_right_after_backward():
    x, w = leaf(shape=(20, 30)), leaf(shape=(30, 10))
    y = (x @ w).tanh()
    loss = F.cross_entropy(y, np.arange(20) % 10) + y.exp().mean()
    saved = y.grad_fn._saved[0]
    ref = weakref.ref(saved)
    del saved, y
    nodes = _nodes(loss)
    assert len(nodes) >= 5 and any(n._saved for n in nodes)
    loss.backward()                                            # loss stays alive
    assert loss.grad_fn._saved is None
    assert all(n._saved is None for n in nodes)
    gc.collect()
    assert ref() is None


def test_retain_graph_keeps_saved_arrays():
    x = leaf(shape=(3,))
    loss = x.exp().sum()
    loss.backward(retain_graph=True)
    assert all(n._saved is not None for n in _nodes(loss))


def test_tensors_are_weak_referenceable_and_graph_does_not_leak():
    x = leaf(shape=(10,))
    refs = []
    for _ in range(3):
        y = (x * 2).exp()
        refs.append(weakref.ref(y))
        y.sum().backward()
    del y
    gc.collect()
    assert all(r() is None for r in refs)


# ----------------------------------------------------------------------------- in-place

def test_inplace_on_saved_input_is_detected():
    x = leaf(1.0, 2.0)
    a = x * 1
    b = a * a                                                  # Mul saves a
    a.mul_(2)
    with pytest.raises(RuntimeError, match=r"Mul\.backward: .*modified by an in-place operation"):
        b.sum().backward()


def test_inplace_on_saved_output_is_detected():
    x = leaf(1.0, 2.0)
    y = x.exp()                                                # Exp saves its output
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"Exp\.backward: .*in-place"):
        y.sum().backward()


@pytest.mark.parametrize("make_view", [lambda a: a[0], lambda a: a.reshape(-1), lambda a: a.T,
                                       lambda a: a.detach()])
def test_inplace_on_a_view_of_a_saved_tensor_is_detected(make_view):
    x = leaf(shape=(2, 3))
    a = x * 1
    b = a.sigmoid() * a                                        # Mul saves a
    with mt.no_grad():
        make_view(a).mul_(2)
    with pytest.raises(RuntimeError, match="in-place"):
        b.sum().backward()


SAVES_INPUT = {
    "linear": lambda a, w: F.linear(a, w),                       # keeps a reshaped *view* of a
    "layer_norm": lambda a, w: F.layer_norm(a, 4, w[0]),
    "gelu": lambda a, w: F.gelu(a) * w,
    "matmul": lambda a, w: a @ w.T,
    "cross_entropy": lambda a, w: F.cross_entropy(a, [0, 1, 2]) * w.sum(),
    "attention": lambda a, w: F.scaled_dot_product_attention(a, a, a) * w,
    "div": lambda a, w: w / a,
    "max": lambda a, w: a.max(axis=-1, keepdims=True) * w,
    "log": lambda a, w: (a * a).log() * w,
}


@pytest.mark.parametrize("name", sorted(SAVES_INPUT))
def test_inplace_on_an_input_saved_by_a_kernel_is_detected(backend, name):
    x = leaf(shape=(3, 4))
    w = mt.tensor(np.random.default_rng(0).standard_normal((1, 4)), requires_grad=True)
    a = x * 1
    out = SAVES_INPUT[name](a, w)
    with mt.no_grad():
        a.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        out.sum().backward()


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "sigmoid", "exp", "tanh"])
def test_inplace_on_an_input_not_saved_is_allowed(backend, name):
    """These ops save their output, not the input: changing the input later is harmless."""
    x = leaf(shape=(3, 4))
    dout = np.random.default_rng(1).standard_normal((3, 4))
    a = x * 1
    out = getattr(a, name)(-1) if "softmax" in name else getattr(a, name)()
    out.backward(dout, retain_graph=True)
    expected = x.grad.data.copy()
    x.grad = None
    with mt.no_grad():
        a.mul_(2)
    out.backward(dout)
    np.testing.assert_array_equal(x.grad.data, expected)


def test_setitem_on_a_saved_tensor_is_detected():
    x = leaf(shape=(2, 3))
    a = x * 1
    b = (a * a).sum()
    a[0, 1] = 5.0
    with pytest.raises(RuntimeError, match="in-place"):
        b.backward()


def test_inplace_on_a_leaf_that_requires_grad_raises():
    x = leaf(1.0, 2.0)
    for op in (lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.zero_(),
               lambda t: t.__setitem__(0, 3.0)):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            op(x)
    np.testing.assert_array_equal(x.data, [1.0, 2.0])
    with mt.no_grad():                                         # the optimizer's way
        x.sub_(0.5)
    np.testing.assert_array_equal(x.data, [0.5, 1.5])
    assert x.is_leaf and x.requires_grad


def test_inplace_on_a_view_of_a_leaf_that_requires_grad_raises():
    x = leaf(1.0, 2.0, 3.0)
    with pytest.raises(RuntimeError, match="view"):
        x[1:].add_(1)
    np.testing.assert_array_equal(x.data, [1.0, 2.0, 3.0])


def test_inplace_on_an_advanced_index_copy_is_allowed():
    x = leaf(1.0, 2.0, 3.0)
    y = (x * 1)[np.array([0, 2])]                              # a copy, not a view
    y.mul_(3)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 3.0])


def test_writing_graph_tensors_into_a_buffer():
    """The KV-cache pattern: a plain buffer receives values that require grad."""
    w = leaf(1.0, 2.0, 3.0)
    buf = mt.zeros(2, 3, dtype="float64")
    buf[0] = w * 2
    buf[1] = w
    assert buf.requires_grad and not buf.is_leaf
    (buf * buf).sum().backward()
    np.testing.assert_allclose(w.grad.data, 10 * w.data)


def test_inplace_ops_are_differentiable():
    x = leaf(1.0, 2.0, 3.0)
    y = x * 2
    y.add_(x)                                                  # y = 3x
    y.mul_(x)                                                  # y = 3x^2
    y[0] = 0.0                                                 # y = [0, 3x1^2, 3x2^2]
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 12.0, 18.0])


def test_inplace_under_no_grad_on_non_leaf_keeps_graph_consistent():
    x = leaf(1.0, 2.0)
    y = x * 3
    with mt.no_grad():
        y.add_(1)                                              # y's values change, its graph stays
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])
    np.testing.assert_array_equal(y.data, [4.0, 7.0])


def test_version_counter():
    x = mt.tensor([1.0, 2.0])
    v0 = x._version
    x.add_(1)
    x[0] = 3.0
    assert x._version == v0 + 2
    assert x[0:1]._version == x._version


# ----------------------------------------------------------------------------- anomaly mode

def test_anomaly_forward_nan_names_op_and_line():
    x = leaf(-1.0, 2.0)
    with mt.detect_anomaly():
        with pytest.raises(RuntimeError, match=r"Log forward produced NaN/Inf.*test_engine\.py:\d+"):
            x.log()
    assert x.log() is not None                                 # outside: silent NaN, as torch


def test_anomaly_backward_inf_names_op_and_line():
    x = leaf(0.0, 4.0)
    with mt.detect_anomaly():
        y = x.sqrt()                                           # finite forward: sqrt(0) = 0
        loss = (y * 2).sum()
        with pytest.raises(RuntimeError, match=r"SqrtBackward returned NaN/Inf.*created at .*test_engine\.py:\d+ .*x\.sqrt\(\)"):
            loss.backward()


def test_anomaly_mode_is_scoped_and_decorates():
    from minitensor.grad_mode import is_anomaly_enabled
    assert not is_anomaly_enabled()
    with mt.detect_anomaly():
        assert is_anomaly_enabled()
        with mt.detect_anomaly(False):
            assert not is_anomaly_enabled()
        assert is_anomaly_enabled()
    assert not is_anomaly_enabled()

    @mt.detect_anomaly()
    def f():
        return is_anomaly_enabled()
    assert f() and not is_anomaly_enabled()


def test_no_anomaly_for_clean_graphs():
    x = leaf(shape=(3, 4))
    with mt.detect_anomaly():
        loss = F.cross_entropy(x, [0, 1, 3]) + x.softmax(-1).sum()
        loss.backward()
    assert np.all(np.isfinite(x.grad.data))
