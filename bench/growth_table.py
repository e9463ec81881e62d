"""The growth table: seconds per bound pass against (layers L, steps T, width h), next to the
nominal flops of the back-substitution's dense products (bench/flops.py) and what those
flops would take at NumPy's float64 matmul speed on this machine (the floor): stacked
one-direction LSTM / GRU layers, last-step readout, Linear head (10 classes), one input,
p = 2, ε = 0.05, planes "exact", rounding "sound" (or --rounding sound32: a column per mode,
side by side, the floor still float64's), one thread.

    PYTHONPATH=python python bench/growth_table.py [--kinds lstm gru] [--max-seconds 60]
        [--rounding sound sound32]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import popqorn_fast as pf  # noqa: E402
from flops import stacked_pass_flops  # noqa: E402
from popqorn_fast.general import Dense, RecurrentClassifier, RecurrentLayer  # noqa: E402
from run import numpy_gflops  # noqa: E402

N_IN, CLASSES = 8, 10


def stacked(kind: str, L: int, h: int, seed: int = 0) -> RecurrentClassifier:
    rng = np.random.default_rng(seed)
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    k = 1.0 / np.sqrt(h)
    u = lambda *shape: rng.uniform(-k, k, size=shape)  # noqa: E731 (PyTorch's initialisation)
    layers = tuple(RecurrentLayer(kind, u(G * h, N_IN if l == 0 else h), u(G * h, h), u(G * h), u(G * h))
                   for l in range(L))
    return RecurrentClassifier(layers, (Dense(rng.normal(size=(CLASSES, h)), rng.normal(size=CLASSES)),))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=["lstm", "gru"])
    ap.add_argument("--max-seconds", type=float, default=60.0, help="skip sizes whose pass would exceed this")
    ap.add_argument("--rounding", nargs="+", default=["sound"], help="one s/pass column per mode")
    args = ap.parse_args()
    modes = args.rounding
    floor = {h: numpy_gflops(h) for h in (32, 64, 128, 256)}
    print(f"# NumPy float64 matmul, one thread (GFLOP/s): " + ", ".join(f"h={h}: {g:.1f}" for h, g in floor.items()))
    cols = "".join(f" {'s ' + r:>11} {'x floor':>8}" for r in modes)
    print(f"{'kind':>5} {'L':>2} {'T':>3} {'h':>4} {'GFLOP':>8} {'floor s':>9}{cols}")
    for kind in args.kinds:
        for L in (1, 2):
            for T in (4, 8, 16):
                for h in (32, 64, 128, 256):
                    fl = stacked_pass_flops(kind, L, T, h, N_IN, CLASSES - 1)
                    fs = fl / (floor[h] * 1e9)
                    if fs * 4 > args.max_seconds:  # passes run at 2-4x the floor
                        print(f"{kind:>5} {L:>2} {T:>3} {h:>4} {fl / 1e9:>8.2f} {fs:>9.4f}  skipped")
                        continue
                    m = stacked(kind, L, h)
                    x = np.random.default_rng(1).uniform(0, 1, size=(T, N_IN))
                    reps = max(1, min(5, int(1.0 / max(fs * 3, 1e-4))))
                    best = {r: np.inf for r in modes}
                    for _ in range(reps):  # the modes interleaved
                        for r in modes:
                            t0 = time.perf_counter()
                            pf.bound_margins(m, x, 0.05, p=2, rounding=r)
                            best[r] = min(best[r], time.perf_counter() - t0)
                    cells = "".join(f" {best[r]:>11.4f} {best[r] / fs:>8.2f}" for r in modes)
                    print(f"{kind:>5} {L:>2} {T:>3} {h:>4} {fl / 1e9:>8.2f} {fs:>9.4f}{cells}", flush=True)


if __name__ == "__main__":
    main()
