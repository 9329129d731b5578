"""Sample inputs for every op in ``minitensor.ops.REGISTRY``, keyed by the op's name.

The one table of op samples: the tests (``tests/minitensor/test_ops_gradcheck.py``) and
the self-test (``python -m transformer gradcheck``) both gradcheck every op on it.

``SAMPLES[name]`` is a list of ``Sample``s. A sample builds the op's *tensor* inputs
(float64 arrays, possibly non-contiguous views) from a NumPy generator and carries the
op's keyword attributes, so a test can call ``REGISTRY[name].apply(*tensors, **attrs)``
directly, bypassing the functional layer. Between them, the samples of an op cover
broadcasting, size-1 dims, negative axes, keepdims, 0-d tensors and non-contiguous
(transposed / strided) inputs wherever the op accepts them.

Adding an op to the registry without adding samples here fails
``test_ops_gradcheck.py::test_every_registered_op_has_samples`` (and the self-test).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Maker = Callable[[np.random.Generator], np.ndarray]


@dataclass
class Sample:
    """One call of one op: input makers, keyword attributes and gradcheck tolerances."""

    desc: str
    makers: list[Maker]
    attrs: dict = field(default_factory=dict)
    fd_eps: float = 1e-6
    atol: float = 1e-7
    rtol: float = 1e-6
    pairwise: Callable | None = None  # makes all inputs at once (for inputs that share values)
    # A documented departure from the true derivative (e.g. embedding's padding_idx row gets
    # no gradient, as in torch): applied to the numeric gradients before comparing.
    numeric_fix: Callable[[list], list] | None = None

    def make(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Fresh input arrays (the tests perturb them in place)."""
        if self.pairwise is not None:
            return list(self.pairwise(rng))
        return [m(rng) for m in self.makers]


# ----------------------------------------------------------------------------- makers

def r(*shape) -> Maker:
    """Standard normal, contiguous."""
    return lambda rng: rng.standard_normal(shape)


def away(*shape, lo=0.2) -> Maker:
    """Normal values pushed at least ``lo`` away from 0 (for relu/abs kinks, ties)."""
    def make(rng):
        x = rng.standard_normal(shape)
        return np.where(x >= 0, x + lo, x - lo)
    return make


def pos(*shape) -> Maker:
    """Uniform in [0.5, 2]: inputs of log, sqrt, pow bases, divisors."""
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def tr(maker_shape: tuple, base: Callable = r) -> Maker:
    """A transposed (non-contiguous) view with the given shape."""
    def make(rng):
        return base(*reversed(maker_shape))(rng).T
    return make


def strided(*shape, base: Callable = r) -> Maker:
    """A view taking every second element of the last axis (non-contiguous)."""
    def make(rng):
        x = base(*shape[:-1], 2 * shape[-1])(rng)
        return x[..., ::2]
    return make


def S(desc, *makers, fd_eps=1e-6, atol=1e-7, rtol=1e-6, pairwise=None, numeric_fix=None,
      **attrs) -> Sample:
    return Sample(desc, list(makers), attrs, fd_eps, atol, rtol, pairwise, numeric_fix)


def _zero_row(row: int):
    """numeric_fix for embedding's padding_idx: that row of the weight gradient is 0."""
    def fix(grads):
        grads[0][row] = 0.0
        return grads
    return fix


# ----------------------------------------------------------------------------- fixed data
_fixed = np.random.default_rng(7)


def _binary(a: Callable = r, b: Callable = r) -> list[Sample]:
    """The broadcast table of HIPS binary_ufunc_check and teenygrad, per binary op."""
    return [
        S("same shape", a(3, 4), b(3, 4)),
        S("(3,1) with (1,4)", a(3, 1), b(1, 4)),
        S("(2,3,4) with (4,)", a(2, 3, 4), b(4)),
        S("(4,) with (2,3,4)", a(4), b(2, 3, 4)),
        S("0-d with (2,3)", a(), b(2, 3)),
        S("(2,3) with 0-d", a(2, 3), b()),
        S("0-d with 0-d", a(), b()),
        S("partial broadcast (3,4,2,2) with (1,4,1,1)", a(3, 4, 2, 2), b(1, 4, 1, 1)),
        S("transposed (4,3) with (1,3)", tr((4, 3), a), b(1, 3)),
        S("strided (2,3) with transposed (2,3)", strided(2, 3, base=a), tr((2, 3), b)),
    ]


