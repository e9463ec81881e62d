"""Differential check: the C++ core, the NumPy oracle and PyTorch agree on clean values.

Three independent computations of the same network: ``popqorn_fast.forward``
(NumPy), PyTorch's ``nn.RNN/LSTM/GRU`` (where installed) and the bound passes of
the core and of the oracle (``popqorn_fast.reference``) at eps = 1e-12, where the
bounds must enclose the clean values tightly (width <= 1e-6) for every state of
every step and for the margins, for every plane method.
"""
from __future__ import annotations

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast import forward, reference
from popqorn_fast.backend import pass_arguments
from popqorn_fast.specification import fold_specification, margin_classes
from soundness.models import KINDS, TRAINED, load_trained, random_weights

EPS = 1e-12
WIDTH = 1e-6
PLANES = ("exact", "1d", "constant")


def _networks():
    """(id, weights, x) for random networks (saturated and with initial states) and trained ones."""
    out = []
    for kind in KINDS:
        rng = np.random.default_rng(KINDS.index(kind))
        for scale, state in ((1.0, False), (4.0, True)):
            w = random_weights(rng, kind, n=3, s=5, C=4, scale=scale, bias_scale=1.0, random_state=state)
            out.append((f"{kind}-scale{scale}", w, rng.normal(size=(6, 3))))
    for name in TRAINED:
        w, X, _ = load_trained(name)
        out.append((name, w, X[0]))
    return out


NETS = _networks()


def _encloses_tightly(what, lo, hi, clean):
    lo, hi, clean = (np.asarray(a, dtype=np.float64) for a in (lo, hi, clean))
    assert lo.shape == hi.shape == clean.shape, (what, lo.shape, clean.shape)
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)), what
    slack = 1e-12 * np.maximum(1.0, np.abs(clean))
    assert np.all(lo <= clean + slack) and np.all(clean <= hi + slack), \
        f"{what}: clean value outside [{(lo - clean).max():.3g}, {(hi - clean).min():.3g}]"
    assert (hi - lo).max() <= WIDTH, f"{what}: width {(hi - lo).max():.3g} at eps={EPS}"


@pytest.mark.parametrize("net", NETS, ids=[n[0] for n in NETS])
@pytest.mark.parametrize("p", [1.0, 2.0, np.inf])
def test_core_and_oracle_enclose_clean_values_at_tiny_eps(net, p):
    _, w, x = net
    label = int(np.argmax(forward.logits(w, x)))
    classes = margin_classes(label, w.num_classes, None)
    spec = fold_specification(w.out_weight, w.out_bias, label, classes)
    clean_states = {k: v[0] for k, v in forward.states(w, x[None]).items()}
    clean_margins = forward.margins(w, x[None], label)[0]
    mask = np.ones(x.shape[0], dtype=bool)
    from popqorn_fast import _core
    for planes in (PLANES if w.kind != "rnn" else ("exact",)):
        args = pass_arguments(w, x, EPS, p, mask, *spec, planes=planes, want_states=True)
        core = getattr(_core, f"{w.kind}_bounds")(*args)
        ref = getattr(reference, f"{w.kind}_bounds")(*args)
        for who, out in (("core", core), ("oracle", ref)):
            for name, clean in clean_states.items():
                _encloses_tightly(f"{who} {planes} {name}", out[f"{name}_lower"], out[f"{name}_upper"], clean)
            _encloses_tightly(f"{who} {planes} margins", out["lower"], out["upper"], clean_margins)
        np.testing.assert_allclose(core["lower"], ref["lower"], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(core["upper"], ref["upper"], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("net", NETS, ids=[n[0] for n in NETS])
def test_public_api_agrees_with_forward(net):
    """bound_states / bound_margins (the public API) at eps = 1e-12 pin the forward pass."""
    _, w, x = net
    label = int(np.argmax(w.logits(x)))
    states = pf.bound_states(w, x, EPS, p="inf")
    for name, clean in forward.states(w, x[None]).items():
        _encloses_tightly(f"bound_states {name}", *states[name], clean[0])
    lo, hi = pf.bound_margins(w, x, EPS, p=1)
    _encloses_tightly("bound_margins", lo, hi, forward.margins(w, x[None], label)[0])


def _torch_states(w, x):
    """PyTorch's logits and per-step hidden states for ``x`` (N, T, n)."""
    torch = pytest.importorskip("torch")
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[w.kind]
    kw = {"nonlinearity": w.activation} if w.kind == "rnn" else {}
    rnn = cls(w.input_size, w.hidden_size, batch_first=True, dtype=torch.float64, **kw)
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float64))
    rnn.load_state_dict({"weight_ih_l0": t(w.weight_ih), "weight_hh_l0": t(w.weight_hh),
                         "bias_ih_l0": t(w.bias_ih), "bias_hh_l0": t(w.bias_hh)})
    N = x.shape[0]
    h0 = t(np.broadcast_to(w.h0, (1, N, w.hidden_size)))
    state = (h0, t(np.broadcast_to(w.c0, (1, N, w.hidden_size)))) if w.kind == "lstm" else h0
    with torch.no_grad():
        hs = rnn(t(x), state)[0].numpy()
    return hs[:, -1] @ w.out_weight.T + w.out_bias, hs


@pytest.mark.parametrize("net", NETS, ids=[n[0] for n in NETS])
def test_three_forward_passes_agree(net):
    """NumPy forward, PyTorch and the core's bounds at eps = 1e-12 give the same logits."""
    _, w, x = net
    X = np.stack([x, x[::-1].copy(), 0.5 * x])
    logits_t, hidden_t = _torch_states(w, X)
    np.testing.assert_allclose(forward.logits(w, X), logits_t, rtol=0, atol=1e-10)
    np.testing.assert_allclose(forward.states(w, X)["hidden"], hidden_t, rtol=0, atol=1e-10)
    for i in range(len(X)):
        label = int(np.argmax(logits_t[i]))
        lo, hi = pf.bound_margins(w, X[i], EPS, label=label)
        want = logits_t[i][label] - np.delete(logits_t[i], label)
        _encloses_tightly(f"margins of input {i} vs torch", lo, hi, want)
