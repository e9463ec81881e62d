"""Plain NumPy forward passes of the RNN / LSTM / GRU classifiers.

Three services, all for the weight containers of :mod:`popqorn_fast.weights`:

* :func:`logits` / :func:`final_hidden`: the model itself (used by
  ``Weights.logits``);
* :func:`states`: every intermediate quantity per step, named as in
  ``docs/RECURRENCES.md`` §0 (the quantities that ``bound_states`` bounds),
  so that soundness tests can compare sampled values against bounds;
* :func:`logits_vjp` / :func:`margin_gradient`: analytic input gradients by
  backpropagation through time, written out by hand (used by the attack).

State names and rows (row ``t`` of an array is step ``t + 1``):

========  ===========================================================
rnn       ``pre`` z_t (s), ``hidden`` h_t (s)
lstm      ``gates`` y_t = [y^i, y^f, y^g, y^o] (4s), ``cell`` c_t (s),
          ``hidden`` h_t (s)
gru       ``gates`` [y^r, y^z, v] (3s) with v = W_hn h_{t-1} + b_hn,
          ``u`` u_t = W_in x_t + b_in + sigma(y^r) * v (s), ``hidden`` h_t (s)
========  ===========================================================
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

__all__ = ["final_hidden", "logits", "states", "logits_vjp", "margin_gradient", "margins"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) to relative precision everywhere: e^{−|z|} / (1 + e^{−|z|}) on the negative side,
    where 0.5 (1 + tanh(z / 2)) rounds to 0 below z ≈ −37 (a sigmoid head would then see
    ties between classes that the bounds, in the core, separate)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def gate_blocks(y: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """The k equal column blocks of ``y`` (N, k s), as views: a step's gates (what
    ``np.split(y, k, axis=1)`` gives, without its per-call overhead)."""
    s = y.shape[1] // k
    return tuple(y[:, j * s:(j + 1) * s] for j in range(k))


def _as_input(w: Any, x: Any, name: str = "x") -> tuple[np.ndarray, bool]:
    """Return ``x`` as a float64 ``(N, T, n)`` array and whether it was a single input."""
    arr = np.asarray(x, dtype=np.float64)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != w.input_size or arr.shape[1] < 1:
        raise ValueError(f"{name} has shape {np.shape(x)}; expected (T, {w.input_size}) or "
                         f"(N, T, {w.input_size}) with T >= 1")
    return arr, single


def _run(w: Any, x: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Forward pass over a batch ``(N, T, n)`` keeping every per-step quantity.

    Returns lists (one entry per step) of the named states plus the private
    quantities the backward pass needs (keys starting with ``_``).
    """
    N, T, _ = x.shape
    s = w.hidden_size
    h = np.broadcast_to(w.h0, (N, s)).copy()
    rec: dict[str, list[np.ndarray]] = {"_h_prev": []}
    c = None
    if w.kind == "lstm":
        c = np.broadcast_to(w.c0, (N, s)).copy()
        rec["_c_prev"] = []
    for t in range(T):
        gi = x[:, t, :] @ w.weight_ih.T + w.bias_ih
        gh = h @ w.weight_hh.T + w.bias_hh
        rec["_h_prev"].append(h)
        if w.kind == "lstm":
            rec["_c_prev"].append(c)
        h, c, named = cell_step(w.kind, getattr(w, "activation", "tanh"), gi, gh, h, c)
        for k, v in named.items():
            rec.setdefault(k, []).append(v)
        rec.setdefault("hidden", []).append(h)
    return rec


def cell_step(kind: str, activation: str, gi: np.ndarray, gh: np.ndarray, h: np.ndarray,
              c: Optional[np.ndarray]) -> tuple[np.ndarray, Optional[np.ndarray], dict[str, np.ndarray]]:
    """One step of an RNN / LSTM / GRU cell over a batch, from its input and recurrent parts
    ``gi = x W_ih^T + b_ih`` and ``gh = h W_hh^T + b_hh`` (gates stacked as in
    ``docs/RECURRENCES.md`` §0): the new hidden state, the new cell state (LSTM; ``c`` as
    given otherwise), and the step's quantities: the named states of §0 and, under names
    starting with ``_``, the activations the backward pass reads again."""
    if kind == "rnn":
        z = gi + gh
        return (np.tanh(z) if activation == "tanh" else np.maximum(z, 0.0)), c, {"pre": z}
    if kind == "lstm":
        y = gi + gh
        sg = sigmoid(y)  # one call for the three gates (elementwise; the g block unused)
        si, sf, _, so = gate_blocks(sg, 4)
        tg = np.tanh(gate_blocks(y, 4)[2])
        c = sf * c + si * tg
        tc = np.tanh(c)
        return so * tc, c, {"gates": y, "cell": c, "_sig": sg, "_tanh_g": tg, "_tanh_c": tc}
    s2 = 2 * h.shape[1]
    yrz = gi[:, :s2] + gh[:, :s2]  # [y^r, y^z]
    hn = gh[:, s2:]
    srz = sigmoid(yrz)
    r, zg = gate_blocks(srz, 2)
    u = gi[:, s2:] + r * hn
    tu = np.tanh(u)
    return ((1.0 - zg) * tu + zg * h, c,
            {"gates": np.concatenate([yrz, hn], axis=1), "u": u, "_sig": srz, "_tanh_u": tu})