def _unary(maker: Callable = r, **attrs) -> list[Sample]:
    return [
        S("(3,4)", maker(3, 4), **attrs),
        S("0-d", maker(), **attrs),
        S("(2,1,3)", maker(2, 1, 3), **attrs),
        S("transposed (4,3)", tr((4, 3), maker), **attrs),
        S("strided (2,3)", strided(2, 3, base=maker), **attrs),
    ]


def _ties(kind: str):
    """a, b with some exactly equal entries (ties of two: central differences give 1/2)."""
    def make(rng):
        a = rng.standard_normal((3, 4))
        b = rng.standard_normal((3, 4))
        b[0, :] = a[0, :]
        b[2, 1] = a[2, 1]
        return a, b
    return make


def _reduction_samples(maker: Callable = r, **extra) -> list[Sample]:
    return [
        S("all axes", maker(3, 4), axis=None, keepdims=False, **extra),
        S("axis 0", maker(3, 4), axis=0, keepdims=False, **extra),
        S("axis -1 keepdims", maker(2, 3, 4), axis=-1, keepdims=True, **extra),
        S("axes (0, 2)", maker(2, 3, 4), axis=(0, 2), keepdims=False, **extra),
        S("axes (-1, 0) keepdims", maker(2, 3, 4), axis=(-1, 0), keepdims=True, **extra),
        S("size-1 axis", maker(3, 1, 2), axis=1, keepdims=False, **extra),
        S("0-d input", maker(), axis=None, keepdims=False, **extra),
        S("transposed (4,3) axis 1", tr((4, 3), maker), axis=1, keepdims=False, **extra),
        S("strided (2,3) keepdims", strided(2, 3, base=maker), axis=None, keepdims=True, **extra),
    ]


def _max_ties(rng):
    """Rows whose extreme value appears exactly twice (ties of two), and one with no tie."""
    x = rng.standard_normal((3, 4))
    x[0, 3] = x[0, 0] = 5.0       # max tie
    x[1, 1] = x[1, 2] = -5.0      # min tie
    return (x,)


_idx_repeat = np.array([0, 2, 0, 2, 1])
_bool_mask = np.array([[True, False, True, True], [False, False, True, False],
                       [True, True, False, False]])
_seg_target = np.array([1, 0, 3, 2])
_ce_target_ignored = np.array([1, -100, 3, 2])
_emb_idx = np.array([[0, 2, 2], [4, 1, 0]])


def _attention_masks():
    m = _fixed.standard_normal((2, 2, 3, 4))
    blocked = np.zeros((1, 2, 3, 4))
    blocked[0, 0, 1, :] = -np.inf          # one query row sees no key
    blocked[0, 1, :, 3] = -np.inf
    return m, blocked


_att_float_mask, _att_blocked_mask = _attention_masks()


