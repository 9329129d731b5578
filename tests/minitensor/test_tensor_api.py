"""The Tensor API: creation and dtype rules, seeding, attributes, comparisons, hashing,
``.data`` assignment, weak references, conversions and repr."""
from __future__ import annotations

import weakref

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F


# ----------------------------------------------------------------------------- creation and dtypes

@pytest.mark.parametrize("data,dtype", [
    ([1.0, 2.0], np.float32), ([1, 2, 3], np.int64), (3, np.int64), (2.5, np.float32),
    ([[1, 2], [3, 4]], np.int64), ([1, 2.5], np.float32), ([True, 2], np.int64), ([], np.float32), ([True, False], np.bool_), (True, np.bool_),
    (np.array([1, 2]), np.int64), (np.array([1.0]), np.float64), (np.array([1], np.int32), np.int32),
    (np.array([1.0], np.float16), np.float16), (np.array([True]), np.bool_), (np.float64(2.0), np.float64),
])
def test_tensor_dtype_rules(data, dtype):
    t = mt.tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.data, np.asarray(data))


@pytest.mark.parametrize("spec,dtype", [
    (np.float64, np.float64), (np.dtype("float64"), np.float64), ("float64", np.float64),
    ("double", np.float64), ("float", np.float32), ("float32", np.float32), ("int64", np.int64),
    ("long", np.int64), ("int32", np.int32), ("bool", np.bool_), (mt.float64, np.float64), (mt.int64, np.int64),
])
def test_dtype_argument(spec, dtype):
    assert mt.tensor([1, 0], dtype=spec).dtype == dtype
    assert mt.tensor(np.array([1.5, 0.0]), dtype=spec).dtype == dtype
    assert mt.zeros(2, dtype=spec).dtype == dtype
    assert mt.ones((2,), dtype=spec).dtype == dtype
    assert mt.full((2,), 1, dtype=spec).dtype == dtype


def test_tensor_copies_its_input_and_as_tensor_does_not():
    a = np.array([1.0, 2.0])
    t = mt.tensor(a)
    a[0] = 9.0
    assert t.data[0] == 1.0
    u = mt.as_tensor(a)
    assert u.data is a
    v = mt.tensor(t)
    assert v.data is not t.data and v.dtype == t.dtype


