"""minitensor.utils.data: Dataset, TensorDataset, DataLoader and default_collate.

Batching and shuffling are checked on their own (order, sizes, drop_last, len,
reproducible seeded shuffles); default_collate is compared with torch's on nested
samples (structure, values and dtypes), skipped without torch.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import minitensor as mt
from minitensor.utils.data import (ConcatDataset, DataLoader, Dataset, TensorDataset,
                                   default_collate)


def _data(n=10):
    return mt.tensor(np.arange(n * 3, dtype=np.float64).reshape(n, 3)), mt.tensor(np.arange(n))


def test_tensor_dataset_rows_and_len():
    x, y = _data()
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[4]
    np.testing.assert_array_equal(xi.data, [12, 13, 14])
    assert yi.item() == 4
    with pytest.raises(ValueError, match=r"size mismatch.*\(10, 3\), \(9,\)"):
        TensorDataset(x, mt.tensor(np.arange(9)))


@pytest.mark.parametrize("batch_size, drop_last, sizes", [
    (4, False, [4, 4, 2]), (4, True, [4, 4]), (5, False, [5, 5]), (1, False, [1] * 10),
    (20, False, [10]), (20, True, []),
])
def test_batches_in_order(batch_size, drop_last, sizes):
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) == len(batches)
    assert [b[1].shape[0] for b in batches] == sizes
    if batches:
        seen = np.concatenate([b[1].data for b in batches])
        np.testing.assert_array_equal(seen, np.arange(sum(sizes)))
        xb, yb = batches[0]
        assert isinstance(batches[0], list) and isinstance(xb, mt.Tensor)
        assert xb.dtype == np.float64 and yb.dtype == np.int64
        np.testing.assert_array_equal(xb.data, x.data[:sizes[0]])


def test_shuffle_is_seeded_reproducible_and_new_each_pass():
    x, y = _data(50)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)

    def one_pass():
        return np.concatenate([yb.data for _, yb in loader])

    mt.manual_seed(3)
    first, second = one_pass(), one_pass()
    mt.manual_seed(3)
    np.testing.assert_array_equal(one_pass(), first)
    np.testing.assert_array_equal(np.sort(first), np.arange(50))  # every sample once
    assert not np.array_equal(first, second) and not np.array_equal(first, np.arange(50))


def test_pairs_stay_together_when_shuffled():
    x, y = _data(30)
    mt.manual_seed(0)
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=7, shuffle=True):
        np.testing.assert_array_equal(xb.data[:, 0], yb.data * 3)


def test_own_generator():
    x, y = _data(20)
    orders = []
    for _ in range(2):
        loader = DataLoader(TensorDataset(x, y), batch_size=20, shuffle=True,
                            generator=np.random.default_rng(7))
        orders.append(next(iter(loader))[1].data)
    np.testing.assert_array_equal(orders[0], orders[1])


class _Squares(Dataset):
    """A map-style dataset written as a PyTorch user would."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return {"x": np.full(2, float(i)), "y": i * i, "name": f"s{i}"}


def test_custom_dataset_with_dict_samples():
    loader = DataLoader(_Squares(), batch_size=3)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    first = batches[0]
    assert set(first) == {"x", "y", "name"}
    np.testing.assert_array_equal(first["x"].data, [[0, 0], [1, 1], [2, 2]])
    assert first["y"].dtype == np.int64 and first["y"].data.tolist() == [0, 1, 4]
    assert first["name"] == ["s0", "s1", "s2"]
    assert batches[-1]["y"].data.tolist() == [36]


def test_fast_tensor_path_equals_per_sample_collation():
    class Plain(TensorDataset):  # a subclass takes the per-sample path
        pass

    x, y = _data(13)
    for shuffle in (False, True):
        mt.manual_seed(1)
        fast = list(DataLoader(TensorDataset(x, y), batch_size=4, shuffle=shuffle))
        mt.manual_seed(1)
        slow = list(DataLoader(Plain(x, y), batch_size=4, shuffle=shuffle))
        for (a, b), (c, d) in zip(fast, slow):
            np.testing.assert_array_equal(a.data, c.data)
            np.testing.assert_array_equal(b.data, d.data)
            assert a.dtype == c.dtype and b.dtype == d.dtype


