"""The buffer pool (minitensor.kernels.buffers): a buffer is never handed out while any
array using its memory is alive, it comes back once they are all gone, and a training
step gives the same bits with the pool on and off (pooled memory is not zeroed: a kernel
that counted on fresh zero pages would show here)."""
import threading

import numpy as np
import pytest

import minitensor as mt
from minitensor import kernels
from minitensor.kernels import buffers
from minitensor.kernels.buffers import BufferPool, size_class


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_size_classes_round_up_by_at_most_a_sixteenth():
    for n in [1, 17, 4095, 65536, 65537, 100_000, 131_073, 3_000_001, 4_096_000]:
        c = size_class(n)
        assert n <= c <= n + n / 16, (n, c)
    assert size_class(65536) == 65536 and size_class(65537) == 65536 + 4096


def test_arrays_have_the_shape_dtype_and_layout_of_np_empty():
    pool = BufferPool(min_bytes=1024)
    for shape, dtype in [((64, 32), np.float32), ((3, 40, 50), np.float64), (5000, np.bool_),
                         ((0, 7), np.float32), ((10,), np.int64)]:
        a = pool.empty(shape, dtype)
        ref = np.empty(shape, dtype)
        assert a.shape == ref.shape and a.dtype == ref.dtype
        assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned


def test_a_buffer_in_use_is_never_handed_out_again():
    pool = BufferPool(min_bytes=1024)
    a = pool.empty((256, 64), np.float32)
    a[...] = 1.0
    first = address(a)
    view = a.reshape(-1)[100:]          # a view keeps the memory in use after a is gone
    row = a[3]
    del a
    b = pool.empty((256, 64), np.float32)
    assert address(b) != first
    b[...] = 2.0
    assert np.all(view == 1.0) and np.all(row == 1.0)
    del row
    c = pool.empty((256, 64), np.float32)   # view still alive: still not free
    c[...] = 3.0
    assert np.all(view == 1.0)
    assert pool.stats()["misses"] == 3


def test_memory_comes_back_when_the_last_array_using_it_is_gone():
    pool = BufferPool(min_bytes=1024)
    a = pool.empty((256, 64), np.float32)
    first = address(a)
    t = a.T                              # a transposed view, then a's name is dropped
    del a
    del t
    b = pool.empty((128, 128), np.float32)          # same bytes, other shape: reused
    assert address(b) == first
    assert pool.stats()["hits"] == 1
    del b
    c = pool.empty((65536,), np.bool_)             # other dtype, same size class
    assert address(c) == first


