"""Issue 17, the aimed first probe of the radius search (certify.aimed_start, RECURRENCES.md §5):
bound passes and seconds per search with a fixed first probe (0.1) and the aimed one, same run
(interleaved per input), one thread, p = 2 and inf, first 10 inputs (3 with "optimized"), on
the trained one-layer and general models of tests/data and the random goal-size models.

    python bench/aimed_start.py [exact|optimized]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import importlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
import popqorn_fast as pf  # noqa: E402
from test_general import CROWN, load_general  # noqa: E402
from test_oracle_agreement import DATA  # noqa: E402

C = importlib.import_module("popqorn_fast.certify")


def models():
    for name in ("lstm_T8_h16", "lstm_T4_h24", "gru_T8_h16", "gru_T4_h24", "rnn_tanh_T16_h16", "rnn_relu_T4_h16"):
        d = np.load(DATA / f"{name}.npz")
        kind = str(d["kind"])
        cls = {"rnn": pf.RNNWeights, "lstm": pf.LSTMWeights, "gru": pf.GRUWeights}[kind]
        kw = dict(activation=str(d["activation"])) if kind == "rnn" else {}
        w = cls(d["weight_ih_l0"], d["weight_hh_l0"], d["bias_ih_l0"], d["bias_hh_l0"], d["out.weight"], d["out.bias"], **kw)
        yield name, w, d["X"][:10]
    for name in sorted(CROWN):
        m, X, y = load_general(name)
        yield name, m, X[:10]
    from run import random_model
    for kind, T, s in [("lstm", 8, 32), ("gru", 8, 32), ("rnn", 8, 64)]:
        w, X = random_model(kind, T, s, 8)
        yield f"rand_{kind}_T{T}_h{s}", w, X


def main() -> None:
    aimed = C.aimed_start
    planes = sys.argv[1] if len(sys.argv) > 1 else "exact"
    tot = []
    for name, w, X in models():
        R = []
        for p in (2, "inf"):
            for x in X[:10 if planes == "exact" else 3]:
                row = []
                for f in (lambda pr: 0.1, aimed):
                    C.aimed_start = f
                    t0 = time.perf_counter(); c = pf.certify(w, x, p=p, planes=planes); row += [c.eps, c.bound_passes, time.perf_counter() - t0]
                if row[0] > 0: R.append(row)
        C.aimed_start = aimed
        R = np.array(R)
        print(f"{name:22s} passes {R[:,1].mean():.2f} -> {R[:,4].mean():.2f}  s/search {R[:,2].mean():.4f} -> {R[:,5].mean():.4f}  eps aimed/fixed [{(R[:,3]/R[:,0]).min():.4f}, {(R[:,3]/R[:,0]).max():.4f}]", flush=True)
        tot.append((R[:,1].mean(), R[:,4].mean(), R[:,2].mean(), R[:,5].mean()))
    T = np.array(tot)
    print(f"mean over models: passes {T[:,0].mean():.2f} -> {T[:,1].mean():.2f}; time ratio (mean of per-model ratios) {np.mean(T[:,3]/T[:,2]):.3f}")



if __name__ == "__main__":
    main()