def forward_record(w: Any, X: np.ndarray) -> tuple[np.ndarray, dict]:
    """Logits (N, C) of a batch (N, T, n) and the records :func:`input_gradient` needs; for
    every model class (one layer or a RecurrentClassifier)."""
    if w.kind == "general":
        from .general_forward import run
        rec = run(w, X)
        return rec["logits"], rec
    rec = _run(w, X)
    return rec["hidden"][-1] @ w.out_weight.T + w.out_bias, rec


def input_gradient(w: Any, X: np.ndarray, rec: dict, ct: np.ndarray) -> np.ndarray:
    """Input gradient (N, T, n) of ``sum(ct * logits)`` from the records of :func:`forward_record`
    (N = the rows of ``ct``; records of one input serve N cotangents of that input)."""
    if w.kind == "general":
        from .general_forward import general_vjp
        return general_vjp(w, X, rec, ct)
    return _backward(w, X, rec, ct)


def final_hidden(w: Any, x: np.ndarray) -> np.ndarray:
    """Last hidden state.

    Parameters
    ----------
    w : RNNWeights | LSTMWeights | GRUWeights
        The model.
    x : ndarray
        One input ``(T, n)`` or a batch ``(N, T, n)``.

    Returns
    -------
    ndarray
        ``h_T``, shape ``(s,)`` or ``(N, s)``.
    """
    arr, single = _as_input(w, x)
    h = _run(w, arr)["hidden"][-1]
    return h[0] if single else h


def logits(w: Any, x: Any) -> np.ndarray:
    """Logits of the model.

    Parameters
    ----------
    w : RNNWeights | LSTMWeights | GRUWeights
        The model.
    x : array_like
        One input ``(T, n)`` or a batch ``(N, T, n)``.

    Returns
    -------
    ndarray
        ``(C,)`` or ``(N, C)``.
    """
    if w.kind == "general":
        return w.logits(x)
    arr, single = _as_input(w, x)
    out = _run(w, arr)["hidden"][-1] @ w.out_weight.T + w.out_bias
    return out[0] if single else out


def states(w: Any, x: Any) -> dict[str, np.ndarray]:
    """Every intermediate quantity of the forward pass, per step.

    Parameters
    ----------
    w : RNNWeights | LSTMWeights | GRUWeights
        The model.
    x : array_like
        One input ``(T, n)`` or a batch ``(N, T, n)``.

    Returns
    -------
    dict of str to ndarray
        Names per ``docs/RECURRENCES.md`` §0 (rnn: ``pre``, ``hidden``; lstm:
        ``gates``, ``cell``, ``hidden``; gru: ``gates``, ``u``, ``hidden``),
        each of shape ``(T, rows)`` for one input or ``(N, T, rows)`` for a
        batch; row ``t`` is step ``t + 1``.
    """
    if w.kind == "general":
        from .general_forward import general_states
        return general_states(w, x)
    arr, single = _as_input(w, x)
    rec = _run(w, arr)
    out = {k: np.stack(v, axis=1) for k, v in rec.items() if not k.startswith("_")}
    return {k: v[0] for k, v in out.items()} if single else out


def logits_vjp(w: Any, x: Any, cotangent: Any) -> tuple[np.ndarray, np.ndarray]:
    """Logits and the input gradient of ``sum(cotangent * logits)`` (backprop through time).

    Parameters
    ----------
    w : RNNWeights | LSTMWeights | GRUWeights
        The model.
    x : array_like
        One input ``(T, n)`` or a batch ``(N, T, n)``.
    cotangent : array_like
        Weights on the logits, ``(C,)`` or ``(N, C)`` (matching ``x``).

    Returns
    -------
    logits : ndarray
        ``(C,)`` or ``(N, C)``.
    grad : ndarray
        Same shape as ``x``: d/dx of ``sum_k cotangent[k] * logits[k]`` per input.

    Notes
    -----
    ReLU uses the derivative 1 for z > 0 and 0 otherwise.
    """
    if w.kind == "general":
        from .general_forward import general_logits_vjp
        return general_logits_vjp(w, x, cotangent)
    arr, single = _as_input(w, x)
    ct = check_cotangent(cotangent, single, arr.shape[0], w.num_classes)
    rec = _run(w, arr)
    out = rec["hidden"][-1] @ w.out_weight.T + w.out_bias
    grad = _backward(w, arr, rec, ct)
    if single:
        return out[0], grad[0]
    return out, grad


