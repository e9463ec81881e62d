"""The ``popqorn-fast`` command line: certify saved models from the shell (dataset runs:
dataset_run.py), re-check saved certificates, plot accuracy against ε, and draw per-frame
sensitivity.

    popqorn-fast certify                      # bundled model, a few bundled inputs, p = 1, 2, inf
    popqorn-fast certify MODEL INPUTS --norm 2 --frames 0 3 --threads 2 --out certs.jsonl
    popqorn-fast substitutions MODEL INPUTS --candidates CANDS.npz --budget 2 --out subs.jsonl
    popqorn-fast certify MODEL INPUTS --out certs.jsonl --resume   # continue an interrupted run
    popqorn-fast verify certs.jsonl [MODEL]   # exit 1 if any certificate fails the re-check
    popqorn-fast plot certs.jsonl --out acc.png
    popqorn-fast sensitivity MODEL INPUTS --index 0 --plot out.png

MODEL: ``.npz`` / ``.safetensors`` with PyTorch parameter names, or ``.onnx``.
INPUTS: ``.npy`` (N, T, n) or (T, n), or ``.npz`` with ``X`` and optional labels ``y``
(default: the model ``.npz``'s own ``X``/``y`` when it stores them).

Exit codes: 0 success; 1 ``verify`` found a certificate that does not hold;
2 a usage or input error (message on stderr); 3 some inputs could not be certified
(their errors are recorded); 130 / 143 stopped by SIGINT / SIGTERM.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from . import __version__
from .backend import PLANE_METHODS, ROUNDING_MODES
from .certificate import Certificate, input_sha256, model_sha256
from .certify import _ProgressBar, bound_margins, certify
from .dataset_run import EXIT_INCOMPLETE, RunInterrupted, RunSpec, run_dataset  # noqa: F401 (exit code)
from .model_io import default_model_path, load_inputs, load_model
from .records import FORMAT as CERTS_FORMAT  # noqa: F401 (what --out writes)
from .records import RecordsError, open_certs
from .specification import margin_classes
from .streaming import BlockReader, InputSource, open_inputs
from .threat import ball_keywords
from .validation import check_class, frame_mask, p_name, parse_p

LEGACY_CERTS_FORMAT = "popqorn_fast.certificates/1"  # the single-JSON file of 0.1.0 (still read)
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class CliError(Exception):
    """An error a shell user can act on (printed without a traceback, exit code 2)."""


# ----------------------------------------------------------------------------- loading

def _inputs_path(args: argparse.Namespace, model_path: str) -> str:
    """INPUTS, or the model .npz itself where it stores its inputs (X, y)."""
    if args.inputs is not None:
        return args.inputs
    stored = Path(model_path).suffix.lower() == ".npz" and "X" in np.load(model_path).files
    if not stored:
        raise CliError(f"INPUTS is required: {model_path} stores no inputs (give a .npy array (N, T, n) "
                       f"or a .npz with X and optional y)")
    return model_path


def _load(args: argparse.Namespace) -> tuple[Any, np.ndarray, Optional[np.ndarray], str, str]:
    """(weights, X, y, model path, inputs path) from MODEL / INPUTS / --count."""
    model_path = args.model or str(default_model_path())
    weights = load_model(model_path)
    inputs = _inputs_path(args, model_path)
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

def _source(args: argparse.Namespace, weights: Any, model_path: str) -> InputSource:
    """The inputs of a certify run, read a chunk at a time (``.npy``: memory-mapped)."""
    inputs = _inputs_path(args, model_path)
    count = args.count if args.count is not None else (5 if args.model is None and args.inputs is None else None)
    if count is not None and count < 1:
        raise CliError(f"--count must be >= 1, got {count}")
    labels = None
    if args.labels:
        if not Path(args.labels).exists():
            raise FileNotFoundError(f"labels file not found: {args.labels}")
        labels = np.load(args.labels, allow_pickle=False)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise CliError(f"--labels {args.labels}: expected a .npy of N integers, got shape {labels.shape}, "
                           f"dtype {labels.dtype}")
    src = open_inputs(inputs, count, labels)
    if args.ignore_labels:
        src = InputSource(src.path, src.shape, None, src._dtype, src._offset, src._array)
    if src.shape[2] != weights.input_size:
        raise CliError(f"{inputs}: inputs have {src.shape[2]} values per frame, but the model {model_path} "
                       f"takes {weights.input_size} (inputs must have shape (N, T, {weights.input_size}))")
    if src.labels is not None:
        bad = (src.labels < 0) | (src.labels >= weights.num_classes)
        if bad.any():
            raise CliError(f"labels must be classes 0..{weights.num_classes - 1}; input {int(np.argmax(bad))} "
                           f"has label {int(src.labels[np.argmax(bad)])}")
    return src


def _threat_args(args: argparse.Namespace, T: int) -> Optional[dict[str, Any]]:
    """--ball, --frame-weights, --domain as certify's keywords (None: the per-frame ball)."""
    if args.ball == "frame" and args.frame_weights is None and args.domain is None:
        return None
    if args.frame_weights is not None and len(args.frame_weights) != T:
        raise CliError(f"--frame-weights needs one multiplier per frame (T = {T}), got {len(args.frame_weights)}")
    if args.domain is not None and not args.domain[0] <= args.domain[1]:
        raise CliError(f"--domain LO HI needs LO <= HI, got {args.domain[0]} {args.domain[1]}")
    return dict(ball=args.ball, frame_weights=None if args.frame_weights is None else list(args.frame_weights),
                domain=None if args.domain is None else tuple(args.domain))


