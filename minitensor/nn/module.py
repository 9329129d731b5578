"""``Module`` and ``Parameter`` (the containers are in ``containers.py``).

A Module registers what is assigned to it: ``self.w = Parameter(...)`` lands in the
ordered dict ``_parameters``, ``self.fc = Linear(...)`` in ``_modules`` (``__setattr__``,
as in minitorch's ``module.py``). Walking those dicts in order gives the dotted names
PyTorch uses (``layers.0.linear1.weight``), so state dicts move between the two as is.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Callable, Iterator

import numpy as np

from ..device import check_device, names_device
from ..dtypes import as_dtype
from ..tensor import Tensor, to_array

# Who watches module calls (``viz.capture`` records which module made each op): empty
# almost always, so a call costs one check. An observer has module_enter(m)/module_exit(m).
_call_observers: tuple = ()

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A leaf tensor that a Module registers as trainable (``requires_grad=True`` by default).

    Like ``torch.nn.Parameter``, it shares memory with the array or Tensor it wraps;
    Python lists are converted as by ``mt.tensor`` (Python ints give int64).

    Args:
        data: ndarray, Tensor or nested list.
        requires_grad: whether optimizers should train it.
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            array = np.empty((0,), np.float32)
        elif isinstance(data, Tensor):
            array = data.data
        elif isinstance(data, np.ndarray):
            array = data
        else:
            array = to_array(data)
        self._init(array, None)
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer: registers parameters, buffers and submodules in order.

    Subclasses call ``super().__init__()`` first, assign parameters and submodules as
    attributes, and implement ``forward``; ``module(x)`` calls ``forward(x)``.
    """

    def __init__(self) -> None:
        # object.__setattr__: our __setattr__ needs these dicts to exist already.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", {})

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward() method")

    def __call__(self, *args, **kwargs):
        observers = _call_observers
        if not observers:
            return self.forward(*args, **kwargs)
        for o in observers:
            o.module_enter(self)
        try:
            return self.forward(*args, **kwargs)
        finally:
            for o in reversed(observers):
                o.module_exit(self)

    # ------------------------------------------------------------------ registration
    def _registries(self) -> tuple[dict, dict, dict]:
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign to {type(self).__name__} before "
                                 "Module.__init__() call (call super().__init__() first)")
        return d["_parameters"], d["_buffers"], d["_modules"]

    def _forget(self, name: str) -> None:
        """Remove ``name`` from every registry and from __dict__ (it is being re-registered)."""
        params, buffers, modules = self._registries()
        for registry in (params, buffers, modules, self.__dict__):
            registry.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, Parameter):
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter '{name}' of "
                                f"{type(self).__name__} (nn.Parameter or None expected)")
            self._parameters[name] = None
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}' "
                                f"of {type(self).__name__} (nn.Module or None expected)")
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            self._buffers[name] = _as_buffer(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: search the registries, else fail loudly.
        # Every ``self.weight`` or ``self.layer`` in a forward lands here, so the three
        # registries are tried one by one, without building a tuple or running a loop.
        d = self.__dict__
        params = d.get("_parameters", ())
        if name in params:
            return params[name]
        buffers = d.get("_buffers", ())
        if name in buffers:
            return buffers[name]
        modules = d.get("_modules", ())
        if name in modules:
            return modules[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                del d[registry][name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or a None placeholder, e.g. a disabled bias) under ``name``."""
        _check_name(self, name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: '{name}' must be an nn.Parameter or None, "
                            f"got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Register a non-trainable tensor (e.g. a positional table).

        Args:
            name: attribute name.
            tensor: Tensor, ndarray (wrapped, not copied) or None.
            persistent: include it in ``state_dict`` (False for tables rebuilt in __init__).
        """
        _check_name(self, name)
        self._forget(name)
        self._buffers[name] = _as_buffer(name, tensor)
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child under ``name`` (names may be "0", "1", ...)."""
        _check_name(self, name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module subclass")
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for self and every descendant, depth first, in order."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                sub = f"{prefix}.{name}" if prefix else name
                yield from child.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry: str, prefix: str, recurse: bool,
                       remove_duplicate: bool) -> Iterator[tuple[str, Tensor]]:
        # A tensor reachable under two names (tied weights) is listed once, under the
        # first name: optimizers must update it once (torch's remove_duplicate=True).
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs, torch's names and order; tied ones once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every distinct Parameter (by identity), in registration order."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalar parameters (tied parameters counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------------ state dict
    def _state_items(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """Every (key, tensor) of the state dict. Tied tensors appear under each name,
        as in torch, so a checkpoint loads into an untied copy of the model too."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                yield prefix + name, b
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_items(f"{prefix}{name}.")

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> dict:
        """``{dotted name: ndarray copy}`` of parameters and persistent buffers.

        Args:
            prefix: prepended to every key.
            keep_vars: return the Parameter/Tensor objects themselves instead of copies.
        """
        return {k: (t if keep_vars else t.data.copy()) for k, t in self._state_items(prefix)}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into this module's parameters and buffers, in place.

        Everything is checked before anything is copied, so a failed load leaves the
        module unchanged. Values are cast to each parameter's dtype.

        Args:
            state_dict: ``{name: ndarray | Tensor}`` (e.g. from torch:
                ``{k: v.detach().numpy() for k, v in model.state_dict().items()}``).
            strict: raise on missing or unexpected keys (shape mismatches always raise).
        Returns:
            ``(missing_keys, unexpected_keys)`` named tuple of lists.
        Raises:
            RuntimeError: one message listing every missing key, unexpected key and shape
                mismatch.
        """
        own = dict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        arrays, mismatched = {}, []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            arrays[key] = np.asarray(value.data if isinstance(value, Tensor) else value)
            if arrays[key].shape != target.shape:
                mismatched.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{arrays[key].shape} from checkpoint, the shape in current "
                                  f"model is {target.shape}.")
        errors = list(mismatched)
        if strict and unexpected:
            errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)) + ".")
        if strict and missing:
            errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(map(repr, missing)) + ".")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        for key, array in arrays.items():
            _copy_into(own[key], array)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ modes and dtype
    def train(self, mode: bool = True) -> Module:
        """Set ``training`` on this module and every descendant (Dropout reads it)."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient (to None, or to zeros in place)."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data = np.zeros_like(p.grad.data)

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every descendant (children first), then on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, *args, dtype=None, device=None) -> Module:
        """Convert floating-point parameters, gradients and buffers, in place, as torch's
        ``Module.to``: ``to(dtype)``, ``to("cpu")``, ``to("cpu", dtype)``, ``to(tensor)``,
        ``to(device=..., dtype=...)``. Devices other than the CPU raise.

        The Parameter objects stay the same, so an optimizer built earlier still holds
        them (its state arrays follow the parameter's dtype at its next step).
        """
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif names_device(arg):
                device = arg
            else:
                dtype = arg
        check_device("Module.to", device)
        if dtype is None:
            return self
        dtype = as_dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Module.to: only floating-point dtypes are supported, got {dtype}")
        for t in (*self.parameters(), *self.buffers()):
            if t.dtype.kind == "f":
                t.data = t.data.astype(dtype, copy=False)
                if t.grad is not None:
                    t.grad.data = t.grad.data.astype(dtype, copy=False)
        return self

    def cpu(self) -> Module:
        """Self: parameters always live on the CPU."""
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """One line of constructor arguments shown in ``repr`` (override in layers)."""
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + _indent(repr(child)) for name, child in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"


def _check_name(module: Module, name: str) -> None:
    module._registries()
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(f"{type(module).__name__}: invalid name {name!r} (a non-empty string "
                       "without '.')")
    if hasattr(type(module), name):
        raise KeyError(f"{type(module).__name__}: attribute '{name}' already exists")


def _as_buffer(name: str, value) -> Tensor | None:
    if value is None or isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor._make(value, None)
    raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' "
                    "(Tensor, ndarray or None expected)")


def _copy_into(target: Tensor, array: np.ndarray) -> None:
    """Write ``array`` into ``target``'s own memory (cast to its dtype) and bump its
    version, so anything holding the array (or a graph that saved it) sees the change."""
    if target.data.flags.writeable:
        np.copyto(target.data, array, casting="unsafe")
    else:  # e.g. a buffer wrapping a read-only array: replace it instead
        target.data = array.astype(target.dtype, copy=True)
    target._version_counter.value += 1


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")