def check_cotangent(cotangent: Any, single: bool, N: int, C: int) -> np.ndarray:
    """The cotangent of the logits as a float64 (N, C) array (one input: (C,) accepted)."""
    ct = np.asarray(cotangent, dtype=np.float64)
    if single and ct.ndim == 1:
        ct = ct[None]
    if ct.shape != (N, C):
        raise ValueError(f"cotangent has shape {np.shape(cotangent)}; expected "
                         f"{'(C,)' if single else '(N, C)'} with C = {C}")
    return ct


def _backward(w: Any, arr: np.ndarray, rec: dict[str, list[np.ndarray]],
              ct: np.ndarray) -> np.ndarray:
    """Input gradient of ``sum(ct * logits)`` given the records of :func:`_run` (N = the rows
    of ``ct``; records of a batch of one broadcast)."""
    N, (_, T, n) = ct.shape[0], arr.shape
    s = w.hidden_size
    grad = np.empty((N, T, n))
    gh = ct @ w.out_weight  # d/dh_T
    gc = np.zeros((N, s))
    for t in range(T - 1, -1, -1):
        grad[:, t, :], gh, gc = cell_step_back(w.kind, getattr(w, "activation", "tanh"), lambda k: rec[k][t], gh, gc,
                                               w.weight_ih, w.weight_hh)
    return grad


def cell_step_back(kind: str, activation: str, at: Callable[[str], np.ndarray], gh: np.ndarray, gc: np.ndarray,
                   weight_ih: np.ndarray, weight_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`cell_step` backwards: from the cotangents ``gh`` on its new hidden state and ``gc``
    on its new cell state (LSTM), those on its input (the step's share of the input gradient),
    on the hidden state before it and on the cell state before it. ``at(name)`` gives the
    step's records of the forward pass (its named quantities, ``_h_prev``, ``_c_prev``)."""
    if kind == "rnn":
        gz = gh * (1.0 - at("hidden") ** 2) if activation == "tanh" else gh * (at("pre") > 0.0)
        return gz @ weight_ih, gz @ weight_hh, gc
    if kind == "lstm":
        i, f, _, o = gate_blocks(at("_sig"), 4)
        g, tc = at("_tanh_g"), at("_tanh_c")
        gc = gc + gh * o * (1.0 - tc * tc)
        G = np.concatenate([gc * g * i * (1.0 - i), gc * at("_c_prev") * f * (1.0 - f),
                            gc * i * (1.0 - g * g), gh * tc * o * (1.0 - o)], axis=1)
        return G @ weight_ih, G @ weight_hh, gc * f
    v = gate_blocks(at("gates"), 3)[2]
    r, zg = gate_blocks(at("_sig"), 2)
    nn = at("_tanh_u")
    gu = gh * (1.0 - zg) * (1.0 - nn * nn)
    gyz = gh * (at("_h_prev") - nn) * zg * (1.0 - zg)
    gyr = gu * v * r * (1.0 - r)
    return (np.concatenate([gyr, gyz, gu], axis=1) @ weight_ih,
            gh * zg + np.concatenate([gyr, gyz, gu * r], axis=1) @ weight_hh, gc)


def margins(w: Any, x: Any, label: int, target: Optional[int] = None) -> np.ndarray:
    """Margins ``logit_label - logit_j``.

    Parameters
    ----------
    w : RNNWeights | LSTMWeights | GRUWeights
        The model.
    x : array_like
        One input ``(T, n)`` or a batch ``(N, T, n)``.
    label : int
        The class whose logit comes first.
    target : int, optional
        ``None``: every ``j != label`` in increasing order; else only ``j = target``.

    Returns
    -------
    ndarray
        ``(K,)`` or ``(N, K)`` with K = C - 1 (untargeted) or 1 (targeted),
        the layout of ``bound_margins``.
    """
    z = logits(w, x)
    C = w.num_classes
    if not 0 <= int(label) < C:
        raise ValueError(f"label {label} out of range 0..{C - 1}")
    others = [j for j in range(C) if j != label] if target is None else [int(target)]
    return z[..., [label]] - z[..., others]


def margin_gradient(w: Any, x: Any, label: int, other: int) -> tuple[np.ndarray, np.ndarray]:
    """Margin ``logit_label - logit_other`` and its input gradient.

    Parameters
    ----------
    w : RNNWeights | LSTMWeights | GRUWeights
        The model.
    x : array_like
        One input ``(T, n)`` or a batch ``(N, T, n)``.
    label, other : int
        Classes (distinct, in ``0..C-1``).

    Returns
    -------
    margin : ndarray
        ``()`` or ``(N,)``.
    grad : ndarray
        Same shape as ``x``.
    """
    C = w.num_classes
    for name, v in (("label", label), ("other", other)):
        if not 0 <= int(v) < C:
            raise ValueError(f"{name} {v} out of range 0..{C - 1}")
    arr = np.asarray(x, dtype=np.float64)
    single = arr.ndim == 2
    arr = arr[None] if single else arr
    ct = np.zeros((arr.shape[0], C))
    ct[:, label] += 1.0
    ct[:, other] -= 1.0
    z, g = logits_vjp(w, arr, ct)
    m = z[:, label] - z[:, other]
    return (m[0], g[0]) if single else (m, g)
