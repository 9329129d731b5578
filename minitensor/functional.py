"""The functional API (``minitensor.functional``, usually imported as ``F``).

Every function here checks its inputs, raises an error that names the op and the
shapes/dtypes involved, and then calls one op's ``apply`` (or composes a few). Kernels
never see bad input. ``Tensor`` methods are one-line calls into this module.

Axes follow NumPy's spelling (``axis``, ``keepdims``); PyTorch's ``dim``/``keepdim``
are accepted as aliases.
"""
from __future__ import annotations

import builtins
import math
from typing import Sequence

import numpy as np

from . import random as _random
from .errors import DTypeError, IndexOutOfRange, ShapeError
from .ops import elementwise as E, fused as FU, linalg as LA, reduce as R, shape as S
from .tensor import Tensor, as_tensor

# ----------------------------------------------------------------------------- helpers


def _pick(value, alias, default=None):
    """Resolve a NumPy-style argument and its PyTorch alias (``axis``/``dim``).

    A ``value`` equal to ``default`` counts as not given: signatures such as
    ``cat(ts, axis=0, *, dim=None)`` and ``sum(x, keepdims=False, *, keepdim=None)`` pass
    their default along with the alias.
    """
    if alias is not None:
        if value is not None and value != default and value != alias:
            raise TypeError(f"got both a value ({value}) and its alias ({alias})")
        return alias
    return default if value is None else value


def _broadcast_shape(op: str, *shapes: tuple) -> tuple:
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ShapeError(f"{op}: shapes {listed} cannot be broadcast together") from None


def _binary(op_cls, name: str, a, b) -> Tensor:
    a, b = _pair(a, b)
    _broadcast_shape(name, a.shape, b.shape)
    return op_cls.apply(a, b)


def _pair(a, b) -> tuple[Tensor, Tensor]:
    """Both operands as tensors; a Python scalar takes the other operand's dtype."""
    if not isinstance(a, Tensor):
        a = as_tensor(a, like=b if isinstance(b, Tensor) else None)
    if not isinstance(b, Tensor):
        b = as_tensor(b, like=a)
    return a, b


def _check_float(name: str, x: Tensor) -> None:
    if x.dtype.kind != "f":
        raise DTypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype} "
                         f"(shape {x.shape}); convert it with .float() or .double()")


def _normalize_axis(name: str, axis: int, ndim: int) -> int:
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise IndexOutOfRange(f"{name}: axis {axis} is out of range for a tensor with {ndim} dims")
    return axis % max(ndim, 1)


def _as_index_array(name: str, idx) -> np.ndarray:
    """Integer (or boolean) index data as an ndarray; integral floats are accepted."""
    arr = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise DTypeError(f"{name}: index/target values must be integers, got {arr.dtype} "
                             "with non-integral values")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iub":
        raise DTypeError(f"{name}: indices must be an integer or bool tensor, got dtype {arr.dtype}")
    return arr


# ----------------------------------------------------------------------------- elementwise

def add(a, b) -> Tensor:
    """a + b with broadcasting."""
    return _binary(E.Add, "add", a, b)


def sub(a, b) -> Tensor:
    """a - b with broadcasting."""
    a, b = _pair(a, b)
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        raise DTypeError(f"sub: subtracting two bool tensors (shapes {a.shape} and {b.shape}) is "
                         "not supported; use ^ (logical xor) or convert with .float()")
    return _binary(E.Sub, "sub", a, b)


def mul(a, b) -> Tensor:
    """a * b with broadcasting."""
    return _binary(E.Mul, "mul", a, b)


def div(a, b) -> Tensor:
    """a / b with broadcasting (true division: integer inputs give floats)."""
    a, b = _pair(a, b)
    if a.dtype.kind != "f" and b.dtype.kind != "f":
        a, b = a.float(), b.float()  # both: float32 / int64 would promote to float64
    return _binary(E.Div, "div", a, b)


def neg(x: Tensor) -> Tensor:
    """-x."""
    x = as_tensor(x)
    if x.dtype == np.bool_:
        raise DTypeError(f"neg: negating a bool tensor (shape {x.shape}) is not supported; use ~")
    return E.Neg.apply(x)


def pow(x, exponent) -> Tensor:
    """x ** exponent; a Python-number exponent is a constant (no gradient)."""
    if isinstance(x, Tensor) and isinstance(exponent, (int, float, np.number)):
        return E.PowScalar.apply(x, exponent=exponent)
    return _binary(E.Pow, "pow", x, exponent)


