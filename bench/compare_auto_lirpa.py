"""popqorn_fast next to auto_LiRPA (CROWN, alpha-CROWN, IBP), run live when auto_LiRPA is installed.

Same model, same inputs, same threat model (every frame in its own lp ball of
radius eps, untargeted, no clipping) and the same eps search on both sides
(docs/RECURRENCES.md §5; also what shared/reference/lirpa_crown_dev.md used:
eps0 = 0.1, double/halve, bisect until hi - lo <= 1e-3 lo). Prints eps and
seconds side by side with the ratios.

    python bench/compare_auto_lirpa.py [--models tests/data/*.npz] [--norms 2 inf] \
        [-n 3] [--indices 0 1 2] [--method CROWN [CROWN-Optimized IBP ...]] \
        [--alpha-iterations 20] [--lr-alpha 0.5] [--alpha-search bisect|aimed] \
        [--planes exact [optimized exact:sound32 ...]] \
        [--bound-opt s_shaped_disable_smoothness_enhancement=true] [--md out.md] \
        [--ball frame|joint] [--threads 1] [--order interleaved|blocks]

--ball joint: one lp ball over the whole sequence on both sides (popqorn_fast's ball="joint";
auto_LiRPA with the sequence fed as ONE (1, T·n) BoundedTensor, whose PerturbationLpNorm
takes the norm over all T·n coordinates; frames picked by fixed 0/1 Linear maps, because
indexing would go through BoundGather, which loses the lp ball: see joint_module). Check the
unrolled-logits gap line before trusting its numbers.

Several --method values run one after the other on the same input (each with
its own BoundedModule); several --planes values give one popqorn_fast search
each (PLANES:ROUNDING picks the rounding too: exact:sound32 is planes="exact",
rounding="sound32"; the default rounding is "sound"). Ratios: every ours-planes eps over every LiRPA eps, and every later
LiRPA method over the first one.

alpha-CROWN is auto_LiRPA's `CROWN-Optimized` (alias `alpha-CROWN`):
CROWN whose relaxation slopes (alphas of the tanh / sigmoid / Mul nodes) are
optimised by Adam for the final bound, set through
set_bound_opts({'optimize_bound_args': {'iteration': N, 'lr_alpha': lr}});
everything else is auto_LiRPA's default optimize_bound_args (intermediate
bounds fixed at their CROWN values, alphas re-initialised from CROWN on every
call, keep_best). Each eps probe of the search is one such optimisation, about
70x the cost of a CROWN call on the T = 8 models. `--alpha-search aimed` cuts
the number of probes: popqorn_fast's own search_radius fed with the smallest
margin lower bound (secant/parabola-aimed probes, same stopping rule
hi - lo <= rtol lo), started at the eps the first (non-optimised) method found
on that input; the reported eps is still a probed, certified value.

Encoding: the network is unrolled into an explicit torch module (b_ih + b_hh
folded where PyTorch adds them, PyTorch gate orders i,f,g,o / r,z,n, zero
initial state, head on h_T); each frame is its own BoundedTensor with
PerturbationLpNorm(p, eps); the specification is C with rows e_y - e_j and
bound_upper=False; certified when every lower bound is > 0. torch runs on one
thread in float32 (auto_LiRPA's default); --threads k gives torch k threads
(torch.set_num_threads) and popqorn_fast k threads inside the input (certify's
threads=k). Seconds are the whole radius search of one input (the BoundedModule is
built once per model, not counted; likewise popqorn_fast runs one untimed search per model
first: a first search in a process carries one-time costs, ~3 ms, which were 40 % of a
vanilla RNN's search at T = 8, h = 64).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import contextlib
import platform
import sys
import time
from pathlib import Path

import numpy as np

import popqorn_fast as pf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_reference import search  # noqa: E402  (the same eps search for every tool)
from popqorn_fast.bisection import search_radius  # noqa: E402
from torch_twin import unrolled_module  # noqa: E402  (any model shape, one module)


def joint_module(net, T, n):
    """The unrolled module fed one (1, T·n) tensor: one perturbation over the whole sequence.

    Frame t is taken out by a fixed 0/1 Linear map (X -> X[:, t·n:(t+1)·n]), not by indexing
    X[:, t]. Indexing becomes auto_LiRPA 0.7.1 BoundGather, whose interval propagation drops
    an lp (p < inf) perturbation: the IBP interval of every frame is the zero-width [x_t, x_t]
    at any eps. With the default sparse_intermediate_bounds=True, auto_LiRPA takes those IBP
    intervals as the reference for which ReLU inputs are unstable, finds none, skips CROWN
    for them and keeps the zero-width intervals: every ReLU is fixed to its phase at the
    centre, and the "bound" is that of a linear network, not a valid CROWN bound
    (bench/results/2026-12-06-joint-vs-crown.md). A Linear map on the input node gets the
    lp-aware IBP interval (x_t +- eps per coordinate: each row has unit norm) and ordinary
    CROWN behind it.
    """
    import torch

    class Joint(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.pick = torch.nn.ModuleList()
            for t in range(T):
                m = torch.nn.Linear(T * n, n, bias=False)
                with torch.no_grad():
                    m.weight.zero_()
                    m.weight[:, t * n:(t + 1) * n] = torch.eye(n)
                self.pick.append(m)

        def forward(self, X):
            return self.net(*[self.pick[t](X) for t in range(T)])

    return Joint().eval()


class Lirpa:
    def __init__(self, w, T, n, bound_opts=None, method="CROWN", optimize_args=None, ball="frame"):
        import torch
        from auto_LiRPA import BoundedModule
        self.torch, self.method, self.ball = torch, method, ball
        self.optimized = method.lower() in ("crown-optimized", "alpha-crown")
        self.net = unrolled_module(w, T)
        dummy = tuple(torch.zeros(1, n) for _ in range(T))
        bounded = self.net
        if ball == "joint":
            bounded, dummy = joint_module(self.net, T, n), torch.zeros(1, T * n)
        self.model = BoundedModule(bounded, dummy, bound_opts=bound_opts or {}, device="cpu",
                                   verbose=False)
        if self.optimized and optimize_args:
            self.model.set_bound_opts({"optimize_bound_args": dict(optimize_args)})
        self.C_out = w.num_classes

    def spec(self, label):
        C = self.torch.zeros(1, self.C_out - 1, self.C_out)
        for r, j in enumerate(j for j in range(self.C_out) if j != label):
            C[0, r, label], C[0, r, j] = 1.0, -1.0
        return C

    def lower(self, x, label, eps, p):
        from auto_LiRPA import BoundedTensor, PerturbationLpNorm
        torch = self.torch
        if self.ball == "joint":
            xs = (BoundedTensor(torch.tensor(x.reshape(1, -1), dtype=torch.float32),
                                 PerturbationLpNorm(norm=p, eps=eps)),)
        else:
            xs = tuple(BoundedTensor(torch.tensor(x[t:t + 1], dtype=torch.float32),
                                     PerturbationLpNorm(norm=p, eps=eps)) for t in range(x.shape[0]))
        # alpha-CROWN differentiates the bound with respect to its slopes: no no_grad there
        with contextlib.nullcontext() if self.optimized else torch.no_grad():
            lb, _ = self.model.compute_bounds(x=xs, C=self.spec(label), method=self.method,
                                              bound_upper=False)
        return lb[0].detach().double().numpy()

    def margin(self, x, label, eps, p):
        return float(np.min(self.lower(x, label, eps, p)))

    def check(self, x, label, eps, p):
        return bool(np.all(self.lower(x, label, eps, p) > 0))


def _parse_opt(s):
    k, v = s.split("=", 1)
    low = v.lower()
    if low in ("true", "false"):
        return k, low == "true"
    try:
        return k, float(v)
    except ValueError:
        return k, v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+",
                    default=["tests/data/lstm_T4_h24.npz", "tests/data/rnn_tanh_T16_h16.npz"])
    ap.add_argument("--norms", nargs="+", default=["2", "inf"])
    ap.add_argument("-n", type=int, default=3, help="first n correctly classified stored inputs")
    ap.add_argument("--indices", nargs="*", type=int, help="these test indices instead of -n")
    ap.add_argument("--method", nargs="+", default=["CROWN"],
                    help="auto_LiRPA methods (CROWN, CROWN-Optimized / alpha-CROWN, IBP, ...)")
    ap.add_argument("--alpha-iterations", type=int, default=20,
                    help="optimize_bound_args['iteration'] of alpha-CROWN (auto_LiRPA's default)")
    ap.add_argument("--lr-alpha", type=float, default=0.5,
                    help="optimize_bound_args['lr_alpha'] of alpha-CROWN (auto_LiRPA's default)")
    ap.add_argument("--alpha-search", choices=["bisect", "aimed"], default="bisect",
                    help="eps search of alpha-CROWN: the common bisection from 0.1, or margin-aimed "
                         "from the first method's eps (see the docstring)")
    ap.add_argument("--planes", nargs="+", default=["exact"],
                    help="popqorn_fast planes, one search each (exact, optimized, 1d, constant; "
                         "PLANES:ROUNDING also sets rounding, e.g. exact:sound32)")
    ap.add_argument("--bound-opt", action="append", default=[],
                    help="auto_LiRPA bound_opts entry KEY=VALUE (repeatable)")
    ap.add_argument("--rtol", type=float, default=1e-3)
    ap.add_argument("--md", help="append the Markdown table to this file")
    ap.add_argument("--order", choices=("interleaved", "blocks"), default="interleaved",
                    help="interleaved: per input, ours then the peer's (each of our searches starts "
                         "after ~1 s of the peer's work, its caches cold); blocks: per model and norm, "
                         "all our searches back to back, then all the peer's")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads of each side: torch.set_num_threads(k) and certify(threads=k)")
    ap.add_argument("--ball", choices=["frame", "joint"], default="frame",
                    help="per-frame balls (default) or one ball over the whole sequence, both sides")
    args = ap.parse_args()

    try:
        import auto_LiRPA
        import torch
    except ImportError as e:
        sys.exit(f"auto_LiRPA and torch are needed for this comparison ({e})")
    torch.set_num_threads(args.threads)
    opts = dict(_parse_opt(s) for s in args.bound_opt)
    opt_args = {"iteration": args.alpha_iterations, "lr_alpha": args.lr_alpha}
    short = {"crown-optimized": "aCROWN", "alpha-crown": "aCROWN"}
    mname = [short.get(m.lower(), m) for m in args.method]
    print(f"# python {platform.python_version()}, torch {torch.__version__}, auto_LiRPA "
          f"{auto_LiRPA.__version__}, numpy {np.__version__}, popqorn_fast "
          f"{getattr(pf, '__version__', '?')}; methods={args.method}, bound_opts={opts}, "
          f"optimize_bound_args={opt_args if any(m == 'aCROWN' for m in mname) else '-'}, "
          f"planes={args.planes}, rtol={args.rtol}, threads={args.threads}, order={args.order}")
    ratio_cols = [f"{pl}/{m}" for pl in args.planes for m in mname] + \
                 [f"{m}/{mname[0]}" for m in mname[1:]]
    cols = (["model", "p", "input"] + [f"{m} eps" for m in mname] +
            [f"ours {pl} eps" for pl in args.planes] + ratio_cols +
            [f"{m} s" for m in mname] + [f"ours {pl} s" for pl in args.planes] +
            [f"{m} calls" for m in mname] + [f"ours {pl} passes" for pl in args.planes])
    head = "| " + " | ".join(cols) + " |"
    lines = [head, "|" + "---|" * len(cols)]
    print(head, flush=True)
    for path in args.models:
        w = pf.load_model(path)
        X, y = pf.load_inputs(path)
        name = Path(path).stem
        T, n = X.shape[1], X.shape[2]
        lirpas = []
        for m in args.method:
            t0 = time.perf_counter()
            lirpas.append(Lirpa(w, T, n, opts, m, opt_args, args.ball))
            build = time.perf_counter() - t0
            with torch.no_grad():
                xt = tuple(torch.tensor(X[:1, t], dtype=torch.float32) for t in range(T))
                gap = float(np.max(np.abs(lirpas[-1].net(*xt).double().numpy()[0] - w.logits(X[0]))))
            print(f"# {name} {m}: BoundedModule built in {build:.2f} s; |unrolled logits - "
                  f"popqorn_fast logits| = {gap:.2e} on input 0", flush=True)
        if args.indices:
            idx = args.indices
        else:
            pred = np.argmax(w.logits(X), axis=1)
            idx = [i for i in range(len(X)) if pred[i] == y[i]][: args.n]
        if idx:  # one untimed search per model, as the BoundedModule's build is not counted
            planes, _, rounding = args.planes[0].partition(":")
            pf.certify(w, X[idx[0]], eps_max=10.0, p=args.norms[0], rtol=args.rtol, planes=planes, ball=args.ball,
                       threads=args.threads, rounding=rounding or "sound")
        for norm in args.norms:
            p = float(norm)
            acc = {c: [] for c in ratio_cols}

            def our_searches(i: int) -> list[tuple[float, float, int]]:
                ours = []
                for pl in args.planes:
                    planes, _, rounding = pl.partition(":")
                    t0 = time.perf_counter()
                    c = pf.certify(w, X[i], eps_max=10.0, p=norm, label=int(y[i]), rtol=args.rtol,
                                   planes=planes, ball=args.ball, threads=args.threads,
                                   rounding=rounding or "sound")
                    ours.append((c.eps, time.perf_counter() - t0, c.bound_passes))
                return ours

            # blocks: our searches of every input back to back first, then the peer's
            ahead = {i: our_searches(i) for i in idx} if args.order == "blocks" else {}
            for i in idx:
                ours = ahead[i] if i in ahead else our_searches(i)
                theirs = []
                for m, lirpa in zip(args.method, lirpas):
                    t0 = time.perf_counter()
                    if lirpa.optimized and args.alpha_search == "aimed":
                        e0 = theirs[0][0] if theirs and theirs[0][0] > 0 else 0.1
                        r_ = search_radius(lambda e: lirpa.margin(X[i], int(y[i]), e, p), 10.0,
                                           args.rtol, eps_start=e0)
                        e_l, calls = r_.eps, r_.passes
                    else:
                        e_l, calls = search(lambda e: lirpa.check(X[i], int(y[i]), e, p),
                                            rtol=args.rtol)
                    theirs.append((e_l, time.perf_counter() - t0, calls))
                    print(f"#   {name} p={norm} input {i}: {m} eps {e_l:.6g} in {theirs[-1][1]:.3g} s "
                          f"({calls} calls)", flush=True)
                q = lambda a, b: a / b if b > 0 else float("inf")  # noqa: E731
                ratios = [q(o[0], t[0]) for o in ours for t in theirs] + \
                         [q(t[0], theirs[0][0]) for t in theirs[1:]]
                for c_, r in zip(ratio_cols, ratios):
                    acc[c_].append(r)
                cells = ([name, norm, str(i)] + [f"{t[0]:.6g}" for t in theirs] +
                         [f"{o[0]:.6g}" for o in ours] + [f"{r:.4f}" for r in ratios] +
                         [f"{t[1]:.3g}" for t in theirs] + [f"{o[1]:.3g}" for o in ours] +
                         [str(t[2]) for t in theirs] + [str(o[2]) for o in ours])
                row = "| " + " | ".join(cells) + " |"
                print(row, flush=True)
                lines.append(row)
            cells = ([name, norm, "mean"] + [""] * (len(mname) + len(args.planes)) +
                     [f"{np.mean(acc[c_]):.4f}" for c_ in ratio_cols] +
                     [""] * (2 * (len(mname) + len(args.planes))))
            row = "| " + " | ".join(cells) + " |"
            print(row, flush=True)
            lines.append(row)
    if args.md:
        with open(args.md, "a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
