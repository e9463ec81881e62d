"""Threat models: the input set a certificate speaks of (docs/THREAT_MODELS.md).

The default is POPQORN's: every moving frame ``t`` in its own lp ball
``||x_t - x̂_t||_p <= eps``. A :class:`ThreatModel` refines it:

- ``ball="joint"``: one lp ball over all moving frames' coordinates together;
- ``frame_weights`` ``w`` (T,): frame t's radius is ``eps * w_t`` (joint: the weighted norm
  ``||(||d_t||_p / w_t)_t||_p <= eps``); ``w_t = 0`` keeps frame t fixed;
- ``domain`` ``(lo, hi)``: the inputs also lie in the box ``lo <= x' <= hi``;
- ``substitutions`` with ``budget``: frame t may be replaced by one of the rows of
  ``substitutions[t]``, at most ``budget`` frames at once (no radius).

The C++ core concretises over it (cpp/threat_model.hpp); the sampler and the attack
draw from the same set (sampling.py, attack.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .validation import as_real_array, operator_index

BALLS = ("frame", "joint")


@dataclass(frozen=True, eq=False)
class ThreatModel:
    """A validated threat model for inputs of shape (T, n).

    Attributes
    ----------
    ball : {"frame", "joint"}
    frame_weights : numpy.ndarray or None
        (T,) radius multipliers, >= 0; None: all 1.
    lo, hi : numpy.ndarray or None
        (T, n) box of the input domain (lo <= x̂ <= hi); None: no domain.
    substitutions : tuple of numpy.ndarray or None
        Candidates per frame, each (k_t, n); None: the ball threat model.
    budget : int
        Most frames substituted at once (substitution model only).
    """
    ball: str = "frame"
    frame_weights: Optional[np.ndarray] = None
    lo: Optional[np.ndarray] = None
    hi: Optional[np.ndarray] = None
    substitutions: Optional[tuple[np.ndarray, ...]] = None
    budget: int = 0

    @property
    def is_default(self) -> bool:
        """The per-frame ball with unit weights, no domain: POPQORN's threat model."""
        return (self.ball == "frame" and self.frame_weights is None and self.lo is None
                and self.substitutions is None)

    def core(self) -> Any:
        """The ``_core.ThreatModel`` of this threat model."""
        from . import _core
        subs = None if self.substitutions is None else list(self.substitutions)
        return _core.ThreatModel(ball=self.ball, frame_weights=self.frame_weights, domain_lo=self.lo,
                                 domain_hi=self.hi, substitutions=subs, budget=int(self.budget))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (arrays as nested lists); ``{"ball": "frame"}`` for the default."""
        out: dict[str, Any] = {"ball": self.ball}
        if self.frame_weights is not None:
            out["frame_weights"] = self.frame_weights.tolist()
        if self.lo is not None:
            out["domain"] = [self.lo.tolist(), self.hi.tolist()]
        if self.substitutions is not None:
            out["substitutions"] = [s.tolist() for s in self.substitutions]
            out["budget"] = int(self.budget)
        return out


def ball_keywords(record: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The keywords ``ball``, ``frame_weights``, ``domain`` of an entry point from a certificate's
    ``threat`` record (:meth:`ThreatModel.to_dict`; None: the per-frame ball)."""
    if not record:
        return {}
    unknown = sorted(set(record) - {"ball", "frame_weights", "domain"})
    if unknown:
        raise ValueError(f"threat record has keys {unknown} that a radius certificate cannot hold")
    dom = record.get("domain")
    return dict(ball=record.get("ball", "frame"), frame_weights=record.get("frame_weights"),
                domain=None if dom is None else (np.asarray(dom[0]), np.asarray(dom[1])))


