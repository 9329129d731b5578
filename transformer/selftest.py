"""A built-in self-test: gradcheck every registered op, then a tiny encoder/decoder layer.

`python -m transformer gradcheck` runs `run_gradchecks()` and prints a table
``op | max abs err | ok``. Each op in `minitensor.ops.REGISTRY` gets a small sample
below: a float64 function of a few random tensors, with shapes that broadcast where
the op can. An op with no sample is reported as "no sample" and fails the run, so a
new op cannot slip past the self-test unnoticed.

The verdict is `minitensor.gradcheck`'s (central differences against backward,
contracted with a random upstream gradient); the "max abs err" column is measured
here the same way so the table shows how close each op came.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import minitensor as mt
from minitensor import functional as F

Sample = tuple[Callable[..., mt.Tensor], list[np.ndarray], dict]


def _away_from_zero(a: np.ndarray) -> np.ndarray:
    # Kinks (relu, abs) and ties (max, min) at 0: keep samples a finite step away.
    return np.where(np.abs(a) < 0.2, np.sign(a + 1e-12) * 0.2 + a, a)


def _samples(rng: np.random.Generator) -> dict[str, Sample]:
    """op name -> (function of tensors, input arrays, extra gradcheck options)."""
    n = lambda *s: rng.standard_normal(s)  # noqa: E731
    pos = lambda *s: rng.uniform(0.5, 2.0, s)  # noqa: E731
    distinct = lambda *s: rng.permutation(np.prod(s)).reshape(s) * 0.1 + n(*s) * 0.01  # noqa: E731
    cond = rng.random((3, 4)) < 0.5
    mask = rng.random((2, 1, 4, 5)) < 0.3
    mask[..., 0] = False  # every query row keeps a key it may attend
    target = rng.integers(0, 5, size=6)
    target[1] = -100  # an ignored position
    idx = rng.integers(0, 7, size=(2, 3))
    return {
        "Add": (lambda a, b: a + b, [n(3, 4), n(4)], {}),
        "Sub": (lambda a, b: a - b, [n(3, 1), n(1, 4)], {}),
        "Mul": (lambda a, b: a * b, [n(2, 3, 4), n(3, 1)], {}),
        "Div": (lambda a, b: a / b, [n(3, 4), pos(4)], {}),
        "Neg": (lambda a: -a, [n(3, 4)], {}),
        "PowScalar": (lambda a: a ** 3.0, [n(3, 4)], {}),
        "Pow": (lambda a, b: a ** b, [pos(3, 4), n(4)], {}),
        "Exp": (lambda a: a.exp(), [n(3, 4)], {}),
        "Log": (lambda a: a.log(), [pos(3, 4)], {}),
        "Sqrt": (lambda a: a.sqrt(), [pos(3, 4)], {}),
        "Tanh": (lambda a: a.tanh(), [n(3, 4)], {}),
        "Sigmoid": (lambda a: a.sigmoid(), [n(3, 4)], {}),
        "ReLU": (lambda a: a.relu(), [_away_from_zero(n(3, 4))], {}),
        "Abs": (lambda a: a.abs(), [_away_from_zero(n(3, 4))], {}),
        "Maximum": (lambda a, b: mt.maximum(a, b), [distinct(3, 4), distinct(4) + 0.05], {}),
        "Minimum": (lambda a, b: mt.minimum(a, b), [distinct(3, 4), distinct(4) + 0.05], {}),
        "Clamp": (lambda a: F.clamp(a, -0.5, 0.5), [_away_from_zero(n(3, 4)) * 1.3 + 0.05], {}),
        "Where": (lambda a, b: mt.where(cond, a, b), [n(3, 4), n(4)], {}),
        "MaskedFill": (lambda a: a.masked_fill(cond, 0.5), [n(3, 4)], {}),
        # float64 -> float32 -> float64 rounds at ~1e-7: a bigger step and tolerance.
        "Cast": (lambda a: F.cast(F.cast(a, np.float32), np.float64), [n(3, 4)],
                 {"eps": 1e-2, "atol": 1e-4, "rtol": 1e-3}),
        "Clone": (lambda a: F.clone(a), [n(3, 4)], {}),
        "Sum": (lambda a: a.sum(axis=1), [n(3, 4, 2)], {}),
        "Mean": (lambda a: a.mean(axis=0, keepdims=True), [n(3, 4)], {}),
        "Max": (lambda a: a.max(axis=1), [distinct(3, 4)], {}),
        "Min": (lambda a: a.min(axis=0), [distinct(3, 4)], {}),
        "Var": (lambda a: a.var(axis=1), [n(3, 5)], {}),
        "LogSumExp": (lambda a: F.logsumexp(a, axis=-1), [n(3, 5)], {}),
        "Reshape": (lambda a: a.reshape(4, 3), [n(3, 4)], {}),
        "Permute": (lambda a: a.permute(2, 0, 1), [n(2, 3, 4)], {}),
        "Expand": (lambda a: a.expand(2, 3, 4), [n(3, 1)], {}),
        "GetItem": (lambda a: a[np.array([2, 0, 2]), 1:], [n(3, 4)], {}),
        "SetItem": (lambda a, v: F.index_put(a, (slice(0, 2), 1), v), [n(3, 4), n(2)], {}),
        "Cat": (lambda a, b: mt.cat([a, b], axis=1), [n(2, 3), n(2, 2)], {}),
        "Stack": (lambda a, b: mt.stack([a, b], axis=0), [n(2, 3), n(2, 3)], {}),
        "MatMul": (lambda a, b: a @ b, [n(2, 3, 4), n(4, 5)], {}),
        "Linear": (lambda x, w, b: F.linear(x, w, b), [n(2, 3, 4), n(5, 4), n(5)], {}),
        "Softmax": (lambda a: a.softmax(axis=-1), [n(3, 5)], {}),
        "LogSoftmax": (lambda a: a.log_softmax(axis=-1), [n(3, 5)], {}),
        "CrossEntropy": (lambda a: F.cross_entropy(a, target, label_smoothing=0.1), [n(6, 5)], {}),
        "LayerNorm": (lambda x, w, b: F.layer_norm(x, 4, w, b), [n(2, 3, 4), n(4), n(4)], {}),
        "GELU": (lambda a: F.gelu(a) + F.gelu(a, approximate="tanh"), [n(3, 4)], {}),
        # gradcheck replays the global generator before each call: the mask is fixed.
        "Dropout": (lambda a: F.dropout(a, p=0.3, training=True), [n(3, 4)], {}),
        "Embedding": (lambda w: F.embedding(idx, w), [n(7, 3)], {}),
        "ScaledDotProductAttention": (
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=~mask)
            + F.scaled_dot_product_attention(q[:, :, :, :], k[:, :, :4], v[:, :, :4], is_causal=True),
            [n(2, 2, 4, 3), n(2, 2, 5, 3), n(2, 2, 5, 3)], {}),
        # Heads merged in the last axis: (B, T, H*D); a padding-style mask and dropout.
        "MultiHeadSDPA": (
            lambda q, k, v: F.multi_head_sdpa(q, k, v, 2, attn_mask=~mask[:, :, :1])
            + F.multi_head_sdpa(q, k, v, 2, dropout_p=0.2),
            [n(2, 4, 6), n(2, 5, 6), n(2, 5, 4)], {}),
    }


@dataclass
class CheckResult:
    """One row of the self-test table."""

    name: str
    max_abs_err: float  # nan when not measured
    ok: bool
    note: str = ""


def _max_abs_error(fn: Callable, inputs: list[mt.Tensor], eps: float, projections: int | None) -> float:
    """max |analytic - numeric| over input elements (or over random directions)."""
    rng = np.random.default_rng(1)
    state = mt.get_rng_state()

    def run():
        mt.set_rng_state(state)
        return fn(*inputs)

    out = run()
    u = rng.standard_normal(out.shape)
    for t in inputs:
        t.grad = None
    out.backward(mt.tensor(u.astype(out.dtype)))
    grads = [np.zeros(t.shape) if t.grad is None else t.grad.data for t in inputs]

    def objective() -> float:
        with mt.no_grad():
            return float(np.sum(run().data * u))

    worst = 0.0
    if projections is None:
        for t, g in zip(inputs, grads):
            for i in np.ndindex(t.shape):
                x0 = t.data[i]
                t.data[i] = x0 + eps
                plus = objective()
                t.data[i] = x0 - eps
                minus = objective()
                t.data[i] = x0
                worst = max(worst, abs(g[i] - (plus - minus) / (2 * eps)))
    else:
        originals = [t.data.copy() for t in inputs]
        for _ in range(projections):
            dirs = [rng.standard_normal(t.shape) for t in inputs]

            def shifted(s: float) -> float:
                for t, x0, d in zip(inputs, originals, dirs):
                    t.data[...] = x0 + s * d
                return objective()

            numeric = (shifted(eps) - shifted(-eps)) / (2 * eps)
            for t, x0 in zip(inputs, originals):
                t.data[...] = x0
            analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, dirs))
            worst = max(worst, abs(analytic - numeric))
    for t in inputs:
        t.grad = None
    mt.set_rng_state(state)
    return worst


def check(name: str, fn: Callable, arrays: list, projections: int | None = None,
          eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> CheckResult:
    """Gradcheck `fn` on float64 copies of `arrays` (Tensors are used as they are)."""
    inputs = [a if isinstance(a, mt.Tensor) else mt.tensor(np.array(a, dtype=np.float64), requires_grad=True)
              for a in arrays]
    try:
        err = _max_abs_error(fn, inputs, eps, projections)
        ok = mt.gradcheck(fn, inputs, eps=eps, atol=atol, rtol=rtol,
                          mode="projection" if projections else "full",
                          n_projections=projections or 4, raise_exception=False)
    except Exception as exc:  # noqa: BLE001 - a self-test reports every failure as a row
        return CheckResult(name, float("nan"), False, f"{type(exc).__name__}: {exc}")
    return CheckResult(name, err, bool(ok))


def check_ops(seed: int = 0) -> list[CheckResult]:
    """Gradcheck every op in `minitensor.ops.REGISTRY` on its sample."""
    from minitensor.ops import REGISTRY

    mt.manual_seed(seed)
    samples = _samples(np.random.default_rng(seed))
    results = []
    for name in REGISTRY:
        if name not in samples:
            results.append(CheckResult(name, float("nan"), False, "no sample in transformer/selftest.py"))
            continue
        fn, arrays, opts = samples[name]
        results.append(check(name, fn, arrays, **opts))
    return results


def check_layers(seed: int = 0) -> list[CheckResult]:
    """Gradcheck a tiny TransformerEncoderLayer and TransformerDecoderLayer in float64.

    Inputs and every parameter are checked at once along random directions
    (projection mode), with dropout off and a padding mask on the memory.
    """
    import transformer as T

    mt.manual_seed(seed)
    rng = np.random.default_rng(seed)
    d, h, ff = 8, 2, 16
    results = []
    src = rng.standard_normal((2, 5, d))
    tgt = rng.standard_normal((2, 4, d))
    pad = np.zeros((2, 5), dtype=bool)
    pad[1, 3:] = True
    for norm_first in (False, True):
        tag = " (pre-norm)" if norm_first else ""
        enc = T.TransformerEncoderLayer(d, h, ff, dropout=0.0, batch_first=True, norm_first=norm_first).double()
        dec = T.TransformerDecoderLayer(d, h, ff, dropout=0.0, batch_first=True, norm_first=norm_first).double()
        enc_params = [p for _, p in enc.named_parameters()]
        dec_params = [p for _, p in dec.named_parameters()]
        results.append(_check_module(f"TransformerEncoderLayer{tag}", lambda x: enc(x, src_key_padding_mask=pad),
                                     src, enc_params))
        causal = T.causal_mask(4)
        results.append(_check_module(
            f"TransformerDecoderLayer{tag}",
            lambda y, m: dec(y, m, tgt_mask=causal, memory_key_padding_mask=pad),
            [tgt, src], dec_params))
    return results


def _check_module(name: str, fn: Callable, arrays, params) -> CheckResult:
    """Projection gradcheck over the inputs and a module's parameters together.

    The parameters are passed to gradcheck as they are, so it perturbs the very
    arrays the module computes with; `fn` only takes the data inputs.
    """
    arrays = arrays if isinstance(arrays, list) else [arrays]
    k = len(arrays)
    return check(name, lambda *tensors: fn(*tensors[:k]), [*arrays, *params], projections=6)


def run_gradchecks(seed: int = 0, layers: bool = True) -> list[CheckResult]:
    """All op checks, then (optionally) the layer checks."""
    results = check_ops(seed)
    if layers:
        try:
            results += check_layers(seed)
        except (ImportError, AttributeError) as exc:
            results.append(CheckResult("Transformer layers", float("nan"), False,
                                       f"model code unavailable: {exc}"))
    return results


def format_table(results: list[CheckResult]) -> str:
    """Render results as an aligned text table: op | max abs err | ok."""
    width = max(len("op"), *(len(r.name) for r in results))
    lines = [f"{'op':<{width}} | {'max abs err':>11} | ok", f"{'-' * width}-+-{'-' * 11}-+----"]
    for r in results:
        err = "-" if np.isnan(r.max_abs_err) else f"{r.max_abs_err:.2e}"
        mark = "ok" if r.ok else "FAIL"
        lines.append(f"{r.name:<{width}} | {err:>11} | {mark}" + (f"  ({r.note})" if r.note else ""))
    n_ok = sum(r.ok for r in results)
    lines.append(f"{n_ok}/{len(results)} passed")
    return "\n".join(lines)