def test_batch_size_none_yields_samples_and_custom_collate_fn():
    x, y = _data(4)
    samples = list(DataLoader(TensorDataset(x, y), batch_size=None))
    assert len(samples) == 4 and samples[2][1].item() == 2
    sums = list(DataLoader(TensorDataset(x, y), batch_size=2,
                           collate_fn=lambda batch: sum(int(b[1].item()) for b in batch)))
    assert sums == [1, 5]


def test_sampler_and_concat_dataset():
    x, y = _data(6)
    loader = DataLoader(TensorDataset(x, y), batch_size=2, sampler=[5, 0, 3])
    assert len(loader) == 2
    assert [b[1].data.tolist() for b in loader] == [[5, 0], [3]]
    both = TensorDataset(x, y) + TensorDataset(x[:2], y[:2])
    assert isinstance(both, ConcatDataset) and len(both) == 8
    assert both[7][1].item() == 1 and both[-1][1].item() == 1 and both[5][1].item() == 5
    with pytest.raises(IndexError, match="out of range"):
        both[8]


@pytest.mark.parametrize("call, error, match", [
    (lambda ds: DataLoader(ds, num_workers=2), NotImplementedError, "num_workers=2"),
    (lambda ds: DataLoader(ds, batch_size=0), ValueError, "batch_size=0"),
    (lambda ds: DataLoader(ds, sampler=[0], shuffle=True), ValueError, "mutually exclusive"),
    (lambda ds: DataLoader(ds, generator=3), TypeError, "numpy.random.Generator"),
    (lambda ds: DataLoader(object()), TypeError, "__getitem__ and __len__"),
    (lambda ds: default_collate([[1, 2], [3]]), RuntimeError, "equal size"),
    (lambda ds: default_collate([object()]), TypeError, "default_collate: batch must contain"),
    (lambda ds: default_collate([np.array(["a"], dtype=object)]), TypeError, "object"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(TensorDataset(*_data()))


Point = namedtuple("Point", "x y")


def _collate_cases():
    return {
        "floats": [1.5, 2.0, -3.0],
        "ints": [1, 2, 3],
        "bools": [True, False],
        "numpy scalars": [np.float32(1.0), np.float32(2.5)],
        "numpy arrays": [np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)],
        "int arrays": [np.arange(3), np.arange(3) * 2],
        "tuples": [(np.ones(2), 1), (np.zeros(2), 0)],
        "lists": [[1.0, 2], [3.0, 4]],
        "dicts": [{"a": 1, "b": np.ones(2)}, {"a": 2, "b": np.zeros(2)}],
        "nested": [{"pair": (1.0, [2, 3]), "s": "x"}, {"pair": (4.0, [5, 6]), "s": "y"}],
        "namedtuple": [Point(1.0, 2), Point(3.0, 4)],
        "strings": ["a", "bc"],
    }


def _compare(ours, theirs, torch):
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, mt.Tensor)
        np.testing.assert_array_equal(ours.data, theirs.numpy())
        assert ours.data.dtype == theirs.numpy().dtype
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs)
        for k in theirs:
            _compare(ours[k], theirs[k], torch)
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _compare(a, b, torch)
    else:
        assert ours == theirs


@pytest.mark.parametrize("name", list(_collate_cases()))
def test_default_collate_matches_torch(name):
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate
    batch = _collate_cases()[name]
    _compare(default_collate(batch), torch_collate(batch), torch)


def test_collating_tensors_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate
    arrays = [np.random.default_rng(i).standard_normal((2, 3)) for i in range(4)]
    ours = default_collate([(mt.tensor(a), mt.tensor(np.int64(i))) for i, a in enumerate(arrays)])
    theirs = torch_collate([(torch.tensor(a), torch.tensor(i)) for i, a in enumerate(arrays)])
    _compare(ours, theirs, torch)
