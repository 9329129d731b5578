"""Datasets and batching, as ``torch.utils.data``: ``Dataset``, ``TensorDataset``,
``DataLoader`` and its ``default_collate``.

    from minitensor.utils.data import DataLoader, TensorDataset
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, drop_last=True)
    for xb, yb in loader:    # xb (32, ...), yb (32, ...): Tensors
        ...

Shuffling draws one permutation per pass from minitensor's seeded generator
(``mt.manual_seed``) or from the ``generator`` given (a ``numpy.random.Generator``), so
a run is reproducible; the permutations are not torch's (the generators differ).
Loading runs in the calling process (``num_workers=0``): the data here are small arrays.
"""
from __future__ import annotations

import collections.abc
import math
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .. import random as _random
from ..functional import stack
from ..tensor import Tensor


class Dataset:
    """A map-style dataset: ``dataset[i]`` is sample i, ``len(dataset)`` their number.

    Subclasses implement ``__getitem__`` and ``__len__``.
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are rows of tensors that share their first axis: ``(x[i], y[i], ...)``.

    Args:
        tensors: Tensors (or arrays) with the same size along axis 0.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        sizes = [t.shape[0] if getattr(t, "ndim", 0) else None for t in tensors]
        if None in sizes or len(set(sizes)) != 1:
            shapes = ", ".join(str(tuple(getattr(t, "shape", ()))) for t in tensors)
            raise ValueError(f"TensorDataset: size mismatch between tensors: every tensor needs "
                             f"the same first axis, got shapes {shapes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class ConcatDataset(Dataset):
    """Several datasets one after the other (what ``dataset_a + dataset_b`` builds)."""

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        if index < 0:
            if -index > len(self):
                raise IndexError(f"ConcatDataset: index {index} is out of range for length "
                                 f"{len(self)}")
            index += len(self)
        which = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        if which == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {index} is out of range for length {len(self)}")
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


# ----------------------------------------------------------------------------- collation

_COLLATE_HELP = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts "
                 "or lists; found {}")


def default_collate(batch: Sequence):
    """Merge a list of samples into a batch, as torch's ``default_collate``.

    Tensors and NumPy arrays are stacked on a new first axis; Python floats become a
    float64 Tensor, ints an int64 Tensor, bools a bool Tensor; strings stay a list;
    dicts, tuples and lists are collated field by field (a tuple gives a list, as torch).
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if isinstance(elem, np.ndarray) or (isinstance(elem, np.generic) and not
                                        isinstance(elem, (np.str_, np.bytes_))):
        arrays = [np.asarray(b) for b in batch]
        if arrays[0].dtype.kind in "OSUV":
            raise TypeError(_COLLATE_HELP.format(arrays[0].dtype))
        return Tensor._make(np.stack(arrays), None)
    if isinstance(elem, bool):
        return Tensor._make(np.array(batch, dtype=np.bool_), None)
    if isinstance(elem, int):
        return Tensor._make(np.array(batch, dtype=np.int64), None)
    if isinstance(elem, float):
        return Tensor._make(np.array(batch, dtype=np.float64), None)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple keeps its type
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(b) != len(elem) for b in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of "
                               f"equal size, got sizes {[len(b) for b in batch]}")
        fields = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return fields  # a list, as torch (kept for backward compatibility there)
        try:
            return type(elem)(fields)
        except TypeError:  # a sequence type that can't be built from a list
            return fields
    raise TypeError(_COLLATE_HELP.format(type(elem).__name__))


# ----------------------------------------------------------------------------- loading

class DataLoader:
    """Iterate over a dataset in batches, optionally shuffled (torch's signature).

    Args:
        dataset: a map-style dataset (``__getitem__`` and ``__len__``).
        batch_size: samples per batch; None yields single samples, uncollated.
        shuffle: draw a new random order on every pass over the data.
        sampler: an iterable of indices to use instead (excludes ``shuffle``).
        num_workers: only 0 (load in this process).
        collate_fn: merges a list of samples into a batch (``default_collate``).
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        generator: a ``numpy.random.Generator`` for shuffling (default: minitensor's
            global seeded generator).
    ``pin_memory``, ``timeout``, ``worker_init_fn``, ``persistent_workers`` and
    ``prefetch_factor`` are accepted for torch's signature and have no effect here.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Iterable[int] | None = None, batch_sampler=None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None,
                 generator: np.random.Generator | None = None, *, prefetch_factor=None,
                 persistent_workers: bool = False):
        if num_workers != 0:
            raise NotImplementedError(f"DataLoader: num_workers={num_workers} is not supported "
                                      "(loading runs in this process; use num_workers=0)")
        if batch_sampler is not None:
            raise NotImplementedError("DataLoader: batch_sampler is not supported; use "
                                      "batch_size, shuffle/sampler and drop_last")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size should be a positive integer value or None, "
                             f"but got batch_size={batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"DataLoader: dataset must have __getitem__ and __len__, got "
                            f"{type(dataset).__name__}")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"DataLoader: generator must be a numpy.random.Generator, got "
                            f"{type(generator).__name__}")
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.shuffle, self.sampler, self.generator = bool(shuffle), sampler, generator
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        self.num_workers = num_workers

    def _indices(self) -> np.ndarray:
        if self.sampler is not None:
            return np.fromiter((int(i) for i in self.sampler), dtype=np.int64)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        rng = self.generator if self.generator is not None else _random.generator()
        return rng.permutation(n)

    def _batches(self) -> Iterator[np.ndarray]:
        order = self._indices()
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __iter__(self) -> Iterator:
        if self.batch_size is None:
            for i in self._indices():
                yield self.dataset[int(i)]
            return
        # Fast path, same result: rows of a TensorDataset gathered with one index array
        # instead of one sample at a time and then stacked.
        fast = (type(self.dataset) is TensorDataset and self.collate_fn is default_collate
                and all(isinstance(t, Tensor) for t in self.dataset.tensors))
        for batch in self._batches():
            if fast:
                yield [t[batch] for t in self.dataset.tensors]
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in batch])

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None and hasattr(self.sampler, "__len__") \
            else len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


__all__ = ["Dataset", "TensorDataset", "ConcatDataset", "DataLoader", "default_collate"]
