"""Speed benchmark: seconds per input, per bound pass, passes per search and GFLOP/s.

Prints, per architecture, size and plane method (exact / constant: the latter
separates the planes' time from back-substitution), a full ε search's cost (float64, one thread,
rtol 1e-3, p = 2) next to NumPy's matmul GFLOP/s measured in the same run (the
ratio survives noisy machines), and writes a plot of cost vs T and vs h.

    python bench/run.py                 # the default sweep
    python bench/run.py --quick         # only the three goal sizes
    python bench/run.py --plot bench/results/cost.png --md bench/results/run.md
    python bench/run.py --device cuda   # inputs/s of certify_many(device="cuda") vs CPU threads
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread for NumPy's BLAS too
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import popqorn_fast as pf  # noqa: E402
from flops import pass_flops  # noqa: E402


def random_model(kind: str, T: int, s: int, n: int, seed: int = 0):
    """A random network with PyTorch-like initialisation (uniform ±1/sqrt(s))."""
    rng = np.random.default_rng(seed)
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    k = 1.0 / np.sqrt(s)
    u = lambda *shape: rng.uniform(-k, k, size=shape)
    args = (u(G * s, n), u(G * s, s), u(G * s), u(G * s), rng.normal(size=(10, s)), rng.normal(size=10))
    cls = {"rnn": pf.RNNWeights, "lstm": pf.LSTMWeights, "gru": pf.GRUWeights}[kind]
    X = rng.uniform(0, 1, size=(8, T, n))
    return cls(*args), X


def numpy_gflops(s: int) -> float:
    """NumPy (BLAS) matmul GFLOP/s, one thread, for a product the size of a back-substitution step."""
    a = np.random.default_rng(0).normal(size=(8 * s, 4 * s))
    b = np.random.default_rng(1).normal(size=(4 * s, s))
    reps = max(3, int(2e8 / (2 * a.shape[0] * a.shape[1] * b.shape[1])))
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, (time.perf_counter() - t0) / reps)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / best / 1e9


def measure(kind: str, T: int, s: int, n: int, inputs: int, planes: str = "exact") -> dict:
    """A full ε search per input; seconds per input (median), per pass (total / passes)."""
    w, X = random_model(kind, T, s, n)
    secs, passes = [], []
    for x in X[:inputs]:
        t0 = time.perf_counter()
        c = pf.certify(w, x, eps_max=10.0, p=2, planes=planes)
        secs.append(time.perf_counter() - t0)
        passes.append(c.bound_passes)
    s_input = float(np.median(secs))
    s_pass = float(np.sum(secs) / np.sum(passes))
    flops = pass_flops(kind, T, s, n, K=9)
    return dict(kind=kind, T=T, h=s, n=n, planes=planes, s_input=s_input, s_pass=s_pass,
                passes=float(np.mean(passes)), gflops=flops / s_pass / 1e9, numpy_gflops=numpy_gflops(s))


def sweep(quick: bool) -> list[tuple[str, int, int, int]]:
    """The goal sizes first, then T and h sweeps of every architecture."""
    configs = [("lstm", 8, 32, 8), ("gru", 8, 32, 8), ("rnn", 8, 64, 8)]
    if quick:
        return configs
    for kind, h_fixed in (("lstm", 32), ("gru", 32), ("rnn", 64)):
        configs += [(kind, T, h_fixed, 8) for T in (4, 16, 32)]
        configs += [(kind, 8, h, 8) for h in (16, 32, 64, 128, 256) if h != h_fixed]
    return configs


def device_table(Ns: list[int], cpu_threads: list[int], cpu_max: int) -> None:
    """certify_many throughput on the LSTM T=8, h=32 size: device="cuda" (one batched pass
    per round of probes) next to the CPU backend with k threads (certify_many(threads=k)).
    The CPU runs at most ``cpu_max`` inputs per N (its rate is per input, flat in N)."""
    from popqorn_fast.backend import check_device
    try:
        check_device("cuda")
    except RuntimeError as exc:
        raise SystemExit(f"bench/run.py --device cuda: {exc}")
    w, _ = random_model("lstm", 8, 32, 8)
    rng = np.random.default_rng(5)
    print(f"# certify_many inputs/s, lstm T=8 h=32 n=8, float64, p = 2, rtol 1e-3, planes exact; "
          f"{os.cpu_count()} cpus")
    print(f"{'N':>6} {'cuda':>10} " + " ".join(f"{'cpu x' + str(k):>10}" for k in cpu_threads))
    # the GPU computes round-to-nearest only (docs/ROUNDING.md): both sides run rounding="nearest"
    pf.certify_many(w, rng.uniform(0, 1, size=(2, 8, 8)), device="cuda", rounding="nearest")  # warm-up
    for N in Ns:
        X = rng.uniform(0, 1, size=(N, 8, 8))
        t0 = time.perf_counter()
        gpu = pf.certify_many(w, X, device="cuda", rounding="nearest")
        rate = N / (time.perf_counter() - t0)
        cols = []
        for k in cpu_threads:
            m = min(N, cpu_max)
            t0 = time.perf_counter()
            cpu = pf.certify_many(w, X[:m], threads=k, rounding="nearest")
            cols.append(m / (time.perf_counter() - t0))
            worst = max(abs(g.eps - c.eps) / max(c.eps, 1e-300) for g, c in zip(gpu, cpu))
            if worst > 1e-6:
                print(f"# warning: N={N}: cuda and cpu radii differ by {worst:.2e} relative")
        print(f"{N:>6} {rate:>10.1f} " + " ".join(f"{c:>10.1f}" for c in cols), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: inputs/s of certify_many(device='cuda') for N in {1, 100, 1000, 10000} "
                         "next to the CPU backend with 2 and 16 threads (needs a GPU)")
    ap.add_argument("--cpu-max", type=int, default=1000,
                    help="with --device cuda: at most this many inputs timed on the CPU per N")
    ap.add_argument("--quick", action="store_true", help="only the three goal sizes")
    ap.add_argument("--inputs", type=int, default=3, help="inputs per configuration (median time)")
    ap.add_argument("--max-h", type=int, default=256, help="skip hidden sizes above this")
    ap.add_argument("--plot", help="write a PNG of cost per pass vs T and vs h")
    ap.add_argument("--md", help="append the table as Markdown to this file")
    args = ap.parse_args()
    if args.device == "cuda":
        device_table([1, 100, 1000, 10000], [2, 16], args.cpu_max)
        return

    rows = []
    head = (f"{'kind':5} {'planes':8} {'T':>3} {'h':>4} {'n':>3} {'s/input':>9} {'s/pass':>9} {'passes':>6} "
            f"{'GFLOP/s':>8} {'numpy':>7} {'ratio':>6}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()},"
          f" NumPy {np.__version__}, one thread, float64, p = 2, rtol 1e-3")
    print(head)
    for kind, T, s, n in sweep(args.quick):
        if s > args.max_h:
            continue
        for planes in (("exact", "constant") if kind != "rnn" else ("exact",)):
            r = measure(kind, T, s, n, args.inputs, planes)
            rows.append(r)
            print(f"{kind:5} {planes:8} {T:>3} {s:>4} {n:>3} {r['s_input']:>9.4f} {r['s_pass']:>9.5f} "
                  f"{r['passes']:>6.1f} {r['gflops']:>8.2f} {r['numpy_gflops']:>7.2f} "
                  f"{r['gflops'] / r['numpy_gflops']:>6.2f}", flush=True)
    if args.md:
        with open(args.md, "a") as fh:
            fh.write("| kind | planes | T | h | n | s/input | s/pass | passes | GFLOP/s | NumPy GFLOP/s | ratio |\n"
                     "|---|---|---|---|---|---|---|---|---|---|---|\n")
            for r in rows:
                fh.write(f"| {r['kind']} | {r['planes']} | {r['T']} | {r['h']} | {r['n']} | {r['s_input']:.4f} | "
                         f"{r['s_pass']:.5f} | {r['passes']:.1f} | {r['gflops']:.2f} | {r['numpy_gflops']:.2f} | "
                         f"{r['gflops'] / r['numpy_gflops']:.2f} |\n")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        fixed_h = {"lstm": 32, "gru": 32, "rnn": 64}
        for kind in ("lstm", "gru", "rnn"):
            for planes, style in (("exact", "o-"), ("constant", "s--")):
                by_t = sorted((r for r in rows if r["kind"] == kind and r["planes"] == planes
                               and r["h"] == fixed_h[kind]), key=lambda r: r["T"])
                by_h = sorted((r for r in rows if r["kind"] == kind and r["planes"] == planes and r["T"] == 8),
                              key=lambda r: r["h"])
                lab = f"{kind} {planes}"
                if len(by_t) > 1:
                    axes[0].loglog([r["T"] for r in by_t], [r["s_pass"] for r in by_t], style, label=lab)
                if len(by_h) > 1:
                    axes[1].loglog([r["h"] for r in by_h], [r["s_pass"] for r in by_h], style, label=lab)
        t = np.array([4, 32.0])
        axes[0].loglog(t, 1e-4 * (t / 4) ** 2, "k:", label="∝ T²")
        hh = np.array([16, 256.0])
        axes[1].loglog(hh, 1e-4 * (hh / 16) ** 3, "k:", label="∝ h³")
        axes[0].set_xlabel("T (h = 32; RNN h = 64)"); axes[1].set_xlabel("h (T = 8)")
        for ax in axes:
            ax.set_ylabel("seconds per bound pass"); ax.legend(fontsize=7)
        fig.tight_layout(); fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
