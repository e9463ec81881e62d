"""Plain-NumPy POPQORN bounds of a GRU (docs/RECURRENCES.md §4 "GRU").

PyTorch GRU, gates r, z, n with ``b_hn`` inside the reset product.  With
``g_t = [y^r; y^z; v]`` (``v = W_hn h_{t-1} + b_hn``)::

    u_t = W_in x_t + b_in + F2(v_t, y^r_t)
    h_t = F1(u_t, -y^z_t) + F2(h_{t-1}, y^z_t)      (1 - sigma(y) = sigma(-y))

``backward_step`` passes ``Lam`` on ``h_k`` through one step; ``u_backward``
is the part from the ``u_k`` node down (also the entry of the u objective).
Code steps are indexed from 0.

With ``gru_shared_z`` (RECURRENCES.md §4 "GRU, shared z (optimized)")::

    h_t = F3(u_t, w_t) + F4(h_{t-1}, z_t),   z = sigma(y^z) by lines,   w = 1 - z

(F3 = tanh(x)·y, F4 = x·y): the coefficients met on w and z are merged on z before
the sigmoid lines, chosen by the sign of the merged coefficient.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .concretize import concretize_lower, split_stacked, stack_objective
from .lines import Lines, bound_activation, sigmoid
from .planes import ProductBounds, core_bound_product
from .substitution import through_lines, through_plane

WIDEN = 4.0 * float(np.finfo(np.float64).eps)  # relative outward widening of the z and w boxes


@dataclass(frozen=True)
class GRUParams:
    """The layer split the way the recurrences use it (all float64)."""

    w_hh: np.ndarray       # (3s, s): rows of y^r, y^z, v
    w_in: np.ndarray       # (s, n)
    w_irz: np.ndarray      # (2s, n): [W_ir; W_iz]
    b_in: np.ndarray       # (s,)
    b_gates: np.ndarray    # (3s,): [b_ir + b_hr; b_iz + b_hz; b_hn]

    @staticmethod
    def from_pytorch(weight_ih: np.ndarray, weight_hh: np.ndarray, bias_ih: np.ndarray,
                     bias_hh: np.ndarray) -> "GRUParams":
        s = weight_hh.shape[1]
        b_gates = np.concatenate([bias_ih[:2 * s] + bias_hh[:2 * s], bias_hh[2 * s:]])
        return GRUParams(weight_hh, weight_ih[2 * s:], weight_ih[:2 * s], bias_ih[2 * s:].copy(), b_gates)


@dataclass(frozen=True)
class StepPlanes:
    """Planes of one GRU step (P^u and P^z are None until u_t is bounded)."""

    r: Any            # F2(v_t, y^r_t)
    u: Optional[Any]  # F1(u_t, w_t), w = -y^z       (shared z: F3(u_t, w_t), w = 1 - z)
    z: Optional[Any]  # F2(h_{t-1}, y^z_t)           (shared z: F4(h_{t-1}, z_t))
    lz: Optional[Lines] = None  # shared z only: sigmoid lines of z_t over [yl^z, yu^z]


def u_backward(lam_u: np.ndarray, lam_yz: np.ndarray, lam_h_prev: np.ndarray, planes: StepPlanes,
               w: GRUParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From ``Lam_u`` on u_k (plus ``Lam_yz`` already on y^z_k and ``Lam_h_prev`` on h_{k-1})
    down to x_k and h_{k-1}.  Returns (Lam on h_{k-1}, A_k, constant added)."""
    const = lam_u @ w.b_in
    A_k = lam_u @ w.w_in
    lam_v, lam_yr, c_r = through_plane(lam_u, planes.r)  # r*v = P^r(v, y^r) by the sign of Lam_u
    const = const + c_r
    G = np.concatenate([lam_yr, lam_yz, lam_v], axis=1)  # stacked y^r, y^z, v
    s = lam_u.shape[1]
    lam_h_prev = lam_h_prev + G @ w.w_hh
    A_k = A_k + G[:, :2 * s] @ w.w_irz
    return lam_h_prev, A_k, const + G @ w.b_gates


