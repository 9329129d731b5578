"""Kernel tests: ``numba_cpu`` against ``numpy_ref`` (the spec) on every shape class, and
``numpy_ref`` against PyTorch (float64, forward and backward) where torch has the function.

Tolerances are fixed per dtype (float32: 1e-5, float64: 1e-12), used both as rtol and,
multiplied by the largest finite |reference| value, as atol: kernels such as layer norm's
backward produce entries near 0 by cancellation, where only an error relative to the
array's scale means anything. NaN and inf must appear at the same places.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

from minitensor.kernels import numba_cpu as nb
from minitensor.kernels.layouts import unpack_qkv
from minitensor.kernels import numpy_ref as ref
from minitensor.kernels.numpy_ref import attention as ref_attention, pointwise as ref_pointwise
from minitensor.kernels.numba_cpu import _math, _threads

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def assert_close(got, want, dtype, tol=None, scale=0.0):
    """Same shape and dtype; |got - want| <= tol * (|want| + max(max|want|, scale)).

    ``scale`` is for outputs that are sums of larger terms cancelling out (layer norm's
    dx with one column is exactly 0, reached from terms of size rstd * |dout|): rounding
    error is relative to those terms, not to the result.
    """
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype == np.dtype(dtype), (got.dtype, want.dtype, dtype)
    tol = TOL[dtype] if tol is None else tol
    finite = np.isfinite(want)
    scale = max(scale, float(np.abs(want[finite]).max()) if finite.any() else 0.0)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, equal_nan=True)


def _rng(*key):
    """A generator seeded from the test's parameters (stable across processes, unlike hash())."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


# ------------------------------------------------------------------ row-shaped inputs

ROW_CASES = ["tiny", "odd", "3d", "large", "transposed", "strided", "neg_inf", "big"]


def row_input(case, dtype, rng):
    """An input of the named shape class; 'transposed'/'strided' are non-contiguous views."""
    if case == "scalar":                     # 0-d: elementwise kernels only
        return np.asarray(rng.standard_normal(), dtype=dtype)
    if case == "tiny":
        return rng.standard_normal((1, 1)).astype(dtype)
    if case == "odd":
        return rng.standard_normal((7, 13)).astype(dtype)
    if case == "3d":
        return rng.standard_normal((3, 5, 17)).astype(dtype)
    if case == "large":
        return (3 * rng.standard_normal((512, 1000))).astype(dtype)
    if case == "transposed":
        return rng.standard_normal((13, 7)).astype(dtype).T          # (7, 13), Fortran order
    if case == "strided":
        return rng.standard_normal((14, 39)).astype(dtype)[::2, ::3]  # (7, 13), every stride odd
    if case == "neg_inf":
        x = rng.standard_normal((7, 13)).astype(dtype)
        x[0, [1, 4, 12]] = -np.inf      # a few masked entries
        x[3] = -np.inf                  # a fully masked row
        x[5, :-1] = -np.inf             # a single survivor
        return x
    if case == "big":
        return rng.uniform(-1e4, 1e4, (7, 13)).astype(dtype)
    raise ValueError(case)


def like(x, rng):
    """A random array with the shape and dtype of x, laid out the same way (views stay views)."""
    if x.ndim == 2 and not x.flags.c_contiguous:
        base = rng.standard_normal((x.shape[1], x.shape[0])).astype(x.dtype)
        return base.T
    return rng.standard_normal(x.shape).astype(x.dtype)


# ---------------------------------------------------------------------- the exp helper


@pytest.mark.parametrize("dtype", DTYPES)
def test_numba_exp_is_accurate_everywhere(dtype):
    rng = _rng("exp", dtype)
    lo, hi = (-760.0, 720.0) if dtype == np.float64 else (-110.0, 95.0)
    x = np.concatenate([rng.uniform(lo, hi, 200_000), rng.uniform(-1, 1, 50_000),
                        np.linspace(lo, hi, 20_001),
                        [0.0, -0.0, -np.inf, np.inf, np.nan, 1e-30, -1e-30]]).astype(dtype)
    got = np.empty_like(x)
    _math._math_array(x, 0, got)
    with np.errstate(over="ignore"):
        exact = np.exp(x.astype(np.float64))       # float64 exp: the float32 truth
        expected = np.exp(x)
    special = ~np.isfinite(expected) | (expected == 0)
    np.testing.assert_array_equal(got[special], expected[special])   # 0, inf, NaN exactly
    ok = ~special
    ulp = np.spacing(expected[ok]).astype(np.float64)
    if dtype == np.float64:
        err = np.abs(got[ok] - expected[ok]) / ulp                       # vs np.exp
    else:
        err = np.abs(got[ok].astype(np.float64) - exact[ok]) / ulp      # vs the exact value
    assert err.max() <= 1.0, err.max()
    assert got[x == 0].tolist() == [1.0, 1.0]


