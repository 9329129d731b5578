"""Linear + bias + activation + dropout as one kernel pair (the feed-forward block's first
half, ``dropout(act(x W^T + b))``), in plain NumPy: the spec of the Numba twin.

The spec is the unfused sequence itself, kernel after kernel (``linear``, ``relu`` or
``gelu``, ``dropout``), so "the fused op gives the numbers of Linear -> act -> Dropout"
holds here by construction; the Numba twin does the same arithmetic in one pass over
each row block while it is in cache.

What backward needs, as cheaply as possible:

    relu: the output y only. y > 0 exactly where the unit was active *and* kept, so the
          masked gradient is dh = dropout'(dout) where y > 0 (or NaN), else 0; and y is
          the array the next Linear saves anyway, so keeping it costs no memory.
    gelu: the pre-activation h (gelu' needs it); the mask is rehashed from (p, seed).
"""
from __future__ import annotations

from .linalg import linear, linear_backward
from .pointwise import (dropout_backward, dropout_forward, gelu_backward, gelu_forward,
                        relu_backward, relu_forward)

ACTIVATIONS = ("relu", "gelu")


def linear_act_forward(x, weight, bias, activation, p, seed):
    """out = dropout(act(x W^T + b)) for x (N, in), weight (out, in), bias (out,) | None.

        h = x @ weight^T + bias                         # (N, out)
        a = relu(h)  or  gelu(h)  (exact, erf)
        out[i] = a[i] * (1/(1-p) if keep(seed, i) else 0)   # flat index i of (N, out)

    ``p`` == 0 means no dropout; the mask is ``dropout_forward``'s for the same seed.
    Returns (out, cache); the cache is (activation, y or h, p, seed) (see the module doc).
    """
    # x (N, in), weight (out, in), bias (out,) | None -> out (N, out); cache
    h = linear(x, weight, bias)
    if activation == "relu":
        a, _ = relu_forward(h)
    else:
        a, _ = gelu_forward(h, "none")
    out, _ = dropout_forward(a, p, seed)
    return out, (activation, out if activation == "relu" else h, p, seed)


def linear_act_backward(dout, x, weight, cache, needs):
    """(dx, dweight, dbias) of ``linear_act_forward``; ``needs`` (3 bools) as
    ``linear_backward`` (x or weight may be None when their product is not needed).

        dh = dropout'(dout) * act'(h)      relu: dh = 0 where y <= 0 (y = the output)
        dx = dh @ weight;  dweight = dh^T @ x;  dbias = column sums of dh
    """
    # dout (N, out) -> dx (N, in) | None, dweight (out, in) | None, dbias (out,) | None
    activation, saved, p, seed = cache
    g = dropout_backward(dout, (p, seed))
    if activation == "relu":
        dh = relu_backward(g, (saved,))          # y stands in for relu's output (see above)
    else:
        dh = gelu_backward(g, (saved, "none"))
    return linear_backward(dh, x, weight, needs)
