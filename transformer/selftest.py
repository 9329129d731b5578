"""A built-in self-test: gradcheck every registered op, then a tiny encoder/decoder layer.

`python -m transformer gradcheck` runs `run_gradchecks()` and prints a table
``op | max abs err | ok``. Each op in `minitensor.ops.REGISTRY` is checked on its first
sample in `minitensor.op_samples` (the table the tests use too) whose gradient is the
true derivative. An op with no sample is reported as "no sample" and fails the run, so
a new op cannot slip past the self-test unnoticed.

Verdict and "max abs err" both come from `minitensor.gradcheck_report` (central
differences against backward, contracted with a random upstream gradient).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import minitensor as mt
import transformer as T
from minitensor.op_samples import SAMPLES
from minitensor.ops import REGISTRY


@dataclass
class CheckResult:
    """One row of the self-test table."""

    name: str
    max_abs_err: float  # nan when not measured
    ok: bool
    note: str = ""


def check(name: str, fn: Callable, arrays: list, projections: int | None = None,
          eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> CheckResult:
    """Gradcheck `fn` on float64 copies of `arrays` (Tensors are used as they are)."""
    inputs = [a if isinstance(a, mt.Tensor) else mt.tensor(np.array(a, dtype=np.float64), requires_grad=True)
              for a in arrays]
    try:
        report = mt.gradcheck_report(fn, inputs, eps=eps, atol=atol, rtol=rtol,
                                     mode="projection" if projections else "full",
                                     n_projections=projections or 4)
    except Exception as exc:  # noqa: BLE001 - a self-test reports every failure as a row
        return CheckResult(name, float("nan"), False, f"{type(exc).__name__}: {exc}")
    return CheckResult(name, report.max_abs_err, report.ok)


def check_ops(seed: int = 0) -> list[CheckResult]:
    """Gradcheck every op in `minitensor.ops.REGISTRY` on its sample, calling the op's
    Function directly (as the tests do)."""
    mt.manual_seed(seed)
    rng = np.random.default_rng(seed)
    results = []
    for name, op in REGISTRY.items():
        # Samples with a documented departure from the true derivative (numeric_fix)
        # cannot be gradchecked as they are.
        samples = [s for s in SAMPLES.get(name, ()) if s.numeric_fix is None]
        if not samples:
            results.append(CheckResult(name, float("nan"), False, "no sample in minitensor/op_samples.py"))
            continue
        sample = samples[0]
        fn = lambda *tensors, op=op, attrs=sample.attrs: op.apply(*tensors, **attrs)  # noqa: E731
        results.append(check(name, fn, sample.make(rng), eps=sample.fd_eps, atol=sample.atol,
                             rtol=sample.rtol))
    return results


def check_layers(seed: int = 0) -> list[CheckResult]:
    """Gradcheck a tiny TransformerEncoderLayer and TransformerDecoderLayer in float64.

    Inputs and every parameter are checked at once along random directions
    (projection mode), with dropout off and a padding mask on the memory.
    """
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
