"""Whether the engine may keep a leaf's gradient as ``.grad`` without copying it.

``.grad`` must own its memory: optimizers and clipping change it in place, and the same
gradient may also belong to another input (Add returns one g for both), be a view of
another gradient, or be kept by a hook. ``autograd._accumulate_leaf`` copies it unless
``sole_user`` says that only the engine's own variables refer to it and to its memory,
as PyTorch's AccumulateGrad steals a gradient whose use count says it is the only user.

The reference counts it compares with are measured at import through the same chain of
calls as the engine's (a local variable, passed to ``_accumulate_leaf``, passed here).
"""
from __future__ import annotations

import sys

import numpy as np

from .kernels import buffers


def sole_user(g: np.ndarray) -> bool:
    """True when only the engine's variable and ``_accumulate_leaf``'s refer to ``g``, and
    ``g`` is the only array using its memory (NumPy points every view at the array that
    owns the memory, so any other view would count on the owner)."""
    if sys.getrefcount(g) != SOLE_REFS[0]:
        return False
    base = g.base
    if base is None:
        return True
    # A buffer of the kernels' pool has one reference more: the pool's own.
    return sys.getrefcount(base) == SOLE_REFS[1] + (1 if buffers.holds(base) else 0)


def _probe_engine():             # _run_backward: g in one local variable...
    g = np.empty(2)[:1]          # (a view, so its memory's owner is counted too)
    return _probe_accumulate(g)


def _probe_accumulate(g):        # ...passed to _accumulate_leaf, which asks sole_user
    return _probe_sole_user(g)


def _probe_sole_user(g):
    base = g.base
    return sys.getrefcount(g), sys.getrefcount(base)


# The counts sole_user reads when nothing else holds the gradient, measured through the
# same chain of calls (so they hold for whatever this interpreter counts). A build
# without the GIL defers reference counting: there no count is trusted (always a copy).
SOLE_REFS = _probe_engine() if getattr(sys, "_is_gil_enabled", lambda: True)() else (-1, -1)
