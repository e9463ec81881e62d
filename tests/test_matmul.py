"""The product kernel of the core (cpp/matmul.hpp, through the test hook ``_core._gemm``)
against NumPy: shapes with edge tiles (rows not a multiple of the 6- or 4-row register
tile, columns not a multiple of the 8-column panel), strided views, sparse rows (the
nonzero-k path), accumulation, and both the AVX2 and the baseline kernels (the latter
via POPQORN_NO_AVX2 in a subprocess)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from popqorn_fast import _core

# (R, K, N): edge tiles in every direction, the back-substitution shapes (2s x s x s,
# 8s x 4s x s), and column groups wider than one packed group (K large); products the BLAS
# path cuts into row blocks and K slices where OpenBLAS has its small-matrix kernel
# (matmul.hpp blas_gemm_sliced: K above the slice, partial last slices and row blocks,
# fewer rows than it slices).
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 3, 9), (6, 8, 8), (7, 9, 17), (13, 5, 1), (11, 16, 15),
          (128, 64, 64), (131, 67, 63), (64, 128, 32), (50, 4100, 11), (37, 1, 40), (4, 0, 5),
          (64, 256, 64), (70, 390, 96), (9, 130, 150), (8, 200, 33), (7, 300, 64), (200, 500, 192)]


def _case(R: int, K: int, N: int, seed: int, sparse: bool):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(R, K + 3))        # extra columns: the views keep the full strides
    if sparse:                               # identity-like rows and all-zero rows
        a[:] = 0.0
        for i in range(R):
            if K and i % 3 != 2:
                a[i, (i * 7) % K] = rng.normal()
    b = rng.normal(size=(K + 2, N + 5))
    c = rng.normal(size=(R, N + 4))
    return a, b, c


def _check(R: int, K: int, N: int, seed: int, sparse: bool, accumulate: bool) -> None:
    a, b, c = _case(R, K, N, seed, sparse)
    got = _core._gemm(a, b, c, K, N, accumulate)
    want = c.copy()
    prod = a[:, :K] @ b[:K, :N]
    want[:, :N] = want[:, :N] + prod if accumulate else prod
    scale = np.abs(a[:, :K]) @ np.abs(b[:K, :N]) + (np.abs(c[:, :N]) if accumulate else 0.0)
    assert np.all(np.abs(got[:, :N] - want[:, :N]) <= 1e-13 * (scale + 1e-300))
    assert np.array_equal(got[:, N:], c[:, N:])  # columns outside the view untouched


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
def test_gemm_matches_numpy(shape: tuple[int, int, int], sparse: bool, accumulate: bool) -> None:
    _check(*shape, seed=sum(shape), sparse=sparse, accumulate=accumulate)


def test_gemm_is_exact_for_small_integers() -> None:
    # Integer products and sums below 2^53 are exact in any order: bitwise equality.
    rng = np.random.default_rng(3)
    for R, K, N in [(131, 67, 63), (7, 9, 17)]:
        a = rng.integers(-50, 50, size=(R, K)).astype(float)
        b = rng.integers(-50, 50, size=(K, N)).astype(float)
        c = np.zeros((R, N))
        assert np.array_equal(_core._gemm(a, b, c, K, N, False), a @ b)


def _checks_in_fresh_process(env_var: str, first: str = "") -> np.ndarray:
    """The product checks of every SHAPES case in a fresh process with ``env_var`` set (the
    kernels it selects), after the statement ``first``; returns that process's _passes()."""
    code = f"""
import numpy as np, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
{first}
from test_matmul import SHAPES, _check, _passes
for shape in SHAPES:
    for sparse in (False, True):
        for acc in (False, True):
            _check(*shape, seed=sum(shape), sparse=sparse, accumulate=acc)
np.save(sys.argv[1], _passes())
"""
    out = os.path.join(os.environ.get("PYTEST_TMP", "/tmp"), f"pq_{env_var.lower()}_{os.getpid()}.npy")
    subprocess.run([sys.executable, "-c", code, out], check=True, env=dict(os.environ, **{env_var: "1"}))
    try:
        return np.load(out)
    finally:
        os.remove(out)


