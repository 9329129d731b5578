"""One node's backward as a record: what ``autograd.backward_steps`` yields.

Kept apart from the engine (autograd.py) because it is for reading, not for running:
a notebook prints ``step.describe()`` or animates the fields, while the engine's loop
only fills them in.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class BackwardStep(NamedTuple):
    """One node's backward, as ``backward_steps`` yields it.

    node: the graph node (``Context``); op: its op's name; created_at: "file:line in
    function: code" of the user code that made it (recorded under ``detect_anomaly()``
    or ``viz.capture()``, else None); grad_in: the gradient that reached each output
    (arrays, None where none reached); grads_out: what it sends to each input, already
    summed to the input's shape (None for inputs that need no gradient); parents: each
    input's node, leaf tensor, or None.
    """
    node: object  # the graph node, an autograd.Context
    op: str
    created_at: str | None
    grad_in: tuple
    grads_out: tuple
    parents: tuple

    def describe(self) -> str:
        """One line: op, incoming gradient shape and norm, outgoing gradient shapes."""
        ins = ", ".join(_shape_norm(g) for g in self.grad_in)
        outs = ", ".join(_shape_norm(g) for g in self.grads_out)
        where = f"  (made at {self.created_at})" if self.created_at else ""
        return f"{self.op}Backward: grad in {ins} -> grads out {outs}{where}"


def _shape_norm(g) -> str:
    if g is None:
        return "None"
    return f"{tuple(g.shape)} |g|={float(np.linalg.norm(g.astype(np.float64, copy=False))):.4g}"
