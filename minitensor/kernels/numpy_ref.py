"""Plain-NumPy kernels: the readable specification of every kernel.

``numba_cpu`` has a twin of each function here, same name and same signature; the
tests hold the two together and hold this file to PyTorch. The contract, in brief:

* NumPy arrays in, NumPy arrays out; no Tensors and no autograd. Inputs may be
  non-contiguous. The dtype (float32 or float64) is kept: the output has the input's
  dtype and the arithmetic runs in it.
* ``<name>_forward(...) -> (out, cache)`` and ``<name>_backward(dout, cache) -> grads``.
  The cache is a tuple of the cheapest things backward needs (softmax keeps its output;
  layer norm keeps a reference to ``x`` plus one mean and one rstd per row). It may hold
  references to the inputs, not copies: do not change them in place before backward.
* Row kernels (softmax, log-softmax, cross-entropy, layer norm) work over the last axis.
  A softmax/log-softmax row that is entirely -inf gives NaN, as in PyTorch; -inf entries
  in other rows get probability exactly 0.
* Shapes, dtypes and index bounds are checked by the caller (the functional layer);
  kernels do no checking.

Only numpy and math are needed here, on purpose: this file is also the fallback backend.
"""
from __future__ import annotations

import math

import numpy as np

# ---------------------------------------------------------------------------- softmax


def softmax_forward(x):
    """$y = e^{x - max(x)} / sum(e^{x - max(x)})$ over the last axis.

        for each row r of x:                    # x seen as (R, C)
            m = max_c x[r, c]                   # subtracted for stability only
            e[c] = exp(x[r, c] - m)
            y[r, c] = e[c] / sum_c e[c]

    A fully -inf row has m = -inf, so x - m is NaN and the row is NaN (as torch).
    """
    # x (..., C) -> y (..., C); cache (y,)
    with np.errstate(invalid="ignore"):          # fully -inf rows: NaN by definition
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        y = e / e.sum(axis=-1, keepdims=True)
    return y, (y,)


def softmax_backward(dout, cache):
    """$dx = y * (dout - sum(dout * y))$, the softmax vector-Jacobian product.

        for each row r:
            s = sum_c dout[r, c] * y[r, c]
            dx[r, c] = y[r, c] * (dout[r, c] - s)
    """
    # dout (..., C), y (..., C) -> dx (..., C)
    (y,) = cache
    return y * (dout - (dout * y).sum(axis=-1, keepdims=True))


def log_softmax_forward(x):
    """$out = x - m - log(sum(e^{x - m}))$ with m the row max (log-sum-exp trick).

        for each row r:
            m = max_c x[r, c]
            lse = m + log(sum_c exp(x[r, c] - m))
            out[r, c] = x[r, c] - lse           # computed as (x - m) - log(...)

    A fully -inf row gives NaN (as torch); a -inf entry elsewhere gives -inf.
    """
    # x (..., C) -> out (..., C); cache (out,)
    with np.errstate(invalid="ignore"):          # fully -inf rows: NaN by definition
        shifted = x - x.max(axis=-1, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return out, (out,)


def log_softmax_backward(dout, cache):
    """$dx = dout - e^{out} * sum(dout)$.

        for each row r:
            s = sum_c dout[r, c]
            dx[r, c] = dout[r, c] - exp(out[r, c]) * s
    """
    # dout (..., C), out (..., C) -> dx (..., C)
    (out,) = cache
    return dout - np.exp(out) * dout.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------- cross-entropy


def cross_entropy_forward(logits, target, ignore_index, label_smoothing, reduction):
    """torch.nn.functional.cross_entropy on class indices, with label smoothing.

        for each row i:                         # logits (N, C)
            lse = m + log(sum_c exp(logits[i, c] - m))          # m = row max
            nll = lse - logits[i, t_i]                          # -logp[i, t_i]
            smooth = lse - mean_c logits[i, c]                  # mean_c -logp[i, c]
            loss_i = (1 - eps) * nll + eps * smooth  if t_i != ignore_index else 0

    'mean' divides by the number of rows that are not ignored (all ignored -> NaN).
    The smooth term is skipped when eps == 0 (as torch), so -inf logits away from the
    target keep the loss finite. The cache keeps ``logits`` (a reference) and one
    log-sum-exp per row; backward recomputes the probabilities from them.
    """
    # logits (N, C), target (N,) int -> loss (N,) or 0-d
    n, c = logits.shape
    eps = label_smoothing
    valid = target != ignore_index
    t = np.where(valid, target, 0)               # safe index for ignored rows
    m = logits.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):          # fully -inf rows: NaN, as torch
        lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
        loss = lse - logits[np.arange(n), t]
        if eps > 0:
            loss = (1 - eps) * loss + eps * (lse - logits.mean(axis=1))
    loss = np.where(valid, loss, 0).astype(logits.dtype, copy=False)
    count = int(valid.sum())
    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = np.asarray(loss.sum(), dtype=logits.dtype)
    else:  # 'mean'
        out = np.asarray(loss.sum() / count if count else np.nan, dtype=logits.dtype)
    return out, (logits, t, valid, lse, eps, reduction, count)