def _exp_sample(dtype):
    """Inputs for every result class of exp: normal, subnormal, 0, overflow, the edges between them."""
    rng = _rng("exp ways", dtype)
    lo, hi = (-750.0, 710.0) if dtype == np.float64 else (-105.0, 89.0)
    info = np.finfo(dtype)
    log_sub = math.log(float(info.smallest_subnormal))       # results below half of it round to 0
    edges = np.array([math.log(float(info.tiny)), log_sub, log_sub - math.log(2), math.log(float(info.max))],
                     dtype)
    near = [np.nextafter(e, d, dtype=dtype) for e in edges for d in (-np.inf, np.inf)]
    ks = np.arange(-1080, 1030) * math.log(2)     # every power of two, exactly at a rounding boundary
    return np.concatenate([rng.uniform(lo, hi, 100_000), np.linspace(lo, hi, 10_001), ks, edges, near,
                           [0.0, -0.0, np.inf, -np.inf, np.nan, info.max, -info.max]]).astype(dtype)


def test_numba_exp_gives_the_same_bits_without_avx512(tmp_path):
    """_exp applies 2^k in one step (_ldexp) on AVX-512 and in two exact-then-rounded
    factors elsewhere; both must round p * 2^k once, so every result is the same bit
    pattern (kernels' float32 outputs then do not depend on the CPU). The two-step way
    is compiled in a child process that tells Numba the CPU has no AVX-512."""
    if not _math._ONE_STEP_LDEXP:
        pytest.skip("this CPU has no AVX-512: the two-step way is the only one compiled")
    features = ",".join(f for f in _math.llvm.get_host_cpu_features().flatten().split(",")
                        if not f.startswith("+avx512"))
    code = textwrap.dedent(f"""
        import numpy as np
        from minitensor.kernels.numba_cpu import _math
        assert not _math._ONE_STEP_LDEXP
        for name in ("float32", "float64"):
            x = np.load({str(tmp_path)!r} + "/x_" + name + ".npy")
            out = np.empty_like(x)
            _math._math_array(x, 0, out)
            np.save({str(tmp_path)!r} + "/y_" + name + ".npy", out)
    """)
    for dtype in DTYPES:
        np.save(tmp_path / f"x_{np.dtype(dtype).name}.npy", _exp_sample(dtype))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root, NUMBA_CPU_FEATURES=features, NUMBA_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for dtype in DTYPES:
        x = np.load(tmp_path / f"x_{np.dtype(dtype).name}.npy")
        two_steps = np.load(tmp_path / f"y_{np.dtype(dtype).name}.npy")
        one_step = np.empty_like(x)
        _math._math_array(x, 0, one_step)
        same = (one_step == two_steps) | (np.isnan(one_step) & np.isnan(two_steps))
        assert same.all(), (x[~same][:5], one_step[~same][:5], two_steps[~same][:5])
        num = ~np.isnan(one_step)
        assert (np.signbit(one_step[num]) == np.signbit(two_steps[num])).all()   # exp(-inf) is +0 both ways


@pytest.mark.parametrize("dtype", DTYPES)
def test_numba_erf_and_tanh(dtype):
    """GELU's helpers: erf exact to float64 via math.erf, to |err| < 5e-7 in float32
    (rational approximation); tanh to ~1e-16 absolute (what 0.5 x (1 + tanh) needs)."""
    x = np.concatenate([np.linspace(-7, 7, 100_001), [0.0, -1e-30, 30.0, -np.inf, np.inf]]).astype(dtype)
    erf, tanh = np.empty_like(x), np.empty_like(x)
    _math._math_array(x, 1, erf)
    _math._math_array(x, 2, tanh)
    want_erf = np.array([math.erf(v) for v in x.astype(np.float64)])
    want_tanh = np.tanh(x.astype(np.float64))
    if dtype == np.float64:
        np.testing.assert_array_equal(erf, want_erf)
        assert np.abs(tanh - want_tanh).max() <= 4 * np.finfo(np.float64).eps
    else:
        assert np.abs(erf - want_erf).max() < 5e-7
        assert np.abs(tanh - want_tanh).max() <= 4 * np.finfo(np.float32).eps
    assert (np.abs(erf) <= 1).all() and (np.abs(tanh) <= 1).all()
    assert np.sign(erf[x != 0]).tolist() == np.sign(x[x != 0]).tolist()
    nan = np.full(1, np.nan, dtype)
    _math._math_array(nan, 1, erf[:1])
    _math._math_array(nan, 2, tanh[:1])
    assert np.isnan(erf[0]) and np.isnan(tanh[0])


# ---------------------------------------------------------- softmax and log-softmax


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ROW_CASES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_numba_matches_ref(name, case, dtype):
    rng = _rng(name, case, dtype)
    x = row_input(case, dtype, rng)
    x_before = x.copy()
    fwd_ref, bwd_ref = getattr(ref, name + "_forward"), getattr(ref, name + "_backward")
    fwd_nb, bwd_nb = getattr(nb, name + "_forward"), getattr(nb, name + "_backward")
    with np.errstate(invalid="ignore"):
        y_ref, cache_ref = fwd_ref(x)
        y_nb, cache_nb = fwd_nb(x)
    assert_close(y_nb, y_ref, dtype)
    dout = like(x, rng)
    with np.errstate(invalid="ignore"):
        assert_close(bwd_nb(dout, cache_nb), bwd_ref(dout, cache_ref), dtype)
    np.testing.assert_array_equal(x, x_before)     # inputs untouched


