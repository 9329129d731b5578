"""Checkpoints as safetensors files: ``save``, ``load``, ``load_metadata``. No pickle, ever.

Also the project's one atomic writer (``atomic_write``) and one codec for nested state
(``split_arrays``/``join_arrays``: an optimizer's state dict becomes arrays for a
safetensors file plus a JSON document, and back).

A write is atomic: the bytes go to a temporary file in the destination folder, are
fsync'ed, and only then renamed over the destination (``os.replace``), so a crash or an
error mid-save leaves the previous checkpoint intact and no temporary file behind.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from .tensor import Tensor


class CheckpointError(ValueError):
    """A file is not a readable safetensors checkpoint (corrupt, truncated, not one)."""


def _to_arrays(state_dict: dict) -> dict[str, np.ndarray]:
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {name!r} ({type(name).__name__})")
        if isinstance(value, Tensor):
            value = value.data
        if not isinstance(value, np.ndarray):
            raise TypeError(f"save: value of {name!r} is a {type(value).__name__}; expected a "
                            "Tensor or an ndarray")
        if value.dtype.kind not in "biuf":
            raise TypeError(f"save: value of {name!r} has unsupported dtype {value.dtype}")
        # safetensors reads nbytes from the data pointer: a strided view would be
        # written as garbage, so copy those. (Not np.ascontiguousarray: it turns 0-d into 1-d.)
        arrays[name] = value if value.flags.c_contiguous else value.copy(order="C")
    return arrays


def _check_metadata(metadata: dict | None) -> dict | None:
    if metadata is None:
        return None
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise TypeError(f"save: metadata must map str to str (e.g. json.dumps(config)); bad "
                        f"entries: {bad}")
    return dict(metadata)


def save(state_dict, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``{name: Tensor | ndarray}`` (or a Module's ``state_dict()``) to ``path`` as
    safetensors, atomically.

    Args:
        state_dict: arrays or tensors (e.g. ``model.state_dict()``), copied as they are
            (dtype and shape kept); or a Module, whose ``state_dict()`` is saved (the
            weights only: load them back with ``model.load_state_dict(mt.load(path))``).
        path: destination file; its folder must exist.
        metadata: optional ``{str: str}`` stored in the header (read by ``load_metadata``).
    """
    if not isinstance(state_dict, dict) and callable(getattr(state_dict, "state_dict", None)):
        state_dict = state_dict.state_dict()  # a Module (io sits below nn: no import of it)
    if not isinstance(state_dict, dict):
        raise TypeError(f"save: expected a state dict ({{name: Tensor | ndarray}}) or a Module, "
                        f"got {type(state_dict).__name__}")
    atomic_write(path, safetensors.numpy.save(_to_arrays(state_dict),
                                              metadata=_check_metadata(metadata)))


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (bytes, or str as UTF-8) to ``path`` so that no reader ever sees half.

    The bytes go to a temporary file in the destination folder, are fsync'ed, and only
    then renamed over the destination (``os.replace``); then the folder is fsync'ed so
    the rename itself survives a crash. On any error the temporary file is removed and
    the previous content of ``path`` is untouched. The one atomic writer of the project:
    checkpoints, JSON, plots and bench results all go through it.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the old file's mode, or 0644.
        os.chmod(tmp, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (best effort: not every OS allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a safetensors file into ``{name: ndarray}`` (writable arrays, saved dtypes).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is corrupt, truncated or not safetensors.
    """
    path = os.fspath(path)
    _read_header(path)  # clear errors for the common failures before safetensors runs
    try:
        return safetensors.numpy.load_file(path)
    except (safetensors.SafetensorError, ValueError) as e:
        raise CheckpointError(f"{path}: not a valid safetensors file ({_one_line(e)})") from None
    except BaseException as e:  # a Rust panic surfaces as a BaseException subclass
        if type(e).__name__ != "PanicException":
            raise
        raise CheckpointError(f"{path}: not a valid safetensors file ({_one_line(e)})") from None


def load_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata`` dict stored by ``save`` (empty if none), without reading the arrays."""
    return dict(_read_header(os.fspath(path)).get("__metadata__") or {})


def _read_header(path: str) -> dict:
    """Parse and sanity-check the header: 8-byte length, JSON, offsets inside the file."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a valid safetensors file (only {size} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise CheckpointError(f"{path}: not a valid safetensors file or truncated (header "
                                  f"length {n} exceeds the file size {size})")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt safetensors header ({_one_line(e)})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    end = max((_end_offset(path, k, v) for k, v in header.items() if k != "__metadata__"),
              default=0)
    if 8 + n + end > size:
        raise CheckpointError(f"{path}: truncated safetensors file ({size} bytes; the header "
                              f"describes {8 + n + end})")
    return header


def _end_offset(path: str, name: str, info) -> int:
    try:
        return int(info["data_offsets"][1])
    except (TypeError, KeyError, IndexError, ValueError):
        raise CheckpointError(f"{path}: corrupt safetensors header (bad entry for {name!r})") from None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# ----------------------------------------------------------------- nested state <-> (JSON, arrays)


def split_arrays(obj: Any, prefix: str = "") -> tuple[Any, dict[str, np.ndarray]]:
    """Separate the arrays of a nested dict/list structure from the rest.

    Every ndarray (or Tensor) is replaced by ``{"__array__": key}`` and returned in
    the dict of arrays under that key; NumPy scalars become Python numbers; int dict
    keys are kept as ``{"__int_keys__": ...}`` so they come back as ints.

    Args:
        obj: e.g. an optimizer state_dict.
        prefix: key prefix for the arrays.

    Returns:
        (a JSON-serialisable structure, {key: array}).
    """
    arrays: dict[str, np.ndarray] = {}

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, Tensor):
            x = x.data
        if isinstance(x, np.ndarray):
            arrays[path] = np.ascontiguousarray(x)
            return {"__array__": path}
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, dict):
            int_keys = bool(x) and all(isinstance(k, (int, np.integer)) for k in x)
            body = {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in x.items()}
            return {"__int_keys__": body} if int_keys else body
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(x)]
        if isinstance(x, (str, int, float, bool)) or x is None:
            return x
        raise TypeError(f"split_arrays: cannot store a value of type {type(x).__name__} at {path!r}")

    return walk(obj, prefix), arrays


def join_arrays(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of `split_arrays`."""
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            key = obj["__array__"]
            if key not in arrays:
                raise CheckpointError(f"join_arrays: array {key!r} is missing")
            return arrays[key]
        if set(obj) == {"__int_keys__"}:
            return {int(k): join_arrays(v, arrays) for k, v in obj["__int_keys__"].items()}
        return {k: join_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_arrays(v, arrays) for v in obj]
    return obj
