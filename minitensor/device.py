"""``device``: where a tensor lives. minitensor computes on the CPU only.

The class exists so that PyTorch code runs unchanged: ``x.device`` prints as
``device(type='cpu')`` and compares equal to ``"cpu"``; ``device=`` keywords and
``.to("cpu")`` accept "cpu" (or a ``device``, or None) and refuse anything else with
one clear sentence instead of silently computing somewhere the user did not ask for.
"""
from __future__ import annotations


class device:
    """A device name, as ``torch.device``: ``device("cpu")``, ``device("cpu", 0)``."""

    __slots__ = ("type", "index")

    def __init__(self, type: str = "cpu", index: int | None = None):
        if isinstance(type, device):
            type, index = type.type, type.index
        name = str(type)
        if ":" in name:
            name, _, number = name.partition(":")
            index = int(number) if number.isdigit() else index
        self.type, self.index = name, index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and (self.index == other.index or
                                            None in (self.index, other.index))

    def __hash__(self) -> int:
        return hash(self.type)

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"


CPU = device("cpu")

# Strings that name a device rather than a dtype, in ``x.to("cuda")``-style calls.
_DEVICE_TYPES = {"cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "vulkan", "ipu", "hpu", "mtia"}


def names_device(arg) -> bool:
    """True for a ``device`` (ours or torch's) or a device string ("cpu", "cuda:0")."""
    if isinstance(arg, device) or type(arg).__name__ == "device":
        return True
    return isinstance(arg, str) and arg.partition(":")[0] in _DEVICE_TYPES


def check_device(op: str, where) -> None:
    """Accept None, "cpu" or a cpu ``device``; raise a clear error for anything else
    ("cuda", "cuda:0", "mps", ...)."""
    if where is None:
        return
    if not isinstance(where, (str, device)) and type(where).__name__ != "device":
        raise TypeError(f"{op}: device must be a string such as 'cpu' or a device, "
                        f"got {type(where).__name__}")
    if device(str(where)).type != "cpu":
        raise RuntimeError(f"{op}: device {str(where)!r} is not available: minitensor runs on "
                           "the CPU only (use device='cpu', or leave device unset)")
