"""Train the bundled default model: an LSTM digit classifier, rows as frames.

scikit-learn's 8x8 digits, pixels scaled to [0, 1] (/16), each image read as
T = 8 frames (its rows) of n = 8 values; one torch nn.LSTM layer (hidden size
16, zero initial state) and a linear head on the last hidden state, trained
with Adam. Writes python/popqorn_fast/data/default_model.npz with the PyTorch
parameter names, ``kind``, and the first 20 held-out test images (``X``, ``y``)
as the bundled inputs.

Development only: needs torch (``pip install torch==2.13.0``) and scikit-learn.
Usage: python tools/train_default.py [--kind lstm|gru|rnn] [--out PATH]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits


class Net(nn.Module):
    def __init__(self, kind: str, n: int, h: int) -> None:
        super().__init__()
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.cell = cls(n, h, batch_first=True)
        self.out = nn.Linear(h, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, _ = self.cell(x)
        return self.out(r[:, -1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", default="lstm", choices=["rnn", "lstm", "gru"])
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1]
                                         / "python/popqorn_fast/data/default_model.npz"))
    args = ap.parse_args()

    torch.manual_seed(7)
    rng = np.random.default_rng(7)
    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)  # (1797, 8, 8): 8 frames (rows) of 8 pixels
    y = d.target.astype(np.int64)
    perm = rng.permutation(len(X))
    X, y = X[perm], y[perm]
    Xtr, ytr, Xte, yte = X[:1500], y[:1500], X[1500:], y[1500:]

    net = Net(args.kind, 8, args.hidden)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    xt, yt = torch.tensor(Xtr), torch.tensor(ytr)
    for _ in range(args.epochs):
        idx = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            b = idx[i:i + 64]
            loss = nn.functional.cross_entropy(net(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = float((net(torch.tensor(Xte)).argmax(1).numpy() == yte).mean())
    sd = {k: v.detach().numpy() for k, v in net.cell.state_dict().items()}
    sd["out.weight"] = net.out.weight.detach().numpy()
    sd["out.bias"] = net.out.bias.detach().numpy()
    np.savez_compressed(args.out, kind=args.kind, activation="tanh", X=Xte[:20], y=yte[:20],
                        test_accuracy=acc, **sd)
    print(f"{args.kind} h={args.hidden}: test accuracy {acc:.3f} on {len(Xte)} images -> {args.out}")


if __name__ == "__main__":
    main()
