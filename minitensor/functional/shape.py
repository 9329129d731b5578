"""Shape wrappers (the Functions of ``ops/shape.py``): reshape, permute/transpose,
expand, squeeze/unsqueeze/flatten, indexing (``getitem``, ``index_put``), cat, stack,
split and chunk.
"""
from __future__ import annotations

import builtins
import math
from typing import Sequence

import numpy as np

from ..dtypes import result_dtype
from ..errors import IndexOutOfRange, ShapeError
from ..ops import shape as S
from ..tensor import Tensor, as_tensor
from ._checks import _as_index_array, _axes_arg, _broadcast_shape, _normalize_axis, _pick


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def reshape(x: Tensor, *shape) -> Tensor:
    """View x with a new shape; one dimension may be -1 (inferred)."""
    shape = _shape_arg(shape)
    known = math.prod(s for s in shape if s != -1)
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


def _promoted_operands(op: str, tensors: Sequence[Tensor]) -> list[Tensor]:
    """The operands of cat/stack as Tensors of one dtype, by torch's promotion
    (float32 with int64 -> float32); an empty list is an error."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of tensors")
    dtype = result_dtype(*tensors)
    return [t.to(dtype) for t in tensors]


def cat(tensors: Sequence[Tensor], axis: int = 0, *, dim=None) -> Tensor:
    """Concatenate along an existing axis."""
    axis = _pick(axis, dim, 0)
    tensors = _promoted_operands("cat", tensors)
    a = _normalize_axis("cat", axis, tensors[0].ndim)
    _check_same_shapes("cat", tensors, a)
    return S.Cat.apply(*tensors, axis=a)


def stack(tensors: Sequence[Tensor], axis: int = 0, *, dim=None) -> Tensor:
    """Stack equally-shaped tensors along a new axis."""
    axis = _pick(axis, dim, 0)
    tensors = _promoted_operands("stack", tensors)
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
