"""What an op costs, for the profiler: FLOPs stated by the op, bytes measured from arrays.

An op states its FLOPs with a ``cost`` static method next to its class (each ops file
ends with a block that sets them)::

    cost(ctx, phase, ins, outs, attrs) -> flops  (or a (flops, bytes) pair)

``phase`` is "forward" or "backward". In forward, ``ins`` are the input arrays and
``outs`` the outputs; in backward, ``ins`` are the gradients that reached the outputs
and ``outs`` the gradients returned for the inputs (None where none is needed).
``attrs`` are the forward's keyword attributes (None in backward when the forward ran
unprofiled). The counting convention: one add, multiply, compare or transcendental
(exp, log, erf) = 1 FLOP; a multiply-add = 2.

Bytes, unless an op returns its own, are measured by the profiler: every array read or
written (inputs, outputs and, in backward, the arrays saved for it). That is what
moved through memory at least once, the lower bound a roofline needs.
"""
from __future__ import annotations

import numpy as np


def size(a) -> int:
    """Elements of ``a`` (0 for None)."""
    return 0 if a is None else int(np.size(a))


def nbytes(arrays) -> int:
    """Total bytes of the ndarrays in ``arrays`` (None and non-arrays count 0)."""
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


def per_element(forward: float, backward: float):
    """A ``cost`` for an elementwise op: ``forward`` FLOPs per output element, ``backward``
    FLOPs per gradient element computed (per input that gets one)."""
    def cost(ctx, phase, ins, outs, attrs):
        if phase == "forward":
            return int(forward * size(outs[0]))
        return int(backward * sum(size(g) for g in outs))
    return staticmethod(cost)


def data_movement(ctx, phase, ins, outs, attrs):
    """The ``cost`` of a shape op: no arithmetic; no bytes either when the output is a
    view of the input (reshape, permute, expand, basic slicing move nothing)."""
    if phase == "forward" and ins and isinstance(outs[0], np.ndarray) \
            and np.may_share_memory(outs[0], ins[0]):
        return 0, 0
    return 0


def set_costs(table: dict) -> None:
    """Give each op class in ``table`` its ``cost`` (op -> cost static method)."""
    for op, cost in table.items():
        op.cost = cost if isinstance(cost, staticmethod) else staticmethod(cost)
