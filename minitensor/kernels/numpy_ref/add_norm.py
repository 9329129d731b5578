"""The Transformer's "Add & Norm" box in plain NumPy: a residual add with dropout on the
branch, then (post-norm) layer norm over the last axis.

    add_norm      out = LayerNorm(x + dropout(y))      post-norm, the paper's box
    add_dropout   out = x + dropout(y)                 pre-norm's residual (its norm is
                                                       on the sub-layer's input)

The spec is literally the composition of the ``dropout`` and ``layer_norm`` kernels, so
the fused op gives the same numbers as Dropout -> Add -> LayerNorm, from the same
counter-based mask (element i of y kept from a hash of (seed, i), C order). p == 0
skips the mask; p == 1 drops the whole branch.
"""
from __future__ import annotations

from .pointwise import dropout_backward, dropout_forward
from .rows import layer_norm_backward, layer_norm_forward


def add_norm_forward(x, y, weight, bias, eps, p, seed):
    """$out = (r - mean) / sqrt(var + eps) * weight + bias$, $r = x + y * keep / (1 - p)$.

        for each row i:                         # x, y seen as (R, C)
            r[i, c] = x[i, c] + y[i, c] * (scale if keep(seed, i*C + c) else 0)
            mean = sum_c r[i, c] / C;  var = sum_c (r[i, c] - mean)^2 / C
            out[i, c] = (r[i, c] - mean) / sqrt(var + eps) * weight[c] + bias[c]

    The cache keeps r (layer norm's input), one mean and one rstd per row, and (p, seed):
    backward regenerates the mask instead of storing it.
    """
    # x (..., C), y (..., C), weight (C,) | None, bias (C,) | None -> out (..., C)
    dropped, _ = dropout_forward(y, p, seed)
    out, norm_cache = layer_norm_forward(x + dropped, weight, bias, eps)
    return out, (norm_cache, p, seed)


def add_norm_backward(dout, cache):
    """Gradients of add_norm: the layer-norm backward gives dr; then dx = dr and
    dy = dr * keep / (1 - p) (dy is dr itself when p == 0).

        for each row i:                         # xhat = (r - mean) * rstd
            g[c] = dout[i, c] * weight[c]
            dr[i, c] = rstd * (g[c] - mean_c(g) - xhat[i, c] * mean_c(g * xhat[i]))
            dx[i, c] = dr[i, c];  dy[i, c] = dr[i, c] * (scale if keep(seed, i*C + c) else 0)
            dweight[c] += dout[i, c] * xhat[i, c];  dbias[c] += dout[i, c]
    """
    # dout (..., C) -> dx (..., C), dy (..., C), dweight (C,) | None, dbias (C,) | None
    norm_cache, p, seed = cache
    dr, dweight, dbias = layer_norm_backward(dout, norm_cache)
    return dr, dropout_backward(dr, (p, seed)), dweight, dbias


def add_dropout_forward(x, y, p, seed):
    """$out = x + y * keep / (1 - p)$, the residual add of a pre-norm sub-layer.

        for each flat index i:
            out[i] = x[i] + y[i] * (scale if keep(seed, i) else 0)
    """
    # x (...), y (...) same shape -> out (...); cache (p, seed)
    dropped, _ = dropout_forward(y, p, seed)
    return x + dropped, (p, seed)


def add_dropout_backward(dout, cache):
    """dx = dout; dy = dout * keep / (1 - p), the mask regenerated from (seed, index)."""
    # dout (...) -> dx (...), dy (...)
    return dout, dropout_backward(dout, cache)
