"""Parity with PyTorch, forward and backward, in float64 under both kernel backends.

Each check is a ``helper_test_op(shapes, torch_fn, our_fn)`` one-liner in the tinygrad
style: the same random float64 inputs go to both functions, the outputs must agree to
rtol 1e-7 / atol 1e-10, and so must every input gradient for a random upstream gradient.
NaN must appear in the same places. The whole module is skipped without torch.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-7, 1e-10


def _as_np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return t.detach().data if isinstance(t, mt.Tensor) and t.requires_grad else np.asarray(t.data)


def helper_test_op(shapes, torch_fn, our_fn=None, atol=ATOL, grad_atol=ATOL, rtol=RTOL,
                   vals=None, low=None, high=None, forward_only=False, seed=0):
    """Run ``torch_fn`` and ``our_fn`` (default: the same function) on the same inputs.

    Args:
        shapes: input shapes (float64 normal draws; uniform in [low, high) if given), or
            None when ``vals`` gives the input arrays.
        torch_fn / our_fn: take the input tensors, return a tensor or a tuple of tensors.
        atol, rtol: forward tolerance; grad_atol (with rtol): gradient tolerance.
        forward_only: compare outputs only.
    """
    our_fn = torch_fn if our_fn is None else our_fn
    rng = np.random.default_rng(seed)
    if vals is None:
        vals = [rng.uniform(low, high, s) if low is not None else rng.standard_normal(s) for s in shapes]
    vals = [np.asarray(v, dtype=np.float64) for v in vals]
    ts = [torch.tensor(v, requires_grad=True) for v in vals]
    ms = [mt.tensor(v, requires_grad=True) for v in vals]
    out_t, out_m = torch_fn(*ts), our_fn(*ms)
    outs_t = out_t if isinstance(out_t, (tuple, list)) else (out_t,)
    outs_m = out_m if isinstance(out_m, (tuple, list)) else (out_m,)
    assert len(outs_t) == len(outs_m)
    for k, (a, b) in enumerate(zip(outs_t, outs_m)):
        assert tuple(a.shape) == b.shape, f"output {k}: torch shape {tuple(a.shape)} vs ours {b.shape}"
        assert b.dtype == np.float64, f"output {k}: dtype {b.dtype}"
        np.testing.assert_allclose(_as_np(b), _as_np(a), rtol=rtol, atol=atol, err_msg=f"forward output {k}")
    if forward_only:
        return
    douts = [rng.standard_normal(tuple(o.shape)) for o in outs_t]
    pairs = [(o, d) for o, d in zip(outs_t, douts) if o.requires_grad]
    if pairs:
        torch.autograd.backward([o for o, _ in pairs], [torch.tensor(d) for _, d in pairs])
    roots = [(o, d) for o, d in zip(outs_m, douts) if o.requires_grad]
    for k, (o, d) in enumerate(roots):
        o.backward(d, retain_graph=k < len(roots) - 1)
    for i, (t, m) in enumerate(zip(ts, ms)):
        if t.grad is None:
            assert m.grad is None or not np.any(m.grad.data), f"input {i}: torch has no grad, ours is nonzero"
            continue
        assert m.grad is not None, f"input {i}: torch has a gradient, ours is None"
        assert m.grad.shape == m.shape
        np.testing.assert_allclose(m.grad.data, t.grad.numpy(), rtol=rtol, atol=grad_atol,
                                   err_msg=f"gradient of input {i}")


@pytest.fixture(autouse=True)
def _each_backend(backend):
    """Every test in this module runs under both kernel backends."""
    yield


# ----------------------------------------------------------------------------- arithmetic

def test_add_sub_mul_div():
    for shapes in [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((), (2, 3)), ((1, 4, 1), (3, 1, 2))]:
        helper_test_op(shapes, lambda x, y: x + y)
        helper_test_op(shapes, lambda x, y: x - y)
        helper_test_op(shapes, lambda x, y: x * y)
        helper_test_op(None, lambda x, y: x / y, vals=[np.random.default_rng(1).standard_normal(shapes[0]),
                                                      np.random.default_rng(2).uniform(0.5, 2, shapes[1])])


def test_scalar_operands():
    helper_test_op([(3, 4)], lambda x: x + 2.5)
    helper_test_op([(3, 4)], lambda x: 2.5 - x)
    helper_test_op([(3, 4)], lambda x: x * -3)
    helper_test_op([(3, 4)], lambda x: 3 / x, low=0.5, high=2)
    helper_test_op([(3, 4)], lambda x: x / 4)
    helper_test_op([(3, 4)], lambda x: -x)


def test_functional_arithmetic():
    helper_test_op([(3, 4), (4,)], torch.add, F.add)
    helper_test_op([(3, 4), (4,)], torch.sub, F.sub)
    helper_test_op([(3, 4), (4,)], torch.mul, F.mul)
    helper_test_op([(3, 4), (4,)], torch.div, F.div, low=0.5, high=2)
    helper_test_op([(3, 4)], torch.neg, F.neg)


def test_pow():
    helper_test_op([(3, 4)], lambda x: x ** 2)
    helper_test_op([(3, 4)], lambda x: x ** 3)
    helper_test_op([(3, 4)], lambda x: x ** 0.5, low=0.5, high=2)
    helper_test_op([(3, 4)], lambda x: x ** -1.5, low=0.5, high=2)
    helper_test_op([(3, 4)], lambda x: x ** 0)
    helper_test_op([(3, 4)], lambda x: 2 ** x)
    helper_test_op([(3, 4)], lambda x: x.pow(2))
    helper_test_op([(3, 4), (3, 4)], lambda x, y: x ** y, low=0.5, high=2)
    helper_test_op([(3, 1), (4,)], lambda x, y: x ** y, low=0.5, high=2)
    helper_test_op([(2, 3), (2, 3)], torch.pow, F.pow, low=0.5, high=2)
    # zero base with tensor exponent: d/db is 0 there (torch's convention)
    helper_test_op(None, lambda x, y: x ** y, vals=[[0.0, 1.5, 0.0], [2.0, 1.0, 3.0]])
    helper_test_op(None, lambda x, y: x ** y, vals=[[0.0, 0.0, 0.0, -2.0, 2.0], [0.0, -1.0, 0.5, 2.0, 0.0]])


def test_unary_math():
    helper_test_op([(3, 4)], lambda x: x.exp())
    helper_test_op([(3, 4)], lambda x: x.log(), low=0.1, high=3)
    helper_test_op([(3, 4)], lambda x: x.sqrt(), low=0.1, high=3)
    helper_test_op([(3, 4)], lambda x: x.tanh())
    helper_test_op([(3, 4)], lambda x: x.sigmoid())
    helper_test_op([(3, 4)], lambda x: x.relu())
    helper_test_op([(3, 4)], lambda x: x.abs())
    helper_test_op([(3, 4)], torch.exp, F.exp)
    helper_test_op([(3, 4)], torch.log, F.log, low=0.1, high=3)
    helper_test_op([(3, 4)], torch.sqrt, F.sqrt, low=0.1, high=3)
    helper_test_op([(3, 4)], torch.tanh, F.tanh)
    helper_test_op([(3, 4)], torch.sigmoid, F.sigmoid)
    helper_test_op([(3, 4)], torch.relu, F.relu)
    helper_test_op([(3, 4)], torch.abs, F.abs)
    helper_test_op([(3, 4)], abs)


def test_unary_edge_values():
    """Kinks and domain edges: relu/abs at 0, sqrt/log at 0, sigmoid/tanh/exp at extremes."""
    edge = [[-2.0, -0.0, 0.0, 1e-300, 3.0, 40.0, -40.0, 800.0, -800.0]]
    helper_test_op(None, lambda x: x.relu(), vals=edge)
    helper_test_op(None, lambda x: x.abs(), vals=edge)
    helper_test_op(None, lambda x: x.sigmoid(), vals=edge)
    helper_test_op(None, lambda x: x.tanh(), vals=edge)
    helper_test_op(None, lambda x: x.exp(), vals=[[-800.0, -3.0, 0.0, 700.0]])
    helper_test_op(None, lambda x: x.sqrt(), vals=[[0.0, 1e-300, 2.0, -1.0]])   # inf grad, nan
    helper_test_op(None, lambda x: x.log(), vals=[[0.0, 1e-300, 2.0, -1.0]])    # -inf, nan
    helper_test_op(None, lambda x: x.relu(), vals=[[np.nan, -1.0, 1.0]])         # NaN passes the gradient


def test_gelu():
    helper_test_op([(3, 7)], TF.gelu, F.gelu)
    helper_test_op([(3, 7)], lambda x: TF.gelu(x, approximate="tanh"), lambda x: F.gelu(x, approximate="tanh"))
    wide = [np.linspace(-9, 9, 37)]
    helper_test_op(None, TF.gelu, F.gelu, vals=wide)
    helper_test_op(None, lambda x: TF.gelu(x, approximate="tanh"), lambda x: F.gelu(x, approximate="tanh"), vals=wide)


def test_maximum_minimum():
    helper_test_op([(3, 4), (3, 4)], torch.maximum, mt.maximum)
    helper_test_op([(3, 4), (3, 4)], torch.minimum, mt.minimum)
    helper_test_op([(3, 1), (4,)], torch.maximum, mt.maximum)
    helper_test_op([(3, 4), (3, 4)], lambda x, y: x.maximum(y))
    helper_test_op([(3, 4), (3, 4)], lambda x, y: x.minimum(y))
    ties = [[1.0, 2.0, 3.0, -1.0], [1.0, 0.0, 3.0, -1.0]]
    helper_test_op(None, torch.maximum, mt.maximum, vals=ties)
    helper_test_op(None, torch.minimum, mt.minimum, vals=ties)
    helper_test_op(None, torch.maximum, mt.maximum, vals=[[[1.0], [2.0]], [1.0, 2.0, 0.0]])  # ties + broadcast
    nans = [[np.nan, 1.0, np.nan, 2.0], [0.0, np.nan, np.nan, 2.0]]
    helper_test_op(None, torch.maximum, mt.maximum, vals=nans)
    helper_test_op(None, torch.minimum, mt.minimum, vals=nans)


def test_clamp():
    vals = [[-2.0, -0.5, -0.2, 0.0, 0.5, 0.7, 3.0]]           # includes both bounds exactly
    helper_test_op(None, lambda x: x.clamp(-0.5, 0.5), vals=vals)
    helper_test_op(None, lambda x: x.clamp(min=-0.5), vals=vals)
    helper_test_op(None, lambda x: x.clamp(max=0.5), vals=vals)
    helper_test_op([(3, 4)], lambda x: torch.clamp(x, -0.3, 0.4), lambda x: mt.clamp(x, -0.3, 0.4))


def test_where_and_masked_fill():
    cond = np.random.default_rng(5).random((3, 4)) > 0.5
    helper_test_op([(3, 4), (3, 4)], lambda x, y: torch.where(torch.tensor(cond), x, y),
                   lambda x, y: mt.where(mt.tensor(cond), x, y))
    helper_test_op([(3, 1), (4,)], lambda x, y: torch.where(torch.tensor(cond), x, y),
                   lambda x, y: mt.where(cond, x, y))
    helper_test_op([(3, 4)], lambda x: torch.where(torch.tensor(cond), x, 0.0), lambda x: mt.where(cond, x, 0.0))
    helper_test_op([(3, 4)], lambda x: x.masked_fill(torch.tensor(cond), -1.5),
                   lambda x: x.masked_fill(mt.tensor(cond), -1.5))
    helper_test_op([(2, 3, 4)], lambda x: x.masked_fill(torch.tensor(cond[0]), float("-inf")),
                   lambda x: F.masked_fill(x, cond[0], -np.inf))


def test_torch_spelled_arguments():
    """dim=/keepdim= aliases, passed next to the NumPy-style defaults."""
    helper_test_op([(2, 3, 4)], lambda x: x.sum(dim=1, keepdim=True))
    helper_test_op([(2, 3, 4)], lambda x: x.mean(dim=(0, 2), keepdim=True))
    helper_test_op([(2, 3, 4)], lambda x: x.amax(dim=-1, keepdim=True))
    helper_test_op([(2, 3, 4)], lambda x: x.var(dim=1, keepdim=True))
    helper_test_op([(2, 3, 4)], lambda x: x.std(dim=0, keepdim=True, unbiased=False))
    helper_test_op([(2, 3, 4)], lambda x: x.logsumexp(dim=2, keepdim=True))
    helper_test_op([(2, 3, 4)], lambda x: x.softmax(dim=0))
    helper_test_op([(2, 3, 4)], lambda x: x.log_softmax(dim=1))
    helper_test_op([(2, 3, 4)], lambda x: x.unsqueeze(dim=1))
    helper_test_op([(2, 1, 4)], lambda x: x.squeeze(dim=1))
    helper_test_op([(4, 3)], lambda x: x.split(2, dim=0))
    helper_test_op([(4, 3)], lambda x: x.chunk(3, dim=1))
    helper_test_op([(2, 3), (2, 3)], lambda a, b: torch.cat((a, b), dim=1), lambda a, b: mt.cat((a, b), dim=1))
    helper_test_op([(2, 3), (2, 3)], lambda a, b: torch.stack((a, b), dim=1), lambda a, b: mt.stack((a, b), dim=1))
    helper_test_op([(2, 3)], lambda x: TF.softmax(x, dim=0), lambda x: F.softmax(x, dim=0))


# ----------------------------------------------------------------------------- reductions

def test_sum_mean():
    for axis, keep in [(None, False), (0, False), (-1, True), ((0, 2), False), ((-1, 0), True)]:
        dim = axis if axis is not None else tuple(range(3))
        helper_test_op([(2, 3, 4)], lambda x: x.sum(dim=dim, keepdim=keep), lambda x: x.sum(axis, keep))
        helper_test_op([(2, 3, 4)], lambda x: x.mean(dim=dim, keepdim=keep), lambda x: x.mean(axis, keepdims=keep))
    helper_test_op([()], lambda x: x.sum())
    helper_test_op([(3, 1, 2)], lambda x: x.mean(1))
    helper_test_op([(3, 4)], lambda x: torch.sum(x, 1), lambda x: F.sum(x, 1))
    helper_test_op([(3, 4)], lambda x: torch.mean(x, dim=0), lambda x: F.mean(x, dim=0))


def test_amax_amin():
    for axis, keep in [(None, False), (0, False), (-1, True), ((0, 2), False), ((2, 1), True)]:
        dim = axis if axis is not None else ()
        helper_test_op([(2, 3, 4)], lambda x: x.amax(dim=dim, keepdim=keep), lambda x: x.max(axis=axis, keepdims=keep))
        helper_test_op([(2, 3, 4)], lambda x: x.amin(dim=dim, keepdim=keep), lambda x: x.min(axis=axis, keepdims=keep))
    ties = [[[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 5.0, -1.0, 5.0]]]
    helper_test_op(None, lambda x: x.amax(1), lambda x: x.max(axis=1), vals=ties)
    helper_test_op(None, lambda x: x.amin(-1), lambda x: x.amin(-1), vals=ties)
    helper_test_op(None, lambda x: x.max(), lambda x: x.max(), vals=ties)
    helper_test_op(None, lambda x: x.amax((0, 1)), lambda x: F.amax(x, (0, 1)), vals=ties)
    helper_test_op(None, lambda x: x.amin(0, keepdim=True), lambda x: F.amin(x, 0, keepdims=True), vals=ties)


@pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning")
def test_var_std():
    for axis in [None, 0, -1, (0, 2)]:
        dim = axis
        helper_test_op([(2, 3, 4)], lambda x: x.var(dim=dim), lambda x: x.var(axis))
        helper_test_op([(2, 3, 4)], lambda x: x.var(dim=dim, unbiased=False), lambda x: x.var(axis, unbiased=False))
        helper_test_op([(2, 3, 4)], lambda x: x.std(dim=dim), lambda x: x.std(axis))
        helper_test_op([(2, 3, 4)], lambda x: x.std(dim=dim, unbiased=False), lambda x: x.std(axis, unbiased=False))
    helper_test_op([(3, 4)], lambda x: x.var(1, keepdim=True), lambda x: x.var(1, keepdims=True))
    helper_test_op([(3, 4)], lambda x: x.var(0, correction=2), lambda x: x.var(0, correction=2))
    helper_test_op([(3, 1)], lambda x: x.var(1), lambda x: x.var(1))    # n = 1: nan, as torch
    helper_test_op([(3, 4)], lambda x: x.std(0, correction=0), lambda x: x.std(0, correction=0))
    helper_test_op([(2, 3, 4)], lambda x: x.std((0, 2), keepdim=True), lambda x: x.std((0, 2), keepdims=True))
    # a constant slice: std 0, gradient 0 (torch's convention, not 0/0)
    helper_test_op(None, lambda x: x.std(1), vals=[[[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]]])
    helper_test_op(None, lambda x: x.std(), vals=[np.ones(4)])
    helper_test_op([(3, 4)], lambda x: torch.var(x, 0), lambda x: F.var(x, 0))
    helper_test_op([(3, 4)], lambda x: torch.std(x, 1), lambda x: F.std(x, 1))


def test_logsumexp():
    helper_test_op([(3, 4)], lambda x: torch.logsumexp(x, 1), lambda x: mt.logsumexp(x, 1))
    helper_test_op([(2, 3, 4)], lambda x: torch.logsumexp(x, (0, 2), keepdim=True),
                   lambda x: x.logsumexp((0, 2), keepdims=True))
    helper_test_op([(2, 3)], lambda x: torch.logsumexp(x, (0, 1)), lambda x: x.logsumexp())
    big = [[[1e4, 1e4 - 1, -1e4], [-np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf]]]
    helper_test_op(None, lambda x: torch.logsumexp(x, -1), lambda x: x.logsumexp(-1), vals=big)


# ----------------------------------------------------------------------------- shapes

def test_reshape_permute_transpose():
    helper_test_op([(2, 3, 4)], lambda x: x.reshape(6, 4))
    helper_test_op([(2, 3, 4)], lambda x: x.reshape(-1, 2))
    helper_test_op([(2, 3, 4)], lambda x: x.reshape((4, 6)))
    helper_test_op([(2, 3, 4)], lambda x: x.view(3, 8))
    helper_test_op([(2, 3, 4)], lambda x: x.permute(2, 0, 1))
    helper_test_op([(2, 3, 4)], lambda x: x.permute(-1, 0, 1))
    helper_test_op([(2, 3, 4)], lambda x: x.transpose(0, 2))
    helper_test_op([(2, 3, 4)], lambda x: x.transpose(-1, -2))
    helper_test_op([(3, 4)], lambda x: x.T)
    helper_test_op([(2, 3, 4)], lambda x: x.mT)
    helper_test_op([(2, 3, 4)], lambda x: torch.permute(x, (1, 2, 0)), lambda x: F.permute(x, 1, 2, 0))
    helper_test_op([(2, 3, 4)], lambda x: x.permute(1, 0, 2).reshape(3, 8))   # reshape of a non-contiguous view


def test_expand_squeeze_unsqueeze_flatten():
    helper_test_op([(3, 1)], lambda x: x.expand(2, 3, 4))
    helper_test_op([(3, 1)], lambda x: x.expand(-1, 5))
    helper_test_op([()], lambda x: x.expand(2, 3))
    helper_test_op([(3, 1)], lambda x: x.expand_as(torch.zeros(2, 3, 4)), lambda x: x.expand_as(mt.zeros(2, 3, 4)))
    helper_test_op([(1, 3, 1, 2)], lambda x: x.squeeze())
    helper_test_op([(1, 3, 1, 2)], lambda x: x.squeeze(2))
    helper_test_op([(1, 3, 1, 2)], lambda x: x.squeeze(-1))                 # not size 1: no-op, as torch
    helper_test_op([(3, 2)], lambda x: x.unsqueeze(0))
    helper_test_op([(3, 2)], lambda x: x.unsqueeze(-1))
    helper_test_op([(3, 2)], lambda x: x.unsqueeze(1))
    helper_test_op([(2, 3, 4, 5)], lambda x: x.flatten())
    helper_test_op([(2, 3, 4, 5)], lambda x: x.flatten(1))
    helper_test_op([(2, 3, 4, 5)], lambda x: x.flatten(1, 2))
    helper_test_op([(2, 3, 4, 5)], lambda x: torch.flatten(x, -3, -2), lambda x: F.flatten(x, -3, -2))
    helper_test_op([()], lambda x: x.flatten())


def test_clone_broadcast_to_one_hot_cast():
    helper_test_op([(3, 4)], lambda x: x.clone() * 2)
    helper_test_op([(3, 4)], torch.clone, F.clone)
    helper_test_op([(3, 1)], lambda x: torch.broadcast_to(x, (2, 3, 4)), lambda x: F.broadcast_to(x, (2, 3, 4)))
    helper_test_op([(3, 4)], lambda x: x.float().double() * 1)          # same float32 rounding in both
    idx = np.array([[0, 3], [2, 2]])
    np.testing.assert_array_equal(F.one_hot(idx, 5).data, TF.one_hot(torch.tensor(idx), 5).numpy())
    np.testing.assert_array_equal(F.one_hot(mt.tensor(idx)).data, TF.one_hot(torch.tensor(idx)).numpy())


def test_getitem():
    helper_test_op([(4, 5)], lambda x: x[1])
    helper_test_op([(4, 5)], lambda x: x[-1, 1:4])
    helper_test_op([(4, 5)], lambda x: x[1:3, ::2])
    helper_test_op([(4, 5)], lambda x: x[:, -2])
    helper_test_op([(2, 3, 4)], lambda x: x[..., 1])
    helper_test_op([(2, 3, 4)], lambda x: x[None, :, None, 1])
    helper_test_op([(2, 3, 4)], lambda x: x[1, ..., None])
    helper_test_op([(4,)], lambda x: x[2])
    # negative steps: torch has none, so flip() is the reference
    helper_test_op([(4, 5)], lambda x: x.flip(0), lambda x: x[::-1])
    helper_test_op([(4, 5)], lambda x: x.flip(1)[:, ::2], lambda x: x[:, ::-2])
    helper_test_op([(4, 5)], lambda x: x.flip(0)[1:3], lambda x: x[2:0:-1])
    # integer arrays (with repeats: the gradient accumulates), lists, int tensors
    idx = [0, 3, 0, 2, 3]
    helper_test_op([(4, 5)], lambda x: x[torch.tensor(idx)], lambda x: x[mt.tensor(np.array(idx))])
    helper_test_op([(4, 5)], lambda x: x[idx], lambda x: x[idx])
    helper_test_op([(4, 5)], lambda x: x[:, torch.tensor(idx)], lambda x: x[:, np.array(idx)])
    helper_test_op([(4, 5)], lambda x: x[torch.tensor([0, 2, 0]), torch.tensor([4, 1, 4])],
                   lambda x: x[np.array([0, 2, 0]), np.array([4, 1, 4])])
    helper_test_op([(4, 5)], lambda x: x[torch.tensor([[0, 1], [1, 1]])], lambda x: x[np.array([[0, 1], [1, 1]])])
    helper_test_op([(4, 5)], lambda x: x[torch.tensor([-1, -4])], lambda x: x[np.array([-1, -4])])
    # boolean masks
    mask = np.random.default_rng(3).random((4, 5)) > 0.4
    helper_test_op([(4, 5)], lambda x: x[torch.tensor(mask)], lambda x: x[mt.tensor(mask)])
    helper_test_op([(4, 5)], lambda x: x[torch.tensor(mask[:, 0])], lambda x: x[mask[:, 0]])
    helper_test_op([(4, 5)], lambda x: x[x > 0], lambda x: x[x > 0])


def test_setitem():
    def both(index_t, value_t, index_m=None, value_m=None):
        index_m = index_t if index_m is None else index_m
        value_m = value_t if value_m is None else value_m

        def tf(x, v):
            y = x * 1.0
            y[index_t] = v if value_t == "v" else value_t
            return y

        def mf(x, v):
            y = x * 1.0
            y[index_m] = v if value_m == "v" else value_m
            return y
        return tf, mf

    helper_test_op([(4, 5), (2, 5)], *both(slice(1, 3), "v"))
    helper_test_op([(4, 5), (5,)], *both(slice(None, None, 2), "v"))
    helper_test_op([(4, 5), (4,)], *both((slice(None), 1), "v"))
    helper_test_op([(4, 5), ()], *both(2, "v"))
    helper_test_op([(4, 5), (2, 5)], *both(torch.tensor([3, 0]), "v", np.array([3, 0])))
    mask = np.random.default_rng(4).random((4, 5)) > 0.5
    helper_test_op([(4, 5), ()], *both(torch.tensor(mask), "v", mask))
    helper_test_op([(4, 5), (1,)], *both((1, slice(1, 4)), 7.5, (1, slice(1, 4)), 7.5))


def test_cat_stack():
    helper_test_op([(2, 3), (1, 3), (3, 3)], lambda *xs: torch.cat(xs), lambda *xs: mt.cat(xs))
    helper_test_op([(2, 3), (2, 1)], lambda *xs: torch.cat(xs, dim=1), lambda *xs: mt.cat(xs, axis=1))
    helper_test_op([(2, 3, 1), (2, 3, 2)], lambda *xs: torch.cat(xs, -1), lambda *xs: mt.cat(list(xs), -1))
    helper_test_op([(2, 3), (2, 3), (2, 3)], lambda *xs: torch.stack(xs), lambda *xs: mt.stack(xs))
    helper_test_op([(2, 3), (2, 3)], lambda *xs: torch.stack(xs, 2), lambda *xs: mt.stack(xs, 2))
    helper_test_op([(2, 3), (2, 3)], lambda *xs: torch.stack(xs, -2), lambda *xs: mt.stack(xs, dim=-2))
    helper_test_op([(), ()], lambda *xs: torch.stack(xs), lambda *xs: mt.stack(xs))


def test_split_chunk():
    helper_test_op([(7, 3)], lambda x: torch.split(x, 3), lambda x: mt.split(x, 3))
    helper_test_op([(7, 3)], lambda x: x.split([2, 5]), lambda x: x.split([2, 5]))
    helper_test_op([(3, 7)], lambda x: x.split(2, dim=1), lambda x: x.split(2, axis=1))
    helper_test_op([(3, 7)], lambda x: x.split(2, -1), lambda x: x.split(2, -1))
    helper_test_op([(7, 3)], lambda x: torch.chunk(x, 3), lambda x: mt.chunk(x, 3))
    helper_test_op([(3, 8)], lambda x: x.chunk(4, 1), lambda x: x.chunk(4, 1))
    helper_test_op([(3, 6)], lambda x: x.chunk(4, -1), lambda x: x.chunk(4, -1))   # torch gives 3 chunks of 2
    # a chunk left unused gets zero gradient
    helper_test_op([(4, 3)], lambda x: x.chunk(2)[1] * 2, lambda x: x.chunk(2)[1] * 2)


# ----------------------------------------------------------------------------- linear algebra

def test_matmul():
    for shapes in [((3, 4), (4, 5)), ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)),
                   ((2, 1, 3, 4), (3, 4, 2)), ((2, 3, 4), (4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)),
                   ((1, 4), (4, 1)), ((5, 3, 4), (5, 4, 2))]:
        helper_test_op(shapes, lambda x, y: x @ y)
    helper_test_op([(3, 4), (4, 2)], torch.matmul, mt.matmul)
    helper_test_op([(3, 4), (4, 2)], lambda x, y: x.matmul(y))
    helper_test_op([(4, 3), (2, 4)], lambda x, y: x.T @ y.T)                   # transposed operands
    helper_test_op([(3, 4)], lambda x: x @ x.T)                                 # the same tensor twice
    helper_test_op([(3, 4)], lambda x: torch.ones(2, 3, dtype=torch.float64) @ x, lambda x: np.ones((2, 3)) @ x)


def test_linear():
    helper_test_op([(3, 4), (5, 4), (5,)], TF.linear, F.linear)
    helper_test_op([(2, 3, 4), (5, 4), (5,)], TF.linear, F.linear)
    helper_test_op([(2, 3, 4), (5, 4)], TF.linear, F.linear)
    helper_test_op([(4,), (3, 4), (3,)], TF.linear, F.linear)
    helper_test_op([(2, 3, 1, 4), (1, 4), (1,)], TF.linear, F.linear)


# ----------------------------------------------------------------------------- softmax family

def test_softmax_log_softmax():
    for axis in (-1, 0, 1, -2):
        helper_test_op([(3, 4, 5)], lambda x: x.softmax(axis), lambda x: x.softmax(axis))
        helper_test_op([(3, 4, 5)], lambda x: x.log_softmax(axis), lambda x: x.log_softmax(axis))
    helper_test_op([(3, 5)], lambda x: TF.softmax(x, dim=-1), lambda x: F.softmax(x, dim=-1))
    helper_test_op([(3, 5)], lambda x: TF.log_softmax(x, dim=0), lambda x: F.log_softmax(x, 0))
    helper_test_op([(3, 1)], lambda x: x.softmax(-1))
    helper_test_op([()], lambda x: x.softmax(0), lambda x: x.softmax(0))
    helper_test_op([()], lambda x: x.log_softmax(0), lambda x: x.log_softmax(0))


def test_softmax_stability():
    """Large logits (±1e4) and -inf entries: finite where torch is finite, NaN where it is NaN."""
    big = [[[1e4, 1e4 - 1.0, -1e4, 0.0], [-1e4, -1e4, -1e4 + 2, -1e4], [3.0, -np.inf, 1.0, -np.inf],
            [-np.inf, -np.inf, -np.inf, -np.inf]]]
    helper_test_op(None, lambda x: x.softmax(-1), vals=big)
    helper_test_op(None, lambda x: x.log_softmax(-1), vals=big)
    helper_test_op(None, lambda x: x.softmax(0), vals=big)
    helper_test_op(None, lambda x: x.log_softmax(0), vals=big)
    scaled = [np.random.default_rng(0).standard_normal((3, 6)) * 1e4]
    helper_test_op(None, lambda x: x.softmax(-1), vals=scaled)
    helper_test_op(None, lambda x: x.log_softmax(-1), vals=scaled)


def test_cross_entropy():
    t = np.array([1, 0, 4, 2])
    tt = torch.tensor(t)
    for red in ("mean", "sum", "none"):
        helper_test_op([(4, 5)], lambda x: TF.cross_entropy(x, tt, reduction=red),
                       lambda x: F.cross_entropy(x, t, reduction=red))
        helper_test_op([(4, 5)], lambda x: TF.cross_entropy(x, tt, reduction=red, label_smoothing=0.1),
                       lambda x: F.cross_entropy(x, mt.tensor(t), reduction=red, label_smoothing=0.1))
        ign = np.array([1, -100, 4, -100])
        helper_test_op([(4, 5)], lambda x: TF.cross_entropy(x, torch.tensor(ign), reduction=red, label_smoothing=0.2),
                       lambda x: F.cross_entropy(x, ign, reduction=red, label_smoothing=0.2))
        helper_test_op([(4, 5)], lambda x: TF.cross_entropy(x, tt, ignore_index=0, reduction=red),
                       lambda x: F.cross_entropy(x, t, ignore_index=0, reduction=red))
    # unbatched (C,) logits, () target
    helper_test_op([(5,)], lambda x: TF.cross_entropy(x, torch.tensor(3)), lambda x: F.cross_entropy(x, np.array(3)))
    # (N, C, d1, d2) inputs with (N, d1, d2) targets
    t4 = np.random.default_rng(0).integers(0, 3, (2, 4, 2))
    for red in ("mean", "sum", "none"):
        helper_test_op([(2, 3, 4, 2)], lambda x: TF.cross_entropy(x, torch.tensor(t4), reduction=red, label_smoothing=0.1),
                       lambda x: F.cross_entropy(x, t4, reduction=red, label_smoothing=0.1))


def test_cross_entropy_probability_targets():
    rng = np.random.default_rng(0)
    p = rng.random((4, 5))
    p /= p.sum(1, keepdims=True)
    p4 = rng.random((2, 3, 4))
    p4 /= p4.sum(1, keepdims=True)
    for red in ("mean", "sum", "none"):
        for eps in (0.0, 0.15):
            helper_test_op([(4, 5)], lambda x: TF.cross_entropy(x, torch.tensor(p), reduction=red, label_smoothing=eps),
                           lambda x: F.cross_entropy(x, mt.tensor(p), reduction=red, label_smoothing=eps))
            helper_test_op([(2, 3, 4)], lambda x: TF.cross_entropy(x, torch.tensor(p4), reduction=red, label_smoothing=eps),
                           lambda x: F.cross_entropy(x, p4, reduction=red, label_smoothing=eps))
    # targets that require grad get their gradient too
    helper_test_op([(4, 5), (4, 5)], lambda x, q: TF.cross_entropy(x, q.softmax(1)),
                   lambda x, q: F.cross_entropy(x, q.softmax(1)))


def test_cross_entropy_stability():
    t = np.array([0, 1, 2])
    big = [[[1e4, -1e4, 0.0, 5.0], [-1e4, 1e4, 1e4, -np.inf], [3.0, -np.inf, 1.0, -np.inf]]]
    helper_test_op(None, lambda x: TF.cross_entropy(x, torch.tensor(t), reduction="none"),
                   lambda x: F.cross_entropy(x, t, reduction="none"), vals=big)
    helper_test_op(None, lambda x: TF.cross_entropy(x, torch.tensor(t)), lambda x: F.cross_entropy(x, t), vals=big)
    # the target class itself at -inf: the loss is inf, as in torch
    helper_test_op(None, lambda x: TF.cross_entropy(x, torch.tensor([1]), reduction="none"),
                   lambda x: F.cross_entropy(x, [1], reduction="none"), vals=[[[0.0, -np.inf, 1.0]]])
    # label smoothing puts weight on -inf classes: inf (torch too)
    helper_test_op(None, lambda x: TF.cross_entropy(x, torch.tensor(t), label_smoothing=0.1, reduction="none"),
                   lambda x: F.cross_entropy(x, t, label_smoothing=0.1, reduction="none"), vals=big, forward_only=True)


def test_nll_loss():
    t = np.array([1, 0, 4, 2])
    for red in ("mean", "sum", "none"):
        helper_test_op([(4, 5)], lambda x: TF.nll_loss(x.log_softmax(1), torch.tensor(t), reduction=red),
                       lambda x: F.nll_loss(x.log_softmax(1), t, reduction=red))
        helper_test_op([(4, 5)], lambda x: TF.nll_loss(x, torch.tensor([1, -100, 4, 2]), reduction=red),
                       lambda x: F.nll_loss(x, np.array([1, -100, 4, 2]), reduction=red))
        helper_test_op([(3, 5)], lambda x: TF.nll_loss(x, torch.tensor([-100] * 3), reduction=red),
                       lambda x: F.nll_loss(x, [-100] * 3, reduction=red))        # all ignored: NaN, zero grad
        helper_test_op([(3, 5)], lambda x: TF.cross_entropy(x, torch.tensor([-100] * 3), reduction=red),
                       lambda x: F.cross_entropy(x, [-100] * 3, reduction=red))


def test_mse_loss():
    for red in ("mean", "sum", "none"):
        helper_test_op([(3, 4), (3, 4)], lambda x, y: TF.mse_loss(x, y, reduction=red),
                       lambda x, y: F.mse_loss(x, y, reduction=red))
    helper_test_op([(3, 4)], lambda x: TF.mse_loss(x, torch.zeros(3, 4, dtype=torch.float64)),
                   lambda x: F.mse_loss(x, np.zeros((3, 4))))


def test_layer_norm():
    helper_test_op([(3, 5), (5,), (5,)], lambda x, w, b: TF.layer_norm(x, (5,), w, b), lambda x, w, b: F.layer_norm(x, 5, w, b))
    helper_test_op([(2, 3, 4), (3, 4), (3, 4)], lambda x, w, b: TF.layer_norm(x, (3, 4), w, b, eps=1e-3),
                   lambda x, w, b: F.layer_norm(x, (3, 4), w, b, eps=1e-3))
    helper_test_op([(2, 3, 4)], lambda x: TF.layer_norm(x, (4,)), lambda x: F.layer_norm(x, (4,)))
    helper_test_op([(2, 3, 4)], lambda x: TF.layer_norm(x, (2, 3, 4)), lambda x: F.layer_norm(x, (2, 3, 4)))
    helper_test_op([(3, 4), (4,)], lambda x, w: TF.layer_norm(x, (4,), weight=w), lambda x, w: F.layer_norm(x, 4, weight=w))
    helper_test_op([(3, 4), (4,)], lambda x, b: TF.layer_norm(x, (4,), bias=b), lambda x, b: F.layer_norm(x, 4, bias=b))
    # a constant row (variance 0) and large offsets
    vals = [np.array([[2.0, 2.0, 2.0, 2.0], [1e4, 1e4 + 1, 1e4 - 1, 1e4 + 3]]), np.ones(4) * 1.5, np.zeros(4)]
    helper_test_op(None, lambda x, w, b: TF.layer_norm(x, (4,), w, b), lambda x, w, b: F.layer_norm(x, 4, w, b),
                   vals=vals)


def test_embedding():
    idx = np.array([[0, 2, 2], [4, 1, 0]])
    helper_test_op([(5, 3)], lambda w: TF.embedding(torch.tensor(idx), w), lambda w: F.embedding(idx, w))
    helper_test_op([(5, 3)], lambda w: TF.embedding(torch.tensor(idx), w, padding_idx=0),
                   lambda w: F.embedding(mt.tensor(idx), w, padding_idx=0))
    helper_test_op([(5, 3)], lambda w: TF.embedding(torch.tensor(idx), w, padding_idx=-1),
                   lambda w: F.embedding(idx, w, padding_idx=-1))
    helper_test_op([(5, 3)], lambda w: TF.embedding(torch.tensor(3), w), lambda w: F.embedding(3, w))


def _sdpa_pair(mask=None, **kw):
    def tf(q, k, v):
        return TF.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else torch.tensor(mask), **kw)

    def mf(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kw)
    return tf, mf


def test_scaled_dot_product_attention():
    rng = np.random.default_rng(0)
    qkv = [(2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3)]
    helper_test_op(qkv, *_sdpa_pair())
    helper_test_op(qkv, *_sdpa_pair(scale=0.3))
    helper_test_op([(2, 2, 4, 4), (2, 2, 4, 4), (2, 2, 4, 3)], *_sdpa_pair(is_causal=True))
    helper_test_op([(1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4)], *_sdpa_pair(is_causal=True))  # Tq < Tk
    bool_mask = rng.random((2, 2, 3, 5)) > 0.3
    bool_mask[..., 0] = True                                                 # every row sees a key
    helper_test_op(qkv, *_sdpa_pair(bool_mask))
    helper_test_op(qkv, *_sdpa_pair(rng.standard_normal((2, 2, 3, 5))))     # float mask
    helper_test_op(qkv, *_sdpa_pair(np.where(bool_mask, 0.0, -np.inf)))     # float -inf mask
    # broadcast masks
    helper_test_op(qkv, *_sdpa_pair(bool_mask[0, 0]))                        # (Tq, Tk)
    helper_test_op(qkv, *_sdpa_pair(bool_mask[:, :1]))                       # (B, 1, Tq, Tk)
    helper_test_op(qkv, *_sdpa_pair(rng.standard_normal((1, 1, 1, 5))))      # (1, 1, 1, Tk)
    helper_test_op(qkv, *_sdpa_pair(bool_mask[:1, :, :1] | True, scale=2.0))
    # 3-D and 5-D inputs, and broadcasting batch dims between q and k/v
    helper_test_op([(3, 4, 2), (3, 5, 2), (3, 5, 3)], *_sdpa_pair())
    helper_test_op([(3, 4, 2), (3, 5, 2), (3, 5, 3)], *_sdpa_pair(is_causal=True))
    helper_test_op([(2, 2, 2, 3, 4), (2, 2, 2, 5, 4), (2, 2, 2, 5, 4)], *_sdpa_pair(rng.standard_normal((3, 5))))
    helper_test_op([(2, 2, 3, 4), (1, 2, 5, 4), (2, 1, 5, 3)], *_sdpa_pair())
    # large scores stay stable
    helper_test_op([(1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 3)], *_sdpa_pair(scale=300.0))


def test_sdpa_fully_masked_rows_give_zeros():
    """A query row that sees no key: we return zeros and zero gradients (our documented
    choice; older torch versions return NaN there). Every other row matches torch."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s) for s in [(1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 3)])
    mask = rng.random((1, 2, 3, 5)) > 0.3
    mask[..., 0] = True
    mask[0, 1, 2, :] = False                                                 # one blind row
    qm, km, vm = (mt.tensor(a, requires_grad=True) for a in (q, k, v))
    out = F.scaled_dot_product_attention(qm, km, vm, attn_mask=mask)
    dout = rng.standard_normal(out.shape)
    out.backward(dout)
    assert np.all(out.data[0, 1, 2] == 0)
    assert np.all(qm.grad.data[0, 1, 2] == 0)
    for t in (qm, km, vm):
        assert np.all(np.isfinite(t.grad.data))
    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    out_t = TF.scaled_dot_product_attention(qt, kt, vt, attn_mask=torch.tensor(mask))
    seen = np.ones(out.shape, bool)
    seen[0, 1, 2] = False
    np.testing.assert_allclose(out.data[seen], out_t.detach().numpy()[seen], rtol=RTOL, atol=ATOL)
    (out_t * torch.tensor(np.where(seen, dout, 0.0))).sum().backward()      # no gradient from the blind row
    np.testing.assert_allclose(qm.grad.data, np.nan_to_num(qt.grad.numpy()), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(km.grad.data, kt.grad.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(vm.grad.data, vt.grad.numpy(), rtol=RTOL, atol=ATOL)


def test_multi_head_attention_weights_match_torch_softmax():
    rng = np.random.default_rng(1)
    mask = rng.random((3, 5)) > 0.3
    mask[:, 0] = True

    def tf(q, k, v):
        s = q @ k.transpose(-1, -2) / math.sqrt(4)
        w = s.masked_fill(~torch.tensor(mask), float("-inf")).softmax(-1)
        return w @ v, w

    def ours(q, k, v):
        out, w = F.multi_head_attention(q, k, v, 1, attn_mask=mask, need_weights=True)
        return out, w[:, 0]                                        # one head: (B, L, S)

    helper_test_op([(2, 3, 4), (2, 5, 4), (2, 5, 3)], tf, ours)
