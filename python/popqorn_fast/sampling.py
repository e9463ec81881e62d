"""Perturbations inside per-frame lp balls (POPQORN's threat model).

Every perturbed frame ``t`` moves inside its own ball
``||x_t - x̂_t||_p <= eps``; frames outside the chosen set stay fixed.
:func:`sample_ball` draws perturbed inputs (interior, surface, vertices);
the helpers :func:`parse_p`, :func:`frame_mask`, :func:`frame_norms`,
:func:`project` and :func:`into_ball` are shared with :mod:`popqorn_fast.attack`.

Every returned point satisfies the ball constraint *in computed floating
point*: ``frame_norms(x_new - x̂, p) <= eps`` evaluated in float64 holds
exactly (points are pulled in by a few ulps where rounding pushed them out).
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np

from .validation import frame_mask as validated_frame_mask
from .validation import check_eps, check_sequence, parse_p

__all__ = ["sample_ball", "parse_p", "frame_mask", "frame_norms", "project", "into_ball",
           "project_l1"]

_KINDS = ("interior", "surface", "vertices")


def frame_mask(frames: Optional[Iterable[int]], T: int) -> np.ndarray:
    """``(T,)`` bool mask of the perturbed frames (``None``: all); validated by
    :func:`popqorn_fast.validation.frame_mask`."""
    return validated_frame_mask(frames, T)[0]


def frame_norms(d: np.ndarray, p: float) -> np.ndarray:
    """lp norm of each frame (over the last axis)."""
    a = np.abs(d)
    if p == np.inf:
        return a.max(axis=-1)
    if p == 1.0:
        return a.sum(axis=-1)
    return np.sqrt(np.sum(a * a, axis=-1))


def project_l1(v: np.ndarray, eps: float) -> np.ndarray:
    """Exact Euclidean projection of each row (last axis) onto the l1 ball of radius ``eps``.

    Sort-based algorithm (Duchi et al., 2008), vectorised over leading axes.
    """
    shape = v.shape
    v2 = v.reshape(-1, shape[-1])
    a = np.abs(v2)
    out = v2.copy()
    over = a.sum(axis=1) > eps
    if np.any(over):
        ao = a[over]
        u = -np.sort(-ao, axis=1)
        css = np.cumsum(u, axis=1)
        j = np.arange(1, u.shape[1] + 1)
        cond = u - (css - eps) / j > 0
        rho = u.shape[1] - 1 - np.argmax(cond[:, ::-1], axis=1)  # last index where cond holds
        theta = (css[np.arange(len(rho)), rho] - eps) / (rho + 1)
        out[over] = np.sign(v2[over]) * np.maximum(ao - theta[:, None], 0.0)
    return out.reshape(shape)


def project(d: np.ndarray, eps: float, p: float) -> np.ndarray:
    """Project each frame of a perturbation ``d`` (``(..., T, n)``) onto its lp ball."""
    if p == np.inf:
        return np.clip(d, -eps, eps)
    if p == 2.0:
        nrm = frame_norms(d, 2.0)
        scale = np.where(nrm > eps, eps / np.maximum(nrm, 1e-300), 1.0)
        return d * scale[..., None]
    return project_l1(d, eps)


def into_ball(x_hat: np.ndarray, x_new: np.ndarray, eps: float, p: float,
              mask: np.ndarray) -> np.ndarray:
    """Return ``x_new`` with frames outside ``mask`` reset to ``x_hat`` and every
    perturbed frame inside its ball in computed float64 arithmetic.

    Frames whose computed ``||x_new_t - x_hat_t||_p`` exceeds ``eps`` (by
    rounding) are scaled towards ``x_hat_t`` by a few ulps until it does not.
    """
    x_new = np.array(x_new, dtype=np.float64, copy=True)
    x_new[..., ~mask, :] = np.broadcast_to(x_hat[~mask], x_new[..., ~mask, :].shape)
    for it in range(60):
        nrm = frame_norms(x_new - x_hat, p)
        bad = (nrm > eps) & mask
        if not np.any(bad):
            return x_new
        # pull in by a relative amount that doubles each round: rounding of x_hat + d can be
        # far above ulp(eps) when |x_hat| >> eps
        delta = min(4.0 * np.finfo(float).eps * 2.0 ** it, 0.5)
        d = x_new - x_hat
        fac = np.where(bad, (1.0 - delta) * eps / np.maximum(nrm, 1e-300), 1.0)
        x_new = np.where(bad[..., None], x_hat + d * fac[..., None], x_new)
    # unreachable in practice: fall back to the centre for anything still out
    nrm = frame_norms(x_new - x_hat, p)
    bad = (nrm > eps) & mask
    x_new = np.where(bad[..., None], np.broadcast_to(x_hat, x_new.shape), x_new)
    return x_new


def _signs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 2, size=shape) * 2.0 - 1.0


def sample_ball(rng: np.random.Generator, x: Any, eps: float, p: Any = 2,
                frames: Optional[Iterable[int]] = None, count: int = 1000,
                kind: str = "interior") -> np.ndarray:
    """Perturbed copies of ``x`` with each perturbed frame in its own lp ball.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the result is a pure function of its state).
    x : array_like
        The clean input, shape ``(T, n)``.
    eps : float
        Ball radius, ``>= 0``.
    p : {1, 2, inf}
        The norm (``"inf"`` and ``np.inf`` accepted).
    frames : sequence of int, optional
        0-based indices of the frames that move; ``None``: all frames.
    count : int
        Number of samples.
    kind : {"interior", "surface", "vertices"}
        ``"interior"``: uniform in each ball (independently per frame);
        ``"surface"``: on the sphere ``||d_t||_p = eps`` (to rounding; uniform
        for p = 2, uniform on the simplex faces for p = 1, a random face for
        p = inf); ``"vertices"``: the vertices of the ball, i.e. ``±eps`` in
        every coordinate for p = inf and ``±eps e_k`` for p = 1 (p = 2 has no
        vertices: ``ValueError``).

    Returns
    -------
    ndarray
        ``(count, T, n)`` float64; frames outside ``frames`` equal ``x``
        exactly and every perturbed frame satisfies the ball constraint in
        float64.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    xh = check_sequence(x, None)
    eps = check_eps(eps, allow_zero=True)
    p = parse_p(p)
    if isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    T, n = xh.shape
    mask = frame_mask(frames, T)
    shape = (int(count), T, n)
    if kind == "interior":
        if p == np.inf:
            d = rng.uniform(-1.0, 1.0, size=shape)
        elif p == 2.0:
            g = rng.normal(size=shape)
            g /= np.maximum(np.linalg.norm(g, axis=-1, keepdims=True), 1e-300)
            d = g * rng.uniform(size=shape[:2] + (1,)) ** (1.0 / n)
        else:  # uniform in the l1 ball: first n of a Dirichlet(1, ..., 1) over n + 1, random signs
            e = rng.exponential(size=shape[:2] + (n + 1,))
            d = e[..., :n] / e.sum(axis=-1, keepdims=True) * _signs(rng, shape)
    elif kind == "surface":
        if p == np.inf:
            d = rng.uniform(-1.0, 1.0, size=shape)
            k = rng.integers(0, n, size=shape[:2])
            np.put_along_axis(d, k[..., None], _signs(rng, shape[:2] + (1,)), axis=-1)
        elif p == 2.0:
            d = rng.normal(size=shape)
            d /= np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-300)
        else:
            e = rng.exponential(size=shape)
            d = e / e.sum(axis=-1, keepdims=True) * _signs(rng, shape)
    else:
        if p == 2.0:
            raise ValueError("kind='vertices' needs p = 1 or inf: the l2 ball has no vertices")
        if p == np.inf:
            d = _signs(rng, shape)
        else:
            d = np.zeros(shape)
            k = rng.integers(0, n, size=shape[:2])
            np.put_along_axis(d, k[..., None], _signs(rng, shape[:2] + (1,)), axis=-1)
    x_new = xh + eps * d
    return into_ball(xh, x_new, eps, p, mask)


