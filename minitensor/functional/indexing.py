"""Indexing wrappers: gather, scatter, index_select, index_fill, masked_select, nonzero,
and the copies that repeat or reorder along axes (repeat_interleave, repeat, flip, unbind).

Everything differentiable is the ``Gather``/``Scatter`` ops of ``ops/indexing.py`` or
plain indexing (``getitem``, ``index_put``); ``nonzero`` only reads data.
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, IndexOutOfRange, ShapeError
from ..ops import indexing as I
from ..tensor import Tensor, as_tensor
from ._checks import _broadcast_shape, _normalize_axis
from .shape import expand, getitem, index_put, reshape


def _int_index(name: str, index, what: str = "index") -> np.ndarray:
    """Index data as an integer ndarray; float and bool indices are refused (as torch)."""
    arr = index.data if isinstance(index, Tensor) else np.asarray(index)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{name}: {what} must be an integer (int64) tensor, got dtype "
                         f"{arr.dtype} (shape {arr.shape}); convert it with .long()")
    return arr.astype(np.int64, copy=False)


def _check_in_range(name: str, index: np.ndarray, n: int, axis: int, shape: tuple,
                    allow_negative: bool = False) -> None:
    """Entries in [0, n) (or [-n, n) where torch counts negatives from the end)."""
    low = -n if allow_negative else 0
    if index.size and (index.min() < low or index.max() >= n):
        bad = int(index.max()) if index.max() >= n else int(index.min())
        raise IndexOutOfRange(f"{name}: index {bad} is out of range for dim {axis} of size {n} "
                              f"(tensor of shape {shape}); valid indices are {low}..{n - 1}")


def _along_axis_index(name: str, x: Tensor, dim: int, index) -> tuple[int, np.ndarray]:
    """Check a gather/scatter index: same number of dims as x, no longer than x along the
    other dims, entries in range. Returns (axis, index with negatives wrapped)."""
    axis = _normalize_axis(name, dim, x.ndim)
    idx = _int_index(name, index)
    if idx.ndim != x.ndim:
        raise ShapeError(f"{name}: index must have as many dims as the tensor ({x.ndim}); got "
                         f"index of shape {idx.shape} for a tensor of shape {x.shape}")
    too_long = [d for d in range(idx.ndim) if d != axis and idx.shape[d] > x.shape[d]]
    if too_long:
        raise ShapeError(f"{name}: index of shape {idx.shape} is larger than the tensor's shape "
                         f"{x.shape} along dim {too_long[0]} (only dim {axis} may differ)")
    n = x.shape[axis] if x.ndim else 1
    _check_in_range(name, idx, n, axis, x.shape)
    return axis, idx


def gather(x: Tensor, dim: int, index, *, sparse_grad: bool = False) -> Tensor:
    """``out[i][j][k] = x[index[i][j][k]][j][k]`` for dim 0 (likewise for other dims).

    Args:
        x: (d0, ..., dn) tensor.
        dim: the axis ``index`` picks along.
        index: integer tensor with x's number of dims, at most x's size along the others.
    Returns:
        A tensor of index's shape; its gradient is added back where each element came from.
    """
    x = as_tensor(x)
    if sparse_grad:
        raise NotImplementedError("gather: sparse_grad=True is not supported (gradients are dense)")
    axis, idx = _along_axis_index("gather", x, dim, index)
    if x.ndim == 0:  # a 0-d tensor is read as a 1-element vector
        return I.Gather.apply(reshape(x, 1), index=idx.reshape(1), axis=0).reshape(())
    return I.Gather.apply(x, index=idx, axis=axis)


def scatter(x: Tensor, dim: int, index, src=None, *, value=None, reduce=None) -> Tensor:
    """A copy of x with ``src`` (a tensor at least index's size) or the number ``value``
    written at ``index`` along ``dim`` (the inverse of ``gather``). Differentiable in x and
    src; where two index entries name the same element the last write wins."""
    x = as_tensor(x)
    if reduce is not None:
        raise NotImplementedError("scatter: reduce= is not supported (only plain assignment)")
    if isinstance(src, (int, float, bool, np.number)) and value is None:
        src, value = None, src
    if (src is None) == (value is None):
        raise TypeError("scatter: give exactly one of src (a tensor) or value (a number)")
    if x.ndim == 0:
        raise ShapeError("scatter: the tensor must have at least one dim, got a 0-d tensor")
    axis, idx = _along_axis_index("scatter", x, dim, index)
    if value is not None:
        return I.Scatter.apply(x, index=idx, axis=axis, value=value)
    src = as_tensor(src, like=x)
    if src.ndim != idx.ndim or any(s < i for s, i in zip(src.shape, idx.shape)):
        raise ShapeError(f"scatter: src of shape {src.shape} must have as many dims as index "
                         f"({idx.shape}) and be at least as large along each")
    if src.dtype != x.dtype:
        raise DTypeError(f"scatter: src dtype {src.dtype} does not match the tensor's dtype "
                         f"{x.dtype}")
    return I.Scatter.apply(x, src, index=idx, axis=axis)


def index_select(x: Tensor, dim: int, index) -> Tensor:
    """The slices of x at the positions ``index`` (1-D integer tensor) along ``dim``."""
    x = as_tensor(x)
    axis = _normalize_axis("index_select", dim, x.ndim)
    idx = _int_index("index_select", index)
    if idx.ndim > 1:
        raise ShapeError(f"index_select: index must be 1-D (or 0-d), got shape {idx.shape}")
    n = x.shape[axis] if x.ndim else 1
    _check_in_range("index_select", idx, n, axis, x.shape)
    if x.ndim == 0:
        return reshape(x, 1)[idx.reshape(-1)].reshape(idx.shape)
    return getitem(x, (slice(None),) * axis + (idx.reshape(-1),))


def index_fill(x: Tensor, dim: int, index, value) -> Tensor:
    """A copy of x with the slices at ``index`` along ``dim`` set to the number ``value``."""
    x = as_tensor(x)
    axis = _normalize_axis("index_fill", dim, x.ndim)
    idx = _int_index("index_fill", index)
    if idx.ndim > 1:
        raise ShapeError(f"index_fill: index must be 1-D (or 0-d), got shape {idx.shape}")
    _check_in_range("index_fill", idx, x.shape[axis] if x.ndim else 1, axis, x.shape,
                    allow_negative=True)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ShapeError(f"index_fill: value must be a number or a 0-d tensor, got shape "
                             f"{value.shape}")
        value = value.item()
    where = (slice(None),) * axis + (np.unique(idx.reshape(-1) % max(x.shape[axis], 1)),)
    return index_put(x, where if x.ndim else (), value)


def masked_select(x: Tensor, mask) -> Tensor:
    """The elements of x where the bool ``mask`` is True, as a 1-D tensor (x and mask
    broadcast together first, as torch)."""
    x = as_tensor(x)
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise DTypeError(f"masked_select: mask must be a bool tensor, got dtype {m.dtype}")
    shape = _broadcast_shape("masked_select", x.shape, m.shape)
    if x.shape != shape:
        x = expand(x, *shape)
    return getitem(x, np.broadcast_to(m, shape))


def nonzero(x, *, as_tuple: bool = False):
    """Indices of the non-zero elements: an (n, x.ndim) int64 tensor, one row per element
    in row-major order; ``as_tuple=True`` gives one 1-D tensor per dim instead."""
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    if as_tuple:
        hits = np.nonzero(data.reshape(1) if data.ndim == 0 else data)
        return tuple(Tensor._make(h.astype(np.int64), None) for h in hits)
    return Tensor._make(np.argwhere(data).astype(np.int64), None)


def repeat_interleave(x: Tensor, repeats, dim=None, *, output_size=None) -> Tensor:
    """Each element (``dim=None``: of the flattened x) or slice along ``dim`` repeated
    ``repeats`` times in place: [a, b] -> [a, a, b, b]. ``repeats`` is an int or a 1-D
    integer tensor with one count per slice."""
    x = as_tensor(x)
    if dim is None:
        x, axis = reshape(x, -1), 0
    else:
        axis = _normalize_axis("repeat_interleave", dim, x.ndim)
        if x.ndim == 0:
            x = reshape(x, 1)
    counts = np.asarray(repeats) if not isinstance(repeats, Tensor) else repeats.data
    if counts.dtype.kind not in "iu":
        raise DTypeError(f"repeat_interleave: repeats must be an int or an integer tensor, got "
                         f"dtype {counts.dtype}")
    n = x.shape[axis]
    if counts.ndim > 1 or (counts.ndim == 1 and counts.shape[0] not in (1, n)):
        raise ShapeError(f"repeat_interleave: repeats of shape {counts.shape} must be a number "
                         f"or have one entry per slice ({n}) along dim {axis}")
    if counts.size and counts.min() < 0:
        raise ValueError(f"repeat_interleave: repeats must be non-negative, got {counts.min()}")
    picks = np.repeat(np.arange(n), np.broadcast_to(counts.reshape(-1), (n,)) if counts.ndim
                      else int(counts))
    if output_size is not None and output_size != picks.size:
        raise ShapeError(f"repeat_interleave: output_size {output_size} does not match the "
                         f"total of repeats ({picks.size})")
    return getitem(x, (slice(None),) * axis + (picks,))


def repeat(x: Tensor, *sizes) -> Tensor:
    """x tiled ``sizes[i]`` times along axis i (``Tensor.repeat``, NumPy's ``tile``); sizes
    may have more entries than x has dims (new leading axes)."""
    x = as_tensor(x)
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < x.ndim:
        raise ShapeError(f"repeat: number of repeat sizes ({len(sizes)}) can not be smaller than "
                         f"the number of dims of the tensor ({x.ndim}, shape {x.shape})")
    if any(s < 0 for s in sizes):
        raise ValueError(f"repeat: sizes must be non-negative, got {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    # (s0, s1) -> (1, s0, 1, s1) -> expand to (r0, s0, r1, s1) -> (r0*s0, r1*s1): the
    # gradient sums over the copies through expand's backward.
    spread = reshape(x, *[d for s in shape for d in (1, s)])
    tiled = expand(spread, *[d for r, s in zip(sizes, shape) for d in (r, s)])
    out = reshape(tiled, *[r * s for r, s in zip(sizes, shape)])
    # all sizes 1: the reshapes were views of x; torch's repeat always copies
    return out.clone() if np.may_share_memory(out.data, x.data) else out


def flip(x: Tensor, dims) -> Tensor:
    """A copy of x with the order of elements reversed along each axis in ``dims``."""
    x = as_tensor(x)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    axes = {_normalize_axis("flip", int(d), x.ndim) for d in dims}
    if len(axes) != len(dims):
        raise ValueError(f"flip: dim appears multiple times in the list of dims {dims}")
    if x.ndim == 0:
        return x.clone()
    reversed_view = getitem(x, tuple(slice(None, None, -1) if a in axes else slice(None)
                                     for a in range(x.ndim)))
    return reversed_view.clone()  # a copy, as torch: writing into it must not change x


def unbind(x: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices of x along ``dim``, as a tuple of tensors without that axis."""
    x = as_tensor(x)
    if x.ndim == 0:
        raise ShapeError("unbind: a 0-d tensor has no dim to unbind")
    axis = _normalize_axis("unbind", dim, x.ndim)
    return tuple(getitem(x, (slice(None),) * axis + (i,)) for i in range(x.shape[axis]))
