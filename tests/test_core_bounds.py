"""Soundness and tightness of the core bound passes (``_core.rnn_bounds`` etc.).

Small random networks (s in 1..6, n in 1..4, T in 1..5, 2..4 classes), every
architecture, p in {1, 2, inf}, random frame masks. The intermediate values
are recomputed here by an independent NumPy forward pass using the state
names of docs/RECURRENCES.md §0 and checked against every interval the core
returns, for thousands of perturbations inside (and on the surface of) each
moving frame's lp ball.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from popqorn_fast import _core

DATA = Path(__file__).parent / "data"

PS = [1.0, 2.0, np.inf]
ARCHS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
# Slack for rounding: the NumPy forward and the core round differently (~1e-15);
# this is far below any relaxation gap, so a real soundness bug still shows.
ROUND = 1e-10


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class Case:
    """A random network, clean input, folded head and the core call that bounds it."""

    kind: str
    args: dict
    x: np.ndarray
    spec_w: np.ndarray
    spec_b: np.ndarray
    forward: Callable[[np.ndarray], dict]  # (N, T, n) -> {name: (N, T, rows), "margin": (N, K)}

    def bounds(self, eps: float, p: float, mask: np.ndarray, planes: str = "exact") -> dict:
        common = dict(x=self.x, eps=eps, p=p, frame_mask=mask, spec_weight=self.spec_w,
                      spec_bias=self.spec_b, want_states=True)
        if self.kind.startswith("rnn"):
            return _core.rnn_bounds(**self.args, **common)
        fn = _core.lstm_bounds if self.kind == "lstm" else _core.gru_bounds
        return fn(**self.args, **common, planes=planes)


GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def make_case(kind: str, seed: int, size: tuple[int, int, int] | None = None) -> Case:
    """Random network of the given kind (size (s, n, T), else random) with a
    specification head folded in."""
    rng = np.random.default_rng(seed)
    s, n, T = int(rng.integers(1, 7)), int(rng.integers(1, 5)), int(rng.integers(1, 6))
    if size is not None:
        s, n, T = size
    C = int(rng.integers(2, 5))
    scale = rng.uniform(0.5, 2.0)
    G = GATES[kind]
    w_ih = rng.normal(size=(G * s, n)) * scale / np.sqrt(n)
    w_hh = rng.normal(size=(G * s, s)) * scale / np.sqrt(s)
    b_ih, b_hh = rng.normal(size=G * s) * 0.5, rng.normal(size=G * s) * 0.5
    h0 = rng.normal(size=s) * 0.3 if rng.random() < 0.5 else np.zeros(s)
    c0 = rng.normal(size=s) * 0.3 if rng.random() < 0.5 else np.zeros(s)
    w_out, b_out = rng.normal(size=(C, s)), rng.normal(size=C) * 0.1
    x = rng.normal(size=(T, n))
    return case_from_weights(kind, w_ih, w_hh, b_ih, b_hh, h0, c0, w_out, b_out, x)


def case_from_weights(kind: str, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray,
                      b_hh: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_out: np.ndarray,
                      b_out: np.ndarray, x: np.ndarray) -> Case:
    """The case of given PyTorch-layout weights and clean input x (T, n); the
    specification is untargeted around the model's own prediction."""
    s, (T, n), C = w_hh.shape[1], x.shape, w_out.shape[0]

    def forward(xb: np.ndarray) -> dict:
        N = xb.shape[0]
        h = np.broadcast_to(h0, (N, s)).copy()
        c = np.broadcast_to(c0, (N, s)).copy()
        out: dict = {}

        def put(name: str, v: np.ndarray) -> None:
            out.setdefault(name, []).append(v)

        for t in range(T):
            xt = xb[:, t, :]
            if kind.startswith("rnn"):
                z = xt @ w_ih.T + h @ w_hh.T + (b_ih + b_hh)
                h = np.tanh(z) if kind == "rnn_tanh" else np.maximum(z, 0.0)
                put("pre", z)
            elif kind == "lstm":
                y = xt @ w_ih.T + h @ w_hh.T + (b_ih + b_hh)
                i, f, g, o = np.split(y, 4, axis=1)
                c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
                h = _sigmoid(o) * np.tanh(c)
                put("gates", y)
                put("cell", c)
            else:
                gi, gh = xt @ w_ih.T + b_ih, h @ w_hh.T + b_hh
                yr, yz, v = gi[:, :s] + gh[:, :s], gi[:, s:2 * s] + gh[:, s:2 * s], gh[:, 2 * s:]
                u = gi[:, 2 * s:] + _sigmoid(yr) * v
                h = np.tanh(u) * (1.0 - _sigmoid(yz)) + _sigmoid(yz) * h
                put("gates", np.concatenate([yr, yz, v], axis=1))
                put("u", u)
            put("hidden", h)
        res = {k: np.stack(v, axis=1) for k, v in out.items()}
        res["logits"] = h @ w_out.T + b_out
        return res

    label = int(np.argmax(forward(x[None])["logits"][0]))
    others = [j for j in range(C) if j != label]
    spec = np.zeros((C - 1, C))
    spec[np.arange(C - 1), label] = 1.0
    spec[np.arange(C - 1), others] = -1.0
    spec_w, spec_b = spec @ w_out, spec @ b_out

    def forward_with_margin(xb: np.ndarray) -> dict:
        r = forward(xb)
        r["margin"] = r.pop("logits") @ spec.T
        return r

    if kind.startswith("rnn"):
        args = dict(weight_ih=w_ih, weight_hh=w_hh, bias=b_ih + b_hh, h0=h0,
                    activation=kind.split("_")[1])
    elif kind == "lstm":
        args = dict(weight_ih=w_ih, weight_hh=w_hh, bias=b_ih + b_hh, h0=h0, c0=c0)
    else:
        args = dict(weight_ih=w_ih, weight_hh=w_hh, bias_ih=b_ih, bias_hh=b_hh, h0=h0)
    return Case(kind, args, x, spec_w, spec_b, forward_with_margin)


