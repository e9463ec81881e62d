"""Where the radius search starts (docs/RECURRENCES.md §5): a fraction of the linearised
distance to the decision boundary, instead of one fixed ε for every model and input.

To first order the margin m_j moves by at most ε·‖∇m_j‖_* over the threat model's set of
radius ε (‖·‖_* its dual norm), so it reaches 0 at ε_lin = m_j(x̂) / ‖∇m_j(x̂)‖_*. A certified
radius lies below the distance to the nearest adversarial example, which ε_lin estimates:
on the shared trained and random models the certified radius was 0.06-1.0 × ε_lin (median
0.42), while the radii themselves ran from 0.0019 to 0.45, up to 54 × away from a fixed
0.1. The probe only steers the search; soundness never depends on it (bisection.py returns
a probed, certified ε).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .bisection import EPS_FLOOR, EPS_START
from .forward import forward_record, input_gradient
from .sampling import frame_multipliers, frame_norms
from .threat import ThreatModel

# the first probe as a fraction of ε_lin: fewest passes on the shared and random models since
# the second probe is aimed by a parabola (0.4 before; bench/results/2026-12-07-second-probe.md)
LINEAR_FRACTION = 0.25


def _dual(p: float) -> float:
    """q with 1/p + 1/q = 1, for p in {1, 2, inf}."""
    return np.inf if p == 1.0 else (1.0 if p == np.inf else 2.0)


@dataclass(frozen=True)
class SearchStart:
    """Where a radius search starts, and how fast the smallest margin falls there."""
    eps: float                # the first probe
    slope: Optional[float]    # −dm/dε at ε = 0 of the smallest clean margin (None: unknown)


def _linearised(weights: Any, x: np.ndarray, label: int, classes: np.ndarray, p: float, mask: np.ndarray,
                threat: ThreatModel, record: Optional[tuple[np.ndarray, dict]] = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The clean margins m_j and their first-order rates ‖∇m_j‖_* over the threat model's set
    of radius 1 (K,) each (see :func:`linear_radius`); ``record``: the logits and records of
    ``forward_record(weights, x[None])`` where already computed."""
    K, C = len(classes), weights.num_classes
    ct = np.zeros((K, C))
    ct[:, label] = 1.0
    ct[np.arange(K), classes] = -1.0
    with np.errstate(all="ignore"):
        z, rec = record if record is not None else forward_record(weights, x[None])
        g = input_gradient(weights, x[None], rec, ct)  # the K margins' gradients from one forward pass
        q = _dual(p)
        # (K, T): each frame's dual norm times its radius multiplier
        per_frame = frame_norms(g, q) * frame_multipliers(mask, threat)
        if threat.ball == "joint":  # one ball over all moving frames: the dual norm of the frames' norms
            size = frame_norms(per_frame, q)
        else:  # a ball per frame: the frames' worst cases add up
            size = per_frame.sum(axis=-1)
    return z[0, label] - z[0, classes], size


def _radius(margins: np.ndarray, size: np.ndarray) -> float:
    if not np.all(np.isfinite(size)):
        return float("nan")
    with np.errstate(all="ignore"):
        return float(np.min(np.where(size > 0.0, margins / size, np.inf)))


def linear_radius(weights: Any, x: np.ndarray, label: int, classes: np.ndarray, p: float, mask: np.ndarray,
                  threat: ThreatModel) -> float:
    """The smallest ε at which a margin's first-order model reaches zero.

    Parameters
    ----------
    weights : RNNWeights, LSTMWeights, GRUWeights or RecurrentClassifier
    x : numpy.ndarray, shape (T, n)
        The clean input.
    label : int
    classes : numpy.ndarray
        The classes j of the margins ``logit_label - logit_j``.
    p : float
        1.0, 2.0 or inf.
    mask : numpy.ndarray, shape (T,)
        The perturbed frames.
    threat : ThreatModel
        Per-frame or joint ball, frame weights (a domain is ignored: it only shrinks the set).

    Returns
    -------
    float
        ``min_j m_j / ‖∇m_j‖_*``; ``inf`` where no margin moves to first order, ``nan``
        where the gradient is not finite.
    """
    return _radius(*_linearised(weights, x, label, classes, p, mask, threat))


def first_probe(weights: Any, x: np.ndarray, label: int, classes: np.ndarray, p: float, mask: np.ndarray,
                threat: ThreatModel, eps_max: float, record: Optional[tuple[np.ndarray, dict]] = None) -> SearchStart:
    """The search's first ε, ``LINEAR_FRACTION`` × :func:`linear_radius` within
    ``[EPS_FLOOR, eps_max]`` (``min(EPS_START, eps_max)`` where that radius is not a positive
    finite number or the threat model substitutes frames), and the slope at ε = 0 of the
    smallest margin's bound, ``‖∇m_j‖_*`` of the smallest clean margin m_j (to first order the
    bound falls as the margin itself: the relaxations become tangents as ε → 0). ``record``:
    ``forward_record(weights, x[None])`` where the caller has it (the gradients then need
    no forward pass of their own)."""
    if threat.substitutions is not None:
        return SearchStart(min(EPS_START, eps_max), None)
    margins, size = _linearised(weights, x, label, classes, p, mask, threat, record)
    lin = _radius(margins, size)
    s0 = float(size[np.argmin(margins)]) if margins.size else float("nan")
    slope = s0 if np.isfinite(s0) and s0 > 0.0 else None
    if not (np.isfinite(lin) and lin > 0.0):
        return SearchStart(min(EPS_START, eps_max), slope)
    return SearchStart(float(min(max(LINEAR_FRACTION * lin, EPS_FLOOR), eps_max)), slope)
