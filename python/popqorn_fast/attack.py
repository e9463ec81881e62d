"""Projected-gradient attack (PGD) in per-frame lp balls: an empirical upper bound of eps*.

Threat model as in certification: each perturbed frame ``t`` moves inside its
own ball ``||x_t - x̂_t||_p <= eps``. The loss is the CW-style margin
``logit_label - max_{j != label} logit_j`` (or ``logit_label - logit_target``),
minimised by projected gradient descent from several random starts run as
one batch, with gradients from the hand-written backpropagation through time
of :mod:`popqorn_fast.forward`. A found example (margin < 0) proves that no
certificate at that eps can be correct.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

import numpy as np

from . import forward
from .sampling import (frame_mask, frame_multipliers, frame_norms, in_threat, into_ball, into_threat, project,
                       project_threat, sample_ball, sample_threat)
from .substitutions import search_substitutions  # noqa: F401 (the attack of the substitution model)
from .threat import ThreatModel, check_threat
from .validation import check_eps, check_sequence, parse_p

__all__ = ["AttackResult", "pgd", "search_substitutions"]


@dataclass(frozen=True, eq=False)
class AttackResult:
    """Outcome of :func:`pgd`.

    Attributes
    ----------
    success : bool
        ``margin < 0``: the label no longer beats every other class (or the target).
    x_adv : numpy.ndarray
        ``(T, n)``, the input with the smallest margin found (inside the ball).
    margin : float
        ``logit_label - max_{j != label} logit_j`` at ``x_adv`` (target only if given).
    label : int
        The label attacked.
    eps : float
        The radius used.
    p : float
        The norm used (1.0, 2.0 or inf).
    """
    success: bool
    x_adv: np.ndarray
    margin: float
    label: int = -1
    eps: float = 0.0
    p: float = 2.0


def _int_arg(v: Any, name: str, lo: int) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _margin_and_cotangent(z: np.ndarray, label: int, target: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    """Margins ``(R,)`` and the cotangent on the logits of the margin."""
    R, C = z.shape
    if target is None:
        zo = z.copy()
        zo[:, label] = -np.inf
        j = np.argmax(zo, axis=1)
    else:
        j = np.full(R, target)
    m = z[:, label] - z[np.arange(R), j]
    ct = np.zeros_like(z)
    ct[:, label] = 1.0
    ct[np.arange(R), j] -= 1.0
    return m, ct


def _direction_threat(g: np.ndarray, p: float, mask: np.ndarray, tm: ThreatModel) -> np.ndarray:
    """Steepest-descent direction in u = d / w (unit norm per frame, or over all moving
    coordinates for the joint ball), mapped back to d."""
    w = frame_multipliers(mask, tm)
    gu = g * w[:, None]
    if tm.ball == "joint":
        R, T, n = gu.shape
        du = _direction(gu.reshape(R, 1, T * n), p, np.ones(1, dtype=bool)).reshape(R, T, n)
    else:
        du = _direction(gu, p, w > 0)
    return du * w[:, None]


def _direction(g: np.ndarray, p: float, mask: np.ndarray) -> np.ndarray:
    """Steepest-descent direction of unit lp norm per frame for gradient ``g`` (descent: -g)."""
    if p == np.inf:
        d = -np.sign(g)
    elif p == 2.0:
        nrm = np.sqrt(np.sum(g * g, axis=-1, keepdims=True))
        d = -g / np.maximum(nrm, 1e-300)
    else:  # sparse step: spread over the largest-|g| coordinates (about 10% of them)
        n = g.shape[-1]
        k = max(1, int(np.ceil(0.1 * n)))
        a = np.abs(g)
        kth = -np.partition(-a, k - 1, axis=-1)[..., k - 1:k]
        sel = (a >= kth) & (a > 0)
        cnt = np.maximum(sel.sum(axis=-1, keepdims=True), 1)
        d = -np.sign(g) * sel / cnt
    return d * mask[:, None]


def pgd(weights: Any, x: Any, eps: float, p: Any = 2, target: Optional[int] = None,
        frames: Optional[Iterable[int]] = None, steps: int = 100, restarts: int = 8,
        seed: int = 0, label: Optional[int] = None, ball: str = "frame", frame_weights: Any = None,
        domain: Any = None) -> AttackResult:
    """Projected gradient attack on the margin within per-frame lp balls.

    Parameters
    ----------
    weights : RNNWeights | LSTMWeights | GRUWeights
        The model.
    x : array_like
        Clean input ``(T, n)``.
    eps : float
        Radius of every frame's ball (``>= 0``).
    p : {1, 2, inf}
        The norm (``"inf"``, ``np.inf`` accepted).
    target : int, optional
        Attack only ``logit_label - logit_target``; ``None``: every other class.
    frames : sequence of int, optional
        0-based frames that may move; ``None``: all.
    steps : int
        Gradient steps per restart.
    restarts : int
        Starting points, run as one batch: the clean input and
        ``restarts - 1`` uniform random points of the balls.
    seed : int
        Seed of the random starts: the result is a deterministic function of
        the arguments.
    label : int, optional
        The class to dislodge; ``None``: the model's prediction on ``x``.
    ball, frame_weights, domain
        The threat model, as in :func:`popqorn_fast.certify`: steps and projections in
        u = d / w_t, onto the frame balls or the one joint ball, then clipped to the domain.

    Returns
    -------
    AttackResult
        ``success`` is ``margin < 0``. The search stops at the first step
        where some restart succeeds, so ``margin`` is then only just below 0.

    Notes
    -----
    Step size (per frame, in the lp norm): ``eps * 0.5 * (0.02 + 0.98 * c_k)``
    with a cosine ``c_k`` decaying from 1 to 0, scaled per restart by
    1, 0.5, 2, 0.25, ... for diversity. p = inf uses sign steps, p = 2
    normalised gradient steps, p = 1 steps spread over the ~10% largest
    gradient coordinates followed by the exact l1-ball projection.
    """
    xh = check_sequence(x, weights.input_size)
    eps = check_eps(eps, allow_zero=True)
    p = parse_p(p)
    steps = _int_arg(steps, "steps", 0)
    restarts = _int_arg(restarts, "restarts", 1)
    seed = _int_arg(seed, "seed", 0)
    T = xh.shape[0]
    C = weights.num_classes
    mask = frame_mask(frames, T)
    tm = check_threat(xh, mask, ball, frame_weights, domain)
    z0 = forward.logits(weights, xh)
    if label is None:
        label = int(np.argmax(z0))
    else:
        label = _int_arg(label, "label", 0)
        if label >= C:
            raise ValueError(f"label {label} out of range 0..{C - 1}")
    if target is not None:
        target = _int_arg(target, "target", 0)
        if target >= C:
            raise ValueError(f"target {target} out of range 0..{C - 1}")
        if target == label:
            raise ValueError(f"target {target} equals the label")

    rng = np.random.default_rng(seed)
    X = np.broadcast_to(xh, (restarts,) + xh.shape).copy()
    if restarts > 1 and eps > 0:
        X[1:] = (sample_ball(rng, xh, eps, p, np.flatnonzero(mask), restarts - 1, "interior") if tm.is_default
                 else sample_threat(rng, xh, eps, p, mask, tm, restarts - 1, "interior"))
    factors = np.resize(np.array([1.0, 0.5, 2.0, 0.25]), restarts)
    best_m = np.full(restarts, np.inf)
    best_x = X.copy()
    for k in range(steps + 1):
        z, rec = forward.forward_record(weights, X)
        m, ct = _margin_and_cotangent(z, label, target)
        better = m < best_m
        best_m = np.where(better, m, best_m)
        best_x[better] = X[better]
        if k == steps or eps == 0 or np.any(best_m < 0):
            break
        g = forward.input_gradient(weights, X, rec, ct)
        c_k = 0.5 * (1.0 + np.cos(np.pi * k / max(steps, 1)))
        alpha = eps * 0.5 * (0.02 + 0.98 * c_k) * factors
        if tm.is_default:
            d = X - xh + alpha[:, None, None] * _direction(g, p, mask)
            X = into_ball(xh, xh + project(d, eps, p), eps, p, mask)
        else:
            d = X - xh + alpha[:, None, None] * _direction_threat(g, p, mask, tm)
            X = into_threat(xh, xh + project_threat(d, eps, p, mask, tm), eps, p, mask, tm)
    r = int(np.argmin(best_m))
    x_adv = best_x[r].copy()
    # the contract: x_adv inside every ball, other frames untouched
    nrm = frame_norms(x_adv - xh, p)
    inside = (np.all(nrm[mask] <= eps) if tm.is_default else bool(in_threat(x_adv, xh, eps, p, mask, tm)))
    if not (inside and np.array_equal(x_adv[~mask], xh[~mask])):
        raise AssertionError("pgd produced a point outside the threat model")
    margin = float(best_m[r])
    x_adv.setflags(write=False)
    return AttackResult(success=bool(margin < 0), x_adv=x_adv, margin=margin, label=label,
                        eps=eps, p=p)