def test_baseline_kernels_match_numpy_and_the_avx2_bounds() -> None:
    # The baseline (non-AVX2) kernels, selected by POPQORN_NO_AVX2 in a fresh process,
    # pass the same product checks, and the bound passes agree with this process's.
    base = _checks_in_fresh_process("POPQORN_NO_AVX2")
    here = _passes()
    # The AVX2 product rounds with FMA, the baseline one without: the passes agree to
    # rounding. With "exact" planes a one-ulp change can select another volume-minimal
    # plane (RECURRENCES.md §3, §6), so those agree only loosely.
    assert np.allclose(base[:-12], here[:-12], rtol=1e-11, atol=1e-13)
    assert np.allclose(base[-12:], here[-12:], rtol=1e-5, atol=1e-8)


def _passes() -> np.ndarray:
    """Margin bounds of small RNN, LSTM and GRU passes (odd sizes), concatenated: the RNN
    and the "constant"-plane passes, then the "exact"-plane passes (last 12 entries)."""
    rng = np.random.default_rng(11)
    s, n, T, K = 13, 5, 4, 3
    x = rng.uniform(size=(T, n))
    mask = np.ones(T, bool)
    sw, sb = rng.normal(size=(K, s)), rng.normal(size=K)
    u = lambda *sh: rng.uniform(-0.4, 0.4, size=sh)  # noqa: E731
    common = dict(x=x, eps=0.05, p=2.0, frame_mask=mask, spec_weight=sw, spec_bias=sb)
    out = [_core.rnn_bounds(u(s, n), u(s, s), u(s), np.zeros(s), "tanh", **common)]
    lstm = (u(4 * s, n), u(4 * s, s), u(4 * s), np.zeros(s), np.zeros(s))
    gru = (u(3 * s, n), u(3 * s, s), u(3 * s), u(3 * s), np.zeros(s))
    for planes in ("constant", "exact"):
        out.append(_core.lstm_bounds(*lstm, **common, planes=planes))
        out.append(_core.gru_bounds(*gru, **common, planes=planes))
    return np.concatenate([np.concatenate([d["lower"], d["upper"]]) for d in out])


def test_row_blocks_on_threads_equal_one_thread() -> None:
    # The products' row blocks (fixed by the shape: 64, 128 or 256 rows by N) on a pool of
    # k threads give C bit for bit (cpp/matmul.hpp, cpp/row_pool.hpp); BLAS and hand blocks,
    # accumulate or not.
    from popqorn_fast.backend import product_threads
    for R, K, N, sparse in [(512, 256, 64, False), (1031, 130, 70, False), (700, 96, 8, False),
                            (512, 256, 64, True), (600, 140, 200, False)]:
        for acc in (False, True):
            a, b, c = _case(R, K, N, R + K, sparse)
            one = _core._gemm(a, b, c, K, N, acc)
            for k in (2, 3, 4):
                with product_threads(k):
                    got = _core._gemm(a, b, c, K, N, acc)
                assert np.array_equal(got, one)


def test_blas_and_hand_kernels_agree() -> None:
    # A build with the BLAS (cpp/blas.hpp) runs, under POPQORN_NO_BLAS, the hand kernels
    # only: both pass the product checks, and the bound passes agree to rounding (the
    # "exact"-plane passes loosely, as in the test above).
    if _core.blas is None:
        pytest.skip("core built without a BLAS")
    assert _core._blas_enabled()
    hand = _checks_in_fresh_process(
        "POPQORN_NO_BLAS", "from popqorn_fast import _core\nassert not _core._blas_enabled()")
    here = _passes()
    assert np.allclose(hand[:-12], here[:-12], rtol=1e-11, atol=1e-13)
    assert np.allclose(hand[-12:], here[-12:], rtol=1e-5, atol=1e-8)
