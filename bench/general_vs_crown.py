"""Certified radius and time of popqorn_fast on the trained general models (tests/data/general:
stacked, bidirectional, mean readouts, MLP heads, frame layers) against auto_LiRPA CROWN's
figures for the same models and inputs (tests/data/general/lirpa_crown_general.json, from
shared/reference/general: CROWN on an unrolled twin, one thread, the same eps search).

    python bench/general_vs_crown.py [--planes exact] [--norms 2 inf]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import popqorn_fast as pf

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "general"


def load(name: str, config: dict) -> tuple[pf.RecurrentClassifier, np.ndarray]:
    d = np.load(DATA / f"{name}.npz")
    m = pf.RecurrentClassifier.from_pytorch(d, readout=config["readout"], activation=config.get("act", "tanh"),
                                            head_activation=config.get("head_act", "relu"),
                                            frame_activation=config.get("frame_act", "relu"))
    return m, np.asarray(d["X"], dtype=np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--planes", default="exact")
    ap.add_argument("--norms", nargs="+", default=["2", "inf"])
    args = ap.parse_args()
    ref = json.loads((DATA / "lirpa_crown_general.json").read_text())
    print(f"planes={args.planes}; eps ours / CROWN per input (mean, min); seconds per full search")
    print("| model | p | mean eps ratio | min ratio | s/input ours | s/input CROWN | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for name, entry in ref["models"].items():
        m, X = load(name, entry["config"])
        for norm in args.norms:
            runs = [r for r in entry["runs"] if str(r["norm"]) == norm]
            ratios, ours, theirs = [], [], []
            for r in runs:
                t0 = time.perf_counter()
                cert = pf.certify(m, X[r["index"]], eps_max=10.0, p=norm, planes=args.planes)
                ours.append(time.perf_counter() - t0)
                theirs.append(r["seconds"])
                ratios.append(cert.eps / r["eps"])
            print(f"| {name} | {norm} | {np.mean(ratios):.3f} | {np.min(ratios):.3f} | {np.mean(ours):.4f} | "
                  f"{np.mean(theirs):.2f} | {np.mean(theirs) / np.mean(ours):.0f}x |")


if __name__ == "__main__":
    main()
