"""Plain NumPy forward passes of the RNN / LSTM / GRU classifiers."""
from __future__ import annotations

from typing import Any

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def final_hidden(w: Any, x: np.ndarray) -> np.ndarray:
    """Last hidden state for a batch ``x`` of shape ``(N, T, n)`` -> ``(N, s)``."""
    N = x.shape[0]
    s = w.hidden_size
    h = np.broadcast_to(w.h0, (N, s)).copy()
    if w.kind == "lstm":
        c = np.broadcast_to(w.c0, (N, s)).copy()
    for t in range(x.shape[1]):
        gi = x[:, t, :] @ w.weight_ih.T + w.bias_ih
        gh = h @ w.weight_hh.T + w.bias_hh
        if w.kind == "rnn":
            z = gi + gh
            h = np.tanh(z) if w.activation == "tanh" else np.maximum(z, 0.0)
        elif w.kind == "lstm":
            y = gi + gh
            i, f, g, o = np.split(y, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        else:
            ir, iz, inn = np.split(gi, 3, axis=1)
            hr, hz, hn = np.split(gh, 3, axis=1)
            r = _sigmoid(ir + hr)
            zg = _sigmoid(iz + hz)
            nn = np.tanh(inn + r * hn)
            h = (1.0 - zg) * nn + zg * h
    return h


def logits(w: Any, x: Any) -> np.ndarray:
    """Logits for ``x`` of shape ``(T, n)`` -> ``(C,)`` or ``(N, T, n)`` -> ``(N, C)``."""
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == 2
    if single:
        x = x[None]
    if x.ndim != 3 or x.shape[2] != w.input_size:
        raise ValueError(f"x has shape {np.shape(x)}; expected (T, {w.input_size}) or (N, T, {w.input_size})")
    out = final_hidden(w, x) @ w.out_weight.T + w.out_bias
    return out[0] if single else out
