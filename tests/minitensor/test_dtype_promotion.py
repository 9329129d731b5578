"""PyTorch's dtype rules: what ``mt.tensor`` makes of Python data, and type promotion in
binary ops (``dtypes.result_dtype``), checked against a hand-written table and against
torch itself (skipped without it).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F
from minitensor.dtypes import promote_types, result_dtype

f16, f32, f64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
i8, i32, i64, u8, b = (np.dtype(t) for t in (np.int8, np.int32, np.int64, np.uint8, np.bool_))


def t(dtype, shape=(3,)):
    """A tensor of ``dtype`` with small positive values (valid for every op below)."""
    return mt.tensor(np.arange(1, 1 + int(np.prod(shape))).reshape(shape) % 2 == 0
                     if dtype == b else np.arange(1, 1 + int(np.prod(shape))).reshape(shape),
                     dtype=dtype)


# ----------------------------------------------------------------------------- tensor(data)

@pytest.mark.parametrize("data,dtype", [
    ([1, 2, 3], i64), (7, i64), ([1.0, 2.0], f32), (2.5, f32), ([1, 2.5], f32), ([True, False], b),
    (True, b), ([True, 2], i64), ([], f32), ([[1, 2], [3, 4]], i64),
    (np.array([1, 2], np.int32), i32), (np.array([1.0]), f64), (np.array([1.0], np.float16), f16),
    (np.array([1], np.uint8), u8),
])
def test_tensor_from_data_follows_torch(data, dtype):
    assert mt.tensor(data).dtype == dtype


def test_tensor_from_data_matches_torch():
    torch = pytest.importorskip("torch")
    for data in ([1, 2, 3], 7, [1.0, 2.0], 2.5, [1, 2.5], [True, False], True, [True, 2], [],
                 np.array([1, 2], np.int32), np.array([1.0]), np.array([1], np.uint8)):
        expected = str(torch.tensor(data).dtype).removeprefix("torch.")
        assert mt.tensor(data).dtype == mt.as_dtype(expected), data


# ----------------------------------------------------------------------------- the rule itself

# (operand, operand, result): the cases the rule exists for (dtypes.py's table).
TABLE = [
    (t(f32), 2.0, f32),                    # a Python float never widens a float tensor
    (t(i64), 2.5, f32),                    # ... but raises an int tensor to the default float
    (t(i64), t(f32), f32),                 # the float category wins, at its own width
    (t(f32), t(f64), f64),                 # same group, same category: widen
    (t(f32), t(f64, ()), f32),             # a 0-dim tensor never widens within a category
    (t(i32), t(f64, ()), f64),             # ... but raises the category, with its own dtype
    (t(i32), 5, i32),                      # a Python int never widens an int tensor
    (t(u8), t(i64, ()), u8),
    (t(b), 5, i64), (t(b), 2.5, f32), (t(b), True, b),
    (t(i8), t(u8), np.dtype(np.int16)),    # int8 and uint8 meet at int16
    (t(i64), t(f16), f16),                 # NumPy would say float64
    (t(f64, ()), t(f32, ()), f64),         # two 0-dim tensors: the usual rule between them
    (t(i64, ()), 2.5, f32),
]


@pytest.mark.parametrize("a,b_,expected", TABLE)
def test_result_dtype_table(a, b_, expected):
    assert result_dtype(a, b_) == expected
    assert result_dtype(b_, a) == expected  # symmetric
    assert (a + b_).dtype == expected and (b_ + a).dtype == expected
    assert (a * b_).dtype == expected and F.maximum(a, b_).dtype == expected


def test_true_division_of_integers_gives_the_default_float():
    assert (t(i64) / 2).dtype == f32 and (t(i64) / t(i32)).dtype == f32
    assert (t(i64) / t(f64, ())).dtype == f64  # the 0-dim float raises the category
    assert (t(f16) / 2).dtype == f16
    np.testing.assert_allclose((mt.tensor([1, 2, 3]) / 2).data, [0.5, 1.0, 1.5])


def test_pow_with_a_python_exponent():
    assert (t(i64) ** 2).dtype == i64 and (t(i64) ** 2.5).dtype == f32
    assert (t(f32) ** 2.0).dtype == f32 and (2.5 ** t(i64)).dtype == f32


def test_promote_types_is_by_category_first():
    assert promote_types(i64, f16) == f16 and promote_types(b, u8) == u8
    assert promote_types(f32, f64) == f64 and promote_types(i32, i64) == i64


def test_no_float64_leaks_into_a_float32_graph():
    """The reason for the rule: int64 data (the default for Python ints) and 0-dim float64
    scalars must not turn a float32 model's activations and gradients into float64."""
    w = mt.randn(3, requires_grad=True)
    positions = mt.arange(3)                     # int64
    scale = mt.tensor(np.float64(0.5))           # a 0-dim float64
    y = (w * positions + scale) / 3 * 2.0
    assert y.dtype == f32
    y.sum().backward()
    assert w.grad.dtype == f32


