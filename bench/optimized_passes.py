"""Bound passes and seconds of planes="optimized" searches with their second probe aimed along
the slope of the "exact" search's final bracket divided by OPTIMIZED_FIRST_STEP (certify's
default), along that slope itself (before 2026-12-07) and with the chord from ε = 0 instead
(earlier versions), side by side on the same inputs: the trained models of the given folders
(each .npz with its inputs X), first inputs, p = 2 and inf.

    python bench/optimized_passes.py --models tests/data ../shared/models/general --inputs 5
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import popqorn_fast as pf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_passes import problems  # noqa: E402

CERTIFY = sys.modules["popqorn_fast.certify"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", required=True, help="folders of trained .npz models with inputs X")
    ap.add_argument("--inputs", type=int, default=5)
    args = ap.parse_args()
    slope = CERTIFY._optimized_slope

    def unscaled(res, margins):  # the exact search's own slope
        v = slope(res, margins)
        return None if v is None else v * CERTIFY.OPTIMIZED_FIRST_STEP

    variants = {"scaled": slope, "unscaled": unscaled, "chord": lambda res, margins: None}
    rows: dict[str, list[list[float]]] = {}
    try:
        for name, m, x in problems(args.models, args.inputs, random_inputs=0):
            for p in (2, "inf"):
                row = []
                for fn in variants.values():
                    CERTIFY._optimized_slope = fn
                    t0 = time.perf_counter()
                    c = pf.certify(m, x, 10.0, p=p, planes="optimized")
                    row += [c.bound_passes, time.perf_counter() - t0, c.eps]
                rows.setdefault(name, []).append(row)
    finally:
        CERTIFY._optimized_slope = slope
    names = list(variants)
    print(f"{'model':24s} {'searches':>8s} " + " ".join(f"{'passes ' + v:>15s}" for v in names) + " "
          + " ".join(f"{'s ' + v:>10s}" for v in names) + f" {'eps / scaled, range':>20s}")
    every = [r for v in rows.values() for r in v]
    for name, v in list(rows.items()) + [("all", every)]:
        a = np.array(v)
        k = len(names)
        ratio = a[:, [3 * j + 2 for j in range(1, k)]] / np.maximum(a[:, [2]], 1e-300)
        print(f"{name:24s} {len(a):8d} " + " ".join(f"{a[:, 3 * j].mean():15.2f}" for j in range(k)) + " "
              + " ".join(f"{a[:, 3 * j + 1].mean():10.3f}" for j in range(k))
              + f" {ratio.min():10.4f}-{ratio.max():.4f}")


if __name__ == "__main__":
    main()
