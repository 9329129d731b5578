"""The torch.X functions and Tensor methods of issue 15 without torch: gradients against
central differences (float64, through the public functions), the named pairs of
max/min/topk/sort, in-place methods, seeded sampling, the whole-number pow fast path,
and a clear error for every kind of bad input.
"""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
from minitensor.errors import DTypeError, IndexOutOfRange, ShapeError

RNG = np.random.default_rng(11)


def leaf(*shape, positive=False):
    data = RNG.uniform(0.5, 2.0, shape) if positive else RNG.standard_normal(shape)
    return mt.tensor(data, requires_grad=True)


# ----------------------------------------------------------------------------- gradients

GRADCHECKS = {
    "sin": (lambda x: mt.sin(x), [(3, 4)]),
    "cos": (lambda x: x.cos(), [(3, 4)]),
    "rsqrt": (lambda x: mt.rsqrt(x), ["pos", (3, 4)]),
    "square": (lambda x: x.square(), [(3, 4)]),
    "norm": (lambda x: x.norm(dim=1, keepdim=True), [(3, 4)]),
    "norm p=3": (lambda x: mt.norm(x, 3), [(2, 3)]),
    "max dim": (lambda x: mt.max(x, 1).values, [(3, 4)]),
    "min dim keepdim": (lambda x: x.min(0, keepdim=True)[0], [(3, 4)]),
    "topk": (lambda x: mt.topk(x, 2).values, [(3, 5)]),
    "topk smallest dim 0": (lambda x: x.topk(2, dim=0, largest=False)[0], [(4, 3)]),
    "sort": (lambda x: mt.sort(x, descending=True).values, [(3, 4)]),
    "tril": (lambda x: mt.tril(x, -1), [(2, 4, 4)]),
    "triu": (lambda x: x.triu(1), [(3, 5)]),
    "einsum bmm": (lambda a, b: mt.einsum("bij,bjk->bik", a, b), [(2, 3, 4), (2, 4, 2)]),
    "einsum ellipsis": (lambda a, b: mt.einsum("...d,...d->...", a, b), [(2, 3, 4), (3, 4)]),
    "einsum trace": (lambda a: mt.einsum("ii", a), [(3, 3)]),
    "bmm": (lambda a, b: mt.bmm(a, b), [(2, 3, 4), (2, 4, 5)]),
    "mm": (lambda a, b: a.mm(b), [(3, 4), (4, 2)]),
    "outer": (lambda a, b: mt.outer(a, b), [(3,), (4,)]),
    "cumsum": (lambda x: mt.cumsum(x, 1), [(3, 4)]),
    "gather": (lambda x: mt.gather(x, 1, mt.tensor([[0, 0], [3, 1], [2, 2]]).long()), [(3, 4)]),
    "scatter src": (lambda x, s: x.scatter(0, np.array([[2, 0], [0, 1]]), s), [(3, 2), (2, 2)]),
    "scatter value": (lambda x: x.scatter(1, np.array([[1], [0]]), 5.0), [(2, 3)]),
    "index_select": (lambda x: x.index_select(0, np.array([2, 2, 0])), [(3, 4)]),
    "index_fill": (lambda x: x.index_fill(1, np.array([0, -1]), 2.0), [(3, 4)]),
    "max of all": (lambda x: mt.max(x), [(3, 4)]),
    "einsum implicit": (lambda a, b: mt.einsum("ij,kj", a, b), [(3, 4), (2, 4)]),
    "masked_select": (lambda x: x.masked_select(np.array([True, False, True, True])), [(3, 4)]),
    "repeat_interleave": (lambda x: mt.repeat_interleave(x, np.array([2, 0, 1]), dim=0), [(3, 2)]),
    "repeat": (lambda x: x.repeat(2, 1, 3), [(3, 2)]),
    "flip": (lambda x: x.flip(0, 1), [(3, 4)]),
    "flatten": (lambda x: mt.flatten(x, 0, 1), [(2, 3, 4)]),
    "unbind": (lambda x: mt.unbind(x, 1)[2] * 2, [(3, 4)]),
    "t": (lambda x: x.t(), [(3, 4)]),
    "pow 3.0": (lambda x: mt.pow(x, 3.0), [(3, 4)]),
    "pow -2": (lambda x: x ** -2, ["pos", (3, 4)]),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_gradcheck_in_float64(name):
    fn, specs = GRADCHECKS[name]
    positive = specs[0] == "pos"
    inputs = [leaf(*s, positive=positive) for s in specs if s != "pos"]
    assert mt.gradcheck(fn, inputs, mode="full", seed=1)


def test_sign_has_zero_gradient_and_argmax_none():
    x = leaf(3, 4)
    mt.sign(x).sum().backward()
    assert np.array_equal(x.grad.data, np.zeros((3, 4)))
    assert not mt.argmax(x, 1).requires_grad and mt.argmax(x, 1).dtype == np.int64


def test_topk_gradient_goes_to_the_chosen_elements_only():
    x = mt.tensor([[1.0, 5.0, 3.0, 5.0]], requires_grad=True)
    values, indices = x.topk(2)
    values.sum().backward()
    assert indices.tolist() == [[1, 3]] and not indices.requires_grad
    assert x.grad.data.tolist() == [[0.0, 1.0, 0.0, 1.0]]


def test_max_with_dim_sends_the_gradient_to_the_first_maximum_but_max_without_dim_splits():
    x = mt.tensor([[2.0, 7.0, 7.0]], requires_grad=True)
    x.max(1).values.sum().backward()
    assert x.grad.data.tolist() == [[0.0, 1.0, 0.0]]
    y = mt.tensor([[2.0, 7.0, 7.0]], requires_grad=True)
    y.max().backward()
    assert y.grad.data.tolist() == [[0.0, 0.5, 0.5]]


# ----------------------------------------------------------------------------- named pairs

def test_max_min_return_named_pairs_with_dim_and_values_with_axis():
    x = mt.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    _, next_word = mt.max(x, dim=1)
    assert next_word.tolist() == [1, 0] and next_word.dtype == np.int64
    pair = x.max(1)
    assert type(pair).__name__ == "max" and pair.values.tolist() == pytest.approx([0.7, 0.5])
    assert pair.indices.tolist() == [1, 0] and tuple(pair) == (pair[0], pair[1])
    assert x.max(1, keepdim=True).values.shape == (2, 1)
    assert x.max(1, True).indices.shape == (2, 1)
    assert isinstance(x.max(axis=1), mt.Tensor) and x.max(axis=1).shape == (2,)
    assert x.max(axis=(0, 1), keepdims=True).shape == (1, 1)
    assert x.max().shape == () and x.max().item() == pytest.approx(0.7)
    low = x.min(dim=0)
    assert type(low).__name__ == "min" and low.indices.tolist() == [0, 1, 0]
    assert isinstance(mt.return_types.max(1, 2), tuple)
    np.testing.assert_allclose(mt.max(x, mt.zeros(2, 3) + 0.4).data,
                               [[0.4, 0.7, 0.4], [0.5, 0.4, 0.4]], rtol=1e-6)
    assert x.min(mt.zeros(1, 3) + 0.25).shape == (2, 3)


def test_x_max_of_a_dim_no_longer_unpacks_into_rows():
    x = mt.randn(2, 5)
    a, b = x.max(1)             # before issue 15 these were the two rows of the values
    assert a.shape == (2,) and b.shape == (2,) and b.dtype == np.int64


def test_sort_and_topk_are_named_pairs():
    x = mt.tensor([3.0, 1.0, 2.0])
    s = mt.sort(x)
    assert type(s).__name__ == "sort" and s.values.tolist() == [1.0, 2.0, 3.0]
    assert s.indices.tolist() == [1, 2, 0]
    k = x.topk(1)
    assert type(k).__name__ == "topk" and k.values.tolist() == [3.0] and k.indices.tolist() == [0]
    zero_d = mt.tensor(4.0).topk(1)
    assert zero_d.values.shape == () and zero_d.indices.item() == 0


# ----------------------------------------------------------------------------- in place, sampling

def test_scatter_in_place_bumps_the_version_so_autograd_catches_misuse():
    w = leaf(3, 4)
    y = w.exp()                 # Exp saves its output
    before = y._version
    y.scatter_(0, np.array([[0, 1, 2, 0]]), 0.0)
    assert y._version == before + 1
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_in_place_fill_of_a_leaf_requiring_grad_is_refused():
    w = leaf(2, 3)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w.normal_()
    with mt.no_grad():
        w.normal_(0.0, 0.02)
    assert np.abs(w.data).max() < 0.2 and w.requires_grad


def test_normal_and_uniform_are_seeded_and_in_place():
    a, b = mt.zeros(1000), mt.zeros(1000)
    mt.manual_seed(3)
    out = a.normal_(2.0, 0.5)
    mt.manual_seed(3)
    b.normal_(2.0, 0.5)
    assert out is a and np.array_equal(a.data, b.data)
    assert abs(a.data.mean() - 2.0) < 0.1 and abs(a.data.std() - 0.5) < 0.05
    u = mt.zeros(1000, dtype=mt.float64).uniform_(-1.0, 3.0)
    assert u.dtype == np.float64 and u.data.min() >= -1.0 and u.data.max() < 3.0
    assert a._version == 1


def test_multinomial_and_randperm_are_seeded():
    probs = mt.tensor([[0.0, 0.2, 0.8], [0.5, 0.5, 0.0]])
    mt.manual_seed(0)
    first = mt.multinomial(probs, 2)
    mt.manual_seed(0)
    again = probs.multinomial(2)
    assert first.tolist() == again.tolist() and first.dtype == np.int64 and first.shape == (2, 2)
    for row, weights in zip(first.tolist(), probs.tolist()):
        assert len(set(row)) == 2 and all(weights[c] > 0 for c in row)  # no zero-weight picks
    many = mt.multinomial(mt.tensor([1.0, 3.0]), 4000, replacement=True)
    assert abs(many.data.mean() - 0.75) < 0.03
    mt.manual_seed(1)
    p = mt.randperm(10)
    assert sorted(p.tolist()) == list(range(10)) and p.dtype == np.int64
    mt.manual_seed(1)
    assert mt.randperm(10).tolist() == p.tolist()


# ----------------------------------------------------------------------------- pow fast path

def test_pow_whole_number_exponent_is_repeated_multiplication():
    x = np.random.default_rng(0).standard_normal((4, 32, 256)).astype(np.float32)
    for p in (3.0, 2, -2, 4, 7.0, -1, 1, 0):
        got = mt.pow(mt.tensor(x), p).data
        with np.errstate(divide="ignore"):
            expected = np.power(x.astype(np.float64), float(p))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=4e-6, err_msg=f"p={p}")
    assert mt.pow(mt.tensor(x), 1).data is not x
    assert np.array_equal(mt.pow(mt.tensor([0.0, np.nan, np.inf]), 0).data, [1.0, 1.0, 1.0])
    fractional = mt.pow(mt.tensor(x), 2.5).data      # not whole: NumPy's power (nan < 0)
    assert np.isnan(fractional[x < 0]).all()
    ints = mt.tensor(np.array([-2, 3])) ** 3          # integer tensors keep NumPy's rules
    assert ints.tolist() == [-8, 27]


