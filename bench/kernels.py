"""Kernel rows: each kernel at transformer shapes, float32, numba vs numpy vs PyTorch CPU.

A row is a ``Case``: inputs, one thunk per backend that does the row's work, the PyTorch
thunk doing the same work, and the work itself (FLOPs or bytes) for the throughput
column. What "the same work" means for each kind of row:

    fwd       ours: <name>_forward(x)            torch: the functional op, no grad
    fwd+bwd   ours: <name>_forward then          torch: the op on leaves with
              <name>_backward(dout, cache)       requires_grad, then .backward(dout)
                                                 (dout made once, .grad reset each call)
    matmul    ours: backend.matmul(a, b)         torch: torch.matmul(a, b), same views

Throughput is for the numba column: matmul and attention in GFLOP/s (2*M*N*K per
product; attention forward 4*B*H*T*T*D, forward+backward 12*B*H*T*T*D: the algorithm's
products, the fused backward's recomputation of QK^T not counted); row kernels in GB/s
of the minimum traffic (every input read once, every output written once, float32).

``attention_memory`` reports peak extra memory of the fused vs the materialized
attention at T=512: NumPy-side allocations measured with tracemalloc, plus the Numba
kernels' in-kernel scratch, which tracemalloc cannot see, *computed* from their tile
sizes.
"""
from __future__ import annotations

import math
import tracemalloc
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import harness

F32 = 4  # bytes per float32 element


@dataclass
class Case:
    """One kernel row (see the module docstring)."""

    name: str
    shape: str
    needs: tuple            # kernel names the row calls (looked up in each backend)
    make: Callable          # rng -> dict of float32 inputs
    ours: Callable          # (backend module, inputs) -> thunk
    torch: Callable | None  # (torch, inputs) -> thunk
    work: float             # FLOPs or bytes per call
    unit: str               # "GFLOP/s" | "GB/s"
    small: bool = False     # part of --quick
    numpy_needs: tuple | None = None  # the numpy column uses other kernels (matmul_tiled)


