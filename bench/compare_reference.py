"""popqorn_fast next to the reference POPQORN (github.com/ZhaoyangLyu/POPQORN), run live.

For a user who has the reference checked out and PyTorch installed. Nothing of
the reference is copied here: its modules are imported from --popqorn-dir at
run time. Same model, same inputs, same threat model (every frame in its own
lp ball of radius eps, untargeted), same eps search on both sides; prints eps
and seconds side by side with the ratios.

    python bench/compare_reference.py --popqorn-dir ~/src/POPQORN \
        --models tests/data/lstm_T4_h24.npz tests/data/rnn_tanh_T16_h16.npz \
        --norms 2 inf -n 3 [--spec native|margins] [--md out.md]

The reference's LSTM takes minutes per bound pass (about 200 s on a loaded
2-core machine for lstm_T4_h24); bound its run with e.g.
``-n 1 --ref-eps0 ours --ref-rtol 0.05`` (start the reference's search at our
eps* and stop it at 5%).

How the reference is driven
---------------------------
* LSTM: ``lstm/lstm.py``: ``My_lstm(nn.LSTM, device, W_out, b_out, T, a0, c0)``
  and ``get_last_layer_bound(W, b, lstm, x, eps, p, reset=True)``, which bounds
  ``W h_T + b`` (plane fitting, plane validation and back-substitution, every
  step). Its own untargeted search (``get_max_eps.getUntargetedMaximumEps``)
  bounds the *logits* and certifies when ``lower(logit_y) > max_j upper(logit_j)``.
* vanilla RNN: ``vanilla_rnn/bound_vanilla_rnn.py``: ``RNN(n, s, C, T, act)``,
  ``extractWeight()`` and ``getLastLayerBound(eps, p, X)``. Its own search
  (``getMaximumEps(gx0_trick=True)``) is targeted and bounds the margin
  ``logit_y - logit_j`` directly (head replaced by ``W_y - W_j``).
* ``--spec native`` (default) keeps those criteria: logits for the LSTM,
  margins (all 9 targets at once, i.e. the gx0 trick with C = [e_y - e_j])
  for the RNN. ``--spec margins`` gives the LSTM the margin head
  ``C W_out, C b_out`` too, as popqorn_fast always does, so that only the
  relaxations differ.
* The reference's own bisection loops are not called: both use boolean-tensor
  subtraction (``search_copy - search``), which PyTorch >= 1.2 rejects, and the
  LSTM one stops after 10 bisection steps. Instead both tools run popqorn_fast's
  search (docs/RECURRENCES.md §5: eps0 = 0.1, double/halve, bisect until
  hi - lo <= rtol * lo), so the eps grids are identical.
* The reference runs in float32 (its code allocates float32 tensors), on CPU,
  with its prints silenced. ``--verify-bound`` turns on its sampling checks of
  every intermediate bound (``verify_bound=True``, what its own search does;
  off by default: they are checks, not part of the certificate, and cost time).
* The reference needs PyTorch 1.0's uint8-mask semantics (``1 - mask``,
  ``mask - mask``, ``.byte()`` masks); ``torch_1_0_masks()`` restores them for
  the duration of each reference call only (see its docstring).
* p = inf is passed to the LSTM as ``float('inf')`` and to the RNN as the string ``'inf'``: its last layer
  (``computeLast2sideBound``) only recognises the string and computes
  q = inf/(inf-1) = nan for ``float('inf')``.
* ReLU RNNs: the reference stores line offsets divided by slopes
  (``bl = bl/kl`` in ``compute2sideBound``) and its ReLU lines have slope 0 for
  inactive neurons (u <= 0), so any inactive neuron makes every bound NaN and
  nothing is certified; rows where the reference produced NaN bounds say so.
* ``vanilla_rnn`` imports torchvision at module level (for MNIST loading only);
  when torchvision is absent an empty stand-in module is registered so that the
  import succeeds (no torchvision code is used).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import argparse
import contextlib
import importlib
import platform
import sys
import time
import types
from pathlib import Path

import numpy as np

import popqorn_fast as pf
from popqorn_fast.bisection import search_radius

# module names that exist in both reference folders (lstm/ and vanilla_rnn/)
_CLASHING = ("utils", "get_bound_for_general_activation_function", "lstm", "lstm_utils",
             "bound_tanhx_sigmoidy", "bound_x_sigmoidy", "bound_vanilla_rnn")


def _purge(prefixes):
    for name in list(sys.modules):
        if name.split(".")[0] in prefixes:
            del sys.modules[name]


def _stub_torchvision():
    try:
        import torchvision  # noqa: F401
        return False
    except ImportError:
        tv = types.ModuleType("torchvision")
        tv.datasets = types.ModuleType("torchvision.datasets")
        tv.transforms = types.ModuleType("torchvision.transforms")
        sys.modules.update({"torchvision": tv, "torchvision.datasets": tv.datasets,
                            "torchvision.transforms": tv.transforms})
        return True


def import_reference(popqorn_dir: Path, kind: str):
    """Import the reference's module for `kind` ('lstm' or 'rnn') from the user's checkout."""
    _purge(_CLASHING)
    sys.path[:] = [p for p in sys.path if not p.startswith(str(popqorn_dir))]
    if kind == "lstm":
        sys.path[:0] = [str(popqorn_dir / "lstm"), str(popqorn_dir / "lstm" / "BoundTanhxSigmoidy")]
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            return importlib.import_module("lstm")
    sys.path[:0] = [str(popqorn_dir / "vanilla_rnn")]
    _stub_torchvision()
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        return importlib.import_module("bound_vanilla_rnn")


@contextlib.contextmanager
def torch_1_0_masks():
    """PyTorch 1.0 mask semantics for the reference's calls, undone afterwards.

    The reference was written for PyTorch 1.0/1.1, where comparisons returned
    uint8 0/1 tensors: it inverts masks with ``1 - mask``, subtracts masks
    (``a - b`` with b inside a) and builds masks with ``.byte()``. PyTorch >= 1.2
    returns bool masks and rejects ``-`` on them and assignment through uint8
    masks. Here, only while the reference runs: ``1 - boolmask`` is ``~mask``,
    ``boolmask - boolmask`` is ``a & ~b``, and ``.byte()`` gives a bool tensor
    (the reference uses it only to create masks), and ``mask[mask] = v`` (which
    PyTorch >= 1.x rejects as self-overlapping) indexes with a copy of the mask.
    Same values as on PyTorch 1.0.
    """
    import torch
    T = torch.Tensor
    rsub, sub, byte, setitem = T.__rsub__, T.__sub__, T.byte, T.__setitem__

    def new_rsub(self, other):
        if self.dtype == torch.bool and isinstance(other, (int, bool)) and other == 1:
            return ~self
        return rsub(self, other)

    def new_sub(self, other):
        if self.dtype == torch.bool and isinstance(other, torch.Tensor) and other.dtype == torch.bool:
            return self & ~other
        return sub(self, other)

    def new_setitem(self, key, value):
        if isinstance(key, torch.Tensor) and key.data_ptr() == self.data_ptr():
            key = key.clone()            # mask[mask] = ...: PyTorch 1.0 read the mask first
        return setitem(self, key, value)

    T.__rsub__, T.__sub__, T.byte = new_rsub, new_sub, lambda self, *a, **k: self.bool()
    T.__setitem__ = new_setitem
    try:
        yield
    finally:
        T.__rsub__, T.__sub__, T.byte, T.__setitem__ = rsub, sub, byte, setitem


def search(check, eps0=0.1, eps_max=10.0, rtol=1e-3, max_calls=200):
    """The eps search of shared/reference (double / halve from eps0, then bisect to rtol)
    around any certify-at-eps callable: popqorn_fast's search_radius with a yes/no
    predicate (plain bisection). Returns (eps, calls)."""
    res = search_radius(lambda e: bool(check(e)), eps_max, rtol, eps_start=eps0, max_passes=max_calls)
    return res.eps, res.passes


class ReferenceLSTM:
    def __init__(self, mod, w, spec, verify_bound):
        import torch
        self.torch, self.mod, self.verify_bound = torch, mod, verify_bound
        s, n = w.weight_hh.shape[1], w.weight_ih.shape[1]
        net = torch.nn.LSTM(n, s, num_layers=1, batch_first=True)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(net, name + "_l0").copy_(torch.tensor(getattr(w, name), dtype=torch.float32))
        self.net, self.s, self.spec = net, s, spec
        self.W = torch.tensor(w.out_weight, dtype=torch.float32)
        self.b = torch.tensor(w.out_bias, dtype=torch.float32)

    def check(self, x, label, eps):
        torch = self.torch
        xt = torch.tensor(x, dtype=torch.float32).unsqueeze(0)
        lstm = self.mod.My_lstm(self.net, torch.device("cpu"), self.W, self.b, xt.shape[1],
                                a0=torch.zeros(1, self.s), c0=torch.zeros(1, self.s))
        lstm.print_info = False
        if self.spec == "margins":
            C = _spec_matrix(self.W.shape[0], label)
            W, b = C @ self.W, C @ self.b
        else:
            W, b = self.W, self.b
        p = self._p   # float('inf') here: its sampling checks call torch.norm(p=...) with it
        with contextlib.redirect_stdout(open(os.devnull, "w")), torch_1_0_masks():
            lo, hi = self.mod.get_last_layer_bound(W, b, lstm, xt, torch.tensor([eps]), p,
                                                   verify_bound=self.verify_bound, reset=True)
        lo, hi = lo[0].double().numpy(), hi[0].double().numpy()
        self.saw_nan |= bool(np.isnan(lo).any() or np.isnan(hi).any())
        if self.spec == "margins":
            return bool(np.all(lo > 0))
        others = np.delete(hi, label)
        return bool(lo[label] > others.max())


class ReferenceRNN:
    def __init__(self, mod, w, spec, verify_bound):
        import torch
        self.torch, self.mod = torch, mod
        s, n = w.weight_hh.shape[1], w.weight_ih.shape[1]
        self.args = (n, s, w.out_weight.shape[0], w.activation)
        self.state = {"rnn.weight_ih_l0": w.weight_ih, "rnn.weight_hh_l0": w.weight_hh,
                      "rnn.bias_ih_l0": w.bias_ih, "rnn.bias_hh_l0": w.bias_hh,
                      "out.weight": w.out_weight, "out.bias": w.out_bias}
        self.state = {k: torch.tensor(v, dtype=torch.float32) for k, v in self.state.items()}

    def check(self, x, label, eps):
        torch = self.torch
        xt = torch.tensor(x, dtype=torch.float32).unsqueeze(0)
        n, s, C_out, act = self.args
        rnn = self.mod.RNN(n, s, C_out, xt.shape[1], act)
        rnn.load_state_dict(self.state)
        rnn.extractWeight(clear_original_model=False)
        C = _spec_matrix(C_out, label)
        # the reference's gx0 trick (it assigns Parameters too), every target at once
        rnn.W_fa = torch.nn.Parameter(C @ rnn.W_fa.detach(), requires_grad=False)
        rnn.b_f = torch.nn.Parameter(C @ rnn.b_f.detach(), requires_grad=False)
        p = "inf" if np.isinf(self._p) else self._p
        with contextlib.redirect_stdout(open(os.devnull, "w")), torch_1_0_masks():
            lo, _ = rnn.getLastLayerBound(eps, p, X=xt, clearIntermediateVariables=True)
        lo = lo[0].double().numpy()
        self.saw_nan |= bool(np.isnan(lo).any())
        return bool(np.all(lo > 0))


def _spec_matrix(C, label):
    import torch
    rows = [j for j in range(C) if j != label]
    M = torch.zeros(len(rows), C)
    for r, j in enumerate(rows):
        M[r, label], M[r, j] = 1.0, -1.0
    return M


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--popqorn-dir", required=True, type=Path,
                    help="checkout of github.com/ZhaoyangLyu/POPQORN (has lstm/ and vanilla_rnn/)")
    ap.add_argument("--models", nargs="+",
                    default=["tests/data/lstm_T4_h24.npz", "tests/data/rnn_tanh_T16_h16.npz"])
    ap.add_argument("--norms", nargs="+", default=["2", "inf"])
    ap.add_argument("-n", type=int, default=3, help="first n correctly classified stored inputs")
    ap.add_argument("--spec", choices=["native", "margins"], default="native")
    ap.add_argument("--verify-bound", action="store_true")
    ap.add_argument("--rtol", type=float, default=1e-3, help="popqorn_fast's search tolerance")
    ap.add_argument("--ref-rtol", type=float, default=1e-3,
                    help="the reference's search tolerance (raise it to bound the reference's run time)")
    ap.add_argument("--ref-eps0", default="0.1",
                    help="first eps tried for the reference: a number, or 'ours' (popqorn_fast's eps*, "
                         "which saves the reference a few bound passes)")
    ap.add_argument("--md", help="append the Markdown table to this file")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    pdir = args.popqorn_dir.expanduser().resolve()
    if not (pdir / "lstm" / "lstm.py").exists() or not (pdir / "vanilla_rnn" / "bound_vanilla_rnn.py").exists():
        sys.exit(f"--popqorn-dir {pdir}: expected lstm/lstm.py and vanilla_rnn/bound_vanilla_rnn.py")

    print(f"# python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
          f"popqorn_fast {getattr(pf, '__version__', '?')}, reference at {pdir}; "
          f"spec={args.spec}, verify_bound={args.verify_bound}, rtol ours={args.rtol}, "
          f"rtol ref={args.ref_rtol}, ref eps0={args.ref_eps0}")
    head = ("| model | p | input | ref eps | ours eps | ours/ref | ref s | ours s | ref/ours time | "
            "ref calls | ours passes |")
    lines = [head, "|" + "---|" * 11]
    print(head, flush=True)
    for path in args.models:
        w = pf.load_model(path)
        X, y = pf.load_inputs(path)
        name = Path(path).stem
        if isinstance(w, pf.LSTMWeights):
            ref = ReferenceLSTM(import_reference(pdir, "lstm"), w, args.spec, args.verify_bound)
        elif isinstance(w, pf.RNNWeights):
            ref = ReferenceRNN(import_reference(pdir, "rnn"), w, args.spec, args.verify_bound)
        else:
            print(f"{name}: the reference has no {type(w).__name__} certifier; skipped")
            continue
        pred = np.argmax(w.logits(X), axis=1)
        idx = [i for i in range(len(X)) if pred[i] == y[i]][: args.n]
        for norm in args.norms:
            ref._p = float(norm)
            ratios, rts = [], []
            for i in idx:
                t0 = time.perf_counter()
                c = pf.certify(w, X[i], eps_max=10.0, p=norm, label=int(y[i]), rtol=args.rtol)
                t_ours = time.perf_counter() - t0
                t0 = time.perf_counter()
                eps0 = c.eps if args.ref_eps0 == "ours" and c.eps > 0 else float(
                    0.1 if args.ref_eps0 == "ours" else args.ref_eps0)
                ref.saw_nan = False
                e_ref, calls = search(lambda e: ref.check(X[i], int(y[i]), e), eps0=eps0,
                                      rtol=args.ref_rtol)
                t_ref = time.perf_counter() - t0
                r = c.eps / e_ref if e_ref > 0 else float("inf")
                ratios.append(r)
                rts.append(t_ref / t_ours)
                e_txt = f"{e_ref:.6g}" + (" (NaN bounds)" if ref.saw_nan else "")
                row = (f"| {name} | {norm} | {i} | {e_txt} | {c.eps:.6g} | {r:.4f} | {t_ref:.3g} | "
                       f"{t_ours:.3g} | {t_ref / t_ours:.3g} | {calls} | {c.bound_passes} |")
                print(row, flush=True)
                lines.append(row)
            row = (f"| {name} | {norm} | mean | | | {np.mean(ratios):.4f} | | | {np.mean(rts):.3g} | | |")
            print(row, flush=True)
            lines.append(row)
    if args.md:
        with open(args.md, "a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
