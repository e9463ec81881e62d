"""Plain-NumPy POPQORN bounds of an LSTM (docs/RECURRENCES.md §4 "LSTM").

Gates stacked i, f, g, o: ``y_t = W_ih x_t + W_hh h_{t-1} + b``,
``c_t = F2(c_{t-1}, y^f) + F1(y^g, y^i)``, ``h_t = F1(c_t, y^o)`` with
``F1 = tanh(x) sigma(y)``, ``F2 = x sigma(y)``.  The backward state over step
k is the pair ``(Lam_h, Lam_c)`` on ``(h_k, c_k)``; ``backward_step`` passes it
through one step.  Code steps are indexed from 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .lines import sigmoid
from .concretize import concretize_lower, split_stacked, stack_objective
from .planes import ProductBounds, core_bound_product
from .substitution import through_plane


@dataclass(frozen=True)
class StepPlanes:
    """The three planes of one LSTM step (P^o is None until c_t is bounded)."""

    f: Any   # F2(c_{t-1}, y^f_t)
    ig: Any  # F1(y^g_t, y^i_t)
    o: Optional[Any]  # F1(c_t, y^o_t)


def backward_step(lam_h: Optional[np.ndarray], lam_c: np.ndarray, planes: StepPlanes,
                  weight_ih: np.ndarray, weight_hh: np.ndarray,
                  bias: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pass ``(Lam_h, Lam_c)`` on ``(h_k, c_k)`` back through step k.

    ``lam_h=None`` enters at the ``c_k`` node (the cell objective: P^o unused).
    Returns (Lam on h_{k-1}, Lam on c_{k-1}, A_k on x_k, constant added).
    """
    s = lam_c.shape[1]
    const = np.zeros(lam_c.shape[0])
    lam_yo = np.zeros_like(lam_c)
    if lam_h is not None:  # h_k = P^o(c_k, y^o_k), by the sign of Lam_h
        lam_c_from_h, lam_yo, c = through_plane(lam_h, planes.o)
        lam_c = lam_c + lam_c_from_h
        const += c
    # c_k = P^f(c_{k-1}, y^f) + P^ig(y^g, y^i), both by the sign of the updated Lam_c
    lam_c_prev, lam_yf, c_f = through_plane(lam_c, planes.f)
    lam_yg, lam_yi, c_ig = through_plane(lam_c, planes.ig)
    const += c_f + c_ig
    G = np.concatenate([lam_yi, lam_yf, lam_yg, lam_yo], axis=1)  # gate order i, f, g, o
    assert G.shape[1] == 4 * s
    return G @ weight_hh, lam_c_prev, G @ weight_ih, const + G @ bias


