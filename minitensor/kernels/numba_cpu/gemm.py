"""A GEMM tuned for the training step's skinny products: out (M, N) = a (M, K) @ b (K, N) [+ bias].

``gemm(a, b, bias=None)`` takes a and b as they come, C- or F-ordered (``W.T`` and
``dY.T`` are read in place, never copied), float32 or float64, and returns a new
C-ordered (M, N) array. It follows the GotoBLAS/BLIS plan, cut down to what these
shapes need (M ~ 64-2048, K and N ~ 40-2048):

    pack b into column panels of NR columns, each (K, NR) contiguous, zero past N
    for each thread's block of rows (split in micro-rows of MR = 8):
        for each KC-slab of the shared dimension:
            for each panel:
                for each micro-row:   out[8 rows, NR cols] (+)= a[8 rows, slab] @ panel[slab]

The micro-kernel keeps the 8 x NR block of out in 16 vector registers (NR = 2 vectors:
32 float32 or 16 float64 columns) and per step k does 2 vector loads of the panel, 8
scalar broadcasts of a and 16 fused multiply-adds: the FMA units, not memory, set the
pace. The vectors are 512-bit (``_simd``): LLVM's own vectorizer would stop at 256 bits
on these CPUs. Why it is laid out so:
    - the packed panel makes b's reads contiguous whatever b's layout (W^T is
      column-major); a (KC, NR) slab of a panel (32 KB) stays in L1 while every
      micro-row of the thread goes past it.
    - a is read where it lies when its rows are contiguous (x, dY: 8 row streams, from
      L2); dY^T is packed per slab first when out is 4+ panels wide (read in place, each
      step k would be a new page when M >= 1024).
    - the micro-kernel prefetches the out tile it will write (a store that misses the
      cache at its end stalls the next tile: measured 25% of the time at K = 128).
    - edges: columns past N are zeros in the panel, computed and not stored (the tile
      goes through a small scratch buffer); the last < 8 rows are packed, zero-padded.
    - results do not depend on the thread count or on KC: every output element is one
      chain of FMAs over k = 0 .. K-1 in order (a later slab starts from the stored
      partial sum), so 1 and N threads give identical numbers; rows are split over
      threads, b's panels are packed in parallel.
    - the bias is the chain's starting value (one pass over out, no second one).

Which products it wins is measured by ``python -m bench.matmul_shapes`` (its "gemm"
columns, beside today's path and np.matmul / torch). Measured at 1 thread (loaded
2-core Sapphire Rapids, ratios in one run): 1.05-1.3x today's OpenBLAS path on narrow
products (N = 64: the dates task's dX, dW and out-64 forward), 0.6-1.0x on configs S
and M, where OpenBLAS's packing and prefetching do better. ``gemm`` does no dispatching.

It is not wired into ``linear`` / ``linear_backward`` / ``matmul`` (a measured decision,
issue 13): at configs S and M it loses to OpenBLAS, and at the dates task's narrow
products its 1.1-1.3x would save about a millisecond of a ~30 ms step, while its first
compilation (~4.6 s per dtype, empty cache) would push the quick start's first step
past its 8 s budget. It stays as the readable, tested example of a packed,
register-blocked GEMM and as the bench's reference for what a hand-written kernel
reaches here (OpenBLAS already runs at 80-99% of the probed peak on one core).
"""
from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

from ..numpy_ref.gemm import check_operands
from ._simd import fma_tile, lanes, prefetch_for_write, vload, vload_tile, vstore_tile, vzeros
from ._threads import parallel_kernel

MR = 8      # rows of a per micro-kernel call (8 x 2 accumulators = 16 zmm registers)
KC = 256    # shared-dimension slab: a (KC, NR) panel slab stays in L1 (32 KB in float32)
# a with non-contiguous rows (dY^T) is packed when out has at least this many panels.
PACK_MIN_PANELS = 4
# Products with fewer multiply-adds run on the calling thread (as linalg.PARALLEL_MIN_MACS).
PARALLEL_MIN_MACS = 1 << 23

INIT_ZERO, INIT_BIAS, INIT_OUT = 0, 1, 2  # what the micro-kernel's sums start from