def cmd_certify(args: argparse.Namespace) -> int:
    model_path = args.model or str(default_model_path())
    weights = load_model(model_path)
    src = _source(args, weights, model_path)
    bundled = args.model is None
    norms = _norms(args.norm, ["1", "2", "inf"] if bundled else ["2"])
    if args.resume and not args.out:
        raise CliError("--resume continues the file given by --out; add --out FILE")
    if args.plot:  # fail before the work if matplotlib is missing or the suffix is wrong
        from .plots import _matplotlib
        _matplotlib()
        if Path(args.plot).suffix.lower() not in (".png", ".svg"):
            raise CliError(f"--plot {args.plot}: the image must end in .png or .svg")
    if args.threads is not None and args.threads < 1:
        raise CliError(f"--threads must be >= 1, got {args.threads}")
    frame_mask(args.frames, src.shape[1])
    if args.target is not None:
        check_class(args.target, weights.num_classes, "--target")
    attack = None
    if args.attack:
        attack = {"steps": args.attack_steps, "restarts": args.attack_restarts, "seed": args.attack_seed}
    threat = _threat_args(args, src.shape[1])
    spec = RunSpec(weights, model_path, src, tuple(norms), args.eps_max, args.rtol, args.planes,
                   None if args.frames is None else tuple(sorted(args.frames)), args.target, attack,
                   args.store_inputs, threat, args.rounding)
    N, T, n = src.shape
    print(f"model: {model_path} ({weights.summary}, T = {T}, "
          f"n = {n}, {weights.num_classes} classes); planes = {args.planes}; rounding = {args.rounding}; "
          f"eps_max = {args.eps_max:g}", flush=True)
    code = run_dataset(spec, args.out, resume=args.resume, threads=args.threads, progress=not args.no_progress,
                       at=args.at, fsync_interval=args.fsync_interval)
    if args.plot:
        from .curves import plot_accuracy
        plot_accuracy(args.out, args.plot)
        print(f"wrote {args.plot}")
    return code


# ----------------------------------------------------------------------------- verify

