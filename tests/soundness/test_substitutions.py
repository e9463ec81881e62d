"""Soundness of the word-substitution threat model (docs/THREAT_MODELS.md): on random general and
one-layer models with small candidate sets, every input reachable with at most ``budget``
replacements (enumerated exhaustively) stays inside every state interval and margin bound of
the substitution pass; "robust" is never claimed where an enumerated or searched substitution
flips the label; budget 0 gives the clean values; the sets nest (a larger budget never proves
more); beam search with a wide beam finds what enumeration finds."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import popqorn_fast as pf
from popqorn_fast import forward
from popqorn_fast.substitutions import (enumerate_substitutions, search_substitutions, substitution_bounds,
                                        substitution_sensitivity)

from .checks import assert_inside
from .models import KINDS, random_general
from .test_general_networks import _SETTINGS


@st.composite
def cases(draw):
    T = draw(st.integers(1, 5))
    L = draw(st.integers(1, 2))
    return dict(seed=draw(st.integers(0, 2**32 - 1)), T=T, n=draw(st.integers(1, 3)),
                kinds=draw(st.lists(st.sampled_from(KINDS), min_size=L, max_size=L)),
                bi=draw(st.lists(st.booleans(), min_size=L, max_size=L)),
                frame=draw(st.lists(st.tuples(st.integers(1, 3), st.sampled_from([None, "relu", "tanh"])),
                                    max_size=1)),
                readout=draw(st.sampled_from(["last", "last_step", "mean"])),
                k=draw(st.lists(st.integers(0, 4), min_size=T, max_size=T)),
                spread=draw(st.sampled_from([0.1, 1.0, 3.0])), scale=draw(st.sampled_from([1.0, 3.0])),
                budget=draw(st.integers(1, T)), targeted=draw(st.booleans()),
                planes=draw(st.sampled_from(["exact", "1d", "constant"])))


def _setup(c):
    rng = np.random.default_rng(c["seed"])
    w = random_general(rng, c["kinds"], c["bi"], c["n"], [3] * len(c["kinds"]), 3, c["readout"],
                       [(3, "relu")], c["frame"], scale=c["scale"])
    x = rng.normal(size=(c["T"], c["n"]))
    cands = [x[t] + c["spread"] * rng.normal(size=(k, c["n"])) for t, k in enumerate(c["k"])]
    label = int(np.argmax(w.logits(x)))
    target = int(rng.choice([j for j in range(3) if j != label])) if c["targeted"] else None
    return w, x, cands, label, target


def test_substitution_bounds_hold_exhaustively(tally):
    seen = {"robust": 0, "flipped": 0}

    @settings(max_examples=300, **_SETTINGS)
    @given(c=cases())
    def run(c):
        w, x, cands, label, target = _setup(c)
        out = substitution_bounds(w, x, cands, c["budget"], target, planes=c["planes"], want_states=True)
        S = np.stack(list(enumerate_substitutions(x, cands, c["budget"])))
        st_ = forward.states(w, S)
        for k in st_:
            assert_inside(f"state {k}", st_[k], out[k + "_lower"], out[k + "_upper"])
        m = forward.margins(w, S, label, target)
        assert_inside("margins", m, out["lower"], out["upper"])
        cert = pf.certify_substitutions(w, x, cands, c["budget"], target=target, planes=c["planes"])
        assert cert.robust == bool(np.all(out["lower"] > 0))
        flipped = bool(np.any(m.min(axis=1) < 0))
        assert not (cert.robust and flipped), "robust claimed but a substitution flips the label"
        found = search_substitutions(w, x, cands, c["budget"], target, beam=10_000)
        assert found.success == flipped
        seen["robust"] += cert.robust
        seen["flipped"] += flipped
        tally.points["substitution"] += 1
        tally.certified["substitution"] += cert.robust
        tally.samples["substitution"] += len(S)

    run()
    assert seen["robust"] >= 20 and seen["flipped"] >= 5, seen


def test_budget_zero_is_the_clean_input_and_budgets_nest():
    rng = np.random.default_rng(5)
    w = random_general(rng, ["lstm"], [True], 3, [4], 3, "mean", [], [])
    x = rng.normal(size=(4, 3))
    cands = [x[t] + 0.3 * rng.normal(size=(2, 3)) for t in range(4)]
    zero = substitution_bounds(w, x, cands, 0)
    m = forward.margins(w, x, int(np.argmax(w.logits(x))))
    assert np.allclose(zero["lower"], m, atol=1e-9) and np.allclose(zero["upper"], m, atol=1e-9)
    lowers = [substitution_bounds(w, x, cands, b)["lower"] for b in range(5)]
    for a, b in zip(lowers, lowers[1:]):
        assert np.all(b <= a + 1e-12)


def test_certificate_and_sensitivity():
    rng = np.random.default_rng(9)
    w = random_general(rng, ["gru"], [False], 3, [4], 3, "last", [], [])
    x = rng.normal(size=(3, 3))
    cands = [x[t] + 0.05 * rng.normal(size=(2, 3)) for t in range(3)]
    c = pf.certify_substitutions(w, x, cands, 2)
    rec = c.to_dict()
    assert rec["threat"]["budget"] == 2 and len(rec["threat"]["substitutions"]) == 3
    assert pf.SubstitutionCertificate.from_dict(rec).robust == c.robust
    from popqorn_fast.certificate import model_sha256
    from popqorn_fast.cli import _check_one
    assert _check_one(w, model_sha256(w), rec, x, 1e-6, 1e-9) is None
    sens = substitution_sensitivity(w, x, cands)
    assert sens.shape == (3,) and (not c.robust or sens.all())
