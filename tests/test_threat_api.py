"""The threat-model arguments on the public entry points (docs/THREAT_MODELS.md): validation
errors, routes that refuse them, certificates that record them and verify that re-checks them,
certify_many and sensitivity with them."""
from __future__ import annotations

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast.certificate import Certificate
from popqorn_fast.cli import _check_one
from popqorn_fast.certificate import model_sha256

from soundness.models import random_general, random_weights


def _model(seed: int = 0):
    rng = np.random.default_rng(seed)
    w = random_general(rng, ["gru"], [True], 3, [4], 3, "last", [(4, "tanh")], [], scale=1.0)
    return w, rng.normal(size=(4, 3))


@pytest.mark.parametrize("kw, words", [
    (dict(ball="ball"), "ball must be 'frame' or 'joint'"),
    (dict(frame_weights=[1, 2]), "frame_weights must have shape (4,)"),
    (dict(frame_weights=[1, -1, 1, 1]), "frame_weights must be >= 0"),
    (dict(frame_weights=[0, 0, 0, 0]), "nothing moves"),
    (dict(domain=(0.0,)), "domain must be a pair"),
    (dict(domain=(1.0, 0.0)), "lo must be <= hi"),
    (dict(domain=(-0.01, 0.01)), "x lies outside the domain"),
    (dict(domain=(np.zeros((2, 2)), 1.0)), "domain lo must be a scalar or an array broadcastable"),
])
def test_bad_threat_arguments_name_themselves(kw, words):
    w, x = _model()
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        pf.certify(w, x, **kw)


def test_routes_without_threat_models_refuse_them():
    rng = np.random.default_rng(0)
    w1 = random_weights(rng, "lstm", 3, 4, 3)
    x = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match="ball='joint' is not available with planes='optimized'; use planes='exact'"):
        pf.certify(w1, x, ball="joint", planes="optimized")
    with pytest.raises(ValueError, match="domain is not available with device='cuda'; use device='cpu'"):
        pf.certify_many(w1, x[None], domain=(-10, 10), device="cuda")
    # the one-layer models take every threat model on the generic pass
    assert pf.certify(w1, x, ball="joint").eps > 0


def test_certificates_record_and_verify_the_threat_model():
    w, x = _model(1)
    c = pf.certify(w, x, p=2, ball="joint", frame_weights=[1, 0.5, 1, 2], domain=(x - 1, x + 0.2))
    rec = c.to_dict()
    assert rec["threat"]["ball"] == "joint" and rec["threat"]["frame_weights"] == [1, 0.5, 1, 2]
    assert Certificate.from_dict(rec).threat == rec["threat"]
    assert _check_one(w, model_sha256(w), rec, x, 1e-6, 1e-9) is None
    plain = dict(rec)
    del plain["threat"]  # the same ε claimed for the per-frame ball: not what was proven
    assert _check_one(w, model_sha256(w), plain, x, 1e-6, 1e-9) is not None
    assert "threat" not in pf.certify(w, x).to_dict()


def test_certify_many_and_sensitivity_take_the_threat_model():
    w, x = _model(2)
    X = np.stack([x, x * 0.5])
    many = pf.certify_many(w, X, ball="joint", domain=(-5.0, 5.0), threads=2)
    one = [pf.certify(w, xi, ball="joint", domain=(-5.0, 5.0)) for xi in X]
    assert [c.eps for c in many] == [c.eps for c in one]
    with pytest.raises(ValueError, match="x lies outside the domain"):
        pf.certify_many(w, X * 10, domain=(-5.0, 5.0))
    s = pf.sensitivity(w, x, domain=(x - 0.01, x + 10))
    assert np.all(s >= pf.sensitivity(w, x) * (1 - 2e-3))


def test_cli_threat_flags_are_recorded_and_verified(tmp_path, capsys):
    from popqorn_fast.cli import main
    out = tmp_path / "c.jsonl"
    argv = ["certify", "--count", "2", "--norm", "2", "--ball", "joint", "--domain", "-5", "5",
            "--frame-weights", *["1"] * 8, "--out", str(out), "--no-progress",
            "--attack", "--attack-steps", "10", "--attack-restarts", "2"]
    assert main(argv) == 0
    lines = out.read_text().splitlines()
    certs = [ln for ln in lines if '"type":"certificate"' in ln]
    assert '"threat"' in lines[0] and len(certs) == 2 and all('"threat"' in ln for ln in certs)
    assert all('"attack_eps"' in ln for ln in certs)
    assert main(["verify", str(out)]) == 0
    # a resumed run must keep the threat model
    assert main(["certify", "--count", "2", "--norm", "2", "--out", str(out), "--resume", "--no-progress"]) != 0
    with pytest.raises(SystemExit):
        main(["certify", "--ball", "box"])
    assert main(["certify", "--count", "1", "--frame-weights", "1", "2", "--no-progress"]) == 2
    assert "--frame-weights needs one multiplier per frame" in capsys.readouterr().err


def test_cli_substitutions_writes_verifiable_certificates(tmp_path, capsys):
    from popqorn_fast.cli import main
    rng = np.random.default_rng(4)
    w = pf.load_model(pf.default_model_path())
    X, _ = pf.load_inputs(pf.default_model_path())
    X = X[:3]
    np.save(tmp_path / "X.npy", X)
    cands = {f"{i}_{t}": X[i, t] + 0.01 * rng.normal(size=(2, X.shape[2]))
             for i in range(3) for t in range(X.shape[1]) if t % 2 == 0}
    np.savez(tmp_path / "c.npz", **cands)
    out = tmp_path / "s.jsonl"
    argv = ["substitutions", str(pf.default_model_path()), str(tmp_path / "X.npy"), "--candidates",
            str(tmp_path / "c.npz"), "--budget", "2", "--out", str(out), "--ignore-labels"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "certified accuracy at budget 2:" in text and "robust" in text
    assert main(["verify", str(out)]) == 0
    assert "3 hold, 0 failed" in capsys.readouterr().out
    per = pf.sensitivity(w, X[0], candidates=[cands.get(f"0_{t}", np.zeros((0, X.shape[2])))
                                              for t in range(X.shape[1])])
    assert per.dtype == bool and per.shape == (X.shape[1],)
