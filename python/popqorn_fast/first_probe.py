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

from typing import Any, Optional

import numpy as np

from .bisection import EPS_FLOOR, EPS_START
from .forward import logits_vjp
from .sampling import frame_multipliers, frame_norms
from .threat import ThreatModel

LINEAR_FRACTION = 0.4  # the first probe as a fraction of ε_lin (fewest passes on the shared models)


def _dual(p: float) -> float:
    """q with 1/p + 1/q = 1, for p in {1, 2, inf}."""
    return np.inf if p == 1.0 else (1.0 if p == np.inf else 2.0)


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
    K, C = len(classes), weights.num_classes
    ct = np.zeros((K, C))
    ct[:, label] = 1.0
    ct[np.arange(K), classes] = -1.0
    with np.errstate(all="ignore"):
        z, g = logits_vjp(weights, np.repeat(x[None], K, axis=0), ct)
        q = _dual(p)
        # (K, T): each frame's dual norm times its radius multiplier
        per_frame = frame_norms(g, q) * frame_multipliers(mask, threat)
        if threat.ball == "joint":  # one ball over all moving frames: the dual norm of the frames' norms
            size = frame_norms(per_frame, q)
        else:  # a ball per frame: the frames' worst cases add up
            size = per_frame.sum(axis=-1)
        margins = z[0, label] - z[0, classes]
        r = margins / size
    if not np.all(np.isfinite(size)):
        return float("nan")
    return float(np.min(np.where(size > 0.0, r, np.inf)))


def first_probe(weights: Any, x: np.ndarray, label: int, classes: np.ndarray, p: float, mask: np.ndarray,
                threat: ThreatModel, eps_max: float) -> float:
    """The search's first ε: ``LINEAR_FRACTION`` × :func:`linear_radius`, within
    ``[EPS_FLOOR, eps_max]``; ``min(EPS_START, eps_max)`` where that radius is not a positive
    finite number or the threat model substitutes frames."""
    lin: Optional[float] = None
    if threat.substitutions is None:
        lin = linear_radius(weights, x, label, classes, p, mask, threat)
    if lin is None or not (np.isfinite(lin) and lin > 0.0):
        return min(EPS_START, eps_max)
    return float(min(max(LINEAR_FRACTION * lin, EPS_FLOOR), eps_max))
