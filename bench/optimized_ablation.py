"""What each technique of planes="optimized" gives (issue 11), against auto_LiRPA CROWN.

For the trained models, the first ten inputs, p = 2 and inf, prints the mean
certified ε as a ratio to the CROWN radii (tests/data/lirpa_crown_eps.json, copied from
the shared reference) with the smallest per-input ratio, for:

- exact: POPQORN's volume-minimal planes (the default);
- GRU only, shared z: σ(y^z) relaxed once (RECURRENCES.md §4 "GRU, shared z"), exact planes;
- margins: own planes (RNN: lines) per margin row (best responses), intermediate bounds as above;
- optimized: also every intermediate interval refined by its own rows (the public method).

"exact" and "optimized" run through the public certify (their seconds per input are the
user's); the other two through the core's hidden keywords with a plain radius search.

    python bench/optimized_ablation.py [--inputs 10] [--md bench/results/...md]
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
from popqorn_fast import _core
from popqorn_fast.backend import pass_arguments
from popqorn_fast.bisection import search_radius
from popqorn_fast.specification import fold_specification, margin_classes

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
MODELS = ("lstm_T8_h16", "lstm_T4_h24", "gru_T8_h16", "gru_T4_h24", "rnn_tanh_T16_h16", "rnn_relu_T4_h16")


def core_radius(w, x, label: int, p: float, planes: str, **kw) -> float:
    """Certified radius with the core's hidden keywords (plain margin-guided search)."""
    classes = margin_classes(label, w.num_classes, None)
    sw, sb = fold_specification(w.out_weight, w.out_bias, label, classes)
    mask = np.ones(x.shape[0], bool)
    fn = getattr(_core, f"{w.kind}_bounds")
    if w.kind == "rnn":  # the RNN core takes planes as a keyword (backend._core_pass)
        kw = dict(kw, planes=planes)
    logits = w.logits(x)
    clean = float(np.min(logits[label] - logits[classes]))

    def probe(eps: float) -> float:
        return float(np.min(fn(*pass_arguments(w, x, eps, p, mask, sw, sb, planes), **kw)["lower"]))

    return search_radius(probe, 10.0, 1e-3, margin_at_zero=clean).eps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=10)
    ap.add_argument("--md", help="append the table as Markdown to this file")
    args = ap.parse_args()
    crown = json.loads((DATA / "lirpa_crown_eps.json").read_text())["crown"]
    head = "| model | p | method | mean ε* | mean ratio to CROWN | min ratio | s/input |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    print(head, flush=True)
    for name in MODELS:
        w = pf.load_model(DATA / f"{name}.npz")
        X, y = pf.load_inputs(DATA / f"{name}.npz")
        for norm in ("2", "inf"):
            p = float(norm)
            idx = [int(i) for i in list(crown[name][norm])[:args.inputs]]
            ref = np.array([crown[name][norm][str(i)] for i in idx])
            methods = [("exact", lambda x, lab: pf.certify(w, x, 10.0, p=norm, label=lab).eps)]
            if w.kind == "gru":
                methods.append(("shared z", lambda x, lab: core_radius(w, x, lab, p, "exact", gru_shared_z=True)))
            methods.append(("margins", lambda x, lab: core_radius(w, x, lab, p, "optimized", opt_inter=0)))
            methods.append(("optimized", lambda x, lab: pf.certify(w, x, 10.0, p=norm, label=lab,
                                                                   planes="optimized").eps))
            for mname, fn in methods:
                t0 = time.perf_counter()
                eps = np.array([fn(X[i], int(y[i])) for i in idx])
                secs = (time.perf_counter() - t0) / len(idx)
                r = eps / ref
                row = (f"| {name} | {norm} | {mname} | {eps.mean():.6g} | {eps.mean() / ref.mean():.4f} | "
                       f"{r.min():.4f} | {secs:.3f} |")
                print(row, flush=True)
                lines.append(row)
    if args.md:
        with open(args.md, "a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