def ball_samples(rng: np.random.Generator, N: int, n: int, p: float, eps: float) -> np.ndarray:
    """N points of the lp ball of radius eps in R^n: half on the surface (vertices
    included for p = 1, inf), half inside."""
    if p == 2.0:
        d = rng.normal(size=(N, n))
    elif p == 1.0:
        d = rng.exponential(size=(N, n)) * rng.choice([-1.0, 1.0], size=(N, n))
        k = N // 4  # vertices ±e_i
        d[:k] = 0.0
        d[np.arange(k), rng.integers(0, n, size=k)] = rng.choice([-1.0, 1.0], size=k)
    else:
        d = rng.uniform(-1.0, 1.0, size=(N, n))
        k = N // 4  # vertices: every coordinate ±1
        d[:k] = rng.choice([-1.0, 1.0], size=(k, n))
        d[np.arange(N), rng.integers(0, n, size=N)] = rng.choice([-1.0, 1.0], size=N)
    d /= np.linalg.norm(d, ord=p, axis=1, keepdims=True)
    radius = np.where(np.arange(N) % 2 == 0, 1.0, rng.uniform(size=N) ** (1.0 / n))
    return eps * radius[:, None] * d


def perturbed(case: Case, rng: np.random.Generator, N: int, p: float, eps: float,
              mask: np.ndarray) -> np.ndarray:
    T, n = case.x.shape
    X = np.broadcast_to(case.x, (N, T, n)).copy()
    for t in np.flatnonzero(mask):
        X[:, t, :] += ball_samples(rng, N, n, p, eps)
    return X


def random_mask(rng: np.random.Generator, T: int) -> np.ndarray:
    m = rng.random(T) < 0.6
    if not m.any():
        m[rng.integers(T)] = True
    return m


def assert_enclosed(b: dict, vals: dict) -> None:
    """Every sampled state / margin lies inside the core's interval."""
    for name, v in vals.items():
        key = "" if name == "margin" else name + "_"
        lo, up = b[key + "lower"], b[key + "upper"]
        tol = ROUND * (1.0 + np.abs(v))
        below = v < lo - tol
        above = v > up + tol
        assert not below.any(), f"{name}: sample below lower bound by {np.max((lo - v)[below])}"
        assert not above.any(), f"{name}: sample above upper bound by {np.max((v - up)[above])}"


STATE_NAMES = {"rnn_tanh": ("pre", "hidden"), "rnn_relu": ("pre", "hidden"),
               "lstm": ("gates", "cell", "hidden"), "gru": ("gates", "u", "hidden")}


@pytest.mark.parametrize("kind", ARCHS)
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("seed", range(3))
def test_eps_zero_encloses_and_is_tight(kind: str, p: float, seed: int) -> None:
    case = make_case(kind, 100 + seed)
    rng = np.random.default_rng(seed)
    b = case.bounds(0.0, p, random_mask(rng, case.x.shape[0]))
    clean = case.forward(case.x[None])
    assert set(b) == {"lower", "upper", "slope"} | {f"{s}_{e}" for s in STATE_NAMES[kind] for e in ("lower", "upper")}
    assert_enclosed(b, {k: v[0] for k, v in clean.items()})
    for name, v in clean.items():
        key = "" if name == "margin" else name + "_"
        width = b[key + "upper"] - b[key + "lower"]
        assert np.all(width >= 0.0)
        assert np.all(width <= 1e-6 * (1.0 + np.abs(v[0]))), f"{name} not tight at eps=0: {width.max()}"


