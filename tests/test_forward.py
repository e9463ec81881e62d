"""Tests of popqorn_fast.forward: states(), hand-written BPTT gradients, PyTorch parity."""
from __future__ import annotations

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast import forward
from soundness.models import KINDS, TRAINED, load_trained, random_weights


def _fd_grad(w, x, ct, h=1e-5):
    """Central finite differences of sum(ct * logits) w.r.t. every input coordinate."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (np.sum(ct * forward.logits(w, xp)) - np.sum(ct * forward.logits(w, xm))) / (2 * h)
    return g


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_matches_finite_differences(kind, seed):
    rng = np.random.default_rng(seed)
    w = random_weights(rng, kind, n=3, s=4, C=3, scale=1.5, random_state=seed == 2)
    x = rng.normal(size=(2, 5, 3))
    ct = rng.normal(size=(2, 3))
    z, g = forward.logits_vjp(w, x, ct)
    np.testing.assert_allclose(z, forward.logits(w, x), rtol=0, atol=0)
    fd = _fd_grad(w, x, ct)
    # relative 1e-6 of the gradient's scale, entry by entry
    assert np.max(np.abs(g - fd)) <= 1e-6 * np.max(np.abs(g)), (np.max(np.abs(g - fd)), np.max(np.abs(g)))
    assert np.max(np.abs(g)) > 1e-3  # a non-trivial gradient was checked


@pytest.mark.parametrize("name", TRAINED)
def test_gradient_trained_models(name):
    w, X, y = load_trained(name)
    x = X[:2]
    lab = int(y[0])
    other = (lab + 1) % 10
    m, g = forward.margin_gradient(w, x, lab, other)
    z = forward.logits(w, x)
    np.testing.assert_allclose(m, z[:, lab] - z[:, other], rtol=1e-14, atol=1e-14)
    ct = np.zeros((2, 10))
    ct[:, lab], ct[:, other] = 1.0, -1.0
    fd = _fd_grad(w, x, ct)
    assert np.max(np.abs(g - fd)) <= 1e-6 * np.max(np.abs(g))


@pytest.mark.parametrize("kind", KINDS)
def test_states_consistent_with_logits(kind):
    rng = np.random.default_rng(7)
    w = random_weights(rng, kind, n=2, s=3, C=4, random_state=True)
    x = rng.normal(size=(4, 6, 2))
    st = forward.states(w, x)
    expected = {"rnn_tanh": {"pre", "hidden"}, "rnn_relu": {"pre", "hidden"},
                "lstm": {"gates", "cell", "hidden"}, "gru": {"gates", "u", "hidden"}}[kind]
    assert set(st) == expected
    rows = {"pre": 3, "hidden": 3, "cell": 3, "u": 3, "gates": 3 * w.gates}
    for k, v in st.items():
        assert v.shape == (4, 6, rows[k])
    np.testing.assert_allclose(st["hidden"][:, -1] @ w.out_weight.T + w.out_bias,
                               forward.logits(w, x), rtol=0, atol=1e-13)
    # single input gives the batch row (to rounding: BLAS may block differently)
    one = forward.states(w, x[1])
    for k in st:
        np.testing.assert_allclose(one[k], st[k][1], rtol=0, atol=1e-13)
    # recompute each step from the named states alone
    sig = lambda a: 1 / (1 + np.exp(-a))
    h_prev = np.concatenate([np.broadcast_to(w.h0, (4, 1, 3)), st["hidden"][:, :-1]], axis=1)
    if kind.startswith("rnn"):
        pre = x @ w.weight_ih.T + h_prev @ w.weight_hh.T + w.bias_ih + w.bias_hh
        np.testing.assert_allclose(st["pre"], pre, atol=1e-13)
        act = np.tanh(pre) if kind == "rnn_tanh" else np.maximum(pre, 0)
        np.testing.assert_allclose(st["hidden"], act, atol=1e-13)
    elif kind == "lstm":
        c_prev = np.concatenate([np.broadcast_to(w.c0, (4, 1, 3)), st["cell"][:, :-1]], axis=1)
        y = x @ w.weight_ih.T + h_prev @ w.weight_hh.T + w.bias_ih + w.bias_hh
        np.testing.assert_allclose(st["gates"], y, atol=1e-13)
        i, f, g, o = np.split(y, 4, axis=-1)
        np.testing.assert_allclose(st["cell"], sig(f) * c_prev + sig(i) * np.tanh(g), atol=1e-13)
        np.testing.assert_allclose(st["hidden"], sig(o) * np.tanh(st["cell"]), atol=1e-13)
    else:
        yr, yz, v = np.split(st["gates"], 3, axis=-1)
        gi = x @ w.weight_ih.T + w.bias_ih
        gh = h_prev @ w.weight_hh.T + w.bias_hh
        np.testing.assert_allclose(yr, gi[..., :3] + gh[..., :3], atol=1e-13)
        np.testing.assert_allclose(yz, gi[..., 3:6] + gh[..., 3:6], atol=1e-13)
        np.testing.assert_allclose(v, gh[..., 6:], atol=1e-13)
        np.testing.assert_allclose(st["u"], gi[..., 6:] + sig(yr) * v, atol=1e-13)
        np.testing.assert_allclose(st["hidden"], (1 - sig(yz)) * np.tanh(st["u"]) + sig(yz) * h_prev,
                                   atol=1e-13)


def test_margins_layout():
    rng = np.random.default_rng(3)
    w = random_weights(rng, "gru", n=2, s=3, C=4)
    x = rng.normal(size=(5, 2))
    z = forward.logits(w, x)
    np.testing.assert_allclose(forward.margins(w, x, 2), z[2] - z[[0, 1, 3]])
    np.testing.assert_allclose(forward.margins(w, x, 2, target=0), z[2] - z[[0]])


def test_bad_input_names_argument():
    w = random_weights(np.random.default_rng(0), "lstm", n=2, s=3, C=3)
    with pytest.raises(ValueError, match="x"):
        forward.states(w, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="cotangent"):
        forward.logits_vjp(w, np.zeros((4, 2)), np.zeros(5))
    with pytest.raises(ValueError, match="label"):
        forward.margin_gradient(w, np.zeros((4, 2)), 3, 0)


def _torch_model(w):
    torch = pytest.importorskip("torch")
    n, s = w.input_size, w.hidden_size
    if w.kind == "rnn":
        rnn = torch.nn.RNN(n, s, nonlinearity=w.activation, batch_first=True)
    elif w.kind == "lstm":
        rnn = torch.nn.LSTM(n, s, batch_first=True)
    else:
        rnn = torch.nn.GRU(n, s, batch_first=True)
    lin = torch.nn.Linear(s, w.num_classes)
    rnn = rnn.double()
    lin = lin.double()
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float64))
    rnn.load_state_dict({"weight_ih_l0": t(w.weight_ih), "weight_hh_l0": t(w.weight_hh),
                         "bias_ih_l0": t(w.bias_ih), "bias_hh_l0": t(w.bias_hh)})
    lin.load_state_dict({"weight": t(w.out_weight), "bias": t(w.out_bias)})

    def run(x):
        with torch.no_grad():
            out = rnn(torch.from_numpy(x))[0]
            return lin(out[:, -1]).numpy()
    return run


@pytest.mark.parametrize("name", TRAINED)
def test_logits_match_torch_trained(name):
    w, X, y = load_trained(name)
    run = _torch_model(w)
    x = X[:20]
    np.testing.assert_allclose(forward.logits(w, x), run(x), rtol=0, atol=1e-10)
    assert np.all(np.argmax(forward.logits(w, X[:10]), axis=1) == y[:10])


@pytest.mark.parametrize("kind", KINDS)
def test_logits_match_torch_random(kind):
    rng = np.random.default_rng(11)
    w = random_weights(rng, kind, n=3, s=5, C=4, scale=3.0, bias_scale=2.0)
    run = _torch_model(w)
    x = rng.normal(size=(8, 7, 3))
    np.testing.assert_allclose(forward.logits(w, x), run(x), rtol=0, atol=1e-10)


def test_sigmoid_keeps_relative_precision_in_both_tails():
    """forward.sigmoid (both forward passes and PGD use it) against SciPy's expit: relative
    error within 4 ulp on [-700, 700]; 0.5 (1 + tanh(z / 2)) returned 0 below z = -37."""
    from scipy.special import expit

    from popqorn_fast.forward import sigmoid

    z = np.concatenate([np.linspace(-700.0, 700.0, 20001), [-39.2, -37.5, -1e-300, 0.0, 1e-300]])
    got, want = sigmoid(z), expit(z)
    assert np.all(got > 0.0) and np.all(got <= 1.0)
    assert np.all(np.abs(got - want) <= 4 * np.finfo(float).eps * want)


def test_sigmoid_head_does_not_tie_classes_it_separates():
    """A sigmoid on the logits at pre-activations near -39 (sigma ~ 1e-17): the forward pass
    orders the classes as their pre-activations do, so the predicted label and the margins
    the bounds prove agree (a tanh-based sigmoid rounded all three to 0: a tie)."""
    rng = np.random.default_rng(3)
    layer = pf.RecurrentLayer("rnn", rng.normal(size=(4, 2)), rng.normal(size=(4, 4)) * 0.3,
                              np.zeros(4), np.zeros(4))
    head = pf.Dense(np.zeros((3, 4)), np.array([-39.2, -40.0, -41.0]), activation="sigmoid")
    model = pf.RecurrentClassifier([layer], [head])
    x = rng.normal(size=(3, 2))
    z = model.logits(x)
    assert z[0] > z[1] > z[2] > 0.0
    c = pf.certify(model, x, 1.0, p=2)
    assert c.label == 0 and np.all(c.margin_lower > 0.0)
    assert np.all(c.margin_lower <= z[0] - z[1:] + 1e-30)
