"""The plain-NumPy oracle (popqorn_fast.reference) checked on its own.

- its 1-D lines (docs/RECURRENCES.md §2) are valid on dense grids, touch the
  function, and make the §2 choices (tangent through an endpoint, chord, ...);
- at eps = 0 the margin bounds enclose the clean margins tightly;
- thousands of sampled perturbations per p (ball interior and surface, frame
  subsets, with and without initial states) stay inside the margin bounds and
  inside every state interval of §0, computed with a small NumPy forward here.

LSTM/GRU run with a local corner min/max "constant" plane (valid for these
monotone-in-each-variable surfaces, ALGORITHM.md §3) and, when the core's
planes module is built, with ``popqorn_fast.planes.bound_product`` too.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from popqorn_fast.reference import (bound_activation, gru_bounds_with, lstm_bounds_with, rnn_bounds)
from popqorn_fast.reference.lines import EPS_MACH

from conftest import sample_unit_ball, sig

# ---------------------------------------------------------------- helpers


def corner_planes(surface: str, xl, xu, yl, yu, method: str) -> SimpleNamespace:
    """Local "constant" plane: min / max of F over the four corners (no core involved)."""
    f = (lambda a, b: np.tanh(a) * sig(b)) if surface == "tanh_sigmoid" else (lambda a, b: a * sig(b))
    corners = np.array([f(a, b) for a in (xl, xu) for b in (yl, yu)])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    pad = 4 * EPS_MACH * (1.0 + np.maximum(np.abs(lo), np.abs(hi)))  # cover the rounding of F
    z = np.zeros_like(lo)
    return SimpleNamespace(aL=z, bL=z, cL=lo - pad, aU=z, bU=z, cU=hi + pad)


def core_planes_or_skip():
    """The oracle's plane function (the core's planes), or skip if the core is not built."""
    try:
        from popqorn_fast import _core
    except ImportError as exc:
        pytest.skip(f"popqorn_fast._core not built ({exc})")
    if not hasattr(_core, "bound_product"):
        pytest.skip("_core.bound_product does not exist yet (relax branch not merged)")
    from popqorn_fast.reference.planes import core_bound_product
    return core_bound_product




def plane_fn(source: str):
    """(plane function, method name) for a plane source id."""
    if source == "corner-local":
        return corner_planes, "constant"
    return core_planes_or_skip(), source.split("-")[1]


def forward_states(kind: str, net: dict, X: np.ndarray) -> dict:
    """Batch forward (N, T, n) recording the §0 state names per step -> dict of (N, T, rows)."""
    N, T, _ = X.shape
    s = net["s"]
    h = np.broadcast_to(net["h0"], (N, s)).copy()
    c = np.broadcast_to(net.get("c0", np.zeros(s)), (N, s)).copy()
    rec: dict[str, list] = {}

    def put(name, v):
        rec.setdefault(name, []).append(v)

    for t in range(T):
        x = X[:, t, :]
        if kind == "rnn":
            z = x @ net["w_ih"].T + h @ net["w_hh"].T + net["b"]
            h = np.tanh(z) if net["act"] == "tanh" else np.maximum(z, 0.0)
            put("pre", z)
        elif kind == "lstm":
            y = x @ net["w_ih"].T + h @ net["w_hh"].T + net["b"]
            i, f, g, o = np.split(y, 4, axis=1)
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
            put("gates", y)
            put("cell", c)
        else:
            gi = x @ net["w_ih"].T + net["b_ih"]
            gh = h @ net["w_hh"].T + net["b_hh"]
            yr = gi[:, :s] + gh[:, :s]
            yz = gi[:, s:2 * s] + gh[:, s:2 * s]
            v = gh[:, 2 * s:]
            u = gi[:, 2 * s:] + sig(yr) * v
            h = np.tanh(u) * (1.0 - sig(yz)) + sig(yz) * h
            put("gates", np.concatenate([yr, yz, v], axis=1))
            put("u", u)
        put("hidden", h)
    out = {k: np.stack(v, axis=1) for k, v in rec.items()}
    out["margins"] = h @ net["spec_w"].T + net["spec_b"]
    return out


def random_net(kind: str, rng: np.random.Generator, s: int, n: int, T: int, C: int = 4,
               act: str = "tanh", init_state: bool = False, scale: float = 1.0) -> dict:
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    net = {"s": s, "T": T, "n": n, "act": act,
           "w_ih": rng.normal(size=(G * s, n)) * scale / math.sqrt(n),
           "w_hh": rng.normal(size=(G * s, s)) * scale / math.sqrt(s),
           "b_ih": rng.normal(size=G * s) * 0.3, "b_hh": rng.normal(size=G * s) * 0.3,
           "h0": rng.normal(size=s) * 0.5 if init_state else np.zeros(s),
           "c0": rng.normal(size=s) if init_state else np.zeros(s)}
    net["b"] = net["b_ih"] + net["b_hh"]
    w_out = rng.normal(size=(C, s))
    b_out = rng.normal(size=C) * 0.1
    label = int(rng.integers(C))
    others = [j for j in range(C) if j != label]
    spec = np.zeros((C - 1, C))
    spec[np.arange(C - 1), label] = 1.0
    spec[np.arange(C - 1), others] = -1.0
    net["spec_w"], net["spec_b"] = spec @ w_out, spec @ b_out
    return net


def run_oracle(kind: str, net: dict, x: np.ndarray, eps: float, p: float, mask: np.ndarray,
               source: str = "corner-local") -> dict:
    if kind == "rnn":
        return rnn_bounds(net["w_ih"], net["w_hh"], net["b"], net["h0"], net["act"], x, eps, p, mask,
                          net["spec_w"], net["spec_b"], True)
    fn, method = plane_fn(source)
    if kind == "lstm":
        return lstm_bounds_with(fn, net["w_ih"], net["w_hh"], net["b"], net["h0"], net["c0"], x, eps, p,
                                mask, net["spec_w"], net["spec_b"], method, True)
    return gru_bounds_with(fn, net["w_ih"], net["w_hh"], net["b_ih"], net["b_hh"], net["h0"], x, eps, p,
                           mask, net["spec_w"], net["spec_b"], method, True)


STATE_NAMES = {"rnn": ("pre", "hidden"), "lstm": ("gates", "cell", "hidden"), "gru": ("gates", "u", "hidden")}

# ---------------------------------------------------------------- 1-D lines (§2)

FUNCS = {"tanh": np.tanh, "sigmoid": sig, "relu": lambda z: np.maximum(z, 0.0)}


def interval_zoo(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Intervals of every §2 case: convex, concave, straddling (narrow/wide/lopsided), points, huge."""
    a = rng.normal(scale=3.0, size=400)
    w = np.abs(rng.normal(scale=2.0, size=400))
    ls = [a, np.array([-8.0, -3.0, -0.5, 0.0, -1e-3, -20.0, -0.1, -40.0, 5.0, -2.0, 1e-14])]
    us = [a + w, np.array([-7.0, 4.0, 0.5, 0.0, 1e-3, 0.3, 20.0, 40.0, 5.0 + 1e-13, -2.0, 2e-14])]
    return np.concatenate(ls), np.concatenate(us)


