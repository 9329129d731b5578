"""Error types raised at the API edge, before any kernel runs.

Each also derives from ``RuntimeError``, the type PyTorch raises for the same
mistakes, so ``except RuntimeError`` code written for torch keeps working, while
``except ValueError`` / ``TypeError`` / ``IndexError`` read naturally in Python.
"""


class ShapeError(ValueError, RuntimeError):
    """Shapes that do not fit the op (broadcasting, matmul, reshape, masks...)."""


class DTypeError(TypeError, RuntimeError):
    """A dtype the op cannot take (e.g. float indices, integer tensor requiring grad)."""


class IndexOutOfRange(IndexError, RuntimeError):
    """An index or class target outside the valid range."""
