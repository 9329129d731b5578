"""Gradient checking: analytic gradients (backward) against central finite differences.

Two checks, both contracting the output with a random upstream gradient ``u`` (never
an all-ones ``.sum()``, which hides transposed or swapped gradients):

* ``mode="full"``: for every input element x_i, the analytic d<u, f>/dx_i from one
  backward is compared with (<u, f(x + eps e_i)> - <u, f(x - eps e_i)>) / (2 eps).
* ``mode="projection"`` (HIPS autograd's ``check_vjp``): for random directions v,
  <grad, v> is compared with the central-difference directional derivative of <u, f>
  along v. A few forward passes, whatever the input size: for whole layers.

``gradcheck`` returns True or raises with the worst entry; ``gradcheck_report`` runs the
same check and returns a ``GradcheckReport`` (verdict, largest error, message), for
tables such as ``python -m transformer gradcheck``'s.

Run checks in float64: float32 rounding swamps a finite difference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from . import grad_mode
from . import random as _random
from .errors import DTypeError
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree; the message names the worst entry."""


@dataclass
class GradcheckReport:
    """What one gradient check found (``gradcheck_report``'s result)."""

    ok: bool
    max_abs_err: float  # largest |analytic - numeric| over the entries (or directions) checked
    message: str        # the worst mismatch ("" when ok)


