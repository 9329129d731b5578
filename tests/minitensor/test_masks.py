"""minitensor.masks: the one place masks become additive, under either bool convention,
and the one causal mask (with the KV-cache offset)."""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
from minitensor import masks
from minitensor.errors import DTypeError


def test_bool_conventions_are_opposites():
    m = np.array([[True, False], [False, True]])
    attend = masks.additive_mask(m, np.float32, true_means="attend")
    blocked = masks.additive_mask(m, np.float32, true_means="blocked")
    np.testing.assert_array_equal(attend, [[0, -np.inf], [-np.inf, 0]])
    np.testing.assert_array_equal(blocked, [[-np.inf, 0], [0, -np.inf]])
    assert attend.dtype == blocked.dtype == np.float32


def test_float_masks_are_cast_tensors_read_and_none_passes():
    m = np.array([[0.5, -np.inf]])
    out = masks.additive_mask(mt.tensor(m), np.float32, true_means="attend")
    assert out.dtype == np.float32 and out[0, 0] == np.float32(0.5) and out[0, 1] == -np.inf
    assert masks.additive_mask(None, np.float64, true_means="blocked") is None


def test_bad_dtype_and_bad_convention_are_named():
    with pytest.raises(DTypeError, match="my_op: mask must be bool or float.*int64.*shape \\(2,\\)"):
        masks.additive_mask(np.array([1, 2]), np.float64, true_means="attend", name="my_op")
    with pytest.raises(ValueError, match="true_means"):
        masks.additive_mask(np.array([True]), np.float64, true_means="allowed")


def test_causal_mask_and_its_cache_offset():
    np.testing.assert_array_equal(masks.causal_mask(3), np.triu(np.ones((3, 3), bool), k=1))
    # 2 new queries after 3 cached keys: query i (position 3 + i) sees keys j <= 3 + i
    np.testing.assert_array_equal(masks.causal_mask(2, 5, past=3),
                                  [[False, False, False, False, True],
                                   [False, False, False, False, False]])
    # top-left aligned when L < S and no past (torch's SDPA)
    np.testing.assert_array_equal(masks.causal_mask(2, 4),
                                  [[False, True, True, True], [False, False, True, True]])
    add = masks.causal_additive_mask(3, dtype=np.float32)
    np.testing.assert_array_equal(add, np.triu(np.full((3, 3), -np.inf, np.float32), k=1))
    assert add.dtype == np.float32