@pytest.mark.parametrize("fn", ["tanh", "sigmoid", "relu"])
def test_lines_valid_and_touching_on_dense_grids(fn: str) -> None:
    rng = np.random.default_rng(11)
    l, u = interval_zoo(rng)
    lines = bound_activation(fn, l, u)
    phi = FUNCS[fn]
    for i in range(len(l)):
        z = np.concatenate([np.linspace(l[i], u[i], 4001), [l[i], u[i]]])
        f = phi(z)
        lo = lines.alpha_l[i] * z + lines.beta_l[i]
        hi = lines.alpha_u[i] * z + lines.beta_u[i]
        assert np.all(lo <= f), (fn, l[i], u[i], np.max(lo - f))
        assert np.all(f <= hi), (fn, l[i], u[i], np.max(f - hi))
        # tight: each line touches phi up to the grid resolution (quadratic in the step)
        tol = 1e-12 + 0.5 * ((u[i] - l[i]) / 4000) ** 2 + 16 * EPS_MACH * (1 + np.max(np.abs(z)))
        assert np.min(f - lo) <= tol, (fn, l[i], u[i], np.min(f - lo))
        assert np.min(hi - f) <= tol, (fn, l[i], u[i], np.min(hi - f))


@pytest.mark.parametrize("fn", ["tanh", "sigmoid"])
def test_lines_follow_the_section2_choices(fn: str) -> None:
    """Straddling: upper line = the chord, or the tangent at max(d, m) where d in (0, u] is the
    tangent point of the line through (l, phi(l)) and m the midpoint (it passes through
    (l, phi(l)) when d >= m); lower line mirrored; convex piece: upper = chord."""
    phi = FUNCS[fn]
    dphi = (lambda z: 1 - np.tanh(z) ** 2) if fn == "tanh" else (lambda z: sig(z) * (1 - sig(z)))
    rng = np.random.default_rng(5)
    through_l = at_mid = 0
    for _ in range(200):
        l, u = -abs(rng.normal(scale=4)) - 1e-3, abs(rng.normal(scale=4)) + 1e-3
        m = 0.5 * (l + u)
        ln = bound_activation(fn, [l], [u])
        au, bu, al, bl = ln.alpha_u[0], ln.beta_u[0], ln.alpha_l[0], ln.beta_l[0]
        chord = (phi(u) - phi(l)) / (u - l)
        if math.isclose(au, chord, rel_tol=1e-12):
            # chord chosen: no tangent point in (0, u]: phi'(u)(u - l) >= phi(u) - phi(l)
            assert dphi(u) * (u - l) >= phi(u) - phi(l) - 1e-12
            assert abs(au * l + bu - phi(l)) <= 1e-12
        else:
            d = np.linspace(0, u, 200001)
            on_l = np.abs(dphi(d) * (d - l) - (phi(d) - phi(l)))
            d_star = d[np.argmin(on_l)]  # the tangent point through (l, phi(l)), to grid accuracy
            t = max(d_star, m)
            assert math.isclose(au, dphi(t), rel_tol=1e-4), (l, u, au, dphi(t))
            if d_star >= m + 1e-3:
                assert abs(au * l + bu - phi(l)) <= 1e-12, "upper line must pass through (l, phi(l))"
                through_l += 1
            elif d_star < m - 1e-3:
                assert abs(au * m + bu - phi(m)) <= 1e-12, "upper line must touch at the midpoint"
                at_mid += 1
        # the mirror image gives the lower line
        mirror = bound_activation(fn, [-u], [-l])
        assert math.isclose(al, mirror.alpha_u[0], rel_tol=1e-12)
    assert through_l > 0 and at_mid > 0
    # convex piece: upper line is the chord (touches both ends)
    ln = bound_activation(fn, [-3.0], [-1.0])
    assert abs(ln.alpha_u[0] * -3.0 + ln.beta_u[0] - phi(-3.0)) <= 1e-12
    assert abs(ln.alpha_u[0] * -1.0 + ln.beta_u[0] - phi(-1.0)) <= 1e-12
    # a point: slope 0
    ln = bound_activation(fn, [0.7], [0.7 + 1e-14])
    assert ln.alpha_l[0] == 0.0 and ln.alpha_u[0] == 0.0
    assert ln.beta_l[0] <= phi(0.7) <= ln.beta_u[0]


