"""The popqorn-fast command line, run as a subprocess (``python -m popqorn_fast.cli``)
on the bundled model and on files the tests write; a few error paths in-process
through ``cli.main`` (same code, no interpreter start-up)."""
from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast import cli
from popqorn_fast.certificate import input_sha256, model_sha256
from popqorn_fast.records import open_certs
from conftest import DATA


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "popqorn_fast.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def _table(stdout: str, ncols: int) -> list[list[str]]:
    rows = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 + ncols + 1 and parts[0].isdigit():
            rows.append(parts)
    return rows


def test_certify_without_arguments_prints_the_table_of_the_api(tmp_path):
    r = run("certify", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "eps* p=1" in r.stdout and "eps* p=2" in r.stdout and "eps* p=inf" in r.stdout
    rows = _table(r.stdout, 3)
    assert [int(row[0]) for row in rows] == list(range(5))
    w = pf.load_model(pf.default_model_path())
    X, y = pf.load_inputs(pf.default_model_path())
    n_mis = 0
    for row in rows:
        i = int(row[0])
        assert int(row[1]) == int(y[i])
        for cell, p in zip(row[2:5], (1, 2, "inf")):
            c = pf.certify(w, X[i], 10.0, p=p, label=int(y[i]))
            if c.misclassified:
                assert cell == "misclassified"
                n_mis += 1
            else:
                assert float(cell) == pytest.approx(c.eps, rel=1e-5) and c.eps > 0
        assert float(row[5]) > 0  # seconds
    assert f"5 input(s), {n_mis // 3} misclassified" in r.stdout
    assert "certified fraction" in r.stdout and "median" in r.stdout


@pytest.fixture(scope="module")
def certs_file(tmp_path_factory):
    """certify MODEL INPUTS --out on a .npz model and a .npz of inputs with labels."""
    tmp = tmp_path_factory.mktemp("certs")
    with np.load(DATA / "rnn_relu_T4_h16.npz") as d:
        X, y = d["X"][:3], d["y"][:3].copy()
    y[1] = (y[1] + 3) % 10
    np.savez(tmp / "inputs.npz", X=X, y=y)
    out = tmp / "certs.jsonl"
    r = run("certify", DATA / "rnn_relu_T4_h16.npz", tmp / "inputs.npz", "--norm", "2,inf", "--threads", "2",
            "--eps-max", "3", "--store-inputs", "--out", out)
    assert r.returncode == 0, r.stderr
    return out, X, y, r.stdout


def _records(path: Path) -> list[dict]:
    return [line.record for line in open_certs(path).lines() if line.record.get("type") == "certificate"]


def test_certify_writes_what_the_api_computes(certs_file):
    out, X, y, stdout = certs_file
    cf = open_certs(out)
    w = pf.load_model(DATA / "rnn_relu_T4_h16.npz")
    assert cf.header["version"] == pf.__version__ and cf.header["model"]["sha256"] == model_sha256(w)
    certs = sorted(_records(out), key=lambda r: (r["p"] == "inf", r["input"]))  # threads: any order
    assert len(certs) == 6 and [c["p"] for c in certs] == ["2"] * 3 + ["inf"] * 3
    for k, p in enumerate((2, "inf")):
        want = pf.certify_many(w, X, y, eps_max=3.0, p=p)
        for i in range(3):
            rec = certs[3 * k + i]
            assert rec["input"] == i and rec["eps"] == want[i].eps and rec["label"] == int(y[i])
            assert rec["misclassified"] == (i == 1)
            assert rec["margin_lower"] == want[i].margin_lower.tolist()
            assert rec["input_sha256"] == input_sha256(X[i]) and rec["model_sha256"] == model_sha256(w)
            np.testing.assert_array_equal(np.array(rec["x"]), X[i].astype(np.float64))  # --store-inputs
    assert [line.record["type"] for line in cf.lines()][-1] == "end"
    assert "1 misclassified" in stdout


def test_verify_accepts_the_saved_certificates(certs_file):
    out, *_ = certs_file
    r = run("verify", out, DATA / "rnn_relu_T4_h16.npz")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "6 hold, 0 failed" in r.stdout


def _tamper(out: Path, tmp_path: Path, edit) -> Path:
    """A copy of the certificates file with ``edit`` applied to {"certificates": [records in
    (p, input) order]} (records store their inputs: --store-inputs)."""
    lines = out.read_text().splitlines()
    head, recs = lines[0], [json.loads(ln) for ln in lines[1:]]
    certs = sorted((r for r in recs if r["type"] == "certificate"), key=lambda r: (r["p"] == "inf", r["input"]))
    edit({"certificates": certs})
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([head] + [json.dumps(r) for r in certs]) + "\n")
    return bad


