"""The certificate record returned by ``certify``: a frozen, self-describing result,
plus the SHA-256 fingerprints of models and inputs that let a saved certificate be
re-checked against the very model and input it was computed for."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


def _package_version() -> str:
    from . import __version__
    return __version__


def input_sha256(x: Any) -> str:
    """SHA-256 (hex) of an input's float64 C-order bytes.

    Parameters
    ----------
    x : array_like
        The input sequence (any dtype and memory order; converted to float64, C order).

    Returns
    -------
    str
        64 hex digits. The shape is not hashed: equal values in equal order hash equal.
    """
    return hashlib.sha256(np.ascontiguousarray(np.asarray(x, dtype=np.float64)).tobytes()).hexdigest()


def model_sha256(weights: Any) -> str:
    """SHA-256 (hex) of a model: its kind and activation, then every parameter's shape
    and float64 C-order bytes.

    The header line ``"<kind>:<activation>"`` (activation ``tanh`` for LSTM/GRU) is hashed
    first, then for each field in the order ``weight_ih, weight_hh, bias_ih, bias_hh,
    out_weight, out_bias, h0`` (and ``c0`` for an LSTM) its shape as text and its bytes, so
    two models hash equal exactly when they compute the same function with the same
    parameters.

    Parameters
    ----------
    weights : RNNWeights, LSTMWeights or GRUWeights

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256()
    if weights.kind == "general":
        return _general_sha256(weights, h)
    h.update(f"{weights.kind}:{getattr(weights, 'activation', 'tanh')}\n".encode())
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "out_weight", "out_bias", "h0"]
    if weights.kind == "lstm":
        names.append("c0")
    for name in names:
        arr = np.ascontiguousarray(np.asarray(getattr(weights, name), dtype=np.float64))
        h.update(f"{name}{arr.shape}\n".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _update(h: Any, name: str, value: Any) -> None:
    arr = np.ascontiguousarray(np.asarray(value, dtype=np.float64))
    h.update(f"{name}{arr.shape}\n".encode())
    h.update(arr.tobytes())


def _general_sha256(model: Any, h: Any) -> str:
    """:func:`model_sha256` of a RecurrentClassifier: the readout, then every frame layer,
    recurrent layer (kind, activation, each direction's arrays and initial states) and head
    layer in order, each with its activation, shapes and bytes."""
    h.update(f"general:{model.readout}\n".encode())
    for group, dense in (("frame", model.frame_layers), ("head", model.head)):
        for j, dl in enumerate(dense):
            h.update(f"{group}{j}:{dl.activation}\n".encode())
            _update(h, "weight", dl.weight)
            _update(h, "bias", dl.bias)
        if group == "frame":
            for l, layer in enumerate(model.layers):
                h.update(f"layer{l}:{layer.kind}:{layer.activation}:{layer.num_directions}\n".encode())
                for k, d in enumerate(layer.directions()):
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        _update(h, f"{'fb'[k]}.{name}", getattr(d, name))
                for name in ("h0", "c0"):
                    if getattr(layer, name) is not None:
                        _update(h, name, getattr(layer, name))
    return h.hexdigest()


@dataclass(frozen=True)
class Certificate:
    """A certified robustness radius for one input.

    Attributes
    ----------
    eps : float
        Certified radius: no perturbation of the chosen frames, each within its own
        lp ball of radius ``eps`` (or within ``threat``'s set at ``eps``), changes the prediction (0.0 if none certified or
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
        increasing order, or only the target; see ``classes``). When nothing was
        certified (``eps == 0``) they are the bounds at the smallest probed ε;
        empty when the input is misclassified (nothing is proven).
    bound_passes : int
        Bound computations spent by the search (bounded by the search's cap).
    seconds : float
        Wall-clock seconds of the search.
    planes : str
        Relaxation of the 2-D products used (LSTM/GRU).
    kind : str
        Architecture: "rnn", "lstm" or "gru".
    classes : tuple of int or None
        The classes j of ``margin_lower``, in order.
    model_sha256 : str or None
        :func:`model_sha256` of the model certified (``None`` when not recorded,
        e.g. in a record built by hand).
    input_sha256 : str or None
        :func:`input_sha256` of the input certified (``None`` when not recorded).
    threat : dict or None
        The threat model when it is not the per-frame ball (``ThreatModel.to_dict``:
        ``ball``, ``frame_weights``, ``domain``); None for POPQORN's per-frame balls.
    version : str
        ``popqorn_fast`` version that computed the certificate.
    rounding : str
        ``"sound"``: the bounds hold whatever the floating-point rounding (docs/ROUNDING.md);
        ``"sound32"``: the same, the recurrent products computed in float32 (ROUNDING.md §7);
        ``"nearest"``: plain round-to-nearest arithmetic (also what a record without this
        field was computed with).
    eps_relaxed : float or None
        None when the bound pass at ``eps`` itself proved ``margin_lower``. Otherwise the
        larger radius of the failed probe whose relaxations proved them: that pass's
        linear bounds hold over its ball, hence over the smaller ball of radius ``eps``
        (docs/RECURRENCES.md §5); ``verify`` recomputes them that way.
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
    model_sha256: Optional[str] = None
    input_sha256: Optional[str] = None
    threat: Optional[dict[str, Any]] = None
    version: str = field(default_factory=_package_version)
    rounding: str = "nearest"
    eps_relaxed: Optional[float] = None

    def with_provenance(self, weights: Any, x: Any) -> "Certificate":
        """A copy that records the SHA-256 of ``weights`` and of the input ``x``."""
        return dataclasses.replace(self, model_sha256=model_sha256(weights), input_sha256=input_sha256(x))

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
            "model_sha256": self.model_sha256,
            "input_sha256": self.input_sha256,
            "version": self.version,
            "rounding": self.rounding,
        } | ({} if self.threat is None else {"threat": self.threat}) | (
            {} if self.eps_relaxed is None else {"eps_relaxed": float(self.eps_relaxed)})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Certificate":
        """Rebuild a certificate from :meth:`to_dict` output (e.g. read back from JSON).

        Raises ``ValueError`` naming the missing fields if ``d`` is not such a record.
        """
        from .validation import parse_p
        need = ["eps", "label", "p", "margin_lower"]
        missing = [k for k in need if k not in d]
        if missing:
            raise ValueError(f"not a certificate record: missing {missing}; found {sorted(d)}")
        frames = d.get("frames")
        classes = d.get("margin_classes")
        return cls(
            eps=float(d["eps"]),
            eps_upper=None if d.get("eps_upper") is None else float(d["eps_upper"]),
            label=int(d["label"]),
            target=None if d.get("target") is None else int(d["target"]),
            p=parse_p(d["p"]),
            frames=None if frames is None else tuple(int(f) for f in frames),
            misclassified=bool(d.get("misclassified", False)),
            margin_lower=np.asarray(d["margin_lower"], dtype=np.float64),
            bound_passes=int(d.get("bound_passes", 0)),
            seconds=float(d.get("seconds", 0.0)),
            planes=str(d.get("planes", "exact")),
            kind=str(d.get("kind", "")),
            classes=None if classes is None else tuple(int(c) for c in classes),
            model_sha256=d.get("model_sha256"),
            input_sha256=d.get("input_sha256"),
            threat=d.get("threat"),
            version=str(d.get("version", "")),
            rounding=str(d.get("rounding", "nearest")),
            eps_relaxed=None if d.get("eps_relaxed") is None else float(d["eps_relaxed"]),
        )

    def to_json(self, **kwargs: Any) -> str:
        """The record as a JSON string (``kwargs`` go to ``json.dumps``)."""
        return json.dumps(self.to_dict(), **kwargs)