def cross_entropy_backward(dloss, cache):
    """$dlogits = (softmax(logits) - q) * g_i$, q the smoothed one-hot target.

        for each row i:
            g = dloss[i] ('none') | dloss ('sum') | dloss / count ('mean'); 0 if ignored
            for each class c:
                q = (1 - eps) * [c == t_i] + eps / C
                dlogits[i, c] = (exp(logits[i, c] - lse[i]) - q) * g
    """
    # dloss (N,) or 0-d -> dlogits (N, C)
    logits, t, valid, lse, eps, reduction, count = cache
    n, c = logits.shape
    g = np.broadcast_to(np.asarray(dloss, dtype=logits.dtype), (n,))
    if reduction == "mean":
        g = g / max(count, 1)
    q = np.zeros_like(logits)
    q[np.arange(n), t] = 1 - eps
    with np.errstate(invalid="ignore"):
        d = (np.exp(logits - lse[:, None]) - (q + eps / c)) * g[:, None]
    return np.where(valid[:, None], d, 0).astype(logits.dtype, copy=False)


# ------------------------------------------------------------------------- layer norm


def layer_norm_forward(x, weight, bias, eps):
    """$out = (x - mean) / sqrt(var + eps) * weight + bias$ over the last axis.

        for each row r:
            mean = sum_c x[r, c] / C
            var = sum_c (x[r, c] - mean)^2 / C          # biased, as torch
            rstd = 1 / sqrt(var + eps)
            out[r, c] = (x[r, c] - mean) * rstd * weight[c] + bias[c]
    """
    # x (..., C), weight (C,) | None, bias (C,) | None -> out (..., C)
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    rstd = 1 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + eps)
    out = xc * rstd
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out, (x, mean, rstd, weight, bias is not None)


def layer_norm_backward(dout, cache):
    """Gradients of layer norm; dweight/dbias are None when weight/bias were None.

        for each row r:                         # xhat = (x - mean) * rstd
            g[c] = dout[r, c] * weight[c]
            dx[r, c] = rstd * (g[c] - mean_c(g) - xhat[r, c] * mean_c(g * xhat[r]))
            dweight[c] += dout[r, c] * xhat[r, c];  dbias[c] += dout[r, c]
    """
    # dout (..., C) -> dx (..., C), dweight (C,) | None, dbias (C,) | None
    x, mean, rstd, weight, has_bias = cache
    c = x.shape[-1]
    xhat = (x - mean) * rstd
    g = dout * weight if weight is not None else dout
    dx = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    dweight = (dout * xhat).reshape(-1, c).sum(axis=0) if weight is not None else None
    dbias = dout.reshape(-1, c).sum(axis=0) if has_bias else None
    return dx, dweight, dbias


# ------------------------------------------------------------------------------- GELU

_SQRT1_2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_KAPPA = 0.044715


def gelu_forward(x, approximate):
    """$gelu(x) = x * Phi(x)$; approximate='tanh' uses torch's tanh formula.

        for each element:
            'none': out = 0.5 * x * (1 + erf(x / sqrt(2)))
            'tanh': out = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
    """
    # x (...) -> out (...); cache (x, approximate)
    if approximate == "tanh":
        out = 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + _KAPPA * x * x * x)))
    else:
        out = 0.5 * x * (1 + _erf(x * _SQRT1_2).astype(x.dtype, copy=False))
    return out, (x, approximate)


def gelu_backward(dout, cache):
    """$dx = dout * gelu'(x)$ (torch's formulas for both variants).

        'none': dx = dout * (0.5 * (1 + erf(x / sqrt 2)) + x * exp(-x^2 / 2) / sqrt(2 pi))
        'tanh': t = tanh(u), u = sqrt(2/pi) (x + k x^3)
                dx = dout * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 k x^2))
    """
    # dout (...), x (...) -> dx (...)
    x, approximate = cache
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _KAPPA * x * x * x))
        slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _KAPPA * x * x)
    else:
        cdf = 0.5 * (1 + _erf(x * _SQRT1_2).astype(x.dtype, copy=False))
        slope = cdf + x * np.exp(-0.5 * x * x) * _INV_SQRT_2PI
    return dout * slope