SAMPLES: dict[str, list[Sample]] = {
    # ------------------------------------------------------------------ elementwise
    "Add": _binary(),
    "Sub": _binary(),
    "Mul": _binary(),
    "Div": _binary(r, pos),
    "Pow": _binary(pos, r),
    "Maximum": _binary() + [S("ties", pairwise=_ties("max"))],
    "Minimum": _binary() + [S("ties", pairwise=_ties("min"))],
    "Neg": _unary(),
    "Exp": _unary(),
    "Log": _unary(pos),
    "Sqrt": _unary(pos),
    "Tanh": _unary(),
    "Sigmoid": _unary() + [S("large |x|", lambda rng: np.array([-30.0, -5.0, 5.0, 30.0]))],
    "ReLU": _unary(away),
    "Abs": _unary(away),
    "Clone": _unary(),
    "PowScalar": [
        *_unary(r, exponent=2),
        S("cube of negatives", r(3, 4), exponent=3),
        S("sqrt", pos(3, 4), exponent=0.5),
        S("negative fractional", pos(2, 3), exponent=-1.5),
        S("zero exponent", r(2, 3), exponent=0),
        S("0-d, exponent -1", pos(), exponent=-1),
    ],
    "Clamp": [
        S("both bounds", r(3, 4), lo=-0.5, hi=0.5),
        S("min only", r(3, 4), lo=0.1, hi=None),
        S("max only, transposed", tr((4, 3)), lo=None, hi=-0.1),
        S("0-d", r(), lo=-0.5, hi=2.0),
    ],
    "Where": [
        S("same shape", r(3, 4), r(3, 4), condition=_bool_mask),
        S("broadcast cond (3,1), a (3,4), b (4,)", r(3, 4), r(4),
          condition=np.array([[True], [False], [True]])),
        S("0-d a and b with (3,4) cond", r(), r(), condition=_bool_mask),
        S("transposed a", tr((3, 4)), r(1, 4), condition=_bool_mask),
    ],
    "MaskedFill": [
        S("same-shape mask", r(3, 4), mask=_bool_mask, value=-1.5),
        S("broadcast mask (4,)", r(2, 3, 4), mask=np.array([True, False, False, True]), value=0.0),
        S("strided", strided(3, 4), mask=_bool_mask, value=3.0),
        S("0-d", r(), mask=np.array(True), value=2.0),
    ],
    "Cast": [
        S("float64 -> float64", r(3, 4), dtype=np.dtype(np.float64)),
        # linear op: a large step is exact up to float32 rounding of the output
        S("float64 -> float32", r(3, 4), dtype=np.dtype(np.float32), fd_eps=1e-2, atol=1e-5, rtol=1e-4),
    ],
    # ------------------------------------------------------------------ reductions
    "Sum": _reduction_samples(),
    "Mean": _reduction_samples(),
    "Max": _reduction_samples() + [S("ties of two, axis 1", pairwise=_max_ties, axis=1, keepdims=False)],
    "Min": _reduction_samples() + [S("ties of two, axis -1", pairwise=_max_ties, axis=-1, keepdims=True)],
    "Var": [s for s in _reduction_samples(correction=1) if s.desc not in ("0-d input", "size-1 axis")] + [
        S("size-1 axis, biased", r(3, 1, 2), axis=1, keepdims=False, correction=0),
        S("biased axis 0", r(3, 4), axis=0, keepdims=False, correction=0),
        S("correction 2", r(5, 3), axis=0, keepdims=True, correction=2),
    ],
    "LogSumExp": _reduction_samples() + [
        S("-inf entries", lambda rng: np.where(_bool_mask, rng.standard_normal((3, 4)), -np.inf),
          axis=1, keepdims=False),
    ],
    # ------------------------------------------------------------------ shape
    "Reshape": [
        S("(2,3,4) -> (6,4)", r(2, 3, 4), shape=(6, 4)),
        S("(3,4) -> (12,)", r(3, 4), shape=(12,)),
        S("0-d -> (1,1)", r(), shape=(1, 1)),
        S("(1,) -> 0-d", r(1), shape=()),
        S("transposed (4,3) -> (2,6)", tr((4, 3)), shape=(2, 6)),
    ],
    "Permute": [
        S("(2,3,4) by (2,0,1)", r(2, 3, 4), axes=(2, 0, 1)),
        S("2-D transpose", r(3, 4), axes=(1, 0)),
        S("0-d", r(), axes=()),
        S("strided input", strided(2, 3, 4), axes=(1, 2, 0)),
    ],
    "Expand": [
        S("(3,1) -> (2,3,4)", r(3, 1), shape=(2, 3, 4)),
        S("0-d -> (2,3)", r(), shape=(2, 3)),
        S("(1,) -> (5,)", r(1), shape=(5,)),
        S("transposed (1,3) -> (4,3)", tr((1, 3)), shape=(4, 3)),
    ],
    "GetItem": [
        S("int", r(3, 4), index=1),
        S("negative int and slice", r(3, 4), index=(-1, slice(1, None))),
        S("negative step", r(3, 4), index=(slice(None, None, -1), slice(3, 0, -2))),
        S("int array with repeats", r(3, 4), index=_idx_repeat[:4] % 3),
        S("int arrays, two axes", r(3, 4), index=(np.array([0, 2, 0]), np.array([1, 1, 3]))),
        S("int array with repeats on axis 1", r(2, 3), index=(slice(None), _idx_repeat)),
        S("bool mask", r(3, 4), index=_bool_mask),
        S("bool mask on axis 0", r(3, 2), index=np.array([True, False, True])),
        S("None and Ellipsis", r(2, 3, 4), index=(None, Ellipsis, 1)),
        S("0-d result from 1-D", r(4), index=2),
        S("transposed input", tr((4, 3)), index=(slice(0, 2), np.array([2, 0, 2]))),
    ],
    "SetItem": [
        S("slice <- (2,4)", r(3, 4), r(2, 4), index=slice(0, 2)),
        S("slice <- broadcast (4,)", r(3, 4), r(4), index=slice(1, None)),
        S("int array (no repeats)", r(4, 3), r(2, 3), index=np.array([3, 0])),
        S("bool mask <- 0-d", r(3, 4), r(), index=_bool_mask),
        S("int <- (4,)", tr((3, 4)), r(4), index=-1),
        S("negative step", r(3, 4), r(3, 2), index=(slice(None, None, -1), slice(None, None, 2))),
    ],
    "Cat": [
        S("axis 0, three inputs", r(2, 3), r(1, 3), r(3, 3), axis=0),
        S("axis 1", r(2, 1), r(2, 3), axis=1),
        S("last axis of 3-D, transposed", tr((2, 3, 4)), r(2, 3, 1), axis=2),
        S("single input", r(3,), axis=0),
    ],
    "Stack": [
        S("axis 0", r(2, 3), r(2, 3), r(2, 3), axis=0),
        S("axis 2 (last)", r(2, 3), tr((2, 3)), axis=2),
        S("0-d inputs", r(), r(), axis=0),
    ],
    # ------------------------------------------------------------------ linalg
    "MatMul": [
        S("2-D", r(3, 4), r(4, 5)),
        S("1-D @ 2-D", r(4), r(4, 3)),
        S("2-D @ 1-D", r(3, 4), r(4)),
        S("1-D @ 1-D", r(4), r(4)),
        S("batched broadcast (2,1,3,4) @ (3,4,2)", r(2, 1, 3, 4), r(3, 4, 2)),
        S("batched @ 2-D", r(2, 3, 4), r(4, 2)),
        S("1-D @ batched", r(4), r(2, 4, 3)),
        S("transposed operands", tr((3, 4)), tr((4, 2))),
        S("strided operand", strided(3, 4), r(4, 2)),
        S("size-1 dims", r(1, 4), r(4, 1)),
    ],
    "Linear": [
        S("with bias", r(3, 4), r(5, 4), r(5)),
        S("3-D input", r(2, 3, 4), r(5, 4), r(5)),
        S("no bias", r(3, 4), r(2, 4)),
        S("1-D input", r(4), r(3, 4), r(3)),
        S("transposed weight and input", tr((3, 4)), tr((2, 4)), r(2)),
    ],
    "LinearActivation": [
        S("relu", r(3, 4), r(5, 4), r(5), activation="relu", p=0.0, seed=0),
        S("relu, dropout 0.3, 3-D", r(2, 3, 4), r(5, 4), r(5), activation="relu", p=0.3, seed=42),
        S("gelu, no bias", r(3, 4), r(2, 4), activation="gelu", p=0.0, seed=0),
        S("gelu, dropout 0.5, transposed", tr((3, 4)), tr((5, 4)), r(5), activation="gelu",
          p=0.5, seed=7),
        S("relu, 1-D input", r(4), r(3, 4), r(3), activation="relu", p=0.2, seed=3),
    ],
    # ------------------------------------------------------------------ fused
    "Softmax": [
        S("(3,5)", r(3, 5)),
        S("(2,3,4)", r(2, 3, 4)),
        S("size-1 last axis", r(3, 1)),
        S("transposed", tr((3, 4))),
        S("-inf entries", lambda rng: np.where(_bool_mask, rng.standard_normal((3, 4)), -np.inf)),
    ],
    "LogSoftmax": [
        S("(3,5)", r(3, 5)),
        S("(2,3,4)", r(2, 3, 4)),
        S("size-1 last axis", r(3, 1)),
        S("strided", strided(3, 4)),
    ],
    "CrossEntropy": [
        S(f"{red}", r(4, 5), target=_seg_target, ignore_index=-100, label_smoothing=0.0,
          reduction=red) for red in ("mean", "sum", "none")
    ] + [
        S("ignore_index, mean", r(4, 5), target=_ce_target_ignored, ignore_index=-100,
          label_smoothing=0.0, reduction="mean"),
        S("label smoothing 0.1, none", r(4, 5), target=_seg_target, ignore_index=-100,
          label_smoothing=0.1, reduction="none"),
        S("label smoothing and ignore_index=2, mean", tr((4, 5)), target=_seg_target,
          ignore_index=2, label_smoothing=0.2, reduction="mean"),
        S("one row", r(1, 3), target=np.array([2]), ignore_index=-100, label_smoothing=0.0,
          reduction="sum"),
    ],
    "LayerNorm": [
        S("weight and bias", r(3, 5), r(5), r(5), eps=1e-5, affine=(True, True)),
        S("3-D, no affine", r(2, 3, 4), eps=1e-5, affine=(False, False)),
        S("weight only", r(2, 4), r(4), eps=1e-5, affine=(True, False)),
        S("bias only, transposed", tr((4, 3)), r(3), eps=1e-5, affine=(False, True)),
        S("large eps", r(3, 4), r(4), r(4), eps=0.1, affine=(True, True)),
    ],
    "GELU": [
        S("exact", r(3, 4), approximate="none"),
        S("tanh", r(3, 4), approximate="tanh"),
        S("exact, wide range", lambda rng: np.linspace(-6, 6, 13), approximate="none"),
        S("tanh, transposed", tr((4, 3)), approximate="tanh"),
        S("0-d", r(), approximate="none"),
    ],
    "Dropout": [
        S("p=0.3", r(4, 5), p=0.3, seed=42),
        S("p=0.5, transposed", tr((5, 4)), p=0.5, seed=7),
        S("p=0 (identity)", r(3, 2), p=0.0, seed=1),
    ],
    "AddNorm": [
        S("weight and bias, p=0", r(3, 5), r(3, 5), r(5), r(5), eps=1e-5, affine=(True, True),
          p=0.0, seed=0),
        S("dropout p=0.3, 3-D", r(2, 3, 4), r(2, 3, 4), r(4), r(4), eps=1e-5,
          affine=(True, True), p=0.3, seed=11),
        S("transposed, weight only, p=0.5", tr((4, 3)), tr((4, 3)), r(3), eps=1e-5,
          affine=(True, False), p=0.5, seed=5),
        S("no affine, p=1 (branch dropped)", r(2, 4), r(2, 4), eps=0.1, affine=(False, False),
          p=1.0, seed=3),
    ],
    "AddDropout": [
        S("p=0.3", r(4, 5), r(4, 5), p=0.3, seed=42),
        S("p=0.5, transposed", tr((5, 4)), tr((5, 4)), p=0.5, seed=7),
        S("p=0 (a plain add)", r(3, 2), r(3, 2), p=0.0, seed=1),
    ],
    "Embedding": [
        S("repeated indices", r(5, 3), indices=_emb_idx, padding_idx=None),
        S("padding_idx", r(5, 3), indices=_emb_idx, padding_idx=0, numeric_fix=_zero_row(0)),
        S("0-d index", r(4, 2), indices=np.array(3), padding_idx=None),
        S("transposed weight", tr((5, 3)), indices=_emb_idx, padding_idx=2, numeric_fix=_zero_row(2)),
    ],
    # q (B, L, H*D), k (B, S, H*D), v (B, S, H*Dv), heads side by side. No weights and no
    # dropout: the fused kernel; otherwise the weights are materialized (and returned
    # with need_weights: two outputs, each checked with its own upstream gradient).
    "Attention": [
        S("fused, no mask", r(1, 3, 8), r(1, 5, 8), r(1, 5, 6), num_heads=2, scale=0.5),
        S("fused, causal", r(2, 4, 3), r(2, 4, 3), r(2, 4, 2), num_heads=1, is_causal=True,
          scale=0.6),
        S("fused, causal L < S", r(1, 2, 6), r(1, 4, 6), r(1, 4, 6), num_heads=2, is_causal=True,
          scale=1.0),
        S("fused, per-head float mask", r(2, 3, 4), r(2, 4, 4), r(2, 4, 4), num_heads=2,
          mask=_att_float_mask, scale=0.7),
        S("fused, fully blocked row, transposed query", tr((1, 3, 4)), r(1, 4, 4), r(1, 4, 6),
          num_heads=2, mask=_att_blocked_mask, scale=0.7),
        S("fused, packed qkv, causal", r(2, 4, 12), layout="qkv", num_heads=2, is_causal=True,
          scale=0.5),
        S("2 heads, no mask, dropout", r(2, 3, 4), r(2, 5, 4), r(2, 5, 6), num_heads=2, mask=None,
          scale=0.5, dropout_p=0.3, seed=11),
        S("fully blocked row, strided and transposed views, dropout", strided(1, 3, 4),
          tr((1, 4, 4)), r(1, 4, 2), num_heads=2, mask=_att_blocked_mask, scale=0.7,
          dropout_p=0.5, seed=3),
        S("one head, 2-D mask, dropout", r(3, 3, 2), r(3, 4, 2), r(3, 4, 3), num_heads=1,
          mask=_att_float_mask[0, 0], scale=1.0, dropout_p=0.2, seed=5),
        S("weights returned, packed kv, causal", r(2, 3, 4), r(2, 3, 8), layout="q,kv",
          num_heads=2, is_causal=True, scale=0.7, need_weights=True),
        S("weights returned, blocked row, dropout", r(1, 3, 4), r(1, 4, 4), r(1, 4, 2),
          num_heads=2, mask=_att_blocked_mask, scale=0.7, dropout_p=0.3, seed=8,
          need_weights=True),
        S("weights returned, packed qkv, per-head float mask", r(2, 3, 12), layout="qkv",
          num_heads=2, mask=_att_float_mask[:, :, :, :3], scale=0.5, need_weights=True),
    ],
}


