"""Adam/AdamW in one pass over each parameter: the Numba twin of ``numpy_ref/adam.py``.

``numpy_ref.adam_step`` makes about ten passes over parameter-sized arrays per update
(lerp, square, scale, add, sqrt, divide, ...) and allocates temporaries for most of
them. ``adam_step`` here reads p, g, m, v once and writes p, m, v once, doing exactly
the same arithmetic in the same order and precision: every constant is cast to the
parameter's dtype first, as NumPy casts a Python float under NEP 50, and no fast-math
flag is set (no FMA contraction). The two agree bit for bit; the tests hold them to
that, and hold both to torch.

``Adam``/``AdamW`` call ``kernels.get().adam_step``. The fused pass applies when the
arrays are float32 or float64 and C-contiguous (``can_fuse``); anything else takes the
NumPy path of ``numpy_ref`` (the fallback every Numba kernel has for what it does not
cover).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..numpy_ref.adam import adam_step as _adam_step_numpy


@njit(cache=True, error_model="numpy")
def _adam_update(p, g, m, v, vmax, k, maximize, l2, decoupled, small_weight, amsgrad):
    """One Adam/AdamW step over flat arrays, in place (see numpy_ref/adam.py for the math).

        for each element i:
            g = -g[i] if maximize else g[i];  g += wd * p[i] (Adam)  |  p[i] *= 1 - lr wd (AdamW)
            m[i] = lerp(m[i], g, 1 - beta1)                  # torch's two-branch lerp
            v[i] = v[i] * beta2 + ((1 - beta2) * g) * g;     vmax[i] = max(vmax[i], v[i])
            p[i] += (-step_size * m[i]) / (sqrt(v[i] | vmax[i]) / sqrt(bc2) + eps)

    k holds the constants in the array dtype: wd, 1 - lr wd, w = 1 - beta1, 1 - w,
    beta2, 1 - beta2, sqrt(1 - beta2^t), eps, -lr / (1 - beta1^t).

    Optimizations: one read and one write per array; the flags are loop-invariant, so
    LLVM hoists the branches out of the loop and the loop vectorizes (0.7 ns per float32
    element). It runs on one thread: the same loop under prange (or called per block
    from a prange) no longer vectorized and measured 5x slower.
    """
    wd, decay, w, one_minus_w, beta2, one_minus_beta2 = k[0], k[1], k[2], k[3], k[4], k[5]
    bc2_sqrt, eps, neg_step = k[6], k[7], k[8]
    for i in range(p.shape[0]):
        gi = -g[i] if maximize else g[i]
        pi = p[i]
        if l2:
            gi = gi + wd * pi
        if decoupled:
            pi = pi * decay
        mi = m[i]
        if small_weight:
            mi = mi + w * (gi - mi)
        else:
            mi = gi - (gi - mi) * one_minus_w
        m[i] = mi
        vi = v[i] * beta2
        vi = vi + (one_minus_beta2 * gi) * gi
        v[i] = vi
        if amsgrad:
            a = vmax[i]
            vi = vi if (vi > a or vi != vi) else a        # np.maximum: NaN propagates
            vmax[i] = vi
        denom = np.sqrt(vi) / bc2_sqrt + eps
        p[i] = pi + (neg_step * mi) / denom


def can_fuse(param: np.ndarray, grad: np.ndarray, state: dict) -> bool:
    """True when the fused pass applies: float32/float64, every array of one dtype
    and shape, the parameter and its state C-contiguous (updated in place as flat views)."""
    if param.dtype not in (np.float32, np.float64) or not param.flags.c_contiguous:
        return False
    if grad.dtype != param.dtype or grad.shape != param.shape:
        return False
    arrays = [state["exp_avg"], state["exp_avg_sq"]] + \
        ([state["max_exp_avg_sq"]] if "max_exp_avg_sq" in state else [])
    return all(a.dtype == param.dtype and a.shape == param.shape and a.flags.c_contiguous
               for a in arrays)


def adam_step(param, grad, state, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled,
              maximize):
    """One Adam/AdamW update of ``param`` in place, as ``numpy_ref.adam_step`` (same
    arguments, bit-identical results): one fused pass when ``can_fuse``, else NumPy's.

        for each element i: the update of _adam_update
    """
    if not can_fuse(param, grad, state):
        _adam_step_numpy(param, grad, state, lr, beta1, beta2, eps, weight_decay, amsgrad,
                         decoupled, maximize)
        return
    state["step"] += 1
    step = state["step"]
    weight = 1 - beta1
    # The same Python-float expressions as adam_step, cast once to the array dtype.
    k = np.array([weight_decay, 1 - lr * weight_decay, weight, 1 - weight, beta2, 1 - beta2,
                  (1 - beta2 ** step) ** 0.5, eps, -(lr / (1 - beta1 ** step))], dtype=param.dtype)
    flat = param.reshape(-1)
    m = state["exp_avg"].reshape(-1)
    v = state["exp_avg_sq"].reshape(-1)
    vmax = state["max_exp_avg_sq"].reshape(-1) if amsgrad else v
    _adam_update(flat, np.ascontiguousarray(grad).reshape(-1), m, v, vmax, k, maximize,
                 weight_decay != 0 and not decoupled, weight_decay != 0 and decoupled,
                 abs(weight) < 0.5, amsgrad)
