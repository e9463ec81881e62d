"""Plain NumPy forward pass, intermediate states and input gradients of the general
model (:class:`popqorn_fast.general.RecurrentClassifier`).

State names (what ``bound_states`` bounds for a general model; row t = time t):

=====================  ============================================================
``frame{j}_pre``       pre-activation of frame layer j, (T, width)
``L{l}{d}_<name>``     layer l, direction d = "f" (forward) or "b" (backward); name as
                       for one layer (rnn ``pre``/``hidden``; lstm ``gates``/``cell``/
                       ``hidden``; gru ``gates``/``u``/``hidden``), (T, width)
``head{j}_pre``        pre-activation of head layer j, (1, width): every hidden head layer,
                       and the last one when it has an activation
=====================  ============================================================
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .forward import cell_step, cell_step_back, check_cotangent, sigmoid
from .general import Dense, Direction, RecurrentClassifier, RecurrentLayer


def _act(name: Any, z: np.ndarray) -> np.ndarray:
    if name is None:
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    return sigmoid(z)


def _act_grad(name: Any, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d act / dz at z (a = act(z)); ReLU: 1 for z > 0, else 0."""
    if name is None:
        return np.ones_like(z)
    if name == "relu":
        return (z > 0.0).astype(np.float64)
    if name == "tanh":
        return 1.0 - a * a
    return a * (1.0 - a)


def as_batch(model: RecurrentClassifier, x: Any, name: str = "x") -> tuple[np.ndarray, bool]:
    """``x`` as float64 ``(N, T, n)`` and whether it was one input ``(T, n)``."""
    arr = np.asarray(x, dtype=np.float64)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    n = model.input_size
    if arr.ndim != 3 or arr.shape[2] != n or arr.shape[1] < 1:
        raise ValueError(f"{name} has shape {np.shape(x)}; expected (T, {n}) or (N, T, {n}) with T >= 1")
    return arr, single


def _run_direction(layer: RecurrentLayer, d: Direction, X: np.ndarray, backward: bool,
                   h0: Any, c0: Any) -> dict[str, np.ndarray]:
    """One direction over (N, T, n): per-time records (arrays (N, T, width)), indexed by time."""
    N, T, _ = X.shape
    s = layer.hidden_size
    h = np.zeros((N, s)) if h0 is None else np.broadcast_to(h0, (N, s)).copy()
    c = np.zeros((N, s)) if c0 is None else np.broadcast_to(c0, (N, s)).copy()
    names = {"rnn": ("pre", "hidden"), "lstm": ("gates", "cell", "hidden"),
             "gru": ("gates", "u", "hidden")}[layer.kind]
    rec = {k: np.zeros((N, T, (layer.gates if k == "gates" else 1) * s)) for k in names}
    rec["_h_prev"] = np.zeros((N, T, s))
    rec["_c_prev"] = np.zeros((N, T, s))
    for t in (range(T - 1, -1, -1) if backward else range(T)):
        gi = X[:, t, :] @ d.weight_ih.T + d.bias_ih
        gh = h @ d.weight_hh.T + d.bias_hh
        rec["_h_prev"][:, t] = h
        rec["_c_prev"][:, t] = c
        h, c, named = cell_step(layer.kind, layer.activation, gi, gh, h, c)
        for k, v in named.items():
            if k not in rec:  # the backward pass's private records
                rec[k] = np.zeros((N, T, v.shape[1]))
            rec[k][:, t] = v
        rec["hidden"][:, t] = h
    return rec


def _back_direction(layer: RecurrentLayer, d: Direction, X: np.ndarray, rec: dict[str, np.ndarray],
                    g_h: np.ndarray, backward: bool) -> np.ndarray:
    """Cotangent on the inputs (N, T, n) from cotangents ``g_h`` (N, T, s) on every output
    (records of a batch of one broadcast)."""
    N, (_, T, n) = g_h.shape[0], X.shape
    s = layer.hidden_size
    grad = np.zeros((N, T, n))
    gh = np.zeros((N, s))
    gc = np.zeros((N, s))
    for t in (range(T) if backward else range(T - 1, -1, -1)):
        gh = gh + g_h[:, t]
        grad[:, t], gh, gc = cell_step_back(layer.kind, layer.activation, lambda k: rec[k][:, t], gh, gc,
                                            d.weight_ih, d.weight_hh)
    return grad


def _dense_forward(layers: tuple, a: np.ndarray, prefix: str, out: dict) -> np.ndarray:
    for j, dl in enumerate(layers):
        z = a @ dl.weight.T + dl.bias
        out[f"{prefix}{j}_pre"] = z
        out[f"_{prefix}{j}_post"] = a = _act(dl.activation, z)
    return a


