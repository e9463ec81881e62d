"""The ``popqorn-fast`` command line: certify saved models from the shell, re-check
saved certificates, and draw per-frame sensitivity.

    popqorn-fast certify                      # bundled model, a few bundled inputs, p = 1, 2, inf
    popqorn-fast certify MODEL INPUTS --norm 2 --frames 0 3 --threads 2 --out certs.json
    popqorn-fast verify certs.json [MODEL]    # exit 1 if any certificate fails the re-check
    popqorn-fast sensitivity MODEL INPUTS --index 0 --plot out.png

MODEL: ``.npz`` / ``.safetensors`` with PyTorch parameter names, or ``.onnx``.
INPUTS: ``.npy`` (N, T, n) or (T, n), or ``.npz`` with ``X`` and optional labels ``y``
(default: the model ``.npz``'s own ``X``/``y`` when it stores them).

Exit codes: 0 success; 1 ``verify`` found a certificate that does not hold;
2 a usage or input error (message on stderr); 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from . import __version__
from .backend import PLANE_METHODS
from .certificate import Certificate, input_sha256, model_sha256
from .certify import _ProgressBar, bound_margins, certify, certify_many
from .model_io import default_model_path, load_inputs, load_model
from .specification import margin_classes
from .validation import p_name, parse_p

CERTS_FORMAT = "popqorn_fast.certificates/1"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """An error a shell user can act on (printed without a traceback, exit code 2)."""


# ----------------------------------------------------------------------------- loading

def _load(args: argparse.Namespace) -> tuple[Any, np.ndarray, Optional[np.ndarray], str, str]:
    """(weights, X, y, model path, inputs path) from MODEL / INPUTS / --count."""
    model_path = args.model or str(default_model_path())
    weights = load_model(model_path)
    inputs = args.inputs
    if inputs is None:
        stored = Path(model_path).suffix.lower() == ".npz" and "X" in np.load(model_path).files
        if not stored:
            raise CliError(f"INPUTS is required: {model_path} stores no inputs (give a .npy array (N, T, n) "
                           f"or a .npz with X and optional y)")
        inputs = model_path
    X, y = load_inputs(inputs)
    count = args.count if args.count is not None else (5 if args.model is None and args.inputs is None else None)
    if count is not None:
        if count < 1:
            raise CliError(f"--count must be >= 1, got {count}")
        X, y = X[:count], (None if y is None else y[:count])
    if X.shape[2] != weights.input_size:
        raise CliError(f"{inputs}: inputs have {X.shape[2]} values per frame, but the model {model_path} "
                       f"takes {weights.input_size} (inputs must have shape (N, T, {weights.input_size}))")
    return weights, X, y, str(model_path), str(inputs)


def _norms(arg: Optional[str], default: Sequence[str]) -> list[float]:
    out = [parse_p(s) for s in (arg.split(",") if arg else default)]
    if len(set(out)) != len(out):
        raise CliError(f"--norm lists a norm twice: {arg}")
    return out


# ----------------------------------------------------------------------------- certify

def _nice_grid(values: np.ndarray, eps_max: float) -> list[float]:
    """Three 1-2-5 radii around the median certified ε (for the summary)."""
    pos = values[values > 0]
    if pos.size == 0:
        return [eps_max * 1e-3, eps_max * 1e-2, eps_max * 1e-1]
    med = float(np.median(pos))
    series = [m * 10.0 ** e for e in range(-12, 6) for m in (1.0, 2.0, 5.0)]
    k = int(np.argmin([abs(np.log(s / med)) for s in series]))
    return [series[k - 1], series[k], series[k + 1]]


def _summary(norm: float, certs: list[Certificate], at: Optional[list[float]], eps_max: float) -> list[str]:
    eps = np.array([c.eps for c in certs])
    ok = np.array([not c.misclassified for c in certs])
    grid = at or _nice_grid(eps[ok], eps_max)
    lines = [f"p = {p_name(norm)}: {len(certs)} input(s), {int((~ok).sum())} misclassified"]
    if ok.any():
        lines.append(f"  eps* over the {int(ok.sum())} correctly classified: mean {eps[ok].mean():.6g}, "
                     f"median {np.median(eps[ok]):.6g}, min {eps[ok].min():.6g}, max {eps[ok].max():.6g}")
    lines.append("  certified fraction (of all inputs): " + ", ".join(
        f"eps {e:.3g}: {np.mean(ok & (eps >= e)):.3f}" for e in grid))
    lines.append(f"  seconds: {sum(c.seconds for c in certs):.2f} search time, "
                 f"{sum(c.bound_passes for c in certs)} bound passes")
    return lines


def cmd_certify(args: argparse.Namespace) -> int:
    weights, X, y, model_path, inputs_path = _load(args)
    bundled = args.model is None
    norms = _norms(args.norm, ["1", "2", "inf"] if bundled else ["2"])
    labels = None if (y is None or args.ignore_labels) else y
    N = len(X)
    print(f"model: {model_path} ({weights.summary}, T = {X.shape[1]}, "
          f"n = {X.shape[2]}, {weights.num_classes} classes); planes = {args.planes}; "
          f"eps_max = {args.eps_max:g}")
    bar = _ProgressBar(N * len(norms), label="certify") if not args.no_progress else None
    t_all = time.perf_counter()
    results: list[list[Certificate]] = []
    for k, p in enumerate(norms):
        cb: Any = False if bar is None else (lambda done, total, k=k: bar(k * N + done))
        results.append(certify_many(weights, X, labels, eps_max=args.eps_max, p=p, target=args.target,
                                    frames=args.frames, rtol=args.rtol, planes=args.planes,
                                    threads=args.threads, progress=cb))
    wall = time.perf_counter() - t_all
    print(f"{'input':>5} {'label':>5} " + " ".join(f"{'eps* p=' + p_name(p):>13}" for p in norms)
          + f" {'seconds':>8}")
    for i in range(N):
        certs = [r[i] for r in results]
        cells = " ".join(f"{'misclassified' if c.misclassified else format(c.eps, '.6g'):>13}" for c in certs)
        print(f"{i:>5} {certs[0].label:>5} {cells} {sum(c.seconds for c in certs):>8.3f}")
    print("summary:")
    for p, certs in zip(norms, results):
        for line in _summary(p, certs, args.at, args.eps_max):
            print("  " + line)
    print(f"  {N} input(s) x {len(norms)} norm(s) in {wall:.2f} s wall")
    if args.out:
        _write_certs(args.out, model_path, weights, inputs_path, X, results, args)
        print(f"wrote {len(norms) * N} certificate(s) to {args.out}")
    return EXIT_OK


def _write_certs(out: str, model_path: str, weights: Any, inputs_path: str, X: np.ndarray,
                 results: list[list[Certificate]], args: argparse.Namespace) -> None:
    """The certificates file: the model's path and hash, every input itself, every certificate."""
    doc = {
        "format": CERTS_FORMAT,
        "version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {"path": str(Path(model_path).resolve()), "sha256": model_sha256(weights),
                  "kind": weights.kind},
        "inputs": {"path": str(Path(inputs_path).resolve()),
                   "sequences": [{"index": i, "sha256": input_sha256(x),
                                  "x": np.asarray(x, dtype=np.float64).tolist()} for i, x in enumerate(X)]},
        "settings": {"eps_max": args.eps_max, "rtol": args.rtol, "planes": args.planes,
                     "frames": args.frames, "target": args.target},
        "certificates": [{"input": i, **c.to_dict()} for certs in results for i, c in enumerate(certs)],
    }
    try:
        with open(out, "w") as fh:
            json.dump(doc, fh, indent=1)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror}") from exc


