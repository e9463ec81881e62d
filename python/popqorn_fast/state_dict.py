"""A PyTorch module's state_dict, under any attribute names, as a RecurrentClassifier
(docs/API.md "General models", ``RecurrentClassifier.from_pytorch``).

Rules:

* the ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` parameters are the keys ending in
  ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (and ``_reverse``),
  all under one prefix (``encoder.``, ``rnn.``, or none); the kind comes from the gate count
  (rows of ``weight_hh`` / its columns: 1 RNN, 4 LSTM, 3 GRU), the number of layers and the
  directions from the keys;
* the Linear layers (``P.weight`` 2-D with an optional ``P.bias``) stored after them form the
  head (``head_activation`` between them), those stored before them the frame layers
  (``frame_activation`` after each); a state_dict keeps the modules' registration order;
* entries that are not parameters (``X``, ``y``, ``config``, ``kind``, ... : keys without a
  dot-separated parameter name) are ignored; any other parameter is refused by name.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional

import numpy as np

from .general import KINDS, Dense, RecurrentClassifier, RecurrentLayer

_REC = re.compile(r"^(?P<prefix>.*?)(?P<name>weight_ih|weight_hh|bias_ih|bias_hh)_l(?P<layer>\d+)(?P<rev>_reverse)?$")
_LIN = re.compile(r"^(?P<prefix>.+)\.(?P<name>weight|bias)$")
# entries that datasets and exporters store beside the parameters
_NON_PARAMETERS = {"X", "y", "config", "kind", "activation", "readout", "head_activation",
                   "frame_activation", "labels", "meta"}


def classifier_from_state_dict(state_dict: Mapping[str, Any], *, readout: str = "last",
                               activation: str = "tanh", head_activation: Optional[str] = "relu",
                               frame_activation: Optional[str] = "relu") -> RecurrentClassifier:
    """Build a :class:`RecurrentClassifier` from a module's state_dict.

    Parameters
    ----------
    state_dict : mapping of str to array_like
        As ``module.state_dict()`` gives it (or ``np.load`` of ``np.savez(**sd)``), in
        registration order. Values: anything ``np.asarray`` takes (tensors via ``.numpy()``).
    readout : {"last", "last_step", "mean"}
    activation : {"tanh", "relu"}
        The RNN nonlinearity (``nn.RNN(nonlinearity=...)``); LSTM/GRU ignore it.
    head_activation, frame_activation : {None, "relu", "tanh", "sigmoid"}
        Between head layers; after every frame layer.

    Returns
    -------
    RecurrentClassifier

    Raises
    ------
    ValueError
        No recurrent parameters, two recurrent modules, a gap in the layer numbering, a
        layer missing one of its four arrays, no Linear head, or an unsupported parameter.
    """
    if not hasattr(state_dict, "keys"):
        raise ValueError(f"state_dict must be a mapping of names to arrays, got {type(state_dict).__name__}")
    keys = [str(k) for k in state_dict.keys()]
    rec: dict[tuple[int, bool], dict[str, Any]] = {}
    prefixes: dict[str, int] = {}
    first_rec = last_rec = None
    linear: list[tuple[int, str]] = []     # (position, module prefix) of Linear weights
    others = []
    for pos, k in enumerate(keys):
        m = _REC.match(k)
        if m:
            prefixes.setdefault(m["prefix"], pos)
            rec.setdefault((int(m["layer"]), bool(m["rev"])), {})[m["name"]] = state_dict[k]
            first_rec = pos if first_rec is None else first_rec
            last_rec = pos
            continue
        m = _LIN.match(k)
        if m:
            if m["name"] == "weight":
                linear.append((pos, m["prefix"]))
            elif m["prefix"] + ".weight" not in state_dict:
                others.append(k)
            continue
        if k in _NON_PARAMETERS or "." not in k:
            continue
        others.append(k)
    if not rec:
        raise ValueError(f"no recurrent parameters (keys ending in weight_ih_l0, weight_hh_l0, bias_ih_l0, "
                         f"bias_hh_l0) in the state_dict; found keys {keys}")
    if len(prefixes) > 1:
        raise ValueError(f"the state_dict holds {len(prefixes)} recurrent modules (prefixes "
                         f"{sorted(prefixes)}); only one recurrent module (with any number of layers) "
                         f"is supported")
    if others:
        raise ValueError(f"unsupported parameters {others}: only one nn.RNN/LSTM/GRU module and "
                         f"nn.Linear layers (before it: frame layers; after it: the head) are understood")
    prefix = next(iter(prefixes))
    layers_idx = sorted({l for l, _ in rec})
    if layers_idx != list(range(len(layers_idx))):
        raise ValueError(f"recurrent layers numbered {layers_idx} under prefix {prefix!r}: a gap in the "
                         f"layer numbering (expected l0..l{len(layers_idx) - 1})")
    bidir = any(r for _, r in rec)
    layers = []
    for l in layers_idx:
        dirs = []
        for r in ((False, True) if bidir else (False,)):
            parts = rec.get((l, r), {})
            missing = [n for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if n not in parts]
            if missing:
                names = [f"{prefix}{n}_l{l}{'_reverse' if r else ''}" for n in missing]
                raise ValueError(f"recurrent layer {l}{' (reverse)' if r else ''} is incomplete: missing "
                                 f"{names}")
            dirs.append(tuple(np.asarray(parts[n]) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        w_hh = np.asarray(dirs[0][1])
        if w_hh.ndim != 2 or w_hh.shape[1] == 0 or w_hh.shape[0] % w_hh.shape[1]:
            raise ValueError(f"{prefix}weight_hh_l{l} has shape {w_hh.shape}; expected (G*s, s)")
        G = w_hh.shape[0] // w_hh.shape[1]
        kind = {g: k for k, g in KINDS.items()}.get(G)
        if kind is None:
            raise ValueError(f"{prefix}weight_hh_l{l} has shape {w_hh.shape}: {G} gates stacked is no "
                             f"RNN (1), GRU (3) or LSTM (4)")
        layers.append(RecurrentLayer(kind, *dirs[0], activation=activation if kind == "rnn" else "tanh",
                                     reverse=dirs[1] if bidir else None))

    def dense(prefix_: str, act: Optional[str]) -> Dense:
        w = np.asarray(state_dict[prefix_ + ".weight"])
        b = state_dict.get(prefix_ + ".bias") if hasattr(state_dict, "get") else None
        if b is None and prefix_ + ".bias" in keys:
            b = state_dict[prefix_ + ".bias"]
        if w.ndim != 2:
            raise ValueError(f"{prefix_}.weight has shape {w.shape}; a Linear layer's weight is 2-D")
        return Dense(w, np.zeros(w.shape[0]) if b is None else np.asarray(b), act)

    before = [p for pos, p in linear if pos < first_rec]
    after = [p for pos, p in linear if pos > last_rec]
    if not after:
        raise ValueError(f"no Linear head after the recurrent module {prefix!r}: expected keys like "
                         f"'fc.weight', 'fc.bias' stored after it; found {keys}")
    frame = tuple(dense(p, frame_activation) for p in before)
    head = tuple(dense(p, head_activation if i + 1 < len(after) else None) for i, p in enumerate(after))
    return RecurrentClassifier(tuple(layers), head, readout=readout, frame_layers=frame)
