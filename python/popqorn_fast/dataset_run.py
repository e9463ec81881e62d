"""A dataset run of ``popqorn-fast certify``: every certificate appended to ``--out`` as soon
as it exists (records.py), ``--resume`` from what the file holds, SIGINT/SIGTERM stopping
cleanly, inputs read a chunk at a time (streaming.py), chunks resubmitted when a worker is
lost (resilient.py), and an optional attack radius per certificate (attack_search.py)."""
from __future__ import annotations

import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, TextIO

import numpy as np

from . import __version__
from .attack_search import attack_radius
from .certificate import model_sha256
from .certify import _ProgressBar, certify
from .records import CertsFile, RecordWriter, drop_torn_tail, open_certs
from .resilient import Outcome, Work, run_resilient
from .streaming import BlockReader, InputSource
from .validation import p_name, parse_p

EXIT_OK, EXIT_INCOMPLETE = 0, 3
BLOCK = 256  # inputs read (mapped) at a time, and inputs per unit of work in one thread


class RunInterrupted(BaseException):
    """SIGINT or SIGTERM arrived during a run (``signum`` says which)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's certificates (and its header)."""
    weights: Any
    model_path: str
    source: InputSource
    norms: tuple[float, ...]
    eps_max: float
    rtol: float
    planes: str
    frames: Optional[tuple[int, ...]]
    target: Optional[int]
    attack: Optional[dict[str, int]] = None   # pgd's steps, restarts, seed
    store_inputs: bool = False
    threat: Optional[dict[str, Any]] = None   # ball, frame_weights, domain (None: the per-frame ball)
    rounding: str = "sound"                   # docs/ROUNDING.md

    def certify_kwargs(self, p: float) -> dict[str, Any]:
        return dict(eps_max=self.eps_max, p=p, target=self.target, frames=self.frames, rtol=self.rtol,
                    planes=self.planes, rounding=self.rounding, **(self.threat or {}))

    def settings(self) -> dict[str, Any]:
        """What must be equal for ``--resume`` to continue a file (with the model and inputs)."""
        return {"norms": [p_name(p) for p in self.norms], "eps_max": self.eps_max, "rtol": self.rtol,
                "planes": self.planes, "rounding": self.rounding,
                "frames": None if self.frames is None else list(self.frames),
                "target": self.target, "labels": "given" if self.source.labels is not None else "predicted",
                "attack": self.attack} | ({} if self.threat is None else {"threat": _jsonable(self.threat)})

    def header(self) -> dict[str, Any]:
        N, T, n = self.source.shape
        return {"version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "model": {"path": str(Path(self.model_path).resolve()), "sha256": model_sha256(self.weights),
                          "kind": self.weights.kind},
                "inputs": {"path": self.source.path, "shape": [N, T, n], "sha256": self.source.sha256(),
                           "labels_sha256": self.source.labels_sha256()},
                "settings": self.settings(), "store_inputs": self.store_inputs}


def _jsonable(threat: dict[str, Any]) -> dict[str, Any]:
    """The threat-model settings as JSON values (arrays as lists)."""
    return {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else
                [np.asarray(a).tolist() for a in v] if k == "domain" and v is not None else v)
            for k, v in threat.items()}


