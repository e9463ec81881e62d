"""Dataset runs of ``popqorn-fast certify --out``: the file holds every finished certificate
at every instant; SIGINT / SIGTERM / SIGKILL at a random point lose nothing finished; --resume
completes the file to what an uninterrupted run writes; another model or other settings are
refused; a torn last record is reported; .npy inputs are read a chunk at a time; --attack
brackets the attack radius; the accuracy plot is drawn from the file alone."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast import cli
from popqorn_fast.attack import pgd
from popqorn_fast.records import RecordWriter, open_certs
from popqorn_fast.streaming import open_inputs
from conftest import DATA

MODEL = DATA / "gru_T4_h24.npz"
N = 40
TIMING = {"seconds", "attack_seconds"}
ARGS = ["--norm", "2,inf", "--eps-max", "1", "--no-progress"]
ATTACK = ["--attack", "--attack-steps", "5", "--attack-restarts", "2"]


def _cmd(out: Path, *extra: str, count: int = N) -> list[str]:
    return [sys.executable, "-m", "popqorn_fast.cli", "certify", str(MODEL), "--count", str(count), *ARGS,
            "--out", str(out), *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(pf.__file__).parent.parent)] + sys.path)
    return env


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())


def certificates(path: Path) -> dict[tuple[int, str], dict]:
    """(input, p) -> the record without its timing fields; asserts no pair appears twice."""
    out: dict[tuple[int, str], dict] = {}
    for line in open_certs(path).lines():
        rec = line.record
        if rec is not None and rec["type"] == "certificate":
            key = (rec["input"], rec["p"])
            assert key not in out, f"{key} certified twice"
            out[key] = {k: v for k, v in rec.items() if k not in TIMING}
    return out


def _count(path: Path) -> int:
    try:
        return path.read_bytes().count(b'"type":"certificate"')
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The certificates of an uninterrupted run: ``reference(count, extra)`` (run once each)."""
    tmp = tmp_path_factory.mktemp("reference")
    cache: dict[tuple[int, tuple[str, ...]], dict] = {}

    def get(count: int = N, extra: tuple[str, ...] = ()) -> dict:
        if (count, extra) not in cache:
            out = tmp / f"ref{len(cache)}.jsonl"
            r = run(_cmd(out, *extra, count=count))
            assert r.returncode == 0, r.stderr
            cache[count, extra] = certificates(out)
            assert len(cache[count, extra]) == 2 * count
        return cache[count, extra]
    return get