def test_mixed_width_gradients_flow_back_in_each_inputs_dtype():
    a = mt.randn(3, requires_grad=True)                      # float32, dims
    b_ = mt.randn(3, dtype="float64", requires_grad=True)    # float64, dims -> widen
    s = mt.tensor(np.float64(1.5), requires_grad=True)       # float64, 0-dim -> no widening
    out = (a * b_).sum() + (a * s).sum()
    assert (a * b_).dtype == f64 and (a * s).dtype == f32
    out.backward()
    assert a.grad.dtype == f32 and b_.grad.dtype == f64 and s.grad.dtype == f64
    np.testing.assert_allclose(a.grad.data, b_.data + 1.5, rtol=1e-6)
    np.testing.assert_allclose(s.grad.data, a.data.sum(), rtol=1e-6)


def test_comparisons_compare_in_the_promoted_dtype():
    x = mt.tensor([0.1, 0.5])                   # float32
    assert (x == 0.1).tolist() == [True, False]  # 0.1 rounded to float32, as torch
    assert (x == mt.tensor(np.float64(0.1))).tolist() == [True, False]
    big = mt.tensor([2 ** 24 + 1])              # int64; float32 cannot hold it
    assert (big > 2.0 ** 24).tolist() == [False]  # compared in float32, as torch


# ----------------------------------------------------------------------------- against torch

DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]
SCALARS = [True, 3, 2.5]


def _operands():
    """Every tensor dtype with dims, 0-dim, and the Python scalars."""
    for name in DTYPES:
        yield ("dims", name)
        yield ("0-dim", name)
    for s in SCALARS:
        yield ("scalar", s)


def _make(kind, spec, torch):
    if kind == "scalar":
        return spec, spec
    shape = (2, 3) if kind == "dims" else ()
    values = np.arange(1, 7).reshape(2, 3)[: shape[0] if shape else 1].reshape(shape or ()) \
        if shape else np.array(2)
    array = (values % 2 == 0) if spec == "bool" else values.astype(spec)
    return mt.tensor(array), torch.tensor(array)


PAIRS = [(a, b_) for a, b_ in itertools.product(list(_operands()), repeat=2)
         if not (a[0] == "scalar" and b_[0] == "scalar")]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum", "where", "lt",
                                "eq", "pow"])
def test_binary_ops_match_torch(op):
    torch = pytest.importorskip("torch")
    checked = 0
    for (ka, sa), (kb, sb) in PAIRS:
        ours_a, theirs_a = _make(ka, sa, torch)
        ours_b, theirs_b = _make(kb, sb, torch)
        try:
            expected = _torch_op(torch, op, theirs_a, theirs_b)
        except (RuntimeError, TypeError):
            continue  # torch refuses (bool - bool, maximum with a scalar...): not compared
        got = _our_op(op, ours_a, ours_b)
        want = str(expected.dtype).removeprefix("torch.")
        assert got.dtype == mt.as_dtype(want), (op, ka, sa, kb, sb, got.dtype, want)
        np.testing.assert_allclose(got.data.astype(np.float64),
                                   expected.double().numpy(), rtol=1e-3, err_msg=str((op, sa, sb)))
        checked += 1
    assert checked > 100


