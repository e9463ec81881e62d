"""A deliberately naive stand-in for the public bounding API (interval arithmetic, IBP).

It implements ``bound_states``, ``bound_margins`` and ``certify`` with the
signatures and meanings of ``docs/API.md`` so that the soundness battery can
be exercised before the real implementation lands. The bounds are sound (in
exact arithmetic, and widened by a few ulps for floating point) but loose.

Per step every quantity is an interval ``[lo, hi]``:

* input contribution ``W x_t`` over the ball: ``W x̂_t ± eps ||W_row||_q``
  (dual norm), only for perturbed frames;
* ``W h`` for an interval h: centre/radius arithmetic ``W m ± |W| r``;
* monotone activations map endpoints; products take the corner min / max;
* GRU ``h = (1 - z) a + z b`` is increasing in a and b and affine in z, so its
  extremes sit at z's endpoints.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

import numpy as np

from popqorn_fast import forward
from popqorn_fast.sampling import frame_mask, parse_p

_WIDEN = 1e-13


def _sig(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _widen(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return lo - _WIDEN * (1 + np.abs(lo)), hi + _WIDEN * (1 + np.abs(hi))


def _lin_interval(W: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m, r = (lo + hi) / 2, (hi - lo) / 2
    c, d = W @ m, np.abs(W) @ r
    return _widen(c - d, c + d)


def _input_interval(W: np.ndarray, x: np.ndarray, eps: float, p: float, moves: bool):
    c = W @ x
    if not moves or eps == 0:
        return _widen(c, c)
    q = {1.0: np.inf, 2.0: 2.0, np.inf: 1.0}[p]
    d = eps * np.linalg.norm(W, ord=q, axis=1)
    return _widen(c - d, c + d)


def _mul(al, au, bl, bu):
    cands = np.stack([al * bl, al * bu, au * bl, au * bu])
    return _widen(cands.min(axis=0), cands.max(axis=0))


def _check(weights: Any, x: Any, eps: Any, p: Any, frames: Any) -> tuple[np.ndarray, float, float, np.ndarray]:
    xh = np.asarray(x, dtype=np.float64)
    if xh.ndim != 2 or xh.shape[1] != weights.input_size:
        raise ValueError(f"x has shape {np.shape(x)}; expected (T, {weights.input_size})")
    eps = float(eps)
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be finite and >= 0, got {eps}")
    return xh, eps, parse_p(p), frame_mask(frames, xh.shape[0])


def bound_states(weights: Any, x: Any, eps: float, p: Any = 2, target: Optional[int] = None,
                 frames: Optional[Iterable[int]] = None, planes: str = "exact"
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Interval bounds of every state of ``forward.states`` (name -> (lower, upper), each (T, rows))."""
    xh, eps, p, mask = _check(weights, x, eps, p, frames)
    w = weights
    s = w.hidden_size
    hl = hu = w.h0
    if w.kind == "lstm":
        cl = cu = w.c0
    out: dict[str, list] = {}

    def put(name, lo, hi):
        out.setdefault(name, []).append((lo, hi))

    for t in range(xh.shape[0]):
        il, iu = _input_interval(w.weight_ih, xh[t], eps, p, bool(mask[t]))
        il, iu = il + w.bias_ih, iu + w.bias_ih
        hhl, hhu = _lin_interval(w.weight_hh, hl, hu)
        hhl, hhu = hhl + w.bias_hh, hhu + w.bias_hh
        if w.kind == "rnn":
            zl, zu = _widen(il + hhl, iu + hhu)
            put("pre", zl, zu)
            f = np.tanh if w.activation == "tanh" else (lambda a: np.maximum(a, 0.0))
            hl, hu = _widen(f(zl), f(zu))
        elif w.kind == "lstm":
            yl, yu = _widen(il + hhl, iu + hhu)
            put("gates", yl, yu)
            sl = [yl[k * s:(k + 1) * s] for k in range(4)]
            su = [yu[k * s:(k + 1) * s] for k in range(4)]
            a = _mul(_sig(sl[1]), _sig(su[1]), cl, cu)
            b = _mul(_sig(sl[0]), _sig(su[0]), np.tanh(sl[2]), np.tanh(su[2]))
            cl, cu = _widen(a[0] + b[0], a[1] + b[1])
            put("cell", cl, cu)
            hl, hu = _mul(np.tanh(cl), np.tanh(cu), _sig(sl[3]), _sig(su[3]))
        else:
            yrl, yru = _widen(il[:s] + hhl[:s], iu[:s] + hhu[:s])
            yzl, yzu = _widen(il[s:2 * s] + hhl[s:2 * s], iu[s:2 * s] + hhu[s:2 * s])
            vl, vu = hhl[2 * s:], hhu[2 * s:]
            put("gates", np.concatenate([yrl, yzl, vl]), np.concatenate([yru, yzu, vu]))
            rv = _mul(_sig(yrl), _sig(yru), vl, vu)
            ul, uu = _widen(il[2 * s:] + rv[0], iu[2 * s:] + rv[1])
            put("u", ul, uu)
            al, au = np.tanh(ul), np.tanh(uu)
            zl, zu = _sig(yzl), _sig(yzu)
            lo = np.minimum((1 - zl) * al + zl * hl, (1 - zu) * al + zu * hl)
            hi = np.maximum((1 - zl) * au + zl * hu, (1 - zu) * au + zu * hu)
            hl, hu = _widen(lo, hi)
        put("hidden", hl, hu)
    return {k: (np.stack([a for a, _ in v]), np.stack([b for _, b in v])) for k, v in out.items()}


