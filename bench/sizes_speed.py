"""The realistic sizes (T = 8, h = 128 and 256; T = 16, h = 64), one input each: seconds per full ε search and per bound pass, the
pass's GFLOP/s next to NumPy's float64 matmul (one thread) of a back-substitution-shaped
product, and, where certify takes ``threads``, the same search on 2 threads; with
``--rounding sound sound32`` one row per rounding mode, side by side on the same model.

Run it for two builds in one go to compare them (before = PYTHONPATH of the old build):

    for i in 1 2; do
      PYTHONPATH=/tmp/base/python python bench/sizes_speed.py --label before
      PYTHONPATH=python python bench/sizes_speed.py --label after
    done
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # NumPy's BLAS on one thread

import argparse
import inspect
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import popqorn_fast as pf  # noqa: E402
from flops import pass_flops  # noqa: E402
from run import numpy_gflops, random_model  # noqa: E402

SIZES = [("lstm", 8, 128), ("lstm", 8, 256), ("lstm", 16, 64), ("gru", 8, 128), ("gru", 8, 256), ("gru", 16, 64)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="")
    ap.add_argument("--sizes", nargs="*", help="kind:T:h, default the issue's six")
    ap.add_argument("--rounding", nargs="+", default=["sound"],
                    help="one row per mode, side by side (sound, sound32, nearest)")
    args = ap.parse_args()
    sizes = [(k, int(T), int(h)) for k, T, h in (s.split(":") for s in args.sizes)] if args.sizes else SIZES
    threads = "threads" in inspect.signature(pf.certify).parameters
    print(f"{'label':>7} {'rounding':>8} {'kind':>5} {'T':>3} {'h':>4} {'s/search':>9} {'passes':>6} {'s/pass':>8} "
          f"{'GFLOP/s':>8} {'numpy':>7} {'ratio':>6} {'eps':>10} {'s/search k=2':>12} {'speed-up':>8}")
    for kind, T, h in sizes:
        w, X = random_model(kind, T, h, 8)
        x = X[0]
        npg = numpy_gflops(h)
        for rounding in args.rounding:
            kw = {"rounding": rounding} if rounding != "sound" else {}
            t0 = time.perf_counter()
            c = pf.certify(w, x, eps_max=10.0, p=2, planes="exact", **kw)
            t1 = time.perf_counter() - t0
            s_pass = t1 / c.bound_passes
            gf = pass_flops(kind, T, h, 8, K=9) / s_pass / 1e9
            two = ""
            if threads:
                t0 = time.perf_counter()
                c2 = pf.certify(w, x, eps_max=10.0, p=2, planes="exact", threads=2, **kw)
                t2 = time.perf_counter() - t0
                assert c2.eps == c.eps and np.array_equal(c2.margin_lower, c.margin_lower)
                two = f"{t2:>12.3f} {t1 / t2:>7.2f}x"
            print(f"{args.label:>7} {rounding:>8} {kind:>5} {T:>3} {h:>4} {t1:>9.3f} {c.bound_passes:>6} "
                  f"{s_pass:>8.4f} {gf:>8.1f} {npg:>7.1f} {gf / npg:>6.2f} {c.eps:>10.6g} {two}", flush=True)


if __name__ == "__main__":
    main()