def _interrupt(out: Path, sig: int, at: int, extra: list[str], count: int = N) -> subprocess.CompletedProcess:
    """Start a run; once ``at`` certificates are on disk, send ``sig``; wait for its end."""
    proc = subprocess.Popen(_cmd(out, *extra, count=count), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    while _count(out) < at and proc.poll() is None:
        time.sleep(0.002)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("sig, code, extra, count", [(signal.SIGINT, 130, [], N),
                                                      (signal.SIGTERM, 143, ["--threads", "2", *ATTACK], 24)],
                         ids=["SIGINT", "SIGTERM-threads-attack"])
def test_interrupt_at_a_random_point_then_resume_equals_an_uninterrupted_run(tmp_path, reference, sig, code,
                                                                            extra, count):
    at = int(np.random.default_rng().integers(1, count))  # a random point of the first half
    out = tmp_path / "certs.jsonl"
    r = _interrupt(out, sig, at, extra, count)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "--resume" in r.stderr
    lines = list(open_certs(out).lines())
    assert all(line.record is not None for line in lines), [line.problem for line in lines]  # nothing torn
    assert lines[-1].record["type"] == "stopped" and lines[-1].record["signal"] == signal.Signals(sig).name
    held = certificates(out)
    assert at <= len(held) < 2 * count  # everything finished before the signal is on disk
    assert lines[-1].record["records"] == len(held)
    want = reference(count, tuple(extra))
    for key, rec in held.items():  # what is on disk is final
        assert rec == want[key]
    # the same command without --resume does not overwrite the unfinished run
    again = run(_cmd(out, *extra, count=count))
    assert again.returncode == 2 and "--resume" in again.stderr
    assert certificates(out) == held
    # resume: only the missing certificates, then the file equals the uninterrupted run's
    r2 = run(_cmd(out, *extra, "--resume", count=count))
    assert r2.returncode == 0, r2.stderr
    assert f"{len(held)} of {2 * count} certificate(s) already done" in r2.stderr
    assert certificates(out) == want
    assert [line.record["type"] for line in open_certs(out).lines()][-1] == "end"
    assert cli.main(["verify", str(out), "--no-progress"]) == 0


def test_hard_kill_leaves_at_most_a_torn_last_record_and_resume_completes(tmp_path, reference):
    """SIGKILL: no handler runs; the file may end in half a record, which verify reports and
    --resume removes before it certifies the rest."""
    out = tmp_path / "certs.jsonl"
    at = int(np.random.default_rng().integers(1, N))
    r = _interrupt(out, signal.SIGKILL, at, [])
    assert r.returncode == -signal.SIGKILL
    lines = list(open_certs(out).lines())
    assert all(line.record is not None for line in lines[:-1])
    assert lines[-1].record is not None or lines[-1].torn
    r2 = run(_cmd(out, "--resume"))
    assert r2.returncode == 0, r2.stderr
    assert certificates(out) == reference()


def test_truncated_last_record_is_reported_by_verify_and_redone_by_resume(tmp_path, reference, capsys):
    out = tmp_path / "certs.jsonl"
    assert run(_cmd(out, count=10)).returncode == 0
    lines = out.read_bytes().splitlines(keepends=True)
    body = [ln for ln in lines[1:] if b'"type":"certificate"' in ln]
    cut = lines[0] + b"".join(body[:7]) + body[7][: len(body[7]) // 2]  # killed while writing record 8
    out.write_bytes(cut)
    assert cli.main(["verify", str(out), "--no-progress"]) == 0  # the 7 complete ones hold
    text = capsys.readouterr().out
    assert "line 9: incomplete last record" in text and "7 hold, 0 failed" in text and "did not finish" in text
    # corruption that is not a torn tail fails the file
    out2 = tmp_path / "corrupt.jsonl"
    out2.write_bytes(lines[0] + body[0] + b"{not json\n" + body[1])
    assert cli.main(["verify", str(out2), "--no-progress"]) == 1
    assert "FAIL line 3" in capsys.readouterr().out
    r = run(_cmd(out, "--resume", count=10))
    assert r.returncode == 0, r.stderr
    assert "line 9: incomplete last record" in r.stderr
    assert certificates(out) == {k: v for k, v in reference().items() if k[0] < 10}  # the same inputs' records


def test_resume_refuses_another_model_and_other_settings(tmp_path):
    out = tmp_path / "certs.jsonl"
    assert cli.main(["certify", str(MODEL), "--count", "3", "--out", str(out), "--no-progress"]) == 0
    before = out.read_bytes()
    other = DATA / "lstm_T4_h24.npz"  # same input shape, another model
    r = run([sys.executable, "-m", "popqorn_fast.cli", "certify", str(other), str(MODEL), "--count", "3",
             "--out", str(out), "--resume", "--no-progress"])
    assert r.returncode == 2 and "differs in the model" in r.stderr and "lstm_T4_h24" in r.stderr, r.stderr
    for extra, what in ((["--rtol", "0.01"], "rtol: 0.001 vs 0.01"), (["--norm", "inf"], "norms"),
                        (["--count", "4"], "shape"), (["--attack"], "attack"),
                        (["--ignore-labels"], "labels")):
        r = run([sys.executable, "-m", "popqorn_fast.cli", "certify", str(MODEL), "--count", "3",
                 "--out", str(out), "--resume", "--no-progress", *extra])
        assert r.returncode == 2 and what in r.stderr, (extra, r.stderr)
    assert out.read_bytes() == before  # a refused resume leaves the file alone
    assert cli.main(["certify", "--resume", "--no-progress"]) == 2  # --resume needs --out


def test_verify_still_reads_the_single_json_files_of_0_1_0(tmp_path, capsys):
    w = pf.load_model(MODEL)
    X, y = pf.load_inputs(MODEL)
    certs = pf.certify_many(w, X[:2], y[:2], eps_max=1.0, p=2)
    doc = {"format": "popqorn_fast.certificates/1", "version": pf.__version__,
           "model": {"path": str(MODEL), "sha256": certs[0].model_sha256, "kind": "gru"},
           "inputs": {"path": str(MODEL), "sequences": [{"index": i, "sha256": c.input_sha256, "x": X[i].tolist()}
                                                       for i, c in enumerate(certs)]},
           "settings": {}, "certificates": [{"input": i, **c.to_dict()} for i, c in enumerate(certs)]}
    (tmp_path / "old.json").write_text(json.dumps(doc, indent=1))
    assert cli.main(["verify", str(tmp_path / "old.json"), "--no-progress"]) == 0
    assert "2 hold, 0 failed" in capsys.readouterr().out
    doc["inputs"]["sequences"][1]["x"][0][0] += 1e-6
    (tmp_path / "bad.json").write_text(json.dumps(doc, indent=1))
    assert cli.main(["verify", str(tmp_path / "bad.json"), "--no-progress"]) == 1
    assert "input SHA-256" in capsys.readouterr().out


def test_npy_inputs_are_read_a_chunk_at_a_time(tmp_path):
    """A 40 MB .npy hashed and read through: Python-side memory of a few chunks, not the file."""
    rng = np.random.default_rng(0)
    path = tmp_path / "big.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(20000, 25, 20))
    for s in range(0, 20000, 2000):
        X[s:s + 2000] = rng.normal(size=(2000, 25, 20))
    X.flush()
    del X
    src = open_inputs(path)
    assert src.shape == (20000, 25, 20) and src.labels is None
    want = np.load(path)[12345:12350].astype(np.float64)
    tracemalloc.start()
    digest = src.sha256(size=256)
    part = src.chunk(12345, 12350)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * 256 * 25 * 20 * 8 + (1 << 20), peak  # about a chunk (float64), far below 40 MB
    np.testing.assert_array_equal(part, want)
    assert digest == pf.certificate.input_sha256(np.load(path))


def test_attack_radius_brackets_pgd_and_bounds_the_certificate(tmp_path):
    out = tmp_path / "a.jsonl"
    assert cli.main(["certify", str(MODEL), "--count", "3", "--norm", "2", "--attack", "--out", str(out),
                     "--no-progress"]) == 0
    w = pf.load_model(MODEL)
    X, _ = pf.load_inputs(MODEL)
    recs = list(certificates(out).values())
    assert len(recs) == 3
    for rec in recs:
        if rec["misclassified"]:
            assert rec["attack_eps"] == 0.0 and rec["attack_ratio"] is None
            continue
        x = X[rec["input"]]
        a, lo = rec["attack_eps"], rec["attack_eps_lower"]
        assert rec["eps"] <= a and lo < a <= lo * (1 + 1e-3) * (1 + 1e-9)  # bracketed to rtol
        assert pgd(w, x, a, p=2, label=rec["label"]).success  # an adversarial example at attack_eps
        assert not pgd(w, x, lo, p=2, label=rec["label"]).success
        assert rec["attack_ratio"] == pytest.approx(rec["eps"] / a)


def test_plot_of_certified_and_attacked_accuracy_from_the_file_alone(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "c.jsonl"
    with RecordWriter(out, {"model": {}, "inputs": {}, "settings": {}}) as wr:
        for i, (e, a, mis) in enumerate([(0.1, 0.3, False), (0.2, None, False), (0.0, 0.0, True)]):
            wr.write({"type": "certificate", "input": i, "eps": e, "label": 0, "p": "2", "misclassified": mis,
                      "margin_lower": [], "attack_eps": a})
    from popqorn_fast.curves import read_curves
    (c,) = read_curves(out)
    grid = np.array([0.0, 0.1, 0.15, 0.25, 1.0])
    np.testing.assert_allclose(c.certified(grid), [2 / 3, 2 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(c.attacked(grid), [2 / 3, 2 / 3, 2 / 3, 2 / 3, 1 / 3])
    assert cli.main(["plot", str(out), "--out", str(tmp_path / "acc.png"), "--plot-size", "640x400"]) == 0
    data = (tmp_path / "acc.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["plot", str(out), "--out", str(tmp_path / "acc.svg")]) == 0
    assert b"<svg" in (tmp_path / "acc.svg").read_bytes()[:2000]
    assert cli.main(["plot", str(out), "--out", str(tmp_path / "acc.jpg")]) == 2
    assert ".png or .svg" in capsys.readouterr().err
