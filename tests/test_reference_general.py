"""The plain-NumPy oracle of the general model (popqorn_fast.reference.general) checked on its own.

- one-layer models (``as_general``) give exactly the one-layer oracle's bounds and states;
- a bidirectional layer's backward direction is the one-layer oracle on the reversed input;
- model rewrites that change no function (identity frame layer, linear hidden head layer
  folded into the last, "mean" over one frame) change no bound beyond rounding;
- soundness: random general models (two layers, bidirectional, each readout, frame layers,
  0 or 1 hidden head layers with every activation), random inputs, eps, p and frame subsets:
  sampled perturbations (ball surfaces, interiors, vertices) and projected-gradient attacks on
  every specification row stay inside every state interval and the specification bounds;
- eps = 0: every bound is the clean value.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from popqorn_fast.general import Dense, RecurrentClassifier, RecurrentLayer, as_general
from popqorn_fast.general_forward import general_logits, general_logits_vjp, general_states

pytest.importorskip("popqorn_fast._core")  # the oracle's 2-D planes are the core's (RECURRENCES.md §3)

from popqorn_fast.reference import gru_bounds, lstm_bounds, rnn_bounds  # noqa: E402
from popqorn_fast.reference.general import general_bounds  # noqa: E402

from conftest import random_weights, sample_unit_ball  # noqa: E402

P_VALUES = (1.0, 2.0, math.inf)
ONE_LAYER_NAMES = {"rnn": ("pre", "hidden"), "lstm": ("gates", "cell", "hidden"), "gru": ("gates", "u", "hidden")}


# ---------------------------------------------------------------- helpers

def one_layer_oracle(w, x, eps, p, mask, spec_w, spec_b, planes, gru_shared_z=False) -> dict:
    """The one-layer oracle on ``w`` with the head folded into the specification."""
    s = w.hidden_size
    h0 = np.zeros(s) if w.h0 is None else w.h0
    sw, sb = spec_w @ w.out_weight, spec_w @ w.out_bias + spec_b
    if w.kind == "rnn":
        return rnn_bounds(w.weight_ih, w.weight_hh, w.bias_ih + w.bias_hh, h0, w.activation, x, eps, p, mask,
                          sw, sb, True)
    if w.kind == "lstm":
        c0 = np.zeros(s) if w.c0 is None else w.c0
        return lstm_bounds(w.weight_ih, w.weight_hh, w.bias_ih + w.bias_hh, h0, c0, x, eps, p, mask, sw, sb,
                           planes, True)
    return gru_bounds(w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh, h0, x, eps, p, mask, sw, sb, planes, True,
                      gru_shared_z)


def margin_spec(rng: np.random.Generator, C: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows e_label - e_j (j != label) plus one random row; a small random bias."""
    label = int(rng.integers(C))
    others = [j for j in range(C) if j != label]
    S = np.zeros((C - 1, C))
    S[np.arange(C - 1), label] = 1.0
    S[np.arange(C - 1), others] = -1.0
    S = np.vstack([S, rng.normal(size=(1, C))])
    return S, rng.normal(scale=0.1, size=S.shape[0])