def run(model: RecurrentClassifier, X: np.ndarray) -> dict[str, Any]:
    """Forward pass over a batch (N, T, n): every named state, the logits, and the records
    the gradient needs (keys starting with ``_``)."""
    N, T, _ = X.shape
    out: dict[str, Any] = {"_x": X}
    a = _dense_forward(model.frame_layers, X, "frame", out)
    out["_in0"] = a
    for l, layer in enumerate(model.layers):
        outs = []
        for k, d in enumerate(layer.directions()):
            rec = _run_direction(layer, d, a, k == 1, layer.h0, layer.c0)
            tag = f"L{l}{'fb'[k]}_"
            out[f"_{tag}rec"] = rec
            for name, v in rec.items():
                if not name.startswith("_"):
                    out[tag + name] = v
            outs.append(rec["hidden"])
        a = np.concatenate(outs, axis=2)
        out[f"_in{l + 1}"] = a
    s = model.layers[-1].hidden_size
    if model.readout == "last":
        feat = a[:, T - 1, :s] if not model.layers[-1].bidirectional else \
            np.concatenate([a[:, T - 1, :s], a[:, 0, s:]], axis=1)
    elif model.readout == "last_step":
        feat = a[:, T - 1]
    else:
        feat = a.mean(axis=1)
    out["_feature"] = feat
    out["logits"] = _dense_forward(model.head, feat, "head", out)
    return out


def general_logits(model: RecurrentClassifier, x: Any) -> np.ndarray:
    """Logits ``(C,)`` or ``(N, C)`` for ``x`` of shape ``(T, n)`` or ``(N, T, n)``."""
    arr, single = as_batch(model, x)
    z = run(model, arr)["logits"]
    return z[0] if single else z


def general_states(model: RecurrentClassifier, x: Any) -> dict[str, np.ndarray]:
    """Every named intermediate quantity (module docstring), ``(T, width)`` per input
    (head pre-activations ``(1, width)``), with a leading batch axis for a batch."""
    arr, single = as_batch(model, x)
    rec = run(model, arr)
    res = {}
    last_pre = f"head{len(model.head) - 1}_pre"
    for k, v in rec.items():
        if k.startswith("_") or k == "logits":
            continue
        if k == last_pre and model.head[-1].activation is None:
            continue  # the logits themselves: no interval of their own (the margins bound them)
        if k.startswith("head"):
            v = v[:, None, :]
        res[k] = v
    if single:
        return {k: v[0] for k, v in res.items()}
    return res


def general_vjp(model: RecurrentClassifier, X: np.ndarray, rec: dict[str, Any],
                ct: np.ndarray) -> np.ndarray:
    """Input gradient (N, T, n) of ``sum(ct * logits)`` given the records of :func:`run` (N = the
    rows of ``ct``; records of one input serve N cotangents of that input)."""
    N, T = ct.shape[0], X.shape[1]
    g = ct
    for j in range(len(model.head) - 1, -1, -1):
        dl = model.head[j]
        g = g * _act_grad(dl.activation, rec[f"head{j}_pre"], rec[f"_head{j}_post"])
        g = g @ dl.weight
    top = model.layers[-1]
    s = top.hidden_size
    g_out = np.zeros((N, T, top.output_size))
    if model.readout == "last":
        g_out[:, T - 1, :s] = g[:, :s]
        if top.bidirectional:
            g_out[:, 0, s:] = g[:, s:]
    elif model.readout == "last_step":
        g_out[:, T - 1] = g
    else:
        g_out[:] = g[:, None, :] / T
    for l in range(len(model.layers) - 1, -1, -1):
        layer = model.layers[l]
        a_in = rec[f"_in{l}"]
        g_in = np.zeros((N,) + a_in.shape[1:])
        for k, d in enumerate(layer.directions()):
            part = g_out[:, :, k * layer.hidden_size:(k + 1) * layer.hidden_size]
            g_in += _back_direction(layer, d, a_in, rec[f"_L{l}{'fb'[k]}_rec"], part, k == 1)
        g_out = g_in
    g = g_out
    for j in range(len(model.frame_layers) - 1, -1, -1):
        dl = model.frame_layers[j]
        g = g * _act_grad(dl.activation, rec[f"frame{j}_pre"], rec[f"_frame{j}_post"])
        g = g @ dl.weight
    return g



def general_logits_vjp(model: RecurrentClassifier, x: Any, cotangent: Any) -> tuple[np.ndarray, np.ndarray]:
    """Logits and the input gradient of ``sum(cotangent * logits)``, as
    :func:`popqorn_fast.forward.logits_vjp` for one-layer models."""
    arr, single = as_batch(model, x)
    ct = check_cotangent(cotangent, single, arr.shape[0], model.num_classes)
    rec = run(model, arr)
    grad = general_vjp(model, arr, rec, ct)
    z = rec["logits"]
    return (z[0], grad[0]) if single else (z, grad)
