"""Dataset-run figures (issue 22): a tiny model and a large .npy of inputs for streamed runs,
and the cost of writing one record of the certificates file.

    python bench/dataset_run.py make DIR N T n        # DIR/model.npz (RNN, h=4) and DIR/x.npy (N, T, n) float32
    python bench/dataset_run.py write-cost [COUNT]    # seconds per record: json + write + flush (+ fsync)

Then, e.g.: /usr/bin/time -v popqorn-fast certify DIR/model.npz DIR/x.npy --out DIR/c.jsonl --no-progress
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make(folder: str, N: int, T: int, n: int) -> None:
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, C = 4, 3
    np.savez(d / "model.npz", kind="rnn", activation="tanh",
             weight_ih_l0=rng.normal(scale=0.3, size=(h, n)), weight_hh_l0=rng.normal(scale=0.3, size=(h, h)),
             bias_ih_l0=rng.normal(size=h), bias_hh_l0=rng.normal(size=h),
             **{"out.weight": rng.normal(size=(C, h)), "out.bias": rng.normal(size=C)})
    X = np.lib.format.open_memmap(d / "x.npy", mode="w+", dtype=np.float32, shape=(N, T, n))
    step = max(1, (1 << 24) // (T * n))
    for s in range(0, N, step):
        X[s:s + step] = rng.standard_normal(size=(min(step, N - s), T, n), dtype=np.float32)
    X.flush()
    print(f"wrote {d / 'model.npz'} and {d / 'x.npy'}: {N} x {T} x {n} float32 = {N * T * n * 4 / 2**30:.2f} GiB "
          f"({N * T * n * 8 / 2**30:.2f} GiB as float64)")


def write_cost(count: int = 2000) -> None:
    import popqorn_fast as pf
    from popqorn_fast.records import RecordWriter

    w = pf.load_model(pf.default_model_path())
    X, _ = pf.load_inputs(pf.default_model_path())
    rec = {"type": "certificate", "input": 0, **pf.certify(w, X[0], 10.0).to_dict()}
    t0 = time.perf_counter()
    cert = pf.certify(w, X[0], 10.0)
    t_cert = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        for interval in (0.0, 1.0):
            with RecordWriter(Path(tmp) / f"c{interval}.jsonl", {"model": {}}, fsync_interval=interval) as wr:
                t0 = time.perf_counter()
                for i in range(count):
                    rec["input"] = i
                    wr.write(rec)
                dt = (time.perf_counter() - t0) / count
            print(f"fsync_interval={interval:g} s: {dt * 1e6:.1f} us per record "
                  f"({len(wr.path.read_bytes()) // (count + 1)} bytes/record); one certify() of the bundled "
                  f"LSTM: {t_cert * 1e3:.1f} ms ({cert.bound_passes} bound passes)")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "write-cost":
        write_cost(int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
    else:
        raise SystemExit(__doc__)