def _unary(op_cls, x) -> Tensor:
    x = as_tensor(x)
    if x.dtype.kind != "f":
        x = x.float()  # exp/log/... of integer input give float32, as in torch
    return op_cls.apply(x)


def exp(x) -> Tensor:
    """e ** x."""
    return _unary(E.Exp, x)


def log(x) -> Tensor:
    """Natural logarithm."""
    return _unary(E.Log, x)


def sqrt(x) -> Tensor:
    """Square root."""
    return _unary(E.Sqrt, x)


def tanh(x) -> Tensor:
    """Hyperbolic tangent."""
    return _unary(E.Tanh, x)


def sigmoid(x) -> Tensor:
    """Logistic sigmoid 1 / (1 + e^-x), overflow-free for large |x|."""
    return _unary(E.Sigmoid, x)


def relu(x) -> Tensor:
    """max(x, 0)."""
    return FU.ReLU.apply(as_tensor(x))


def abs(x) -> Tensor:
    """|x|."""
    return E.Abs.apply(as_tensor(x))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU, x * Phi(x); ``approximate="tanh"`` uses the tanh formula (as torch)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    x = as_tensor(x)
    _check_float("gelu", x)
    return FU.GELU.apply(x, approximate=approximate)


def cast(x: Tensor, dtype) -> Tensor:
    """x converted to another floating dtype (differentiable)."""
    return E.Cast.apply(x, dtype=np.dtype(dtype))


def clone(x: Tensor) -> Tensor:
    """A copy of x in new memory (differentiable)."""
    return E.Clone.apply(x)


def maximum(a, b) -> Tensor:
    """Elementwise max; at ties each input gets half the gradient (as torch)."""
    return _binary(E.Maximum, "maximum", a, b)


def minimum(a, b) -> Tensor:
    """Elementwise min; at ties each input gets half the gradient (as torch)."""
    return _binary(E.Minimum, "minimum", a, b)


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    """Limit x to [min, max] (either may be None)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return E.Clamp.apply(as_tensor(x), lo=min, hi=max)


def where(condition, a, b) -> Tensor:
    """``a`` where ``condition`` is True, else ``b`` (broadcasting all three)."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise DTypeError(f"where: condition must be a bool tensor, got dtype {cond.dtype}")
    a, b = _pair(a, b)
    _broadcast_shape("where", cond.shape, a.shape, b.shape)
    return E.Where.apply(a, b, condition=cond)


def masked_fill(x: Tensor, mask, value) -> Tensor:
    """A copy of x with ``value`` wherever ``mask`` (bool, broadcastable to x) is True."""
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise DTypeError(f"masked_fill: mask must be a bool tensor, got dtype {m.dtype}")
    if _broadcast_shape("masked_fill", x.shape, m.shape) != x.shape:
        raise ShapeError(f"masked_fill: mask of shape {m.shape} does not broadcast to the "
                         f"tensor's shape {x.shape}")
    value = value.item() if isinstance(value, Tensor) else value
    return E.MaskedFill.apply(x, mask=m, value=value)


# ----------------------------------------------------------------------------- reductions

def _axes_arg(name: str, x: Tensor, axis):
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(_normalize_axis(name, int(a), x.ndim) for a in axes)


