"""Benchmark of the 2-D bounding planes (not a test).

Prints, per surface: planes per second (one thread, float64, one call over N boxes,
GIL released inside; best of 3 by process CPU time, which is robust to other jobs
sharing the cores, and by wall time) for each method, the mean pricing calls of "exact", the mean
volume between the planes and the surface (upper + lower, per unit box area, F's
mean from a 51x51 trapezoid grid) and its ratios exact / 1d / constant, and the
largest validity violation max(F - upper), max(lower - F) over a 101x101 grid of
the checked boxes (must be <= 0).

Boxes: centres uniform in [-8, 8]^2, widths log-uniform in [1e-12, 40] per variable.

    python bench/bench_planes.py [--n 200000] [--check 20000] [--seed 0]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import expit

from popqorn_fast import _core

FACTOR = {"tanh_sigmoid": np.tanh, "x_sigmoid": lambda x: x}


def boxes(rng: np.random.Generator, n: int):
    xc, yc = rng.uniform(-8, 8, n), rng.uniform(-8, 8, n)
    wx, wy = 10 ** rng.uniform(-12, np.log10(40), n), 10 ** rng.uniform(-12, np.log10(40), n)
    return xc - wx / 2, xc + wx / 2, yc - wy / 2, yc + wy / 2


def grid_stats(surface: str, bx, pl, k: int, chunk: int = 1000):
    """(max F - upper, max lower - F, per-box volume upper+lower) on a k x k grid."""
    xl, xu, yl, yu = bx
    aL, bL, cL, aU, bU, cU = pl
    t = np.linspace(0, 1, k)
    w = np.ones(k)
    w[[0, -1]] = 0.5
    W = np.outer(w, w) / np.outer(w, w).sum()
    vu = vl = -np.inf
    vol = np.empty(xl.size)
    for s in range(0, xl.size, chunk):
        sl = slice(s, s + chunk)
        X = np.minimum(xl[sl, None] + (xu - xl)[sl, None] * t, xu[sl, None])
        Y = np.minimum(yl[sl, None] + (yu - yl)[sl, None] * t, yu[sl, None])
        Fg = FACTOR[surface](X)[:, :, None] * expit(Y)[:, None, :]
        up = (aU[sl, None] * X)[:, :, None] + (bU[sl, None] * Y)[:, None, :] + cU[sl, None, None]
        lo = (aL[sl, None] * X)[:, :, None] + (bL[sl, None] * Y)[:, None, :] + cL[sl, None, None]
        vu = max(vu, float(np.max(Fg - up)))
        vl = max(vl, float(np.max(lo - Fg)))
        vol[sl] = np.einsum("nij,ij->n", up - lo, W)
    return vu, vl, vol


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="boxes timed")
    ap.add_argument("--check", type=int, default=20_000, help="boxes grid-checked / volume-measured")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    bx = boxes(rng, args.n)
    chk = tuple(a[: args.check] for a in bx)
    for surface in ("tanh_sigmoid", "x_sigmoid"):
        vols = {}
        for method in ("exact", "1d", "constant"):
            _core.bound_product(surface, method, *(a[:1000] for a in bx))  # warm-up
            best = best_wall = np.inf
            for _ in range(3):
                t0, w0 = time.process_time(), time.perf_counter()
                _core.bound_product(surface, method, *bx)
                best = min(best, time.process_time() - t0)
                best_wall = min(best_wall, time.perf_counter() - w0)
            pl = _core.bound_product(surface, method, *chk)
            vu, vl, vol = grid_stats(surface, chk, pl, 101)
            vols[method] = vol
            print(f"{surface:13s} {method:8s} {args.n / best:12.0f} planes/s CPU ({args.n / best_wall:.0f} wall)  "
                  f"max(F-upper)={vu:.3e}  max(lower-F)={vl:.3e}  mean volume={vol.mean():.6g}")
        iu, il, _, _ = _core._exact_stats(surface, *chk)
        print(f"{surface:13s} exact: mean pricing calls per plane {0.5 * (iu.mean() + il.mean()):.2f}, "
              f"max {max(iu.max(), il.max())}")
        wide = (chk[1] - chk[0] > 1e-3) & (chk[3] - chk[2] > 1e-3)
        for sel, name in ((np.ones_like(wide), "all"), (wide, "widths>1e-3")):
            e, o, c = (vols[m][sel].mean() for m in ("exact", "1d", "constant"))
            r1 = np.mean(vols["exact"][sel] / np.maximum(vols["1d"][sel], 1e-300))
            r2 = np.mean(vols["exact"][sel] / np.maximum(vols["constant"][sel], 1e-300))
            print(f"{surface:13s} volume ratio ({name}): mean-vol exact/1d={e / o:.4f} exact/constant={e / c:.4f}; "
                  f"per-box mean exact/1d={r1:.4f} exact/constant={r2:.4f}")


if __name__ == "__main__":
    main()