def _spec(w: Any, label: int, target: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    C = w.num_classes
    others = [j for j in range(C) if j != label] if target is None else [int(target)]
    return w.out_weight[label] - w.out_weight[others], w.out_bias[label] - w.out_bias[others]


def bound_margins(weights: Any, x: Any, eps: float, p: Any = 2, target: Optional[int] = None,
                  frames: Optional[Iterable[int]] = None, planes: str = "exact"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds of ``logit_label - logit_j`` (label = the model's prediction on x)."""
    label = int(np.argmax(forward.logits(weights, np.asarray(x, dtype=np.float64))))
    if target is not None and (int(target) == label or not 0 <= int(target) < weights.num_classes):
        raise ValueError(f"target {target} is the label or out of range")
    st = bound_states(weights, x, eps, p, target, frames, planes)
    hl, hu = st["hidden"][0][-1], st["hidden"][1][-1]
    Wc, bc = _spec(weights, label, target)
    lo, hi = _lin_interval(Wc, hl, hu)
    return lo + bc, hi + bc


@dataclass(frozen=True)
class Certificate:
    """The fields of the real ``Certificate`` that the battery reads."""
    eps: float
    label: int
    target: Optional[int]
    p: float
    bound_passes: int


def certify(weights: Any, x: Any, eps_max: float, p: Any = 2, target: Optional[int] = None,
            frames: Optional[Iterable[int]] = None, rtol: float = 1e-3,
            planes: str = "exact") -> Certificate:
    """Largest probed eps with all margin lower bounds > 0 (search of RECURRENCES.md §5)."""
    label = int(np.argmax(forward.logits(weights, np.asarray(x, dtype=np.float64))))
    passes = 0

    def ok(e: float) -> bool:
        nonlocal passes
        passes += 1
        return bool(np.all(bound_margins(weights, x, e, p, target, frames)[0] > 0))

    e = min(0.1, eps_max)
    lo = hi = None
    if ok(e):
        lo = e
        while lo < eps_max and passes < 200:
            e = min(2 * lo, eps_max)
            if ok(e):
                lo = e
            else:
                hi = e
                break
        if hi is None:
            return Certificate(lo, label, target, parse_p(p), passes)
    else:
        hi = e
        while passes < 200:
            e = hi / 2
            if e < 1e-7:
                return Certificate(0.0, label, target, parse_p(p), passes)
            if ok(e):
                lo = e
                break
            hi = e
    while hi - lo > rtol * lo and passes < 200:
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return Certificate(lo, label, target, parse_p(p), passes)
