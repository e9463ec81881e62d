"""certify_many: the same certificates on one thread, on threads, on any Executor
(including a real dask.distributed cluster of worker processes), with fingerprints
and progress reporting."""
from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast.certificate import model_sha256
from popqorn_fast.certify import _ProgressBar
from conftest import DATA


@pytest.fixture(scope="module")
def batch():
    w = pf.load_model(DATA / "gru_T4_h24.npz")
    with np.load(DATA / "gru_T4_h24.npz") as d:
        X, y = d["X"][:6], d["y"][:6].copy()
    y[4] = (y[4] + 1) % 10  # one wrong label: must come back misclassified with eps 0
    local = pf.certify_many(w, X, y, eps_max=2.0, p=2)
    return w, X, y, local


def _same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for ca, cb in zip(a, b):
        assert ca.eps == cb.eps and ca.label == cb.label and ca.misclassified == cb.misclassified
        np.testing.assert_array_equal(ca.margin_lower, cb.margin_lower)
        assert ca.model_sha256 == cb.model_sha256 and ca.input_sha256 == cb.input_sha256


def test_local_results_are_certify_and_fingerprinted(batch):
    w, X, y, local = batch
    assert [c.misclassified for c in local] == [i == 4 for i in range(6)]
    assert local[4].eps == 0.0
    for i in (0, 5):
        single = pf.certify(w, X[i], 2.0, p=2, label=int(y[i]))
        assert local[i].eps == single.eps > 0
        np.testing.assert_array_equal(local[i].margin_lower, single.margin_lower)
        assert np.all(local[i].margin_lower > 0)
    mh = model_sha256(w)
    for i, c in enumerate(local):
        assert c.model_sha256 == mh
        assert c.input_sha256 == hashlib.sha256(np.asarray(X[i], dtype=np.float64).tobytes()).hexdigest()
        assert c.version == pf.__version__
    # the hash tells models apart
    other = pf.load_model(DATA / "gru_T8_h16.npz")
    assert model_sha256(other) != mh


def test_threads_and_thread_executor_give_the_local_certificates(batch):
    w, X, y, local = batch
    _same(pf.certify_many(w, X, y, eps_max=2.0, p=2, threads=2, chunk_size=2), local)
    seen: list[tuple[int, int]] = []
    with ThreadPoolExecutor(2) as ex:
        got = pf.certify_many(w, X, y, eps_max=2.0, p=2, executor=ex, chunk_size=1,
                              progress=lambda done, total: seen.append((done, total)))
    _same(got, local)
    assert [d for d, _ in seen] == list(range(1, 7)) and {t for _, t in seen} == {6}


def test_bad_arguments(batch):
    w, X, y, _ = batch
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        pf.certify_many(w, X, executor=object())
    with pytest.raises(ValueError, match="chunk_size"):
        pf.certify_many(w, X, chunk_size=0)
    with pytest.raises(ValueError, match="threads"):
        pf.certify_many(w, X, threads=0)
    with pytest.raises(ValueError, match="frames"):
        pf.certify_many(w, X, frames=[7])
    with pytest.raises(ValueError, match="labels must have shape"):
        pf.certify_many(w, X, labels=[1, 2])


def test_progress_bar_reports_rate_and_eta():
    out = io.StringIO()
    bar = _ProgressBar(4, label="certify", delay=0.0, stream=out)
    for k in range(1, 5):
        bar(k)
    text = out.getvalue()
    lines = [ln for ln in text.splitlines() if ln]
    assert lines[-1].startswith("certify [") and "4/4" in lines[-1] and "100.0%" in lines[-1]
    assert "it/s" in lines[-1] and "ETA" in lines[-1]
    quiet = io.StringIO()
    slow = _ProgressBar(4, delay=3600.0, stream=quiet)  # a run shorter than the delay prints nothing
    for k in range(1, 5):
        slow(k)
    assert quiet.getvalue() == ""


def test_dask_local_cluster_gives_the_local_certificates(batch):
    distributed = pytest.importorskip("distributed")
    w, X, y, local = batch
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB",
                                  dashboard_address=None, silence_logs=40) as cluster:
        with distributed.Client(cluster) as client:
            got = pf.certify_many(w, X, y, eps_max=2.0, p=2, executor=client.get_executor(), chunk_size=2)
            pids = set(client.run(lambda: __import__("os").getpid()).values())
    assert len(pids) == 2
    _same(got, local)


def test_dask_worker_killed_mid_run_costs_only_resubmission(batch, tmp_path):
    """A worker process killed while it runs a chunk (SIGKILL; Dask told to give up on such a
    task at once: allowed-failures 0, so certify_many itself must resubmit): complete
    results, in input order, equal to the local run; progress counts each input once."""
    distributed = pytest.importorskip("distributed")
    dask = pytest.importorskip("dask")
    from lost_worker import KillingExecutor

    w, X, y, local = batch
    seen: list[int] = []
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB",
                                      dashboard_address=None, silence_logs=50) as cluster:
            with distributed.Client(cluster) as client:
                before = set(client.run(os.getpid).values())
                ex = KillingExecutor(client.get_executor(), tmp_path / "killed", kill_at=2)
                got = pf.certify_many(w, X, y, eps_max=2.0, p=2, executor=ex, chunk_size=2,
                                      progress=lambda done, total: seen.append(done))
    assert ex.killed_pid in before  # a worker process really died mid-run
    assert ex.submitted > 3  # 3 chunks, and at least one resubmission
    _same(got, local)
    assert seen == list(range(1, len(X) + 1))


class _FailingExecutor(ThreadPoolExecutor):
    """Threads, but every task whose chunk holds the input ``bad`` raises (an input that
    keeps failing wherever it runs)."""

    def __init__(self, bad: np.ndarray) -> None:
        super().__init__(2)
        self.bad, self.calls = bad, 0

    def submit(self, fn, /, *args, **kwargs):
        self.calls += 1
        X = args[1][1]  # resilient._call(fn, (weights, X, labels, kwargs), attempt)
        if any(np.array_equal(x, self.bad) for x in X):
            def boom(*a, **k):
                raise RuntimeError("this input cannot be certified here")
            return super().submit(boom)
        return super().submit(fn, *args, **kwargs)


def test_an_input_that_keeps_failing_is_reported_not_retried_forever(batch):
    from popqorn_fast.resilient import IncompleteRunError

    w, X, y, local = batch
    seen: list[int] = []
    with _FailingExecutor(np.asarray(X[3], dtype=np.float64)) as ex:
        with pytest.raises(IncompleteRunError, match="1 of 6 input") as err:
            pf.certify_many(w, X, y, eps_max=2.0, p=2, executor=ex, chunk_size=2, retries=2,
                            progress=lambda done, total: seen.append(done))
    e = err.value
    assert list(e.errors) == [3] and "cannot be certified here" in e.errors[3]
    assert e.results[3] is None
    _same([c for i, c in enumerate(e.results) if i != 3], [c for i, c in enumerate(local) if i != 3])
    assert seen == list(range(1, 7))
    assert ex.calls == 3 + 2 + 1  # 3 chunks; the failed chunk split in two; input 3 tried 3 times in all
