"""Fused scaled dot-product attention in Numba: online softmax forward, recompute backward.

Same functions, signatures and conventions as ``attention_ref`` (read that file first):

    attention_forward(q, k, v, mask, is_causal, scale) -> (out, cache)
    attention_backward(dout, cache) -> (dq, dk, dv)

The (Tq, Tk) score matrix is never stored. Per (batch, head) and block of queries, the
keys are visited block by block with a running max ``m`` and running sum ``l`` (online
softmax); the cache keeps only ``lse = m + log(l)`` per query row, and the backward pass
recomputes the probabilities from it (FlashAttention-2). Extra memory per thread is a few
(block x block) tiles, so it grows linearly in T, not quadratically.

Layout choice: every tile is computed *transposed*, keys along rows and queries along the
contiguous axis (``sT = k_blk @ q_blk^T``). The per-query reductions of softmax (row max,
row sum) then become elementwise maps over a contiguous row, which LLVM vectorizes
without fast-math; a float max reduction along a row would not vectorize.

Debugging: ``NUMBA_DISABLE_JIT=1`` runs the kernels as plain Python (slow, same results;
``_exp`` then falls back to ``np.exp``). Parallel diagnostics:
``_attention_fwd.parallel_diagnostics(level=3)`` after one call.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import get_num_threads, get_thread_id, njit, prange, types
from numba.extending import intrinsic, overload

from ._threads import blas_single_threaded, launch, parallel_kernel

# Tile sizes (module globals are compile-time constants for Numba). Queries run along the
# vectorized axis, so the query block is the wider one. Measured on 2 AVX-512 cores.
BLOCK_Q = 128
BLOCK_K = 64

# 'contract' lets LLVM fuse a*b+c into one FMA (exact product, one rounding: never less
# accurate). No other fast-math flag: masks carry -inf, which 'ninf'/'nnan' would break.
_FASTMATH = {"contract"}


# ----------------------------------------------------------------------------------
# Vectorizable exp. Numba's np.exp is a scalar libm call on this machine (no SVML), which
# stops the loop vectorizer; this one is straight-line arithmetic, so loops over it
# vectorize. Accuracy: <= 2 ulp in float64, <= 2 ulp in float32 (tested against np.exp).
# ----------------------------------------------------------------------------------
@intrinsic
def _mul_pow2(typingctx, p, n):
    """p * 2**n for a normal float p and an int n such that the result is normal:
    adds n to the exponent bits of p (float64: bits 52-62, float32: bits 23-30)."""
    if not (isinstance(p, types.Float) and isinstance(n, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        pv, nv = args
        width, shift = (64, 52) if signature.args[0] == types.float64 else (32, 23)
        ity = ir.IntType(width)
        if nv.type.width < width:
            nv = builder.sext(nv, ity)
        elif nv.type.width > width:
            nv = builder.trunc(nv, ity)
        bits = builder.add(builder.bitcast(pv, ity), builder.shl(nv, ir.Constant(ity, shift)))
        return builder.bitcast(bits, pv.type)

    return p(p, n), codegen


def _exp(x):
    """exp(x); this Python body only runs under NUMBA_DISABLE_JIT (see the overload)."""
    return np.exp(x)


# Cody-Waite split of ln 2 (hi part has trailing zero bits, so n * hi is exact).
_LN2_HI_F64, _LN2_LO_F64 = 6.93145751953125e-1, 1.42860682030941723212e-6
_LN2_HI_F32, _LN2_LO_F32 = np.float32(0.693359375), np.float32(-2.12194440e-4)
_LOG2E_F32 = np.float32(1.4426950408889634)
_F32 = np.float32


@overload(_exp)
def _exp_overload(x):
    """exp(x) = 2**n * exp(r), n = round(x / ln 2), |r| <= ln2 / 2, exp(r) by Taylor/Horner.

    Degree 13 in float64 (truncation < 1e-17), degree 7 in float32 (< 6e-9). Inputs are
    clamped so 2**n stays a normal number; results below exp(-708) (float64) or
    exp(-86) (float32) are flushed to 0, and exp(-inf) = 0. Softmax only ever feeds
    x <= ~0, where the largest term is 1, so the flushed tail is far below rounding.
    """
    if x == types.float32:
        lo, hi, half, one, zero = _F32(-86.0), _F32(88.0), _F32(0.5), _F32(1.0), _F32(0.0)
        c2, c3, c4, c5, c6, c7 = (_F32(1 / 2), _F32(1 / 6), _F32(1 / 24), _F32(1 / 120),
                                  _F32(1 / 720), _F32(1 / 5040))

        def exp_f32(x):
            xc = min(max(x, lo), hi)
            n = np.floor(xc * _LOG2E_F32 + half)
            r = (xc - n * _LN2_HI_F32) - n * _LN2_LO_F32
            p = c6 + r * c7
            p = c5 + r * p
            p = c4 + r * p
            p = c3 + r * p
            p = c2 + r * p
            p = one + r * p
            p = one + r * p
            return _mul_pow2(p, np.int32(n)) if x >= lo else zero

        return exp_f32
    if x == types.float64:
        def exp_f64(x):
            xc = min(max(x, -708.0), 709.0)
            n = np.floor(xc * 1.4426950408889634 + 0.5)
            r = (xc - n * _LN2_HI_F64) - n * _LN2_LO_F64
            p = 1.0 / 6227020800.0  # 1/13!
            p = 1.0 / 479001600.0 + r * p
            p = 1.0 / 39916800.0 + r * p
            p = 1.0 / 3628800.0 + r * p
            p = 1.0 / 362880.0 + r * p
            p = 1.0 / 40320.0 + r * p
            p = 1.0 / 5040.0 + r * p
            p = 1.0 / 720.0 + r * p
            p = 1.0 / 120.0 + r * p
            p = 1.0 / 24.0 + r * p
            p = 1.0 / 6.0 + r * p
            p = 0.5 + r * p
            p = 1.0 + r * p
            p = 1.0 + r * p
            return _mul_pow2(p, np.int64(n)) if x >= -708.0 else 0.0

        return exp_f64
    return None


@njit(cache=True, fastmath=_FASTMATH)
def exp_inplace(x):
    """x[:] = exp(x[:]) with the vectorizable ``_exp`` (exposed for tests).

        for i: x[i] = 2**n_i * poly(r_i)

    Optimizations:
        - straight-line polynomial: the loop vectorizes (scalar libm exp would not).
    """
    for i in range(x.size):
        x[i] = _exp(x[i])


# ----------------------------------------------------------------------------------
# Tile helpers (all on contiguous 1-D views; each inner loop vectorizes).
# ----------------------------------------------------------------------------------
@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _add_mask_and_causal(sT, mask_t, has_mask, is_causal, b, h, q0, bq, k0, bk):
    """sT (bk, bq) += mask^T tile; causal: key j hidden from query i < j (sets -inf)."""
    if has_mask:
        mb = b if mask_t.shape[0] > 1 else 0
        mh = h if mask_t.shape[1] > 1 else 0
        per_query = mask_t.shape[3] > 1
        for jj in range(bk):
            mrow = mask_t[mb, mh, k0 + jj if mask_t.shape[2] > 1 else 0]  # (mq,)
            row = sT[jj]
            if per_query:
                for ii in range(bq):
                    row[ii] += mrow[q0 + ii]
            else:
                c = mrow[0]
                for ii in range(bq):
                    row[ii] += c
    if is_causal:
        for jj in range(bk):
            hidden = min(k0 + jj - q0, bq)  # queries q0 .. k0+jj-1 cannot see key k0+jj
            row = sT[jj]
            for ii in range(hidden):
                row[ii] = -np.inf


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _blocks_t(x, scale, out):
    """out (flat) <- x (T, C) * scale cut in row blocks of BLOCK_Q, each stored transposed
    (C, bq) and contiguous at offset q0 * C, so np.dot(k_blk, block) is a plain 'nn' GEMM
    (measured ~1.7x faster than np.dot(k_blk, x_blk.T) on these tile sizes)."""
    T, C = x.shape
    for q0 in range(0, T, BLOCK_Q):
        bq = min(BLOCK_Q, T - q0)
        blk = out[q0 * C:(q0 + bq) * C].reshape((C, bq))
        for ii in range(bq):
            for c in range(C):
                blk[c, ii] = x[q0 + ii, c] * scale


@parallel_kernel(cache=True, fastmath=_FASTMATH)
def _attention_fwd(q, k, v, mask_t, has_mask, is_causal, scale, out, lse, work, work64):
    """Fused forward. q (B,H,Tq,D), k (B,H,Tk,D), v (B,H,Tk,Dv), mask_t (mb,mh,mk,mq)
    (the compact mask, transposed); writes out (B,H,Tq,Dv) and lse (B,H,Tq).
    work (threads, _fwd_work_size), work64 (threads, BLOCK_Q): per-thread scratch.

        for b, h in parallel: qs = q[b,h] * scale
          for query block Q:  m = -inf, l = 0, accT = 0          # accT (Dv, bq)
            for key block K:  sT = k[K] @ qs[Q]^T + mask^T        # (bk, bq)
                              m' = max(m, colmax sT); accT, l *= exp(m - m')
                              pT = exp(sT - m'); l += colsum pT; accT += v[K]^T @ pT
            out[Q] = (accT / l)^T;  lse[Q] = m + log(l)

    Optimizations:
        - prange over B*H (each iteration owns its out/lse slices: no races).
        - tiles transposed (keys x queries): max/sum over keys are vectorized maps.
        - np.dot on contiguous tiles (SciPy BLAS, one thread: see _threads.py).
        - causal: key blocks past the query block's last row are skipped entirely.
        - vectorizable polynomial exp; 'contract' (FMA) is the only fast-math flag.
    """
    B, H, Tq, D = q.shape
    Tk, Dv = k.shape[2], v.shape[3]
    for bh in prange(B * H):
        b, h = bh // H, bh % H
        # this thread's scratch, carved out of work[thread] (allocated by the caller, so
        # it is visible to tracemalloc and never re-allocated per head)
        w = work[get_thread_id()]
        qt, o = w[:Tq * D], Tq * D
        st_buf, o = w[o:o + BLOCK_K * BLOCK_Q], o + BLOCK_K * BLOCK_Q
        acc_buf, o = w[o:o + Dv * BLOCK_Q], o + Dv * BLOCK_Q
        tmp_buf, o = w[o:o + Dv * BLOCK_Q], o + Dv * BLOCK_Q
        m, o = w[o:o + BLOCK_Q], o + BLOCK_Q  # running max per query (-inf: no key yet)
        m_new, o = w[o:o + BLOCK_Q], o + BLOCK_Q
        shift, o = w[o:o + BLOCK_Q], o + BLOCK_Q  # m, or 0 while m = -inf (no -inf - -inf)
        corr = w[o:o + BLOCK_Q]
        l = work64[get_thread_id()]  # (BLOCK_Q,) running sum, accumulated in float64
        _blocks_t(q[b, h], scale, qt)  # q * scale, as transposed (D, bq) blocks
        kh, vh = k[b, h], v[b, h]  # (Tk, D), (Tk, Dv)
        for q0 in range(0, Tq, BLOCK_Q):
            bq = min(BLOCK_Q, Tq - q0)
            qbt = qt[q0 * D:(q0 + bq) * D].reshape((D, bq))  # (q * scale)[Q]^T
            accT = acc_buf[:Dv * bq].reshape((Dv, bq))
            tmpT = tmp_buf[:Dv * bq].reshape((Dv, bq))
            accT[:] = 0.0
            m[:] = -np.inf
            l[:] = 0.0
            k_end = min(Tk, q0 + bq) if is_causal else Tk
            for k0 in range(0, k_end, BLOCK_K):
                bk = min(BLOCK_K, k_end - k0)
                sT = st_buf[:bk * bq].reshape((bk, bq))
                np.dot(kh[k0:k0 + bk], qbt, sT)  # (bk, bq) scores, transposed
                _add_mask_and_causal(sT, mask_t, has_mask, is_causal, b, h, q0, bq, k0, bk)
                # new running max per query (column), as elementwise maxima over rows
                for ii in range(bq):
                    m_new[ii] = m[ii]
                for jj in range(bk):
                    row = sT[jj]
                    for ii in range(bq):
                        if row[ii] > m_new[ii]:
                            m_new[ii] = row[ii]
                for ii in range(bq):
                    if m_new[ii] == -np.inf:  # no visible key yet: l = acc = 0, shift by 0
                        corr[ii] = 1.0
                        shift[ii] = 0.0
                    else:  # exp(-inf - x) = 0 when the first visible key arrives
                        corr[ii] = _exp(m[ii] - m_new[ii])
                        shift[ii] = m_new[ii]
                    m[ii] = m_new[ii]
                    l[ii] *= corr[ii]
                for e in range(Dv):
                    arow = accT[e]
                    for ii in range(bq):
                        arow[ii] *= corr[ii]
                for jj in range(bk):
                    row = sT[jj]
                    for ii in range(bq):
                        p = _exp(row[ii] - shift[ii])
                        row[ii] = p
                        l[ii] += p
                np.dot(vh[k0:k0 + bk].T, sT, tmpT)  # (Dv, bq) = v_blk^T @ pT
                for e in range(Dv):
                    arow, trow = accT[e], tmpT[e]
                    for ii in range(bq):
                        arow[ii] += trow[ii]
            for ii in range(bq):
                if l[ii] > 0.0:
                    inv = 1.0 / l[ii]
                    for e in range(Dv):
                        out[b, h, q0 + ii, e] = accT[e, ii] * inv
                    lse[b, h, q0 + ii] = m[ii] + np.log(l[ii])
                else:  # no visible key at all: out = 0, lse = -inf
                    for e in range(Dv):
                        out[b, h, q0 + ii, e] = 0.0
                    lse[b, h, q0 + ii] = -np.inf


@parallel_kernel(cache=True, fastmath=_FASTMATH)
def _attention_bwd(dout, q, k, v, out, lse, mask_t, has_mask, is_causal, scale, dq, dk, dv,
                   work):
    """Fused backward (FlashAttention-2). Shapes as in _attention_fwd; writes dq, dk, dv.
    work (threads, _bwd_work_size): per-thread scratch.

        for b, h in parallel: d = rowsum(dout * out);  qs = q * scale
          for key block K:   for query block Q:
              pT = exp(k[K] @ qs[Q]^T + mask^T - lse[Q])   # (bk, bq), recomputed
              dv[K] += pT @ dout[Q];   dpT = v[K] @ dout[Q]^T
              dsT = pT * (dpT - d[Q]); dk[K] += dsT @ qs[Q]; dq[Q] += dsT^T @ k[K] * scale

    Optimizations:
        - prange over B*H: dk/dv accumulate into this (b, h)'s own slices, never shared.
        - same transposed tiles as the forward: every elementwise pass is a vector map.
        - D_i = rowsum(dout * out) replaces rowsum(p * dp): no extra (T, T) pass.
        - scale folded into qs, so dk needs no final scaling; dq is scaled once at the end.
    """
    B, H, Tq, D = q.shape
    Tk, Dv = k.shape[2], v.shape[3]
    for bh in prange(B * H):
        b, h = bh // H, bh % H
        w = work[get_thread_id()]  # this thread's scratch (see _bwd_work_size)
        qs_buf, o = w[:Tq * D], Tq * D
        qt, o = w[o:o + Tq * D], o + Tq * D
        dot, o = w[o:o + Tq * Dv], o + Tq * Dv
        d, o = w[o:o + Tq], o + Tq
        lse_h, o = w[o:o + Tq], o + Tq
        st_buf, o = w[o:o + BLOCK_K * BLOCK_Q], o + BLOCK_K * BLOCK_Q
        dp_buf, o = w[o:o + BLOCK_K * BLOCK_Q], o + BLOCK_K * BLOCK_Q
        kv_buf, o = w[o:o + BLOCK_K * max(D, Dv)], o + BLOCK_K * max(D, Dv)
        q_buf = w[o:o + BLOCK_Q * D]
        qs = qs_buf.reshape((Tq, D))
        for i in range(Tq):
            for e in range(D):
                qs[i, e] = q[b, h, i, e] * scale  # (Tq, D)
        _blocks_t(q[b, h], scale, qt)  # the same, as transposed (D, bq) blocks
        _blocks_t(dout[b, h], 1.0, dot)  # dout as transposed (Dv, bq) blocks
        kh, vh, doh = k[b, h], v[b, h], dout[b, h]
        dqh, dkh, dvh = dq[b, h], dk[b, h], dv[b, h]
        dqh[:] = 0.0
        dkh[:] = 0.0
        dvh[:] = 0.0
        # d_i = rowsum(dout_i * out_i); lse -> +inf for fully blocked rows so p = 0
        for i in range(Tq):
            acc = 0.0
            for e in range(Dv):
                acc += doh[i, e] * out[b, h, i, e]
            d[i] = acc
            lse_h[i] = lse[b, h, i] if lse[b, h, i] > -np.inf else np.inf
        for k0 in range(0, Tk, BLOCK_K):
            bk = min(BLOCK_K, Tk - k0)
            kb, vb = kh[k0:k0 + bk], vh[k0:k0 + bk]
            # causal: queries before k0 see none of these keys
            q_start = (k0 // BLOCK_Q) * BLOCK_Q if is_causal else 0
            for q0 in range(q_start, Tq, BLOCK_Q):
                bq = min(BLOCK_Q, Tq - q0)
                qb, dob = qs[q0:q0 + bq], doh[q0:q0 + bq]
                qbt = qt[q0 * D:(q0 + bq) * D].reshape((D, bq))
                dobt = dot[q0 * Dv:(q0 + bq) * Dv].reshape((Dv, bq))
                sT = st_buf[:bk * bq].reshape((bk, bq))
                dpT = dp_buf[:bk * bq].reshape((bk, bq))
                np.dot(kb, qbt, sT)  # (bk, bq)
                _add_mask_and_causal(sT, mask_t, has_mask, is_causal, b, h, q0, bq, k0, bk)
                for jj in range(bk):
                    row = sT[jj]
                    for ii in range(bq):
                        row[ii] = _exp(row[ii] - lse_h[q0 + ii])  # pT
                tv = kv_buf[:bk * Dv].reshape((bk, Dv))
                np.dot(sT, dob, tv)  # (bk, Dv) = pT @ dout_blk
                dvb = dvh[k0:k0 + bk]
                for jj in range(bk):
                    for e in range(Dv):
                        dvb[jj, e] += tv[jj, e]
                np.dot(vb, dobt, dpT)  # (bk, bq) = v_blk @ dout_blk^T
                for jj in range(bk):
                    prow, dprow = sT[jj], dpT[jj]
                    for ii in range(bq):
                        dprow[ii] = prow[ii] * (dprow[ii] - d[q0 + ii])  # dsT
                tk = kv_buf[:bk * D].reshape((bk, D))
                np.dot(dpT, qb, tk)  # (bk, D) = dsT @ qs_blk
                dkb = dkh[k0:k0 + bk]
                for jj in range(bk):
                    for e in range(D):
                        dkb[jj, e] += tk[jj, e]
                tq = q_buf[:bq * D].reshape((bq, D))
                np.dot(dpT.T, kb, tq)  # (bq, D) = dsT^T @ k_blk
                dqb = dqh[q0:q0 + bq]
                for ii in range(bq):
                    for e in range(D):
                        dqb[ii, e] += tq[ii, e]
        for i in range(Tq):
            for e in range(D):
                dqh[i, e] *= scale


# ----------------------------------------------------------------------------------
# Python entry points (argument normalization, then one kernel call).
# ----------------------------------------------------------------------------------
def _compact_mask_t(mask, shape, dtype):
    """The additive mask, un-broadcast to its own data and transposed: (mb, mh, mk, mq).

    Each axis is either full-size or 1; an axis with stride 0 (an np.broadcast_to view) or
    size 1 is reduced to 1, so a broadcast view is never copied to full size. The result
    has the size of the mask's distinct data (at most what the caller materialized).
    """
    if mask is None:
        return np.zeros((1, 1, 1, 1), dtype), False
    m = np.asarray(mask)
    m = m.reshape((1,) * (4 - m.ndim) + m.shape)
    np.broadcast_shapes(m.shape, shape)  # raises on a shape that does not broadcast
    index = tuple(slice(0, 1) if (n == 1 or st == 0) else slice(None)
                  for n, st in zip(m.shape, m.strides))
    m = m[index]
    return np.ascontiguousarray(np.swapaxes(m, 2, 3), dtype=dtype), True


def _fwd_work_size(Tq, D, Dv):
    """Scratch elements per thread for the forward: q^T blocks + tiles. Linear in Tq."""
    return Tq * D + BLOCK_K * BLOCK_Q + (2 * Dv + 4) * BLOCK_Q


def _bwd_work_size(Tq, D, Dv):
    """Scratch elements per thread for the backward: q*scale, q^T, dout^T, d, lse + tiles."""
    return Tq * (2 * D + Dv + 2) + 2 * BLOCK_K * BLOCK_Q + BLOCK_K * max(D, Dv) + BLOCK_Q * D


def attention_forward(q, k, v, mask=None, is_causal=False, scale=None):
    """out (B, H, Tq, Dv) = softmax(q @ k^T * scale + mask) @ v, fused (see _attention_fwd).

    Returns (out, cache); cache holds q, k, v, mask, is_causal, scale, out and lse
    (B, H, Tq); nothing of size Tq x Tk.
    """
    dtype = q.dtype
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[-1])
    q, k, v = (np.ascontiguousarray(x, dtype=dtype) for x in (q, k, v))
    B, H, Tq, _ = q.shape
    Tk, Dv = k.shape[2], v.shape[3]
    mask_t, has_mask = _compact_mask_t(mask, (B, H, Tq, Tk), dtype)
    out = np.empty((B, H, Tq, Dv), dtype)
    lse = np.empty((B, H, Tq), dtype)
    threads = get_num_threads()
    work = np.empty((threads, _fwd_work_size(Tq, q.shape[3], Dv)), dtype)
    work64 = np.empty((threads, BLOCK_Q), np.float64)
    with blas_single_threaded():
        # work: the products' multiply-adds
        launch(_attention_fwd, B * H * Tq * Tk * q.shape[3], q, k, v, mask_t, has_mask,
               bool(is_causal), dtype.type(scale), out, lse, work, work64)
    cache = dict(q=q, k=k, v=v, mask=mask, is_causal=is_causal, scale=scale,
                 out=out, lse=lse, mask_t=mask_t)
    return out, cache


def attention_backward(dout, cache):
    """(dq, dk, dv) for attention_forward, recomputing p from the saved lse."""
    q, k, v, out, lse = cache["q"], cache["k"], cache["v"], cache["out"], cache["lse"]
    dtype = q.dtype
    mask_t = cache.get("mask_t")
    if mask_t is None:  # a cache made by the reference backend
        mask_t, has_mask = _compact_mask_t(cache["mask"], q.shape[:3] + k.shape[2:3], dtype)
    else:
        has_mask = cache["mask"] is not None
    q, k, v, out, dout = (np.ascontiguousarray(x, dtype=dtype) for x in (q, k, v, out, dout))
    lse = np.ascontiguousarray(lse, dtype=dtype)
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    (_, _, Tq, D), Dv = q.shape, v.shape[3]
    work = np.empty((get_num_threads(), _bwd_work_size(Tq, D, Dv)), dtype)
    with blas_single_threaded():
        launch(_attention_bwd, q.size * k.shape[2], dout, q, k, v, out, lse,
               mask_t, has_mask, bool(cache["is_causal"]), dtype.type(cache["scale"]), dq, dk, dv,
               work)
    return dq, dk, dv
