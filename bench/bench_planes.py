"""Benchmark of the 2-D bounding planes (not a test).

Prints, per surface: planes per second (one thread, float64, one call over N boxes,
GIL released inside; best of 3 by process CPU time, which is robust to other jobs
sharing the cores, and by wall time) for each method, the mean pricing calls of "exact", the mean
volume between the planes and the surface (upper + lower, per unit box area, F's
mean from a 51x51 trapezoid grid) and its ratios exact / 1d / constant, and the
largest validity violation max(F - upper), max(lower - F) over a 101x101 grid of
the checked boxes (must be <= 0).

Boxes: centres uniform in [-8, 8]^2, widths log-uniform in [1e-12, 40] per variable; or
(--lstm) the boxes an LSTM's pass meets at its first input: P^ig (tanh(g) sigma(i)) and P^o
(tanh(c) sigma(o)) for tanh_sigmoid, P^f (c_prev sigma(f)) for x_sigmoid, at --eps (default:
the input's "exact" radius), each set repeated to --n boxes.

    python bench/bench_planes.py [--n 200000] [--check 20000] [--seed 0]
    python bench/bench_planes.py --lstm tests/data/lstm_T8_h16.npz [--eps 0.033]
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


def lstm_boxes(path: str, eps: float | None, n: int) -> dict[str, tuple[np.ndarray, ...]]:
    """The boxes of an LSTM's planes in one pass (see the module docstring), per surface."""
    import popqorn_fast as pf
    from popqorn_fast.forward import gate_blocks
    m = pf.load_model(path)
    X, _ = pf.load_inputs(path)
    if eps is None:
        eps = pf.certify(m, X[0], 10.0).eps
    st = pf.bound_states(m, X[0], eps)
    (gl, gu), (cl, cu) = (np.asarray(v) for v in st["gates"]), (np.asarray(v) for v in st["cell"])
    (il, fl, gl_, ol), (iu, fu, gu_, ou) = gate_blocks(gl, 4), gate_blocks(gu, 4)  # stacked i, f, g, o
    c0 = np.zeros((1, cl.shape[1]))
    prev_l, prev_u = np.vstack([c0, cl[:-1]]), np.vstack([c0, cu[:-1]])
    sets = {"tanh_sigmoid": [np.concatenate([gl_, cl]), np.concatenate([gu_, cu]),
                             np.concatenate([il, ol]), np.concatenate([iu, ou])],
            "x_sigmoid": [prev_l, prev_u, fl, fu]}
    out = {}
    for sf, v in sets.items():
        flat = [np.ravel(a) for a in v]
        reps = -(-n // flat[0].size)
        out[sf] = tuple(np.ascontiguousarray(np.tile(a, reps)[:n]) for a in flat)
    return out


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
    ap.add_argument("--lstm", help="an LSTM model (.npz with inputs): the boxes of its pass instead")
    ap.add_argument("--eps", type=float, help="with --lstm: the pass's radius")
    args = ap.parse_args()
    if args.lstm:
        by_surface = lstm_boxes(args.lstm, args.eps, args.n)
    else:
        bx = boxes(np.random.default_rng(args.seed), args.n)
        by_surface = {"tanh_sigmoid": bx, "x_sigmoid": bx}
    for surface, bx in by_surface.items():
        chk = tuple(a[: args.check] for a in bx)
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