def test_pow_fast_path_is_faster_than_float_power_on_negative_bases():
    import time
    x = mt.tensor(np.random.default_rng(1).standard_normal((4, 32, 256)).astype(np.float32))
    def best(fn):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)
    fast = best(lambda: mt.pow(x, 3.0))
    slow = best(lambda: np.power(x.data, 3.0))   # NumPy's float power: ~1.5 ms here
    assert fast * 10 < slow, (fast, slow)         # measured ~100x (15 us vs 1.5 ms)


# ----------------------------------------------------------------------------- errors

ERRORS = [
    (lambda: mt.max(mt.zeros(2, 3), 2), IndexOutOfRange, "max: axis 2 is out of range"),
    (lambda: mt.zeros(2, 3).min(dim=-3), IndexOutOfRange, "min: axis -3 is out of range"),
    (lambda: mt.max(mt.zeros(0, 3), 1), ShapeError, "max: cannot reduce an empty tensor"),
    (lambda: mt.zeros(2, 3).max((0, 1)), TypeError, "max: dim must be an int"),
    (lambda: mt.zeros(2, 3).max(1, axis=0), TypeError, "max: got both dim=1 and axis=0"),
    (lambda: mt.argmax(mt.zeros(2, 3), 5), IndexOutOfRange, "argmax: axis 5 is out of range"),
    (lambda: mt.topk(mt.zeros(2, 3), 4), IndexOutOfRange, r"topk: k \(4\) is out of range"),
    (lambda: mt.topk(mt.zeros(2, 3), 1, dim=2), IndexOutOfRange, "topk: axis 2"),
    (lambda: mt.topk(mt.zeros(3), 1.5), TypeError, "topk: k must be an int"),
    (lambda: mt.sort(mt.zeros(2, 3), 3), IndexOutOfRange, "sort: axis 3"),
    (lambda: mt.gather(mt.zeros(2, 3), 1, mt.zeros(2, 2)), DTypeError,
     "gather: index must be an integer"),
    (lambda: mt.gather(mt.zeros(2, 3), 1, np.array([0, 1])), ShapeError,
     "gather: index must have as many dims"),
    (lambda: mt.gather(mt.zeros(2, 3), 1, np.array([[0], [1], [2]])), ShapeError,
     "gather: index of shape .* is larger"),
    (lambda: mt.gather(mt.zeros(2, 3), 1, np.array([[3]])), IndexOutOfRange,
     "gather: index 3 is out of range for dim 1 of size 3"),
    (lambda: mt.gather(mt.zeros(2, 3), 2, np.array([[0]])), IndexOutOfRange, "gather: axis 2"),
    (lambda: mt.zeros(2, 3).scatter_(0, np.array([[0]]), mt.zeros(1, 1, dtype=mt.float64)),
     DTypeError, "scatter: src dtype float64"),
    (lambda: mt.zeros(2, 3).scatter_(0, np.array([[-1]]), 1.0), IndexOutOfRange, "scatter: index -1"),
    (lambda: mt.zeros(2, 3).scatter(0, np.array([[0]])), TypeError, "scatter: give exactly one"),
    (lambda: mt.zeros(2, 3).scatter(0, np.array([[0]]), 1.0, reduce="add"), NotImplementedError,
     "scatter: reduce="),
    (lambda: mt.zeros(2, 3).index_select(1, np.array([[0]])), ShapeError, "index_select: index must be 1-D"),
    (lambda: mt.zeros(2, 3).index_select(1, np.array([0.0])), DTypeError, "index_select: index must be an integer"),
    (lambda: mt.zeros(2, 3).index_select(0, np.array([2])), IndexOutOfRange, "index_select: index 2"),
    (lambda: mt.zeros(2, 3).index_fill_(1, np.array([3]), 1.0), IndexOutOfRange, "index_fill: index 3"),
    (lambda: mt.zeros(2, 3).masked_select(np.array([1, 0, 1])), DTypeError, "masked_select: mask must be a bool"),
    (lambda: mt.zeros(2, 3).masked_select(np.ones(2, dtype=bool)), ShapeError, "masked_select: shapes"),
    (lambda: mt.cumsum(mt.zeros(2, 3), 2), IndexOutOfRange, "cumsum: axis 2"),
    (lambda: mt.cumsum(mt.zeros(2, 3), None), TypeError, "cumsum: dim is required"),
    (lambda: mt.tril(mt.zeros(3)), ShapeError, "tril: input must have at least 2 dims"),
    (lambda: mt.triu(mt.zeros(3, 3), 0.5), TypeError, "triu: diagonal must be an int"),
    (lambda: mt.bmm(mt.zeros(2, 3), mt.zeros(3, 2)), ShapeError, "bmm: both arguments must be 3-D"),
    (lambda: mt.bmm(mt.zeros(2, 3, 4), mt.zeros(3, 4, 2)), ShapeError, "bmm: shapes"),
    (lambda: mt.zeros(2, 3).mm(mt.zeros(2, 3)), ShapeError, "matmul: shapes"),
    (lambda: mt.outer(mt.zeros(2, 1), mt.zeros(3)), ShapeError, "outer: both arguments must be 1-D"),
    (lambda: mt.zeros(2, 3, 4).t(), ShapeError, "t: expects a tensor with <= 2 dims"),
    (lambda: mt.einsum("ij,jk->ik", mt.zeros(2, 3)), ValueError, "einsum: equation .* has 2 operand"),
    (lambda: mt.einsum("ij,jk->ik", mt.zeros(2, 3), mt.zeros(4, 2)), ShapeError,
     "einsum: subscript 'j' has size 4"),
    (lambda: mt.einsum("ijk", mt.zeros(2, 3)), ShapeError, "einsum: subscript 'ijk' names 3 dims"),
    (lambda: mt.einsum("ij->k", mt.zeros(2, 3)), ValueError, "einsum: output subscripts"),
    (lambda: mt.einsum("i1->i", mt.zeros(2, 3)), ValueError, "einsum: invalid subscript"),
    (lambda: mt.einsum("ij->ii", mt.zeros(2, 3)), ValueError, "einsum: output subscripts"),
    (lambda: mt.zeros(2, 3).norm(p=0), ValueError, "norm: p must be a positive number"),
    (lambda: mt.zeros(2, 3).norm(dim=2), IndexOutOfRange, "norm: axis 2"),
    (lambda: mt.tensor(np.array([1, 2])).norm(), DTypeError, "norm: expected a floating-point"),
    (lambda: mt.multinomial(mt.tensor([0.5, -0.1]), 1), ValueError, "multinomial: weights must be finite and non-negative"),
    (lambda: mt.multinomial(mt.tensor([0.0, 0.0]), 1), ValueError, "multinomial: every row"),
    (lambda: mt.multinomial(mt.tensor([0.5, 0.5]), 3), ValueError, "multinomial: cannot draw 3 samples"),
    (lambda: mt.multinomial(mt.tensor([0.5, 0.0, 0.0]), 2), ValueError, "multinomial: not enough categories"),
    (lambda: mt.multinomial(mt.zeros(2, 2, 2), 1), ShapeError, "multinomial: weights must be 1-D or 2-D"),
    (lambda: mt.multinomial(mt.tensor([1.0]), 1, generator=object()), NotImplementedError,
     "multinomial: generator= is not supported"),
    (lambda: mt.multinomial(mt.tensor([1.0]), 0), ValueError, "multinomial: num_samples"),
    (lambda: mt.randperm(-1), ValueError, "randperm: n must be a non-negative int"),
    (lambda: mt.randperm(3, device="cuda"), ValueError, "randperm: only the 'cpu' device"),
    (lambda: mt.tensor(np.array([1, 2])).normal_(), DTypeError, "normal_: expects a floating-point"),
    (lambda: mt.zeros(3).uniform_(2.0, 1.0), ValueError, "uniform_: expects from <= to"),
    (lambda: mt.zeros(3).normal_(generator=object()), NotImplementedError, "normal_: generator="),
    (lambda: mt.repeat_interleave(mt.zeros(3), np.array([1, 2])), ShapeError,
     "repeat_interleave: repeats of shape"),
    (lambda: mt.repeat_interleave(mt.zeros(3), 1.5), DTypeError, "repeat_interleave: repeats must be an int"),
    (lambda: mt.repeat_interleave(mt.zeros(3), -1), ValueError, "repeat_interleave: repeats must be non-negative"),
    (lambda: mt.zeros(2, 3).repeat(2), ShapeError, "repeat: number of repeat sizes"),
    (lambda: mt.zeros(2, 3).flip(0, 0), ValueError, "flip: dim appears multiple times"),
    (lambda: mt.zeros(2, 3).flip(2), IndexOutOfRange, "flip: axis 2"),
    (lambda: mt.unbind(mt.tensor(1.0)), ShapeError, "unbind: a 0-d tensor"),
    (lambda: mt.unbind(mt.zeros(2), 1), IndexOutOfRange, "unbind: axis 1"),
    (lambda: mt.square(mt.tensor([True])), DTypeError, "square: a bool tensor"),
]


@pytest.mark.parametrize("call,error,message", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_top_level_names_exist():
    names = ("exp log sin cos sqrt rsqrt tanh sigmoid relu softmax log_softmax sum mean max min "
             "abs pow square sign argmax argmin topk sort multinomial tril triu einsum bmm outer "
             "cumsum gather nonzero randperm repeat_interleave flatten unbind clamp").split()
    assert [n for n in names if not callable(getattr(mt, n, None))] == []
    methods = ("sin cos t mm bmm norm square rsqrt sign repeat flip cumsum gather scatter_ "
               "index_select index_fill_ masked_select nonzero topk sort unbind normal_ "
               "uniform_").split()
    assert [m for m in methods if not callable(getattr(mt.Tensor, m, None))] == []