def _tamper_view(out: Path) -> list[dict]:
    """The certificate records of a file in _tamper's order."""
    recs = [json.loads(ln) for ln in out.read_text().splitlines()[1:]]
    return sorted((r for r in recs if r["type"] == "certificate"), key=lambda r: (r["p"] == "inf", r["input"]))


def test_verify_rejects_tampered_certificates(certs_file, tmp_path, capsys):
    out, *_ = certs_file
    model = str(DATA / "rnn_relu_T4_h16.npz")

    def raise_eps(doc):
        doc["certificates"][0]["eps"] *= 1.5

    def nudge_eps(doc):  # a raise within the search's tolerance still changes the margins
        doc["certificates"][2]["eps"] *= 1.0005

    def edit_margin(doc):
        doc["certificates"][3]["margin_lower"][4] += 1e-3

    def edit_input(doc):
        doc["certificates"][2]["x"][0][0] += 1e-6

    def unmark_misclassified(doc):
        doc["certificates"][1]["misclassified"] = False
        doc["certificates"][1]["eps"] = 0.5

    # certificates proven by a failed probe's relaxations (eps_relaxed; RECURRENCES.md §5):
    # this ReLU RNN's bound falls almost only through the ball, so its searches end that way
    relaxed = [k for k, rec in enumerate(_tamper_view(out)) if rec.get("eps_relaxed") is not None]
    assert len(relaxed) >= 2, "the fixture no longer exercises eps_relaxed"

    def move_relaxed(doc):  # another probe's relaxations prove other margins
        doc["certificates"][relaxed[0]]["eps_relaxed"] *= 1.01

    def relaxed_below_eps(doc):
        rec = doc["certificates"][relaxed[1]]
        rec["eps_relaxed"] = 0.5 * rec["eps"]

    def drop_relaxed(doc):  # the pass at eps itself gives other bounds than the saved ones
        del doc["certificates"][relaxed[0]]["eps_relaxed"]

    for edit, why in [(raise_eps, "not certified|recomputed"), (nudge_eps, "not certified|recomputed"),
                      (edit_margin, "recomputed"), (edit_input, "input SHA-256"),
                      (unmark_misclassified, "not certified|recomputed"),
                      (move_relaxed, "not certified|recomputed"), (relaxed_below_eps, "exceeds eps_relaxed"),
                      (drop_relaxed, "not certified|recomputed")]:
        bad = _tamper(out, tmp_path, edit)
        assert cli.main(["verify", str(bad), model, "--no-progress"]) == 1, edit.__name__
        text = capsys.readouterr().out
        assert re.search(why, text), (edit.__name__, text)
        assert "5 hold, 1 failed" in text or "4 hold, 2 failed" in text, (edit.__name__, text)
    # the same check as a shell user sees it: a non-zero exit code
    r = run("verify", _tamper(out, tmp_path, raise_eps), model)
    assert r.returncode == 1 and "FAIL certificate 0" in r.stdout


def test_verify_rechecks_other_versions_by_their_claim(certs_file, tmp_path, capsys):
    """Certificates written by another version (other relaxations, other saved bounds) hold when
    this version's bounds certify their eps again; their claim is still checked."""
    out, *_ = certs_file
    model = str(DATA / "rnn_relu_T4_h16.npz")

    def older(doc, eps_factor=1.0):
        for rec in doc["certificates"]:
            rec["version"] = "0.1.0"
            rec["margin_lower"] = [m * 0.9 for m in rec["margin_lower"]]  # another relaxation's bounds
        doc["certificates"][0]["eps"] *= eps_factor

    assert cli.main(["verify", str(_tamper(out, tmp_path, older)), model, "--no-progress"]) == 0
    assert "6 hold, 0 failed" in capsys.readouterr().out
    bad = _tamper(out, tmp_path, lambda doc: older(doc, 1.5))  # a claim this version cannot prove
    assert cli.main(["verify", str(bad), model, "--no-progress"]) == 1
    assert "5 hold, 1 failed" in capsys.readouterr().out


def test_verify_rejects_another_model(certs_file):
    out, *_ = certs_file
    r = run("verify", out, DATA / "rnn_tanh_T16_h16.npz")
    assert r.returncode == 1
    assert "0 hold, 6 failed" in r.stdout and "another model" in r.stdout


