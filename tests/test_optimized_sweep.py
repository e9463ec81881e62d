""""optimized" planes (cpp/optim_planes.hpp, cpp/{lstm,gru}_optim.hpp; RECURRENCES.md §3b and
§4 "GRU, shared z (optimized)") through the core's hidden keywords:

- LSTM and GRU: the forward sweep of the relaxed network at the worst-case input reproduces
  each margin row's back-substituted lower bound at every iterate (the adjoint identity the
  gradient rests on), and at a generic point the sweep's slope gradient g matches a finite
  difference along g;
- GRU: with the margins alone optimised the result is never below the shared-z pass it
  starts from and everything else is unchanged; refining the intermediate intervals narrows
  them; opt_iters = 0 is the shared-z pass itself;
- RNN (optimized 1-D lines, cpp/optim_lines.hpp): the same sweep identity, margins never
  below the exact pass's, pre-activation intervals narrower in total.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from popqorn_fast import _core
from test_oracle_agreement import DATA, fixture_args, load_fixture, random_args


def cases(kind: str):
    out = []
    for name in (f"{kind}_T8_h16.npz", f"{kind}_T4_h24.npz"):
        d = load_fixture(DATA / name)
        T = d["X"].shape[1]
        mask_last = np.zeros(T, bool)
        mask_last[-1] = True
        for idx, eps, p, mask in [(0, 0.02, 2.0, np.ones(T, bool)), (1, 0.01, math.inf, np.ones(T, bool)),
                                  (2, 0.05, 1.0, mask_last), (3, 0.03, 2.0, np.ones(T, bool))]:
            out.append((f"{name}/{idx}/p={p}", fixture_args(d, idx, eps, p, mask, "optimized")))
    rng = np.random.default_rng(31)
    for j, (s, n, T) in enumerate([(3, 2, 2), (5, 4, 3), (7, 3, 5), (4, 3, 4)]):
        p = [1.0, 2.0, math.inf, 2.0][j]
        mask = np.ones(T, bool) if j % 2 == 0 else rng.random(T) < 0.7
        out.append((f"{kind}/random/{s}x{n}x{T}/p={p}", random_args(kind, rng, s, n, T, p, mask, targeted=False,
                                                                   init_state=bool(j % 2), eps=0.1,
                                                                   planes="optimized")))
    return out


CASES = cases("gru")
SWEEP_CASES = [("lstm", *c) for c in cases("lstm")] + [("gru", *c) for c in CASES]


def rnn_cases():
    out = []
    for name in ("rnn_tanh_T16_h16.npz", "rnn_relu_T4_h16.npz"):
        d = load_fixture(DATA / name)
        T = d["X"].shape[1]
        for idx, eps, p in [(0, 0.02, 2.0), (1, 0.01, math.inf), (2, 0.05, 1.0)]:
            out.append((f"{name}/{idx}/p={p}", fixture_args(d, idx, eps, p, np.ones(T, bool), "exact")))
    rng = np.random.default_rng(32)
    for j, (s, n, T) in enumerate([(3, 2, 2), (5, 4, 3), (7, 3, 5)]):
        mask = np.ones(T, bool) if j % 2 == 0 else rng.random(T) < 0.7
        out.append((f"rnn/random/{s}x{n}x{T}", random_args("rnn", rng, s, n, T, 2.0, mask, targeted=False,
                                                          init_state=bool(j % 2), eps=0.1,
                                                          act=["tanh", "relu", "tanh"][j])))
    return out


RNN_CASES = rnn_cases()


@pytest.mark.parametrize("label,args", RNN_CASES, ids=[c[0] for c in RNN_CASES])
def test_rnn_optimized_lines(label, args):
    """RNN "optimized" lines: the sweep reproduces each margin row's bound at every iterate,
    the margins' lower bounds never fall below the exact pass's, and the pre-activation
    intervals narrow in total."""
    iters = 4
    base = _core.rnn_bounds(*args)
    out = _core.rnn_bounds(*args, planes="optimized", opt_iters=iters, opt_trace=True)
    tr = out["opt_trace_lower"]
    back, fwd = tr[:, 0:2 * (iters + 1):2], tr[:, 1:2 * (iters + 1):2]
    np.testing.assert_allclose(fwd, back, rtol=1e-9, atol=1e-9 * np.max(np.abs(back)), err_msg=label)
    assert np.all(out["lower"] >= back.max(axis=1) - 1e-12 * np.maximum(1, np.abs(back.max(axis=1))))
    margins_only = _core.rnn_bounds(*args, planes="optimized", opt_inter=0)
    assert np.all(margins_only["lower"] >= base["lower"]), label
    np.testing.assert_array_equal(margins_only["upper"], base["upper"])
    full = _core.rnn_bounds(*args, planes="optimized")
    w_base = base["pre_upper"] - base["pre_lower"]
    w_full = full["pre_upper"] - full["pre_lower"]
    assert w_full.sum() <= w_base.sum() + 1e-9, label


@pytest.mark.parametrize("kind,label,args", SWEEP_CASES, ids=[c[1] for c in SWEEP_CASES])
def test_sweep_equals_backsubstitution_and_gradient(kind, label, args):
    # three best responses, then Adam steps on the tangent points (RECURRENCES.md §3b): the
    # sweep must equal the back-substitution at every iterate of both kinds
    iters = 8
    out = getattr(_core, f"{kind}_bounds")(*args, opt_iters=iters, opt_br=3, opt_lr=0.1, opt_trace=True)
    tr = out["opt_trace_lower"]
    assert tr.shape == (args[9].shape[0], 2 * (iters + 1) + 2)
    back, fwd = tr[:, 0:2 * (iters + 1):2], tr[:, 1:2 * (iters + 1):2]
    np.testing.assert_allclose(fwd, back, rtol=1e-9, atol=1e-9 * np.max(np.abs(back)), err_msg=label)
    gg, fd = tr[:, -2], tr[:, -1]
    ok = np.abs(fd - gg) <= 1e-4 * np.maximum(gg, 1e-12) + 1e-9
    assert ok.mean() >= 0.9 and np.all(fd >= 0.5 * gg - 1e-9), (label, gg, fd)
    # the result is the best iterate (or the shared-z pass)
    assert np.all(out["lower"] >= back.max(axis=1) - 1e-12 * np.maximum(1, np.abs(back.max(axis=1))))


@pytest.mark.parametrize("kind,label,args", SWEEP_CASES, ids=[c[1] for c in SWEEP_CASES])
def test_adam_steps_on_tangent_points_stay_near_the_best_responses(kind, label, args):
    """After six best responses, Adam steps on the planes' tangent points (ascent on the
    envelope gradient, points kept in their boxes) end near where the best responses stopped
    (slopes that left the tangent family blew the bounds up by orders of magnitude), and the
    row's bound is the best of its iterates. (Since the best responses also take the grid's
    envelope, RECURRENCES.md §3b, the Adam steps lower about as many rows as they raise.)"""
    iters, br = 16, 6
    out = getattr(_core, f"{kind}_bounds")(*args, opt_iters=iters, opt_br=br, opt_lr=0.1, opt_trace=True)
    back = out["opt_trace_lower"][:, 0:2 * (iters + 1):2]
    last_br, last = back[:, br], back[:, -1]
    scale = np.maximum(1.0, np.abs(last_br))
    assert np.all(last >= last_br - 0.05 * scale), (label, last - last_br)
    best = back.max(axis=1)
    assert np.all(out["lower"] >= best - 1e-12 * np.maximum(1.0, np.abs(best))), (label, out["lower"] - best)


@pytest.mark.parametrize("label,args", CASES, ids=[c[0] for c in CASES])
def test_optimized_improves_on_shared_z(label, args):
    a = list(args)
    a[11] = "exact"
    base = _core.gru_bounds(*a, gru_shared_z=True)
    # margins only (opt_inter=0): lower bounds up, everything else the shared-z pass's
    opt = _core.gru_bounds(*args, opt_inter=0)
    assert np.all(opt["lower"] >= base["lower"]), label
    np.testing.assert_array_equal(opt["upper"], base["upper"])
    for key in ("gates", "u", "hidden"):
        for side in ("lower", "upper"):
            np.testing.assert_array_equal(opt[f"{key}_{side}"], base[f"{key}_{side}"])
    # the default also refines every intermediate interval. Not each inside the shared-z one
    # by construction (later steps' shared planes are fitted to other boxes, and volume-minimal
    # planes are not monotone in the box), but in total narrower, and nowhere looser by more
    # than 1e-6 here (measured: 2e-9)
    full = _core.gru_bounds(*args)
    for key in ("gates", "u", "hidden"):
        lo, hi = full[f"{key}_lower"], full[f"{key}_upper"]
        blo, bhi = base[f"{key}_lower"], base[f"{key}_upper"]
        tol = 1e-6 * np.maximum(1.0, np.abs(bhi))
        assert np.all(lo >= blo - tol) and np.all(hi <= bhi + tol), (label, key)
        assert (hi - lo).sum() <= (bhi - blo).sum() + 1e-9, (label, key)
    assert np.all(full["lower"] >= opt["lower"] - 1e-9 * np.maximum(1.0, np.abs(opt["lower"]))), label
    zero = _core.gru_bounds(*args, opt_iters=0)
    np.testing.assert_array_equal(zero["lower"], base["lower"])


def test_shared_z_keyword_leaves_default_untouched():
    """gru_shared_z=False (the default) is today's two-plane pass; shared z differs."""
    d = load_fixture(DATA / "gru_T8_h16.npz")
    T = d["X"].shape[1]
    args = fixture_args(d, 0, 0.02, 2.0, np.ones(T, bool), "exact")
    a, b = _core.gru_bounds(*args), _core.gru_bounds(*args, gru_shared_z=False)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    c = _core.gru_bounds(*args, gru_shared_z=True)
    assert not np.array_equal(a["lower"], c["lower"])
