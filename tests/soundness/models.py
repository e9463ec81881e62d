"""Model makers shared by the soundness battery and the forward / attack tests.

Random small networks (with optional large weights and biases that saturate
the gates) and loaders for the trained digits classifiers in ``tests/data``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from popqorn_fast import Dense, GRUWeights, LSTMWeights, RecurrentClassifier, RecurrentLayer, RNNWeights

DATA = Path(__file__).resolve().parent.parent / "data"
TRAINED = sorted(p.name for p in DATA.glob("*.npz"))
KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")


def random_weights(rng: np.random.Generator, kind: str, n: int, s: int, C: int,
                   scale: float = 1.0, bias_scale: float = 0.5,
                   random_state: bool = False) -> Any:
    """A random model; ``kind`` in :data:`KINDS`.

    ``scale`` multiplies the Glorot-like weight scale (large values saturate
    tanh / sigmoid); ``bias_scale`` is the bias standard deviation.
    ``random_state`` draws non-zero ``h0`` (and ``c0``).
    """
    G = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[kind]
    w_ih = rng.normal(size=(G * s, n)) * scale / np.sqrt(n)
    w_hh = rng.normal(size=(G * s, s)) * scale / np.sqrt(s)
    b_ih = rng.normal(size=G * s) * bias_scale
    b_hh = rng.normal(size=G * s) * bias_scale
    ow = rng.normal(size=(C, s)) / np.sqrt(s)
    ob = rng.normal(size=C) * 0.1
    h0 = rng.normal(size=s) * 0.5 if random_state else None
    if kind.startswith("rnn"):
        return RNNWeights(w_ih, w_hh, b_ih, b_hh, ow, ob, activation=kind[4:], h0=h0)
    if kind == "lstm":
        c0 = rng.normal(size=s) if random_state else None
        return LSTMWeights(w_ih, w_hh, b_ih, b_hh, ow, ob, h0=h0, c0=c0)
    return GRUWeights(w_ih, w_hh, b_ih, b_hh, ow, ob, h0=h0)


def random_general(rng: np.random.Generator, kinds: list[str], bidirectional: list[bool], n: int,
                   widths: list[int], C: int, readout: str, head_hidden: list[tuple[int, Any]],
                   frame: list[tuple[int, Any]], scale: float = 1.0, bias_scale: float = 0.5) -> RecurrentClassifier:
    """A random RecurrentClassifier: recurrent layers of ``kinds`` (in :data:`KINDS`) with hidden
    sizes ``widths``, each bidirectional or not; frame layers and hidden head layers given as
    (width, activation); weights scaled as in :func:`random_weights`."""
    def dense(i: int, o: int, act: Any) -> Dense:
        return Dense(rng.normal(size=(o, i)) * scale / np.sqrt(i), rng.normal(size=o) * bias_scale, act)

    frames, width = [], n
    for o, act in frame:
        frames.append(dense(width, o, act))
        width = o
    layers = []
    for kind, bi, s in zip(kinds, bidirectional, widths):
        G = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[kind]

        def direction() -> tuple:
            return (rng.normal(size=(G * s, width)) * scale / np.sqrt(width),
                    rng.normal(size=(G * s, s)) * scale / np.sqrt(s),
                    rng.normal(size=G * s) * bias_scale, rng.normal(size=G * s) * bias_scale)

        fwd = direction()
        layers.append(RecurrentLayer(kind[:3] if kind.startswith("rnn") else kind, *fwd,
                                     activation=kind[4:] if kind.startswith("rnn") else "tanh",
                                     reverse=direction() if bi else None))
        width = layers[-1].output_size
    head = []
    for o, act in head_hidden:
        head.append(dense(width, o, act))
        width = o
    head.append(dense(width, C, None))
    return RecurrentClassifier(tuple(layers), tuple(head), readout=readout, frame_layers=tuple(frames))


def load_trained(name: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """``(weights, X, y)`` for a file in ``tests/data`` (X as float64)."""
    d = np.load(DATA / name)
    kind = str(d["kind"])
    cls = {"rnn": RNNWeights, "lstm": LSTMWeights, "gru": GRUWeights}[kind]
    kw = {"activation": str(d["activation"])} if kind == "rnn" else {}
    w = cls.from_pytorch({k: d[k] for k in d.files}, **kw)
    return w, np.asarray(d["X"], dtype=np.float64), np.asarray(d["y"])
