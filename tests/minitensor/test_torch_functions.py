"""Parity with PyTorch of the torch.X functions and Tensor methods of issue 15, in float64:
the same inputs give the same values (and the same indices, exactly), and a random upstream
gradient gives the same input gradients. Skipped without torch.

Gradient checks against central differences are in test_torch_functions_behaviour.py (and
every new op's samples are gradchecked by test_ops_gradcheck.py).
"""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-10, 1e-12


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.data)


def _outputs(out):
    """Outputs as a list: a named pair gives its values and indices."""
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check(torch_fn, our_fn, *arrays, grad=True):
    """Run both on copies of ``arrays`` (float64 leaves; integer arrays pass as data)."""
    ts = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    ms = [mt.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    outs_t, outs_m = _outputs(torch_fn(*ts)), _outputs(our_fn(*ms))
    assert len(outs_t) == len(outs_m)
    for k, (a, b) in enumerate(zip(outs_t, outs_m)):
        assert tuple(a.shape) == b.shape, f"output {k}: torch {tuple(a.shape)} vs ours {b.shape}"
        assert str(a.dtype).replace("torch.", "") == str(b.dtype), f"output {k} dtype"
        np.testing.assert_allclose(_np(b), _np(a), rtol=RTOL, atol=ATOL, err_msg=f"output {k}")
    if not grad:
        return
    rng = np.random.default_rng(5)
    pairs = [(a, b, rng.standard_normal(tuple(a.shape))) for a, b in zip(outs_t, outs_m)
             if a.requires_grad]
    assert all(b.requires_grad for _, b, _ in pairs), "torch output requires grad, ours not"
    assert pairs, "nothing differentiable to compare"
    torch.autograd.backward([a for a, _, _ in pairs], [torch.tensor(d) for _, _, d in pairs])
    loss = sum((b * mt.tensor(d)).sum() for _, b, d in pairs)
    loss.backward()
    for i, (t, m) in enumerate(zip(ts, ms)):
        if not t.requires_grad:
            continue
        expected = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        got = np.zeros(m.shape) if m.grad is None else m.grad.data
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=f"grad of input {i}")


RNG = np.random.default_rng(0)
X34 = RNG.standard_normal((3, 4))
X234 = RNG.standard_normal((2, 3, 4))
POS = RNG.uniform(0.5, 2.0, (3, 4))
TIES = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 5.0, -1.0, 5.0]])


@pytest.mark.parametrize("name", ["exp", "sin", "cos", "tanh", "sigmoid", "relu", "abs",
                                  "square", "sign"])
def test_unary_functions_and_methods(name):
    check(getattr(torch, name), getattr(mt, name), X34)
    check(lambda x: getattr(x, name)(), lambda x: getattr(x, name)(), X234)


@pytest.mark.parametrize("name", ["log", "sqrt", "rsqrt"])
def test_unary_functions_of_positive_input(name):
    check(getattr(torch, name), getattr(mt, name), POS)
    check(lambda x: getattr(x, name)(), lambda x: getattr(x, name)(), POS)


def test_softmax_family_and_reductions_as_top_level_functions():
    check(lambda x: torch.softmax(x, 1), lambda x: mt.softmax(x, 1), X34)
    check(lambda x: torch.log_softmax(x, dim=0), lambda x: mt.log_softmax(x, dim=0), X34)
    check(lambda x: torch.sum(x, 1, keepdim=True), lambda x: mt.sum(x, 1, keepdim=True), X234)
    check(lambda x: torch.mean(x, dim=(0, 2)), lambda x: mt.mean(x, dim=(0, 2)), X234)
    check(torch.sum, mt.sum, X234)
    check(lambda x: torch.pow(x, 3.0), lambda x: mt.pow(x, 3.0), X34)
    check(lambda x, y: torch.pow(x, y), lambda x, y: mt.pow(x, y), POS, X34)
    check(lambda x: torch.flatten(x, 1), lambda x: mt.flatten(x, 1), X234)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_max_min_along_a_dim_give_values_and_indices(dim, keepdim):
    for name in ("max", "min"):
        check(lambda x: getattr(torch, name)(x, dim, keepdim=keepdim),
              lambda x: getattr(mt, name)(x, dim, keepdim=keepdim), TIES)
        check(lambda x: getattr(x, name)(dim=dim, keepdim=keepdim),
              lambda x: getattr(x, name)(dim=dim, keepdim=keepdim), X234)


def test_max_min_without_dim_and_with_a_second_tensor():
    for name in ("max", "min"):
        check(getattr(torch, name), getattr(mt, name), TIES)             # ties share the grad
        check(lambda x: getattr(x, name)(), lambda x: getattr(x, name)(), X34)
        check(getattr(torch, name), getattr(mt, name), X34, TIES)         # elementwise
        check(lambda a, b: getattr(a, name)(b), lambda a, b: getattr(a, name)(b), X34, TIES)


