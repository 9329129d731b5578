"""Linear + bias + activation + dropout in one kernel pair (twin of
``numpy_ref/linear_act.py``): the feed-forward block's ``dropout(act(x W^T + b))``.

Unfused, that is four passes over the (tokens, d_ff) activation after the GEMM (bias,
activation, dropout forward; dropout and activation backward), each a graph node. Here:

    forward:  for each row block (in parallel, the blocks of ``linear``):
                  out[rows] = x[rows] @ W^T          # linalg.linear_rows (as Linear's)
                  out[rows] = dropout(act(out[rows] + b))   # while the block is in cache
    backward: dh = dropout'(dout) * act'(...)        # one flat pass
              dx, dW, db from dh                     # linear_backward, as Linear's

The arithmetic is the unfused kernels' own, element for element (the same row blocks,
the same expressions, ``_dropout_factor``'s counter-based mask at the same flat index),
so the fused op gives the numbers of Linear -> ReLU/GELU -> Dropout bit for bit, with
one exception: where a unit is active but dropped, the unfused gradient is dout * 0
(-0.0 for negative dout, NaN for infinite dout) and the fused one is 0.

Saved for backward: ReLU keeps only its output y (y > 0 exactly where the unit was
active and kept; y is also what the next Linear saves, so it costs no memory); GELU
keeps the pre-activation h and rehashes the mask from the seed.
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
from numba import njit, prange

from ..buffers import empty
from ._background_compile import parallel_ready
from ._math import _EXP_COST, _JIT, _erf, _exp, _zero
from ._threads import blas_single_threaded, launch, parallel_kernel
from .linalg import _FLOATS, _blas_ready, _narrow_fits, _row_blocks, linear, linear_backward
from .linalg import linear_rows, row_block
from .pointwise import (_dropout_factor, _gelu_consts, _mask_args, dropout_backward,
                        dropout_forward, gelu_backward, gelu_forward, relu_backward, relu_forward)

# ------------------------------------------------------------------ forward epilogues


@njit(**_JIT)
def _relu_rows(out, bias, has_bias, lo, hi, seed, threshold, scale, drop):
    """out[lo:hi] = dropout(relu(out[lo:hi] + bias)), flat index i * n + j for the mask."""
    z = _zero(out)
    n = out.shape[1]
    for i in range(lo, hi):
        row = out[i]
        if has_bias:
            for j in range(n):
                row[j] += bias[j]
        for j in range(n):
            v = row[j]
            row[j] = v if (v > z or v != v) else z       # relu_forward's select
        if drop:
            base = i * n
            for j in range(n):
                row[j] = row[j] * _dropout_factor(seed, base + j, threshold, scale, z)


@njit(**_JIT)
def _gelu_rows(out, bias, has_bias, pre, k, lo, hi, seed, threshold, scale, drop):
    """pre[lo:hi] = out[lo:hi] + bias; out[lo:hi] = dropout(gelu(pre[lo:hi])) (exact GELU)."""
    z = _zero(out)
    half, one, sqrt1_2 = k[0], k[1], k[5]
    n = out.shape[1]
    for i in range(lo, hi):
        row = out[i]
        prow = pre[i]
        if has_bias:
            for j in range(n):
                row[j] += bias[j]
        for j in range(n):
            v = row[j]
            prow[j] = v
            row[j] = half * v * (one + _erf(v * sqrt1_2))  # gelu_forward's expression
        if drop:
            base = i * n
            for j in range(n):
                row[j] = row[j] * _dropout_factor(seed, base + j, threshold, scale, z)


# The product of a row block is linalg's ``linear_rows``, the bias added where ``linear``
# adds it (in the product's sums when ``narrow``, after it otherwise), so that the fused
# op keeps Linear's numbers.


@parallel_kernel(**_JIT)
def _linear_relu_blocks(x, wt, bias, has_bias, out, blocks, seed, threshold, scale, drop,
                        narrow):
    """for t in parallel: rows = block t;  out[rows] = dropout(relu(x[rows] @ wt + bias))."""
    for t in prange(blocks):
        lo, hi = row_block(x.shape[0], blocks, t)
        if lo < hi:
            linear_rows(x, wt, bias, has_bias and narrow, out, lo, hi, narrow)
            _relu_rows(out, bias, has_bias and not narrow, lo, hi, seed, threshold, scale, drop)


@parallel_kernel(**_JIT)
def _linear_gelu_blocks(x, wt, bias, has_bias, out, pre, k, blocks, seed, threshold, scale, drop,
                        narrow):
    """for t in parallel: rows = block t;  pre[rows] = x[rows] @ wt + bias;
    out[rows] = dropout(gelu(pre[rows]))."""
    for t in prange(blocks):
        lo, hi = row_block(x.shape[0], blocks, t)
        if lo < hi:
            linear_rows(x, wt, bias, has_bias and narrow, out, lo, hi, narrow)
            _gelu_rows(out, bias, has_bias and not narrow, pre, k, lo, hi, seed, threshold, scale,
                       drop)


def _dropout_args(p, seed, dtype):
    """(seed, threshold, scale, drop): ``pointwise._mask_args`` (the mask dropout_forward
    draws), with drop = False and nothing to hash at p = 0."""
    if p == 0:
        return np.uint64(0), np.uint64(0), dtype.type(1), False
    seed_u, threshold, scale, _ = _mask_args(p, seed, dtype)
    return seed_u, threshold, scale, True


def _unfused_forward(x, weight, bias, activation, p, seed):
    """The three kernels one after the other (integer dtypes, empty arrays, p == 1,
    x not C-ordered)."""
    h = linear(x, weight, bias)
    a, _ = relu_forward(h) if activation == "relu" else gelu_forward(h, "none")
    out, _ = dropout_forward(a, p, seed)
    return out, (activation, out if activation == "relu" else h, p, seed)


def linear_act_forward(x, weight, bias, activation, p, seed):
    """out = dropout(act(x W^T + b)), x (N, in), weight (out, in), bias (out,) | None,
    activation "relu" | "gelu" (exact), p the drop probability (0: none) (see
    numpy_ref.linear_act_forward).

        for row block in parallel (linear's blocks):
            out[rows] = x[rows] @ weight^T                       # as linear's blocks
            for each element of the block (flat index i):
                out[i] = act(out[i] + b[j]) * (1/(1-p) if keep(seed, i) else 0)

    Optimizations: bias, activation and mask applied to each row block right after its
    GEMM, while it is in cache (no extra pass over memory, no intermediate array for
    ReLU); the mask is hashed on the fly as in dropout_forward.
    """
    # x (N, in), weight (out, in), bias | None -> out (N, out); cache (activation, y | h, p, seed)
    dtype = np.result_type(x, weight)
    if x.ndim != 2 or weight.ndim != 2 or dtype not in _FLOATS or p == 1 or \
            min(x.shape + weight.shape) == 0 or not x.flags.c_contiguous:
        # (rows of a non-C-ordered x are not contiguous: their blocks would be copied)
        return _unfused_forward(x, weight, bias, activation, p, seed)
    x, wt = _blas_ready(x, dtype), _blas_ready(weight.T, dtype)
    has_bias = bias is not None
    b = np.ascontiguousarray(bias, dtype=dtype) if has_bias else np.zeros(1, dtype)
    out = empty((x.shape[0], wt.shape[1]), dtype)
    blocks = _row_blocks(x, x.shape[0] * x.shape[1] * wt.shape[1])
    drop_args = _dropout_args(p, seed, dtype)
    narrow = _narrow_fits(x, wt.T, True)
    with nullcontext() if narrow else blas_single_threaded():       # (narrow: no BLAS call)
        if activation == "relu":
            args = (x, wt, b, has_bias, out, blocks, *drop_args, narrow)
            parallel = blocks > 1 and parallel_ready(_linear_relu_blocks, *args)
            (_linear_relu_blocks if parallel else _linear_relu_blocks.serial)(*args)
            return out, (activation, out, p, seed)
        pre = empty(out.shape, dtype)
        args = (x, wt, b, has_bias, out, pre, _gelu_consts(dtype), blocks, *drop_args, narrow)
        parallel = blocks > 1 and parallel_ready(_linear_gelu_blocks, *args)
        (_linear_gelu_blocks if parallel else _linear_gelu_blocks.serial)(*args)
    return out, (activation, pre, p, seed)


# -------------------------------------------------------------------- backward masks


@parallel_kernel(**_JIT)
def _relu_grad_flat(dout, y, scale, dh):
    """dh = dout * scale where y > 0, else 0 (scale 1 without dropout: dout * 1 is dout);
    returns how many y are NaN (the caller then redoes dh the unfused way: a NaN unit's
    gradient depends on its mask bit, which y does not show)."""
    z = _zero(y)
    nans = 0
    for i in prange(y.shape[0]):
        v = y[i]
        dh[i] = dout[i] * scale if v > z else z
        nans += 1 if v != v else 0
    return nans


@parallel_kernel(**_JIT)
def _gelu_grad_flat(dout, h, k, seed, threshold, scale, drop, dh):
    """dh = (dout * mask) * gelu'(h): dropout_backward then gelu_backward's expression."""
    z = _zero(h)
    half, one, sqrt1_2, inv_sqrt_2pi = k[0], k[1], k[5], k[6]
    for i in prange(h.shape[0]):
        v = h[i]
        d = dout[i] * _dropout_factor(seed, i, threshold, scale, z) if drop else dout[i]
        dh[i] = d * (half * (one + _erf(v * sqrt1_2)) + v * _exp(-half * v * v) * inv_sqrt_2pi)


def _unfused_grad(dout, activation, saved, p, seed):
    """dh the unfused way: dropout_backward, then relu_backward (y for relu's output) or
    gelu_backward."""
    g = dropout_backward(dout, (p, seed))
    if activation == "relu":
        return relu_backward(g, (saved,))
    return gelu_backward(g, (np.ascontiguousarray(saved).reshape(-1), "none"))  # its cache: x flat


def linear_act_backward(dout, x, weight, cache, needs):
    """(dx, dweight, dbias) of ``linear_act_forward`` for dout (N, out); ``needs`` as
    ``linear_backward`` (see numpy_ref.linear_act_backward).

        for each element i in parallel:
            relu: dh[i] = dout[i] / (1-p) if y[i] > 0 else 0
            gelu: dh[i] = dout[i] * mask(seed, i) / (1-p) * gelu'(h[i])
        dx, dweight, dbias = linear_backward(dh, x, weight)

    Optimizations: one pass for the masked gradient instead of two (dropout, then the
    activation); ReLU needs no rehash (y > 0 already says "active and kept").
    """
    # dout (N, out) -> dx (N, in) | None, dweight (out, in) | None, dbias (out,) | None
    activation, saved, p, seed = cache
    if saved.dtype not in _FLOATS or dout.dtype != saved.dtype or dout.shape != saved.shape \
            or p == 1:
        dh = _unfused_grad(dout, activation, saved, p, seed)
    else:
        g = np.ascontiguousarray(dout).reshape(-1)
        dh = empty(saved.shape, saved.dtype)
        seed_u, threshold, scale, drop = _dropout_args(p, seed, saved.dtype)
        if activation == "relu":
            if launch(_relu_grad_flat, g.size, g, saved.reshape(-1), scale, dh.reshape(-1)):
                dh = _unfused_grad(dout, activation, saved, p, seed)
        else:
            launch(_gelu_grad_flat, _EXP_COST * g.size, g, saved.reshape(-1),
                   _gelu_consts(saved.dtype), seed_u, threshold, scale, drop, dh.reshape(-1))
    return linear_backward(dh, x, weight, needs)
