"""Broadcasting and its undoing (``autograd.unbroadcast``): every binary op on a table of
shape pairs, gradients checked against an independent element-by-element reference."""
from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F
from minitensor.autograd import Function, unbroadcast

# HIPS binary_ufunc_check's table, plus size-1 dims in the middle and teenygrad's partial case
SHAPES = [(), (2,), (3, 2), (1, 2), (3, 1), (4, 1, 2)]
PAIRS = list(itertools.product(SHAPES, SHAPES)) + [((5, 3, 4, 6, 2), (1, 3, 4, 1, 1)),
                                                   ((1, 3, 1, 6, 1), (5, 1, 4, 1, 2))]


def sum_to(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Reference un-broadcast, element by element: each output position adds into the input
    position it was read from (index 0 along broadcast axes)."""
    out = np.zeros(shape)
    lead = grad.ndim - len(shape)
    for index in np.ndindex(grad.shape):
        src = tuple(0 if n == 1 else i for i, n in zip(index[lead:], shape))
        out[src] += grad[index]
    return out


# op name -> (our function, local partial derivatives d/da, d/db as functions of broadcast a, b)
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: np.ones_like(a), lambda a, b: np.ones_like(b)),
    "sub": (lambda a, b: a - b, lambda a, b: np.ones_like(a), lambda a, b: -np.ones_like(b)),
    "mul": (lambda a, b: a * b, lambda a, b: b, lambda a, b: a),
    "div": (lambda a, b: a / b, lambda a, b: 1 / b, lambda a, b: -a / b**2),
    "pow": (lambda a, b: a ** b, lambda a, b: b * a ** (b - 1), lambda a, b: a ** b * np.log(a)),
    "maximum": (mt.maximum, lambda a, b: (a > b) * 1.0, lambda a, b: (b > a) * 1.0),
    "minimum": (mt.minimum, lambda a, b: (a < b) * 1.0, lambda a, b: (b < a) * 1.0),
    "where": (lambda a, b: mt.where(a.data > 1.2, a, b), lambda a, b: (a > 1.2) * 1.0,
              lambda a, b: (a <= 1.2) * 1.0),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("sa,sb", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_binary_op_gradients_have_input_shapes(op, sa, sb):
    fn, da, db = BINARY[op]
    rng = np.random.default_rng(zlib.crc32(repr((op, sa, sb)).encode()))
    a_np, b_np = rng.uniform(0.5, 2.0, sa), rng.uniform(0.5, 2.0, sb)   # positive: pow, div
    a, b = mt.tensor(a_np, requires_grad=True), mt.tensor(b_np, requires_grad=True)
    out = fn(a, b)
    shape = np.broadcast_shapes(sa, sb)
    assert out.shape == shape
    dout = rng.standard_normal(shape)
    out.backward(dout)
    A, B = np.broadcast_to(a_np, shape), np.broadcast_to(b_np, shape)
    assert a.grad.shape == sa and b.grad.shape == sb
    np.testing.assert_allclose(a.grad.data, sum_to(dout * da(A, B), sa), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad.data, sum_to(dout * db(A, B), sb), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sa,sb", [((3, 2), (2,)), ((4, 1, 2), (3, 1)), ((5, 3, 4, 6, 2), (1, 3, 4, 1, 1))])
def test_broadcast_with_permuted_non_contiguous_inputs(sa, sb):
    rng = np.random.default_rng(0)
    a_np = np.ascontiguousarray(rng.standard_normal(sa[::-1])).T     # non-contiguous view
    b_np = rng.standard_normal(sb[::-1]).T
    assert not a_np.flags.c_contiguous or a_np.ndim < 2
    a, b = mt.as_tensor(a_np).requires_grad_(), mt.as_tensor(b_np).requires_grad_()
    out = a * b
    dout = rng.standard_normal(out.shape)
    out.backward(dout)
    shape = out.shape
    np.testing.assert_allclose(a.grad.data, sum_to(dout * np.broadcast_to(b_np, shape), sa), rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, sum_to(dout * np.broadcast_to(a_np, shape), sb), rtol=1e-12)


@pytest.mark.parametrize("grad_shape,shape", [
    ((3, 2), ()), ((3, 2), (2,)), ((3, 2), (1, 2)), ((3, 2), (3, 1)), ((4, 3, 2), (3, 1)),
    ((4, 3, 2), (1, 1, 1)), ((2, 3), (2, 3)), ((5, 1, 4), (1, 4)), ((), ())])
def test_unbroadcast_table(grad_shape, shape):
    g = np.random.default_rng(1).standard_normal(grad_shape)
    out = unbroadcast(g, shape, "Test")
    assert out.shape == shape
    np.testing.assert_allclose(out, sum_to(g, shape), rtol=1e-12)


def test_unbroadcast_asserts_on_a_wrong_gradient_shape():
    with pytest.raises(AssertionError, match=r"Bad\.backward returned a gradient of shape \(3, 4\) "
                                             r"for an input of shape \(3, 5\)"):
        unbroadcast(np.ones((3, 4)), (3, 5), "Bad")

    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g[:, :1]                                        # wrong shape: (3, 1)

    x = mt.tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises(AssertionError, match=r"Bad\.backward .*grad shape must match tensor shape"):
        Bad.apply(x).backward(np.ones((3, 4)))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum", "pow"])
def test_incompatible_shapes_raise(op):
    fn = getattr(F, op)
    with pytest.raises(mt.ShapeError, match=rf"{op}: shapes \(3, 2\) and \(3,\) cannot be broadcast together"):
        fn(mt.ones(3, 2), mt.ones(3))


def test_expand_sums_gradient_back():
    x = mt.tensor(np.arange(3.0).reshape(3, 1), requires_grad=True)
    y = x.expand(2, 3, 4)
    dout = np.random.default_rng(2).standard_normal((2, 3, 4))
    y.backward(dout)
    np.testing.assert_allclose(x.grad.data, dout.sum(axis=(0, 2))[:, None], rtol=1e-12)


def test_scalar_operand_keeps_tensor_dtype():
    x = mt.tensor([1.0, 2.0])                                      # float32
    assert (x + 2.5).dtype == np.float32 and (2 * x).dtype == np.float32
    assert (x / 3).dtype == np.float32 and (x ** 2).dtype == np.float32
    xd = mt.tensor(np.array([1.0, 2.0]))
    assert (xd * 2).dtype == np.float64


def test_batched_matmul_broadcast(backend):
    rng = np.random.default_rng(3)
    a_np, b_np = rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((5, 4, 2))
    a, b = mt.tensor(a_np, requires_grad=True), mt.tensor(b_np, requires_grad=True)
    out = a @ b
    assert out.shape == (2, 5, 3, 2)
    dout = rng.standard_normal(out.shape)
    out.backward(dout)
    da = np.einsum("xyij,xykj->xyik", dout, np.broadcast_to(b_np, (2, 5, 4, 2)))
    db = np.einsum("xyik,xyij->xykj", np.broadcast_to(a_np, (2, 5, 3, 4)), dout)
    np.testing.assert_allclose(a.grad.data, da.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, db.sum(axis=0), rtol=1e-12)
