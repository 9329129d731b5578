"""``mt.cuda``: the answers device-picking code expects, on a CPU-only library.

PyTorch scripts often start with ``device = "cuda" if torch.cuda.is_available() else
"cpu"``. minitensor computes on the CPU only; these two functions let such code run
unchanged and pick the CPU.
"""


def is_available() -> bool:
    """False: minitensor has no GPU backend."""
    return False


def device_count() -> int:
    """0: no GPU is visible to minitensor."""
    return 0
