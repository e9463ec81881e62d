"""A worked word-substitution example: an embedding + LSTM sentiment classifier, synonym sets
from nearest neighbours in its own embedding, certified accuracy against the budget δ.

Synthetic and small, so that it runs anywhere in seconds without torch: a vocabulary of V
words in synonym groups, each group with a sentiment in {−1, 0, +1} and a point in the embedding
(sentiment direction plus noise), its words scattered around it;
a sentence is T random words, labelled positive when its sentiments sum above 0. The model is
an LSTM (fixed random weights, mean readout) whose linear head is trained by logistic
regression on its features. Synonyms of a word: its k nearest neighbours in the embedding
(mostly its group's other words). For each budget δ:
the certified accuracy (certify_substitutions: robust and correct) and the accuracy under a
beam-search attack (search_substitutions) — a lower and an upper bound of the true robust
accuracy.

    python bench/text_substitutions.py [--words 60] [--dim 16] [--T 8] [--k 4] [--test 200]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import popqorn_fast as pf
from popqorn_fast.general_forward import general_states
from popqorn_fast.substitutions import search_substitutions


def make_data(rng: np.random.Generator, V: int, dim: int, T: int, N: int, group: int, spread: float) -> tuple:
    """Words in synonym groups of ``group`` (a group shares a sentiment and lies around one
    point, ``spread`` apart); sentences of T random words, labelled by the sign of their
    sentiments' sum (ties dropped)."""
    G = V // group
    senti_g = np.resize(np.array([-1.0, 0.0, 1.0]), G)
    u = rng.normal(size=dim)
    u /= np.linalg.norm(u)
    centre = senti_g[:, None] * u[None, :] + rng.normal(size=(G, dim)) / np.sqrt(dim)
    E = np.repeat(centre, group, axis=0) + spread * rng.normal(size=(G * group, dim)) / np.sqrt(dim)
    senti = np.repeat(senti_g, group)
    toks, labels = [], []
    while len(toks) < N:
        s = rng.integers(0, len(E), size=T)
        tot = senti[s].sum()
        if tot != 0:
            toks.append(s)
            labels.append(int(tot > 0))
    return E, np.array(toks), np.array(labels)


def train_head(rng: np.random.Generator, E: np.ndarray, toks: np.ndarray, y: np.ndarray, h: int) -> pf.RecurrentClassifier:
    dim = E.shape[1]
    lstm = pf.RecurrentLayer("lstm", rng.normal(size=(4 * h, dim)) / np.sqrt(dim),
                             rng.normal(size=(4 * h, h)) / np.sqrt(h), 0.1 * rng.normal(size=4 * h),
                             np.zeros(4 * h))
    probe = pf.RecurrentClassifier([lstm], [pf.Dense(np.zeros((2, h)), np.zeros(2))], readout="mean")
    F = general_states(probe, E[toks])["L0f_hidden"].mean(axis=1)
    W, b = np.zeros((2, h)), np.zeros(2)
    Y = np.eye(2)[y]
    for _ in range(3000):  # softmax regression, full batch
        z = F @ W.T + b
        P = np.exp(z - z.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        G = (P - Y) / len(F)
        W -= 2.0 * (G.T @ F + 1e-4 * W)
        b -= 2.0 * G.sum(0)
    return pf.RecurrentClassifier([lstm], [pf.Dense(W, b)], readout="mean")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--words", type=int, default=60)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--T", type=int, default=8)
    ap.add_argument("--k", type=int, default=2, help="synonyms per word (nearest neighbours)")
    ap.add_argument("--group", type=int, default=3, help="words per synonym group in the synthetic vocabulary")
    ap.add_argument("--spread", type=float, default=0.15, help="distance scale of a group's words")
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--budgets", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    E, toks, y = make_data(rng, args.words, args.dim, args.T, 2000 + args.test, args.group, args.spread)
    model = train_head(rng, E, toks[:2000], y[:2000], args.hidden)
    Xte, yte = E[toks[2000:]], y[2000:]
    acc = float(np.mean(np.argmax(model.logits(Xte), 1) == yte))
    D = np.linalg.norm(E[:, None] - E[None], axis=-1)
    np.fill_diagonal(D, np.inf)
    syn = np.argsort(D, axis=1)[:, :args.k]
    print(f"# {args.words} words in R^{args.dim}, T = {args.T}, LSTM h = {args.hidden} (mean readout), "
          f"{args.k} synonyms per word; clean test accuracy {acc:.3f} on {len(yte)} sentences")
    print(f"{'budget':>6} {'certified acc':>13} {'attacked acc':>12} {'s per input (certify + attack)':>31}")
    for delta in args.budgets:
        cert = attacked = 0
        t0 = time.perf_counter()
        for i in range(len(yte)):
            cands = [E[syn[w]] for w in toks[2000 + i]]
            c = pf.certify_substitutions(model, Xte[i], cands, delta, label=int(yte[i]))
            cert += c.robust
            if not c.misclassified:
                attacked += not search_substitutions(model, Xte[i], cands, delta, label=int(yte[i]), beam=8).success
        dt = (time.perf_counter() - t0) / len(yte)
        print(f"{delta:>6} {cert / len(yte):>13.3f} {attacked / len(yte):>12.3f} {dt:>31.4f}")


if __name__ == "__main__":
    main()
