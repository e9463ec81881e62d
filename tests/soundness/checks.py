"""The checks of the soundness battery, as plain functions (they raise AssertionError).

``check_point`` runs every check for one (model, input, p, frames, target):

1. ``certify`` gives eps*; at eps* ``bound_margins`` must prove every margin > 0
   (consistency of certify with the bounds it reports; for a certificate proven by a
   failed probe's relaxations, ``bound_margins(..., relaxed_at=cert.eps_relaxed)``);
2. ``>= n_samples`` perturbations (interior, surface, for p in {1, inf}
   vertices, and points where first-layer rows reach their extremes) at eps*: every state of ``forward.states`` lies inside the
   intervals of ``bound_states``, every margin inside ``bound_margins``, and the
   label never flips (untargeted: the label stays the argmax; targeted: the
   label still beats the target);
3. PGD at eps* never succeeds;
4. the same interval containment at a second, uncertified eps (bounds must be
   sound whether or not certification succeeds).

Containment is checked with a tolerance of ``TOL * max(1, |bound|)``: rounding
in the forward pass, not unsoundness, is what it absorbs (a real soundness bug
shows up orders of magnitude above it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from popqorn_fast import forward
from popqorn_fast.attack import pgd
from popqorn_fast.sampling import frame_mask, into_ball, parse_p, sample_ball

TOL = 1e-9


@dataclass(frozen=True)
class PointReport:
    """What one ``check_point`` call saw (for summaries and for asserting the battery ran)."""
    eps_cert: float
    label: int
    samples: int
    min_margin_sampled: float
    min_margin_bound: float
    attacks: int = 0              # PGD restarts run at the certified radius
    carried: bool = False         # the certificate is a failed probe's carried bound (eps_relaxed)


def aligned_samples(rng: np.random.Generator, w: Any, x: np.ndarray, eps: float, p: float,
                    frames: Optional[Sequence[int]], count: int) -> np.ndarray:
    """Points where some first-layer row ``±W[r]`` (:func:`first_layer_rows`) attains its extreme over each frame's ball.

    Per sample and frame a random row r and sign are drawn and the frame moves to the
    maximiser of ``±W_ih[r] · d`` over ``||d||_p <= eps`` (p = 2: along the row; inf: its
    sign vector; 1: its largest coordinate). Random directions almost never come near
    these extremes when n is large and p = 2; bounds are tightest exactly there.
    """
    T, n = x.shape
    mask = frame_mask(frames, T)
    W = first_layer_rows(w)
    rows = W[rng.integers(0, W.shape[0], size=(count, T))]
    rows = rows * (rng.integers(0, 2, size=(count, T, 1)) * 2.0 - 1.0)
    if p == 2.0:
        d = rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-300)
    elif p == np.inf:
        d = np.sign(rows)
    else:
        d = np.zeros_like(rows)
        np.put_along_axis(d, np.argmax(np.abs(rows), axis=-1)[..., None],
                          np.sign(np.take_along_axis(rows, np.argmax(np.abs(rows), axis=-1)[..., None],
                                                     axis=-1)), axis=-1)
    return into_ball(x, x + eps * d, eps, p, mask)


def first_layer_rows(w: Any) -> np.ndarray:
    """The rows of the first linear map applied to each frame (a frame layer's weight, or the
    first recurrent layer's W_ih; both directions of a bidirectional one)."""
    if getattr(w, "kind", None) != "general":
        return w.weight_ih
    if w.frame_layers:
        return w.frame_layers[0].weight
    return np.concatenate([d.weight_ih for d in w.layers[0].directions()])


def samples_for(rng: np.random.Generator, x: np.ndarray, eps: float, p: float,
                frames: Optional[Sequence[int]], n: int, w: Any = None) -> np.ndarray:
    """``n`` perturbations split over interior / surface / vertices / row-aligned (and the clean x)."""
    kinds = ["interior", "surface"] + (["vertices"] if p != 2.0 else [])
    per = -(-n // (len(kinds) + (w is not None)))
    parts = [x[None]] + [sample_ball(rng, x, eps, p, frames, per, k) for k in kinds]
    if w is not None:
        parts.append(aligned_samples(rng, w, x, eps, p, frames, per))
    return np.concatenate(parts)


def assert_inside(name: str, values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """Every row of ``values`` (N, ...) inside ``[lo, hi]`` up to the rounding tolerance."""
    assert lo.shape == hi.shape == values.shape[1:], (name, lo.shape, hi.shape, values.shape)
    assert np.all(lo <= hi + TOL * np.maximum(1, np.abs(hi))), f"{name}: lower > upper"
    below = lo - values - TOL * np.maximum(1.0, np.abs(lo))
    above = values - hi - TOL * np.maximum(1.0, np.abs(hi))
    worst = max(below.max(), above.max())
    if worst > 0:
        idx = np.unravel_index(np.argmax(np.maximum(below, above)), values.shape)
        raise AssertionError(f"{name}: a sample escapes its bound by {worst:.3g} at index {idx} "
                             f"(value {values[idx]:.17g}, bound [{lo[idx[1:]]:.17g}, {hi[idx[1:]]:.17g}])")


def check_bounds_at(api: Any, w: Any, x: np.ndarray, eps: float, p: float,
                    frames: Optional[Sequence[int]], target: Optional[int], label: int,
                    S: np.ndarray, planes: str = "exact",
                    relaxed_at: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """States and margins of the samples ``S`` inside the bounds at ``eps``; returns (margins, lower).
    ``relaxed_at``: the margins' lower bounds are those a certificate claims, from the pass at
    that larger radius (``Certificate.eps_relaxed``)."""
    bs = api.bound_states(w, x, eps, p=p, target=target, frames=frames, planes=planes)
    st = forward.states(w, S)
    assert set(bs) == set(st), (sorted(bs), sorted(st))
    for k, (lo, hi) in bs.items():
        assert_inside(f"state {k!r} at eps={eps:.6g}", st[k], np.asarray(lo), np.asarray(hi))
    more = {} if relaxed_at is None else {"relaxed_at": relaxed_at}
    mlo, mhi = (np.asarray(a) for a in api.bound_margins(w, x, eps, p=p, target=target, frames=frames,
                                                         planes=planes, **more))
    m = forward.margins(w, S, label, target)
    assert_inside(f"margins at eps={eps:.6g}", m, mlo, mhi)
    return m, mlo


def check_point(api: Any, w: Any, x: np.ndarray, p: Any, frames: Optional[Sequence[int]],
                target: Optional[int], rng: np.random.Generator, n_samples: int = 10_000,
                eps_max: float = 10.0, eps_probe: Optional[float] = None,
                pgd_steps: int = 40, pgd_restarts: int = 4, planes: str = "exact") -> PointReport:
    """All checks for one point (see the module docstring). Raises AssertionError on a violation.

    ``planes`` is the relaxation of the LSTM/GRU products used for every bound and the certificate.
    """
    p = parse_p(p)
    x = np.asarray(x, dtype=np.float64)
    label = int(np.argmax(forward.logits(w, x)))
    cert = api.certify(w, x, eps_max, p=p, target=target, frames=frames, planes=planes)
    assert int(cert.label) == label
    eps = float(cert.eps)
    assert 0.0 <= eps <= eps_max
    min_sampled, min_bound, count, attacks = np.inf, np.inf, 0, 0
    if eps > 0:
        S = samples_for(rng, x, eps, p, frames, n_samples, w)
        m, mlo = check_bounds_at(api, w, x, eps, p, frames, target, label, S, planes,
                                 getattr(cert, "eps_relaxed", None))
        assert np.all(mlo > 0), f"certify returned eps={eps} but bound_margins' lower bounds {mlo} are not > 0"
        assert np.all(m > 0), f"label flipped by a sample at the certified eps={eps}: margin {m.min()}"
        if target is None:
            assert np.all(np.argmax(forward.logits(w, S), axis=1) == label)
        r = pgd(w, x, eps, p=p, target=target, frames=frames, steps=pgd_steps,
                restarts=pgd_restarts, seed=int(rng.integers(2**31)))
        assert not r.success, f"PGD flipped the label at the certified eps={eps} (margin {r.margin})"
        min_sampled, min_bound, count = float(min(m.min(), r.margin)), float(mlo.min()), len(S)
        attacks = pgd_restarts
    if eps_probe is not None:
        S2 = samples_for(rng, x, eps_probe, p, frames, max(n_samples // 5, 200), w)
        check_bounds_at(api, w, x, eps_probe, p, frames, target, label, S2, planes)
        count += len(S2)
    return PointReport(eps, label, count, min_sampled, min_bound, attacks,
                       getattr(cert, "eps_relaxed", None) is not None)