def gradcheck(fn: Callable, inputs: Sequence[Tensor] | Tensor, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, mode: str = "auto", n_projections: int = 4, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """Check the gradients of ``fn`` with respect to every input that requires grad.

    Args:
        fn: takes the tensors in ``inputs`` (positionally) and returns a Tensor or a
            tuple of Tensors. It must be deterministic; random ops (dropout) are made
            so by restoring the global generator before every evaluation.
        inputs: the tensors; those with ``requires_grad`` are checked. They may also be
            parameters that ``fn`` uses without taking them as arguments: pass them
            here and accept them in ``fn``'s signature, or close over them.
        eps: finite-difference step. atol, rtol: |analytic - numeric| <= atol + rtol |numeric|.
        mode: "full", "projection", or "auto" (full up to 2,000 checked elements).
        n_projections: random directions in projection mode.
        seed: seeds the upstream gradient and the projection directions.
        raise_exception: raise ``GradcheckError`` on mismatch (else return False).
    Returns:
        True when all gradients agree.
    """
    report = gradcheck_report(fn, inputs, eps, atol, rtol, mode, n_projections, seed)
    if not report.ok and raise_exception:
        raise GradcheckError(report.message)
    return report.ok


def gradcheck_report(fn: Callable, inputs: Sequence[Tensor] | Tensor, eps: float = 1e-6,
                     atol: float = 1e-5, rtol: float = 1e-3, mode: str = "auto",
                     n_projections: int = 4, seed: int = 0) -> GradcheckReport:
    """``gradcheck``'s check, returning what it found instead of raising: the verdict,
    the largest |analytic - numeric| and the message of the worst mismatch. Arguments
    as ``gradcheck``'s."""
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; nothing to check")
    _check_float64(inputs, checked, eps)
    rng = np.random.default_rng(seed)
    rng_state = _random.get_rng_state()

    def evaluate() -> list[np.ndarray]:
        _random.set_rng_state(rng_state)
        return _floating_outputs(fn(*inputs))

    outputs = evaluate()
    upstream = [rng.standard_normal(o.shape).astype(o.dtype) for o in outputs]
    analytic = _analytic(inputs, checked, outputs, upstream)

    def objective() -> list[np.ndarray]:
        """The outputs in float64. Central differences are taken element by element and
        only then contracted with u: summing first would bury a small change of one
        element in the rounding error of a large unrelated one."""
        with grad_mode.no_grad():
            return [o.data.astype(np.float64) for o in evaluate()]

    def contract(plus: list, minus: list) -> float:
        return float(sum(np.sum(u * (p - m)) for u, p, m in zip(upstream, plus, minus)))

    total = sum(inputs[i].data.size for i in checked)
    use_full = mode == "full" or (mode == "auto" and total <= 2000)
    if use_full:
        ok, message, max_err = _check_full(inputs, checked, analytic, objective, contract, eps,
                                           atol, rtol)
    else:
        ok, message, max_err = _check_projection(inputs, checked, analytic, objective, contract,
                                                 eps, atol, rtol, n_projections, rng)
    _random.set_rng_state(rng_state)
    evaluate()  # leave the generator as if fn had run once
    return GradcheckReport(ok, float(max_err), message)


def _check_float64(inputs, checked, eps: float) -> None:
    """Refuse non-float64 inputs before computing anything: a central difference with a
    step of 1e-6 moves a float32 value by ~8 of its rounding steps (2^-24 relative), so
    the numeric gradient would be mostly rounding noise and the check would fail (or
    pass) for the wrong reason."""
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise DTypeError(
                f"gradcheck: input {i} (shape {inputs[i].shape}) has dtype {inputs[i].dtype}; "
                f"gradcheck needs float64 inputs: a finite difference with eps={eps:g} drowns "
                f"in {inputs[i].dtype} rounding (relative precision "
                f"{np.finfo(inputs[i].dtype).eps:.1e}). Pass .double() inputs and call "
                f".double() on any module the function uses")


def _floating_outputs(out) -> list[Tensor]:
    """``fn``'s floating-point Tensor outputs. A tuple may hold other items (integer
    indices, None), which are not checked; but something floating must come back."""
    outs = out if isinstance(out, (tuple, list)) else (out,)
    floating = [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]
    if not floating:
        what = f"a {out.dtype} Tensor" if isinstance(out, Tensor) else \
            f"a {type(out).__name__}" if not isinstance(out, (tuple, list)) else \
            f"a {type(out).__name__} of ({', '.join(type(o).__name__ for o in outs)})"
        raise TypeError(f"gradcheck: the function must return a floating-point Tensor (or a "
                        f"tuple holding some), got {what}")
    return floating


def _analytic(inputs, checked, outputs, upstream) -> dict[int, np.ndarray]:
    saved = {i: inputs[i].grad for i in checked}
    for i in checked:
        inputs[i].grad = None
    roots = [(o, u) for o, u in zip(outputs, upstream) if o.requires_grad]
    for k, (o, u) in enumerate(roots):
        o.backward(u, retain_graph=k < len(roots) - 1)
    grads = {i: (np.zeros(inputs[i].shape) if inputs[i].grad is None
                 else inputs[i].grad.data.astype(np.float64)) for i in checked}
    for i in checked:
        inputs[i].grad = saved[i]
    return grads


def _check_full(inputs, checked, analytic, objective, contract, eps, atol, rtol):
    worst = None  # (excess, message)
    max_err = 0.0
    for i in checked:
        data = inputs[i].data
        if not data.flags.writeable:
            raise ValueError(f"gradcheck: input {i} is a read-only view; pass a copy")
        for index in np.ndindex(data.shape):
            original = data[index]
            data[index] = original + eps
            plus = objective()
            data[index] = original - eps
            minus = objective()
            data[index] = original
            numeric = contract(plus, minus) / (2 * eps)
            a = analytic[i][index]
            excess = abs(a - numeric) - (atol + rtol * abs(numeric))
            max_err = _larger(max_err, abs(a - numeric))
            if not np.isfinite(a) or not np.isfinite(numeric) or excess > 0:
                if worst is None or not excess <= worst[0]:
                    worst = (excess, f"gradcheck: input {i} (shape {data.shape}) at index {index}: "
                                     f"analytic {float(a)!r} vs numeric {float(numeric)!r} "
                                     f"(|diff| {abs(a - numeric):.3e} > atol {atol} + rtol {rtol} * |numeric|)")
    return (worst is None), (worst[1] if worst else ""), max_err


def _check_projection(inputs, checked, analytic, objective, contract, eps, atol, rtol, n, rng):
    message, max_err = "", 0.0  # message: the first direction that disagrees
    for trial in range(n):
        directions = {i: rng.standard_normal(inputs[i].shape) for i in checked}
        originals = {i: inputs[i].data.copy() for i in checked}

        def shift(t: float) -> list:
            for i in checked:
                inputs[i].data[...] = originals[i] + t * directions[i]
            return objective()

        numeric = contract(shift(eps), shift(-eps)) / (2 * eps)
        for i in checked:
            inputs[i].data[...] = originals[i]
        a = float(sum(np.sum(analytic[i] * directions[i]) for i in checked))
        max_err = _larger(max_err, abs(a - numeric))
        if (not np.isfinite(a) or abs(a - numeric) > atol + rtol * abs(numeric)) and not message:
            message = (f"gradcheck (projection {trial}): <grad, v> analytic {float(a)!r} vs numeric "
                       f"{float(numeric)!r} along a random direction over inputs {checked}")
    return not message, message, max_err


def _larger(worst: float, err: float) -> float:
    """max(worst, err), where a NaN error (a non-finite gradient) counts as the largest."""
    return err if not err <= worst else worst