def backward_step(lam_h: np.ndarray, planes: StepPlanes, w: GRUParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pass ``Lam`` on ``h_k`` back through step k: returns (Lam on h_{k-1}, A_k, constant added)."""
    if planes.lz is not None:  # shared z
        lam_u, lam_w, c_u = through_plane(lam_h, planes.u)        # F3(u, w)
        lam_h_prev, lam_z, c_z = through_plane(lam_h, planes.z)  # F4(h_{k-1}, z)
        mu = lam_z - lam_w                                        # w = 1 - z
        lz = planes.lz
        lam_yz, c_l = through_lines(mu, lz.alpha_l, lz.beta_l, lz.alpha_u, lz.beta_u)
        lam_h_prev, A_k, c = u_backward(lam_u, lam_yz, lam_h_prev, planes, w)
        return lam_h_prev, A_k, c_u + c_z + np.sum(lam_w, axis=1) + c_l + c
    lam_u, lam_w, c_u = through_plane(lam_h, planes.u)        # F1(u, w), w = -y^z
    lam_h_prev, lam_yz_from_z, c_z = through_plane(lam_h, planes.z)  # F2(h_{k-1}, y^z)
    lam_yz = -lam_w + lam_yz_from_z
    lam_h_prev, A_k, c = u_backward(lam_u, lam_yz, lam_h_prev, planes, w)
    return lam_h_prev, A_k, c_u + c_z + c


def _substitute_down(lam_h: np.ndarray, const: np.ndarray, A: np.ndarray, top: int,
                     steps: list[StepPlanes], w: GRUParams, h0: np.ndarray) -> np.ndarray:
    """Carry ``Lam`` on h_top down to h0; returns the final constant."""
    for k in range(top, -1, -1):
        lam_h, A_k, c = backward_step(lam_h, steps[k], w)
        A[k] += A_k
        const = const + c
    return const + lam_h @ h0


def hidden_planes(product_bounds: ProductBounds, p_r: Any, u_l: np.ndarray, u_u: np.ndarray,
                  yz_l: np.ndarray, yz_u: np.ndarray, hl_prev: np.ndarray, hu_prev: np.ndarray,
                  planes: str, gru_shared_z: bool) -> StepPlanes:
    """Step 4: the planes of the hidden update, given the boxes of u_t, y^z_t and h_{t-1}.

    Plain: P^u = F1(u_t, w_t), w = -y^z in [-yz_u, -yz_l]; P^z = F2(h_{t-1}, y^z_t).
    Shared z: z = sigma(y^z) by lines; boxes z in [sigma(yl), sigma(yu)], w = 1 - z in
    [sigma(-yu), sigma(-yl)], each widened outwards by 4 eps relative; P^u = F3(u_t, w_t),
    P^z = F4(h_{t-1}, z_t).  Returns the step's planes (with P^r = ``p_r``).
    """
    if gru_shared_z:
        lz = bound_activation("sigmoid", yz_l.copy(), yz_u.copy())
        z_l = np.array([sigmoid(v) for v in yz_l]) * (1.0 - WIDEN)
        z_u = np.array([sigmoid(v) for v in yz_u]) * (1.0 + WIDEN)
        w_l = np.array([sigmoid(-v) for v in yz_u]) * (1.0 - WIDEN)
        w_u = np.array([sigmoid(-v) for v in yz_l]) * (1.0 + WIDEN)
        p_u = product_bounds("tanh_linear", u_l.copy(), u_u.copy(), w_l, w_u, planes)
        p_z = product_bounds("bilinear", hl_prev.copy(), hu_prev.copy(), z_l, z_u, planes)
        return StepPlanes(r=p_r, u=p_u, z=p_z, lz=lz)
    p_u = product_bounds("tanh_sigmoid", u_l.copy(), u_u.copy(), -yz_u, -yz_l, planes)
    p_z = product_bounds("x_sigmoid", hl_prev.copy(), hu_prev.copy(), yz_l.copy(), yz_u.copy(), planes)
    return StepPlanes(r=p_r, u=p_u, z=p_z)


def gru_bounds_with(product_bounds: ProductBounds, weight_ih: np.ndarray, weight_hh: np.ndarray,
                    bias_ih: np.ndarray, bias_hh: np.ndarray, h0: np.ndarray, x: np.ndarray, eps: float,
                    p: float, frame_mask: np.ndarray, spec_weight: np.ndarray, spec_bias: np.ndarray,
                    planes: str, want_states: bool, gru_shared_z: bool = False) -> dict:
    """``gru_bounds`` with the plane function given explicitly (see ``gru_bounds``)."""
    weight_ih, weight_hh, bias_ih, bias_hh, h0, x, spec_weight, spec_bias = (
        np.asarray(a, dtype=np.float64)
        for a in (weight_ih, weight_hh, bias_ih, bias_hh, h0, x, spec_weight, spec_bias))
    frame_mask = np.asarray(frame_mask, dtype=bool)
    w = GRUParams.from_pytorch(weight_ih, weight_hh, bias_ih, bias_hh)
    T, n = x.shape
    s = weight_hh.shape[1]
    steps: list[StepPlanes] = []
    gates_l, gates_u = np.zeros((T, 3 * s)), np.zeros((T, 3 * s))
    u_l, u_u = np.zeros((T, s)), np.zeros((T, s))
    hid_l, hid_u = np.zeros((T, s)), np.zeros((T, s))

    def finish(lam_h: np.ndarray, const: np.ndarray, A: np.ndarray, top: int, rows: int):
        const = _substitute_down(lam_h, const, A, top, steps, w, h0)
        return split_stacked(concretize_lower(A, const, x, eps, p, frame_mask), rows)

    for t in range(T):
        # 1. gates g_t = [y^r; y^z; v]: A_t = [W_ir; W_iz; 0], Lam_{h,t-1} = W_hh, constant b_gates
        lam = stack_objective(np.eye(3 * s))
        A = np.zeros((T, 6 * s, n))
        A[t] = lam[:, :2 * s] @ w.w_irz
        gates_l[t], gates_u[t] = finish(lam @ w.w_hh, lam @ w.b_gates, A, t - 1, 3 * s)
        yr_l, yz_l, v_l = np.split(gates_l[t], 3)
        yr_u, yz_u, v_u = np.split(gates_u[t], 3)
        # 2. plane P^r = F2(v_t, y^r_t)
        p_r = product_bounds("x_sigmoid", v_l.copy(), v_u.copy(), yr_l.copy(), yr_u.copy(), planes)
        # 3. u: objective "identity on u_t", entering step t at the u node
        step = StepPlanes(r=p_r, u=None, z=None)
        lam = stack_objective(np.eye(s))
        A = np.zeros((T, 2 * s, n))
        lam_h, A[t], const = u_backward(lam, np.zeros_like(lam), np.zeros_like(lam), step, w)
        u_l[t], u_u[t] = finish(lam_h, const, A, t - 1, s)
        # 4. planes P^u = F1(u_t, w_t), w = -y^z in [-yz_u, -yz_l]; P^z = F2(h_{t-1}, y^z_t)
        hl_prev, hu_prev = (h0, h0) if t == 0 else (hid_l[t - 1], hid_u[t - 1])
        steps.append(hidden_planes(product_bounds, p_r, u_l[t], u_u[t], yz_l, yz_u, hl_prev, hu_prev,
                                   planes, gru_shared_z))
        # 5. hidden: objective "identity on h_t" from step t down
        lam = stack_objective(np.eye(s))
        A = np.zeros((T, 2 * s, n))
        hid_l[t], hid_u[t] = finish(lam, np.zeros(2 * s), A, t, s)
    K = spec_weight.shape[0]
    A = np.zeros((T, 2 * K, n))
    lower, upper = finish(stack_objective(spec_weight), np.concatenate([spec_bias, -spec_bias]), A, T - 1, K)
    out = {"lower": lower, "upper": upper}
    if want_states:
        out.update(gates_lower=gates_l, gates_upper=gates_u, u_lower=u_l, u_upper=u_u,
                   hidden_lower=hid_l, hidden_upper=hid_u)
    return out


def gru_bounds(weight_ih: np.ndarray, weight_hh: np.ndarray, bias_ih: np.ndarray, bias_hh: np.ndarray,
               h0: np.ndarray, x: np.ndarray, eps: float, p: float, frame_mask: np.ndarray,
               spec_weight: np.ndarray, spec_bias: np.ndarray, planes: str, want_states: bool,
               gru_shared_z: bool = False) -> dict:
    """Lower/upper bounds of ``spec_weight @ h_T + spec_bias`` for a GRU.

    Parameters
    ----------
    weight_ih : (3s, n), weight_hh : (3s, s), bias_ih, bias_hh : (3s,) (gate order r, z, n)
    h0 : (s,) initial hidden state
    x : (T, n) clean input; eps >= 0; p in {1.0, 2.0, inf}
    frame_mask : (T,) bool, True where the frame moves
    spec_weight : (K, s), spec_bias : (K,)
    planes : {"exact", "1d", "constant"}, passed to ``popqorn_fast.planes.bound_product``
    want_states : bool, also return ``gates_*`` (T, 3s), ``u_*`` and ``hidden_*`` (T, s)
    gru_shared_z : bool, the shared-z relaxation of the hidden update (RECURRENCES.md §4
        "GRU, shared z (optimized)"); the core's keyword of the same name

    Returns
    -------
    dict
        ``lower``, ``upper`` (K,) and, with ``want_states``, the state bounds.
    """
    return gru_bounds_with(core_bound_product, weight_ih, weight_hh, bias_ih, bias_hh, h0, x, eps, p,
                           frame_mask, spec_weight, spec_bias, planes, want_states, gru_shared_z)