def resume_mismatch(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between a file's header and this run's (empty: the run may continue it)."""
    why = []
    if old.get("model", {}).get("sha256") != new["model"]["sha256"]:
        why.append(f"the model: {old.get('model', {}).get('path')} (SHA-256 "
                   f"{str(old.get('model', {}).get('sha256'))[:12]}...) vs {new['model']['path']} "
                   f"(SHA-256 {new['model']['sha256'][:12]}...)")
    oi, ni = old.get("inputs", {}), new["inputs"]
    if list(oi.get("shape", [])) != ni["shape"]:
        why.append(f"the inputs' shape (N, T, n): {oi.get('shape')} vs {ni['shape']} (--count, INPUTS)")
    elif oi.get("sha256") != ni["sha256"]:
        why.append(f"the inputs: {oi.get('path')} vs {ni['path']} hold other values (SHA-256 "
                   f"{str(oi.get('sha256'))[:12]}... vs {ni['sha256'][:12]}...)")
    if oi.get("labels_sha256") != ni["labels_sha256"]:
        why.append("the labels (INPUTS' y, --labels, --ignore-labels)")
    os_, ns = old.get("settings", {}), new["settings"]
    for key in sorted(set(os_) | set(ns)):
        if os_.get(key) != ns.get(key):
            why.append(f"{key}: {os_.get(key)!r} vs {ns.get(key)!r}")
    return why


def certify_records(weights: Any, X: np.ndarray, labels: list[Optional[int]], kwargs: dict[str, Any],
                    attack: Optional[dict[str, int]], store_inputs: bool) -> list[dict[str, Any]]:
    """The records of a chunk of inputs at one norm (runs wherever the executor puts it).

    Each is ``Certificate.to_dict()`` plus, with ``attack`` (pgd's steps, restarts, seed),
    :meth:`AttackBracket.to_dict` (keys ``attack_*``), plus ``x`` with ``store_inputs``.
    """
    out = []
    for x, lab in zip(X, labels):
        c = certify(weights, x, label=lab, **kwargs)
        rec = c.to_dict()
        if attack is not None:
            threat = {k: kwargs[k] for k in ("ball", "frame_weights", "domain") if k in kwargs}
            a = attack_radius(weights, x, kwargs["eps_max"], p=kwargs["p"], target=kwargs["target"],
                              frames=kwargs["frames"], label=c.label, rtol=kwargs["rtol"],
                              eps_start=c.eps, threat=threat or None, **attack)
            rec.update(a.to_dict(None if c.misclassified else c.eps))
        if store_inputs:
            rec["x"] = np.asarray(x, dtype=np.float64).tolist()
        out.append(rec)
    return out


@dataclass
class Tally:
    """Per (norm, input) results of a run, from the file and from this run: compact arrays,
    so that N = 10^6 inputs cost tens of MB, not one object per certificate."""
    N: int
    K: int
    done: np.ndarray = field(init=False)
    eps: np.ndarray = field(init=False)
    attack: np.ndarray = field(init=False)   # NaN: no attack radius (none found, or no --attack)
    misclassified: np.ndarray = field(init=False)
    failed: np.ndarray = field(init=False)
    label: np.ndarray = field(init=False)
    seconds: np.ndarray = field(init=False)
    passes: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        shape = (self.K, self.N)
        self.done = np.zeros(shape, bool)
        self.failed = np.zeros(shape, bool)
        self.misclassified = np.zeros(shape, bool)
        self.eps = np.zeros(shape)
        self.attack = np.full(shape, np.nan)
        self.label = np.full(shape, -1, np.int32)
        self.seconds = np.zeros(shape, np.float32)
        self.passes = np.zeros(shape, np.int32)

    def add(self, k: int, i: int, rec: dict[str, Any]) -> None:
        self.done[k, i], self.failed[k, i] = True, False
        self.eps[k, i] = float(rec["eps"])
        self.misclassified[k, i] = bool(rec.get("misclassified", False))
        a = rec.get("attack_eps")
        self.attack[k, i] = np.nan if a is None else float(a)
        self.label[k, i] = int(rec.get("label", -1))
        self.seconds[k, i] = float(rec.get("seconds", 0.0)) + float(rec.get("attack_seconds") or 0.0)
        self.passes[k, i] = int(rec.get("bound_passes", 0))


def _load_existing(cf: CertsFile, spec: RunSpec, tally: Tally) -> int:
    """Fill ``tally`` from a file's certificate records; returns how many it holds."""
    index = {p_name(p): k for k, p in enumerate(spec.norms)}
    n = 0
    for line in cf.lines():
        rec = line.record
        if rec is None or rec.get("type") != "certificate":
            continue
        k, i = index.get(str(rec.get("p"))), rec.get("input")
        if k is None or not isinstance(i, int) or not 0 <= i < tally.N or tally.done[k, i]:
            continue
        tally.add(k, i, rec)
        n += 1
    return n


def _works(spec: RunSpec, tally: Tally, chunk: int) -> Iterator[Work]:
    """Units of work in input order, every norm of a block before the next block; only
    the (norm, input) pairs the file does not hold yet."""
    N = len(spec.source)
    for s in range(0, N, BLOCK):
        for k in range(len(spec.norms)):
            todo = [i for i in range(s, min(s + BLOCK, N)) if not tally.done[k, i]]
            for j in range(0, len(todo), chunk):
                yield Work(k, tuple(todo[j:j + chunk]))


def threading_main() -> bool:
    return threading.current_thread() is threading.main_thread()


class _Stop:
    """SIGINT and SIGTERM raise :class:`RunInterrupted` in the main thread while active."""

    def __enter__(self) -> "_Stop":
        self.old: dict[int, Any] = {}
        if threading_main():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._raise)
        return self

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise RunInterrupted(signum)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)