@pytest.mark.parametrize("backend", [ref, nb], ids=["numpy_ref", "numba_cpu"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_masked_rows(backend, dtype):
    x = row_input("neg_inf", dtype, _rng("masked", dtype))
    with np.errstate(invalid="ignore"):
        y, _ = backend.softmax_forward(x)
        logp, _ = backend.log_softmax_forward(x)
    assert np.isnan(y[3]).all() and np.isnan(logp[3]).all()           # fully masked: NaN, as torch
    rows = [0, 1, 2, 4, 5, 6]
    assert np.isfinite(y[rows]).all()
    assert (y[0, [1, 4, 12]] == 0).all() and (y[5, :-1] == 0).all()   # masked: exactly 0
    assert y[5, -1] == 1
    np.testing.assert_allclose(y[rows].sum(-1), 1, rtol=TOL[dtype] * 10)
    assert (logp[0, [1, 4, 12]] == -np.inf).all() and logp[5, -1] == 0


@pytest.mark.parametrize("case", ROW_CASES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_ref_matches_torch(name, case):
    torch = pytest.importorskip("torch")
    rng = _rng("torch", name, case)
    x = row_input(case, np.float64, rng)
    dout = like(x, rng)
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch, name)(xt, -1)
    yt.backward(torch.tensor(dout))
    with np.errstate(invalid="ignore"):
        y, cache = getattr(ref, name + "_forward")(x)
        dx = getattr(ref, name + "_backward")(dout, cache)
    assert_close(y, yt.detach().numpy(), np.float64)
    assert_close(dx, xt.grad.numpy(), np.float64)


# ---------------------------------------------------------------------- cross-entropy

CE_CASES = ["odd", "large", "ignored", "all_ignored", "custom_ignore", "neg_inf", "big", "noncontig"]


def ce_input(case, dtype, rng):
    """(logits, target, ignore_index) for a shape class."""
    n, c = (512, 1000) if case == "large" else (7, 13)
    if case == "big":
        logits = rng.uniform(-1e4, 1e4, (n, c)).astype(dtype)
    elif case == "noncontig":
        logits = rng.standard_normal((c, n)).astype(dtype).T
    else:
        logits = (2 * rng.standard_normal((n, c))).astype(dtype)
    target = rng.integers(0, c, n)
    ignore_index = -100
    if case in ("ignored", "large"):
        target[[1, 4]] = -100
    elif case == "all_ignored":
        target[:] = -100
    elif case == "custom_ignore":
        ignore_index = 3
        target[[0, 5]] = 3
        target[target == 2] = 3
    elif case == "neg_inf":
        for i in range(n):                       # masked classes away from the target
            logits[i, (target[i] + 1 + np.arange(4)) % c] = -np.inf
    return logits, target, ignore_index


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("case", CE_CASES)
def test_cross_entropy_numba_matches_ref(case, smoothing, reduction, dtype):
    rng = _rng("ce", case, smoothing, reduction, dtype)
    logits, target, ignore_index = ce_input(case, dtype, rng)
    args = (target, ignore_index, smoothing, reduction)
    with np.errstate(invalid="ignore"):
        loss_ref, cache_ref = ref.cross_entropy_forward(logits, *args)
        loss_nb, cache_nb = nb.cross_entropy_forward(logits, *args)
    assert_close(loss_nb, loss_ref, dtype)
    dloss = np.asarray(rng.standard_normal(loss_ref.shape), dtype=dtype)
    with np.errstate(invalid="ignore"):
        assert_close(nb.cross_entropy_backward(dloss, cache_nb),
                     ref.cross_entropy_backward(dloss, cache_ref), dtype)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("case", CE_CASES)
def test_cross_entropy_ref_matches_torch(case, smoothing, reduction):
    torch = pytest.importorskip("torch")
    rng = _rng("ce-torch", case, smoothing, reduction)
    logits, target, ignore_index = ce_input(case, np.float64, rng)
    lt = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(lt, torch.tensor(target), ignore_index=ignore_index,
                                               label_smoothing=smoothing, reduction=reduction)
    dloss = np.asarray(rng.standard_normal(tuple(loss_t.shape)))
    loss_t.backward(torch.tensor(dloss))
    with np.errstate(invalid="ignore"):
        loss, cache = ref.cross_entropy_forward(logits, target, ignore_index, smoothing, reduction)
    assert_close(loss, loss_t.detach().numpy(), np.float64)
    assert_close(ref.cross_entropy_backward(dloss, cache), lt.grad.numpy(), np.float64)


@pytest.mark.parametrize("backend", [ref, nb], ids=["numpy_ref", "numba_cpu"])
def test_cross_entropy_ignored_rows(backend):
    logits, target, _ = ce_input("odd", np.float64, _rng("ce-ignored"))
    target[:] = -100
    loss, cache = backend.cross_entropy_forward(logits, target, -100, 0.1, "mean")
    assert loss.shape == () and np.isnan(loss)                    # 0 / 0, as torch
    assert (backend.cross_entropy_backward(np.asarray(1.0), cache) == 0).all()
    target[2] = 1
    loss, cache = backend.cross_entropy_forward(logits, target, -100, 0.0, "sum")
    dlogits = backend.cross_entropy_backward(np.asarray(1.0), cache)
    assert (np.delete(dlogits, 2, axis=0) == 0).all() and np.isclose(dlogits[2].sum(), 0)


# ------------------------------------------------------------------------- layer norm

LN_CASES = ["tiny", "odd", "3d", "large", "transposed", "strided", "big"]
AFFINE = ["both", "none", "weight", "bias"]


def _dx_scale(x, w, dout):
    """Size of the terms layer norm's dx is a cancelling sum of: rstd * |dout * w|."""
    rstd = 1 / np.sqrt(x.astype(np.float64).var(axis=-1) + 1e-5)
    g = np.abs(dout * (1 if w is None else w))
    return float(rstd.max() * g.max())


def _dw_scale(x, dout):
    """Size of the terms dweight sums, with xhat's rounding error |x| * rstd * eps in mind."""
    x = x.astype(np.float64).reshape(-1, x.shape[-1])
    rstd = 1 / np.sqrt(x.var(axis=-1, keepdims=True) + 1e-5)
    return float((np.abs(dout.reshape(x.shape)) * np.abs(x) * rstd).sum(axis=0).max())


def ln_params(affine, c, dtype, rng):
    w = (1 + rng.standard_normal(c)).astype(dtype) if affine in ("both", "weight") else None
    b = rng.standard_normal(c).astype(dtype) if affine in ("both", "bias") else None
    return w, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", AFFINE)
@pytest.mark.parametrize("case", LN_CASES)
def test_layer_norm_numba_matches_ref(case, affine, dtype):
    rng = _rng("ln", case, affine, dtype)
    x = row_input(case, dtype, rng)
    x_before = x.copy()
    w, b = ln_params(affine, x.shape[-1], dtype, rng)
    out_ref, cache_ref = ref.layer_norm_forward(x, w, b, 1e-5)
    out_nb, cache_nb = nb.layer_norm_forward(x, w, b, 1e-5)
    assert_close(out_nb, out_ref, dtype)
    dout = like(x, rng)
    grads_ref = ref.layer_norm_backward(dout, cache_ref)
    grads_nb = nb.layer_norm_backward(dout, cache_nb)
    assert_close(grads_nb[0], grads_ref[0], dtype, scale=_dx_scale(x, w, dout))
    for g_nb, g_ref in zip(grads_nb[1:], grads_ref[1:]):
        if g_ref is None:
            assert g_nb is None
        else:
            assert_close(g_nb, g_ref, dtype, scale=_dw_scale(x, dout))
    assert (grads_nb[1] is None) == (w is None) and (grads_nb[2] is None) == (b is None)
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("affine", AFFINE)
@pytest.mark.parametrize("case", LN_CASES)
def test_layer_norm_ref_matches_torch(case, affine):
    torch = pytest.importorskip("torch")
    rng = _rng("ln-torch", case, affine)
    x = row_input(case, np.float64, rng)
    w, b = ln_params(affine, x.shape[-1], np.float64, rng)
    dout = like(x, rng)
    xt = torch.tensor(x, requires_grad=True)
    wt = None if w is None else torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.layer_norm(xt, (x.shape[-1],), wt, bt, 1e-5)
    yt.backward(torch.tensor(dout))
    out, cache = ref.layer_norm_forward(x, w, b, 1e-5)
    dx, dw, db = ref.layer_norm_backward(dout, cache)
    assert_close(out, yt.detach().numpy(), np.float64)
    assert_close(dx, xt.grad.numpy(), np.float64, scale=_dx_scale(x, w, dout))
    if w is not None:
        assert_close(dw, wt.grad.numpy(), np.float64, scale=_dw_scale(x, dout))
    if b is not None:
        assert_close(db, bt.grad.numpy(), np.float64)


# ------------------------------------------------------------------------------- GELU

GELU_CASES = ["scalar", "tiny", "odd", "3d", "large", "transposed", "strided", "big"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("case", GELU_CASES)
def test_gelu_numba_matches_ref(case, approximate, dtype):
    rng = _rng("gelu", case, approximate, dtype)
    x = row_input(case, dtype, rng)
    out_ref, cache_ref = ref.gelu_forward(x, approximate)
    out_nb, cache_nb = nb.gelu_forward(x, approximate)
    assert_close(out_nb, out_ref, dtype)
    dout = like(x, rng)
    assert_close(nb.gelu_backward(dout, cache_nb), ref.gelu_backward(dout, cache_ref), dtype)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("case", GELU_CASES)
def test_gelu_ref_matches_torch(case, approximate):
    torch = pytest.importorskip("torch")
    rng = _rng("gelu-torch", case, approximate)
    x = row_input(case, np.float64, rng)
    dout = like(x, rng)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.gelu(xt, approximate=approximate)
    yt.backward(torch.tensor(dout))
    out, cache = ref.gelu_forward(x, approximate)
    assert_close(out, yt.detach().numpy(), np.float64)
    assert_close(ref.gelu_backward(dout, cache), xt.grad.numpy(), np.float64)


def test_ref_erf_matches_math_erf():
    rng = _rng("erf")
    x = np.concatenate([rng.uniform(-7, 7, 100_000), rng.uniform(-1.5, 1.5, 100_000),
                        np.linspace(-7, 7, 14_001), [0.0, -0.0, 1e-300, -1e-20, 0.84375, 1.25,
                                                    2.857142448425293, 6.0, 30.0, -np.inf, np.inf]])
    got = ref_pointwise._erf(x)
    want = np.array([math.erf(v) for v in x])
    ulp = np.spacing(np.abs(want))
    assert (np.abs(got - want) <= ulp).all(), (np.abs(got - want) / ulp).max()   # within 1 ulp
    assert np.isnan(ref_pointwise._erf(np.array([np.nan]))).all()
    assert np.signbit(ref_pointwise._erf(np.array([-0.0])))[0]


# ---------------------------------------------------------------------------- dropout


def _splitmix_keep(seed, i, p):
    """The mask bit of flat index i, written out in plain Python integers (the spec)."""
    mask = 2**64 - 1
    z = ((seed ^ (i * 0x9E3779B97F4A7C15)) + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return (z >> 11) >= math.ceil(p * 2**53)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["scalar", "tiny", "odd", "3d", "transposed", "strided"])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_backends_identical(p, case, dtype):
    rng = _rng("dropout", p, case, dtype)
    x = row_input(case, dtype, rng)
    out_ref, cache_ref = ref.dropout_forward(x, p, 1234)
    out_nb, cache_nb = nb.dropout_forward(x, p, 1234)
    np.testing.assert_array_equal(out_nb, out_ref)
    assert out_nb.dtype == out_ref.dtype == dtype and out_nb.shape == x.shape
    dout = like(x, rng)
    np.testing.assert_array_equal(nb.dropout_backward(dout, cache_nb),
                                  ref.dropout_backward(dout, cache_ref))


@pytest.mark.parametrize("backend", [ref, nb], ids=["numpy_ref", "numba_cpu"])
def test_dropout_mask_statistics_and_spec(backend):
    p, n = 0.3, 400_000
    x = np.ones(n, dtype=np.float32)
    out, cache = backend.dropout_forward(x, p, 7)
    keep = out != 0
    assert abs(keep.mean() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)       # 5 sigma
    np.testing.assert_array_equal(out[keep], np.float32(1 / (1 - p)))       # inverted scaling
    assert [_splitmix_keep(7, i, p) for i in range(64)] == keep[:64].tolist()  # the spec'd hash
    dx = backend.dropout_backward(np.full(n, 2, np.float32), cache)
    np.testing.assert_array_equal(dx != 0, keep)                             # same mask backward
    same, _ = backend.dropout_forward(x, p, 7)
    np.testing.assert_array_equal(same, out)                                 # same seed, same mask
    other, _ = backend.dropout_forward(x, p, 8)
    agree = ((other != 0) == keep).mean()                   # independent masks agree with
    assert abs(agree - (p * p + (1 - p) ** 2)) < 0.01       # probability p^2 + (1-p)^2


@pytest.mark.parametrize("backend", [ref, nb], ids=["numpy_ref", "numba_cpu"])
def test_dropout_p0_p1(backend):
    x = row_input("odd", np.float32, _rng("p01"))
    out, cache = backend.dropout_forward(x, 0.0, 3)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(backend.dropout_backward(x, cache), x)
    out, cache = backend.dropout_forward(x, 1.0, 3)
    assert out.dtype == x.dtype and (out == 0).all()
    assert (backend.dropout_backward(x, cache) == 0).all()


# -------------------------------------------------------------------------- embedding

EMB_CASES = ["flat", "2d", "noncontig_indices", "noncontig_weight", "repeated"]


def emb_input(case, dtype, rng):
    v, d = 11, 6
    weight = rng.standard_normal((v, d)).astype(dtype)
    if case == "noncontig_weight":
        weight = rng.standard_normal((d, v)).astype(dtype).T
    indices = rng.integers(0, v, (3, 5))
    if case == "flat":
        indices = rng.integers(0, v, 7)
    elif case == "noncontig_indices":
        indices = rng.integers(0, v, (6, 10))[::2, ::2]
    elif case == "repeated":
        indices = np.array([[1, 1, 1, 2], [2, 0, 1, 10]])
    return weight, indices


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx", [None, 1])
@pytest.mark.parametrize("case", EMB_CASES)
def test_embedding_numba_matches_ref(case, padding_idx, dtype):
    rng = _rng("emb", case, padding_idx, dtype)
    weight, indices = emb_input(case, dtype, rng)
    out_ref, cache_ref = ref.embedding_forward(weight, indices)
    out_nb, cache_nb = nb.embedding_forward(weight, indices)
    np.testing.assert_array_equal(out_nb, out_ref)
    assert out_nb.shape == indices.shape + (weight.shape[1],) and out_nb.dtype == dtype
    dout = rng.standard_normal(out_ref.shape).astype(dtype)
    assert_close(nb.embedding_backward(dout, cache_nb, padding_idx),
                 ref.embedding_backward(dout, cache_ref, padding_idx), dtype)


@pytest.mark.parametrize("backend", [ref, nb], ids=["numpy_ref", "numba_cpu"])
def test_embedding_accumulates_and_pads(backend):
    weight, indices = emb_input("repeated", np.float64, _rng("emb-acc"))
    _, cache = backend.embedding_forward(weight, indices)
    dout = np.ones(indices.shape + (weight.shape[1],))
    dw = backend.embedding_backward(dout, cache, None)
    assert dw.shape == weight.shape
    np.testing.assert_array_equal(dw[:, 0], [1, 4, 2] + [0] * 7 + [1])    # counts per row
    dw = backend.embedding_backward(dout, cache, 1)
    assert (dw[1] == 0).all() and (dw[2] == 2).all()


@pytest.mark.parametrize("padding_idx", [None, 1])
@pytest.mark.parametrize("case", EMB_CASES)
def test_embedding_ref_matches_torch(case, padding_idx):
    torch = pytest.importorskip("torch")
    rng = _rng("emb-torch", case, padding_idx)
    weight, indices = emb_input(case, np.float64, rng)
    wt = torch.tensor(weight, requires_grad=True)
    yt = torch.nn.functional.embedding(torch.tensor(indices), wt, padding_idx=padding_idx)
    dout = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dout))
    out, cache = ref.embedding_forward(weight, indices)
    assert_close(out, yt.detach().numpy(), np.float64)
    assert_close(ref.embedding_backward(dout, cache, padding_idx), wt.grad.numpy(), np.float64)


# ------------------------------------------------------------ the NUMBA_DISABLE_JIT path


def test_numba_kernels_run_as_plain_python():
    """With NUMBA_DISABLE_JIT=1 (the debugging mode) every numba_cpu kernel still runs
    and agrees with numpy_ref: the helpers' pure-Python bodies are correct."""
    code = textwrap.dedent("""
        import numpy as np
        from minitensor.kernels import numba_cpu as nb, numpy_ref as ref
        rng = np.random.default_rng(0)
        for dt in (np.float32, np.float64):
            x = rng.standard_normal((3, 5)).astype(dt)
            t, i = np.array([0, 4, -100]), np.array([[0, 2], [2, 2]])
            calls = [("softmax", (x,), ()), ("log_softmax", (x,), ()),
                     ("layer_norm", (x, x[0], x[1], 1e-5), ()),
                     ("cross_entropy", (x, t, -100, 0.1, "sum"), ()),
                     ("gelu", (x, "none"), ()), ("gelu", (x, "tanh"), ()),
                     ("dropout", (x, 0.5, 1), ()), ("embedding", (x, i), (0,))]
            for name, args, extra in calls:
                results = []
                for mod in (nb, ref):
                    y, cache = getattr(mod, name + "_forward")(*args)
                    dy = np.sin(np.arange(y.size)).reshape(y.shape).astype(dt)
                    g = getattr(mod, name + "_backward")(dy, cache, *extra)
                    results.append([y] + list(g if isinstance(g, tuple) else (g,)))
                for a, b in zip(*results):
                    assert a.dtype == b.dtype == dt and np.allclose(a, b, rtol=1e-4, atol=1e-5), name
        print("ok")
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = root + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=path)
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


# ------------------------------------------------------------------------------- ReLU


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["scalar", "tiny", "odd", "3d", "large", "transposed", "strided",
                                  "neg_inf", "edges"])
def test_relu_numba_matches_ref(case, dtype):
    """Bit-identical: max(x, 0) and the masked gradient involve no rounding. 'edges' has
    exact zeros (gradient 0), -0.0 (+0.0 out, as np.maximum) and NaN (passes the
    gradient, as torch)."""
    rng = _rng("relu", case, dtype)
    if case == "edges":
        x = np.array([[0.0, -0.0, np.nan, 1.0, -1.0, np.inf, -np.inf]], dtype=dtype)
    else:
        x = row_input(case, dtype, rng)
    out_ref, cache_ref = ref.relu_forward(x)
    out_nb, cache_nb = nb.relu_forward(x)
    assert out_nb.dtype == out_ref.dtype == dtype and out_nb.shape == x.shape
    np.testing.assert_array_equal(out_nb, out_ref)
    np.testing.assert_array_equal(np.signbit(out_nb), np.signbit(out_ref))
    dout = like(x, rng) if x.ndim else np.asarray(rng.standard_normal(), dtype=dtype)
    dx_ref, dx_nb = ref.relu_backward(dout, cache_ref), nb.relu_backward(dout, cache_nb)
    assert dx_nb.dtype == dx_ref.dtype == dtype
    np.testing.assert_array_equal(dx_nb, dx_ref)


@pytest.mark.parametrize("backend", [ref, nb], ids=["numpy_ref", "numba_cpu"])
def test_relu_spec_and_integer_input(backend):
    x = np.array([-2.0, -0.0, 0.0, 3.0, np.nan], dtype=np.float32)
    out, cache = backend.relu_forward(x)
    np.testing.assert_array_equal(out, [0, 0, 0, 3, np.nan])
    dx = backend.relu_backward(np.full(5, np.inf, np.float32), cache)
    np.testing.assert_array_equal(dx, [0, 0, 0, np.inf, np.inf])   # exactly 0, never 0 * inf
    out, cache = backend.relu_forward(np.array([-1, 2], dtype=np.int64))
    assert out.dtype == np.int64 and out.tolist() == [0, 2]


# ------------------------------------------ attention over merged heads, with dropout


def _mh_inputs(case, dtype, rng):
    """(inputs, layout, heads, mask) for a named case: q (B, L, H*D), k (B, S, H*D),
    v (B, S, H*Dv), or packed as projections make them."""
    B, L, S, H, D, Dv = 2, 5, 7, 3, 4, 2
    q = rng.standard_normal((B, L, H * D)).astype(dtype)
    k = rng.standard_normal((B, S, H * D)).astype(dtype)
    v = rng.standard_normal((B, S, H * Dv)).astype(dtype)
    inputs, layout, mask = (q, k, v), "q,k,v", None
    if case == "causal_mask":
        mask = np.where(np.tril(np.ones((L, S), bool)), 0.0, -np.inf).astype(dtype)
    elif case == "per_head_mask_blocked_row":
        mask = rng.standard_normal((B, H, L, S)).astype(dtype)
        mask[1, 2, 3, :] = -np.inf                       # one query sees no key
        mask[0, :, :, 6] = -np.inf
    elif case == "padding_mask":
        mask = np.zeros((B, 1, 1, S), dtype)
        mask[0, ..., 5:] = -np.inf
    elif case == "packed_qkv":                           # one self-attention projection
        inputs, layout = (rng.standard_normal((B, L, 3 * H * D)).astype(dtype),), "qkv"
    elif case == "packed_kv":                            # q, and one k/v projection
        inputs, layout = (q, rng.standard_normal((B, S, H * (D + Dv))).astype(dtype)), "q,kv"
    elif case == "views":                                # non-contiguous inputs
        inputs = (q[:, ::-1], np.asfortranarray(k), rng.standard_normal((B, S, 2 * H * Dv))
                  .astype(dtype)[..., ::2])
    elif case == "large":
        B, L, S, H, D, Dv = 8, 32, 40, 4, 16, 16
        inputs = tuple(rng.standard_normal((B, T, H * d)).astype(dtype)
                       for T, d in ((L, D), (S, D), (S, Dv)))
    return inputs, layout, H, mask


MH_CASES = ["no_mask", "causal_mask", "per_head_mask_blocked_row", "padding_mask", "packed_qkv",
            "packed_kv", "views", "large"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("case", MH_CASES)
@pytest.mark.parametrize("with_dweights", [False, True])
def test_attention_weights_numba_matches_ref(case, p, dtype, with_dweights):
    rng = _rng("mh_sdpa", case, p, dtype)
    inputs, layout, heads, mask = _mh_inputs(case, dtype, rng)
    out_ref, cache_ref = ref.attention_weights_forward(inputs, layout, heads, mask, 0.4, p, 99)
    out_nb, cache_nb = nb.attention_weights_forward(inputs, layout, heads, mask, 0.4, p, 99)
    assert out_nb.shape == out_ref.shape and out_nb.dtype == out_ref.dtype == dtype
    assert_close(out_nb, out_ref, dtype)
    assert_close(cache_nb[0], cache_ref[0], dtype)                     # the weights
    dout = rng.standard_normal(out_ref.shape).astype(dtype)
    dweights = rng.standard_normal(cache_ref[0].shape).astype(dtype) if with_dweights else None
    grads_nb = nb.attention_weights_backward(dout, dweights, cache_nb)
    grads_ref = ref.attention_weights_backward(dout, dweights, cache_ref)
    assert len(grads_nb) == len(grads_ref) == len(inputs)
    for g_nb, g_ref, x in zip(grads_nb, grads_ref, inputs):
        assert g_nb.shape == g_ref.shape == x.shape and g_nb.dtype == g_ref.dtype == dtype
        assert_close(g_nb, g_ref, dtype, scale=float(np.abs(dout).max()))
        assert np.isfinite(g_nb).all()


@pytest.mark.parametrize("case", ["no_mask", "causal_mask", "per_head_mask_blocked_row", "packed_qkv"])
def test_attention_weights_ref_is_the_separate_ops(case):
    """The spec equals the composition it replaces: split heads, q k^T * scale + mask,
    softmax (blocked rows zeroed), dropout (the same mask bits), @ v, merge heads."""
    rng = _rng("mh_sdpa_ops", case)
    inputs, layout, H, mask = _mh_inputs(case, np.float64, rng)
    out, cache = ref.attention_weights_forward(inputs, layout, H, mask, 0.4, 0.25, 7)
    q, k, v = unpack_qkv(inputs, layout)
    split = [x.reshape(x.shape[0], x.shape[1], H, -1).transpose(0, 2, 1, 3) for x in (q, k, v)]
    s = split[0] @ split[1].swapaxes(-1, -2) * 0.4
    blocked = np.zeros(s.shape[:-1] + (1,), bool)
    if mask is not None:
        blocked = np.all(np.isneginf(np.broadcast_to(mask, s.shape)), axis=-1, keepdims=True)
        s = s + np.where(blocked, 0.0, mask)
    w, _ = ref.softmax_forward(s)
    w = np.where(blocked, 0.0, w)
    dropped, _ = ref.dropout_forward(w, 0.25, 7)
    want = (dropped @ split[2]).transpose(0, 2, 1, 3).reshape(out.shape)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(cache[0], w)             # the saved weights


def test_attention_weights_one_thread_equals_two():
    """Tasks are (batch, head) pairs writing disjoint outputs: the thread count (and the
    serial path small inputs take) cannot change a single bit."""
    numba = pytest.importorskip("numba")
    rng = _rng("mh_threads")
    inputs, layout, H, mask = _mh_inputs("large", np.float32, rng)
    dout = rng.standard_normal(inputs[0].shape[:2] + (inputs[2].shape[2],)).astype(np.float32)
    results = []
    before = numba.get_num_threads()
    for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
        numba.set_num_threads(threads)
        try:
            out, cache = nb.attention_weights_forward(inputs, layout, H, mask, 0.25, 0.2, 5)
            results.append((out,) + nb.attention_weights_backward(dout, cache[0] * 0.5, cache))
        finally:
            numba.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_new_numba_kernels_run_as_plain_python():
    """NUMBA_DISABLE_JIT=1 (the debugging mode) also runs ReLU, merged-heads attention,
    the Linear kernels and the fused Adam update, agreeing with their NumPy twins."""
    code = textwrap.dedent("""
        import numpy as np
        from minitensor.kernels import numba_cpu as nb, numpy_ref as ref
        rng = np.random.default_rng(0)
        for dt in (np.float32, np.float64):
            x = rng.standard_normal((3, 5)).astype(dt)
            for mod in (nb, ref):
                y, c = mod.relu_forward(x)
                assert np.array_equal(mod.relu_backward(x, c), np.where(x > 0, x, 0))
            qkv = (rng.standard_normal((2, 3, 12)).astype(dt),)
            mask = np.zeros((2, 1, 3, 3), dt); mask[0, 0, 1] = -np.inf
            got = nb.attention_weights_forward(qkv, "qkv", 2, mask, 0.5, 0.3, 4)
            want = ref.attention_weights_forward(qkv, "qkv", 2, mask, 0.5, 0.3, 4)
            dout = np.cos(got[0])
            for a, b in zip(nb.attention_weights_backward(dout, None, got[1]),
                            ref.attention_weights_backward(dout, None, want[1])):
                assert np.allclose(a, b, rtol=1e-4, atol=1e-5)
            assert np.allclose(got[0], want[0], rtol=1e-4, atol=1e-5)
            assert np.allclose(nb.linear(x, x, x[:, 0]), ref.linear(x, x, x[:, 0]), rtol=1e-4, atol=1e-5)
            g = np.sin(x @ x.T)                          # (N, out) for weight x (out, in)
            for a, b in zip(nb.linear_backward(g, x, x, (True, True, True)),
                            ref.linear_backward(g, x, x, (True, True, True))):
                assert np.allclose(a, b, rtol=1e-4, atol=1e-5)
            p1, p2, g = x.copy(), x.copy(), np.cos(x)
            s1 = {"step": 0, "exp_avg": np.zeros_like(x), "exp_avg_sq": np.zeros_like(x)}
            s2 = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s1.items()}
            nb.adam_step(p1, g, s1, 0.1, 0.9, 0.999, 1e-8, 0.01, False, True, False)
            ref.adam_step(p2, g, s2, 0.1, 0.9, 0.999, 1e-8, 0.01, False, True, False)
            assert np.array_equal(p1, p2)
        print("ok")
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = root + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=path)
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_small_work_runs_on_the_calling_thread():
    """numba_cpu._threads: a parallel_kernel is compiled twice; launch runs the serial twin
    below PARALLEL_MIN_WORK or at one thread, the parallel one otherwise; both agree."""
    numba = pytest.importorskip("numba")
    from numba import prange

    def double(x, out):
        for i in prange(x.shape[0]):
            out[i] = 2 * x[i]
    kernel = _threads.parallel_kernel(cache=False)(double)
    assert kernel.targetoptions.get("parallel") and not kernel.serial.targetoptions.get("parallel")
    calls = []
    spy = lambda *a: calls.append("parallel")                      # noqa: E731
    spy.serial = lambda *a: calls.append("serial")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        _threads.launch(spy, _threads.PARALLEL_MIN_WORK - 1)
        _threads.launch(spy, _threads.PARALLEL_MIN_WORK)
        numba.set_num_threads(1)
        _threads.launch(spy, _threads.PARALLEL_MIN_WORK)
    finally:
        numba.set_num_threads(before)
    want_big = "parallel" if min(2, numba.config.NUMBA_NUM_THREADS) > 1 else "serial"
    assert calls == ["serial", want_big, "serial"]
    x = np.arange(1000, dtype=np.float64)
    outs = [np.empty_like(x), np.empty_like(x)]
    kernel(x, outs[0])
    kernel.serial(x, outs[1])
    np.testing.assert_array_equal(outs[0], 2 * x)
    np.testing.assert_array_equal(outs[1], 2 * x)