# ----------------------------------------------------------------------------- verify

def _read_certs(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"certificates file not found: {p}")
    try:
        doc = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"{p} is not a JSON file: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != CERTS_FORMAT:
        raise CliError(f"{p} is not a certificates file written by 'popqorn-fast certify --out' "
                       f"(expected format {CERTS_FORMAT!r})")
    for key in ("model", "inputs", "certificates"):
        if key not in doc:
            raise CliError(f"{p}: missing {key!r}; found {sorted(doc)}")
    return doc


def _check_one(weights: Any, mhash: str, rec: dict[str, Any], seqs: dict[int, dict[str, Any]],
               rtol: float, atol: float) -> Optional[str]:
    """None if the certificate holds, else the reason it does not."""
    try:
        cert = Certificate.from_dict(rec)
    except (ValueError, TypeError) as exc:
        return f"unreadable record: {exc}"
    if cert.model_sha256 != mhash:
        return (f"model SHA-256 {str(cert.model_sha256)[:12]}... differs from the given model's "
                f"{mhash[:12]}... (a certificate for another model)")
    seq = seqs.get(rec.get("input", -1))
    if seq is None:
        return f"input {rec.get('input')!r} is not stored in the file"
    x = np.asarray(seq["x"], dtype=np.float64)
    h = input_sha256(x)
    if h != cert.input_sha256 or h != seq.get("sha256"):
        return f"input SHA-256 {h[:12]}... does not match the recorded {str(cert.input_sha256)[:12]}..."
    if x.ndim != 2 or x.shape[1] != weights.input_size:
        return f"input of shape {x.shape} does not fit the model (n = {weights.input_size})"
    predicted = int(np.argmax(weights.logits(x)))
    if cert.misclassified:
        return None if predicted != cert.label else f"marked misclassified, but the model predicts {cert.label}"
    if cert.eps == 0.0:
        return None  # nothing was certified, nothing is claimed
    if not np.isfinite(cert.eps) or cert.eps < 0:
        return f"eps = {cert.eps} is not a radius"
    try:
        classes = margin_classes(cert.label, weights.num_classes, cert.target)
        lower, _ = bound_margins(weights, x, cert.eps, p=cert.p, target=cert.target, frames=cert.frames,
                                 planes=cert.planes, label=cert.label)
    except (ValueError, TypeError) as exc:
        return f"cannot recompute: {exc}"
    if cert.classes is not None and list(cert.classes) != [int(c) for c in classes]:
        return f"margin classes {list(cert.classes)} do not match {[int(c) for c in classes]}"
    saved = np.asarray(cert.margin_lower, dtype=np.float64)
    if saved.shape != lower.shape:
        return f"{saved.size} saved margin bounds, {lower.size} recomputed"
    if not np.all(lower > 0.0):
        j = int(np.argmin(lower))
        return f"not certified at eps = {cert.eps:.6g}: margin lower bound vs class {int(classes[j])} is {lower[j]:.6g}"
    if not np.allclose(lower, saved, rtol=rtol, atol=atol):
        j = int(np.argmax(np.abs(lower - saved)))
        return (f"saved margin lower bound vs class {int(classes[j])} is {saved[j]:.17g}, "
                f"recomputed {lower[j]:.17g}")
    return None