class _Rows:
    """Prints the table's rows in input order as soon as every norm of an input is done."""

    def __init__(self, spec: RunSpec, tally: Tally, out: TextIO) -> None:
        self.spec, self.tally, self.out, self.next = spec, tally, out, 0
        out.write(f"{'input':>5} {'label':>5} " + " ".join(f"{'eps* p=' + p_name(p):>13}" for p in spec.norms)
                  + (" " + " ".join(f"{'attack p=' + p_name(p):>13}" for p in spec.norms) if spec.attack else "")
                  + f" {'seconds':>8}\n")

    def advance(self) -> None:
        t = self.tally
        while self.next < t.N and np.all(t.done[:, self.next] | t.failed[:, self.next]):
            i = self.next

            def cell(k: int) -> str:
                if t.failed[k, i]:
                    return "failed"
                return "misclassified" if t.misclassified[k, i] else format(t.eps[k, i], ".6g")

            def acell(k: int) -> str:
                if t.failed[k, i] or t.misclassified[k, i]:
                    return "-"
                return "none" if np.isnan(t.attack[k, i]) else format(t.attack[k, i], ".6g")

            lab = max(int(t.label[k, i]) for k in range(t.K))
            line = f"{i:>5} {lab:>5} " + " ".join(f"{cell(k):>13}" for k in range(t.K))
            if self.spec.attack:
                line += " " + " ".join(f"{acell(k):>13}" for k in range(t.K))
            self.out.write(line + f" {float(t.seconds[:, i].sum()):>8.3f}\n")
            self.next += 1
        self.out.flush()


def _nice_grid(values: np.ndarray, eps_max: float) -> list[float]:
    """Three 1-2-5 radii around the median certified ε (for the summary)."""
    pos = values[values > 0]
    if pos.size == 0:
        return [eps_max * 1e-3, eps_max * 1e-2, eps_max * 1e-1]
    med = float(np.median(pos))
    series = [m * 10.0 ** e for e in range(-12, 6) for m in (1.0, 2.0, 5.0)]
    k = int(np.argmin([abs(np.log(s / med)) for s in series]))
    return [series[k - 1], series[k], series[k + 1]]


