"""GRU: certified radii with today's two-plane relaxation ("exact"), the shared-z relaxation
with exact planes, and "optimized" planes (shared z + per-row slopes), next to auto_LiRPA
CROWN (tests/data/lirpa_crown_eps.json). RECURRENCES.md §4 "GRU, shared z (optimized)".

The hidden core options are reached by routing the public certify's bound passes
(backend._core_pass) through _core.gru_bounds with the mode's keywords.

    python bench/gru_shared_z.py [--models gru_T8_h16 gru_T4_h24] [--norms 2 inf] [--count 10]
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
from popqorn_fast import _core, backend

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
MODES = {"exact": ("exact", {}), "shared_z_exact": ("exact", {"gru_shared_z": True}),
         "optimized": ("optimized", {})}


def use_mode(mode: str) -> None:
    planes, kw = MODES[mode]

    def patched(weights, x, eps, p, mask, spec_w, spec_b, _planes, want_states):
        args = backend.pass_arguments(weights, x, eps, p, mask, spec_w, spec_b, planes, want_states)
        return _core.gru_bounds(*args, **kw)
    backend._core_pass = patched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["gru_T8_h16", "gru_T4_h24"])
    ap.add_argument("--norms", nargs="*", default=["2", "inf"])
    ap.add_argument("--count", type=int, default=10)
    args = ap.parse_args()
    crown = json.loads((DATA / "lirpa_crown_eps.json").read_text())["crown"]
    print("| model | p | mode | mean ε* | mean ratio vs exact | min ratio vs exact "
          "| mean ratio vs CROWN | min ratio vs CROWN | s/input |")
    print("|" + "---|" * 9)
    for name in args.models:
        w = pf.load_model(DATA / f"{name}.npz")
        X, y = pf.load_inputs(DATA / f"{name}.npz")
        idx = [i for i in range(len(X)) if int(np.argmax(w.logits(X[i].astype(np.float64)))) == int(y[i])]
        idx = idx[:args.count]
        for norm in args.norms:
            ref = np.array([crown[name][norm][str(i)] for i in idx])
            base = None
            for mode in MODES:
                use_mode(mode)
                eps, secs = [], []
                for i in idx:
                    t0 = time.perf_counter()
                    eps.append(pf.certify(w, X[i].astype(np.float64), 10.0, p=norm, label=int(y[i])).eps)
                    secs.append(time.perf_counter() - t0)
                eps = np.array(eps)
                base = eps if base is None else base
                print(f"| {name} | {norm} | {mode} | {eps.mean():.5f} | {np.mean(eps / base):.4f} | "
                      f"{np.min(eps / base):.4f} | {np.mean(eps / ref):.4f} | {np.min(eps / ref):.4f} | "
                      f"{np.mean(secs):.3f} |", flush=True)
            print(f"| {name} | {norm} | CROWN | {ref.mean():.5f} | | | 1 | 1 | |  inputs {idx}", flush=True)


if __name__ == "__main__":
    main()
