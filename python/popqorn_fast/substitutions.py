"""Word substitutions (docs/THREAT_MODELS.md): position t of the input may be replaced by one of
the vectors ``candidates[t]`` (its synonyms' embeddings), at most ``budget`` positions at once.
No radius to search: one bound pass answers "robust" (every margin's lower bound > 0) or "not
proven". The core bounds each row by the sum of the ``budget`` most negative
``min(0, min_{s in S_t} A_t (s - x_t))`` (cpp/threat_model.hpp)."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import numpy as np

from . import forward
from .certificate import _package_version, input_sha256
from .validation import check_sequence

__all__ = ["SubstitutionCertificate", "certify_substitutions", "substitution_bounds",
           "substitution_sensitivity", "search_substitutions", "enumerate_substitutions"]


@dataclass(frozen=True)
class SubstitutionCertificate:
    """The answer of :func:`certify_substitutions` for one input.

    Attributes
    ----------
    robust : bool
        Proven: no replacement of at most ``budget`` positions by their candidates changes the
        prediction (untargeted) or makes ``target`` win (targeted). False: not proven.
    margin_lower : numpy.ndarray
        Proven lower bounds of ``logit_label - logit_j`` over the substitutions (``classes``).
    label, target, budget : int, int or None, int
    misclassified : bool
        A given ``label`` that the model does not predict: nothing proven, ``robust`` False.
    candidates : tuple of int
        How many candidates each position has.
    classes : tuple of int
    bound_passes, seconds, planes, kind, model_sha256, input_sha256, version, rounding
        As in :class:`popqorn_fast.Certificate`.
    threat : dict
        ``ThreatModel.to_dict``: the candidate vectors and the budget (verify re-checks them).
    """
    robust: bool
    margin_lower: np.ndarray
    label: int
    target: Optional[int]
    budget: int
    misclassified: bool
    candidates: tuple[int, ...]
    classes: tuple[int, ...]
    bound_passes: int
    seconds: float
    planes: str
    kind: str
    model_sha256: Optional[str] = None
    input_sha256: Optional[str] = None
    threat: Optional[dict[str, Any]] = None
    version: str = field(default_factory=_package_version)
    rounding: str = "nearest"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {"robust": bool(self.robust), "margin_lower": [float(v) for v in self.margin_lower],
                "label": int(self.label), "target": None if self.target is None else int(self.target),
                "budget": int(self.budget), "misclassified": bool(self.misclassified),
                "candidates": list(self.candidates), "margin_classes": list(self.classes),
                "bound_passes": int(self.bound_passes), "seconds": float(self.seconds), "planes": self.planes,
                "kind": self.kind, "model_sha256": self.model_sha256, "input_sha256": self.input_sha256,
                "threat": self.threat, "version": self.version, "rounding": self.rounding}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SubstitutionCertificate":
        """Rebuild from :meth:`to_dict` output; ``ValueError`` naming missing fields."""
        missing = [k for k in ("robust", "label", "budget", "margin_lower", "threat") if k not in d]
        if missing:
            raise ValueError(f"not a substitution certificate record: missing {missing}; found {sorted(d)}")
        return cls(bool(d["robust"]), np.asarray(d["margin_lower"], dtype=np.float64), int(d["label"]),
                   None if d.get("target") is None else int(d["target"]), int(d["budget"]),
                   bool(d.get("misclassified", False)), tuple(int(k) for k in d.get("candidates", ())),
                   tuple(int(c) for c in d.get("margin_classes", ())), int(d.get("bound_passes", 1)),
                   float(d.get("seconds", 0.0)), str(d.get("planes", "exact")), str(d.get("kind", "")),
                   d.get("model_sha256"), d.get("input_sha256"), d["threat"], str(d.get("version", "")),
                   str(d.get("rounding", "nearest")))


def _problem(weights: Any, x: Any, candidates: Any, budget: Any, target: Any, label: Any, planes: str,
             rounding: str = "sound") -> Any:
    from .certify import _problem as problem
    return problem(weights, x, 2.0, target, None, planes, label,
                   dict(substitutions=candidates, budget=budget), rounding)


def substitution_bounds(weights: Any, x: Any, candidates: Any, budget: Any = 1, target: Any = None,
                        label: Any = None, planes: str = "exact",
                        want_states: bool = False, rounding: str = "sound") -> dict[str, np.ndarray]:
    """The bound pass over the substitution set: ``lower``/``upper`` of the margins (and, with
    ``want_states``, every state's ``<name>_lower``/``_upper``), as the core returns them."""
    pr = _problem(weights, x, candidates, budget, target, label, planes, rounding)
    return pr.run(0.0, want_states)


def certify_substitutions(weights: Any, x: Any, candidates: Any, budget: Any = 1, target: Any = None,
                          label: Any = None, planes: str = "exact", rounding: str = "sound") -> SubstitutionCertificate:
    """Prove that no replacement of at most ``budget`` positions changes the prediction.

    Parameters
    ----------
    weights : RNNWeights, LSTMWeights, GRUWeights or RecurrentClassifier
        A model fed embeddings: ``x`` holds the embedding of each token.
    x : array_like, shape (T, n)
    candidates : sequence of T arrays
        ``candidates[t]`` of shape ``(k_t, n)`` (``k_t`` may be 0): the vectors that may
        replace ``x[t]`` (e.g. the embeddings of its synonyms).
    budget : int
        At most this many positions replaced at once (>= 0).
    target, label, planes, rounding
        As in :func:`popqorn_fast.certify` (``planes="optimized"`` is refused).

    Returns
    -------
    SubstitutionCertificate
        ``robust`` True when proven.
    """
    t0 = time.perf_counter()
    pr = _problem(weights, x, candidates, budget, target, label, planes, rounding)
    classes = tuple(int(c) for c in pr.classes)
    common = dict(label=pr.label, target=pr.target, budget=pr.threat.budget,
                  candidates=tuple(len(s) for s in pr.threat.substitutions), classes=classes,
                  planes=pr.planes, kind=pr.weights.kind, model_sha256=pr.weights.sha256,
                  input_sha256=input_sha256(pr.x), threat=pr.threat.to_dict(), rounding=pr.rounding)
    if pr.label != pr.predicted:
        return SubstitutionCertificate(False, np.zeros(0), misclassified=True, bound_passes=0,
                                       seconds=time.perf_counter() - t0, **common)
    lower = pr.run(0.0)["lower"]
    return SubstitutionCertificate(bool(np.all(lower > 0)), lower, misclassified=False, bound_passes=1,
                                   seconds=time.perf_counter() - t0, **common)


def substitution_sensitivity(weights: Any, x: Any, candidates: Any, label: Any = None,
                             planes: str = "exact", rounding: str = "sound") -> np.ndarray:
    """Per position t, whether replacing x[t] alone (by any of its candidates) is proven harmless:
    (T,) bool. A position without candidates is True."""
    xv = check_sequence(x, weights.input_size)
    T = xv.shape[0]
    n = xv.shape[1]
    out = np.ones(T, dtype=bool)
    for t in range(T):
        only = [np.asarray(candidates[k]) if k == t else np.zeros((0, n)) for k in range(T)]
        if np.size(only[t]):
            out[t] = certify_substitutions(weights, xv, only, 1, label=label, planes=planes, rounding=rounding).robust
    return out


def enumerate_substitutions(x: np.ndarray, candidates: Any, budget: int) -> Iterator[np.ndarray]:
    """Every input reachable by replacing at most ``budget`` positions (x itself first)."""
    T = x.shape[0]
    yield x
    pos = [t for t in range(T) if len(candidates[t])]
    for k in range(1, min(budget, len(pos)) + 1):
        for chosen in itertools.combinations(pos, k):
            for pick in itertools.product(*[range(len(candidates[t])) for t in chosen]):
                x2 = x.copy()
                for t, j in zip(chosen, pick):
                    x2[t] = candidates[t][j]
                yield x2


@dataclass(frozen=True, eq=False)
class SubstitutionAttack:
    """Outcome of :func:`search_substitutions`: ``success`` (margin < 0), the input found,
    its margin, and the positions replaced."""
    success: bool
    x_adv: np.ndarray
    margin: float
    positions: tuple[int, ...]


def search_substitutions(weights: Any, x: Any, candidates: Any, budget: int = 1, target: Optional[int] = None,
                         label: Optional[int] = None, beam: int = 4) -> SubstitutionAttack:
    """Beam search for a harmful substitution: each round tries every single further replacement
    of each kept input (one batched forward pass), keeps the ``beam`` with the smallest margin,
    for ``budget`` rounds (an empirical "not robust"; exhaustive when ``beam`` is large)."""
    xv = check_sequence(x, weights.input_size)
    lab = int(np.argmax(forward.logits(weights, xv))) if label is None else int(label)

    def margin(X: np.ndarray) -> np.ndarray:
        return forward.margins(weights, X, lab, target).min(axis=-1)

    kept = [(xv, ())]
    best = (float(margin(xv[None])[0]), xv, ())
    for _ in range(int(budget)):
        nxt = [(x0[None].repeat(len(candidates[t]), 0), t, used) for x0, used in kept
               for t in range(xv.shape[0]) if t not in used and len(candidates[t])]
        if not nxt:
            break
        X, tags = [], []
        for block, t, used in nxt:
            block = block.copy()
            block[:, t] = np.asarray(candidates[t])
            X.append(block)
            tags.extend([used + (t,)] * len(block))
        X = np.concatenate(X)
        m = margin(X)
        order = np.argsort(m)[:beam]
        kept = [(X[i], tags[i]) for i in order]
        if m[order[0]] < best[0]:
            best = (float(m[order[0]]), X[order[0]], tags[order[0]])
    return SubstitutionAttack(best[0] < 0, best[1], best[0], tuple(sorted(best[2])))
