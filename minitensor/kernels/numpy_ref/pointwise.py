"""Elementwise kernels in plain NumPy: GELU (with its float64 erf), ReLU, dropout.

Dropout's mask is counter-based: element i is kept from a hash of (seed, i), so backward
regenerates it instead of storing it, and the Numba twin draws the same bits.
"""
from __future__ import annotations

import math

import numpy as np

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
