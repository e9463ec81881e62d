"""Soundness battery for the threat models beyond the per-frame ball (docs/THREAT_MODELS.md):
the joint ball (p = 1, 2, inf), per-frame radius multipliers, a box domain, on random general
models (hypothesis). Samples drawn from the threat model's own set (interior, surface,
vertices, points aligned with first-layer rows, clipped to the domain) must stay inside every
interval and never flip the label at the certified ε; PGD with the same set (joint projection,
box clip) must fail there."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from popqorn_fast import forward
from popqorn_fast.attack import pgd
from popqorn_fast.sampling import frame_mask, in_threat, into_threat, sample_threat
from popqorn_fast.threat import check_threat

from .checks import PointReport, assert_inside, first_layer_rows
from .models import KINDS, random_general
from .test_general_networks import _SETTINGS, general_cases


def aligned_threat_samples(rng: np.random.Generator, w: Any, x: np.ndarray, eps: float, p: float,
                           mask: np.ndarray, tm: Any, count: int) -> np.ndarray:
    """Frames moved along random first-layer rows ±W[r] (their extreme direction for p) to the
    boundary of the threat model's ball: every moving frame at radius ε w_t (frame ball), or, for
    the joint ball, half the samples on one random frame and half spread over all of them."""
    T, n = x.shape
    W = first_layer_rows(w)
    rows = W[rng.integers(0, W.shape[0], size=(count, T))] * (rng.integers(0, 2, size=(count, T, 1)) * 2.0 - 1.0)
    if p == 2.0:
        d = rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-300)
    elif p == np.inf:
        d = np.sign(rows)
    else:
        k = np.argmax(np.abs(rows), axis=-1)[..., None]
        d = np.zeros_like(rows)
        np.put_along_axis(d, k, np.sign(np.take_along_axis(rows, k, axis=-1)), axis=-1)
    wt = np.where(mask, 1.0 if tm.frame_weights is None else tm.frame_weights, 0.0)
    d = d * wt[None, :, None]
    if tm.ball == "joint":
        moving = np.flatnonzero(wt > 0)
        half = count // 2
        one = rng.choice(moving, size=half) if moving.size else np.zeros(half, dtype=int)
        keep = np.zeros((half, T), dtype=bool)
        keep[np.arange(half), one] = True
        d[:half] *= keep[..., None]
        spread = {1.0: moving.size, 2.0: np.sqrt(moving.size), np.inf: 1.0}[p]
        d[half:] /= max(spread, 1.0)
    return into_threat(x, x + eps * d, eps, p, mask, tm)


def threat_samples(rng: np.random.Generator, w: Any, x: np.ndarray, eps: float, p: float, mask: np.ndarray,
                   tm: Any, n: int) -> np.ndarray:
    kinds = ["interior", "surface"] + (["vertices"] if p != 2.0 else [])
    per = -(-n // (len(kinds) + 1))
    parts = [x[None]] + [sample_threat(rng, x, eps, p, mask, tm, per, k) for k in kinds]
    parts.append(aligned_threat_samples(rng, w, x, eps, p, mask, tm, per))
    S = np.concatenate(parts)
    assert np.all(in_threat(S, x, eps, p, mask, tm)), "a sample left the threat model's set"
    return S


def check_threat_point(api: Any, w: Any, x: np.ndarray, p: float, frames: Optional[Sequence[int]],
                       target: Optional[int], rng: np.random.Generator, threat: dict, n_samples: int,
                       eps_probe: float, planes: str = "exact") -> PointReport:
    """check_point of checks.py over a threat model (``threat``: ball / frame_weights / domain)."""
    label = int(np.argmax(forward.logits(w, x)))
    mask = frame_mask(frames, x.shape[0])
    tm = check_threat(x, mask, **threat)
    kw = dict(p=p, target=target, frames=frames, planes=planes, **threat)
    cert = api.certify(w, x, 10.0, **kw)
    assert cert.threat == (None if tm.is_default else tm.to_dict())
    eps = float(cert.eps)
    count, attacks, min_m, min_b = 0, 0, np.inf, np.inf
    for e in ([eps] if eps > 0 else []) + [eps_probe]:
        S = threat_samples(rng, w, x, e, p, mask, tm, n_samples if e == eps else max(n_samples // 5, 200))
        bs = api.bound_states(w, x, e, **kw)
        st = forward.states(w, S)
        for k, (lo, hi) in bs.items():
            assert_inside(f"state {k!r} at eps={e:.6g}", st[k], np.asarray(lo), np.asarray(hi))
        # at the certified radius: the bounds the certificate claims (a failed probe's own
        # relaxations where they proved it, Certificate.eps_relaxed)
        relaxed = cert.eps_relaxed if e == eps and eps > 0 else None
        mlo, mhi = (np.asarray(a) for a in api.bound_margins(w, x, e, relaxed_at=relaxed, **kw))
        m = forward.margins(w, S, label, target)
        assert_inside(f"margins at eps={e:.6g}", m, mlo, mhi)
        count += len(S)
        if e == eps and eps > 0:
            assert np.all(mlo > 0), f"certify returned eps={eps} but the margin bounds {mlo} are not > 0"
            assert np.all(m > 0), f"a sample flipped the label at the certified eps={eps}: {m.min()}"
            r = pgd(w, x, eps, p=p, target=target, frames=frames, steps=30, restarts=4,
                    seed=int(rng.integers(2**31)), **threat)
            assert not r.success, f"PGD flipped the label at the certified eps={eps} (margin {r.margin})"
            attacks, min_m, min_b = 4, float(min(m.min(), r.margin)), float(mlo.min())
    return PointReport(eps, label, count, min_m, min_b, attacks, cert.eps_relaxed is not None)


@st.composite
def threat_cases(draw):
    c = draw(general_cases())
    T, n = c["T"], c["n"]
    c["ball"] = draw(st.sampled_from(["frame", "joint"]))
    c["weights"] = draw(st.none() | st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=T, max_size=T))
    c["domain"] = draw(st.sampled_from([None, "tight", "one_sided", "wide"]))
    if c["ball"] == "frame" and c["weights"] is None and c["domain"] is None:
        c["ball"] = "joint"
    return c


def _domain(kind: Optional[str], x: np.ndarray, rng: np.random.Generator) -> Any:
    if kind is None:
        return None
    if kind == "tight":
        return (x - rng.uniform(0.0, 0.3, x.shape), x + rng.uniform(0.0, 0.3, x.shape))
    if kind == "one_sided":
        return (np.minimum(x, 0.0), 10.0 + np.maximum(x, 0.0))
    return (-100.0 - np.abs(x), 100.0 + np.abs(x))


def _run(api, tally, c, n_samples):
    rng = np.random.default_rng(c["seed"])
    w = random_general(rng, c["kinds"], c["bidirectional"], c["n"], c["widths"], c["C"], c["readout"],
                       c["head"], c["frame"], scale=c["scale"])
    x = rng.normal(size=(c["T"], c["n"])) * c["x_scale"]
    label = int(np.argmax(w.logits(x)))
    target = int(rng.choice([j for j in range(c["C"]) if j != label])) if c["targeted"] else None
    mask = frame_mask(c["frames"], c["T"])
    weights = c["weights"]
    if weights is not None and not any(weights[t] > 0 for t in np.flatnonzero(mask)):
        weights = None
    threat = dict(ball=c["ball"], frame_weights=weights, domain=_domain(c["domain"], x, rng))
    return tally.run("threat", check_threat_point, api, w, x, c["p"], c["frames"], target, rng, threat,
                     n_samples, c["eps_probe"], c["planes"])


def test_threat_models_sound(api, tally):
    reports = []

    @settings(max_examples=200, **_SETTINGS)
    @given(c=threat_cases())
    def run(c):
        reports.append(_run(api, tally, c, n_samples=3_000))

    run()
    assert len(reports) >= 200
    assert sum(r.eps_cert > 0 for r in reports) >= 30


def _model(seed: int, kind: str = "lstm"):
    rng = np.random.default_rng(seed)
    w = random_general(rng, [kind], [seed % 2 == 0], 3, [4], 3, "mean", [(4, "relu")], [], scale=1.0)
    return w, rng.normal(size=(5, 3))


def test_joint_inf_is_the_frame_ball(api):
    for seed in range(4):
        w, x = _model(seed, KINDS[seed % len(KINDS)])
        a = api.bound_margins(w, x, 0.3, p=np.inf)
        b = api.bound_margins(w, x, 0.3, p=np.inf, ball="joint")
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        assert api.certify(w, x, p="inf").eps == api.certify(w, x, p="inf", ball="joint").eps


def test_joint_ball_certifies_at_least_the_frame_radius(api):
    for seed in range(4):
        w, x = _model(seed)
        for p in (1, 2):
            frame = api.certify(w, x, p=p).eps
            joint = api.certify(w, x, p=p, ball="joint").eps
            assert joint >= frame * (1 - 2e-3), (seed, p, frame, joint)


def test_domain_containing_the_ball_changes_nothing(api):
    for seed, p in zip(range(6), (1, 2, np.inf) * 2):
        w, x = _model(seed)
        ball = "joint" if seed >= 3 else "frame"
        a = api.bound_states(w, x, 0.4, p=p, ball=ball)
        b = api.bound_states(w, x, 0.4, p=p, ball=ball, domain=(x - 0.41, x + 0.5))
        for k in a:
            assert np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1]), k


def test_domain_that_cuts_certifies_more(api):
    for p in (1, 2, np.inf):
        w, x = _model(7)
        plain = api.certify(w, x, p=p).eps
        boxed = api.certify(w, x, p=p, domain=(x - 0.02, x + 10.0)).eps
        assert boxed > 1.05 * plain, (p, plain, boxed)


def test_frame_weights_scale_the_radius(api):
    """Weights c·1 certify ε/c: the same set."""
    w, x = _model(3)
    for ball in ("frame", "joint"):
        a = api.bound_margins(w, x, 0.2, p=2, ball=ball)
        b = api.bound_margins(w, x, 0.1, p=2, ball=ball, frame_weights=np.full(5, 2.0))
        assert np.allclose(a[0], b[0], rtol=1e-12, atol=1e-12)


def test_one_layer_models_under_threat_models(api, tally):
    """The one-layer classes (RNN, LSTM, GRU, with given initial states) run on the same generic
    pass: the same checks under each threat model."""
    from .models import random_weights
    for seed in range(16):
        rng = np.random.default_rng(100 + seed)
        kind = KINDS[seed % len(KINDS)]
        w = random_weights(rng, kind, 3, 4, 3, random_state=seed % 3 == 0)
        x = rng.normal(size=(4, 3))
        threat = [dict(ball="joint"), dict(frame_weights=[1.0, 0.0, 2.0, 0.5]),
                  dict(domain=_domain("tight", x, rng)), dict(ball="joint", domain=_domain("one_sided", x, rng))
                  ][seed % 4]
        p = (1.0, 2.0, np.inf)[seed % 3]
        tally.run("threat", check_threat_point, api, w, x, p, None, None, rng, threat, 2_000, 0.3)