def _check_one(weights: Any, mhash: str, rec: dict[str, Any], x: Optional[np.ndarray],
               rtol: float, atol: float) -> Optional[str]:
    """None if the certificate holds, else the reason it does not (``x``: the input, None if unknown)."""
    if "robust" in rec:
        return _check_substitution(weights, mhash, rec, x)
    try:
        cert = Certificate.from_dict(rec)
    except (ValueError, TypeError) as exc:
        return f"unreadable record: {exc}"
    if cert.model_sha256 != mhash:
        return (f"model SHA-256 {str(cert.model_sha256)[:12]}... differs from the given model's "
                f"{mhash[:12]}... (a certificate for another model)")
    if x is None:
        return (f"input {rec.get('input')!r} is neither stored in the file nor found in an inputs file "
                f"(give the inputs with --inputs)")
    h = input_sha256(x)
    if h != cert.input_sha256:
        return f"input SHA-256 {h[:12]}... does not match the recorded {str(cert.input_sha256)[:12]}..."
    if x.ndim != 2 or x.shape[1] != weights.input_size:
        return f"input of shape {x.shape} does not fit the model (n = {weights.input_size})"
    predicted = int(np.argmax(weights.logits(x)))
    if cert.misclassified:
        return None if predicted != cert.label else f"marked misclassified, but the model predicts {cert.label}"
    a = rec.get("attack_eps")
    if a is not None and float(a) < cert.eps:
        return (f"the recorded attack radius {float(a):.6g} is below the certified eps = {cert.eps:.6g} "
                f"(an adversarial example inside a certified ball)")
    if cert.eps == 0.0:
        return None  # nothing was certified, nothing is claimed
    if not np.isfinite(cert.eps) or cert.eps < 0:
        return f"eps = {cert.eps} is not a radius"
    if cert.eps_relaxed is not None and not cert.eps_relaxed >= cert.eps:
        return (f"not certified: eps = {cert.eps:.6g} exceeds eps_relaxed = {cert.eps_relaxed:.6g}, the radius "
                f"whose relaxations are said to prove it (they prove smaller balls only)")
    try:
        classes = margin_classes(cert.label, weights.num_classes, cert.target)
        lower, _ = bound_margins(weights, x, cert.eps, p=cert.p, target=cert.target, frames=cert.frames,
                                 planes=cert.planes, label=cert.label, rounding=cert.rounding,
                                 relaxed_at=cert.eps_relaxed, **ball_keywords(cert.threat))
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
        if cert.version != __version__:  # another version's relaxations: these bounds prove the claim anew
            return None
        j = int(np.argmax(np.abs(lower - saved)))
        return (f"saved margin lower bound vs class {int(classes[j])} is {saved[j]:.17g}, "
                f"recomputed {lower[j]:.17g}")
    return None


def _check_substitution(weights: Any, mhash: str, rec: dict[str, Any], x: Optional[np.ndarray]) -> Optional[str]:
    """:func:`_check_one` for a substitution certificate: the bound pass again over its recorded
    candidates and budget; a claimed "robust" must still be proven."""
    from .substitutions import SubstitutionCertificate, substitution_bounds
    try:
        cert = SubstitutionCertificate.from_dict(rec)
    except (ValueError, TypeError) as exc:
        return f"unreadable record: {exc}"
    if cert.model_sha256 != mhash:
        return "model SHA-256 differs from the given model's (a certificate for another model)"
    if x is None or input_sha256(x) != cert.input_sha256:
        return "input missing or its SHA-256 does not match the recorded one"
    if not cert.robust:
        return None  # nothing is claimed
    try:
        subs = [np.asarray(s, dtype=np.float64).reshape(-1, x.shape[1]) for s in cert.threat["substitutions"]]
        lower = substitution_bounds(weights, x, subs, cert.threat["budget"], cert.target, cert.label,
                                    cert.planes, rounding=cert.rounding)["lower"]
    except (ValueError, TypeError, KeyError) as exc:
        return f"cannot recompute: {exc}"
    if not np.all(lower > 0.0):
        return f"not robust: margin lower bound {float(lower.min()):.6g} over the recorded substitutions"
    return None


