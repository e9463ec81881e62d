"""Soundness battery on the six trained digits classifiers (tests/data), plus the
attack-side checks: PGD finds real adversarial examples above eps*, never below."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from popqorn_fast.attack import pgd

from .checks import check_point
from .conftest import arch_of
from .models import TRAINED, load_trained

PS = [2.0, np.inf, 1.0]
EPS_CAP = {2.0: 2.0, np.inf: 0.5, 1.0: 4.0}   # pgd flips every one of the first 10 inputs below these
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "lirpa_crown_eps.json"  # from shared/reference


def _pgd_radius(w, x, p, lo, hi, target=None, frames=None, iters=8):
    """Smallest eps (to a bisection) where pgd succeeds in [lo, hi]; None if it fails at hi."""
    if not pgd(w, x, hi, p=p, target=target, frames=frames, steps=50, restarts=4).success:
        return None
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if pgd(w, x, mid, p=p, target=target, frames=frames, steps=50, restarts=4).success:
            hi = mid
        else:
            lo = mid
    return hi


@pytest.mark.parametrize("name", TRAINED)
@pytest.mark.parametrize("p", PS)
def test_trained_untargeted(api, tally, name, p):
    w, X, y = load_trained(name)
    rng = np.random.default_rng(0)
    for i in range(2):
        rep = tally.run(arch_of(w), check_point, api, w, X[i], p, None, None, rng, n_samples=10_000,
                        eps_max=EPS_CAP[p], eps_probe=0.02)
        assert rep.label == y[i]
        # PGD finds real adversarial examples, and only above the certified radius
        adv = _pgd_radius(w, X[i], p, rep.eps_cert, EPS_CAP[p])
        assert adv is not None, f"pgd found no flip at eps={EPS_CAP[p]}"
        assert adv > rep.eps_cert


@pytest.mark.parametrize("name", TRAINED)
def test_trained_targeted_and_frames(api, tally, name):
    w, X, y = load_trained(name)
    T = X.shape[1]
    rng = np.random.default_rng(1)
    lab = int(y[2])
    for p, frames, target in [(2.0, None, (lab + 1) % 10), (np.inf, [T - 1], None),
                              (1.0, [0, T // 2], (lab + 5) % 10), (2.0, [T // 2], None)]:
        rep = tally.run(arch_of(w), check_point, api, w, X[2], p, frames, target, rng, n_samples=10_000,
                        eps_max=8.0, eps_probe=0.05)
        adv = _pgd_radius(w, X[2], p, rep.eps_cert, 8.0, target=target, frames=frames)
        if adv is not None:
            assert adv > rep.eps_cert


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINED)
@pytest.mark.parametrize("p", PS)
def test_trained_first_ten_all_variants(api, tally, name, p):
    w, X, y = load_trained(name)
    T = X.shape[1]
    rng = np.random.default_rng(2)
    for i in range(10):
        for frames in (None, [0], [T - 1], list(range(0, T, 2))):
            for target in (None, (int(y[i]) + 1 + i) % 10 if (int(y[i]) + 1 + i) % 10 != y[i] else None):
                for planes in (("exact", "optimized", "1d", "constant") if w.kind != "rnn" else ("exact", "optimized")):
                    tally.run(arch_of(w), check_point, api, w, X[i], p, frames, target, rng,
                              n_samples=20_000, eps_max=8.0, eps_probe=0.1, planes=planes)


@pytest.mark.parametrize("name,planes", [(n, m) for n in TRAINED for m in ("optimized", "1d", "constant")
                                        if m == "optimized" or not n.startswith("rnn")])
def test_trained_other_planes(api, tally, name, planes):
    """The other relaxations on the trained models (the optimised ones, and for LSTMs/GRUs
    the baselines of the products): untargeted l2, targeted linf with the last frame only."""
    w, X, y = load_trained(name)
    rng = np.random.default_rng(3)
    T = X.shape[1]
    for p, frames, target in [(2.0, None, None), (np.inf, [T - 1], (int(y[3]) + 3) % 10)]:
        tally.run(arch_of(w), check_point, api, w, X[3], p, frames, target, rng, n_samples=6_000,
                  eps_max=8.0, eps_probe=0.05, planes=planes)


@pytest.mark.parametrize("name", TRAINED)
def test_attack_respects_reference_certificates(name):
    """auto_LiRPA's CROWN radii (an independent sound verifier) are never beaten by pgd:
    a cross-check of the attack, the trained models and the threat model."""
    w, X, y = load_trained(name)
    crown = json.loads(REFERENCE.read_text())["crown"][name.removesuffix(".npz")]
    runs = [(norm, int(i), e) for norm, by_index in crown.items() for i, e in by_index.items()]
    for norm, i, eps in runs[:6]:
        p = np.inf if norm == "inf" else float(norm)
        res = pgd(w, X[i], eps, p=p, steps=100, restarts=8, seed=0)
        assert not res.success, (norm, i, eps, res.margin)
        assert res.margin > 0
