"""The one seeded random generator behind randn/rand, dropout and the nn initializers.

``manual_seed(s)`` makes every random draw in minitensor reproducible. Dropout does
not draw its mask here directly: it draws a 63-bit *seed* per call, and the kernels
turn (seed, element index) into the mask with a counter-based hash, so the NumPy and
Numba backends produce the same mask bit for bit.
"""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Re-seed the global generator; returns it (like ``torch.manual_seed``)."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """The global generator (use it, don't keep it: ``manual_seed`` replaces it)."""
    return _generator


def next_seed() -> int:
    """A fresh 63-bit seed for kernels that generate their own random streams."""
    return int(_generator.integers(0, 2**63 - 1))


def get_rng_state() -> dict:
    """The generator's full state (JSON-serialisable), for checkpoints."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a state returned by ``get_rng_state`` (resume bit-for-bit)."""
    _generator.bit_generator.state = state
