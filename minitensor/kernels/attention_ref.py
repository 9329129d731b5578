"""Plain-NumPy reference for matmul and scaled dot-product attention: the readable spec.

Everything here is materialized: attention builds the whole (Tq, Tk) score matrix per
(batch, head). ``attention_numba`` computes the same thing fused, without storing it, and
is tested against this file.

Conventions shared by both backends:
    q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv), all one float dtype.
    mask: None or a float array *added* to the scores (0 = visible, -inf = blocked),
          broadcastable to (B, H, Tq, Tk).
    is_causal: query i sees keys j <= i (top-left aligned, as torch's SDPA).
    A query row that sees no key at all gives out = 0 and zero gradients (never NaN).
    cache: dict with q, k, v, mask, is_causal, scale, out, lse (B, H, Tq) (the row
           log-sum-exp, -inf for a fully blocked row); this reference also keeps the
           probabilities "p" (B, H, Tq, Tk), the fused one never does.
"""
from __future__ import annotations

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """out = a @ b with exactly ``np.matmul`` semantics (1-D, 2-D, broadcast batches).

        for batch n: for i: for j: out[n, i, j] = sum_k a[n, i, k] * b[n, k, j]

    Optimizations:
        - none: this is the spec; NumPy hands 2-D products to BLAS.
    """
    return np.matmul(a, b)


def _scores(q, k, mask, is_causal, scale):
    """s (B, H, Tq, Tk) = q @ k^T * scale + mask, with -inf above the diagonal if causal."""
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * q.dtype.type(scale)  # (B, H, Tq, Tk)
    if mask is not None:
        s = s + mask.astype(s.dtype, copy=False)
    if is_causal:
        tq, tk = s.shape[-2:]
        visible = np.arange(tk)[None, :] <= np.arange(tq)[:, None]  # (Tq, Tk), j <= i
        s = np.where(visible, s, -np.inf)
    return s


def attention_forward(q, k, v, mask=None, is_causal=False, scale=None):
    """out (B, H, Tq, Dv) = softmax(q @ k^T * scale + mask) @ v, materialized.

        for b, h: s = q[b,h] @ k[b,h]^T * scale + mask      # (Tq, Tk) in memory
                  m = rowmax(s); e = exp(s - m); l = rowsum(e)
                  p = e / l;  out[b,h] = p @ v[b,h];  lse = m + log(l)

    Optimizations:
        - none beyond batched np.matmul: the readable spec. A fully blocked row has
          m = -inf; it is shifted by 0 instead, so e = 0, l = 0, p = 0, out = 0.
    """
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[-1])
    s = _scores(q, k, mask, is_causal, scale)  # (B, H, Tq, Tk)
    m = s.max(axis=-1, keepdims=True)  # (B, H, Tq, 1)
    m = np.where(np.isfinite(m), m, 0.0).astype(s.dtype)  # fully blocked row: shift by 0
    e = np.exp(s - m)  # (B, H, Tq, Tk), exactly 0 where blocked
    l = e.sum(axis=-1, keepdims=True)  # (B, H, Tq, 1)
    p = e / np.where(l > 0, l, 1.0).astype(s.dtype)  # blocked row stays all zeros
    out = np.matmul(p, v)  # (B, H, Tq, Dv)
    with np.errstate(divide="ignore"):  # log(0) = -inf marks a fully blocked row
        lse = (m + np.log(l))[..., 0]  # (B, H, Tq)
    cache = dict(q=q, k=k, v=v, mask=mask, is_causal=is_causal, scale=scale,
                 out=out, lse=lse, p=p)
    return out, cache


def attention_backward(dout, cache):
    """Gradients (dq, dk, dv) of attention_forward, given dout (B, H, Tq, Dv).

        for b, h: p = exp(s - lse)                  # (or the saved p)
                  dv = p^T @ dout;  dp = dout @ v^T
                  ds = p * (dp - rowsum(dout * out))  # softmax backward
                  dq = ds @ k * scale;  dk = ds^T @ q * scale

    Optimizations:
        - rowsum(dout * out) equals rowsum(p * dp) (FlashAttention-2's D_i) and needs
          no (Tq, Tk) product.
    """
    q, k, v, out, scale = cache["q"], cache["k"], cache["v"], cache["out"], cache["scale"]
    p = cache.get("p")
    if p is None:  # a cache from the fused backend: recompute p from the saved lse
        s = _scores(q, k, cache["mask"], cache["is_causal"], scale)
        lse = cache["lse"][..., None]  # (B, H, Tq, 1)
        lse = np.where(np.isfinite(lse), lse, np.inf).astype(s.dtype)  # blocked row -> p = 0
        p = np.exp(s - lse)
    dv = np.matmul(np.swapaxes(p, -1, -2), dout)  # (B, H, Tk, Dv)
    dp = np.matmul(dout, np.swapaxes(v, -1, -2))  # (B, H, Tq, Tk)
    d_row = (dout * out).sum(axis=-1, keepdims=True)  # (B, H, Tq, 1)
    ds = p * (dp - d_row)  # (B, H, Tq, Tk)
    scale = q.dtype.type(scale)  # a float64 scalar would promote float32 arrays
    dq = np.matmul(ds, k) * scale  # (B, H, Tq, D)
    dk = np.matmul(np.swapaxes(ds, -1, -2), q) * scale  # (B, H, Tk, D)
    return dq.astype(q.dtype, copy=False), dk.astype(k.dtype, copy=False), dv.astype(v.dtype, copy=False)
