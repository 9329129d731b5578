"""Attention kernels in Numba, all of them (twins of ``numpy_ref/attention.py``).

Two kernel pairs, with the same functions, signatures and conventions as the reference
(read that file first):

    attention_forward(q, k, v, mask, is_causal, scale) -> (out, cache)
    attention_backward(dout, cache) -> (dq, dk, dv)
        fused, FlashAttention-2 style: the (Tq, Tk) score matrix is never stored.
    attention_weights_forward(inputs, layout, num_heads, mask, scale, dropout_p, seed) -> (out, cache)
    attention_weights_backward(dout, dweights, cache) -> grads packed like the inputs
        per (batch, head) on heads-merged arrays, the weights kept (dropout on them);
        the backward also takes the weights' gradient (or None).

Fused attention: per (batch, head) and block of queries, the keys are visited block by
block with a running max ``m`` and running sum ``l`` (online softmax); the cache keeps
only ``lse = m + log(l)`` per query row, and the backward pass recomputes the
probabilities from it. Extra memory per thread is a few (block x block) tiles, so it
grows linearly in T, not quadratically.

Layout choice: every tile is computed *transposed*, keys along rows and queries along the
contiguous axis (``sT = k_blk @ q_blk^T``). The per-query reductions of softmax (row max,
row sum) then become elementwise maps over a contiguous row, which LLVM vectorizes
without fast-math; a float max reduction along a row would not vectorize.

The tile copies, mask compaction, packed-layout helpers and the per-tile softmax of the
heads-merged kernels are in ``_tiles.py``; exp is ``_math._exp`` (the one every kernel uses).

Debugging: ``NUMBA_DISABLE_JIT=1`` runs the kernels as plain Python (slow, same results;
``_exp`` then falls back to ``np.exp``). Parallel diagnostics:
``_attention_fwd.parallel_diagnostics(level=3)`` after one call.
"""
from __future__ import annotations

import numpy as np
from numba import get_num_threads, get_thread_id, prange

from ..buffers import empty
from ._background_compile import asked_ahead, compile_ahead
from ._math import _JIT, _exp
from ._threads import blas_single_threaded, launch, parallel_kernel
from ._tiles import (_FASTMATH, _QKV_INPUT, BLOCK_K, BLOCK_Q, _add_mask_and_causal, _blocks_t,
                     _compact_head_mask, _compact_mask_t, _dropout_consts, _dropout_tile, _gemm,
                     _gemm_tn, _load_cols, _load_cols_t, _masked_softmax, _one_query_weights,
                     _qkv_columns, _softmax_dropout_backward, _store_cols, _weighted_rows)

# ----------------------------------------------------------------------------------
# Fused attention (online softmax forward, recompute backward)
# ----------------------------------------------------------------------------------
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
    out = empty((B, H, Tq, Dv), dtype)
    lse = empty((B, H, Tq), dtype)
    threads = get_num_threads()
    work = empty((threads, _fwd_work_size(Tq, q.shape[3], Dv)), dtype)
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
    work = empty((get_num_threads(), _bwd_work_size(Tq, D, Dv)), dtype)
    with blas_single_threaded():
        launch(_attention_bwd, q.size * k.shape[2], dout, q, k, v, out, lse,
               mask_t, has_mask, bool(cache["is_causal"]), dtype.type(cache["scale"]), dq, dk, dv,
               work)
    return dq, dk, dv


# ------------------------------- attention over merged heads, weights kept, with dropout
# Per (batch, head) the tiles are small (the default task: 11 x 11 weights, head dim 16):
# fixed costs per head decide the speed. So the tasks are chunks of heads, each with its
# scratch tiles allocated once; the products are BLAS calls on C-contiguous tiles (one
# np.dot specialization: _tiles._gemm); softmax and dropout run over the whole (L, S) tile
# at once where they can (a flat loop of L*S elements vectorizes, an 11-element row does
# not). One query per head (greedy decoding with a KV cache) has its own kernel, below.