def test_creation_functions():
    assert mt.zeros(2, 3).shape == (2, 3) and mt.zeros((2, 3)).shape == (2, 3)
    assert mt.zeros(2, 3).dtype == np.float32 and not mt.zeros(2).data.any()
    assert mt.ones(4).data.sum() == 4
    assert mt.empty(2, 2).shape == (2, 2)
    f = mt.full((2, 2), 7.0)
    assert f.dtype == np.float32 and np.all(f.data == 7)
    assert mt.full((2,), 3).dtype == np.int64 and mt.full((2,), True).dtype == np.bool_
    assert mt.full(3, 1.0).shape == (3,)
    np.testing.assert_array_equal(mt.arange(4).data, [0, 1, 2, 3])
    assert mt.arange(4).dtype == np.int64 and mt.arange(0.0, 1.0, 0.25).dtype == np.float32
    np.testing.assert_array_equal(mt.arange(1, 7, 2).data, [1, 3, 5])
    np.testing.assert_allclose(mt.linspace(0, 1, 5).data, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(mt.eye(2).data, np.eye(2))
    x = mt.randn(3, 4, dtype="float64", requires_grad=True)
    assert x.shape == (3, 4) and x.dtype == np.float64 and x.requires_grad and x.is_leaf
    r = mt.rand(1000)
    assert r.dtype == np.float32 and r.data.min() >= 0 and r.data.max() < 1
    ri = mt.randint(2, 5, (100,))
    assert ri.dtype == np.int64 and ri.data.min() >= 2 and ri.data.max() < 5
    for like in (mt.zeros_like, mt.ones_like, mt.randn_like, mt.rand_like):
        y = like(x)
        assert y.shape == x.shape and y.dtype == x.dtype and not y.requires_grad
    assert mt.zeros_like(x, dtype="int64").dtype == np.int64
    assert mt.full_like(x, 2.0).data.sum() == 24


def test_manual_seed_reproducibility():
    mt.manual_seed(123)
    a = (mt.randn(3, 4).data, mt.rand(5).data, mt.randint(0, 10, (6,)).data)
    x = mt.ones(50, dtype="float64")
    da = F.dropout(x, 0.5).data
    mt.manual_seed(123)
    b = (mt.randn(3, 4).data, mt.rand(5).data, mt.randint(0, 10, (6,)).data)
    db = F.dropout(x, 0.5).data
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(da, db)
    assert not np.array_equal(mt.randn(3, 4).data, a[0])
    state = mt.get_rng_state()
    c = mt.randn(4).data
    mt.set_rng_state(state)
    np.testing.assert_array_equal(mt.randn(4).data, c)


def test_dropout_mask_is_the_same_on_both_backends():
    from minitensor import kernels
    if not kernels.numba_available():
        pytest.skip("numba is not importable")
    x = mt.ones(7, 13, dtype="float64")
    outs = []
    for name in ("numpy", "numba"):
        with kernels.use(name):
            mt.manual_seed(5)
            outs.append(F.dropout(x, 0.4).data)
    np.testing.assert_array_equal(outs[0], outs[1])


# ----------------------------------------------------------------------------- attributes

def test_attributes():
    x = mt.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.dtype == np.float64
    assert x.size() == (2, 3) and x.size(1) == 3 and x.dim() == 2 and x.numel() == 6 and len(x) == 2
    assert x.is_leaf and x.grad_fn is None and x.grad is None and x.requires_grad
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None and y.grad_fn.name == "Mul"
    assert x.T.shape == (3, 2) and mt.ones(2, 3, 4).T.shape == (4, 3, 2) and mt.ones(2, 3, 4).mT.shape == (2, 4, 3)
    np.testing.assert_array_equal(x.T.data, x.data.T)
    assert x[1, 2].item() == 5.0 and isinstance(x[1, 2].item(), float)
    assert mt.tensor([3]).item() == 3.0 and float(mt.tensor(2.5)) == 2.5 and int(mt.tensor([4.0])) == 4
    assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert [row.shape for row in mt.ones(3, 2)] == [(2,), (2,), (2,)]


def test_numpy_shares_memory_and_detach():
    t = mt.tensor([1.0, 2.0])
    a = t.numpy()
    assert isinstance(a, np.ndarray) and np.shares_memory(a, t.data)
    x = mt.tensor([1.0], requires_grad=True)
    assert np.shares_memory(x.detach().numpy(), x.data)
    assert np.asarray(x).shape == (1,)


def test_comparisons_return_bool_tensors_without_grad():
    x = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = mt.tensor([3.0, 2.0, 1.0])
    for out, expected in [(x < y, [True, False, False]), (x <= y, [True, True, False]),
                          (x > y, [False, False, True]), (x >= y, [False, True, True]),
                          (x == y, [False, True, False]), (x != y, [True, False, True]),
                          (x > 1.5, [False, True, True]), (x == 2, [False, True, False])]:
        assert isinstance(out, mt.Tensor) and out.dtype == np.bool_
        assert not out.requires_grad and out.grad_fn is None
        np.testing.assert_array_equal(out.data, expected)
    m = (x > 1.5) & (x < 2.5)
    np.testing.assert_array_equal(m.data, [False, True, False])
    np.testing.assert_array_equal((~m).data, [True, False, True])
    np.testing.assert_array_equal(((x < 1.5) | (x > 2.5)).data, [True, False, True])
    assert (x > 0).all().item() and not (x > 2).all().item() and (x > 2).any().item()


def test_tensors_are_hashable_by_identity():
    a, b = mt.tensor([1.0]), mt.tensor([1.0])
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b" and len({a, b, a}) == 2
    assert hash(a) == id(a)


def test_data_is_assignable():
    p = mt.tensor([1.0, 2.0], requires_grad=True)
    p.data = np.array([5.0, 6.0], dtype=np.float32)
    np.testing.assert_array_equal(p.data, [5.0, 6.0])
    p.data = mt.tensor([7.0, 8.0])
    np.testing.assert_array_equal(p.data, [7.0, 8.0])
    assert p.requires_grad and p.is_leaf
    (p * 2).sum().backward()
    np.testing.assert_array_equal(p.grad.data, [2.0, 2.0])
    p.data = np.zeros((3, 3))                                      # a new shape is allowed
    assert p.shape == (3, 3)


def test_tensors_are_weak_referenceable():
    t = mt.tensor([1.0])
    r = weakref.ref(t)
    assert r() is t
    del t
    assert r() is None


def test_repr():
    assert repr(mt.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(mt.tensor(np.array([1.5]))) == "tensor([1.5], dtype=float64)"
    assert repr(mt.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(mt.tensor([1.0], requires_grad=True) * 2) == "tensor([2.], grad_fn=<MulBackward>)"
    assert repr(mt.tensor([True])) == "tensor([ True])"  # as torch: no dtype for bool,
    assert repr(mt.tensor([1, 2])) == "tensor([1, 2])"    # int64 and float32
    assert repr(mt.tensor([1, 2], dtype=mt.int32)) == "tensor([1, 2], dtype=int32)"
    assert repr(mt.tensor(3.0)) == "tensor(3.)"


def test_conversions():
    x = mt.tensor([1.5, -2.0], requires_grad=True)
    d = x.double()
    assert d.dtype == np.float64 and d.requires_grad and d.grad_fn is not None
    d.sum().backward()
    assert x.grad.dtype == np.float32
    assert x.to("float32") is x and x.float() is x
    assert x.long().dtype == np.int64 and x.int().dtype == np.int32 and not x.long().requires_grad
    np.testing.assert_array_equal(x.long().data, [1, -2])
    assert x.bool().dtype == np.bool_
    assert mt.tensor([1.0]).to(np.float64).dtype == np.float64


def test_numpy_array_on_the_left():
    x = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    for out in (np.array([1.0, 1.0]) + x, np.array([3.0, 3.0]) * x, np.array([2.0, 2.0]) - x,
                np.array([2.0, 2.0]) / x, np.ones((2, 2)) @ x):
        assert isinstance(out, mt.Tensor) and out.requires_grad
    (np.array([3.0, 4.0]) * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


def test_python_scalars_on_the_left():
    x = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    np.testing.assert_array_equal((1 - x).data, [0.0, -1.0])
    np.testing.assert_array_equal((2 ** x).data, [2.0, 4.0])
    np.testing.assert_array_equal((4 / x).data, [4.0, 2.0])


def test_clone_and_contiguous():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert not np.shares_memory(c.data, x.data) and c.requires_grad
    (c * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])
    assert mt.ones(2, 3).T.contiguous().shape == (3, 2)


def test_argmax_argmin():
    x = mt.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    np.testing.assert_array_equal(x.argmax(1).data, [1, 0])
    np.testing.assert_array_equal(x.argmin(dim=0).data, [0, 1, 0])
    assert x.argmax().item() == 3 and not x.argmax().requires_grad


def test_default_float32_arithmetic_stays_float32():
    x = mt.randn(3, 4)
    for out in (x + 1, x * 2.5, x / 3, x ** 2, x.exp(), x.softmax(-1), x.mean(), x @ x.T, F.gelu(x)):
        assert out.dtype == np.float32
    assert (mt.arange(3) / 2).dtype == np.float32
    assert mt.arange(3).mean().dtype == np.float32