def _verify_inputs(args: argparse.Namespace, header: dict[str, Any]) -> Optional[BlockReader]:
    """The inputs file of a JSON Lines certificates file (``--inputs`` or the recorded path)."""
    path = args.inputs or header.get("inputs", {}).get("path")
    if not path or not Path(path).exists():
        return None
    return BlockReader(open_inputs(path), 256)


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        cf = open_certs(args.certs)
    except RecordsError as exc:
        raise CliError(str(exc)) from exc
    doc = cf.header
    model_path = args.model or doc["model"].get("path")
    if not model_path:
        raise CliError(f"{args.certs} records no model path; give MODEL")
    weights = load_model(model_path)
    mhash = model_sha256(weights)
    if mhash != doc["model"].get("sha256"):
        print(f"warning: {model_path} is not the model the certificates were computed for "
              f"(SHA-256 {mhash[:12]}... vs recorded {str(doc['model'].get('sha256'))[:12]}...)", file=sys.stderr)
    if doc.get("version") != __version__:
        print(f"note: certificates written by popqorn_fast {doc.get('version')}, checking with {__version__}: "
              f"their margin bounds are recomputed with this version's relaxations, which must still certify "
              f"each saved eps but need not reproduce the saved bounds", file=sys.stderr)
    reader = None if cf.legacy else _verify_inputs(args, doc)
    if reader is None and not cf.legacy and args.inputs:
        raise FileNotFoundError(f"inputs file not found: {args.inputs}")
    total = sum(1 for line in cf.lines()) if not args.no_progress else 0
    bar = _ProgressBar(total, label="verify") if not args.no_progress else None
    failed = checked = unreadable = errors = 0
    ended = False
    k = -1
    for n, line in enumerate(cf.lines()):
        if bar is not None:
            bar(n + 1)
        rec = line.record
        if rec is None:
            if line.torn:
                unreadable += 1
                print(f"note: line {line.number}: {line.problem}; not counted")
            else:
                failed += 1
                print(f"FAIL line {line.number}: {line.problem}")
            continue
        kind = rec.get("type", "certificate")
        if kind == "end":
            ended = True
        if kind == "error":
            errors += 1
            print(f"note: input {rec.get('input')}, p = {rec.get('p')}: certification failed during the run "
                  f"({rec.get('error')})")
        if kind != "certificate":
            continue
        k += 1
        x = None
        if "x" in rec:
            x = np.asarray(rec["x"], dtype=np.float64)
        elif reader is not None and isinstance(rec.get("input"), int) and 0 <= rec["input"] < len(reader.source):
            x = reader.take([rec["input"]])[0]
        reason = _check_one(weights, mhash, rec, x, args.rtol, args.atol)
        if reason is None:
            checked += 1
        else:
            failed += 1
            print(f"FAIL certificate {k} (input {rec.get('input')}, p = {rec.get('p')}, eps = {rec.get('eps')}): "
                  f"{reason}")
    print(f"verified {k + 1} certificate(s) against {model_path}: {checked} hold, {failed} failed")
    if not cf.legacy and not ended:
        print(f"note: the run that wrote {args.certs} did not finish"
              + (f" ({unreadable} incomplete last record)" if unreadable else "")
              + "; 'certify ... --resume' continues it")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    from .curves import plot_accuracy
    try:
        open_certs(args.certs)
    except RecordsError as exc:
        raise CliError(str(exc)) from exc
    plot_accuracy(args.certs, args.out, size=args.plot_size)
    print(f"wrote {args.out}")
    return EXIT_OK


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
        c = certify(weights, x, args.eps_max, p=p, frames=[t], rtol=args.rtol, planes=args.planes, label=label,
                    rounding=args.rounding)
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


# ----------------------------------------------------------------------------- substitutions

def _candidates_for(cands: Any, i: int, T: int, n: int) -> list[np.ndarray]:
    """Input i's candidates from the candidates .npz: key "{i}_{t}" holds (k, n) vectors that may
    replace position t (a missing key: none)."""
    return [np.asarray(cands[f"{i}_{t}"], dtype=np.float64).reshape(-1, n) if f"{i}_{t}" in cands.files
            else np.zeros((0, n)) for t in range(T)]


