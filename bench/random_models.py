"""Write bench/run.py's random models (PyTorch-like initialisation) as .npz files in the layout
`popqorn_fast.load_model` reads, with their 8 inputs and predicted labels, so that another
verifier can run on exactly the models of bench/sizes_speed.py:

    python bench/random_models.py --out m                       # the six sizes and the RNN
    PYTHONPATH=python:<auto_LiRPA> python bench/compare_auto_lirpa.py \
        --models m/lstm_T8_h128.npz m/gru_T8_h128.npz --norms 2 -n 1 --planes exact exact:sound32
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import random_model  # noqa: E402

SIZES = ["lstm:8:128", "lstm:8:256", "lstm:16:64", "gru:8:128", "gru:8:256", "gru:16:64", "rnn:8:64"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the .npz files (created)")
    ap.add_argument("--sizes", nargs="*", default=SIZES, help="kind:T:h, default the issue's sizes and rnn:8:64")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in args.sizes:
        kind, T, h = spec.split(":")
        w, X = random_model(kind, int(T), int(h), 8, seed=args.seed)
        y = np.array([int(np.argmax(w.logits(x))) for x in X])
        path = out / f"{kind}_T{T}_h{h}.npz"
        np.savez(path, kind=np.array(kind), activation=np.array("tanh"), X=X, y=y,
                 weight_ih_l0=w.weight_ih, weight_hh_l0=w.weight_hh, bias_ih_l0=w.bias_ih,
                 bias_hh_l0=w.bias_hh, **{"out.weight": w.out_weight, "out.bias": w.out_bias})
        print(path)


if __name__ == "__main__":
    main()