@pytest.mark.parametrize("kind", ARCHS)
@pytest.mark.parametrize("p", PS)
def test_frames_outside_mask_do_not_move(kind: str, p: float) -> None:
    case = make_case(kind, 7)
    T = case.x.shape[0]
    b = case.bounds(0.5, p, np.zeros(T, dtype=bool))
    b0 = case.bounds(0.0, p, np.ones(T, dtype=bool))
    clean = case.forward(case.x[None])
    assert_enclosed(b, {k: v[0] for k, v in clean.items()})
    for key in b:
        np.testing.assert_allclose(b[key], b0[key], rtol=1e-12, atol=1e-12)
    assert np.all(b["upper"] - b["lower"] <= 1e-6 * (1.0 + np.abs(clean["margin"][0])))


@pytest.mark.parametrize("kind", ARCHS)
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("seed", range(4))
def test_sampled_perturbations_stay_inside_bounds(kind: str, p: float, seed: int) -> None:
    case = make_case(kind, 1000 * seed + 17)
    rng = np.random.default_rng(seed + 50)
    T = case.x.shape[0]
    mask = random_mask(rng, T)
    eps = float(10.0 ** rng.uniform(-2.5, -0.3))
    b = case.bounds(eps, p, mask)
    for key in b:
        assert np.all(np.isfinite(b[key])), key
        if key.endswith("lower"):
            assert np.all(b[key] <= b[key.replace("lower", "upper")]), key
    X = perturbed(case, rng, 3000, p, eps, mask)
    assert_enclosed(b, case.forward(X))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("planes", ["exact", "1d", "constant"])
def test_every_plane_method_is_sound(kind: str, planes: str) -> None:
    case = make_case(kind, 4242)
    rng = np.random.default_rng(3)
    T = case.x.shape[0]
    mask = np.ones(T, dtype=bool)
    b = case.bounds(0.1, 2.0, mask, planes=planes)
    assert_enclosed(b, case.forward(perturbed(case, rng, 2000, 2.0, 0.1, mask)))


@pytest.mark.parametrize("kind", ARCHS)
@pytest.mark.parametrize("size", [(1, 1, 1), (1, 3, 5), (6, 1, 1), (4, 2, 5)])
def test_edge_sizes_are_sound(kind: str, size: tuple[int, int, int]) -> None:
    case = make_case(kind, sum(size), size=size)
    rng = np.random.default_rng(5)
    mask = np.ones(size[2], dtype=bool)
    for p in PS:
        b = case.bounds(0.2, p, mask)
        assert_enclosed(b, case.forward(perturbed(case, rng, 1000, p, 0.2, mask)))


@pytest.mark.parametrize("name", sorted(f.stem for f in DATA.glob("*.npz")))
def test_trained_models_are_sound(name: str) -> None:
    """The bundled trained digit classifiers, a real test input, every frame moving."""
    d = np.load(DATA / f"{name}.npz")
    kind = "lstm" if name.startswith("lstm") else "gru" if name.startswith("gru") else \
        "rnn_" + str(d["activation"])
    s = d["weight_hh_l0"].shape[1]
    case = case_from_weights(kind, d["weight_ih_l0"], d["weight_hh_l0"], d["bias_ih_l0"],
                             d["bias_hh_l0"], np.zeros(s), np.zeros(s), d["out.weight"],
                             d["out.bias"], np.asarray(d["X"][0], dtype=np.float64))
    rng = np.random.default_rng(0)
    mask = np.ones(case.x.shape[0], dtype=bool)
    for p, eps in ((2.0, 0.05), (np.inf, 0.01)):
        b = case.bounds(eps, p, mask)
        assert_enclosed(b, case.forward(perturbed(case, rng, 2000, p, eps, mask)))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ARCHS)