def _torch_op(torch, op, a, b_):
    if op == "where":
        cond = torch.tensor([[True, False, True], [False, True, False]])
        return torch.where(cond, a, b_)
    if op == "maximum" or op == "minimum":
        if not (isinstance(a, torch.Tensor) and isinstance(b_, torch.Tensor)):
            raise TypeError("torch.maximum takes tensors only")
        return getattr(torch, op)(a, b_)
    if op == "pow" and not isinstance(a, torch.Tensor):
        return a ** b_
    return {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
            "lt": torch.lt, "eq": torch.eq, "pow": torch.pow}[op](a, b_)


def _our_op(op, a, b_):
    if op == "where":
        cond = mt.tensor([[True, False, True], [False, True, False]])
        return mt.where(cond, a, b_)
    if isinstance(a, mt.Tensor):
        return {"add": lambda: a + b_, "sub": lambda: a - b_, "mul": lambda: a * b_,
                "div": lambda: a / b_, "maximum": lambda: F.maximum(a, b_),
                "minimum": lambda: F.minimum(a, b_), "lt": lambda: a < b_,
                "eq": lambda: a == b_, "pow": lambda: a ** b_}[op]()
    return {"add": lambda: a + b_, "sub": lambda: a - b_, "mul": lambda: a * b_,
            "div": lambda: a / b_, "lt": lambda: b_ > a, "eq": lambda: b_ == a,
            "pow": lambda: a ** b_}[op]()


def test_result_dtype_matches_torch_result_type():
    torch = pytest.importorskip("torch")
    for (ka, sa), (kb, sb) in PAIRS:
        ours_a, theirs_a = _make(ka, sa, torch)
        ours_b, theirs_b = _make(kb, sb, torch)
        want = str(torch.result_type(theirs_a, theirs_b)).removeprefix("torch.")
        assert result_dtype(ours_a, ours_b) == mt.as_dtype(want), (ka, sa, kb, sb)


def test_clamp_cat_and_stack_promote_as_torch():
    assert F.clamp(t(i64), 0.5, None).dtype == f32 and F.clamp(t(i64), 1, 2).dtype == i64
    assert mt.cat([t(f32), t(i64)]).dtype == f32 and mt.cat([t(f32), t(f64)]).dtype == f64
    assert mt.stack([t(f32), t(i64)]).dtype == f32
    a = mt.ones(2, requires_grad=True)
    b_ = mt.ones(2, dtype=mt.float64, requires_grad=True)
    mt.cat([a, b_]).sum().backward()  # the float32 input's gradient comes back float32
    assert a.grad.dtype == f32 and b_.grad.dtype == f64


def test_clamp_cat_and_stack_match_torch():
    torch = pytest.importorskip("torch")
    for da, db in itertools.product(DTYPES, repeat=2):
        ours = [t(np.dtype(da)), t(np.dtype(db))]
        theirs = [torch.tensor(x.data) for x in ours]
        for name in ("cat", "stack"):
            want = str(getattr(torch, name)(theirs).dtype).removeprefix("torch.")
            assert getattr(mt, name)(ours).dtype == mt.as_dtype(want), (name, da, db)
    for bound in (0.5, 2, True):
        for name in DTYPES[1:]:
            want = torch.clamp(torch.tensor(t(np.dtype(name)).data), min=bound).dtype
            assert F.clamp(t(np.dtype(name)), bound).dtype == mt.as_dtype(str(want)), (name, bound)
