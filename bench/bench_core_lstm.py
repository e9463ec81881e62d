"""Rough per-pass timing of the core bound passes (not a test).

Usage: python bench/bench_core_lstm.py [--T 8 --s 32 --n 8 --K 9 --eps 0.01 --planes exact]
Prints the median wall time of one ``_core.*_bounds`` call (margins only).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from popqorn_fast import _core


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, default=8)
    ap.add_argument("--s", type=int, default=32)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--K", type=int, default=9)
    ap.add_argument("--eps", type=float, default=0.01)
    ap.add_argument("--p", type=float, default=2.0)
    ap.add_argument("--planes", default="exact")
    ap.add_argument("--kind", default="lstm", choices=["rnn", "lstm", "gru"])
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    s, n, T, K = a.s, a.n, a.T, a.K
    G = {"rnn": 1, "lstm": 4, "gru": 3}[a.kind]
    w_ih = rng.normal(size=(G * s, n)) / np.sqrt(n)
    w_hh = rng.normal(size=(G * s, s)) / np.sqrt(s)
    b = rng.normal(size=G * s) * 0.1
    x = rng.normal(size=(T, n))
    common = dict(x=x, eps=a.eps, p=a.p, frame_mask=np.ones(T, bool),
                  spec_weight=rng.normal(size=(K, s)), spec_bias=rng.normal(size=K))
    if a.kind == "rnn":
        call = lambda: _core.rnn_bounds(w_ih, w_hh, b, np.zeros(s), "tanh", **common)  # noqa: E731
    elif a.kind == "lstm":
        call = lambda: _core.lstm_bounds(w_ih, w_hh, b, np.zeros(s), np.zeros(s), **common,  # noqa: E731
                                         planes=a.planes)
    else:
        call = lambda: _core.gru_bounds(w_ih, w_hh, b, b, np.zeros(s), **common,  # noqa: E731
                                        planes=a.planes)
    call()
    ts = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        r = call()
        ts.append(time.perf_counter() - t0)
    print(f"{a.kind} T={T} s={s} n={n} K={K} eps={a.eps} p={a.p} planes={a.planes}: "
          f"median {1e3 * np.median(ts):.2f} ms/pass (min {1e3 * min(ts):.2f}); "
          f"lower[0]={r['lower'][0]:.6g}")


if __name__ == "__main__":
    main()