def close(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    return bool(np.all(np.abs(a - b) <= tol * (1.0 + np.abs(b))))


def random_direction(kind: str, rng: np.random.Generator, s: int, n: int, scale: float) -> tuple:
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    return (rng.normal(scale=scale / math.sqrt(n), size=(G * s, n)),
            rng.normal(scale=scale / math.sqrt(s), size=(G * s, s)),
            rng.normal(scale=0.3, size=G * s), rng.normal(scale=0.3, size=G * s))


def random_model(rng: np.random.Generator, kinds: tuple, bidir: tuple, readout: str, n_frame: int,
                 head_act: tuple, n: int = 2, s: int = 3, C: int = 3, scale: float = 1.0,
                 activation: str = "tanh", init_states: bool = False) -> RecurrentClassifier:
    """Frame layers (random activations), recurrent layers of ``kinds``, the head: one Dense per
    entry of ``head_act`` (hidden, that activation) and then the logits layer (linear)."""
    frames = []
    width = n
    for _ in range(n_frame):
        w = int(rng.integers(2, 4))
        act = [None, "relu", "tanh", "sigmoid"][int(rng.integers(4))]
        frames.append(Dense(rng.normal(size=(w, width)) / math.sqrt(width), rng.normal(scale=0.3, size=w), act))
        width = w
    layers = []
    for kind, bi in zip(kinds, bidir):
        fwd = random_direction(kind, rng, s, width, scale)
        rev = random_direction(kind, rng, s, width, scale) if bi else None
        kw = {}
        if init_states and not bi:
            kw["h0"] = rng.uniform(-0.8, 0.8, size=s)
            if kind == "lstm":
                kw["c0"] = rng.normal(size=s)
        layers.append(RecurrentLayer(kind, *fwd, activation=activation if kind == "rnn" else "tanh", reverse=rev,
                                     **kw))
        width = layers[-1].output_size
    head = []
    for act in head_act:
        w = int(rng.integers(2, 5))
        head.append(Dense(rng.normal(size=(w, width)) / math.sqrt(width), rng.normal(scale=0.3, size=w), act))
        width = w
    head.append(Dense(rng.normal(size=(C, width)), rng.normal(scale=0.1, size=C)))
    return RecurrentClassifier(tuple(layers), tuple(head), readout=readout, frame_layers=tuple(frames))


def perturbations(rng: np.random.Generator, x: np.ndarray, eps: float, p: float, mask: np.ndarray,
                  N: int) -> np.ndarray:
    """N inputs (N, T, n): each moving frame independently in its own ball, the others fixed."""
    T, n = x.shape
    X = np.broadcast_to(x, (N, T, n)).copy()
    for t in range(T):
        if mask[t]:
            X[:, t] += eps * sample_unit_ball(rng, N, n, p)[rng.permutation(N)]
    return X


def expected_state_names(model: RecurrentClassifier) -> set:
    """Every name general_bounds must bound: general_forward's, less a linear last head layer's."""
    names = set(general_states(model, np.zeros((2, model.input_size))))
    H = len(model.head)
    if model.head[-1].activation is None:
        names.discard(f"head{H - 1}_pre")
    return names


def check_sound(model: RecurrentClassifier, res: dict, X: np.ndarray, S: np.ndarray, sb: np.ndarray,
                tol: float = 1e-9) -> int:
    """Every sampled state and spec value inside its bounds; returns the number of checks."""
    st = general_states(model, X)
    names = expected_state_names(model)
    assert {k[:-6] for k in res if k.endswith("_lower")} == names
    checks = 0
    for name in names:
        lo, up = res[name + "_lower"], res[name + "_upper"]
        v = st[name]
        assert lo.shape == up.shape == v.shape[1:], (name, lo.shape, v.shape)
        assert np.all(lo <= up), name
        slack = tol * (1.0 + np.maximum(np.abs(lo), np.abs(up)))
        assert np.all(v >= lo - slack), (name, np.min(v - lo))
        assert np.all(v <= up + slack), (name, np.max(v - up))
        checks += v.size
    spec = general_logits(model, X) @ S.T + sb
    slack = tol * (1.0 + np.maximum(np.abs(res["lower"]), np.abs(res["upper"])))
    assert np.all(spec >= res["lower"] - slack), np.min(spec - res["lower"])
    assert np.all(spec <= res["upper"] + slack), np.max(spec - res["upper"])
    return checks + spec.size


def project(X: np.ndarray, x: np.ndarray, eps: float, p: float, mask: np.ndarray) -> np.ndarray:
    """Project each frame of X (N, T, n) onto its ball (p = 2 or inf); fixed frames reset."""
    D = X - x
    if p == np.inf:
        D = np.clip(D, -eps, eps)
    else:
        nrm = np.linalg.norm(D, axis=2, keepdims=True)
        D = D * np.minimum(1.0, eps / np.maximum(nrm, 1e-300))
    D[:, ~mask] = 0.0
    return x + D


def attack(model: RecurrentClassifier, x: np.ndarray, eps: float, p: float, mask: np.ndarray, S: np.ndarray,
           rng: np.random.Generator, steps: int = 30) -> np.ndarray:
    """Projected gradient steps minimising and maximising every spec row (p = 2 or inf):
    the final iterates (2K, T, n), which must stay inside the bounds."""
    K = S.shape[0]
    ct = np.concatenate([S, -S], axis=0)  # minimise rows 0..K-1, maximise rows K..2K-1
    X = project(x + eps * rng.uniform(-1, 1, size=(2 * K,) + x.shape), x, eps, p, mask)
    for _ in range(steps):
        _, g = general_logits_vjp(model, X, ct)
        step = np.sign(g) if p == np.inf else g / np.maximum(np.linalg.norm(g, axis=2, keepdims=True), 1e-300)
        X = project(X - 0.25 * eps * step, x, eps, p, mask)
    return X


# ---------------------------------------------------------------- one layer = the one-layer oracle

ONE_LAYER_CASES = [("rnn", "tanh", "exact", False), ("rnn", "relu", "exact", True),
                   ("lstm", "tanh", "exact", False), ("lstm", "tanh", "1d", True),
                   ("lstm", "tanh", "constant", True), ("gru", "tanh", "exact", True),
                   ("gru", "tanh", "1d", False), ("gru", "tanh", "constant", True),
                   ("gru-shared", "tanh", "exact", True), ("gru-shared", "tanh", "1d", False)]


@pytest.mark.parametrize("kind,act,planes,states", ONE_LAYER_CASES)
def test_one_layer_equals_one_layer_oracle(kind: str, act: str, planes: str, states: bool) -> None:
    """as_general(weights) gives the one-layer oracle's margins and every state (L0f_<name>) to 1e-10."""
    shared = kind == "gru-shared"
    kind = "gru" if shared else kind
    rng = np.random.default_rng(ONE_LAYER_CASES.index((kind + ("-shared" if shared else ""), act, planes, states)))
    for p in P_VALUES:
        w = random_weights(kind, rng, s=3, n=2, C=4, scale=0.8, activation=act, states=states)
        T = 4
        x = rng.normal(size=(T, 2))
        mask = rng.uniform(size=T) < 0.7
        mask[int(rng.integers(T))] = True
        eps = float(rng.uniform(0.02, 0.3))
        S, sb = margin_spec(rng, 4)
        ref = one_layer_oracle(w, x, eps, p, mask, S, sb, planes, shared)
        got = general_bounds(as_general(w), x, eps, p, mask, S, sb, planes=planes, want_states=True,
                             gru_shared_z=shared)
        assert set(got) == {"lower", "upper", "slope"} | {f"L0f_{nm}_{e}" for nm in ONE_LAYER_NAMES[kind]
                                                 for e in ("lower", "upper")}
        for key in ("lower", "upper"):
            assert close(got[key], ref[key], 1e-10), (key, got[key] - ref[key])
        for nm in ONE_LAYER_NAMES[kind]:
            for e in ("lower", "upper"):
                assert close(got[f"L0f_{nm}_{e}"], ref[f"{nm}_{e}"], 1e-10), (nm, e)
        nostates = general_bounds(as_general(w), x, eps, p, mask, S, sb, planes=planes, gru_shared_z=shared)
        assert set(nostates) == {"lower", "upper", "slope"}
        assert np.array_equal(nostates["lower"], got["lower"])


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_backward_direction_is_the_oracle_on_the_reversed_input(kind: str) -> None:
    """A bidirectional layer's backward direction = the one-layer oracle on x[::-1] (states
    mirrored in time); with the head's forward columns zero, readout "last" gives its margins."""
    rng = np.random.default_rng({"rnn": 5, "lstm": 6, "gru": 7}[kind])
    s, n, C, T = 3, 2, 3, 4
    w = random_weights(kind, rng, s=s, n=n, C=C, scale=0.8)
    fwd = random_direction(kind, rng, s, n, 1.0)
    layer = RecurrentLayer(kind, *fwd, reverse=(w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh))
    head_w = np.concatenate([np.zeros((C, s)), w.out_weight], axis=1)
    model = RecurrentClassifier((layer,), (Dense(head_w, w.out_bias),), readout="last")
    x = rng.normal(size=(T, n))
    mask = np.array([True, False, True, True])
    S, sb = margin_spec(rng, C)
    for p in P_VALUES:
        got = general_bounds(model, x, 0.15, p, mask, S, sb, planes="1d", want_states=True)
        ref = one_layer_oracle(w, x[::-1].copy(), 0.15, p, mask[::-1].copy(), S, sb, "1d")
        for nm in ONE_LAYER_NAMES[kind]:
            for e in ("lower", "upper"):
                assert close(got[f"L0b_{nm}_{e}"], ref[f"{nm}_{e}"][::-1], 1e-10), (nm, e)
        for key in ("lower", "upper"):
            assert close(got[key], ref[key], 1e-10), (key, got[key] - ref[key])


def test_function_preserving_rewrites_keep_the_bounds() -> None:
    """An identity linear frame layer, a linear hidden head layer folded into the last one, and
    "mean"/"last_step" over T = 1 change no bound beyond rounding."""
    rng = np.random.default_rng(21)
    base = random_model(rng, ("lstm", "gru"), (True, False), "last", 1, ("tanh",))
    x = rng.normal(size=(3, 2))
    mask = np.array([True, True, False])
    C = base.num_classes
    S, sb = margin_spec(rng, C)
    ref = general_bounds(base, x, 0.1, 2.0, mask, S, sb, planes="1d", want_states=True)
    # identity frame layer appended to the frame layers
    w = base.frame_layers[-1].out_features
    ident = RecurrentClassifier(base.layers, base.head, base.readout,
                                base.frame_layers + (Dense(np.eye(w), np.zeros(w)),))
    got = general_bounds(ident, x, 0.1, 2.0, mask, S, sb, planes="1d", want_states=True)
    for key in ref:
        assert close(got[key], ref[key], 1e-12), key
    # a linear hidden head layer in front of the logits layer, folded
    last = base.head[-1]
    k = last.in_features
    W1, b1 = rng.normal(size=(k + 1, k)), rng.normal(size=k + 1)
    W2 = last.weight @ np.linalg.pinv(W1)   # W2 W1 = W_last (W1 has full column rank)
    b2 = last.bias - W2 @ b1
    split = RecurrentClassifier(base.layers, base.head[:-1] + (Dense(W1, b1), Dense(W2, b2)), base.readout,
                                base.frame_layers)
    folded = RecurrentClassifier(base.layers, base.head[:-1] + (Dense(W2 @ W1, W2 @ b1 + b2),), base.readout,
                                 base.frame_layers)
    a = general_bounds(split, x, 0.1, 2.0, mask, S, sb, planes="1d")
    b = general_bounds(folded, x, 0.1, 2.0, mask, S, sb, planes="1d")
    for key in ("lower", "upper"):
        assert close(a[key], b[key], 1e-9), key
    # T = 1: the three readouts of a one-direction top layer read the same vector
    one = random_model(rng, ("gru", "rnn"), (True, False), "last", 0, ())
    x1, m1 = rng.normal(size=(1, 2)), np.array([True])
    S, sb = margin_spec(rng, one.num_classes)
    outs = [general_bounds(RecurrentClassifier(one.layers, one.head, r), x1, 0.2, np.inf, m1, S, sb,
                           planes="1d") for r in ("last", "last_step", "mean")]
    for o in outs[1:]:
        for key in ("lower", "upper"):
            assert close(o[key], outs[0][key], 1e-12), key


# ---------------------------------------------------------------- soundness

SOUND_CASES = [
    # kinds, bidirectional, readout, frame layers, hidden head activations, planes, gru_shared_z
    (("rnn", "lstm"), (True, True), "last", 1, (None,), "exact", False),
    (("lstm", "gru"), (True, False), "last_step", 0, ("relu",), "exact", False),
    (("gru", "rnn"), (False, True), "mean", 2, ("tanh",), "1d", False),
    (("gru", "gru"), (True, True), "last", 1, ("sigmoid",), "exact", True),
    (("lstm", "lstm"), (False, True), "mean", 1, (), "constant", False),
    (("rnn", "gru"), (True, True), "last_step", 1, ("relu",), "constant", True),
    (("rnn-relu", "rnn-relu"), (True, False), "mean", 1, ("tanh",), "exact", False),
    (("lstm", "rnn"), (True, True), "last", 0, ("sigmoid",), "1d", False),
]


@pytest.mark.parametrize("case", range(len(SOUND_CASES)))
def test_sampled_perturbations_stay_inside_every_bound(case: int) -> None:
    kinds, bidir, readout, n_frame, head_act, planes, shared = SOUND_CASES[case]
    rng = np.random.default_rng(1000 + case)
    act = "relu" if kinds[0] == "rnn-relu" else "tanh"
    kinds = tuple(k.split("-")[0] for k in kinds)
    T = 3
    for i, p in enumerate(P_VALUES):
        model = random_model(rng, kinds, bidir, readout, n_frame, head_act, activation=act,
                             init_states=bool(i % 2), scale=1.2)
        if case % 2 and i == 2:  # a last head layer with an activation: logits = act(z)
            last = model.head[-1]
            model = RecurrentClassifier(model.layers, model.head[:-1] + (
                Dense(last.weight, last.bias, ["tanh", "sigmoid", "relu"][case % 3]),), model.readout,
                model.frame_layers)
        x = rng.normal(size=(T, model.input_size))
        mask = rng.uniform(size=T) < 0.6
        mask[int(rng.integers(T))] = True
        eps = float(rng.uniform(0.05, 0.4))
        S, sb = margin_spec(rng, model.num_classes)
        res = general_bounds(model, x, eps, p, mask, S, sb, planes=planes, want_states=True, gru_shared_z=shared)
        X = perturbations(rng, x, eps, p, mask, 400)
        X[0] = x
        if p != 1.0:
            X = np.concatenate([X, attack(model, x, eps, p, mask, S, rng)], axis=0)
        assert check_sound(model, res, X, S, sb) > 0
        # frames outside the mask are fixed: the frame-0 pre-activation interval there is a point
        if model.frame_layers:
            for t in np.flatnonzero(~mask):
                assert np.allclose(res["frame0_pre_lower"][t], res["frame0_pre_upper"][t], atol=1e-12)


# ---------------------------------------------------------------- eps = 0

@pytest.mark.parametrize("planes", ["exact", "1d"])
def test_eps_zero_gives_the_clean_values(planes: str) -> None:
    rng = np.random.default_rng(77 if planes == "exact" else 78)
    for i, (kinds, readout) in enumerate([(("lstm", "gru"), "last"), (("gru", "rnn"), "mean"),
                                          (("rnn", "lstm"), "last_step")]):
        model = random_model(rng, kinds, (True, bool(i % 2)), readout, 1, ("tanh",), init_states=True)
        x = rng.normal(size=(3, model.input_size))
        S, sb = margin_spec(rng, model.num_classes)
        for p in P_VALUES:
            res = general_bounds(model, x, 0.0, p, np.ones(3, bool), S, sb, planes=planes, want_states=True,
                                 gru_shared_z=bool(i == 1))
            st = general_states(model, x)
            for name in expected_state_names(model):
                v = st[name]
                assert close(res[name + "_lower"], v, 1e-9), name
                assert close(res[name + "_upper"], v, 1e-9), name
            spec = general_logits(model, x) @ S.T + sb
            assert close(res["lower"], spec, 1e-9)
            assert close(res["upper"], spec, 1e-9)