def _randn(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


# ----------------------------------------------------------------------------- matmul

def _matmul_case(name, a_shape, b_shape, small, t_a=False, t_b=False, fn="matmul"):
    """a @ b; t_a/t_b pass the operand as a transposed view, as Linear's products do."""
    def make(rng):
        a = _randn(rng, *(a_shape[:-2] + a_shape[:-3:-1] if t_a else a_shape))
        b = _randn(rng, *(b_shape[:-2] + b_shape[:-3:-1] if t_b else b_shape))
        return {"a": a.swapaxes(-1, -2) if t_a else a, "b": b.swapaxes(-1, -2) if t_b else b}

    def ours(mod, x):
        f = getattr(mod, fn if mod.__name__.endswith("numba_cpu") else "matmul")
        return lambda: f(x["a"], x["b"])

    def torch(th, x):
        a, b = _as_torch(th, x["a"]), _as_torch(th, x["b"])
        return lambda: th.matmul(a, b)

    batch = int(np.prod(a_shape[:-2])) if len(a_shape) > 2 else 1
    flops = 2.0 * batch * a_shape[-2] * a_shape[-1] * b_shape[-1]
    shape = f"{_fmt(a_shape)}{'^T' if t_a else ''} @ {_fmt(b_shape)}{'^T' if t_b else ''}"
    numpy_needs = ("matmul",) if fn != "matmul" else None
    return Case(name, shape, (fn,), make, ours, torch, flops, "GFLOP/s", small, numpy_needs)


def _as_torch(th, a):
    """A torch view of ``a`` (transposed views stay views, as on our side)."""
    if a.flags.c_contiguous:
        return th.from_numpy(a)
    return th.from_numpy(np.ascontiguousarray(a.swapaxes(-1, -2))).transpose(-1, -2)


def _fmt(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


# -------------------------------------------------------------------------- row kernels

def _row_case(kind, shape, bwd, small):
    """softmax / log_softmax / layer_norm / gelu / cross_entropy, fwd or fwd+bwd."""
    spec = _ROW_KINDS[kind]
    n = float(np.prod(shape))
    traffic = (spec["fwd_io"] + (spec["bwd_io"] if bwd else 0)) * n * F32

    def make(rng):
        return spec["make"](rng, shape)

    def ours(mod, x):
        fwd = getattr(mod, f"{kind}_forward")
        if not bwd:
            return lambda: spec["fwd"](fwd, x)
        back = getattr(mod, f"{kind}_backward")
        return lambda: back(x["dout"], spec["fwd"](fwd, x)[1])

    def torch(th, x):
        return _torch_row(th, spec, x, bwd)

    needs = (f"{kind}_forward",) + ((f"{kind}_backward",) if bwd else ())
    name = f"{kind} {'fwd+bwd' if bwd else 'fwd'}"
    return Case(name, _fmt(shape), needs, make, ours, torch, traffic, "GB/s", small)


def _torch_row(th, spec, x, bwd):
    """The torch thunk: forward only, or forward + backward(dout) on fresh-grad leaves."""
    args = {k: th.from_numpy(v) for k, v in x.items()}
    if not bwd:
        return lambda: spec["torch"](th, args)
    leaves = [args[k].clone().requires_grad_() for k in spec["grad_inputs"]]
    args.update(zip(spec["grad_inputs"], leaves))
    dout = args["dout"]

    def step():
        for t in leaves:
            t.grad = None  # as our backward: fresh gradient buffers, no accumulation
        spec["torch"](th, args).backward(dout)
    return step


def _make_x(rng, shape):
    return {"x": _randn(rng, *shape), "dout": _randn(rng, *shape)}


def _make_ln(rng, shape):
    c = shape[-1]
    return {"x": _randn(rng, *shape), "w": 1 + 0.1 * _randn(rng, c), "b": 0.1 * _randn(rng, c),
            "dout": _randn(rng, *shape)}


def _make_ce(rng, shape):
    n, c = shape
    return {"x": _randn(rng, n, c), "target": rng.integers(0, c, n),
            "dout": np.asarray(1.0, np.float32)}


def _torch_ce(th, a):
    return th.nn.functional.cross_entropy(a["x"], a["target"])


# Per kind: how to call our forward, the torch op, which inputs get gradients, and the
# element traffic (in units of the input size) of forward and backward.
_ROW_KINDS = {
    "softmax": dict(make=_make_x, fwd=lambda f, x: f(x["x"]),
                    torch=lambda th, a: th.softmax(a["x"], -1),
                    grad_inputs=("x",), fwd_io=2, bwd_io=3),
    "log_softmax": dict(make=_make_x, fwd=lambda f, x: f(x["x"]),
                        torch=lambda th, a: th.log_softmax(a["x"], -1),
                        grad_inputs=("x",), fwd_io=2, bwd_io=3),
    "layer_norm": dict(make=_make_ln, fwd=lambda f, x: f(x["x"], x["w"], x["b"], 1e-5),
                       torch=lambda th, a: th.nn.functional.layer_norm(
                           a["x"], a["x"].shape[-1:], a["w"], a["b"], 1e-5),
                       grad_inputs=("x", "w", "b"), fwd_io=2, bwd_io=3),
    "gelu": dict(make=_make_x, fwd=lambda f, x: f(x["x"], "none"),
                 torch=lambda th, a: th.nn.functional.gelu(a["x"]),
                 grad_inputs=("x",), fwd_io=2, bwd_io=3),
    "cross_entropy": dict(make=_make_ce, fwd=lambda f, x: f(x["x"], x["target"], -100, 0.0, "mean"),
                          torch=_torch_ce, grad_inputs=("x",), fwd_io=1, bwd_io=2),
}


# --------------------------------------------------------------------------- attention

def _attention_case(shape, bwd, small):
    """Fused (numba) vs materialized (numpy_ref) vs torch SDPA; no mask, not causal."""
    B, H, T, D = shape
    flops = (12.0 if bwd else 4.0) * B * H * T * T * D

    def make(rng):
        return {k: _randn(rng, *shape) for k in ("q", "k", "v", "dout")}

    def ours(mod, x):
        fwd = lambda: mod.attention_forward(x["q"], x["k"], x["v"], None, False, None)
        if not bwd:
            return fwd
        return lambda: mod.attention_backward(x["dout"], fwd()[1])

    def torch(th, x):
        a = {k: th.from_numpy(v) for k, v in x.items()}
        sdpa = th.nn.functional.scaled_dot_product_attention
        if not bwd:
            return lambda: sdpa(a["q"], a["k"], a["v"])
        leaves = [a[k].clone().requires_grad_() for k in ("q", "k", "v")]

        def step():
            for t in leaves:
                t.grad = None
            sdpa(*leaves).backward(a["dout"])
        return step

    needs = ("attention_forward",) + (("attention_backward",) if bwd else ())
    name = f"attention {'fwd+bwd' if bwd else 'fwd'}"
    return Case(name, _fmt(shape), needs, make, ours, torch, flops, "GFLOP/s", small)


# ------------------------------------------------------------------------------- shapes

# Per size: the dimensions every case is built from. "toy" is the smoke test's.
DIMS = {
    "full": dict(bt=1024, d=512, bh=128, t=64, hd=32, tiled=512, sm3=(128, 64, 64),
                 wide=(4096, 1000), ln=(4096, 512), ce=(2048, 1000), att=(32, 4, 64, 32),
                 att_long=(32, 4, 512, 32)),
    "toy": dict(bt=16, d=8, bh=4, t=8, hd=4, tiled=16, sm3=(2, 4, 4), wide=(8, 10),
                ln=(8, 16), ce=(8, 10), att=(2, 2, 8, 4), att_long=(2, 2, 16, 4)),
}


def cases(size: str = "full") -> list:
    """Every kernel row at ``size`` ("quick" = the full-size rows marked small)."""
    d = DIMS["toy" if size == "toy" else "full"]
    bt, dm, bh, t, hd = d["bt"], d["d"], d["bh"], d["t"], d["hd"]
    all_cases = [
        _matmul_case("matmul linear fwd", (bt, dm), (dm, dm), True, t_b=True),
        _matmul_case("matmul linear dX", (bt, dm), (dm, dm), False),
        _matmul_case("matmul linear dW", (dm, bt), (bt, dm), False, t_a=True),
        _matmul_case("matmul attn QK^T", (bh, t, hd), (bh, hd, t), True),
        _matmul_case("matmul attn PV", (bh, t, t), (bh, t, hd), True),
        _matmul_case("matmul_tiled", (d["tiled"],) * 2, (d["tiled"],) * 2, False, fn="matmul_tiled"),
        _row_case("softmax", d["sm3"], False, True),
        _row_case("softmax", d["sm3"], True, True),
        _row_case("softmax", d["wide"], False, False),
        _row_case("softmax", d["wide"], True, False),
        _row_case("log_softmax", d["wide"], False, False),
        _row_case("log_softmax", d["wide"], True, False),
        _row_case("layer_norm", d["ln"], False, True),
        _row_case("layer_norm", d["ln"], True, True),
        _row_case("cross_entropy", d["ce"], False, False),
        _row_case("cross_entropy", d["ce"], True, False),
        _row_case("gelu", d["ln"], False, True),
        _row_case("gelu", d["ln"], True, False),
        _attention_case(d["att"], False, True),
        _attention_case(d["att"], True, True),
        _attention_case(d["att_long"], False, False),
        _attention_case(d["att_long"], True, False),
    ]
    return [c for c in all_cases if size != "quick" or c.small]


# --------------------------------------------------------------------------------- run

def backends() -> dict:
    """name -> kernel module, for the backends that import."""
    from minitensor import kernels
    mods = {}
    for name in ("numba", "numpy"):
        try:
            with kernels.use(name):
                mods[name] = kernels.get()
        except ImportError:
            pass
    return mods


def _missing(case: Case, name: str, mod) -> list:
    needs = case.numpy_needs if (name == "numpy" and case.numpy_needs) else case.needs
    return [n for n in needs if not hasattr(mod, n)]


def run_case(case: Case, settings, mods: dict, torch, rng) -> dict:
    """Time one case on every backend (+ torch); a row dict, with notes for what is missing."""
    row = {"section": "kernels", "name": case.name, "shape": case.shape, "unit": case.unit,
           "notes": []}
    x = case.make(rng)
    fns = {}
    for name, mod in mods.items():
        missing = _missing(case, name, mod)
        if missing:
            row["notes"].append(f"{name}: kernel missing: {', '.join(missing)}")
        else:
            fns[name] = case.ours(mod, x)
    if torch is not None and case.torch is not None:
        fns["torch"] = case.torch(torch, x)
    if "numba" not in fns:
        return row  # no numba column: nothing to compare against
    timings = harness.compare(fns, settings)
    _fill(row, timings, case.work)
    return row


def _fill(row: dict, timings: dict, work: float) -> None:
    for name in ("numba", "numpy", "torch"):
        t = timings.get(name)
        row[f"{name}_ms"] = t.median * 1e3 if t else None
        row[f"{name}_runs_ms"] = [r * 1e3 for r in t.runs] if t else None
        row[f"{name}_calls_per_run"] = t.number if t else None
    row["numpy_over_numba"] = harness.ratio(row["numpy_ms"], row["numba_ms"])
    row["torch_over_numba"] = harness.ratio(row["torch_ms"], row["numba_ms"])
    nb = row["numba_ms"]
    row["throughput"] = work / (nb * 1e-3) / 1e9 if nb else None


def run(settings, torch=None, log=print) -> list:
    """Every kernel row at ``settings.size``; errors become a row note, not a crash."""
    mods = backends()
    rng = np.random.default_rng(0)
    rows = []
    for case in cases(settings.size):
        try:
            row = run_case(case, settings, mods, torch, rng)
        except Exception as e:  # a kernel still being written must not stop the bench
            row = {"section": "kernels", "name": case.name, "shape": case.shape,
                   "unit": case.unit, "notes": [], "error": f"{type(e).__name__}: {e}"}
        rows.append(row)
        log(_progress(row))
    return rows


def _progress(row: dict) -> str:
    if row.get("error"):
        return f"  {row['name']} {row['shape']}: ERROR {row['error']}"
    if row.get("numba_ms") is None:
        return f"  {row['name']} {row['shape']}: skipped ({'; '.join(row['notes'])})"
    return f"  {row['name']} {row['shape']}: numba {row['numba_ms']:.3f} ms"


# ------------------------------------------------------------------------------ memory

def _traced_peak(fn) -> float:
    """Peak bytes allocated through NumPy/Python while ``fn`` runs, above the start (the
    buffer pool off: arrays it served from earlier calls' memory would not be seen)."""
    from minitensor.kernels import buffers
    previous = buffers.set_enabled(False)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        keep = fn()  # noqa: F841  (outputs and caches stay alive until the peak is read)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
        buffers.set_enabled(previous)


def _fused_scratch(shape, bwd, threads) -> float | None:
    """Bytes of Numba-allocated scratch live at once in the fused kernels (tracemalloc
    cannot see them): the per-(b, h) buffers of ``_attention_fwd``/``_attention_bwd``,
    times the threads that hold one each. Computed from the tile sizes in
    ``numba_cpu/attention.py`` (None if it no longer has them)."""
    from minitensor.kernels.numba_cpu import attention as an
    bq, bk = getattr(an, "BLOCK_Q", None), getattr(an, "BLOCK_K", None)
    if bq is None or bk is None:
        return None
    _, _, t, d = shape
    fwd = t * d + bk * bq + 2 * d * bq + 4 * bq + 2 * bq   # qt, sT, acc, tmp, 4 vectors, l (f64)
    back = 3 * t * d + 2 * t + 2 * bk * bq + bk * d + bq * d  # qs, qt, dout^T, d, lse, sT, dpT, kv, q
    return (back if bwd else fwd) * F32 * threads


def attention_memory(size: str = "full") -> list:
    """Peak extra memory of fused (numba) vs materialized (numpy_ref) attention, T=512."""
    import numba
    shape = DIMS["toy" if size == "toy" else "full"]["att_long"]
    rng = np.random.default_rng(0)
    q, k, v, dout = (_randn(rng, *shape) for _ in range(4))
    rows = []
    mods = backends()
    for name, label in (("numba", "fused (numba)"), ("numpy", "materialized (numpy_ref)")):
        mod = mods.get(name)
        if mod is None or not hasattr(mod, "attention_forward"):
            continue
        mod.attention_backward(dout, mod.attention_forward(q, k, v, None, False, None)[1])  # warm
        for bwd in (False, True):
            def work():
                out, cache = mod.attention_forward(q, k, v, None, False, None)
                return mod.attention_backward(dout, cache) if bwd else (out, cache)
            traced = _traced_peak(work)
            scratch = _fused_scratch(shape, bwd, numba.get_num_threads()) if name == "numba" else 0.0
            rows.append(_memory_row(label, shape, bwd, traced, scratch))
    return rows


def _memory_row(label, shape, bwd, traced, scratch) -> dict:
    B, H, T, _ = shape
    total = traced + scratch if scratch is not None else None
    return {"section": "memory", "name": f"{label} {'fwd+bwd' if bwd else 'fwd'}",
            "shape": _fmt(shape), "traced_mb": traced / 2**20,
            "scratch_mb": None if scratch is None else scratch / 2**20,
            "total_mb": None if total is None else total / 2**20,
            "one_score_matrix_mb": B * H * T * T * F32 / 2**20,
            "method": "tracemalloc (NumPy allocations) + computed Numba in-kernel scratch"}


KERNEL_COLUMNS = [("name", "row", ""), ("shape", "shape", ""), ("numba_ms", "numba ms", ".3f"),
                  ("numpy_ms", "numpy ms", ".3f"), ("torch_ms", "torch ms", ".3f"),
                  ("numpy_over_numba", "numpy/numba", ".2f"),
                  ("torch_over_numba", "torch/numba", ".2f"),
                  ("throughput", "numba thru", ".1f"), ("unit", "unit", "")]
MEMORY_COLUMNS = [("name", "path", ""), ("shape", "shape", ""),
                  ("traced_mb", "tracemalloc MB", ".1f"), ("scratch_mb", "+kernel scratch MB", ".2f"),
                  ("total_mb", "total MB", ".1f"), ("one_score_matrix_mb", "1 score matrix MB", ".1f")]
