"""Plain-NumPy POPQORN bounds of a vanilla RNN (docs/RECURRENCES.md §4 "RNN").

``z_t = W_ih x_t + W_hh h_{t-1} + b``, ``h_t = phi(z_t)``.  For t = 1..T the
bounds of ``z_t`` come from one back-substitution of the stacked objective
``[I; -I]`` on ``z_t`` down to ``x_1``; the margins from ``spec_weight`` on
``h_T``.  Steps are indexed from 0 in code (code step k = spec step k + 1).
"""
from __future__ import annotations

import numpy as np

from .concretize import concretize_lower, split_stacked, stack_objective
from .lines import Lines, bound_activation
from .substitution import through_lines


def backward_step(lam_h: np.ndarray, lines: Lines, weight_ih: np.ndarray, weight_hh: np.ndarray,
                  bias: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pass ``Lam`` on ``h_k`` back through step k.

    Returns (Lam on h_{k-1}, A_k = coefficients on x_k, constant added).
    """
    lam_z, const = through_lines(lam_h, lines.alpha_l, lines.beta_l, lines.alpha_u, lines.beta_u)
    return lam_z @ weight_hh, lam_z @ weight_ih, const + lam_z @ bias


def _substitute_down(lam_h: np.ndarray, const: np.ndarray, A: np.ndarray, top: int,
                     lines: list[Lines], weight_ih: np.ndarray, weight_hh: np.ndarray,
                     bias: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """Carry ``lam_h`` on ``h_top`` through steps top..0 (code indices), filling ``A``;
    returns the final constant (including ``Lam h0``)."""
    for k in range(top, -1, -1):
        lam_h, A_k, c = backward_step(lam_h, lines[k], weight_ih, weight_hh, bias)
        A[k] += A_k
        const = const + c
    return const + lam_h @ h0


def rnn_bounds(weight_ih: np.ndarray, weight_hh: np.ndarray, bias: np.ndarray, h0: np.ndarray,
               activation: str, x: np.ndarray, eps: float, p: float, frame_mask: np.ndarray,
               spec_weight: np.ndarray, spec_bias: np.ndarray, want_states: bool) -> dict:
    """Lower/upper bounds of ``spec_weight @ h_T + spec_bias`` for a vanilla RNN.

    Parameters
    ----------
    weight_ih : (s, n), weight_hh : (s, s), bias : (s,) = bias_ih + bias_hh, h0 : (s,)
    activation : {"tanh", "relu"}
    x : (T, n) clean input; eps >= 0; p in {1.0, 2.0, inf}
    frame_mask : (T,) bool, True where the frame moves
    spec_weight : (K, s), spec_bias : (K,)
    want_states : bool, also return ``pre_*`` and ``hidden_*`` of shape (T, s)

    Returns
    -------
    dict
        ``lower``, ``upper`` (K,), and with ``want_states`` ``pre_lower``,
        ``pre_upper``, ``hidden_lower``, ``hidden_upper`` (T, s).
    """
    weight_ih, weight_hh, bias, h0, x, spec_weight, spec_bias = (
        np.asarray(a, dtype=np.float64) for a in (weight_ih, weight_hh, bias, h0, x, spec_weight, spec_bias))
    frame_mask = np.asarray(frame_mask, dtype=bool)
    T, n = x.shape
    s = weight_hh.shape[0]
    lines: list[Lines] = []
    pre_l = np.zeros((T, s))
    pre_u = np.zeros((T, s))
    for t in range(T):
        # objective "identity on z_t": A_t = W_ih, Lam_{h,t-1} = W_hh, constant b (stacked +/-)
        lam = stack_objective(np.eye(s))
        A = np.zeros((T, 2 * s, n))
        A[t] = lam @ weight_ih
        const = lam @ bias
        const = _substitute_down(lam @ weight_hh, const, A, t - 1, lines, weight_ih, weight_hh, bias, h0)
        pre_l[t], pre_u[t] = split_stacked(concretize_lower(A, const, x, eps, p, frame_mask), s)
        lines.append(bound_activation(activation, pre_l[t], pre_u[t]))
    K = spec_weight.shape[0]
    lam = stack_objective(spec_weight)
    A = np.zeros((T, 2 * K, n))
    const = _substitute_down(lam, np.concatenate([spec_bias, -spec_bias]), A, T - 1, lines,
                             weight_ih, weight_hh, bias, h0)
    lower, upper = split_stacked(concretize_lower(A, const, x, eps, p, frame_mask), K)
    out = {"lower": lower, "upper": upper}
    if want_states:
        act = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0.0))
        out.update(pre_lower=pre_l, pre_upper=pre_u, hidden_lower=act(pre_l), hidden_upper=act(pre_u))
    return out
