"""popqorn_fast next to the stored auto_LiRPA CROWN radii (shared/reference/lirpa_crown_dev.json).

Runs the same models, inputs (first 10 test inputs), norms and threat model
(every frame in its own ball, untargeted, no clipping) and prints mean/min ε*,
the per-input ratio to CROWN, and seconds per input. The CROWN times come from
another run on another (loaded) machine: compare them only loosely.

    python bench/compare_lirpa_table.py --reference ../shared/reference/lirpa_crown_dev.json \
        --models tests/data [--fixtures lstm_T8_h16 ...] [--planes exact] [--md out.md]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import time
from pathlib import Path

import numpy as np

import popqorn_fast as pf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", default="../shared/reference/lirpa_crown_dev.json")
    ap.add_argument("--models", default="tests/data")
    ap.add_argument("--fixtures", nargs="*")
    ap.add_argument("--norms", nargs="*", default=["2", "inf"])
    ap.add_argument("--planes", default="exact")
    ap.add_argument("--md", help="append a Markdown table to this file")
    args = ap.parse_args()

    ref = json.load(open(args.reference))
    lines = []
    head = "| model | p | planes | K | mean ε* | min ε* | CROWN mean ε | mean ratio | min ratio | max ratio | s/input | CROWN s/input |"
    lines += [head, "|" + "---|" * 12]
    print(head)
    for res in ref["results"]:
        fx = res["fixture"]
        if args.fixtures and fx not in args.fixtures:
            continue
        w = pf.load_model(Path(args.models) / f"{fx}.npz")
        X, y = pf.load_inputs(Path(args.models) / f"{fx}.npz")
        for norm in args.norms:
            runs = [r for r in res["runs"] if r["method"] == "CROWN" and str(r["norm"]) == norm]
            if not runs:
                continue
            ours, secs, ratios = [], [], []
            for r in runs:
                i = r["index"]
                t0 = time.perf_counter()
                c = pf.certify(w, X[i], eps_max=10.0, p=norm, label=int(y[i]), planes=args.planes)
                secs.append(time.perf_counter() - t0)
                ours.append(c.eps)
                ratios.append(c.eps / r["eps"] if r["eps"] > 0 else np.inf)
            crown = np.array([r["eps"] for r in runs])
            row = (f"| {fx} | {norm} | {args.planes} | {len(runs)} | {np.mean(ours):.6g} | {np.min(ours):.6g} | "
                   f"{crown.mean():.6g} | {np.mean(ours) / crown.mean():.4f} | {np.min(ratios):.4f} | "
                   f"{np.max(ratios):.4f} | {np.mean(secs):.4f} | {np.mean([r['seconds'] for r in runs]):.3g} |")
            print(row, flush=True)
            lines.append(row)
    if args.md:
        with open(args.md, "a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