def _heads_per_task(n):
    """Heads per prange task: ~4 tasks per thread (balance), at least 1."""
    return max(1, n // (4 * get_num_threads()))


@parallel_kernel(**_JIT)
def _attention_weights_fwd(qsrc, ksrc, vsrc, cols, dk, dv, mask, has_mask, scale, seed, threshold,
                           dscale, zero, p, out, per):
    B, heads, L, S = p.shape
    n = B * heads
    for task in prange((n + per - 1) // per):
        qs, kt = np.empty((L, dk), p.dtype), np.empty((dk, S), p.dtype)
        vs, o = np.empty((S, dv), p.dtype), np.empty((L, dv), p.dtype)
        factors, dropped = np.empty((L, S), p.dtype), np.empty((L, S), p.dtype)
        for bh in range(task * per, min(n, (task + 1) * per)):
            b, h = bh // heads, bh % heads
            ph = p[b, h]                                               # (L, S)
            _load_cols(qsrc, b, cols[0] + h * dk, qs)
            _load_cols_t(ksrc, b, cols[1] + h * dk, kt)
            _gemm(qs, kt, ph)                                          # scores, in place of p
            _masked_softmax(ph, mask, b, h, has_mask, scale)
            w = _dropout_tile(ph, bh * L * S, seed, threshold, dscale, zero, factors, dropped)
            _load_cols(vsrc, b, cols[2] + h * dv, vs)
            _gemm(w, vs, o)                                            # (L, Dv)
            _store_cols(o, out, b, h * dv)


@parallel_kernel(**_JIT)
def _attention_one_query_fwd(qsrc, ksrc, vsrc, cols, dk, dv, mask, has_mask, scale, seed,
                             threshold, dscale, zero, p, out, per):
    B, heads, _, S = p.shape
    n = B * heads
    for task in prange((n + per - 1) // per):
        acc = np.empty(dv, p.dtype)
        factors, dropped = np.empty((1, S), p.dtype), np.empty((1, S), p.dtype)
        for bh in range(task * per, min(n, (task + 1) * per)):
            b, h = bh // heads, bh % heads
            ph = p[b, h]                                               # (1, S)
            _one_query_weights(qsrc, ksrc, np.uint64(cols[0] + h * dk),
                               np.uint64(cols[1] + h * dk), dk, mask, has_mask, scale, ph, b, h)
            w = _dropout_tile(ph, bh * S, seed, threshold, dscale, zero, factors, dropped)
            _weighted_rows(w, vsrc, b, np.uint64(cols[2] + h * dv), out, b, np.uint64(h * dv), acc)


def attention_weights_forward(inputs, layout, num_heads, mask, scale, dropout_p, seed):
    """Attention per head on heads-merged arrays (see numpy_ref.attention_weights_forward).

        for each chunk of (b, h) in parallel:       # q (B, L, H*D), k (B, S, H*D), v (B, S, H*Dv)
            q_h, k_h^T, v_h = head h's columns, copied into tiles      # (L, D), (D, S), (S, Dv)
            p[b, h] = q_h k_h^T;  * scale + mask, softmax (flat exp)  # (L, S), kept for backward
            out[b, :, head h's columns] = dropout(p[b, h]) v_h

    Optimizations: a task is a chunk of heads (~4 per thread) with its scratch tiles
    allocated once; each head writes only its own p[b, h] and its columns of out (no
    races); the head split/merge happens on tiles read straight from the packed
    projections (unit-stride rows); scores land in p[b, h] and are turned into weights
    in place; dropout at p = 0 is skipped, not multiplied by 1; the mask keeps its
    broadcast axes (a key padding mask is one row per batch). The two products are BLAS
    calls on contiguous tiles (one BLAS thread: see _threads.py). With one query per
    head (decoding) the products are plain loops instead (_attention_one_query_fwd):
    a BLAS call costs more than a (1, 16) x (16, 20) product.
    """
    # inputs (layout) -> out (B, L, H*Dv); cache (p, scale, dropout_p, seed, H, layout, *arrays)
    dtype = inputs[0].dtype
    arrays = [np.ascontiguousarray(x, dtype=dtype) for x in inputs]
    cols, width, width_v = _qkv_columns(arrays, layout)
    qi, ki, vi = _QKV_INPUT[layout]
    B, L = arrays[0].shape[:2]
    S = arrays[ki].shape[1]
    mask4, has_mask = _compact_head_mask(mask, (B, num_heads, L, S), dtype)
    threshold, dscale, zero = _dropout_consts(dropout_p, dtype)
    p = empty((B, num_heads, L, S), dtype)
    out = empty((B, L, width_v), dtype)
    dk, dv = width // num_heads, width_v // num_heads
    args = (arrays[qi], arrays[ki], arrays[vi], cols, dk, dv, mask4, has_mask, dtype.type(scale),
            np.uint64(seed & 0xFFFFFFFFFFFFFFFF), threshold, dscale, zero, p, out,
            _heads_per_task(B * num_heads))
    if L == 1:  # work: the products' multiply-adds
        launch(_attention_one_query_fwd, p.size * (dk + dv), *args)
    else:
        with blas_single_threaded():
            launch(_attention_weights_fwd, p.size * (dk + dv), *args)
        _ask_for_backward_kernel(out, args, arrays[qi], arrays[ki], arrays[vi])
    return out, (p, scale, dropout_p, seed, num_heads, layout, *arrays)


def _ask_for_backward_kernel(out, args, q, k, v) -> None:
    """At the first forward, ask for the backward's kernel (its serial twin: the first
    backward runs it, see _threads.launch) to be compiled in the background for the types
    the backward will pass: on an empty cache it is ready when the first backward comes,
    seconds later (1 s of the first config-S step otherwise). args: the forward's."""
    if asked_ahead(_attention_weights_bwd.serial):
        return
    qsrc, ksrc, vsrc, cols, dk, dv, _, _, scale, seed, threshold, dscale, zero, p, _, per = args
    no_dweights = np.zeros((1, 1, 1, 1), p.dtype)
    compile_ahead(_attention_weights_bwd.serial, out, no_dweights, False, qsrc, ksrc, vsrc,
                  cols, dk, dv, p, scale, seed, threshold, dscale, zero, q, k, v, per)


@parallel_kernel(**_JIT)
def _attention_weights_bwd(dout, dweights, has_dweights, qsrc, ksrc, vsrc, cols, dk, dv, p,
                           scale, seed, threshold, dscale, zero, dqdst, dkdst, dvdst, per):
    B, heads, L, S = p.shape
    n = B * heads
    for task in prange((n + per - 1) // per):
        qs, ks = np.empty((L, dk), p.dtype), np.empty((S, dk), p.dtype)
        vt, dos = np.empty((dv, S), p.dtype), np.empty((L, dv), p.dtype)
        factors, dropped = np.empty((L, S), p.dtype), np.empty((L, S), p.dtype)
        ds = np.empty((L, S), p.dtype)
        dqs, dks = np.empty((L, dk), p.dtype), np.empty((S, dk), p.dtype)
        dvs = np.empty((S, dv), p.dtype)
        for bh in range(task * per, min(n, (task + 1) * per)):
            b, h = bh // heads, bh % heads
            qc, kc, vc = cols[0] + h * dk, cols[1] + h * dk, cols[2] + h * dv
            _load_cols(qsrc, b, qc, qs)
            _load_cols(ksrc, b, kc, ks)
            _load_cols_t(vsrc, b, vc, vt)
            _load_cols(dout, b, h * dv, dos)
            ph = p[b, h]                                               # (L, S)
            w = _dropout_tile(ph, bh * L * S, seed, threshold, dscale, zero, factors, dropped)
            _gemm_tn(w, dos, dvs)                                      # dv_h (S, Dv)
            _store_cols(dvs, dvdst, b, vc)
            _gemm(dos, vt, ds)                                         # d dropped (L, S)
            _softmax_dropout_backward(ds, ph, factors, threshold != 0, dweights, has_dweights,
                                      b, h, scale)
            _gemm(ds, ks, dqs)                                         # dq_h (L, D)
            _store_cols(dqs, dqdst, b, qc)
            _gemm_tn(ds, qs, dks)                                      # dk_h (S, D)
            _store_cols(dks, dkdst, b, kc)


def attention_weights_backward(dout, dweights, cache):
    """Gradients of attention_weights_forward, packed like the inputs (see numpy_ref);
    dweights (B, H, L, S) is the gradient of the weights, or None.

        for each chunk of (b, h) in parallel:
            f = dropout factors of p[b, h] (regenerated);  dv_h = (p f)^T dout_h
            dp = (dout_h v_h^T) f + dweights_h;  ds = p (dp - rowsum(dp p)) * scale
            dq_h = ds k_h;  dk_h = ds^T q_h            # written into head h's columns

    Optimizations: as the forward; the products take contiguous tiles, two of them
    transposed by BLAS itself (_gemm_tn), v_h loaded transposed: two np.dot
    specializations in all. Each task writes its own heads' columns of the gradient
    arrays, which are laid out like the inputs: a packed qkv gets one gradient array
    with no concatenation.
    """
    # dout (B, L, H*Dv) -> one gradient per input, same shapes
    p, scale, dropout_p, seed, heads, layout, *arrays = cache
    dtype = p.dtype
    cols, width, width_v = _qkv_columns(arrays, layout)
    qi, ki, vi = _QKV_INPUT[layout]
    threshold, dscale, zero = _dropout_consts(dropout_p, dtype)
    grads = [empty(a.shape, dtype) for a in arrays]    # every column is written below
    dk, dv = width // heads, width_v // heads
    has_dweights = dweights is not None
    # without a weights' gradient, a dummy of the same type (one compiled kernel)
    dweights = (np.ascontiguousarray(dweights, dtype) if has_dweights
                else np.zeros((1, 1, 1, 1), dtype))
    with blas_single_threaded():
        launch(_attention_weights_bwd, p.size * (dk + dv), np.ascontiguousarray(dout, dtype),
               dweights, has_dweights, arrays[qi], arrays[ki], arrays[vi], cols, dk, dv, p,
               dtype.type(scale), np.uint64(seed & 0xFFFFFFFFFFFFFFFF), threshold, dscale, zero,
               grads[qi], grads[ki], grads[vi], _heads_per_task(p.shape[0] * heads))
    return tuple(grads)