def check_threat(x: np.ndarray, mask: np.ndarray, ball: Any = "frame", frame_weights: Any = None,
                 domain: Any = None, substitutions: Any = None, budget: Any = 0) -> ThreatModel:
    """Validate the threat-model arguments of an entry point against the input ``x`` (T, n).

    Raises ``ValueError`` naming the argument and what is wrong.
    """
    if ball not in BALLS:
        raise ValueError(f"ball must be 'frame' or 'joint', got {ball!r}")
    T, n = x.shape
    w = None
    if frame_weights is not None:
        w = as_real_array(frame_weights, "frame_weights")
        if w.shape != (T,):
            raise ValueError(f"frame_weights must have shape ({T},) (one multiplier per frame), got {w.shape}")
        if np.any(w < 0):
            raise ValueError(f"frame_weights must be >= 0 (0 keeps a frame fixed), got {w.tolist()}")
        if not np.any(w[mask] > 0):
            raise ValueError("frame_weights are 0 on every moving frame: nothing moves")
    lo = hi = None
    if domain is not None:
        lo, hi = _check_domain(domain, x)
    subs = None
    if substitutions is not None:
        subs = _check_substitutions(substitutions, T, n)
        budget = _check_budget(budget)
    return ThreatModel(ball, w, lo, hi, subs, int(budget) if subs is not None else 0)


def _check_domain(domain: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``domain = (lo, hi)``: scalars or arrays broadcastable to x's shape, lo <= x <= hi."""
    if not isinstance(domain, (tuple, list)) or len(domain) != 2:
        raise ValueError(f"domain must be a pair (lo, hi) of scalars or arrays, got {domain!r}")
    lo, hi = _box_side(domain[0], x, "lo"), _box_side(domain[1], x, "hi")
    if np.any(lo > hi):
        raise ValueError("domain lo must be <= hi everywhere")
    out = np.flatnonzero((x < lo) | (x > hi))
    if out.size:
        t, j = divmod(int(out[0]), x.shape[1])
        raise ValueError(f"x lies outside the domain at {out.size} coordinate(s), first x[{t}, {j}] = "
                         f"{x[t, j]!r} not in [{lo[t, j]!r}, {hi[t, j]!r}]")
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


def _box_side(v: Any, x: np.ndarray, name: str) -> np.ndarray:
    """One side of the domain as a (T, n) array: a scalar or an array broadcastable to x's shape."""
    arr = as_real_array(v, f"domain {name}")
    try:
        if arr.ndim > 2:
            raise ValueError
        return np.array(np.broadcast_to(arr, x.shape))
    except ValueError:
        raise ValueError(f"domain {name} must be a scalar or an array broadcastable to x's shape {x.shape}, "
                         f"got shape {arr.shape}") from None


def _check_substitutions(subs: Any, T: int, n: int) -> tuple[np.ndarray, ...]:
    if isinstance(subs, np.ndarray) or not isinstance(subs, Sequence) or len(subs) != T:
        raise ValueError(f"candidates must be a sequence of T = {T} arrays (k_t, {n}), one per position")
    out = []
    for t, s in enumerate(subs):
        a = as_real_array(s, f"candidates[{t}]") if np.size(s) else np.zeros((0, n))
        if a.ndim == 1 and a.shape[0] == n:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != n:
            raise ValueError(f"candidates[{t}] must have shape (k, {n}), got {a.shape}")
        a = np.ascontiguousarray(a)
        a.setflags(write=False)
        out.append(a)
    return tuple(out)


def _check_budget(budget: Any) -> int:
    try:
        b = operator_index(budget)
    except TypeError:
        raise ValueError(f"budget must be an integer >= 0, got {budget!r}") from None
    if b < 0:
        raise ValueError(f"budget must be an integer >= 0, got {budget!r}")
    return b


def refuse_threat(tm: ThreatModel, where: str, instead: str) -> None:
    """A route that implements only the per-frame ball refuses any other threat model."""
    if tm.is_default:
        return
    what = ("substitutions" if tm.substitutions is not None else "domain" if tm.lo is not None
            else "frame_weights" if tm.frame_weights is not None else f"ball={tm.ball!r}")
    raise ValueError(f"{what} is not available with {where}; use {instead}")


DEFAULT = ThreatModel()