def cmd_substitutions(args: argparse.Namespace) -> int:
    from .records import RecordWriter
    from .substitutions import certify_substitutions
    weights, X, y, model_path, inputs_path = _load(args)
    if args.budget < 0:
        raise CliError(f"--budget must be >= 0, got {args.budget}")
    cands = np.load(args.candidates, allow_pickle=False)
    N, T, n = X.shape
    writer = None
    if args.out:
        header = {"version": __version__, "model": {"path": str(Path(model_path).resolve()),
                                                    "sha256": model_sha256(weights), "kind": weights.kind},
                  "inputs": {"path": str(Path(inputs_path).resolve()), "shape": [N, T, n]},
                  "settings": {"threat": "substitutions", "candidates": str(Path(args.candidates).resolve()),
                               "budget": args.budget, "planes": args.planes, "rounding": args.rounding}}
        writer = RecordWriter(args.out, header)
    robust = 0
    print(f"{'input':>5} {'label':>5}  {'answer':<13} min margin lower bound (budget {args.budget})")
    for i in range(N):
        label = None if (y is None or args.ignore_labels) else int(y[i])
        c = certify_substitutions(weights, X[i], _candidates_for(cands, i, T, n), args.budget, label=label,
                                  planes=args.planes, rounding=args.rounding)
        robust += c.robust
        answer = "robust" if c.robust else "misclassified" if c.misclassified else "not proven"
        low = f"{float(np.min(c.margin_lower)):.6g}" if c.margin_lower.size else "-"
        print(f"{i:>5} {c.label:>5}  {answer:<13} {low}")
        if writer is not None:
            writer.write({"type": "certificate", "input": i, **c.to_dict()})
    print(f"certified accuracy at budget {args.budget}: {robust}/{N} = {robust / N:.3f}")
    if writer is not None:
        writer.write({"type": "end", "records": N, "errors": 0})
        writer.close()
        print(f"wrote {N} certificate(s) to {args.out}")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    """The ``popqorn-fast`` argument parser (sub-commands certify, verify, plot, sensitivity, substitutions)."""
    ap = argparse.ArgumentParser(
        prog="popqorn-fast", description="Certified robustness radii for RNN/LSTM/GRU classifiers (POPQORN).",
        epilog="exit codes: 0 success, 1 a certificate failed verification, 2 usage or input error, "
               "3 some inputs could not be certified (errors recorded), 130 / 143 stopped by SIGINT / SIGTERM "
               "(the certificates done so far are in --out)")
    ap.add_argument("--version", action="version", version=f"popqorn_fast {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="{certify,verify,plot,sensitivity,substitutions}")

    def positive(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (np.isfinite(v) and v > 0):
            raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
        return v

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("model", nargs="?", help="model: a PyTorch state_dict (.npz, .safetensors; any module "
                                                 "names), a torch.onnx.export graph (.onnx) or a Keras 3 "
                                                 ".keras file (default: the bundled LSTM)")
        sp.add_argument("inputs", nargs="?", help="inputs: .npy (N, T, n) or .npz with X and optional y "
                                                  "(default: the model .npz's own X, y)")
        sp.add_argument("--eps-max", type=positive, default=10.0, help="cap of the radius search (default 10)")
        sp.add_argument("--rtol", type=positive, default=1e-3, help="relative accuracy of the search (default 1e-3)")
        sp.add_argument("--planes", default="exact", choices=list(PLANE_METHODS),
                        help="relaxation of the LSTM/GRU products (default exact)")
        sp.add_argument("--rounding", default="sound", choices=list(ROUNDING_MODES),
                        help="sound: bounds that hold whatever the floating-point rounding (default; "
                             "docs/ROUNDING.md); sound32: the same guarantee, the recurrent products in "
                             "float32 (faster at h >= 64, a little radius lost, ROUNDING.md §7); nearest: "
                             "plain round-to-nearest arithmetic")
        sp.add_argument("--count", type=int, help="use only the first COUNT inputs (default: 5 of the bundled "
                                                  "inputs without MODEL, else all)")
        sp.add_argument("--ignore-labels", action="store_true", help="certify predictions even if labels are stored")
        sp.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    c = sub.add_parser("certify", help="certified radius per input (a table, a summary, a certificates file)")
    common(c)
    c.add_argument("--norm", help="norm(s) 1, 2, inf, comma-separated (default 2; 1,2,inf without MODEL)")
    c.add_argument("--frames", type=int, nargs="+", help="perturbed frames (0-based; default all)")
    c.add_argument("--target", type=int, help="certify against this class only (default: every other class)")
    c.add_argument("--ball", choices=["frame", "joint"], default="frame",
                   help="frame: each moving frame in its own lp ball (default); joint: one lp ball over all "
                        "moving frames together (docs/THREAT_MODELS.md)")
    c.add_argument("--frame-weights", type=float, nargs="+", metavar="W",
                   help="radius multiplier of each frame (T values; 0 keeps a frame fixed)")
    c.add_argument("--domain", type=float, nargs=2, metavar=("LO", "HI"),
                   help="the inputs' domain: every perturbed value stays in [LO, HI] (the inputs must lie in it)")
    c.add_argument("--threads", type=int, help="worker threads (default 1)")
    c.add_argument("--at", type=positive, nargs="+", help="radii for the certified-fraction summary")
    c.add_argument("--labels", help="a .npy of N integer labels (default: INPUTS' y, if a .npz holds one)")
    c.add_argument("--out", help="the certificates file (JSON Lines): each certificate is appended as soon "
                                 "as it is done")
    c.add_argument("--resume", action="store_true",
                   help="continue the run recorded in --out (same model, inputs and settings), "
                        "certifying only what it does not hold yet")
    c.add_argument("--attack", action="store_true",
                   help="also bracket the smallest eps at which a PGD attack finds an adversarial "
                        "example (attack_eps: an upper bound of the robust radius; attack_ratio = eps*/attack_eps)")
    c.add_argument("--attack-steps", type=int, default=100, help="PGD steps per restart (default 100)")
    c.add_argument("--attack-restarts", type=int, default=8, help="PGD random starts (default 8)")
    c.add_argument("--attack-seed", type=int, default=0, help="seed of PGD's random starts (default 0)")
    c.add_argument("--plot", help="at the end, draw certified (and, with --attack, attacked) accuracy "
                                  "against eps from --out into this .png or .svg (needs matplotlib)")
    c.add_argument("--store-inputs", action="store_true",
                   help="store each input sequence in its record (a file verify can check without INPUTS)")
    c.add_argument("--fsync-interval", type=float, default=0.0,
                   help="seconds between disk syncs of --out (default 0: after every certificate; every "
                        "record reaches the operating system at once either way)")
    c.set_defaults(func=cmd_certify)

    v = sub.add_parser("verify", help="re-check saved certificates; exit 1 if any fails")
    v.add_argument("certs", help="a file written by 'popqorn-fast certify --out'")
    v.add_argument("model", nargs="?", help="the model (default: the path recorded in the file)")
    v.add_argument("--inputs", help="the inputs (default: the path recorded in the file, unless the "
                                    "records store their inputs)")
    v.add_argument("--rtol", type=float, default=1e-9, help="tolerance on the recomputed margins (default 1e-9)")
    v.add_argument("--atol", type=float, default=1e-12, help="absolute tolerance (default 1e-12)")
    v.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    v.set_defaults(func=cmd_verify)

    pl = sub.add_parser("plot", help="certified and attacked accuracy against eps, from a certificates file")
    pl.add_argument("certs", help="a file written by 'popqorn-fast certify --out' (with --attack for the "
                                  "attacked curve)")
    pl.add_argument("--out", required=True, help="the image: .png or .svg (needs matplotlib)")
    pl.add_argument("--plot-size", type=_size, default=(800, 480), help="size WIDTHxHEIGHT (default 800x480)")
    pl.set_defaults(func=cmd_plot)

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

    w = sub.add_parser("substitutions", help="robust or not proven against word substitutions, per input")
    common(w)
    w.add_argument("--candidates", required=True, help='a .npz whose key "{i}_{t}" holds the (k, n) vectors that may replace '
                                      "position t of input i (e.g. its synonyms' embeddings)")
    w.add_argument("--budget", type=int, default=1, help="at most this many positions replaced at once (default 1)")
    w.add_argument("--out", help="write the certificates (JSON Lines, checked by verify)")
    w.set_defaults(func=cmd_substitutions)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 verification failed, 2 error,
    3 some inputs failed, 130 / 143 stopped by SIGINT / SIGTERM)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RunInterrupted as stop:
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("popqorn-fast: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CliError, ValueError, FileNotFoundError, TypeError, ImportError, OSError) as exc:
        print(f"popqorn-fast: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