def test_many_random_networks_are_sound(kind: str) -> None:
    for seed in range(200):
        case = make_case(kind, 10_000 + seed)
        rng = np.random.default_rng(seed)
        T = case.x.shape[0]
        p = PS[seed % 3]
        mask = random_mask(rng, T)
        eps = float(10.0 ** rng.uniform(-3.0, 0.0))
        b = case.bounds(eps, p, mask, planes=("exact", "1d", "constant")[(seed // 3) % 3])
        assert_enclosed(b, case.forward(perturbed(case, rng, 3000, p, eps, mask)))


def test_margin_bounds_are_the_stacked_pair() -> None:
    """Negating the specification swaps and negates the bounds (upper = −lower(−Λ))."""
    case = make_case("lstm", 9)
    T = case.x.shape[0]
    mask = np.ones(T, dtype=bool)
    b = case.bounds(0.05, 2.0, mask)
    neg = Case(case.kind, case.args, case.x, -case.spec_w, -case.spec_b, case.forward)
    bn = neg.bounds(0.05, 2.0, mask)
    np.testing.assert_allclose(bn["lower"], -b["upper"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn["upper"], -b["lower"], rtol=1e-12, atol=1e-12)


def test_want_states_false_returns_only_margins() -> None:
    case = make_case("gru", 3)
    T = case.x.shape[0]
    r = _core.gru_bounds(**case.args, x=case.x, eps=0.1, p=2.0, frame_mask=np.ones(T, bool),
                         spec_weight=case.spec_w, spec_bias=case.spec_b, planes="exact",
                         want_states=False)
    assert set(r) == {"lower", "upper", "slope"}
    full = case.bounds(0.1, 2.0, np.ones(T, bool))
    np.testing.assert_array_equal(r["lower"], full["lower"])
    np.testing.assert_array_equal(r["upper"], full["upper"])


# --- bad input: ValueError naming the argument, never a crash ---------------------------

def _good(kind: str) -> tuple[Callable, dict]:
    case = make_case(kind, 11)
    T = case.x.shape[0]
    kw = dict(case.args, x=case.x, eps=0.1, p=2.0, frame_mask=np.ones(T, bool),
              spec_weight=case.spec_w, spec_bias=case.spec_b, want_states=False)
    if kind == "rnn_tanh":
        return _core.rnn_bounds, kw
    kw["planes"] = "exact"
    return (_core.lstm_bounds if kind == "lstm" else _core.gru_bounds), kw


BAD = [
    ("weight_ih", lambda kw: kw["weight_ih"][:-1]),
    ("weight_ih", lambda kw: kw["weight_ih"][:, :0]),
    ("weight_hh", lambda kw: kw["weight_hh"][:, :-1] if kw["weight_hh"].shape[1] > 1 else kw["weight_hh"][:-1]),
    ("weight_hh", lambda kw: kw["weight_hh"].ravel()),
    ("h0", lambda kw: np.zeros(kw["h0"].size + 1)),
    ("x", lambda kw: np.zeros((kw["x"].shape[0], kw["x"].shape[1] + 1))),
    ("x", lambda kw: np.zeros((0, kw["x"].shape[1]))),
    ("x", lambda kw: np.where(np.ones_like(kw["x"], bool), np.nan, 0.0)),
    ("frame_mask", lambda kw: np.ones(kw["x"].shape[0] + 1, bool)),
    ("spec_weight", lambda kw: kw["spec_weight"][:, :-1] if kw["spec_weight"].shape[1] > 1 else np.zeros((1, 7))),
    ("spec_bias", lambda kw: np.zeros(kw["spec_bias"].size + 1)),
    ("eps", lambda kw: -0.1),
    ("eps", lambda kw: float("nan")),
    ("p", lambda kw: 3.0),
]


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("arg,bad", BAD)
def test_bad_input_raises_value_error(kind: str, arg: str, bad: Callable) -> None:
    fn, kw = _good(kind)
    fn(**kw)  # the unmodified call works
    kw[arg] = bad(kw)
    with pytest.raises(ValueError, match=arg):
        fn(**kw)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_unknown_planes_raises(kind: str) -> None:
    fn, kw = _good(kind)
    kw["planes"] = "optimal"
    with pytest.raises(ValueError, match="planes"):
        fn(**kw)


def test_bad_biases_and_activation_raise() -> None:
    fn, kw = _good("rnn_tanh")
    with pytest.raises(ValueError, match="activation"):
        fn(**dict(kw, activation="sigmoid"))
    with pytest.raises(ValueError, match="bias"):
        fn(**dict(kw, bias=np.zeros(kw["bias"].size + 2)))
    fn, kw = _good("lstm")
    with pytest.raises(ValueError, match="c0"):
        fn(**dict(kw, c0=np.zeros((1, kw["c0"].size))))
    fn, kw = _good("gru")
    with pytest.raises(ValueError, match="bias_hh"):
        fn(**dict(kw, bias_hh=kw["bias_hh"][:-1]))