# ----------------------------------------------------------------------------- other threat models
# (docs/THREAT_MODELS.md) Work in u = d / w_t on the moving frames (w_t = frame_weights[t], 1 by
# default): the frame ball is then ||u_t||_p <= eps per frame, the joint ball ||u||_p <= eps over
# all moving coordinates; a domain clips x' to [lo, hi] (clipping only shrinks |d_j|, so a
# clipped point stays in the ball).

def frame_multipliers(mask: np.ndarray, tm: Any) -> np.ndarray:
    """(T,) radius multipliers of the frames (the threat model's frame weights, 1 without),
    0 on the fixed frames."""
    w = np.ones(mask.shape[0]) if tm.frame_weights is None else np.asarray(tm.frame_weights, dtype=np.float64)
    return np.where(mask, w, 0.0)


def threat_norms(d: np.ndarray, p: float, mask: np.ndarray, tm: Any) -> np.ndarray:
    """The smallest ε whose threat-model ball holds each perturbation ``d`` (``(..., T, n)``):
    ``max_t ||d_t||_p / w_t`` (frame ball) or ``||(d_t / w_t)_t||_p`` (joint), moving frames
    only (``inf`` if a frame that may not move moved)."""
    w = frame_multipliers(mask, tm)
    moving = w > 0
    u = d[..., moving, :] / w[moving][:, None]
    if tm.ball == "joint":
        val = frame_norms(u.reshape(u.shape[:-2] + (-1,)), p)
    else:
        val = frame_norms(u, p).max(axis=-1) if u.shape[-2] else np.zeros(d.shape[:-2])
    still = np.all(d[..., ~moving, :] == 0.0, axis=(-1, -2))
    return np.where(still, val, np.inf)