def _poly(z, coeffs):
    """Horner: coeffs[0] + z * (coeffs[1] + z * (...)), in place on one buffer."""
    acc = np.full_like(z, coeffs[-1])
    for a in coeffs[-2::-1]:
        acc *= z
        acc += a
    return acc


# fdlibm s_erf.c (Sun Microsystems, 1993): rational approximations, error < 1 ulp.
_ERX = 8.45062911510467529297e-01
_PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
       -5.77027029648944159157e-03, -2.37630166566501626084e-05)
_QQ = (1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
       1.32494738004321644526e-04, -3.96022827877536812320e-06)
_PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
       3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
       -2.16637559486879084300e-03)
_QA = (1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
       1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02)
_RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01,
       -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02,
       -8.12874355063065934246e+01, -9.81432934416914548592e+00)
_SA = (1.0, 1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02,
       6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02,
       6.57024977031928170135e+00, -6.04244152148580987438e-02)
_RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01,
       -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03,
       -4.83519191608651397019e+02)
_SB = (1.0, 3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03,
       3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02,
       -2.24409524465858183362e+01)
_ERF_TAIL_SPLIT = 2.857142448425293  # fdlibm's 1/0.35 (high word 0x4006DB6E)


def _erf(x):
    """erf in float64 to < 1 ulp, vectorized: fdlibm's s_erf.c, one interval at a time.

        |x| < 0.84375:   erf = x + x * P(x^2) / Q(x^2)
        |x| < 1.25:      erf = erx + P(s) / Q(s),  s = |x| - 1
        |x| < 6:         erf = 1 - exp(-z^2 - 0.5625) * exp((z - |x|)(z + |x|) + R/S) / |x|
                         (z = |x| with its low 32 bits cleared, so z^2 is exact)
        |x| >= 6:        erf = 1;   sign restored at the end, NaN stays NaN

    Large inputs go through in chunks so the temporaries stay in cache.
    """
    x = np.asarray(x, dtype=np.float64)
    chunk = 1 << 15
    if x.ndim != 1 or x.size > chunk:
        flat = x.reshape(-1)
        parts = [_erf(flat[i:i + chunk]) for i in range(0, flat.size, chunk)]
        return np.concatenate(parts or [flat]).reshape(x.shape)
    ax = np.abs(x)
    out = ax.copy()                      # NaN lanes keep NaN
    small = ax < 0.84375
    a = ax[small]
    out[small] = a + a * (_poly(a * a, _PP) / _poly(a * a, _QQ))
    mid = (ax >= 0.84375) & (ax < 1.25)
    s = ax[mid] - 1
    out[mid] = _ERX + _poly(s, _PA) / _poly(s, _QA)
    tail = (ax >= 1.25) & (ax < 6)
    a = ax[tail]
    s = 1 / (a * a)
    near = a < _ERF_TAIL_SPLIT
    ratio = np.where(near, _poly(s, _RA) / _poly(s, _SA), _poly(s, _RB) / _poly(s, _SB))
    z = (a.view(np.uint64) & np.uint64(0xFFFFFFFF00000000)).view(np.float64)
    out[tail] = 1 - np.exp(-z * z - 0.5625) * np.exp((z - a) * (z + a) + ratio) / a
    out[ax >= 6] = 1
    return np.copysign(out, x)


# ------------------------------------------------------------------------------- ReLU


def relu_forward(x):
    """$out = max(x, 0)$ elementwise (NaN stays NaN; -0.0 gives +0.0, as np.maximum).

        for each element i: out[i] = x[i] if x[i] > 0 or isnan(x[i]) else 0
    """
    # x (...) -> out (...); cache (out,)
    out = np.maximum(x, 0)
    return out, (out,)


def relu_backward(dout, cache):
    """$dx = dout$ where out > 0, else 0: the gradient at exactly 0 is 0, and a NaN
    output passes the gradient through (both as torch)."""
    # dout (...), out (...) -> dx (...)
    (out,) = cache
    return np.where(out <= 0, 0, dout)


