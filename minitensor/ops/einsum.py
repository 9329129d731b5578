"""Einstein summation: one op for every product that sums over named axes.

The wrapper (``functional/products.py``) rewrites the equation into explicit form,
one letter per axis (``...`` becomes letters too), so the op sees ``inputs`` (one
subscript string per operand) and ``output``. The gradient of operand i is itself an
einsum: the output's subscripts and the other operands in, operand i's subscripts out.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .registry import register


def letter_sizes(arrays, inputs) -> dict:
    """The size of every subscript letter (the largest: a size-1 axis broadcasts)."""
    sizes: dict = {}
    for array, subs in zip(arrays, inputs):
        for letter, n in zip(subs, array.shape):
            sizes[letter] = max(sizes.get(letter, 1), n)
    return sizes


@register
class Einsum(Function):
    """$out_{output} = \\sum_{\\text{other letters}} \\prod_i x^{(i)}_{inputs[i]}$.

    Size-1 axes are broadcast first (as torch); the engine sums their gradients back.
    A letter repeated in one operand reads its diagonal, so its gradient is written onto
    that diagonal of zeros.
    """
    @staticmethod
    def forward(ctx, *xs, inputs, output):
        sizes = letter_sizes(xs, inputs)
        xs = [np.broadcast_to(x, tuple(sizes[c] for c in subs)) for x, subs in zip(xs, inputs)]
        ctx.inputs, ctx.output, ctx.sizes = inputs, output, sizes
        ctx.save_for_backward(*xs)
        return np.einsum(f"{','.join(inputs)}->{output}", *xs, optimize=len(xs) > 2)

    @staticmethod
    def backward(ctx, g):
        xs = ctx.saved_arrays
        grads = []
        for i, subs in enumerate(ctx.inputs):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [(s, x) for j, (s, x) in enumerate(zip(ctx.inputs, xs)) if j != i]
            reachable = set(ctx.output).union(*[s for s, _ in others])
            unique = "".join(dict.fromkeys(subs))   # each letter once, in order
            kept = "".join(c for c in unique if c in reachable)
            equation = ",".join([ctx.output] + [s for s, _ in others]) + "->" + kept
            grad = np.einsum(equation, g, *[x for _, x in others], optimize=len(others) > 1)
            # Letters found only in operand i were summed in forward: d/dx is constant along them.
            missing = [k for k, c in enumerate(unique) if c not in reachable]
            if missing:
                grad = np.broadcast_to(np.expand_dims(grad, missing),
                                       tuple(ctx.sizes[c] for c in unique))
            if len(unique) < len(subs):             # repeated letter: write onto the diagonal
                full = np.zeros(xs[i].shape, dtype=g.dtype)
                np.einsum(f"{subs}->{unique}", full)[...] = grad
                grad = full
            grads.append(grad)
        return tuple(grads)
