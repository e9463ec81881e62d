"""Dev only (needs torch): the float64 logits PyTorch computes for the trained general models
in tests/data/general, from the very modules their state_dicts belong to.

Rebuilds each module as documented for these models (frontend, encoder, classifier; batch_first;
readout "last" / "last_step" / "mean"), loads the stored state_dict, converts it to float64,
and writes tests/data/general/torch_logits.npz: one array per model, logits of its stored X.
tests/test_general.py compares popqorn_fast's forward pass with them to 1e-10.

    python tools/make_general_logits.py
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "general"
ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class Net(nn.Module):
    def __init__(self, cfg: dict, n: int, classes: int = 10) -> None:
        super().__init__()
        self.cfg = cfg
        width = n
        if cfg.get("frame"):
            mods = []
            for w in cfg["frame"]:
                mods += [nn.Linear(width, w), ACT[cfg.get("frame_act", "relu")]()]
                width = w
            self.frontend = nn.Sequential(*mods)
        cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cfg["kind"]]
        kw = {"nonlinearity": cfg.get("act", "tanh")} if cfg["kind"] == "rnn" else {}
        self.encoder = cls(width, cfg["h"], num_layers=cfg["layers"], bidirectional=cfg["bi"],
                           batch_first=True, **kw)
        feat = cfg["h"] * (2 if cfg["bi"] else 1)
        if cfg["head"]:
            mods, width = [], feat
            for w in cfg["head"]:
                mods += [nn.Linear(width, w), ACT[cfg.get("head_act", "relu")]()]
                width = w
            self.classifier = nn.Sequential(*mods, nn.Linear(width, classes))
        else:
            self.classifier = nn.Linear(feat, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.get("frame"):
            x = self.frontend(x)
        out, h_n = self.encoder(x)
        if isinstance(h_n, tuple):
            h_n = h_n[0]
        feat = {"last": (torch.cat([h_n[-2], h_n[-1]], 1) if self.cfg["bi"] else h_n[-1]),
                "last_step": out[:, -1], "mean": out.mean(1)}[self.cfg["readout"]]
        return self.classifier(feat)


def main() -> None:
    out = {}
    for path in sorted(DATA.glob("*.npz")):
        if path.name == "torch_logits.npz":
            continue
        d = np.load(path)
        cfg = json.loads(str(d["config"]))
        X = torch.tensor(np.asarray(d["X"], dtype=np.float64))
        net = Net(cfg, X.shape[2])
        sd = {k: torch.tensor(d[k]) for k in d.files if k not in ("X", "y", "config")}
        net.load_state_dict(sd)
        net = net.double().eval()
        with torch.no_grad():
            out[path.stem] = net(X).numpy()
    np.savez(DATA / "torch_logits.npz", **out)
    print(f"wrote {DATA / 'torch_logits.npz'}: {sorted(out)}")


if __name__ == "__main__":
    main()