# ---------------------------------------------------------------------------- dropout

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _keep_mask(shape, p, seed):
    """The dropout keep mask: element i (C order) is kept iff hash(seed, i) >= p * 2^53.

        for each flat index i:
            z = splitmix64(seed ^ (i * golden))            # counter-based: no RNG state
            keep[i] = (z >> 11) >= ceil(p * 2^53)          # top 53 bits vs threshold
    """
    i = np.arange(math.prod(shape), dtype=np.uint64)
    z = np.uint64(seed & 0xFFFFFFFFFFFFFFFF) ^ (i * _GOLDEN)
    z = z + _GOLDEN                      # splitmix64: add, then two xor-shift-multiplies
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)) >= np.uint64(math.ceil(p * 2.0**53))).reshape(shape)


def dropout_forward(x, p, seed):
    """Inverted dropout: $out = x * keep / (1 - p)$, keep from a hash of (seed, index).

        for each flat index i:
            out[i] = x[i] * (scale if keep(seed, i) else 0)      # scale = 1 / (1 - p)

    p == 0 returns x itself; p == 1 returns zeros. The cache is (p, seed): backward
    regenerates the mask, so nothing of the size of x is kept.
    """
    # x (...) -> out (...); cache (p, seed)
    if p == 0:
        return x, (p, seed)
    if p == 1:
        return np.zeros_like(x), (p, seed)
    factor = _keep_mask(x.shape, p, seed) * x.dtype.type(1 / (1 - p))
    return x * factor, (p, seed)


def dropout_backward(dout, cache):
    """$dx = dout * keep / (1 - p)$ with the same mask as forward (regenerated)."""
    # dout (...) -> dx (...)
    p, seed = cache
    out, _ = dropout_forward(dout, p, seed)
    return out


# ------------------------------------------ attention over merged heads, with dropout


def _split_heads(x, h):
    """(B, T, H*D) -> (B, H, T, D) view."""
    b, t, e = x.shape
    return x.reshape(b, t, h, e // h).transpose(0, 2, 1, 3)


def _blocked_rows(mask, shape):
    """(B|1, H|1, L, 1) bool: rows of the additive mask that hide every key (or None)."""
    if mask is None:
        return None
    return np.all(np.isneginf(np.broadcast_to(mask, shape[:-2] + mask.shape[-2:])), axis=-1,
                  keepdims=True)


def _unpack_qkv(inputs, layout):
    """Views q, k, v of the inputs: layout "q,k,v" (three arrays), "qkv" (one (B, L, 3E)
    array, q, k, v side by side) or "q,kv" (q, and k, v side by side; k has q's width)."""
    if layout == "qkv":
        (x,) = inputs
        e = x.shape[-1] // 3
        return x[..., :e], x[..., e:2 * e], x[..., 2 * e:]
    if layout == "q,kv":
        q, kv = inputs
        e = q.shape[-1]
        return q, kv[..., :e], kv[..., e:]
    return tuple(inputs)


def _pack_qkv(dq, dk, dv, layout):
    """Gradients laid out like the inputs (_unpack_qkv's inverse)."""
    if layout == "qkv":
        return (np.concatenate((dq, dk, dv), axis=-1),)
    if layout == "q,kv":
        return dq, np.concatenate((dk, dv), axis=-1)
    return dq, dk, dv


def multi_head_sdpa_forward(inputs, layout, num_heads, mask, scale, dropout_p, seed):
    """Scaled dot-product attention per head on heads-merged, batch-first arrays, the
    weights materialized (what a projection produces, so no head split/merge copies):

        q (B, L, H*D), k (B, S, H*D), v (B, S, H*Dv) -> out (B, L, H*Dv)
        for b, h:  s = q_h k_h^T * scale + mask                  # (L, S)
                   p = softmax(s)      (a row whose keys are all masked: p = 0)
                   out_h = dropout(p) v_h      # mask bits from (seed, index in (B, H, L, S))

    ``inputs`` hold q, k, v as ``layout`` says (see _unpack_qkv): packed as a projection
    makes them, so their gradients come back packed too, in one array each.
    mask: additive float (0 visible, -inf blocked) broadcastable to (B, H, L, S), or None.
    Same arithmetic, in the same order, as the separate ops (matmul, * scale, + mask,
    softmax, dropout, matmul). The cache keeps p (B, H, L, S), as those ops do.
    """
    # inputs as above -> out (B, L, H*Dv); cache (p, scale, dropout_p, seed, H, layout, *inputs)
    h = num_heads
    q, k, v = _unpack_qkv(inputs, layout)
    qh, kh, vh = _split_heads(q, h), _split_heads(k, h), _split_heads(v, h)   # (B, H, T, D)
    s = np.matmul(qh, kh.swapaxes(-1, -2)) * q.dtype.type(scale)            # (B, H, L, S)
    blocked = _blocked_rows(mask, s.shape)
    if mask is not None:
        s = s + np.where(blocked, q.dtype.type(0), mask.astype(q.dtype, copy=False))
    p, _ = softmax_forward(s)                                               # (B, H, L, S)
    if blocked is not None:
        p = np.where(blocked, q.dtype.type(0), p)
    dropped, _ = dropout_forward(p, dropout_p, seed)
    out = np.matmul(dropped, vh)                                            # (B, H, L, Dv)
    b, l = q.shape[:2]
    out = out.transpose(0, 2, 1, 3).reshape(b, l, -1)                       # (B, L, H*Dv)
    return out, (p, scale, dropout_p, seed, h, layout, *inputs)


def multi_head_sdpa_backward(dout, cache):
    """Gradients of multi_head_sdpa_forward, one per input (packed like the inputs).

        for b, h:  dv_h = dropout(p)^T dout_h;  dp = dropout'(dout_h v_h^T)
                   ds = p * (dp - rowsum(dp * p)) * scale          # softmax backward
                   dq_h = ds k_h;  dk_h = ds^T q_h
    """
    # dout (B, L, H*Dv) -> dq (B, L, H*D), dk (B, S, H*D), dv (B, S, H*Dv), packed
    p, scale, dropout_p, seed, h, layout, *inputs = cache
    q, k, v = _unpack_qkv(inputs, layout)
    qh, kh, vh = _split_heads(q, h), _split_heads(k, h), _split_heads(v, h)
    doh = _split_heads(dout, h)                                             # (B, H, L, Dv)
    dropped, _ = dropout_forward(p, dropout_p, seed)
    dvh = np.matmul(dropped.swapaxes(-1, -2), doh)                          # (B, H, S, Dv)
    dp = dropout_backward(np.matmul(doh, vh.swapaxes(-1, -2)), (dropout_p, seed))
    ds = softmax_backward(dp, (p,)) * q.dtype.type(scale)                   # (B, H, L, S)
    dqh = np.matmul(ds, kh)                                                 # (B, H, L, D)
    dkh = np.matmul(ds.swapaxes(-1, -2), qh)                                # (B, H, S, D)

    def merge(x):                                                           # (B, H, T, D) -> (B, T, H*D)
        return x.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1)
    return _pack_qkv(merge(dqh), merge(dkh), merge(dvh), layout)


