"""Threat models on the shared general models (tests/data/general/*.npz), in one process:

1. certified radius, p = 2: the per-frame ball vs the joint ball (mean over the first
   ``--count`` correctly classified test inputs, and the mean per-input ratio);
2. cost of one bound pass under each threat model relative to the per-frame ball, at the
   input's per-frame radius ε* (best of ``--reps``, summed over inputs): joint ball, frame
   weights, a box domain that cuts (the data's range, clipped to ±ε* around x), the joint ball
   in that box, and word substitutions (8 candidates per position, budget 2).

    python bench/threat_models.py [--count 10] [--reps 5] [--models tests/data/general/*.npz]
"""
from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path

import numpy as np

import popqorn_fast as pf
from popqorn_fast.substitutions import substitution_bounds


def best_of(fn, reps: int) -> float:
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def load(path: str) -> tuple:
    """A shared general model as tests/test_general.py loads it (its config in the CROWN table)."""
    cfg = json.loads((Path(path).parent / "lirpa_crown_general.json").read_text())["models"][Path(path).stem]["config"]
    d = np.load(path)
    m = pf.RecurrentClassifier.from_pytorch(d, readout=cfg["readout"], activation=cfg.get("act", "tanh"),
                                            head_activation=cfg.get("head_act", "relu"),
                                            frame_activation=cfg.get("frame_act", "relu"))
    return m, np.asarray(d["X"], dtype=np.float64), np.asarray(d["y"])


def run_model(path: str, count: int, reps: int) -> dict:
    w, X, y = load(path)
    lo, hi = float(X.min()), float(X.max())
    rng = np.random.default_rng(0)
    idx = [i for i in range(len(X)) if int(np.argmax(w.logits(X[i]))) == int(y[i])][:count]
    frame_eps, joint_eps = [], []
    cost = {k: 0.0 for k in ("frame", "joint", "frame_weights", "domain", "joint+domain", "substitutions")}
    for i in idx:
        x = X[i]
        T = x.shape[0]
        fe = pf.certify(w, x, p=2).eps
        je = pf.certify(w, x, p=2, ball="joint").eps
        frame_eps.append(fe)
        joint_eps.append(je)
        e = max(fe, 1e-3)
        box = (np.maximum(lo, x - 0.5 * e), np.minimum(hi, x + 2.0 * e))  # cuts every frame's ball
        weights = np.linspace(0.5, 1.5, T)
        cands = [x[t] + 0.05 * rng.normal(size=(8, x.shape[1])) for t in range(T)]
        runs = {
            "frame": lambda: pf.bound_margins(w, x, e, p=2),
            "joint": lambda: pf.bound_margins(w, x, e, p=2, ball="joint"),
            "frame_weights": lambda: pf.bound_margins(w, x, e, p=2, frame_weights=weights),
            "domain": lambda: pf.bound_margins(w, x, e, p=2, domain=box),
            "joint+domain": lambda: pf.bound_margins(w, x, e, p=2, ball="joint", domain=box),
            "substitutions": lambda: substitution_bounds(w, x, cands, 2),
        }
        for k, fn in runs.items():
            cost[k] += best_of(fn, reps)
    fe, je = np.array(frame_eps), np.array(joint_eps)
    return dict(name=Path(path).stem, n=len(idx), frame=fe.mean(), joint=je.mean(),
                ratio=float(np.mean(je / np.maximum(fe, 1e-300))), min_ratio=float(np.min(je / np.maximum(fe, 1e-300))),
                cost={k: v / cost["frame"] for k, v in cost.items()}, frame_seconds=cost["frame"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=sorted(glob.glob("tests/data/general/*_T*.npz")))
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    rows = [run_model(m, args.count, args.reps) for m in args.models]
    keys = list(rows[0]["cost"])
    print(f"{'model':<22} {'n':>3} {'eps frame':>10} {'eps joint':>10} {'joint/frame':>11} {'min':>6} | "
          + " ".join(f"{k:>13}" for k in keys[1:]) + "  (pass time / frame ball)")
    for r in rows:
        print(f"{r['name']:<22} {r['n']:>3} {r['frame']:>10.5f} {r['joint']:>10.5f} {r['ratio']:>11.3f} "
              f"{r['min_ratio']:>6.3f} | " + " ".join(f"{r['cost'][k]:>13.3f}" for k in keys[1:]))
    geo = {k: float(np.exp(np.mean([np.log(r["cost"][k]) for r in rows]))) for k in keys[1:]}
    print(f"{'geometric mean':<22} {'':>3} {'':>10} {'':>10} "
          f"{float(np.exp(np.mean([np.log(r['ratio']) for r in rows]))):>11.3f} {'':>6} | "
          + " ".join(f"{geo[k]:>13.3f}" for k in keys[1:]))


if __name__ == "__main__":
    main()