# ---------------------------------------------------------------- whole-network oracle

CASES = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]


@pytest.mark.parametrize("kind,act", CASES)
@pytest.mark.parametrize("init_state", [False, True])
def test_eps_zero_encloses_clean_margins_tightly(kind: str, act: str, init_state: bool) -> None:
    rng = np.random.default_rng(3 + init_state)
    net = random_net(kind, rng, s=5, n=3, T=4, act=act, init_state=init_state)
    x = rng.normal(size=(4, 3))
    ref = forward_states(kind, net, x[None])
    for p in (1.0, 2.0, np.inf):
        res = run_oracle(kind, net, x, 0.0, p, np.ones(4, bool))
        m = ref["margins"][0]
        tol = 1e-9 * np.maximum(1.0, np.abs(m))
        assert np.all(res["lower"] <= m + 1e-12) and np.all(m <= res["upper"] + 1e-12)
        assert np.all(res["upper"] - res["lower"] <= tol)
        for name in STATE_NAMES[kind]:
            v = ref[name][0]
            assert np.all(res[f"{name}_lower"] <= v + 1e-12) and np.all(v <= res[f"{name}_upper"] + 1e-12)
            assert np.all(res[f"{name}_upper"] - res[f"{name}_lower"] <= 1e-9 * np.maximum(1, np.abs(v)))


def check_samples_inside(kind: str, net: dict, x: np.ndarray, eps: float, p: float, mask: np.ndarray,
                         res: dict, rng: np.random.Generator, N: int) -> float:
    """Sample N perturbations; assert every state and margin lies in its interval.

    Returns the largest observed margin minus its lower bound."""
    T, n = x.shape
    X = np.repeat(x[None], N, axis=0)
    for t in np.flatnonzero(mask):
        X[:, t, :] += eps * sample_unit_ball(rng, N, n, p)[rng.permutation(N)]
    norms = np.linalg.norm(X - x, ord=p, axis=2)  # the samples really are in the threat model
    assert np.all(norms <= eps * (1 + 1e-12)) and np.all(norms[:, ~mask] == 0.0)
    assert np.mean(norms[:, mask] >= eps * (1 - 1e-12)) > 0.3  # many on the surface
    st = forward_states(kind, net, X)
    tol = 1e-10
    for name in STATE_NAMES[kind]:
        lo, hi, v = res[f"{name}_lower"], res[f"{name}_upper"], st[name]
        assert np.all(v >= lo - tol), (name, np.max(lo - v))
        assert np.all(v <= hi + tol), (name, np.max(v - hi))
    m = st["margins"]
    assert np.all(m >= res["lower"] - tol), np.max(res["lower"] - m)
    assert np.all(m <= res["upper"] + tol), np.max(m - res["upper"])
    return float(np.max(m - res["lower"]))