def test_memory_held_through_a_numba_kernel_result_is_not_reused():
    numba = pytest.importorskip("numba")

    @numba.njit
    def first_half(x):
        return x[: x.shape[0] // 2]

    pool = BufferPool(min_bytes=1024)
    a = pool.empty(4096, np.float32)
    a[...] = 7.0
    half = first_half(a)
    del a
    b = pool.empty(4096, np.float32)
    b[...] = 0.0
    assert np.all(half == 7.0)


def test_a_smaller_array_takes_a_free_bigger_buffer_up_to_twice_its_size():
    pool = BufferPool(min_bytes=1024)
    big = pool.empty((40, 64), np.float32)            # 10,240 bytes: class 10,240
    first = address(big)
    del big
    shorter = pool.empty((30, 64), np.float32)        # 7,680 bytes: fits in it
    assert address(shorter) == first and pool.stats()["misses"] == 1
    del shorter
    tiny = pool.empty((10, 64), np.float32)           # 2,560 bytes: under half, a new buffer
    assert address(tiny) != first and pool.stats()["misses"] == 2
    tiny[...] = 1


def test_small_arrays_come_from_np_empty():
    pool = BufferPool(min_bytes=1 << 16)
    pool.empty((10, 10), np.float32)
    assert pool.stats()["buffers"] == 0


def test_sweep_drops_free_buffers_not_used_recently_and_keeps_busy_ones():
    pool = BufferPool(min_bytes=1024, sweep_every=8)
    kept = pool.empty(100_000, np.uint8)          # busy for the whole test
    stale = pool.empty(50_000, np.uint8)
    del stale                                     # free, then never asked for again
    for _ in range(16):                           # another size, over and over
        pool.empty(20_000, np.uint8)
    sizes = {s for s in pool._classes}
    assert size_class(100_000) in sizes           # busy: kept
    assert size_class(50_000) not in sizes        # free and unused for > 8 handouts: dropped
    assert size_class(20_000) in sizes            # in use by the loop: kept
    kept[...] = 1


def test_clear_drops_free_buffers_only():
    pool = BufferPool(min_bytes=1024)
    busy = pool.empty(10_000, np.uint8)
    free = pool.empty(10_000, np.uint8)
    del free
    pool.clear()
    s = pool.stats()
    assert s["buffers"] == 1 and s["free_buffers"] == 0
    busy[...] = 0


def test_arrays_kept_for_long_do_not_slow_the_scan_down(monkeypatch):
    monkeypatch.setattr(buffers, "MAX_PER_CLASS", 8)
    pool = BufferPool(min_bytes=1024)
    kept = [pool.empty(2048, np.uint8) for _ in range(20)]
    assert pool.stats()["buffers"] == 8
    for i, a in enumerate(kept):                  # forgotten ones still belong to their arrays
        a[...] = i
    assert all(np.all(a == i) for i, a in enumerate(kept))


def test_the_cap_drops_the_longest_unused_buffer_wherever_it_is(monkeypatch):
    monkeypatch.setattr(buffers, "MAX_PER_CLASS", 4)
    pool = BufferPool(min_bytes=1024)
    kept = [pool.empty(2048, np.uint8) for _ in range(4)]
    del kept[0]                          # the first buffer is free, handed out again: newest
    again = pool.empty(2048, np.uint8)
    more = pool.empty(2048, np.uint8)    # a fifth buffer: the cap drops the oldest, 2nd in line
    assert pool.stats()["buffers"] == 4
    assert not pool.holds(kept[0].base)
    assert all(pool.holds(a.base) for a in (kept[1], kept[2], again, more))
    for i, a in enumerate(kept + [again, more]):
        a[...] = i
    assert all(np.all(a == i) for i, a in enumerate(kept + [again, more]))


def test_threads_never_share_a_buffer():
    pool = BufferPool(min_bytes=1024)
    errors = []

    def work(k):
        for i in range(300):
            a = pool.empty((64, 64), np.float32)
            a[...] = k * 1000 + i
            if not np.all(a == k * 1000 + i):
                errors.append((k, i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_set_enabled_off_gives_plain_arrays():
    previous = buffers.set_enabled(False)
    try:
        a = buffers.empty((512, 512), np.float32)
        assert a.base is None and a.flags.owndata
    finally:
        buffers.set_enabled(previous)


def _train(steps: int, pool: bool) -> list:
    """A few Adam steps of a small Transformer with dropout, float64; the pool on or off."""
    import transformer
    from minitensor import functional as F, optim
    previous = buffers.set_enabled(pool)
    try:
        mt.manual_seed(0)
        cfg = transformer.TransformerConfig(d_model=64, nhead=4, num_encoder_layers=2,
                                            num_decoder_layers=2, dim_feedforward=256,
                                            dropout=0.1, src_vocab_size=300, tgt_vocab_size=300,
                                            max_len=64)
        model = transformer.Seq2SeqTransformer(cfg).double()
        opt = optim.Adam(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)
        losses = []
        for _ in range(steps):
            src = mt.tensor(rng.integers(1, 300, (8, 40)))
            tgt = mt.tensor(rng.integers(1, 300, (8, 33)))
            logits = model(src, tgt[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, 300), tgt[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses + [p.detach().numpy().copy() for p in model.parameters()]
    finally:
        buffers.set_enabled(previous)


@pytest.mark.parametrize("backend_name", ["numba"])
def test_training_gives_the_same_bits_with_the_pool_on_and_off(backend_name):
    if not kernels.numba_available():
        pytest.skip("numba backend is not importable on this machine")
    with kernels.use(backend_name):
        off = _train(3, pool=False)
        hits_before = buffers.stats()["hits"]
        on = _train(3, pool=True)
        assert buffers.stats()["hits"] > hits_before       # the pool was used
    for a, b in zip(off, on):
        np.testing.assert_array_equal(a, b)