def summary_lines(spec: RunSpec, tally: Tally, at: Optional[list[float]]) -> list[str]:
    """The per-norm summary (misclassified, ε* statistics, certified fraction, attack gap)."""
    lines = []
    for k, p in enumerate(spec.norms):
        d = tally.done[k]
        ok = d & ~tally.misclassified[k]
        eps = tally.eps[k]
        head = f"p = {p_name(p)}: {int(d.sum())} input(s), {int((d & tally.misclassified[k]).sum())} misclassified"
        if tally.failed[k].any():
            head += f", {int(tally.failed[k].sum())} failed"
        lines.append(head)
        if ok.any():
            lines.append(f"  eps* over the {int(ok.sum())} correctly classified: mean {eps[ok].mean():.6g}, "
                         f"median {np.median(eps[ok]):.6g}, min {eps[ok].min():.6g}, max {eps[ok].max():.6g}")
        grid = at or _nice_grid(eps[ok], spec.eps_max)
        n = max(int(d.sum()), 1)
        lines.append("  certified fraction (of all inputs): " + ", ".join(
            f"eps {e:.3g}: {np.sum(ok & (eps >= e)) / n:.3f}" for e in grid))
        if spec.attack is not None:
            att = tally.attack[k]
            both = ok & np.isfinite(att) & (att > 0)
            none = int((ok & np.isnan(att)).sum())
            if both.any():
                r = eps[both] / att[both]
                lines.append(f"  eps* / attack eps over {int(both.sum())} input(s): mean {r.mean():.3f}, "
                             f"median {np.median(r):.3f}, min {r.min():.3f} (1 = tight)"
                             + (f"; no attack found up to eps_max for {none}" if none else ""))
            lines.append("  attacked accuracy (of all inputs): " + ", ".join(
                f"eps {e:.3g}: {np.sum(ok & ~(att <= e)) / n:.3f}" for e in grid))
        lines.append(f"  seconds: {float(tally.seconds[k][d].sum()):.2f} search time, "
                     f"{int(tally.passes[k][d].sum())} bound passes")
    return lines


def _has_header(p: Path) -> bool:
    """False for a file a run was stopped in before its header was complete (nothing to keep)."""
    with open(p, "rb") as fh:
        first = fh.readline()
    return first.endswith(b"\n") or not first.startswith(b'{"type":"header"')


def prepare_out(out: str, spec: RunSpec, header: dict[str, Any], resume: bool,
                tally: Tally, err: TextIO, fsync_interval: float = 0.0) -> tuple[RecordWriter, int]:
    """Open ``--out`` for this run: a new file with the header, or (``resume``) the existing
    one checked against the header, its torn last line removed and its records loaded."""
    p = Path(out)
    if resume and p.exists() and _has_header(p):
        cf = open_certs(p)
        if cf.legacy:
            raise ValueError(f"--resume: {p} is a single-JSON certificates file of an earlier version, "
                             f"which cannot be appended to; choose a new --out")
        why = resume_mismatch(cf.header, header)
        if why:
            raise ValueError(f"--resume: {p} was written for another run; it differs in "
                             + "; ".join(why) + ". Run the same command as before, or choose a new --out")
        torn = drop_torn_tail(p)
        if torn is not None:
            err.write(f"note: {p} line {torn.number}: {torn.problem}; removed\n")
        held = _load_existing(open_certs(p), spec, tally)
        err.write(f"resuming {p}: {held} of {tally.N * tally.K} certificate(s) already done\n")
        return RecordWriter(p, None, fsync_interval), held
    if not resume and p.exists() and p.stat().st_size > 0:
        try:
            cf = open_certs(p)
        except (ValueError, OSError):
            cf = None
        if cf is not None and not cf.legacy:
            ended = any(line.record is not None and line.record.get("type") == "end" for line in cf.lines())
            if not ended:
                raise ValueError(f"{p} holds an unfinished run; add --resume to continue it, or delete it "
                                 f"(or choose another --out) to start again")
    try:
        return RecordWriter(p, header, fsync_interval), 0
    except OSError as exc:
        raise OSError(f"cannot write {out}: {exc.strerror}") from exc


