"""An explicit PyTorch twin of any popqorn_fast model, for running other verifiers beside it
(dev only: needs torch). Every cell is written out step by step with the same equations
the core relaxes (docs/GENERAL.md, docs/RECURRENCES.md), so that a verifier that traces
the module (auto_LiRPA) sees the same operators: frame layers, each layer's directions
unrolled over T frames (each frame a separate (1, n) input, so that each frame can have
its own ball), the readout ("last", "last_step", "mean") and the head.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from popqorn_fast.general import as_general


def unrolled_module(model: Any, T: int):
    """A torch module computing ``model.logits(x)`` from T frames, each of shape (1, n)."""
    import torch
    from torch import nn

    g = as_general(model)
    f32 = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    acts = {None: lambda v: v, "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}

    def linear(W, b=None):
        m = nn.Linear(W.shape[1], W.shape[0], bias=b is not None)
        with torch.no_grad():
            m.weight.copy_(f32(W))
            if b is not None:
                m.bias.copy_(f32(b))
        return m

    class Direction(nn.Module):
        """One direction of one layer: its gates as separate Linear maps."""

        def __init__(self, kind: str, wih, whh, bih, bhh, activation: str, h0, c0):
            super().__init__()
            self.kind, self.act = kind, acts[activation]
            s = whh.shape[1]
            sl = lambda a, k: a[k * s:(k + 1) * s]  # noqa: E731
            G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
            if kind == "gru":   # the n gate keeps b_hn inside the reset product (PyTorch)
                self.ih = nn.ModuleList([linear(sl(wih, 0), sl(bih, 0) + sl(bhh, 0)),
                                         linear(sl(wih, 1), sl(bih, 1) + sl(bhh, 1)), linear(sl(wih, 2), sl(bih, 2))])
                self.hh = nn.ModuleList([linear(sl(whh, 0)), linear(sl(whh, 1)), linear(sl(whh, 2), sl(bhh, 2))])
                self.register_buffer("b_hn", f32(sl(bhh, 2)).unsqueeze(0))
            else:
                b = bih + bhh
                self.ih = nn.ModuleList([linear(sl(wih, k), sl(b, k)) for k in range(G)])
                self.hh = nn.ModuleList([linear(sl(whh, k)) for k in range(G)])
            if (h0 is not None and np.any(h0)) or (c0 is not None and np.any(c0)):
                raise ValueError("nonzero initial states are not encoded here")

        def step(self, x, h, c):
            """One step from (h, c) (None: the zero initial state)."""
            pre = [self.ih[k](x) if h is None else self.ih[k](x) + self.hh[k](h) for k in range(len(self.ih))]
            if self.kind == "rnn":
                return self.act(pre[0]), None
            if self.kind == "lstm":
                i, f, gg, o = torch.sigmoid(pre[0]), torch.sigmoid(pre[1]), torch.tanh(pre[2]), torch.sigmoid(pre[3])
                c = i * gg if c is None else f * c + i * gg
                return o * torch.tanh(c), c
            if h is None:
                r, z = torch.sigmoid(self.ih[0](x)), torch.sigmoid(self.ih[1](x))
                return (1 - z) * torch.tanh(self.ih[2](x) + r * self.b_hn), None
            r, z = torch.sigmoid(pre[0]), torch.sigmoid(pre[1])
            n = torch.tanh(self.ih[2](x) + r * self.hh[2](h))
            return (1 - z) * n + z * h, None   # PyTorch's form (the relaxation depends on it)

        def run(self, xs, backward: bool):
            order = range(len(xs) - 1, -1, -1) if backward else range(len(xs))
            out, h, c = [None] * len(xs), None, None
            for t in order:
                h, c = self.step(xs[t], h, c)
                out[t] = h
            return out

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.frame = nn.ModuleList([linear(d.weight, d.bias) for d in g.frame_layers])
            self.frame_act = [d.activation for d in g.frame_layers]
            self.dirs = nn.ModuleList()
            for l in g.layers:
                d = [Direction(l.kind, l.weight_ih, l.weight_hh, l.bias_ih, l.bias_hh, l.activation, l.h0, l.c0)]
                if l.reverse is not None:
                    r = l.reverse
                    d.append(Direction(l.kind, r.weight_ih, r.weight_hh, r.bias_ih, r.bias_hh, l.activation, None, None))
                self.dirs.append(nn.ModuleList(d))
            self.head = nn.ModuleList([linear(d.weight, d.bias) for d in g.head])
            self.head_act = [d.activation for d in g.head]

        def forward(self, *xs):
            xs = list(xs)
            for lin, a in zip(self.frame, self.frame_act):
                xs = [acts[a](lin(x)) for x in xs]
            for dirs in self.dirs:
                outs = [d.run(xs, backward=k == 1) for k, d in enumerate(dirs)]
                last = [o[-1] if k == 0 else o[0] for k, o in enumerate(outs)]  # h_n of each direction
                xs = [torch.cat([o[t] for o in outs], dim=1) if len(outs) > 1 else outs[0][t] for t in range(T)]
            if g.readout == "last":
                feat = torch.cat(last, dim=1) if len(last) > 1 else last[0]
            elif g.readout == "last_step":
                feat = xs[-1]
            else:
                feat = sum(xs[1:], xs[0]) * (1.0 / T)
            for lin, a in zip(self.head, self.head_act):
                feat = acts[a](lin(feat))
            return feat

    return Twin().eval()
