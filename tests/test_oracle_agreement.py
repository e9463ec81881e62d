"""The fast C++ core agrees with the plain-NumPy oracle to 1e-9 relative (float64).

``_core.<kind>_bounds`` vs ``popqorn_fast.reference.<kind>_bounds`` (same
arguments, docs/RECURRENCES.md §0) on seeded random networks (several sizes,
p in {1, 2, inf}, frame subsets, initial states, K = 1 and K = C - 1 spec
matrices) and on the trained models in tests/data/*.npz, comparing the margin
bounds and every state bound.  A mismatch is reported as the first (step,
state) that diverges, in forward order, which is where to start looking.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from popqorn_fast import reference

DATA = Path(__file__).parent / "data"
RTOL = 1e-9
# LSTM/GRU agreement runs with planes "1d" and "constant": continuous functions of the box,
# and the very same recurrences as "exact". "exact" (volume-minimal) planes are not unique
# when the concave envelope has a two-point support (a family of planes has the same volume),
# so the chosen member can jump when a box moves by one ulp; core and oracle sum in different
# orders, and a single jump at one neuron changes later bounds by up to tens of percent (both
# sound: each is checked by the soundness battery). Comparing them to 1e-9 would test the tie
# breaking of the LP, not the recurrences. test_exact_planes_are_deterministic checks instead
# that each implementation is a function of its input.
PLANES_COMPARED = ("1d", "constant")

# the order in which each kind's states are computed within one step (§4)
STATE_ORDER = {"rnn": ("pre", "hidden"), "lstm": ("gates", "cell", "hidden"), "gru": ("gates", "u", "hidden")}


def core_function(kind: str) -> Callable[..., dict]:
    """``_core.<kind>_bounds``, or skip while the core branch has not provided it yet."""
    try:
        from popqorn_fast import _core
    except ImportError as exc:
        pytest.skip(f"popqorn_fast._core is not built ({exc})")
    fn = getattr(_core, f"{kind}_bounds", None)
    if fn is None:
        pytest.skip(f"_core.{kind}_bounds does not exist yet (core branch not merged)")
    if kind != "rnn" and not hasattr(_core, "bound_product"):
        pytest.skip("_core.bound_product (the oracle's planes) does not exist yet")
    return fn


def core_lines_or_skip() -> Callable[..., object]:
    """``popqorn_fast.lines.bound_activation`` (the core's lines), or skip if not built."""
    try:
        from popqorn_fast.lines import bound_activation
    except ImportError as exc:
        pytest.skip(f"popqorn_fast.lines / _core not available ({exc})")
    return bound_activation


def first_divergence(kind: str, core: dict, ref: dict, rtol: float = RTOL) -> str | None:
    """Describe the first (step, state, row) where core and oracle differ by more than rtol."""
    T = ref[f"{STATE_ORDER[kind][0]}_lower"].shape[0] if f"{STATE_ORDER[kind][0]}_lower" in ref else 0
    checks = [(f"step {t + 1} {name}_{side}", core[f"{name}_{side}"][t], ref[f"{name}_{side}"][t])
              for t in range(T) for name in STATE_ORDER[kind] for side in ("lower", "upper")
              if f"{name}_{side}" in ref]
    checks += [("margin lower", core["lower"], ref["lower"]), ("margin upper", core["upper"], ref["upper"])]
    for label, a, b in checks:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return f"{label}: shape core {a.shape} vs oracle {b.shape}"
        bad = np.abs(a - b) > rtol * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
        bad |= np.isnan(a) != np.isnan(b)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            return f"{label} row {i}: core {a.ravel()[i]!r} vs oracle {b.ravel()[i]!r} ({int(bad.sum())} rows off)"
    return None


def assert_agree(kind: str, args: tuple, context: str) -> None:
    core = core_function(kind)(*args)
    ref = getattr(reference, f"{kind}_bounds")(*args)
    missing = sorted(set(ref) - set(core))
    assert not missing, f"{context}: core result lacks keys {missing}"
    where = first_divergence(kind, core, ref, RTOL)
    assert where is None, f"{context}: first divergence at {where}"


def spec(rng: np.random.Generator, w_out: np.ndarray, b_out: np.ndarray, label: int,
         targeted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows e_label - e_j folded into the head: one random target j, or every j != label."""
    C = w_out.shape[0]
    others = [j for j in range(C) if j != label]
    js = [int(rng.choice(others))] if targeted else others
    S = np.zeros((len(js), C))
    S[np.arange(len(js)), label] = 1.0
    S[np.arange(len(js)), js] = -1.0
    return np.ascontiguousarray(S @ w_out), np.ascontiguousarray(S @ b_out)


def random_args(kind: str, rng: np.random.Generator, s: int, n: int, T: int, p: float, mask: np.ndarray,
                targeted: bool, init_state: bool, eps: float, planes: str = "exact",
                act: str = "tanh") -> tuple:
    """Arguments of §0 for a random network (scaled so the relaxations are all exercised)."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    w_ih = rng.normal(size=(G * s, n)) / math.sqrt(n)
    w_hh = rng.normal(size=(G * s, s)) * 1.2 / math.sqrt(s)
    b_ih, b_hh = rng.normal(size=G * s) * 0.5, rng.normal(size=G * s) * 0.5
    h0 = rng.normal(size=s) * 0.5 if init_state else np.zeros(s)
    c0 = rng.normal(size=s) if init_state else np.zeros(s)
    C = 5
    sw, sb = spec(rng, rng.normal(size=(C, s)), rng.normal(size=C), int(rng.integers(C)), targeted)
    x = rng.normal(size=(T, n))
    if kind == "rnn":
        return (w_ih, w_hh, b_ih + b_hh, h0, act, x, eps, p, mask, sw, sb, True)
    if kind == "lstm":
        return (w_ih, w_hh, b_ih + b_hh, h0, c0, x, eps, p, mask, sw, sb, planes, True)
    return (w_ih, w_hh, b_ih, b_hh, h0, x, eps, p, mask, sw, sb, planes, True)


def close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| <= RTOL * max(1, |a|, |b|), elementwise."""
    return np.abs(a - b) <= RTOL * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))


@pytest.mark.parametrize("fn", ["tanh", "sigmoid", "relu"])
def test_lines_agree(fn: str) -> None:
    """The core's 1-D lines (§2) and the oracle's own NumPy lines agree on every interval case."""
    core_lines = core_lines_or_skip()
    rng = np.random.default_rng(sum(map(ord, fn)))
    a = rng.normal(scale=3.0, size=3000)
    w = np.abs(rng.normal(scale=2.0, size=3000)) * rng.choice([1e-13, 1e-6, 1.0, 10.0], size=3000)
    l = np.concatenate([a, [-8.0, -3.0, 0.0, -1e-3, -20.0, -40.0, 5.0, -2.0, 0.0, -700.0]])
    u = np.concatenate([a + w, [-7.0, 4.0, 0.0, 1e-3, 0.3, 40.0, 5.0 + 1e-13, -2.0, 1e-300, 700.0]])
    got = core_lines(fn, l, u)
    want = reference.bound_activation(fn, l, u)
    for field in ("alpha_l", "beta_l", "alpha_u", "beta_u"):
        ok = close(np.asarray(getattr(got, field)), getattr(want, field))
        i = int(np.argmin(ok))
        assert ok.all(), (f"{fn} {field} on [{l[i]!r}, {u[i]!r}]: core {getattr(got, field)[i]!r} "
                          f"vs oracle {getattr(want, field)[i]!r}")


P_VALUES = [1.0, 2.0, math.inf]
SIZES = [(3, 2, 2), (5, 4, 3), (7, 3, 5)]  # (s, n, T)


@pytest.mark.parametrize("kind,act,planes", [("rnn", "tanh", "exact"), ("rnn", "relu", "exact"),
                                             ("lstm", "tanh", "constant"), ("lstm", "tanh", "1d"),
                                             ("gru", "tanh", "constant"), ("gru", "tanh", "1d")])
@pytest.mark.parametrize("p", P_VALUES)
def test_random_networks_agree(kind: str, act: str, planes: str, p: float) -> None:
    core_function(kind)
    seed = sum(map(ord, f"{kind}{act}{planes}{p}"))
    rng = np.random.default_rng(seed)
    for (s, n, T) in SIZES:
        for variant in range(2):
            mask = np.ones(T, bool) if variant == 0 else rng.random(T) < 0.5
            eps = float(rng.choice([0.0, 0.05, 0.2, 0.6])) if variant else 0.1
            args = random_args(kind, rng, s, n, T, p, mask, targeted=bool(variant), init_state=bool(variant),
                               eps=eps, planes=planes, act=act)
            assert_agree(kind, args, f"{kind}/{act}/{planes} s={s} n={n} T={T} p={p} eps={eps} "
                                     f"mask={mask.astype(int).tolist()} variant={variant}")


def load_fixture(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def fixture_args(d: dict, idx: int, eps: float, p: float, mask: np.ndarray, planes: str) -> tuple:
    kind = str(d["kind"])
    f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    w_ih, w_hh, b_ih, b_hh = (f64(d[k]) for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
    w_out, b_out = f64(d["out.weight"]), f64(d["out.bias"])
    x = f64(d["X"][idx])
    label = int(d["y"][idx])
    C = w_out.shape[0]
    S = np.zeros((C - 1, C))
    S[:, label] = 1.0
    S[np.arange(C - 1), [j for j in range(C) if j != label]] = -1.0
    sw, sb = np.ascontiguousarray(S @ w_out), np.ascontiguousarray(S @ b_out)
    s = w_hh.shape[1]
    z = np.zeros(s)
    if kind == "rnn":
        return (w_ih, w_hh, b_ih + b_hh, z, str(d["activation"]), x, eps, p, mask, sw, sb, True)
    if kind == "lstm":
        return (w_ih, w_hh, b_ih + b_hh, z, z.copy(), x, eps, p, mask, sw, sb, planes, True)
    return (w_ih, w_hh, b_ih, b_hh, z, x, eps, p, mask, sw, sb, planes, True)


FIXTURES = sorted(p.name for p in DATA.glob("*.npz"))


@pytest.mark.parametrize("name", FIXTURES)
def test_trained_models_agree(name: str) -> None:
    d = load_fixture(DATA / name)
    kind = str(d["kind"])
    core_function(kind)
    T = d["X"].shape[1]
    mask_last = np.zeros(T, bool)
    mask_last[-1] = True
    # eps near the radii auto_LiRPA certifies on these models (shared/reference), so that the
    # relaxations straddle zero and the bounds are far from trivial
    for idx, eps, p, mask, planes in [(0, 0.02, 2.0, np.ones(T, bool), "1d"),
                                      (1, 0.01, math.inf, np.ones(T, bool), "1d"),
                                      (2, 0.1, 1.0, mask_last, "constant")]:
        assert_agree(kind, fixture_args(d, idx, eps, p, mask, planes),
                     f"{name} input {idx} eps={eps} p={p} planes={planes}")


@pytest.mark.slow
@pytest.mark.parametrize("name", FIXTURES)
def test_trained_models_agree_more_inputs(name: str) -> None:
    d = load_fixture(DATA / name)
    kind = str(d["kind"])
    core_function(kind)
    T = d["X"].shape[1]
    for idx in range(10):
        for p, eps in [(2.0, 0.03), (math.inf, 0.015), (1.0, 0.05)]:
            for planes in (("exact",) if kind == "rnn" else PLANES_COMPARED):
                assert_agree(kind, fixture_args(d, idx, eps, p, np.ones(T, bool), planes),
                             f"{name} input {idx} eps={eps} p={p} planes={planes}")


@pytest.mark.parametrize("name", ["lstm_T8_h16.npz", "gru_T8_h16.npz"])
def test_exact_planes_are_deterministic(name: str) -> None:
    """With "exact" planes, core and oracle each give bit-identical results on a repeat call,
    (the property users rely on when `popqorn-fast verify` re-runs a saved certificate)."""
    d = load_fixture(DATA / name)
    kind = str(d["kind"])
    T = d["X"].shape[1]
    args = fixture_args(d, 0, 0.02, 2.0, np.ones(T, bool), "exact")
    for fn in (core_function(kind), getattr(reference, f"{kind}_bounds")):
        a, b = fn(*args), fn(*args)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{fn.__module__} {key}")


# GRU shared z (RECURRENCES.md §4 "GRU, shared z (optimized)"): the core's hidden keyword
# gru_shared_z and the oracle's argument of the same name, with the continuous plane methods.
def assert_agree_shared_z(args: tuple, context: str) -> None:
    core = core_function("gru")(*args, gru_shared_z=True)
    ref = reference.gru_bounds(*args, gru_shared_z=True)
    missing = sorted(set(ref) - set(core))
    assert not missing, f"{context}: core result lacks keys {missing}"
    where = first_divergence("gru", core, ref, RTOL)
    assert where is None, f"{context}: first divergence at {where}"


@pytest.mark.parametrize("planes", PLANES_COMPARED)
@pytest.mark.parametrize("p", P_VALUES)
def test_gru_shared_z_random_networks_agree(planes: str, p: float) -> None:
    core_function("gru")
    rng = np.random.default_rng(sum(map(ord, f"gru-shared-z{planes}{p}")))
    for (s, n, T) in SIZES:
        for variant in range(2):
            mask = np.ones(T, bool) if variant == 0 else rng.random(T) < 0.5
            eps = float(rng.choice([0.0, 0.05, 0.2, 0.6])) if variant else 0.1
            args = random_args("gru", rng, s, n, T, p, mask, targeted=bool(variant), init_state=bool(variant),
                               eps=eps, planes=planes)
            assert_agree_shared_z(args, f"gru shared z/{planes} s={s} n={n} T={T} p={p} eps={eps} "
                                        f"variant={variant}")


@pytest.mark.parametrize("name", [f.name for f in sorted(DATA.glob("gru*.npz"))])
def test_gru_shared_z_trained_models_agree(name: str) -> None:
    d = load_fixture(DATA / name)
    core_function("gru")
    T = d["X"].shape[1]
    for idx, eps, p, planes in [(0, 0.02, 2.0, "1d"), (1, 0.01, math.inf, "constant"), (2, 0.05, 1.0, "1d")]:
        assert_agree_shared_z(fixture_args(d, idx, eps, p, np.ones(T, bool), planes),
                              f"{name} input {idx} eps={eps} p={p} planes={planes}")


def test_gru_shared_z_exact_is_deterministic() -> None:
    d = load_fixture(DATA / "gru_T8_h16.npz")
    T = d["X"].shape[1]
    args = fixture_args(d, 0, 0.02, 2.0, np.ones(T, bool), "exact")
    for fn in (core_function("gru"), reference.gru_bounds):
        a, b = fn(*args, gru_shared_z=True), fn(*args, gru_shared_z=True)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{fn.__module__} {key}")