def cmd_verify(args: argparse.Namespace) -> int:
    doc = _read_certs(args.certs)
    model_path = args.model or doc["model"].get("path")
    if not model_path:
        raise CliError(f"{args.certs} records no model path; give MODEL")
    weights = load_model(model_path)
    mhash = model_sha256(weights)
    if mhash != doc["model"].get("sha256"):
        print(f"warning: {model_path} is not the model the certificates were computed for "
              f"(SHA-256 {mhash[:12]}... vs recorded {str(doc['model'].get('sha256'))[:12]}...)", file=sys.stderr)
    if doc.get("version") != __version__:
        print(f"note: certificates written by popqorn_fast {doc.get('version')}, checking with {__version__}",
              file=sys.stderr)
    seqs = {int(s["index"]): s for s in doc["inputs"].get("sequences", [])}
    recs = doc["certificates"]
    bar = _ProgressBar(len(recs), label="verify") if not args.no_progress else None
    failed = 0
    checked = 0
    for k, rec in enumerate(recs):
        reason = _check_one(weights, mhash, rec, seqs, args.rtol, args.atol)
        if reason is None:
            checked += 1
        else:
            failed += 1
            print(f"FAIL certificate {k} (input {rec.get('input')}, p = {rec.get('p')}, eps = {rec.get('eps')}): "
                  f"{reason}")
        if bar is not None:
            bar(k + 1)
    print(f"verified {len(recs)} certificate(s) against {model_path}: {checked} hold, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


# ----------------------------------------------------------------------------- sensitivity

def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels (e.g. 800x480), got {text!r}") from None
    return w, h


def cmd_sensitivity(args: argparse.Namespace) -> int:
    weights, X, y, _, _ = _load(args)
    if not 0 <= args.index < len(X):
        raise CliError(f"--index {args.index} out of range: the inputs file holds {len(X)} sequence(s)")
    if args.plot:  # fail before the work if matplotlib is missing
        from .plots import _matplotlib
        _matplotlib()
    p = parse_p(args.norm or "2")
    x = np.asarray(X[args.index], dtype=np.float64)
    T = x.shape[0]
    label = None if (y is None or args.ignore_labels) else int(y[args.index])
    bar = _ProgressBar(T, label="sensitivity") if not args.no_progress else None
    eps = np.zeros(T)
    misclassified = False
    for t in range(T):
        c = certify(weights, x, args.eps_max, p=p, frames=[t], rtol=args.rtol, planes=args.planes, label=label)
        eps[t], misclassified = c.eps, c.misclassified
        if bar is not None:
            bar(t + 1)
    if misclassified:
        print(f"input {args.index} is misclassified (label {label}, prediction "
              f"{int(np.argmax(weights.logits(x)))}): every frame's eps is 0")
    print(f"per-frame certified eps (p = {p_name(p)}, only that frame moves), input {args.index}:")
    top = float(eps.max()) if eps.max() > 0 else 1.0
    for t, e in enumerate(eps):
        print(f"  frame {t:>3}: {e:<12.6g} {'#' * int(round(30 * e / top))}")
    if args.plot:
        from .plots import plot_sensitivity
        plot_sensitivity(x, eps, args.plot, p=p, kind=args.plot_kind, image_shape=args.image_shape,
                         size=args.plot_size, title=f"input {args.index}: per-frame certified eps")
        print(f"wrote {args.plot} ({args.plot_size[0]}x{args.plot_size[1]} PNG)")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    """The ``popqorn-fast`` argument parser (sub-commands certify, verify, sensitivity)."""
    ap = argparse.ArgumentParser(
        prog="popqorn-fast", description="Certified robustness radii for RNN/LSTM/GRU classifiers (POPQORN).",
        epilog="exit codes: 0 success, 1 a certificate failed verification, 2 usage or input error")
    ap.add_argument("--version", action="version", version=f"popqorn_fast {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="{certify,verify,sensitivity}")

    def positive(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (np.isfinite(v) and v > 0):
            raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
        return v

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("model", nargs="?", help="model: .npz / .safetensors with PyTorch names, or .onnx "
                                                 "(default: the bundled LSTM)")
        sp.add_argument("inputs", nargs="?", help="inputs: .npy (N, T, n) or .npz with X and optional y "
                                                  "(default: the model .npz's own X, y)")
        sp.add_argument("--eps-max", type=positive, default=10.0, help="cap of the radius search (default 10)")
        sp.add_argument("--rtol", type=positive, default=1e-3, help="relative accuracy of the search (default 1e-3)")
        sp.add_argument("--planes", default="exact", choices=list(PLANE_METHODS),
                        help="relaxation of the LSTM/GRU products (default exact)")
        sp.add_argument("--count", type=int, help="use only the first COUNT inputs (default: 5 of the bundled "
                                                  "inputs without MODEL, else all)")
        sp.add_argument("--ignore-labels", action="store_true", help="certify predictions even if labels are stored")
        sp.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    c = sub.add_parser("certify", help="certified radius per input (a table, a summary, optional JSON)")
    common(c)
    c.add_argument("--norm", help="norm(s) 1, 2, inf, comma-separated (default 2; 1,2,inf without MODEL)")
    c.add_argument("--frames", type=int, nargs="+", help="perturbed frames (0-based; default all)")
    c.add_argument("--target", type=int, help="certify against this class only (default: every other class)")
    c.add_argument("--threads", type=int, help="worker threads (default 1)")
    c.add_argument("--at", type=positive, nargs="+", help="radii for the certified-fraction summary")
    c.add_argument("--out", help="write the certificates (with the inputs and hashes) as JSON")
    c.set_defaults(func=cmd_certify)

    v = sub.add_parser("verify", help="re-check saved certificates; exit 1 if any fails")
    v.add_argument("certs", help="a JSON file written by 'popqorn-fast certify --out'")
    v.add_argument("model", nargs="?", help="the model (default: the path recorded in the file)")
    v.add_argument("--rtol", type=float, default=1e-9, help="tolerance on the recomputed margins (default 1e-9)")
    v.add_argument("--atol", type=float, default=1e-12, help="absolute tolerance (default 1e-12)")
    v.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    v.set_defaults(func=cmd_verify)

    s = sub.add_parser("sensitivity", help="certified radius of each single frame (optional PNG)")
    common(s)
    s.add_argument("--norm", help="norm 1, 2 or inf (default 2)")
    s.add_argument("--index", type=int, default=0, help="which input of INPUTS (default 0)")
    s.add_argument("--plot", help="write a PNG (needs matplotlib: pip install popqorn_fast[plot])")
    s.add_argument("--plot-kind", default="auto", choices=["auto", "image", "bar"],
                   help="image: the input with each frame shaded by its eps; bar: a bar chart "
                        "(default auto: image for image-like inputs)")
    s.add_argument("--image-shape", type=_size, help="HxW of the picture the frames cut (default square)")
    s.add_argument("--plot-size", type=_size, default=(800, 480), help="PNG size WIDTHxHEIGHT (default 800x480)")
    s.set_defaults(func=cmd_sensitivity)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 verification failed, 2 error)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("popqorn-fast: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CliError, ValueError, FileNotFoundError, TypeError, ImportError, OSError) as exc:
        print(f"popqorn-fast: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