@pytest.mark.parametrize("dim,keepdim", [(None, False), (None, True), (0, False), (-1, True)])
def test_argmax_argmin(dim, keepdim):
    for name in ("argmax", "argmin"):
        check(lambda x: getattr(torch, name)(x, dim, keepdim),
              lambda x: getattr(mt, name)(x, dim, keepdim), TIES, grad=False)
        check(lambda x: getattr(x, name)(dim=dim, keepdim=keepdim),
              lambda x: getattr(x, name)(dim=dim, keepdim=keepdim), X234, grad=False)


@pytest.mark.parametrize("k,dim,largest", [(2, -1, True), (1, 0, True), (3, 1, False),
                                           (4, -1, False), (0, 0, True)])
def test_topk(k, dim, largest):
    check(lambda x: torch.topk(x, k, dim, largest), lambda x: mt.topk(x, k, dim, largest), X234)
    check(lambda x: x.topk(k, dim=dim, largest=largest),
          lambda x: x.topk(k, dim=dim, largest=largest), X234)


@pytest.mark.parametrize("dim,descending", [(-1, False), (0, True), (1, True), (1, False)])
def test_sort_is_stable_with_ties(dim, descending):
    check(lambda x: torch.sort(x, stable=True, dim=dim, descending=descending),
          lambda x: mt.sort(x, dim, descending), TIES)
    check(lambda x: x.sort(dim=dim, descending=descending),
          lambda x: x.sort(dim=dim, descending=descending), X234)
    with_nan = np.array([[1.0, np.nan, -2.0, 0.5, np.nan]])
    check(lambda x: torch.sort(x, descending=descending, stable=True),
          lambda x: mt.sort(x, descending=descending), with_nan, grad=False)


@pytest.mark.parametrize("diagonal", [0, 1, -1, 3])
def test_tril_triu(diagonal):
    for name in ("tril", "triu"):
        check(lambda x: getattr(torch, name)(x, diagonal), lambda x: getattr(mt, name)(x, diagonal),
              X234)
        check(lambda x: getattr(x, name)(diagonal=diagonal),
              lambda x: getattr(x, name)(diagonal=diagonal), X34)


