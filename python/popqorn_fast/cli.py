"""The ``popqorn-fast`` command line: certify saved models from the shell.

    popqorn-fast certify                      # bundled model, a few bundled inputs, p = 1, 2, inf
    popqorn-fast certify MODEL.npz INPUTS.npy --norm 2 --frames 0 3 --out certs.json
    popqorn-fast sensitivity MODEL.npz INPUTS.npy --index 0
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from . import __version__
from .certify import certify, sensitivity
from .model_io import default_model_path, load_inputs, load_model
from .validation import p_name, parse_p


class CliError(Exception):
    """An error a shell user can act on (printed without a traceback, exit code 2)."""


def _load(args: argparse.Namespace) -> tuple[Any, np.ndarray, Optional[np.ndarray], str]:
    model_path = args.model or str(default_model_path())
    weights = load_model(model_path)
    inputs = args.inputs or (model_path if args.model is None else None)
    if inputs is None:
        raise CliError("INPUTS is required with a MODEL (a .npy array (N, T, n) or a .npz with X and optional y)")
    X, y = load_inputs(inputs)
    if args.model is None and args.inputs is None:
        X, y = X[: args.count], (None if y is None else y[: args.count])
    return weights, X, y, model_path


def _norms(arg: Optional[str], default: Sequence[str]) -> list[float]:
    return [parse_p(s) for s in (arg.split(",") if arg else default)]


def cmd_certify(args: argparse.Namespace) -> int:
    weights, X, y, model_path = _load(args)
    norms = _norms(args.norm, ["1", "2", "inf"] if args.model is None else ["2"])
    records: list[dict[str, Any]] = []
    head = f"{'input':>5} {'label':>5} " + " ".join(f"{'eps* p=' + p_name(p):>13}" for p in norms) + f" {'seconds':>8}"
    print(f"model: {model_path} ({weights.kind.upper()}, hidden {weights.hidden_size}, "
          f"T = {X.shape[1]}, n = {X.shape[2]}); planes = {args.planes}")
    print(head)
    t_all = time.perf_counter()
    for i, x in enumerate(X):
        label = None if (y is None or args.ignore_labels) else int(y[i])
        t0 = time.perf_counter()
        certs = [certify(weights, x, args.eps_max, p=p, target=args.target, frames=args.frames,
                         label=label, planes=args.planes) for p in norms]
        secs = time.perf_counter() - t0
        lab = certs[0].label
        cells = " ".join(f"{'misclassified' if c.misclassified else format(c.eps, '.6g'):>13}" for c in certs)
        print(f"{i:>5} {lab:>5} {cells} {secs:>8.3f}")
        for c in certs:
            records.append({"input": i, **c.to_dict()})
    print(f"{len(X)} input(s), {time.perf_counter() - t_all:.2f} s")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"version": __version__, "model": model_path, "certificates": records}, fh, indent=1)
        print(f"wrote {args.out}")
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    weights, X, _, _ = _load(args)
    if not 0 <= args.index < len(X):
        raise CliError(f"--index {args.index} out of range: the inputs file holds {len(X)} sequence(s)")
    p = parse_p(args.norm or "2")
    eps = sensitivity(weights, X[args.index], args.eps_max, p=p, planes=args.planes)
    print(f"per-frame certified eps (p = {p_name(p)}), input {args.index}:")
    for t, e in enumerate(eps):
        print(f"  frame {t:>3}: {e:.6g}")
    if args.plot:
        from .plots import plot_sensitivity
        plot_sensitivity(X[args.index], eps, args.plot)
        print(f"wrote {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="popqorn-fast", description="Certified robustness radii for RNN/LSTM/GRU classifiers.")
    ap.add_argument("--version", action="version", version=f"popqorn_fast {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("model", nargs="?", help="model .npz with PyTorch parameter names (default: the bundled model)")
        sp.add_argument("inputs", nargs="?", help="inputs .npy (N, T, n) or .npz with X and optional y")
        sp.add_argument("--norm", help="norm(s): 1, 2, inf, comma-separated")
        sp.add_argument("--eps-max", type=float, default=10.0, help="cap of the radius search (default 10)")
        sp.add_argument("--planes", default="exact", choices=["exact", "1d", "constant"])
        sp.add_argument("--count", type=int, default=5, help="bundled inputs to use without MODEL (default 5)")

    c = sub.add_parser("certify", help="certified radius per input")
    common(c)
    c.add_argument("--frames", type=int, nargs="+", help="perturbed frames (0-based; default all)")
    c.add_argument("--target", type=int, help="certify against this class only")
    c.add_argument("--ignore-labels", action="store_true", help="certify predictions even if labels are stored")
    c.add_argument("--out", help="write certificates as JSON")
    c.set_defaults(func=cmd_certify)

    s = sub.add_parser("sensitivity", help="certified radius of each single frame")
    common(s)
    s.add_argument("--index", type=int, default=0, help="which input of INPUTS (default 0)")
    s.add_argument("--plot", help="write a PNG of the per-frame radii (needs matplotlib)")
    s.set_defaults(func=cmd_sensitivity)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (CliError, ValueError, FileNotFoundError, TypeError) as exc:
        print(f"popqorn-fast: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