@njit(cache=True)
def _micro_kernel(kc, a, a0, ars, acs, panel, p0, nr, c, c0, ldc, init, bias, j0):
    """c[8 rows from c0, step ldc][0:nr] = start + sum_k a[rows, k] * panel[k, 0:nr].

        a[r, k] = a[a0 + r * ars + k * acs]     (r < 8, k < kc; any strides)
        panel[k, j] = panel[p0 + k * nr + j]   (packed, contiguous)
        start = 0 (INIT_ZERO), bias[j0 : j0 + nr] (INIT_BIAS) or c itself (INIT_OUT)
    """
    w = nr // 2  # one vector's lanes
    if init == INIT_OUT:
        t = vload_tile(c, c0, ldc, w)
    else:
        # the tile of c is only written: fetch its lines now, while the loop below runs
        # (a store that misses the cache at the end stalls the next tile's loop)
        for r in range(MR):
            prefetch_for_write(c, c0 + r * ldc)
            prefetch_for_write(c, c0 + r * ldc + nr - 1)
        if init == INIT_BIAS:
            z0, z1 = vload(bias, j0), vload(bias, j0 + w)
        else:
            z0, z1 = vzeros(c), vzeros(c)
        t = (z0, z1, z0, z1, z0, z1, z0, z1, z0, z1, z0, z1, z0, z1, z0, z1)
    t = fma_tile(t, a, a0, ars, acs, panel, p0, nr, w, kc)
    vstore_tile(c, c0, ldc, w, t)


