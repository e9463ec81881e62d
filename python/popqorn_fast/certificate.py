"""The certificate record returned by ``certify``: a frozen, self-describing result."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class Certificate:
    """A certified robustness radius for one input.

    Attributes
    ----------
    eps : float
        Certified radius: no perturbation of the chosen frames, each within its own
        lp ball of radius ``eps``, changes the prediction (0.0 if none certified or
        the input is misclassified).
    eps_upper : float or None
        Smallest ε at which the search failed to certify (not an attack radius).
    label : int
        The class whose prediction is certified.
    target : int or None
        The single competing class (targeted), or None (every other class).
    p : float
        Norm order: 1.0, 2.0 or inf.
    frames : tuple of int or None
        Perturbed frames (0-based), None for all.
    misclassified : bool
        True when a given ``label`` is not the model's prediction (then ``eps == 0``).
    margin_lower : numpy.ndarray
        Proven lower bounds of ``logit_label − logit_j`` at ``eps`` (j ≠ label in
        increasing order, or only the target).
    bound_passes : int
        Bound computations spent by the search (bounded by the search's cap).
    seconds : float
        Wall-clock seconds of the search.
    planes : str
        Relaxation of the 2-D products used (LSTM/GRU).
    kind : str
        Architecture: "rnn", "lstm" or "gru".
    """
    eps: float
    eps_upper: Optional[float]
    label: int
    target: Optional[int]
    p: float
    frames: Optional[tuple[int, ...]]
    misclassified: bool
    margin_lower: np.ndarray
    bound_passes: int
    seconds: float
    planes: str
    kind: str = ""
    classes: Optional[tuple[int, ...]] = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (p as 1, 2 or "inf")."""
        from .validation import p_name
        return {
            "eps": float(self.eps),
            "eps_upper": None if self.eps_upper is None else float(self.eps_upper),
            "label": int(self.label),
            "target": None if self.target is None else int(self.target),
            "p": p_name(self.p),
            "frames": None if self.frames is None else [int(f) for f in self.frames],
            "misclassified": bool(self.misclassified),
            "margin_lower": [float(v) for v in np.asarray(self.margin_lower)],
            "margin_classes": None if self.classes is None else [int(c) for c in self.classes],
            "bound_passes": int(self.bound_passes),
            "seconds": float(self.seconds),
            "planes": self.planes,
            "kind": self.kind,
        }

    def to_json(self, **kwargs: Any) -> str:
        """The record as a JSON string (``kwargs`` go to ``json.dumps``)."""
        return json.dumps(self.to_dict(), **kwargs)