@pytest.mark.parametrize("planes", ["1d", "optimized"])
def test_certify_and_verify_with_frames_target_planes(tmp_path, planes):
    """Options travel into the certificates and verify uses them (an LSTM; 1-D and optimised planes)."""
    with np.load(DATA / "lstm_T8_h16.npz") as d:
        X, y = d["X"][:2], d["y"][:2]
    np.save(tmp_path / "x.npy", X)
    target = (int(y[0]) + 1) % 10 if int(y[1]) != (int(y[0]) + 1) % 10 else (int(y[0]) + 2) % 10
    out = tmp_path / "c.jsonl"
    assert cli.main(["certify", str(DATA / "lstm_T8_h16.npz"), str(tmp_path / "x.npy"), "--frames", "2", "5",
                     "--target", str(target), "--planes", planes, "--norm", "1", "--out", str(out),
                     "--no-progress"]) == 0
    w = pf.load_model(DATA / "lstm_T8_h16.npz")
    for i, rec in enumerate(_records(out)):
        want = pf.certify(w, X[i], 10.0, p=1, frames=[2, 5], target=target, planes=planes)
        assert rec["frames"] == [2, 5] and rec["target"] == target and rec["planes"] == planes
        assert rec["eps"] == want.eps > 0 and len(rec["margin_lower"]) == 1
    r = run("verify", out)  # MODEL and INPUTS default to the recorded paths
    assert r.returncode == 0 and "2 hold, 0 failed" in r.stdout, r.stdout + r.stderr

    def other_frames(doc):  # another threat model: the margins no longer match
        doc["certificates"][0]["frames"] = [2, 6]
    assert cli.main(["verify", str(_tamper(out, tmp_path, other_frames)), "--no-progress"]) == 1


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_sensitivity_plot_is_a_png_of_the_requested_size(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "s.png"
    r = run("sensitivity", "--plot", png, "--plot-size", "640x400")
    assert r.returncode == 0, r.stderr
    assert _png_size(png) == (640, 400)
    w = pf.load_model(pf.default_model_path())
    X, y = pf.load_inputs(pf.default_model_path())
    want = pf.sensitivity(w, X[0], 10.0, p=2, label=int(y[0]))
    got = [float(m) for m in re.findall(r"frame\s+\d+: (\S+)", r.stdout)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # a non-image-like input (frames of half a row): a bar chart, default size
    with np.load(DATA / "rnn_tanh_T16_h16.npz") as d:
        np.save(tmp_path / "one.npy", d["X"][3])
    bar = tmp_path / "bar.png"
    r = run("sensitivity", DATA / "rnn_tanh_T16_h16.npz", tmp_path / "one.npy", "--norm", "inf", "--plot", bar)
    assert r.returncode == 0, r.stderr
    assert _png_size(bar) == (800, 480)


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path, capsys):
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)
    from popqorn_fast.plots import plot_sensitivity
    with pytest.raises(ImportError, match=re.escape("pip install popqorn_fast[plot]")):
        plot_sensitivity(np.zeros((2, 2)), np.ones(2), tmp_path / "x.png")
    assert cli.main(["sensitivity", "--plot", str(tmp_path / "x.png"), "--no-progress"]) == 2
    assert "pip install popqorn_fast[plot]" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_errors_a_shell_user_can_act_on(tmp_path, capsys):
    r = run("certify", tmp_path / "missing.npz", tmp_path / "x.npy")
    assert r.returncode == 2 and "model file not found" in r.stderr and "missing.npz" in r.stderr
    assert "Traceback" not in r.stderr
    with np.load(DATA / "gru_T4_h24.npz") as d:
        np.savez(tmp_path / "m.npz", **{("W_ih" if k == "weight_ih_l0" else k): d[k] for k in d.files})
        np.save(tmp_path / "wrong_n.npy", d["X"][:2, :, :8])
    assert cli.main(["certify", str(tmp_path / "m.npz"), str(tmp_path / "wrong_n.npy")]) == 2
    err = capsys.readouterr().err
    assert "missing keys ['weight_ih_l0']" in err and "found" in err and "'W_ih'" in err and "expected" in err
    assert cli.main(["certify", str(DATA / "gru_T4_h24.npz"), str(tmp_path / "wrong_n.npy")]) == 2
    assert "8 values per frame" in capsys.readouterr().err
    (tmp_path / "x.json").write_text('{"a": 1}')
    assert cli.main(["verify", str(tmp_path / "x.json")]) == 2
    assert "not a certificates file" in capsys.readouterr().err
    assert cli.main(["certify", "--frames", "99", "--no-progress"]) == 2
    assert "frames [99] out of range" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse: bad option value
        cli.main(["certify", "--eps-max", "-1"])
    assert e.value.code == 2