@parallel_kernel(cache=True)
def _pack_panels(b, brs, bcs, K, N, nr, packed):
    """packed[p * K * nr + k * nr + j] = b[k, p * nr + j] (0 for columns >= N), every panel p.

        b[k, j] = b[k * brs + j * bcs]  (flat view of b, any strides)

    Optimizations: panels in parallel (each writes its own part of packed); the loop
    order follows b's contiguous direction (rows of a C-ordered b, columns of W^T).
    """
    for p in prange((N + nr - 1) // nr):
        j0 = p * nr
        width = min(nr, N - j0)
        base = p * K * nr
        if bcs == 1:  # b's rows contiguous: copy a row piece per k
            for k in range(K):
                for j in range(width):
                    packed[base + k * nr + j] = b[k * brs + j0 + j]
        else:  # walk down each column of b (contiguous when b is W^T)
            for j in range(width):
                src = (j0 + j) * bcs
                for k in range(K):
                    packed[base + k * nr + j] = b[src + k * brs]
        for k in range(K):
            for j in range(width, nr):
                packed[base + k * nr + j] = 0


@njit(cache=True)
def _pack_rows(a, ars, acs, i0, rows, pc, kc, dst, d0):
    """dst[d0 + k * MR + r] = a[i0 + r, pc + k] for k < kc, r < MR (0 for r >= rows):
    MR rows of a as the micro-kernel reads them best (one contiguous run per k)."""
    for k in range(kc):
        src = i0 * ars + (pc + k) * acs
        for r in range(rows):
            dst[d0 + k * MR + r] = a[src + r * ars]
        for r in range(rows, MR):
            dst[d0 + k * MR + r] = 0


@parallel_kernel(cache=True)
def _gemm_rows(a, ars, acs, packed, bias, init0, out, M, K, N, nr, blocks):
    """out (M x N, flat C order) = a @ b (+ bias), b packed by _pack_panels, rows of a
    split into ``blocks`` contiguous runs of micro-rows (one per thread).

        for t in parallel: for slab: [pack t's rows of a] for panel: for micro-row of t:
            _micro_kernel

    init0 is INIT_BIAS (bias padded to a multiple of nr) or INIT_ZERO. a is read in
    place when its rows are contiguous (x, dY); otherwise (dY^T) each slab of t's rows
    is packed first when N is wide enough to pay for it: read in place, every step k of
    the micro-kernel touches a new page when M >= 1024 (a TLB miss per 16 FMAs). The
    last < 8 rows are always packed (zero-padded).
    """
    micro_rows = (M + MR - 1) // MR
    panels = (N + nr - 1) // nr
    per = (micro_rows + blocks - 1) // blocks
    # packing costs about what one panel's FMAs on those rows do: worth it from 4 panels
    pack_all = acs != 1 and panels >= PACK_MIN_PANELS
    for t in prange(blocks):
        first, stop = t * per, min(micro_rows, (t + 1) * per)
        tile = np.empty(MR * nr, out.dtype)       # edge tiles of out
        edge_rows = np.empty(MR * KC, out.dtype)  # the last (< 8) rows of a, zero-padded
        slab = np.empty((per if pack_all else 0) * MR * KC, out.dtype)
        for pc in range(0, K, KC):
            kc = min(KC, K - pc)
            init = init0 if pc == 0 else INIT_OUT
            for ir in range(first, stop):
                i0 = ir * MR
                rows = min(MR, M - i0)
                if pack_all:
                    _pack_rows(a, ars, acs, i0, rows, pc, kc, slab, (ir - first) * MR * kc)
                elif rows < MR:
                    _pack_rows(a, ars, acs, i0, rows, pc, kc, edge_rows, 0)
            for p in range(panels):
                j0 = p * nr
                cols = min(nr, N - j0)
                p0 = p * K * nr + pc * nr
                for ir in range(first, stop):
                    i0 = ir * MR
                    rows = min(MR, M - i0)
                    src, s0, srs, scs = a, i0 * ars + pc * acs, ars, acs
                    if pack_all:
                        src, s0, srs, scs = slab, (ir - first) * MR * kc, 1, MR
                    elif rows < MR:
                        src, s0, srs, scs = edge_rows, 0, 1, MR
                    full = rows == MR and cols == nr
                    target, t0, ldt = out, i0 * N + j0, N   # edge tiles go through `tile`
                    if not full:
                        target, t0, ldt = tile, 0, nr
                        if init == INIT_OUT:
                            for r in range(rows):
                                for j in range(cols):
                                    tile[r * nr + j] = out[(i0 + r) * N + j0 + j]
                    # one call site: each one is a compilation of the micro-kernel
                    _micro_kernel(kc, src, s0, srs, scs, packed, p0, nr,
                                  target, t0, ldt, init, bias, j0)
                    if not full:
                        for r in range(rows):
                            for j in range(cols):
                                out[(i0 + r) * N + j0 + j] = tile[r * nr + j]


def _flat(x: np.ndarray):
    """(x's memory as a 1-D array, row stride, column stride) in elements: no copy for C-
    or F-ordered x (transposed views included); other layouts are copied to C order."""
    if not (x.flags.c_contiguous or x.flags.f_contiguous):
        x = np.ascontiguousarray(x)
    item = x.itemsize
    rs = x.strides[0] // item if x.shape[0] > 1 else x.shape[1]
    cs = x.strides[1] // item if x.shape[1] > 1 else 1
    return x.ravel(order="K"), rs, cs


def gemm(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None,
         threads: int | None = None) -> np.ndarray:
    """a (M, K) @ b (K, N) [+ bias (N,)] -> new C-ordered (M, N), float32 or float64.

    a and b: 2-D, the same float dtype, any layout (C- or F-ordered views such as ``w.T``
    are read in place; others are copied). ``threads``: how many of Numba's threads to
    split the rows over (default: all of them when the product has >= 2^23
    multiply-adds, else 1); the result does not depend on it.
    """
    check_operands(a, b, bias)
    M, K = a.shape
    N = b.shape[1]
    dtype = a.dtype
    if min(M, K, N) == 0:
        out = np.zeros((M, N), dtype)
        return out + np.asarray(bias, dtype) if bias is not None else out
    nr = 2 * lanes(dtype)
    panels = (N + nr - 1) // nr
    a_flat, ars, acs = _flat(a)
    b_flat, brs, bcs = _flat(b)
    if bias is not None:
        padded_bias = np.zeros(panels * nr, dtype)
        padded_bias[:N] = bias
        init = INIT_BIAS
    else:
        padded_bias = np.zeros(nr, dtype)
        init = INIT_ZERO
    if threads is None:
        threads = get_num_threads() if M * K * N >= PARALLEL_MIN_MACS else 1
    blocks = max(1, min(threads, (M + MR - 1) // MR))
    packed = np.empty(panels * K * nr, dtype)
    out = np.empty(M * N, dtype)
    if blocks > 1:
        _pack_panels(b_flat, brs, bcs, K, N, nr, packed)
        _gemm_rows(a_flat, ars, acs, packed, padded_bias, init, out, M, K, N, nr, blocks)
    else:
        _pack_panels.serial(b_flat, brs, bcs, K, N, nr, packed)
        _gemm_rows.serial(a_flat, ars, acs, packed, padded_bias, init, out, M, K, N, nr, 1)
    return out.reshape(M, N)