# ----------------------------------------------------------------------------- issue 15 ops
# (torch.X functions: unary math, norm, triangles, gather/scatter, cumsum, einsum)

_gather_index = np.array([[2, 0, 2, 1], [0, 0, 1, 2]])      # repeats: gradients add up
_scatter_rows = np.array([[0, 2, 1, 0], [2, 1, 0, 1]])      # distinct rows per column
_scatter_cols = np.array([[3, 0], [1, 2], [0, 3]])          # distinct columns per row


def _zero_row_norm(rng):
    x = rng.standard_normal((3, 4))
    x[1] = 0.0                      # the norm of this row is 0: gradient 0 (central diffs too)
    return (x,)


SAMPLES.update({
    "Sin": _unary(),
    "Cos": _unary(),
    "Rsqrt": _unary(pos),
    "Square": _unary(),
    "Sign": _unary(away),           # away from 0, where sign jumps
    "Norm": [
        S("p=2, all", r(3, 4), p=2, axis=None, keepdims=False),
        S("p=2, axis 1 keepdims", r(3, 4), p=2, axis=(1,), keepdims=True),
        S("p=2, a zero row", pairwise=_zero_row_norm, p=2, axis=(1,), keepdims=False),
        S("p=1, axis 0", away(3, 4), p=1, axis=(0,), keepdims=False),
        S("p=3, axes (0, 2), transposed", tr((2, 3, 4), away), p=3, axis=(0, 2), keepdims=False),
        S("p=0.5, strided", strided(2, 3, base=away), p=0.5, axis=None, keepdims=False),
        S("p=2, 0-d", away(), p=2, axis=None, keepdims=False),
    ],
    "Tril": [
        S("square", r(4, 4), diagonal=0),
        S("wide, diagonal 1", r(3, 5), diagonal=1),
        S("batched, diagonal -1, transposed", tr((2, 4, 3)), diagonal=-1),
    ],
    "Triu": [
        S("square", r(4, 4), diagonal=0),
        S("tall, diagonal -1", r(5, 3), diagonal=-1),
        S("batched, diagonal 2, strided", strided(2, 3, 4), diagonal=2),
    ],
    "Gather": [
        S("axis 0, repeated rows", r(3, 4), index=_gather_index, axis=0),
        S("axis 1, index smaller than x", r(3, 5), index=_gather_index[:, :3] + 1, axis=1),
        S("3-D, last axis, transposed", tr((2, 3, 4)), index=np.array([[[3, 0], [1, 1], [2, 3]]] * 2),
          axis=2),
        S("1-D", r(5), index=np.array([4, 0, 4]), axis=0),
    ],
    "Scatter": [
        S("src, axis 0, src larger than index", r(3, 4), r(3, 5), index=_scatter_rows, axis=0),
        S("src, axis 1, transposed x", tr((3, 4)), r(3, 2), index=_scatter_cols, axis=1),
        S("value, axis 1", r(3, 4), index=_scatter_cols, axis=1, value=-2.0),
        S("src, 1-D", r(5), r(3), index=np.array([4, 0, 2]), axis=0),
    ],
    "CumSum": [
        S("axis 0", r(4, 3), axis=0),
        S("axis 1, transposed", tr((3, 4)), axis=1),
        S("3-D last axis, strided", strided(2, 3, 4), axis=2),
        S("1-D", r(6), axis=0),
    ],
    "Einsum": [
        S("matmul", r(3, 4), r(4, 2), inputs=["ij", "jk"], output="ik"),
        S("batched matmul, transposed", r(2, 3, 4), tr((2, 4, 5)), inputs=["bij", "bjk"],
          output="bik"),
        S("broadcast batch (1 vs 2)", r(1, 3, 4), r(2, 4, 2), inputs=["aij", "ajk"], output="aik"),
        S("attention scores", r(2, 3, 5, 4), r(2, 3, 6, 4), inputs=["bhqd", "bhkd"],
          output="bhqk"),
        S("outer", r(3), r(4), inputs=["i", "j"], output="ij"),
        S("matrix-vector", r(3, 4), r(4), inputs=["ij", "j"], output="i"),
        S("full sum", r(3, 4), inputs=["ij"], output=""),
        S("letter only in one operand", r(2, 3, 4), r(3, 5), inputs=["ijk", "jl"], output="il"),
        S("three operands", r(2, 3), r(3, 4), r(4, 2), inputs=["ij", "jk", "kl"], output="il"),
        S("trace", r(4, 4), inputs=["ii"], output=""),
        S("diagonal, strided", strided(3, 3), inputs=["ii"], output="i"),
        S("transpose", r(3, 4), inputs=["ij"], output="ji"),
    ],
})
