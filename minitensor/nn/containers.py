"""The containers: ``Sequential``, ``ModuleList``, ``ModuleDict``, ``ParameterList`` and
``ParameterDict``.

Each is a ``Module`` whose children (or parameters) are registered under the names PyTorch
gives them ("0", "1", ... for the sequences, the keys for the dicts), so ``layers.0.weight``
in a state dict means the same here as in torch.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from ..tensor import Tensor
from .module import Module, Parameter, _indent


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 1))``.

    Children are named "0", "1", ... (or by the keys of an ordered dict passed alone).
    Indexing with an int returns a module, with a slice a new Sequential.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return type(self)(dict(items[index]))
        return items[_check_index(type(self).__name__, index, len(items))][1]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class ModuleList(Module):
    """A list of modules whose parameters are registered (names "0", "1", ...).

    Args:
        modules: optional iterable of modules.
    """

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, module)
        self._renumber(items)

    def _renumber(self, items: list) -> None:
        self._modules.clear()
        for i, m in enumerate(items):
            self._modules[str(i)] = m

    def __getitem__(self, index):
        items = list(self._modules.values())
        if isinstance(index, slice):
            return type(self)(items[index])
        return items[_check_index(type(self).__name__, index, len(items))]

    def __setitem__(self, index: int, module: Module) -> None:
        i = _check_index(type(self).__name__, index, len(self))
        self.add_module(str(i), module)

    def __delitem__(self, index) -> None:
        items = list(self._modules.values())
        del items[index]
        self._renumber(items)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __repr__(self) -> str:
        # As torch: runs of identical children print once, "(0-5): 6 x EncoderLayer(...)".
        runs: list[list] = []  # [first index, last index, repr]
        for i, m in enumerate(self):
            r = repr(m)
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        if not runs:
            return f"{type(self).__name__}()"
        lines = [(f"({a}): {r}" if a == b else f"({a}-{b}): {b - a + 1} x {r}") for a, b, r in runs]
        return f"{type(self).__name__}(\n  " + "\n  ".join(_indent(x) for x in lines) + "\n)"


class ModuleDict(Module):
    """A dict of modules whose parameters are registered under their keys (insertion order).

    Args:
        modules: optional dict or iterable of (name, module) pairs.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def update(self, modules) -> None:
        items = modules.items() if isinstance(modules, dict) else modules
        for name, m in items:
            self[name] = m

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()


def _as_parameter(container: str, value):
    """torch's rule: a Tensor that is not a Parameter is wrapped in one (sharing memory)."""
    if isinstance(value, Parameter) or value is None:
        return value
    if isinstance(value, Tensor):
        return Parameter(value)
    raise TypeError(f"{container}: expected a Parameter or Tensor, got {type(value).__name__}")


class ParameterList(Module):
    """A list of parameters registered under "0", "1", ... (as torch's).

    Tensors are wrapped in ``Parameter`` when added. Args: values, an optional iterable.
    """

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def append(self, value) -> ParameterList:
        self.register_parameter(str(len(self)), _as_parameter("ParameterList", value))
        return self

    def extend(self, values) -> ParameterList:
        if isinstance(values, Tensor):
            raise TypeError("ParameterList.extend should be called with an iterable, but got "
                            "a Tensor")
        for v in values:
            self.append(v)
        return self

    def __getitem__(self, index):
        items = list(self._parameters.values())
        if isinstance(index, slice):
            return type(self)(items[index])
        return items[_check_index(type(self).__name__, index, len(items))]

    def __setitem__(self, index: int, value) -> None:
        i = _check_index(type(self).__name__, index, len(self))
        self.register_parameter(str(i), _as_parameter("ParameterList", value))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __iadd__(self, values) -> ParameterList:
        return self.extend(values)

    def extra_repr(self) -> str:
        return "\n".join(f"({k}): Parameter containing: [{p.dtype} of size {p.shape}]"
                         for k, p in self._parameters.items())


class ParameterDict(Module):
    """A dict of parameters registered under their keys, in insertion order (as torch's).

    Tensors are wrapped in ``Parameter`` when added. Args: parameters, an optional dict or
    iterable of (key, value) pairs.
    """

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def update(self, parameters) -> None:
        items = parameters.items() if hasattr(parameters, "items") else parameters
        for key, value in items:
            self[key] = value

    def __getitem__(self, key: str):
        return self._parameters[key]

    def __setitem__(self, key: str, value) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ParameterDict: keys must be strings, got {type(key).__name__}")
        self.register_parameter(key, _as_parameter("ParameterDict", value))

    def __delitem__(self, key: str) -> None:
        del self._parameters[key]

    def __contains__(self, key: str) -> bool:
        return key in self._parameters

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def keys(self):
        return self._parameters.keys()

    def values(self):
        return self._parameters.values()

    def items(self):
        return self._parameters.items()

    def get(self, key: str, default=None):
        return self._parameters.get(key, default)

    def pop(self, key: str):
        return self._parameters.pop(key)

    def extra_repr(self) -> str:
        return "\n".join(f"({k}): Parameter containing: [{p.dtype} of size {p.shape}]"
                         for k, p in self._parameters.items())


def _check_index(container: str, index: int, n: int) -> int:
    if not isinstance(index, (int, np.integer)):
        raise TypeError(f"{container} indices must be integers or slices, not {type(index).__name__}")
    if not -n <= index < n:
        raise IndexError(f"{container}: index {index} is out of range (length {n})")
    return int(index) % n
