"""The attack's radius: the smallest ε at which PGD (:func:`popqorn_fast.attack.pgd`) finds an
adversarial example, bracketed by the same radius search as the certificates
(:func:`popqorn_fast.bisection.search_radius`). Every certified ε* is at most the true
robust radius, which is at most this attack radius, so ``eps* / attack_eps`` in (0, 1]
says how tight a certificate is (1: the certificate cannot be improved)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .attack import pgd
from .bisection import EPS_START, search_radius


@dataclass(frozen=True)
class AttackBracket:
    """Outcome of :func:`attack_radius`.

    Attributes
    ----------
    eps : float or None
        Smallest probed ε at which PGD found an adversarial example (an upper bound of
        the robust radius); 0.0 for a misclassified input; None if PGD found none up to
        ``eps_max``.
    eps_lower : float
        Largest probed ε at which PGD found none (0.0 if none was probed).
    passes : int
        PGD runs spent.
    seconds : float
    """
    eps: Optional[float]
    eps_lower: float
    passes: int
    seconds: float

    def to_dict(self, certified: Optional[float] = None) -> dict[str, Any]:
        """JSON-ready keys ``attack_eps``, ``attack_eps_lower``, ``attack_passes``,
        ``attack_seconds`` and, given the certified ε*, ``attack_ratio`` = ε* / attack_eps
        (None when either is missing or the attack radius is 0)."""
        ratio = None
        if certified is not None and self.eps is not None and self.eps > 0.0:
            ratio = float(certified) / self.eps
        return {"attack_eps": self.eps, "attack_eps_lower": self.eps_lower, "attack_passes": self.passes,
                "attack_seconds": self.seconds, "attack_ratio": ratio}


def attack_radius(weights: Any, x: Any, eps_max: float, p: Any = 2, target: Optional[int] = None,
                  frames: Any = None, label: Optional[int] = None, rtol: float = 1e-3,
                  eps_start: Optional[float] = None, steps: int = 100, restarts: int = 8,
                  seed: int = 0, threat: Optional[dict[str, Any]] = None) -> AttackBracket:
    """Bracket the smallest ε at which PGD finds an adversarial example.

    Parameters
    ----------
    weights, x, p, target, frames, label
        As in :func:`popqorn_fast.certify`.
    eps_max : float
        The search never probes above it.
    rtol : float
        Relative accuracy of the bracket (as the certified search).
    eps_start : float, optional
        First probe; the certified ε* is a good one (PGD cannot succeed below it).
    steps, restarts, seed
        As in :func:`popqorn_fast.attack.pgd` (deterministic for a given seed).
    threat : dict, optional
        ``ball``, ``frame_weights``, ``domain`` of pgd (the certificate's threat model).

    Returns
    -------
    AttackBracket
    """
    t0 = time.perf_counter()
    logits = weights.logits(np.asarray(x, dtype=np.float64))
    predicted = int(np.argmax(logits))
    if label is not None and int(label) != predicted:  # already adversarial at ε = 0
        return AttackBracket(0.0, 0.0, 0, time.perf_counter() - t0)
    lab = predicted
    others = np.delete(logits, lab) if target is None else logits[[int(target)]]
    clean = float(logits[lab] - np.max(others))

    def margin(eps: float) -> float:  # > 0: the attack failed at eps (the "certified" side)
        return pgd(weights, x, eps, p=p, target=target, frames=frames, steps=steps, restarts=restarts,
                   seed=seed, label=lab, **(threat or {})).margin

    start = eps_start if eps_start is not None and eps_start > 0.0 else EPS_START
    res = search_radius(margin, eps_max, rtol, eps_start=min(start, eps_max), margin_at_zero=clean)
    return AttackBracket(res.eps_upper, res.eps, res.passes, time.perf_counter() - t0)