def _substitute_down(lam_h: Optional[np.ndarray], lam_c: np.ndarray, const: np.ndarray,
                     A: np.ndarray, top: int, planes: list[StepPlanes], weight_ih: np.ndarray,
                     weight_hh: np.ndarray, bias: np.ndarray, h0: np.ndarray,
                     c0: np.ndarray) -> np.ndarray:
    """Carry the pair on (h_top, c_top) down to the initial state; returns the final constant."""
    for k in range(top, -1, -1):
        lam_h, lam_c, A_k, c = backward_step(lam_h, lam_c, planes[k], weight_ih, weight_hh, bias)
        A[k] += A_k
        const = const + c
    if lam_h is not None:
        const = const + lam_h @ h0
    return const + lam_c @ c0


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Elementwise sigmoid, accurate on both tails."""
    return np.array([sigmoid(float(v)) for v in np.ravel(z)]).reshape(np.shape(z))


def lstm_bounds_with(product_bounds: ProductBounds, weight_ih: np.ndarray, weight_hh: np.ndarray,
                     bias: np.ndarray, h0: np.ndarray, c0: np.ndarray, x: np.ndarray, eps: float,
                     p: float, frame_mask: np.ndarray, spec_weight: np.ndarray,
                     spec_bias: np.ndarray, planes: str, want_states: bool) -> dict:
    """``lstm_bounds`` with the plane function given explicitly (see ``lstm_bounds``)."""
    weight_ih, weight_hh, bias, h0, c0, x, spec_weight, spec_bias = (
        np.asarray(a, dtype=np.float64)
        for a in (weight_ih, weight_hh, bias, h0, c0, x, spec_weight, spec_bias))
    frame_mask = np.asarray(frame_mask, dtype=bool)
    T, n = x.shape
    s = weight_hh.shape[1]
    steps: list[StepPlanes] = []
    gates_l, gates_u = np.zeros((T, 4 * s)), np.zeros((T, 4 * s))
    cell_l, cell_u = np.zeros((T, s)), np.zeros((T, s))
    hid_l, hid_u = np.zeros((T, s)), np.zeros((T, s))
    for t in range(T):
        # 1. gates: objective "identity on y_t" -> A_t = W_ih, Lam_{h,t-1} = W_hh, constant b
        lam = stack_objective(np.eye(4 * s))
        A = np.zeros((T, 8 * s, n))
        A[t] = lam @ weight_ih
        const = _substitute_down(lam @ weight_hh, np.zeros((8 * s, s)), lam @ bias, A, t - 1, steps,
                                 weight_ih, weight_hh, bias, h0, c0)
        gates_l[t], gates_u[t] = split_stacked(concretize_lower(A, const, x, eps, p, frame_mask), 4 * s)
        yl = np.split(gates_l[t], 4)  # i, f, g, o
        yu = np.split(gates_u[t], 4)
        # 2. planes P^f on (c_{t-1}, y^f) (at t = 1 the point box [c0, c0]) and P^ig on (y^g, y^i)
        cl_prev, cu_prev = (c0, c0) if t == 0 else (cell_l[t - 1], cell_u[t - 1])
        p_f = product_bounds("x_sigmoid", cl_prev.copy(), cu_prev.copy(), yl[1].copy(), yu[1].copy(), planes)
        p_ig = product_bounds("tanh_sigmoid", yl[2].copy(), yu[2].copy(), yl[0].copy(), yu[0].copy(), planes)
        # 3. cell: objective "identity on c_t", entering step t at the c node
        step = StepPlanes(f=p_f, ig=p_ig, o=None)
        lam = stack_objective(np.eye(s))
        A = np.zeros((T, 2 * s, n))
        lam_h, lam_c, A[t], const = backward_step(None, lam, step, weight_ih, weight_hh, bias)
        const = _substitute_down(lam_h, lam_c, const, A, t - 1, steps, weight_ih, weight_hh, bias, h0, c0)
        cell_l[t], cell_u[t] = split_stacked(concretize_lower(A, const, x, eps, p, frame_mask), s)
        # 4. plane P^o on (c_t, y^o); hidden state: corner min/max of tanh(c) sigma(y^o)
        p_o = product_bounds("tanh_sigmoid", cell_l[t].copy(), cell_u[t].copy(), yl[3].copy(), yu[3].copy(),
                             planes)
        steps.append(StepPlanes(f=p_f, ig=p_ig, o=p_o))
        corners = np.array([np.tanh(c) * _sigmoid(y) for c in (cell_l[t], cell_u[t]) for y in (yl[3], yu[3])])
        hid_l[t], hid_u[t] = corners.min(axis=0), corners.max(axis=0)
    K = spec_weight.shape[0]
    lam = stack_objective(spec_weight)
    A = np.zeros((T, 2 * K, n))
    const = _substitute_down(lam, np.zeros((2 * K, s)), np.concatenate([spec_bias, -spec_bias]), A, T - 1,
                             steps, weight_ih, weight_hh, bias, h0, c0)
    lower, upper = split_stacked(concretize_lower(A, const, x, eps, p, frame_mask), K)
    out = {"lower": lower, "upper": upper}
    if want_states:
        out.update(gates_lower=gates_l, gates_upper=gates_u, cell_lower=cell_l, cell_upper=cell_u,
                   hidden_lower=hid_l, hidden_upper=hid_u)
    return out


def lstm_bounds(weight_ih: np.ndarray, weight_hh: np.ndarray, bias: np.ndarray, h0: np.ndarray,
                c0: np.ndarray, x: np.ndarray, eps: float, p: float, frame_mask: np.ndarray,
                spec_weight: np.ndarray, spec_bias: np.ndarray, planes: str, want_states: bool) -> dict:
    """Lower/upper bounds of ``spec_weight @ h_T + spec_bias`` for an LSTM.

    Parameters
    ----------
    weight_ih : (4s, n), weight_hh : (4s, s), bias : (4s,) = bias_ih + bias_hh (gate order i, f, g, o)
    h0, c0 : (s,) initial states
    x : (T, n) clean input; eps >= 0; p in {1.0, 2.0, inf}
    frame_mask : (T,) bool, True where the frame moves
    spec_weight : (K, s), spec_bias : (K,)
    planes : {"exact", "1d", "constant"}, passed to ``popqorn_fast.planes.bound_product``
    want_states : bool, also return ``gates_*`` (T, 4s), ``cell_*`` and ``hidden_*`` (T, s)

    Returns
    -------
    dict
        ``lower``, ``upper`` (K,) and, with ``want_states``, the state bounds.
    """
    return lstm_bounds_with(core_bound_product, weight_ih, weight_hh, bias, h0, c0, x, eps, p, frame_mask,
                            spec_weight, spec_bias, planes, want_states)