def run_dataset(spec: RunSpec, out: Optional[str], resume: bool = False, threads: Optional[int] = None,
                progress: bool = True, at: Optional[list[float]] = None, fsync_interval: float = 0.0,
                stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    """Certify every input of ``spec`` at every norm, recording each certificate in ``out``.

    Returns the exit code: 0 done, 3 some inputs failed (their errors are recorded);
    raises :class:`RunInterrupted` after recording a ``stopped`` record.
    """
    N, K = len(spec.source), len(spec.norms)
    tally = Tally(N, K)
    writer: Optional[RecordWriter] = None
    t_all = time.perf_counter()
    with _Stop():
        if out:
            writer, base = prepare_out(out, spec, spec.header(), resume, tally, stderr, fsync_interval)
        try:
            rows = _Rows(spec, tally, stdout)
            rows.advance()
            _run(spec, tally, writer, rows, threads, progress, stderr)
        except RunInterrupted as stop:
            if writer is not None:
                held = base + writer.certificates
                writer.write({"type": "stopped", "signal": str(stop), "records": held})
                writer.close()
                stderr.write(f"popqorn-fast: stopped by {stop}; {held} certificate(s) are in "
                             f"{out}: run the same command with --resume to continue\n")
            raise
        if writer is not None:
            writer.write({"type": "end", "records": int(tally.done.sum()), "errors": int(tally.failed.sum())})
            writer.close()
    stdout.write("summary:\n")
    for line in summary_lines(spec, tally, at):
        stdout.write("  " + line + "\n")
    stdout.write(f"  {N} input(s) x {K} norm(s) in {time.perf_counter() - t_all:.2f} s wall\n")
    if out:
        stdout.write(f"wrote {int(tally.done.sum())} certificate(s) to {out}\n")
    if tally.failed.any():
        stderr.write(f"popqorn-fast: {int(tally.failed.sum())} certification(s) failed (see the table and the "
                     f"'error' records); --resume tries them again\n")
        return EXIT_INCOMPLETE
    return EXIT_OK


def _run(spec: RunSpec, tally: Tally, writer: Optional[RecordWriter], rows: _Rows, threads: Optional[int],
         progress: bool, stderr: TextIO) -> None:
    todo = int((~tally.done).sum())
    bar = _ProgressBar(todo, label="certify", stream=stderr) if progress and todo else None
    reader = BlockReader(spec.source, BLOCK)
    labels = spec.source.labels
    nthreads = int(threads or 1)
    ex = ThreadPoolExecutor(nthreads) if nthreads > 1 else None
    chunk = 4 if ex is not None else BLOCK

    def payload(w: Work) -> tuple[Any, ...]:
        labs = [None if labels is None else int(labels[i]) for i in w.indices]
        return (spec.weights, reader.take(w.indices), labs, spec.certify_kwargs(spec.norms[w.group]),
                spec.attack, spec.store_inputs)

    count = 0
    try:
        for o in run_resilient(_works(spec, tally, chunk), certify_records, payload, ex, window=4 * nthreads):
            _record(o, spec, tally, writer, stderr)
            count += 1
            if bar is not None:
                bar(count)
            rows.advance()
    finally:
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)


def _record(o: Outcome, spec: RunSpec, tally: Tally, writer: Optional[RecordWriter], stderr: TextIO) -> None:
    p = p_name(spec.norms[o.group])
    if o.ok:
        rec = {"type": "certificate", "input": o.index, **o.value}
        if writer is not None:
            writer.write(rec)
        tally.add(o.group, o.index, rec)
    else:
        if writer is not None:
            writer.write({"type": "error", "input": o.index, "p": p, "error": o.error, "attempts": o.attempts})
        tally.failed[o.group, o.index] = True
        stderr.write(f"input {o.index}, p = {p}: failed after {o.attempts} attempt(s): {o.error}\n")


def parse_norms(text: Optional[str], default: list[str]) -> tuple[float, ...]:
    out = [parse_p(s) for s in (text.split(",") if text else default)]
    if len(set(out)) != len(out):
        raise ValueError(f"--norm lists a norm twice: {text}")
    return tuple(out)