@pytest.mark.parametrize("kind,act", CASES)
@pytest.mark.parametrize("p", [1.0, 2.0, np.inf])
def test_sampled_perturbations_stay_inside_all_bounds(kind: str, act: str, p: float) -> None:
    rng = np.random.default_rng(int(1000 * (p if p != np.inf else 9)) + len(kind))
    T, n = 4, 3
    for trial, (init_state, mask) in enumerate([(False, np.ones(T, bool)),
                                                (True, np.array([False, True, False, True])),
                                                (True, np.array([False, False, True, False]))]):
        net = random_net(kind, rng, s=4, n=n, T=T, act=act, init_state=init_state)
        x = rng.normal(size=(T, n))
        eps = 0.15 if p != 1.0 else 0.3
        res = run_oracle(kind, net, x, eps, p, mask)
        gap = res["upper"] - res["lower"]
        assert np.all(gap > 0) and np.all(np.isfinite(gap))
        check_samples_inside(kind, net, x, eps, p, mask, res, rng, N=3000)


@pytest.mark.parametrize("source", ["core-constant", "core-1d", "core-exact"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_sampled_perturbations_with_core_planes(kind: str, source: str) -> None:
    rng = np.random.default_rng(77)
    T, n = 3, 3
    for init_state, mask in [(False, np.ones(T, bool)), (True, np.array([True, False, True]))]:
        net = random_net(kind, rng, s=4, n=n, T=T, init_state=init_state)
        x = rng.normal(size=(T, n))
        for p in (1.0, 2.0, np.inf):
            res = run_oracle(kind, net, x, 0.2, p, mask, source)
            check_samples_inside(kind, net, x, 0.2, p, mask, res, rng, N=2000)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_unmasked_frames_do_not_widen_and_frames_matter(kind: str) -> None:
    """Moving fewer frames gives tighter (never looser) bounds; moving none equals eps = 0."""
    rng = np.random.default_rng(8)
    net = random_net(kind, rng, s=4, n=3, T=4)
    x = rng.normal(size=(4, 3))
    full = run_oracle(kind, net, x, 0.1, 2.0, np.ones(4, bool))
    one = run_oracle(kind, net, x, 0.1, 2.0, np.array([False, False, False, True]))
    none = run_oracle(kind, net, x, 0.1, 2.0, np.zeros(4, bool))
    zero = run_oracle(kind, net, x, 0.0, 2.0, np.ones(4, bool))
    # constant planes are monotone in the boxes, so this holds exactly here
    assert np.all(one["lower"] >= full["lower"] - 1e-12) and np.all(one["upper"] <= full["upper"] + 1e-12)
    assert np.any(one["upper"] - one["lower"] < full["upper"] - full["lower"] - 1e-6)
    np.testing.assert_array_equal(none["lower"], zero["lower"])
    np.testing.assert_array_equal(none["upper"], zero["upper"])


def fixture_net(path) -> tuple[str, dict, np.ndarray, np.ndarray]:
    """A trained model of tests/data as a ``random_net``-style dict (untargeted spec), with X, y."""
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    kind = str(d["kind"])
    f = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    s = d["weight_hh_l0"].shape[1]
    net = {"s": s, "act": str(d["activation"]), "w_ih": f(d["weight_ih_l0"]), "w_hh": f(d["weight_hh_l0"]),
           "b_ih": f(d["bias_ih_l0"]), "b_hh": f(d["bias_hh_l0"]), "h0": np.zeros(s), "c0": np.zeros(s),
           "w_out": f(d["out.weight"]), "b_out": f(d["out.bias"])}
    net["b"] = net["b_ih"] + net["b_hh"]
    return kind, net, f(d["X"]), d["y"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rnn_tanh_T16_h16", "rnn_relu_T4_h16", "lstm_T8_h16", "gru_T8_h16"])
def test_trained_models_sampled_soundness(name: str) -> None:
    """Trained fixtures, core "exact" planes: samples stay inside every bound, p = 2 and inf."""
    from pathlib import Path
    kind, net, X, y = fixture_net(Path(__file__).parent / "data" / f"{name}.npz")
    rng = np.random.default_rng(4)
    for idx in range(3):
        C = net["w_out"].shape[0]
        lab = int(y[idx])
        S = np.zeros((C - 1, C))
        S[:, lab] = 1.0
        S[np.arange(C - 1), [j for j in range(C) if j != lab]] = -1.0
        net["spec_w"], net["spec_b"] = S @ net["w_out"], S @ net["b_out"]
        x = X[idx]
        mask = np.ones(x.shape[0], bool)
        for p, eps in ((2.0, 0.05), (np.inf, 0.02)):
            res = run_oracle(kind, net, x, eps, p, mask, "core-exact")
            check_samples_inside(kind, net, x, eps, p, mask, res, rng, N=2000)
