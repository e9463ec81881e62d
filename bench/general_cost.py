"""Cost of one bound pass of the generic driver as a function of depth L, length T and
hidden size h (random LSTM / GRU stacks, n = 8, 10 classes, p = 2, every frame moving,
"exact" planes, one thread), with the growth exponent of each doubling (log2 of the ratio).

    python bench/general_cost.py [--kind lstm] [--reps 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from popqorn_fast import _core
from popqorn_fast.backend import general_arguments

import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from soundness.models import random_general  # noqa: E402


def seconds(kind: str, L: int, T: int, h: int, reps: int, bi: bool = False) -> float:
    rng = np.random.default_rng(0)
    m = random_general(rng, [kind] * L, [bi] * L, 8, [h] * L, 10, "last", [], [], scale=0.5)
    x = rng.normal(size=(T, 8))
    S = np.zeros((9, 10))
    S[:, 0] = 1.0
    S[np.arange(9), np.arange(1, 10)] = -1.0
    args = general_arguments(m)
    opts = _core.PassOptions()
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        _core.general_bounds(*args, x, 0.01, 2.0, np.ones(T, bool), S, np.zeros(9), opts)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", default="lstm")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    base = dict(L=1, T=8, h=32)
    print(f"{a.kind}: seconds per pass (best of {a.reps}); exponent = log2(ratio) per doubling")
    print("| varied | values | seconds | exponents |")
    print("|---|---|---|---|")
    for key, values in (("L", [1, 2, 4]), ("T", [4, 8, 16]), ("h", [16, 32, 64])):
        secs = [seconds(a.kind, **{**base, key: v}, reps=a.reps) for v in values]
        exps = [np.log2(secs[i + 1] / secs[i]) / np.log2(values[i + 1] / values[i]) for i in range(len(values) - 1)]
        print(f"| {key} (others {', '.join(f'{k}={v}' for k, v in base.items() if k != key)}) | "
              f"{values} | {', '.join(f'{s * 1e3:.1f} ms' for s in secs)} | {', '.join(f'{e:.2f}' for e in exps)} |")
    bi = seconds(a.kind, 2, 8, 32, a.reps, bi=True)
    print(f"| 2 bidirectional layers, T=8, h=32 | | {bi * 1e3:.1f} ms | |")


if __name__ == "__main__":
    main()