# -------------------------------------------------------------------------- embedding


def embedding_forward(weight, indices):
    """Row lookup: $out[..., :] = weight[indices[...], :]$.

        for each position n of indices:         # weight (V, D)
            out[n, :] = weight[indices[n], :]
    """
    # weight (V, D), indices (...) int -> out (*indices.shape, D); cache (indices, V)
    return weight[indices], (indices, weight.shape[0])


def embedding_backward(dout, cache, padding_idx):
    """Scatter-add of dout rows into a zero (V, D) gradient; row padding_idx stays 0.

        dweight = zeros(V, D)
        for each position n of indices:
            dweight[indices[n], :] += dout[n, :]          # repeated indices accumulate
        dweight[padding_idx, :] = 0
    """
    # dout (*indices.shape, D) -> dweight (V, D)
    indices, v = cache
    d = dout.shape[-1]
    dweight = np.zeros((v, d), dtype=dout.dtype)
    np.add.at(dweight, indices.reshape(-1), dout.reshape(-1, d))
    if padding_idx is not None:
        dweight[padding_idx] = 0
    return dweight


# Attention and matmul live in their own files (kept short); re-exported here so the
# backend module has every kernel name.
from .attention_ref import attention_forward, attention_backward, matmul  # noqa: E402,F401


def linear(x, weight, bias):
    """$y = x W^T + b$ for x (N, in), weight (out, in), bias (out,) or None.

        for each row n: for each o: y[n, o] = sum_i x[n, i] * weight[o, i] + bias[o]
    """
    # x (N, in), weight (out, in), bias (out,) | None -> y (N, out)
    out = matmul(x, weight.T)
    if bias is not None:
        out += bias
    return out


def linear_backward(dout, x, weight, needs):
    """(dx, dweight, dbias) of linear: $dx = dout W$, $dW = dout^T x$, $db = sum_n dout[n]$;
    ``needs`` (3 bools) says which to compute (None for the others; x or weight may be
    None when not needed)."""
    # dout (N, out) -> dx (N, in) | None, dweight (out, in) | None, dbias (out,) | None
    dx = matmul(dout, weight) if needs[0] else None
    dw = matmul(dout.T, x) if needs[1] else None
    db = dout.sum(axis=0) if needs[2] else None
    return dx, dw, db
