"""Row kernels in plain NumPy: softmax, log-softmax, cross-entropy, layer norm.

All work over the last axis (a (..., C) array seen as rows of C); see the package
docstring for the contract every kernel follows.
"""
from __future__ import annotations

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