@pytest.mark.parametrize("equation,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 2)]),
    ("...ij,...jk", [(2, 1, 3, 4), (3, 4, 2)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,j", [(3, 4), (4,)]),
    ("ii->", [(4, 4)]),
    ("ii->i", [(4, 4)]),
    ("ij->", [(3, 4)]),
    ("ij", [(3, 4)]),
    ("ba", [(3, 4)]),
    ("ijk,jl->il", [(2, 3, 4), (3, 5)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("b i d, b j d -> b i j", [(2, 3, 4), (2, 5, 4)]),
])
def test_einsum(equation, shapes):
    arrays = [RNG.standard_normal(s) for s in shapes]
    check(lambda *xs: torch.einsum(equation, *xs), lambda *xs: mt.einsum(equation, *xs), *arrays)
    check(lambda *xs: torch.einsum(equation, list(xs)),
          lambda *xs: mt.einsum(equation, list(xs)), *arrays)


def test_matrix_products():
    a, b = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 4, 5))
    check(torch.bmm, mt.bmm, a, b)
    check(lambda x, y: x.bmm(y), lambda x, y: x.bmm(y), a, b)
    check(torch.mm, mt.mm, X34, RNG.standard_normal((4, 2)))
    check(lambda x, y: x.mm(y), lambda x, y: x.mm(y), X34, RNG.standard_normal((4, 2)))
    check(torch.outer, mt.outer, RNG.standard_normal(3), RNG.standard_normal(5))
    check(lambda x: x.t(), lambda x: x.t(), X34)
    check(lambda x: x.t(), lambda x: x.t(), RNG.standard_normal(3))


@pytest.mark.parametrize("kwargs", [{}, {"p": 2, "dim": 1}, {"p": 1, "dim": 0, "keepdim": True},
                                    {"p": 3, "dim": (0, 2)}, {"p": float("inf"), "dim": -1},
                                    {"p": "fro"}, {"p": 0.5, "dim": 1}])
def test_norm(kwargs):
    check(lambda x: x.norm(**kwargs), lambda x: x.norm(**kwargs), X234)
    check(lambda x: torch.norm(x, **kwargs), lambda x: mt.norm(x, **kwargs), X234)


def test_norm_of_zero_has_zero_gradient():
    zero_row = np.vstack([np.zeros(4), X34[1]])
    check(lambda x: x.norm(dim=1), lambda x: x.norm(dim=1), zero_row)
    check(lambda x: x.norm(), lambda x: x.norm(), np.zeros((2, 3)))
    with_zeros = np.array([[0.0, 1.0, -2.0], [0.0, 0.0, 0.5]])
    for p in (0.5, 1, 3):
        check(lambda x: x.norm(p, dim=1), lambda x: x.norm(p, dim=1), with_zeros)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum(dim):
    check(lambda x: torch.cumsum(x, dim), lambda x: mt.cumsum(x, dim), X234)
    check(lambda x: x.cumsum(dim), lambda x: x.cumsum(dim), X234)
    ints = np.array([[1, 2, 3], [4, 5, 6]])
    check(lambda x: x.cumsum(dim), lambda x: x.cumsum(dim), ints, grad=False)  # int64, as torch


def test_gather_with_repeats_and_a_smaller_index():
    index = np.array([[2, 0, 2], [0, 0, 1]])
    check(lambda x, i: torch.gather(x, 0, i), lambda x, i: mt.gather(x, 0, i), X34, index)
    check(lambda x, i: x.gather(1, i), lambda x, i: x.gather(1, i), X34, index + 1)
    check(lambda x, i: x.gather(-1, i), lambda x, i: x.gather(-1, i), X34, index)  # negative dim


def test_scatter_out_of_place_and_in_place():
    index = np.array([[0, 2, 1, 0], [2, 1, 0, 1]])
    src = RNG.standard_normal((2, 4))  # (torch's src gradient breaks for src larger than index)
    check(lambda x, s, i: torch.scatter(x, 0, i, s), lambda x, s, i: mt.scatter(x, 0, i, s),
          X34, src, index)
    check(lambda x, i: x.scatter(0, i, -1.5), lambda x, i: x.scatter(0, i, -1.5), X34, index)
    # in place on a non-leaf (the graph records the write; gradients as torch)
    check(lambda x, s, i: (x * 2).scatter_(0, i, s * 3), lambda x, s, i: (x * 2).scatter_(0, i, s * 3),
          X34, src, index)
    check(lambda x, i: (x + 0).scatter_(1, i.T[:, :2], value=7.0),
          lambda x, i: (x + 0).scatter_(1, i.T[:, :2], value=7.0), X34, index[:, :3])


def test_index_select_index_fill_masked_select():
    index = np.array([2, 0, 2])
    check(lambda x, i: torch.index_select(x, 1, i), lambda x, i: mt.index_select(x, 1, i), X34, index)
    check(lambda x, i: x.index_select(0, i[:2]), lambda x, i: x.index_select(0, i[:2]), X34, index)
    check(lambda x, i: x.index_fill(1, i, -3.0), lambda x, i: x.index_fill(1, i, -3.0), X34, index - 3)
    check(lambda x, i: (x * 1).index_fill_(0, i[1:], 2.0),
          lambda x, i: (x * 1).index_fill_(0, i[1:], 2.0), X34, index)
    mask = X34 > 0
    check(lambda x: torch.masked_select(x, torch.tensor(mask)), lambda x: mt.masked_select(x, mask), X34)
    check(lambda x: x.masked_select(torch.tensor(mask[0])), lambda x: x.masked_select(mask[0]), X34)


def test_nonzero():
    x = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
    check(torch.nonzero, mt.nonzero, x, grad=False)
    check(lambda t: t.nonzero(as_tuple=True), lambda t: t.nonzero(as_tuple=True), x, grad=False)
    check(torch.nonzero, mt.nonzero, np.array(3.0), grad=False)


def test_repeat_interleave_repeat_flip_unbind():
    check(lambda x: torch.repeat_interleave(x, 2), lambda x: mt.repeat_interleave(x, 2), X34)
    check(lambda x: x.repeat_interleave(3, dim=1), lambda x: x.repeat_interleave(3, dim=1), X34)
    counts = np.array([1, 0, 2])
    check(lambda x, c: torch.repeat_interleave(x, c, dim=0),
          lambda x, c: mt.repeat_interleave(x, c, dim=0), X34, counts)
    check(lambda x: x.repeat(2, 1, 3), lambda x: x.repeat(2, 1, 3), X34)
    check(lambda x: x.repeat((1, 1)), lambda x: x.repeat((1, 1)), X34)
    check(lambda x: x.flip(0), lambda x: x.flip(0), X234)
    check(lambda x: x.flip([0, 2]), lambda x: x.flip([0, 2]), X234)
    check(lambda x: torch.flip(x, (-1,)), lambda x: mt.flip(x, (-1,)), X234)
    check(lambda x: torch.unbind(x, 1), lambda x: mt.unbind(x, 1), X234)
    check(lambda x: x.unbind(), lambda x: x.unbind(), X234)


def test_pow_whole_number_exponents_match_torch_in_float32():
    x = np.random.default_rng(3).standard_normal((4, 32, 256)).astype(np.float32) * 2
    for p in (3.0, 2, -2, 5, -3.0, 1, 0, 17.0, 0.5):
        base = np.abs(x) + 0.1 if p == 0.5 else x
        got = mt.pow(mt.tensor(base), p).data
        expected = torch.pow(torch.tensor(base), p).numpy()
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=4e-6, atol=0, err_msg=f"p={p}")
    check(lambda t: t ** -2, lambda t: t ** -2, X34)
    check(lambda t: torch.pow(t, 4.0), lambda t: mt.pow(t, 4.0), X34)
