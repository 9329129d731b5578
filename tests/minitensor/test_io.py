"""io: safetensors save/load round trips, interop, atomic writes, clear errors, metadata."""
from __future__ import annotations

import os

import numpy as np
import pytest
import safetensors.numpy

import minitensor as mt
from minitensor import nn
from minitensor.io import CheckpointError, load_metadata


def _arrays():
    rng = np.random.default_rng(0)
    return {
        "w32": rng.standard_normal((3, 4)).astype(np.float32),
        "w64": rng.standard_normal((2, 3, 2)),
        "ids": rng.integers(-2**62, 2**62, size=(5,), dtype=np.int64),
        "mask": rng.random(4) > 0.5,
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 3), np.float32),
        "special": np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45], np.float32),
    }


def _assert_bit_exact(a: dict, b: dict):
    assert list(a) == list(b) or set(a) == set(b)
    for k in a:
        assert b[k].dtype == a[k].dtype and b[k].shape == a[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k


def test_round_trip_is_bit_exact(tmp_path):
    path = tmp_path / "a.safetensors"
    arrays = _arrays()
    mt.save(arrays, path)
    loaded = mt.load(path)
    _assert_bit_exact(arrays, loaded)
    assert all(v.flags.writeable for v in loaded.values())


def test_tensors_and_non_contiguous_arrays(tmp_path):
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    view = base[:, ::2].T                    # strided and transposed
    assert not view.flags.c_contiguous
    t = mt.tensor(base, requires_grad=True)
    mt.save({"view": view, "tensor": t}, tmp_path / "b.safetensors")
    loaded = mt.load(tmp_path / "b.safetensors")
    np.testing.assert_array_equal(loaded["view"], view)
    np.testing.assert_array_equal(loaded["tensor"], base)


def test_interop_with_safetensors_numpy(tmp_path):
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    arrays = _arrays()
    mt.save(arrays, ours, metadata={"format": "np"})
    _assert_bit_exact(arrays, safetensors.numpy.load_file(str(ours)))
    safetensors.numpy.save_file(arrays, str(theirs), metadata={"k": "v"})
    _assert_bit_exact(arrays, mt.load(theirs))
    assert load_metadata(theirs) == {"k": "v"}


def test_model_state_dict_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Embedding(5, 4))
    mt.save(model.state_dict(), tmp_path / "m.safetensors")
    other = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Embedding(5, 4))
    other.load_state_dict(mt.load(tmp_path / "m.safetensors"))
    _assert_bit_exact(model.state_dict(), other.state_dict())


def test_metadata_round_trip_and_validation(tmp_path):
    path = tmp_path / "c.safetensors"
    meta = {"config": '{"d_model": 64, "nhead": 4}', "step": "1200"}
    mt.save({"x": np.ones(2)}, path, metadata=meta)
    assert load_metadata(path) == meta
    mt.save({"x": np.ones(2)}, path)
    assert load_metadata(path) == {}
    with pytest.raises(TypeError, match="metadata must map str to str"):
        mt.save({"x": np.ones(2)}, path, metadata={"step": 3})


def test_bad_inputs_are_rejected(tmp_path):
    with pytest.raises(TypeError, match="keys must be strings"):
        mt.save({1: np.ones(2)}, tmp_path / "d.safetensors")
    with pytest.raises(TypeError, match="'x' is a list"):
        mt.save({"x": [1.0, 2.0]}, tmp_path / "d.safetensors")
    with pytest.raises(TypeError, match="unsupported dtype"):
        mt.save({"x": np.array(["a"], dtype=object)}, tmp_path / "d.safetensors")
    assert os.listdir(tmp_path) == []


def _fail(*args, **kwargs):
    raise OSError("disk full (simulated)")


@pytest.mark.parametrize("step", ["os.replace", "os.fsync"])
def test_interrupted_save_keeps_the_old_file_and_no_temp_files(tmp_path, monkeypatch, step):
    path = tmp_path / "ckpt.safetensors"
    old = {"w": np.arange(6.0)}
    mt.save(old, path)
    monkeypatch.setattr(step, _fail)
    with pytest.raises(OSError, match="disk full"):
        mt.save({"w": np.zeros(100)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]
    _assert_bit_exact(old, mt.load(path))


def test_save_replaces_atomically_and_keeps_mode(tmp_path):
    path = tmp_path / "e.safetensors"
    mt.save({"a": np.ones(1)}, path)
    assert os.stat(path).st_mode & 0o777 == 0o644
    os.chmod(path, 0o600)
    mt.save({"b": np.zeros(2)}, path)
    assert list(mt.load(path)) == ["b"] and os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["e.safetensors"]


@pytest.mark.parametrize("damage", ["truncated_data", "truncated_header", "tiny", "empty",
                                    "garbage", "bad_json", "huge_header_length"])
def test_corrupt_or_truncated_file_raises_a_clear_error(tmp_path, damage):
    path = tmp_path / "bad.safetensors"
    mt.save({"w": np.arange(100.0), "b": np.ones(3, np.float32)}, path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    corrupt = {
        "truncated_data": raw[:-10],
        "truncated_header": raw[:8 + n // 2],
        "tiny": raw[:5],
        "empty": b"",
        "garbage": b"this is not a checkpoint at all, just text" * 3,
        "bad_json": raw[:8] + b"{" + b"x" * (n - 1) + raw[8 + n:],
        "huge_header_length": (2**40).to_bytes(8, "little") + raw[8:],
    }[damage]
    path.write_bytes(corrupt)
    for reader in (mt.load, load_metadata):
        with pytest.raises(CheckpointError) as info:
            reader(path)
        message = str(info.value)
        assert isinstance(info.value, ValueError)
        assert str(path) in message and "\n" not in message
        assert info.value.__cause__ is None  # no chained (Rust) traceback
        assert info.value.__context__ is None or info.value.__suppress_context__


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        mt.load(tmp_path / "nope.safetensors")