def project_threat(d: np.ndarray, eps: float, p: float, mask: np.ndarray, tm: Any) -> np.ndarray:
    """``d`` (``(..., T, n)``) projected onto the threat model's ball (in u = d / w), fixed frames 0."""
    w = frame_multipliers(mask, tm)
    moving = w > 0
    out = np.zeros_like(d)
    u = d[..., moving, :] / w[moving][:, None]
    if tm.ball == "joint":
        flat = u.reshape(u.shape[:-2] + (1, -1))
        u = project(flat, eps, p).reshape(u.shape)
    else:
        u = project(u, eps, p)
    out[..., moving, :] = u * w[moving][:, None]
    return out


def into_threat(x_hat: np.ndarray, x_new: np.ndarray, eps: float, p: float, mask: np.ndarray,
                tm: Any) -> np.ndarray:
    """``x_new`` clipped to the domain, fixed frames reset, and pulled towards ``x_hat`` by a
    few ulps where rounding left it outside the ball (checked in float64 by :func:`threat_norms`)."""
    w = frame_multipliers(mask, tm)
    x_new = np.array(x_new, dtype=np.float64, copy=True)
    x_new[..., w == 0, :] = np.broadcast_to(x_hat[w == 0], x_new[..., w == 0, :].shape)
    x_new = _clip(x_new, tm)
    for it in range(60):
        nrm = threat_norms(x_new - x_hat, p, mask, tm)
        bad = nrm > eps
        if not np.any(bad):
            return x_new
        delta = min(4.0 * np.finfo(float).eps * 2.0 ** it, 0.5)
        fac = np.where(bad, (1.0 - delta) * eps / np.maximum(nrm, 1e-300), 1.0)
        x_new = _clip(x_hat + (x_new - x_hat) * fac[..., None, None], tm)
    bad = threat_norms(x_new - x_hat, p, mask, tm) > eps
    return np.where(bad[..., None, None], np.broadcast_to(x_hat, x_new.shape), x_new)


def _clip(x: np.ndarray, tm: Any) -> np.ndarray:
    return x if tm.lo is None else np.clip(x, tm.lo, tm.hi)


def in_threat(x_new: np.ndarray, x_hat: np.ndarray, eps: float, p: float, mask: np.ndarray, tm: Any) -> np.ndarray:
    """Which points of ``x_new`` (``(..., T, n)``) lie in the threat model's set (float64)."""
    ok = threat_norms(x_new - x_hat, p, mask, tm) <= eps
    if tm.lo is not None:
        ok &= np.all((x_new >= tm.lo) & (x_new <= tm.hi), axis=(-1, -2))
    return ok


def sample_threat(rng: np.random.Generator, x_hat: np.ndarray, eps: float, p: float, mask: np.ndarray,
                  tm: Any, count: int, kind: str = "interior") -> np.ndarray:
    """``count`` points of the threat model's set (``(count, T, n)``), as :func:`sample_ball`'s
    ``kind`` (interior / surface / vertices of the frame balls or of the one joint ball), then
    clipped to the domain."""
    T, n = x_hat.shape
    w = frame_multipliers(mask, tm)
    moving = np.flatnonzero(w > 0)
    d = np.zeros((int(count), T, n))
    if moving.size:
        if tm.ball == "joint":
            flat = sample_ball(rng, np.zeros((1, moving.size * n)), 1.0, p, None, count, kind)
            u = flat.reshape(int(count), moving.size, n)
        else:
            u = sample_ball(rng, np.zeros((moving.size, n)), 1.0, p, None, count, kind)
        d[:, moving, :] = eps * u * w[moving][:, None]
    return into_threat(x_hat, x_hat + d, eps, p, mask, tm)