def sum(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Sum over ``axis`` (None = all)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    return R.Sum.apply(x, axis=_axes_arg("sum", x, axis), keepdims=keepdims)


def mean(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Mean over ``axis`` (None = all)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    if x.dtype.kind != "f":
        x = x.float()
    return R.Mean.apply(x, axis=_axes_arg("mean", x, axis), keepdims=keepdims)


def amax(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Max over ``axis``; tied maxima share the gradient equally (``torch.amax``)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    _check_nonempty("max", x)
    return R.Max.apply(x, axis=_axes_arg("max", x, axis), keepdims=keepdims)


def amin(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Min over ``axis``; tied minima share the gradient equally (``torch.amin``)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    _check_nonempty("min", x)
    return R.Min.apply(x, axis=_axes_arg("min", x, axis), keepdims=keepdims)


def _check_nonempty(name: str, x: Tensor) -> None:
    if x.data.size == 0:
        raise ShapeError(f"{name}: cannot reduce an empty tensor of shape {x.shape}")


def var(x: Tensor, axis=None, keepdims=False, unbiased=True, *, dim=None, keepdim=None,
        correction=None) -> Tensor:
    """Variance over ``axis``; ``unbiased=True`` divides by n - 1 (torch's default)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    corr = (1 if unbiased else 0) if correction is None else correction
    _check_float("var", x)
    return R.Var.apply(x, axis=_axes_arg("var", x, axis), keepdims=keepdims, correction=corr)


def std(x: Tensor, axis=None, keepdims=False, unbiased=True, *, dim=None, keepdim=None,
        correction=None) -> Tensor:
    """Standard deviation: sqrt(var); where it is 0 the gradient is 0 (as torch), not NaN."""
    v = var(x, axis, keepdims, unbiased, dim=dim, keepdim=keepdim, correction=correction)
    zero = v.data == 0
    if not zero.any():
        return sqrt(v)
    # sqrt'(0) = inf would meet centered = 0 in var's backward (inf * 0 = NaN); route those
    # entries through sqrt(1) with a zero gradient instead.
    return where(zero, 0.0, sqrt(where(zero, 1.0, v)))


def logsumexp(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """log(sum(exp(x))) over ``axis``, computed stably (max-shifted)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    _check_float("logsumexp", x)
    return R.LogSumExp.apply(x, axis=_axes_arg("logsumexp", x, axis), keepdims=keepdims)


# ----------------------------------------------------------------------------- shape ops

def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def reshape(x: Tensor, *shape) -> Tensor:
    """View x with a new shape; one dimension may be -1 (inferred)."""
    shape = _shape_arg(shape)
    known = int(np.prod([s for s in shape if s != -1]))
    n = x.data.size
    if shape.count(-1) > 1 or (-1 in shape and (known == 0 or n % known)) or \
            (-1 not in shape and known != n):
        raise ShapeError(f"reshape: cannot reshape a tensor of shape {x.shape} ({n} elements) "
                         f"into {shape}")
    return S.Reshape.apply(x, shape=shape)


def permute(x: Tensor, *axes) -> Tensor:
    """Reorder the axes: ``out.shape[i] == x.shape[axes[i]]``."""
    axes = _shape_arg(axes)
    norm = tuple(a % max(x.ndim, 1) for a in axes) if len(axes) == x.ndim else ()
    if sorted(norm) != list(range(x.ndim)):
        raise ShapeError(f"permute: axes {axes} are not a permutation of the {x.ndim} axes "
                         f"of a tensor of shape {x.shape}")
    return S.Permute.apply(x, axes=norm)


def transpose(x: Tensor, axis0: int, axis1: int) -> Tensor:
    """Swap two axes."""
    a = _normalize_axis("transpose", axis0, x.ndim)
    b = _normalize_axis("transpose", axis1, x.ndim)
    axes = list(range(x.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return S.Permute.apply(x, axes=tuple(axes))


def expand(x: Tensor, *shape) -> Tensor:
    """Broadcast x to ``shape`` (torch's ``expand``: -1 keeps a dimension)."""
    shape = _shape_arg(shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ShapeError(f"expand: cannot expand a tensor of shape {x.shape} to fewer dims {shape}")
    target = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    if _broadcast_shape("expand", x.shape, target) != target:
        raise ShapeError(f"expand: cannot expand a tensor of shape {x.shape} to {shape}")
    return S.Expand.apply(x, shape=target)


def broadcast_to(x: Tensor, shape) -> Tensor:
    """NumPy's name for ``expand``."""
    return expand(x, *shape)


def squeeze(x: Tensor, axis=None, *, dim=None) -> Tensor:
    """Remove size-1 axes (all of them, or only ``axis`` if it has size 1, as torch)."""
    axis = _pick(axis, dim)
    if axis is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        axes = set(_axes_arg("squeeze", x, axis))
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in axes and s == 1))
    return S.Reshape.apply(x, shape=shape)


def unsqueeze(x: Tensor, axis: int, *, dim=None) -> Tensor:
    """Insert a size-1 axis at ``axis`` (negative counts from the end of the result)."""
    axis = _pick(axis, dim)
    a = _normalize_axis("unsqueeze", axis, x.ndim + 1)
    return S.Reshape.apply(x, shape=x.shape[:a] + (1,) + x.shape[a:])


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes start_dim..end_dim into one."""
    if x.ndim == 0:
        return reshape(x, 1)
    s = _normalize_axis("flatten", start_dim, x.ndim)
    e = _normalize_axis("flatten", end_dim, x.ndim)
    return reshape(x, *x.shape[:s], -1, *x.shape[e + 1:])


def _index_arg(index):
    """Turn Tensors and lists inside an index into arrays (basic items pass through)."""
    def convert(item):
        if isinstance(item, (Tensor, list, np.ndarray)):
            return _as_index_array("getitem", item)
        return item
    return tuple(convert(i) for i in index) if isinstance(index, tuple) else convert(index)


def getitem(x: Tensor, index) -> Tensor:
    """``x[index]``: ints, slices, None, Ellipsis, integer arrays, boolean masks."""
    index = _index_arg(index)
    try:
        return S.GetItem.apply(x, index=index)
    except IndexError as e:
        raise IndexOutOfRange(f"getitem: {e} (tensor of shape {x.shape})") from None


def index_put(x: Tensor, index, value) -> Tensor:
    """Out-of-place ``x[index] = value`` (differentiable in both x and value)."""
    index = _index_arg(index)
    value = value if isinstance(value, Tensor) else as_tensor(value, like=x)
    try:
        target_shape = np.empty(x.shape, dtype=np.bool_)[index].shape
    except IndexError as e:
        raise IndexOutOfRange(f"setitem: {e} (tensor of shape {x.shape})") from None
    if _broadcast_shape("setitem", value.shape, target_shape) != target_shape:
        raise ShapeError(f"setitem: value of shape {value.shape} does not fit the indexed "
                         f"region of shape {target_shape}")
    return S.SetItem.apply(x, value, index=index)


def _check_same_shapes(name: str, tensors, skip_axis: int | None) -> None:
    first = tensors[0]
    for t in tensors[1:]:
        same = t.ndim == first.ndim and all(
            a == b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != skip_axis)
        if not same:
            shapes = ", ".join(str(u.shape) for u in tensors)
            raise ShapeError(f"{name}: tensors must have the same shape"
                             f"{' except along axis %d' % skip_axis if skip_axis is not None else ''}"
                             f"; got {shapes}")


def cat(tensors: Sequence[Tensor], axis: int = 0, *, dim=None) -> Tensor:
    """Concatenate along an existing axis."""
    axis = _pick(axis, dim, 0)
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    a = _normalize_axis("cat", axis, tensors[0].ndim)
    _check_same_shapes("cat", tensors, a)
    return S.Cat.apply(*tensors, axis=a)


def stack(tensors: Sequence[Tensor], axis: int = 0, *, dim=None) -> Tensor:
    """Stack equally-shaped tensors along a new axis."""
    axis = _pick(axis, dim, 0)
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    _check_same_shapes("stack", tensors, None)
    a = _normalize_axis("stack", axis, tensors[0].ndim + 1)
    return S.Stack.apply(*tensors, axis=a)


def split(x: Tensor, split_size_or_sections, axis: int = 0, *, dim=None) -> tuple[Tensor, ...]:
    """Split into chunks of a given size (last may be smaller) or of the listed sizes."""
    axis = _normalize_axis("split", _pick(axis, dim, 0), x.ndim)
    n = x.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split size must be positive, got {size}")
        sizes = [min(size, n - start) for start in range(0, n, size)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n:
            raise ShapeError(f"split: sizes {sizes} do not add up to {n}, the size of axis "
                             f"{axis} of a tensor of shape {x.shape}")
    out, start = [], 0
    for size in sizes:
        index = (slice(None),) * axis + (slice(start, start + size),)
        out.append(S.GetItem.apply(x, index=index))
        start += size
    return tuple(out)


def chunk(x: Tensor, chunks: int, axis: int = 0, *, dim=None) -> tuple[Tensor, ...]:
    """Split into ``chunks`` nearly equal pieces (torch's rule: ceil(n / chunks) each)."""
    axis = _normalize_axis("chunk", _pick(axis, dim, 0), x.ndim)
    if chunks <= 0:
        raise ValueError(f"chunk: number of chunks must be positive, got {chunks}")
    return split(x, max(1, math.ceil(x.shape[axis] / chunks)), axis)



# ----------------------------------------------------------------------------- linear algebra

def matmul(a, b) -> Tensor:
    """Matrix product with ``np.matmul`` rules: 1-D, 2-D and broadcast-batched."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both arguments must be at least 1-D, got shapes {a.shape} "
                         f"and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} do not align ({k_a} != {k_b})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(f"matmul: batch dimensions of shapes {a.shape} and {b.shape} cannot be "
                         f"broadcast together ({a.shape[:-2]} vs {b.shape[:-2]})") from None
    return LA.MatMul.apply(a, b)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ weight.T + bias, with x (..., in), weight (out, in), bias (out,)."""
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out, in), got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input of shape {x.shape} does not match weight of shape "
                         f"{weight.shape} (in_features {x.shape[-1] if x.ndim else None} != "
                         f"{weight.shape[1]})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: bias of shape {bias.shape} does not match weight of shape "
                         f"{weight.shape} (expected ({weight.shape[0]},))")
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return LA.Linear.apply(*inputs)


# ----------------------------------------------------------------------------- fused ops

def _on_last_axis(op_cls, name: str, x: Tensor, axis: int) -> Tensor:
    x = as_tensor(x)
    _check_float(name, x)
    if x.ndim == 0:
        return op_cls.apply(reshape(x, 1)).reshape(())
    a = _normalize_axis(name, axis, x.ndim)
    if a == x.ndim - 1:
        return op_cls.apply(x)
    return op_cls.apply(transpose(x, a, -1)).transpose(a, -1)


def softmax(x: Tensor, axis: int = -1, *, dim=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, max-subtracted for stability."""
    return _on_last_axis(FU.Softmax, "softmax", x, _pick(axis, dim, -1))


def log_softmax(x: Tensor, axis: int = -1, *, dim=None) -> Tensor:
    """x - logsumexp(x) along ``axis``."""
    return _on_last_axis(FU.LogSoftmax, "log_softmax", x, _pick(axis, dim, -1))


def cross_entropy(logits: Tensor, target, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> Tensor:
    """Cross-entropy of ``logits`` against class indices (or class probabilities).

    Args:
        logits: (N, C), (C,) or (N, C, d1, ...) unnormalized scores.
        target: (N,) / () / (N, d1, ...) integer class indices, or probabilities with
            the logits' shape.
        ignore_index: targets equal to this contribute nothing (and don't count in the mean).
        label_smoothing: epsilon in [0, 1]; the target becomes (1-eps) one-hot + eps/C.
        reduction: "mean" | "sum" | "none".
    Returns:
        A scalar, or the per-element losses with the target's shape for "none".
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    logits = as_tensor(logits)
    _check_float("cross_entropy", logits)
    if logits.ndim == 0:
        raise ShapeError("cross_entropy: logits must have a class axis, got a 0-d tensor")
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.shape == logits.shape and t.dtype.kind == "f" and logits.ndim >= 1 and \
            not (logits.ndim == 1 and t.ndim == 0):
        return _cross_entropy_soft(logits, as_tensor(target), label_smoothing, reduction)
    unbatched = logits.ndim == 1
    if unbatched:
        logits, t = logits.reshape(1, -1), t.reshape(1)
    n, c = logits.shape[0], logits.shape[1]
    expected = (n,) + logits.shape[2:]
    if t.shape != expected:
        raise ShapeError(f"cross_entropy: expected target of shape {expected} for logits of shape "
                         f"{logits.shape}, got {t.shape}")
    t = _as_index_array("cross_entropy", t).astype(np.int64, copy=False)
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    if bad.any():
        raise IndexOutOfRange(f"cross_entropy: target {int(t[bad].flat[0])} is out of bounds for "
                              f"{c} classes (logits of shape {logits.shape})")
    if logits.ndim > 2:  # (N, C, d...) -> (N*d..., C)
        logits = logits.permute(0, *range(2, logits.ndim), 1).reshape(-1, c)
    loss = FU.CrossEntropy.apply(logits, target=t.reshape(-1), ignore_index=int(ignore_index),
                                 label_smoothing=float(label_smoothing), reduction=reduction)
    if reduction == "none":
        return loss.reshape(()) if unbatched else loss.reshape(*expected)
    return loss


def _cross_entropy_soft(logits: Tensor, probs: Tensor, eps: float, reduction: str) -> Tensor:
    """Cross-entropy against class probabilities (torch's soft-target form)."""
    c = logits.shape[1] if logits.ndim > 1 else logits.shape[0]
    axis = 1 if logits.ndim > 1 else 0
    if eps:
        probs = probs * (1 - eps) + eps / c
    per_item = -(log_softmax(logits, axis) * probs).sum(axis)
    if reduction == "none":
        return per_item
    # 'mean' averages over every position (N * d1 * ...), as torch does for soft targets
    return per_item.sum() if reduction == "sum" else per_item.mean()


def nll_loss(log_probs: Tensor, target, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of ``log_probs`` (N, C) at integer ``target`` (N,)."""
    t = _as_index_array("nll_loss", target).astype(np.int64)
    if log_probs.ndim != 2:
        raise ShapeError(f"nll_loss: expected log_probs of shape (N, C), got {log_probs.shape}")
    n, c = log_probs.shape
    if t.shape != (n,):
        raise ShapeError(f"nll_loss: expected target of shape ({n},), got {t.shape}")
    keep = t != ignore_index
    bad = keep & ((t < 0) | (t >= c))
    if bad.any():
        raise IndexOutOfRange(f"nll_loss: target {int(t[bad][0])} is out of bounds for {c} classes "
                              f"(log_probs of shape {log_probs.shape})")
    picked = -log_probs[np.arange(n), np.where(keep, t, 0)] * keep.astype(log_probs.dtype)
    if reduction == "none":
        return picked
    if reduction == "sum":
        return picked.sum()
    count = int(keep.sum())
    mean = picked.sum() / builtins.max(count, 1)
    return mean if count else mean + np.nan  # all ignored: NaN loss but zero gradient, as torch


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error (input - target)^2, reduced by "mean" | "sum" | "none"."""
    input, target = _pair(input, target)
    if input.shape != target.shape:
        _broadcast_shape("mse_loss", input.shape, target.shape)
    diff = sub(input, target)
    sq = diff * diff
    if reduction == "none":
        return sq
    if reduction not in ("mean", "sum"):
        raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return sq.sum() if reduction == "sum" else sq.mean()


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` axes, then scale and shift.

    Args:
        x: (..., *normalized_shape).
        normalized_shape: int or tuple of the trailing axes to normalize over.
        weight, bias: (*normalized_shape,) or None.
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(normalized_shape)
    x = as_tensor(x)
    _check_float("layer_norm", x)
    if len(shape) == 0 or x.shape[x.ndim - len(shape):] != shape or x.ndim < len(shape):
        raise ShapeError(f"layer_norm: input of shape {x.shape} does not end with "
                         f"normalized_shape {shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != shape:
            raise ShapeError(f"layer_norm: {name} of shape {p.shape} does not match "
                             f"normalized_shape {shape}")
    c = int(np.prod(shape))
    flat = len(shape) > 1
    xin = x.reshape(*x.shape[:x.ndim - len(shape)], c) if flat else x
    params = [p.reshape(c) if flat else p for p in (weight, bias) if p is not None]
    out = FU.LayerNorm.apply(xin, *params, eps=float(eps), affine=(weight is not None, bias is not None))
    return out.reshape(*x.shape) if flat else out


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    Identity when ``training`` is False or p == 0. The mask comes from the global
    seeded generator (``mt.manual_seed``), identical on both kernel backends.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return x
    _check_float("dropout", x)
    return FU.Dropout.apply(x, p=float(p), seed=_random.next_seed())


def embedding(indices, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (V, D) picked by integer ``indices`` (any shape) -> (*indices.shape, D)."""
    idx = _as_index_array("embedding", indices)
    if idx.dtype == np.bool_:
        raise DTypeError("embedding: indices must be integers, got bool")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, dim), got {weight.shape}")
    v = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= v):
        worst = int(idx.max()) if idx.max() >= v else int(idx.min())
        raise IndexOutOfRange(f"embedding: index {worst} is out of range for {v} embeddings "
                              f"(weight of shape {weight.shape})")
    if padding_idx is not None:
        if not -v <= padding_idx < v:
            raise IndexOutOfRange(f"embedding: padding_idx {padding_idx} is out of range for {v} embeddings")
        padding_idx = int(padding_idx) % v
    return FU.Embedding.apply(weight, indices=idx.astype(np.int64, copy=False), padding_idx=padding_idx)


def one_hot(indices, num_classes: int = -1) -> Tensor:
    """(…,) integer tensor -> (…, num_classes) int64 one-hot tensor (no gradient)."""
    idx = _as_index_array("one_hot", indices).astype(np.int64)
    n = int(idx.max()) + 1 if num_classes < 0 else num_classes
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexOutOfRange(f"one_hot: class values must be in [0, {n}), got {idx.min()}..{idx.max()}")
    return Tensor._make(np.eye(n, dtype=np.int64)[idx], None)


# ----------------------------------------------------------------------------- attention

def _additive_mask(name: str, attn_mask, dtype) -> np.ndarray | None:
    """torch SDPA masks -> an additive float array (bool: True means *may attend*)."""
    if attn_mask is None:
        return None
    m = attn_mask.data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
    if m.dtype == np.bool_:
        return np.where(m, np.asarray(0, dtype), np.asarray(-np.inf, dtype))
    if m.dtype.kind != "f":
        raise DTypeError(f"{name}: attn_mask must be bool or float, got dtype {m.dtype}")
    return m.astype(dtype, copy=False)


def _attention_shapes(name: str, q: Tensor, k: Tensor, v: Tensor, mask):
    for label, t in (("query", q), ("key", k), ("value", v)):
        if t.ndim < 2:
            raise ShapeError(f"{name}: {label} must be at least 2-D (..., T, D), got {t.shape}")
        _check_float(name, t)
    if q.shape[-1] != k.shape[-1]:
        raise ShapeError(f"{name}: query and key embedding sizes differ: {q.shape} vs {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"{name}: key and value lengths differ: {k.shape} vs {v.shape}")
    lead = _broadcast_shape(name, q.shape[:-2], k.shape[:-2], v.shape[:-2])
    scores = lead + (q.shape[-2], k.shape[-2])
    if mask is not None and _broadcast_shape(name, mask.shape, scores) != scores:
        raise ShapeError(f"{name}: attn_mask of shape {mask.shape} does not broadcast to the "
                         f"attention scores' shape {scores}")
    return lead


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None) -> Tensor:
    """softmax(q k^T * scale + mask) v, as ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        query: (..., Tq, D); key: (..., Tk, D); value: (..., Tk, Dv).
        attn_mask: bool (True = MAY attend) or float (added to the scores), broadcastable
            to (..., Tq, Tk).
        dropout_p: dropout on the attention weights (uses the materialized path).
        is_causal: query i attends keys j <= i. Not combined with attn_mask (as torch).
        scale: defaults to 1/sqrt(D).
    Returns:
        (..., Tq, Dv). A query row that can see no key gives zeros (never NaN).
    """
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both")
    mask = _additive_mask("scaled_dot_product_attention", attn_mask, query.dtype)
    lead = _attention_shapes("scaled_dot_product_attention", query, key, value, mask)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    if dropout_p > 0.0:
        return _attention_materialized(query, key, value, mask, is_causal, scale, dropout_p)[0]
    tq, tk = query.shape[-2], key.shape[-2]
    b, h = _batch_heads(lead)
    q4 = _to_4d(query, lead, b, h)
    k4 = _to_4d(key, lead, b, h)
    v4 = _to_4d(value, lead, b, h)
    if mask is not None:
        full = np.broadcast_to(mask, lead + (tq, tk))
        mask = full.reshape(b, h, tq, tk) if len(lead) != 2 else full
    out = FU.ScaledDotProductAttention.apply(q4, k4, v4, mask=mask, is_causal=bool(is_causal),
                                             scale=scale)
    return out.reshape(*lead, tq, value.shape[-1])


def multi_head_sdpa(query: Tensor, key: Tensor | None, value: Tensor | None, num_heads: int,
                    attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
                    scale: float | None = None) -> Tensor:
    """Scaled dot-product attention of every head, on batch-first tensors whose last axis
    holds the heads side by side (what a projection produces): no split/merge needed.

    Args:
        query: (B, L, H*D); key: (B, S, H*D); value: (B, S, H*Dv), one float dtype.
            Packed forms, as one projection makes them (their gradient is then one
            array too, not three slices summed): ``key=None, value=None`` with query
            (B, L, 3*H*D) holding q, k, v side by side (self-attention); or
            ``value=None`` with key (B, S, H*D + H*Dv) holding k, v side by side.
        num_heads: H.
        attn_mask: as ``scaled_dot_product_attention``'s (bool True = MAY attend, or
            float added to the scores), broadcastable to (B, H, L, S).
        dropout_p: dropout on the attention weights (pass 0 outside training).
        is_causal: query i attends keys j <= i. Not combined with attn_mask.
        scale: defaults to 1/sqrt(D).
    Returns:
        (B, L, H*Dv): head h's output in columns h*Dv:(h+1)*Dv. Equal to splitting the
        heads, ``scaled_dot_product_attention`` on (B, H, T, D), and merging them back.
    """
    name = "multi_head_sdpa"
    if is_causal and attn_mask is not None:
        raise ValueError(f"{name}: pass either attn_mask or is_causal=True, not both")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {dropout_p}")
    if key is None and value is not None:
        raise ValueError(f"{name}: value without key (a packed query holds all three)")
    inputs = [t for t in (query, key, value) if t is not None]
    layout = {1: "qkv", 2: "q,kv", 3: "q,k,v"}[len(inputs)]
    for t in inputs:
        if t.ndim != 3:
            raise ShapeError(f"{name}: inputs must be 3-D (B, T, features), got {t.shape}")
        _check_float(name, t)
        if t.dtype != query.dtype:
            raise DTypeError(f"{name}: query, key and value must have one dtype, got "
                             f"{[str(x.dtype) for x in inputs]}")
    # The shapes of q, k and v once unpacked (k always has q's width).
    if layout == "qkv":
        e = query.shape[-1] // 3
        q_shape = k_shape = v_shape = query.shape[:-1] + (e,)
        packed_ok = query.shape[-1] == 3 * e
    elif layout == "q,kv":
        q_shape, e = query.shape, query.shape[-1]
        k_shape, v_shape = key.shape[:-1] + (e,), key.shape[:-1] + (key.shape[-1] - e,)
        packed_ok = key.shape[-1] > e
    else:
        q_shape, k_shape, v_shape, packed_ok = query.shape, key.shape, value.shape, True
    if not packed_ok:
        raise ShapeError(f"{name}: packed input of shape {inputs[-1].shape} does not hold q, k "
                         f"and v side by side ({layout} layout)")
    for label, shape in (("query", q_shape), ("key", k_shape), ("value", v_shape)):
        if shape[-1] % num_heads:
            raise ShapeError(f"{name}: {label} has {shape[-1]} features, not divisible by "
                             f"num_heads ({num_heads})")
    if q_shape[-1] != k_shape[-1]:
        raise ShapeError(f"{name}: query and key embedding sizes differ: {q_shape} vs {k_shape}")
    if k_shape[:2] != v_shape[:2] or q_shape[0] != k_shape[0]:
        raise ShapeError(f"{name}: batch or key length differ: query {q_shape}, key {k_shape}, "
                         f"value {v_shape}")
    (b, tq, width), tk = q_shape, k_shape[1]
    mask = _additive_mask(name, attn_mask, query.dtype)
    if is_causal:
        mask = np.where(np.tril(np.ones((tq, tk), dtype=bool)), 0.0, -np.inf).astype(query.dtype)
    scores = (b, num_heads, tq, tk)
    if mask is not None and _broadcast_shape(name, mask.shape, scores) != scores:
        raise ShapeError(f"{name}: attn_mask of shape {mask.shape} does not broadcast to the "
                         f"attention scores' shape {scores}")
    scale = 1.0 / math.sqrt(width // num_heads) if scale is None else float(scale)
    # A seed only when there is dropout: the random stream then matches the separate
    # ops' (dropout draws no seed at p = 0).
    seed = _random.next_seed() if dropout_p > 0.0 else 0
    return FU.MultiHeadSDPA.apply(*inputs, layout=layout, num_heads=int(num_heads), mask=mask,
                                  scale=scale, dropout_p=float(dropout_p), seed=seed)


def _batch_heads(lead: tuple) -> tuple[int, int]:
    if len(lead) == 0:
        return 1, 1
    if len(lead) == 1:
        return lead[0], 1
    return int(np.prod(lead[:-1])), lead[-1]


def _to_4d(t: Tensor, lead: tuple, b: int, h: int) -> Tensor:
    if t.shape[:-2] != lead:
        t = expand(t, *lead, *t.shape[-2:])
    return t.reshape(b, h, *t.shape[-2:])


def attention_with_weights(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                           dropout_p: float = 0.0, is_causal: bool = False,
                           scale: float | None = None) -> tuple[Tensor, Tensor]:
    """Like ``scaled_dot_product_attention`` but materialized, also returning the weights.

    Returns:
        (out (..., Tq, Dv), weights (..., Tq, Tk)); weights are after softmax and before
        dropout; a query row that can see no key has all-zero weights.
    """
    if is_causal and attn_mask is not None:
        raise ValueError("attention_with_weights: pass either attn_mask or is_causal=True, not both")
    mask = _additive_mask("attention_with_weights", attn_mask, query.dtype)
    _attention_shapes("attention_with_weights", query, key, value, mask)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    return _attention_materialized(query, key, value, mask, is_causal, scale, dropout_p)


def _attention_materialized(q, k, v, mask, is_causal, scale, dropout_p):
    tq, tk = q.shape[-2], k.shape[-2]
    if is_causal:
        mask = np.where(np.tril(np.ones((tq, tk), dtype=bool)), 0.0, -np.inf).astype(q.dtype)
    scores = matmul(q, transpose(k, -1, -2)) * scale                    # (..., Tq, Tk)
    if mask is None:
        weights = softmax(scores, -1)
    else:
        # Rows with no visible key would be softmax(-inf, ..., -inf) = NaN. Give them a
        # harmless all-zero mask instead, then zero their weights: output 0, gradient 0.
        blocked_row = np.all(np.isneginf(mask), axis=-1, keepdims=True)  # (..., Tq, 1)
        safe_mask = np.where(blocked_row, np.asarray(0, mask.dtype), mask)
        weights = softmax(scores + Tensor._make(safe_mask, None), -1)
        if blocked_row.any():
            weights = masked_fill(weights, np.broadcast_to(blocked_row, weights.shape), 0.0)
    dropped = dropout(weights, dropout_p, training=dropout_p > 0.0)
    return matmul(dropped, v), weights
