"""planes="optimized"'s envelope tables (cpp/envelope_kernels.hpp, RECURRENCES.md §3b): the
lattice's running min / max of F - a x - b y and each cell's winners (the first candidate
with the highest a cx + b cy + lo, the first with the lowest a cx + b cy + hi) are NumPy's
same arithmetic exactly, ties included, in the AVX2 build (this process, where the CPU has
it) and in the baseline build (POPQORN_NO_AVX2, a fresh process)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from popqorn_fast import _core


def _cases() -> list[tuple[np.ndarray, ...]]:
    """Lattices and candidates of boxes of every size the tables use (G = 1 .. 9: four lanes
    and a scalar tail), some with tied candidates (repeated slopes) and repeated values."""
    rng = np.random.default_rng(5)
    out = []
    for G in (1, 2, 3, 5, 8, 9):
        for tied in ("none", "some", "all"):
            S = 9
            lx, ly = np.sort(rng.uniform(-3, 3, S)), np.sort(rng.uniform(-3, 3, S))
            fx, gy = np.tanh(lx), 1.0 / (1.0 + np.exp(-ly))
            a, b = rng.uniform(0, 1, G * G), rng.uniform(0, 0.3, G * G)
            if tied == "some" and G > 1:  # candidate 1 repeated: equal values, the first must win
                a[_copies(G * G)], b[_copies(G * G)] = a[1], b[1]
            elif tied == "all":  # every candidate the same: the first wins every cell
                a[:], b[:] = a[0], b[0]
            cx, cy = np.sort(rng.uniform(-3, 3, G)), np.sort(rng.uniform(-3, 3, G))
            out.append((fx, gy, lx, ly, a, b, cx, cy))
    return out


def _copies(C: int) -> np.ndarray:
    """The indices that repeat candidate 1 in the "some" cases."""
    return np.unique(np.r_[np.arange(2, C, 3), C - 1])


def _reference(fx, gy, lx, ly, a, b, cx, cy):
    lo, hi = np.full(a.size, np.inf), np.full(a.size, -np.inf)
    for p in range(fx.size):
        for q in range(gy.size):
            g = fx[p] * gy[q] - a * lx[p] - b * ly[q]
            lo, hi = np.minimum(lo, g), np.maximum(hi, g)
    G = cx.size
    win = np.empty(2 * a.size, dtype=int)
    for c in range(a.size):
        v = a * cx[c // G] + b * cy[c % G]
        win[c], win[a.size + c] = np.argmax(v + lo), np.argmin(v + hi)  # the first of equal ones
    return lo, hi, win


def _results() -> list[np.ndarray]:
    return [np.concatenate([lo, hi, win.astype(float)])
            for lo, hi, win in (_core._envelope_kernels(*c) for c in _cases())]


def test_envelope_kernels_are_numpys_arithmetic() -> None:
    for case, got in zip(_cases(), _results()):
        lo, hi, win = _reference(*case)
        assert np.array_equal(got, np.concatenate([lo, hi, win.astype(float)]))
    for case in _cases()[2::3]:  # every candidate the same
        assert np.all(_core._envelope_kernels(*case)[2] == 0)
    for case in _cases()[4::3]:  # a repeat of candidate 1 never wins over it (G > 1)
        assert not np.any(np.isin(_core._envelope_kernels(*case)[2], _copies(case[4].size)))


def test_envelope_kernels_baseline_build_is_the_same(tmp_path) -> None:
    code = f"""
import numpy as np, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
from test_envelope_kernels import _results
np.save(sys.argv[1], np.concatenate(_results()))
"""
    path = tmp_path / "baseline.npy"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=dict(os.environ, POPQORN_NO_AVX2="1"))
    assert np.array_equal(np.load(path), np.concatenate(_results()))


def test_envelope_kernels_refuse_mismatched_sizes() -> None:
    z = np.zeros(3)
    with pytest.raises(ValueError, match="len"):
        _core._envelope_kernels(z, z, z, z, np.zeros(5), np.zeros(5), np.zeros(2), np.zeros(2))
