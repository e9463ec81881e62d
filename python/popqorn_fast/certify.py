"""Public entry points: bound margins and states at a fixed ε, certify a radius,
per-frame sensitivity, and batches (threads or any concurrent.futures.Executor)."""
from __future__ import annotations

import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

import numpy as np

from .backend import (CUDA_PLANE_METHODS, PLANE_METHODS, BoundOverflowError, bound_pass, bound_pass_batch, check_device,
                      check_rounding,
                      product_threads)
from .bisection import Probe, SearchResult, search_radius, search_steps
from .certificate import Certificate, input_sha256
from .first_probe import SearchStart, first_probe
from .forward import forward_record
from .smaller_ball import certified_within, margins_within
from .specification import fold_specification, margin_classes
from .validation import (check_batch, check_class, check_eps, check_sequence, frame_mask, parse_p)
from .general import RecurrentClassifier
from .threat import ThreatModel, check_threat, refuse_threat
from .weights import GRUWeights, LSTMWeights, RNNWeights

_STATE_NAMES = {"rnn": ("pre", "hidden"), "lstm": ("gates", "cell", "hidden"), "gru": ("gates", "u", "hidden")}


@dataclass(frozen=True)
class _Problem:
    """Validated arguments shared by every entry point."""
    weights: Any
    x: np.ndarray
    p: float
    mask: np.ndarray
    frames: Optional[tuple[int, ...]]
    label: int
    target: Optional[int]
    classes: np.ndarray
    spec_w: np.ndarray
    spec_b: np.ndarray
    planes: str
    predicted: int
    clean_margin: float  # min_j (logit_label - logit_j) of the clean input: steers the ε search
    threat: ThreatModel = ThreatModel()
    rounding: str = "sound"
    # forward_record(weights, x[None]): the clean logits and what their gradients need
    record: Optional[tuple[np.ndarray, dict]] = field(default=None, compare=False, repr=False)

    def run(self, eps: float, want_states: bool = False) -> dict[str, np.ndarray]:
        return bound_pass(self.weights, self.x, eps, self.p, self.mask, self.spec_w, self.spec_b,
                          self.planes, want_states, threat=self.threat, rounding=self.rounding)

    def first_probe(self, eps_max: float) -> SearchStart:
        """The radius search's first ε and the margin's slope at ε = 0 (first_probe.py)."""
        return first_probe(self.weights, self.x, self.label, self.classes, self.p, self.mask, self.threat, eps_max,
                           self.record)


def _check_weights(weights: Any) -> None:
    if not isinstance(weights, (RNNWeights, LSTMWeights, GRUWeights, RecurrentClassifier)):
        raise TypeError(f"weights must be RNNWeights, LSTMWeights, GRUWeights or RecurrentClassifier, got "
                        f"{type(weights).__name__} (use load_model or RecurrentClassifier.from_pytorch to build one)")


def _problem(weights: Any, x: Any, p: Any, target: Any, frames: Any, planes: str,
             label: Any = None, threat: Optional[dict[str, Any]] = None, rounding: str = "sound") -> _Problem:
    """Validated arguments; ``threat``: the keyword arguments of :func:`check_threat`."""
    _check_weights(weights)
    check_rounding(rounding)
    xv = check_sequence(x, weights.input_size)
    pv = parse_p(p)
    if planes not in PLANE_METHODS:
        raise ValueError(f"planes must be one of {list(PLANE_METHODS)}, got {planes!r}")
    mask, fr = frame_mask(frames, xv.shape[0])
    tm = check_threat(xv, mask, **(threat or {}))
    if planes == "optimized":
        refuse_threat(tm, "planes='optimized'", "planes='exact' (the default), '1d' or 'constant'")
    C = weights.num_classes
    with np.errstate(over="ignore", invalid="ignore"):
        record = forward_record(weights, xv[None])
    logits = record[0][0]
    if not np.all(np.isfinite(logits)):
        raise ValueError("x is too large for this model: its forward pass overflows float64 "
                         f"(logits {logits}); no prediction to certify")
    predicted = int(np.argmax(logits))
    lab = predicted if label is None else check_class(label, C, "label")
    tgt = None if target is None else check_class(target, C, "target")
    if tgt is not None and tgt == lab:
        raise ValueError(f"target = {tgt} equals the label being certified; choose another class "
                         f"or target=None for untargeted")
    classes = margin_classes(lab, C, tgt)
    if isinstance(weights, RecurrentClassifier):  # the general pass takes the margins on the logits
        spec_w, spec_b = fold_specification(np.eye(C), np.zeros(C), lab, classes)
    else:  # the one-layer passes take them folded into the head
        spec_w, spec_b = fold_specification(weights.out_weight, weights.out_bias, lab, classes)
    clean = float(np.min(logits[lab] - logits[classes]))
    return _Problem(weights, xv, pv, mask, fr, lab, tgt, classes, spec_w, spec_b, planes, predicted, clean, tm,
                    rounding, record)


def bound_margins(weights: Any, x: Any, eps: float, p: Any = 2, target: Any = None, frames: Any = None,
                  planes: str = "exact", label: Any = None, ball: str = "frame", frame_weights: Any = None,
                  domain: Any = None, rounding: str = "sound",
                  relaxed_at: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """Proven bounds of the margins ``logit_label − logit_j`` at a fixed ε.

    Parameters
    ----------
    weights : RNNWeights, LSTMWeights or GRUWeights
    x : array_like, shape (T, n)
    eps : float
        Radius (> 0) of each perturbed frame's lp ball.
    p : {1, 2, inf}
    target : int, optional
        Only the margin against this class; default every class j ≠ label (increasing j).
    frames : sequence of int, optional
        Perturbed frames (0-based); default all.
    planes : {"exact", "optimized", "1d", "constant"}
        Relaxation of the LSTM/GRU products. ``"exact"``: POPQORN's volume-minimal planes
        with exact offsets. ``"optimized"`` (also for RNNs, on their tanh/ReLU lines):
        every bound (the intermediate intervals and the margins) gets its own planes or
        lines, their slopes chosen for that bound (the highest plane at the worst-case
        trajectory among the tangents of a grid over each box; lines: the tangent there),
        offsets still exact. Tighter (1.03-1.22x the "exact" radius on the shared trained
        models, ~1 % on random ones) and 7-30x slower (measured for T <= 16, h <= 64; the
        gap grows with T and h); CPU only. "1d" and "constant" are baselines for the
        products (equal to "exact" for RNNs).
    label : int, optional
        Class whose margins are bounded; default the model's prediction.
    ball : {"frame", "joint"}
        ``"frame"``: each moving frame in its own lp ball of radius ε (POPQORN's);
        ``"joint"``: one lp ball of radius ε over all moving frames' coordinates together
        (docs/THREAT_MODELS.md). For p = inf both are the same set.
    frame_weights : array_like, shape (T,), optional
        Frame t's radius is ``eps * frame_weights[t]`` (joint: the weighted norm
        ``||(||d_t||_p / w_t)_t||_p <= eps``); 0 keeps a frame fixed.
    domain : (lo, hi), optional
        Scalars or arrays broadcastable to x's shape: the perturbed inputs also lie in this
        box (x must lie in it).
    rounding : {"sound", "sound32", "nearest"}
        ``"sound"`` (default): the bounds hold in real arithmetic whatever the rounding of the
        pass (every product's and sum's floating-point error charged to the bound,
        docs/ROUNDING.md; ~1.1x the cost). ``"sound32"``: the same guarantee, the recurrent
        steps' large products in float32 with their error charged (faster at h >= 64, a
        little radius lost; ROUNDING.md §7). ``"nearest"``: plain round-to-nearest
        arithmetic, as most verifiers compute (and the CUDA backend).
    relaxed_at : float, optional
        A radius >= ``eps`` (a certificate's ``eps_relaxed``): the lower bounds are then
        those of the pass at ``relaxed_at`` carried to the smaller ball of radius ``eps``
        with the same relaxations (docs/RECURRENCES.md §5); the upper bounds stay those
        at ``relaxed_at``. Needs a threat model whose sets grow linearly with the radius
        (a box domain makes the carried bound no better than the pass's own).

    Returns
    -------
    (lower, upper) : tuple of numpy.ndarray
    """
    pr = _problem(weights, x, p, target, frames, planes, label, _threat_kw(ball, frame_weights, domain), rounding)
    e = check_eps(eps)
    if relaxed_at is None:
        out = pr.run(e)
        return out["lower"], out["upper"]
    big = check_eps(relaxed_at, "relaxed_at")
    if big < e:
        raise ValueError(f"relaxed_at must be at least eps = {e!r}, got {relaxed_at!r}")
    out = pr.run(big)
    return margins_within(big, out["lower"], out["slope"], e), out["upper"]


def bound_states(weights: Any, x: Any, eps: float, p: Any = 2, target: Any = None, frames: Any = None,
                 planes: str = "exact", label: Any = None, ball: str = "frame", frame_weights: Any = None,
                 domain: Any = None, rounding: str = "sound") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Proven per-step intervals of every intermediate quantity at a fixed ε.

    Returns a dict name -> (lower, upper), arrays of shape (T, rows): for RNNs
    ``pre`` and ``hidden``; for LSTMs ``gates`` (i, f, g, o), ``cell``, ``hidden``;
    for GRUs ``gates`` (y^r, y^z, v), ``u``, ``hidden`` (docs/RECURRENCES.md §0).
    Arguments as in :func:`bound_margins`.
    """
    pr = _problem(weights, x, p, target, frames, planes, label, _threat_kw(ball, frame_weights, domain), rounding)
    out = pr.run(check_eps(eps), want_states=True)
    names = _STATE_NAMES.get(weights.kind) or [k[:-6] for k in out if k.endswith("_lower") and k != "lower"]
    return {name: (out[f"{name}_lower"], out[f"{name}_upper"]) for name in names}


def certify(weights: Any, x: Any, eps_max: float = 10.0, p: Any = 2, target: Any = None,
            frames: Any = None, label: Any = None, rtol: float = 1e-3, planes: str = "exact",
            threads: Optional[int] = None, ball: str = "frame", frame_weights: Any = None,
            domain: Any = None, rounding: str = "sound") -> Certificate:
    """Largest certified ε (bisection over ε) for one input.

    Parameters
    ----------
    weights : RNNWeights, LSTMWeights or GRUWeights
    x : array_like, shape (T, n)
    eps_max : float
        Cap of the search; a result equal to it means "certified up to the cap".
    p : {1, 2, inf}
    target, frames, planes : see :func:`bound_margins`
    label : int, optional
        The class to certify; default the model's prediction. A label the model
        does not predict gives ``eps = 0.0`` and ``misclassified = True``.
    rtol : float
        Relative accuracy of the radius search.
    threads : int, optional
        Threads inside this input's bound passes (row blocks of the dense products);
        default 1. The bounds, and so the certificate, are those of one thread, bit for bit.
    ball, frame_weights, domain, rounding : see :func:`bound_margins` (the certificate records them)

    Returns
    -------
    Certificate
    """
    t0 = time.perf_counter()
    eps_max = check_eps(eps_max, "eps_max")
    rtol_v = _check_rtol(rtol)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or threads < 1):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    pr = _problem(weights, x, p, target, frames, planes, label, _threat_kw(ball, frame_weights, domain), rounding)
    if pr.label != pr.predicted:  # nothing is proven: no margin bounds
        return _misclassified(pr, t0)
    with product_threads(int(threads or 1)):
        return _certify_searched(pr, eps_max, rtol_v, t0)


def _certify_searched(pr: _Problem, eps_max: float, rtol_v: float, t0: float) -> Certificate:
    """certify's radius search(es) for a correctly classified input."""
    probes = _Probes()
    if pr.planes == "optimized":  # a cheap "exact" search first aims the costly probes
        start0 = pr.first_probe(eps_max)
        seen = _Probes()
        first = _search(replace(pr, planes="exact"), eps_max, rtol_v, seen, start=start0)
        if first.eps >= eps_max:  # certified up to the cap: nothing left to tighten
            res = _search(pr, eps_max, rtol_v, probes, start=replace(start0, eps=eps_max))
        else:
            start = replace(start0, eps=min(OPTIMIZED_FIRST_STEP * first.eps, eps_max)) if first.eps > 0.0 else start0
            res = _search(pr, eps_max, rtol_v, probes, start=start, slope=_optimized_slope(first, seen.lower))
        res = replace(res, passes=res.passes + first.passes)
    else:
        res = _search(pr, eps_max, rtol_v, probes)
    return _searched(pr, res, probes, t0)


@dataclass
class _Probes:
    """What the probes of one radius search found: each probed ε's margin lower bounds and
    their slopes in the radius (the core's "slope"; smaller_ball.py)."""
    lower: dict[float, np.ndarray] = field(default_factory=dict)
    slope: dict[float, np.ndarray] = field(default_factory=dict)

    def add(self, eps: float, out: Optional[dict[str, np.ndarray]]) -> Probe:
        """Record a pass's output at ``eps`` (None: its bounds overflowed float64) and return
        what the search reads: the smallest margin bound and the radius the pass's own
        relaxations certify below ``eps`` (None: none, or no slopes reported)."""
        if out is None:  # bounds left float64 at this eps: nothing proven there
            return -np.inf, None
        lower = np.asarray(out["lower"])
        self.lower[eps] = lower
        slope = out.get("slope")
        if slope is not None:
            self.slope[eps] = np.asarray(slope)
        return float(np.min(lower)), certified_within(eps, lower, self.slope.get(eps))

    def margins(self, res: SearchResult) -> np.ndarray:
        """The certificate's margin bounds: at ``res.eps`` (from the failed probe
        ``res.relaxed_at`` where that certified it), else at the smallest probe."""
        if res.relaxed_at is not None:
            e = res.relaxed_at
            return margins_within(e, self.lower[e], self.slope[e], res.eps)
        if res.eps > 0.0:
            return self.lower[res.eps]
        if self.lower:  # nothing certified: the clean margins' bounds at the smallest probe say why
            return self.lower[min(self.lower)]
        return np.zeros(0)  # every probe overflowed float64: no margin bounds to report


# planes="optimized": its first probe is this multiple of the "exact" radius (the optimised
# relaxations certified 1.05-1.2x the exact radius on the shared LSTM/GRU models)
OPTIMIZED_FIRST_STEP = 1.12


def _optimized_slope(res: SearchResult, margins: dict[float, np.ndarray]) -> Optional[float]:
    """How fast the smallest margin bound of planes="optimized" falls near its root (−dm/dε),
    estimated from the "exact" search ``res`` (``margins``: its bounds per probed ε) across its
    final bracket of probes; it aims the optimised search's second probe. The optimised margin
    behaves like the exact one stretched in ε by about the ratio of the radii, so near its own
    root it falls about OPTIMIZED_FIRST_STEP times slower than the exact one near its root
    (shared models: 4.30 -> 3.84 optimised probes per search at p = 2, 4.26 -> 4.07 at p = inf,
    against the unscaled slope; bench/results/2026-12-07-optimized-cost.md). None without a
    bracket (or where its failed probe's bounds left float64)."""
    good = [e for e, m in margins.items() if np.min(m) > 0.0]
    if not good or res.eps_upper is None or res.eps_upper not in margins:
        return None
    e_lo = max(good)  # the largest certified probe (res.eps itself unless a failed probe certified it)
    lo, hi = (float(np.min(margins[e])) for e in (e_lo, res.eps_upper))
    return (lo - hi) / (res.eps_upper - e_lo) / OPTIMIZED_FIRST_STEP if np.isfinite(hi) else None


def _search(pr: _Problem, eps_max: float, rtol: float, probes: _Probes,
            start: Optional[SearchStart] = None, slope: Optional[float] = None) -> SearchResult:
    """The radius search (bisection.py) with ``pr``'s bound pass, from ``start`` (default
    ``pr.first_probe``); records every probe in ``probes``. ``slope``: see
    :func:`search_radius`."""
    if start is None:
        start = pr.first_probe(eps_max)

    def certified(eps: float) -> Probe:
        try:
            out: Optional[dict[str, np.ndarray]] = pr.run(eps)
        except BoundOverflowError:
            out = None
        return probes.add(eps, out)

    return search_radius(certified, eps_max, rtol, eps_start=start.eps, margin_at_zero=pr.clean_margin,
                         slope=slope, slope_at_zero=start.slope)


def _threat_kw(ball: Any, frame_weights: Any, domain: Any) -> Optional[dict[str, Any]]:
    """The threat-model keywords of an entry point (None: the per-frame ball)."""
    if ball == "frame" and frame_weights is None and domain is None:
        return None
    return dict(ball=ball, frame_weights=frame_weights, domain=domain)


def _threat_name(threat: dict[str, Any]) -> str:
    """The first non-default threat-model argument, for messages."""
    if threat["domain"] is not None:
        return "domain"
    return "frame_weights" if threat["frame_weights"] is not None else f"ball={threat['ball']!r}"


def _check_rtol(rtol: Any) -> float:
    try:
        rtol_v = float(rtol)
    except (TypeError, ValueError):
        raise ValueError(f"rtol must be a number in (0, 1), got {rtol!r}") from None
    if not (np.isfinite(rtol_v) and 0.0 < rtol_v < 1.0):
        raise ValueError(f"rtol must be in (0, 1), got {rtol!r}")
    return rtol_v


def _hashes(pr: _Problem) -> dict[str, Any]:
    """The provenance of a certificate: hashes of model and input, and its threat model."""
    threat = None if pr.threat.is_default else pr.threat.to_dict()
    return dict(model_sha256=pr.weights.sha256, input_sha256=input_sha256(pr.x), threat=threat)


def _misclassified(pr: _Problem, t0: float) -> Certificate:
    """The certificate of a label the model does not predict: nothing proven, no margin bounds."""
    return Certificate(0.0, None, pr.label, pr.target, pr.p, pr.frames, True, np.zeros(0), 0,
                       time.perf_counter() - t0, pr.planes, pr.weights.kind,
                       tuple(int(c) for c in pr.classes), **_hashes(pr), rounding=pr.rounding)


def _searched(pr: _Problem, res: SearchResult, probes: _Probes, t0: float) -> Certificate:
    """The certificate of a finished radius search."""
    return Certificate(res.eps, res.eps_upper, pr.label, pr.target, pr.p, pr.frames, False, probes.margins(res),
                       res.passes, time.perf_counter() - t0, pr.planes, pr.weights.kind,
                       tuple(int(c) for c in pr.classes), **_hashes(pr), rounding=pr.rounding,
                       eps_relaxed=res.relaxed_at)


def _certify_batched(weights: Any, X: np.ndarray, labels: Sequence[Any], kwargs: dict[str, Any],
                     device: str, report: Any) -> list[Certificate]:
    """certify() for every input, with the probes of all unfinished searches of a round in
    ONE batched bound pass (``bound_pass_batch``). Each input runs the search of
    :func:`search_radius` unchanged (``search_steps``, its own bracket), so every returned ε
    is a probed, certified one, as with ``certify``. A certificate's ``seconds`` is the
    wall time from the start of the batch to the end of its own search."""
    t0 = time.perf_counter()
    eps_max = check_eps(kwargs["eps_max"], "eps_max")
    rtol_v = _check_rtol(kwargs["rtol"])
    N = len(X)
    probs = [_problem(weights, X[i], kwargs["p"], kwargs["target"], kwargs["frames"], kwargs["planes"],
                      labels[i], rounding=kwargs["rounding"]) for i in range(N)]
    out: list[Optional[Certificate]] = [None] * N
    probes = [_Probes() for _ in range(N)]
    active: dict[int, list[Any]] = {}  # input -> [search generator, ε it asks for]
    done = 0
    for i, pr in enumerate(probs):
        if pr.label != pr.predicted:
            out[i] = _misclassified(pr, t0)
            done += 1
        else:
            start = pr.first_probe(eps_max)
            gen = search_steps(eps_max, rtol_v, eps_start=start.eps, margin_at_zero=pr.clean_margin,
                               slope_at_zero=start.slope)
            active[i] = [gen, next(gen)]
    if done:
        report(done)
    pr0 = probs[0]
    while active:
        idx = list(active)
        res = bound_pass_batch(weights, np.stack([probs[i].x for i in idx]),
                               np.array([active[i][1] for i in idx], dtype=np.float64), pr0.p, pr0.mask,
                               np.stack([probs[i].spec_w for i in idx]),
                               np.stack([probs[i].spec_b for i in idx]), pr0.planes, device=device,
                               rounding=pr0.rounding)
        for j, i in enumerate(idx):
            gen, e = active[i]
            got = None if res["status"][j] != 0 else {k: np.array(v[j]) for k, v in res.items() if k != "status"}
            try:
                active[i][1] = gen.send(probes[i].add(e, got))
            except StopIteration as fin:
                out[i] = _searched(probs[i], fin.value, probes[i], t0)
                del active[i]
                done += 1
                report(done)
    return [c for c in out if c is not None]


def _typed(kind: type, name: str):
    def fn(weights: Any, x: Any, eps_max: float = 10.0, **kwargs: Any) -> Certificate:
        if not isinstance(weights, kind):
            raise TypeError(f"{name} needs {kind.__name__}, got {type(weights).__name__}; "
                            f"use certify() for any architecture")
        return certify(weights, x, eps_max, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"``certify`` for {kind.__name__} (same arguments and result)."
    return fn


certify_rnn = _typed(RNNWeights, "certify_rnn")
certify_lstm = _typed(LSTMWeights, "certify_lstm")
certify_gru = _typed(GRUWeights, "certify_gru")


def sensitivity(weights: Any, x: Any, eps_max: float = 10.0, p: Any = 2, rtol: float = 1e-3,
                planes: str = "exact", label: Any = None, domain: Any = None,
                candidates: Any = None, rounding: str = "sound") -> np.ndarray:
    """Certified ε when only one frame moves, for each frame: shape (T,).

    The per-frame sensitivity of the POPQORN paper (small ε = a sensitive frame).
    ``domain``: as in :func:`certify` (one moving frame: the joint ball is the frame ball).
    ``candidates`` (word substitutions, as in ``certify_substitutions``): instead, per position,
    whether replacing it alone by any of its candidates is proven harmless ((T,) bool; the
    budget certified at each position is 1 where True).
    """
    _check_weights(weights)
    xv = check_sequence(x, weights.input_size)
    if candidates is not None:
        from .substitutions import substitution_sensitivity
        return substitution_sensitivity(weights, xv, candidates, label=label, planes=planes, rounding=rounding)
    return np.array([certify(weights, xv, eps_max, p=p, frames=[t], rtol=rtol, planes=planes,
                             label=label, domain=domain, rounding=rounding).eps for t in range(xv.shape[0])])


def _certify_chunk(weights: Any, X: np.ndarray, labels: Sequence[Any], kwargs: dict[str, Any]) -> list[Certificate]:
    """Certify a chunk of inputs (runs wherever the executor puts it)."""
    return [certify(weights, X[i], label=labels[i], **kwargs) for i in range(len(X))]


def certify_many(weights: Any, X: Any, labels: Any = None, eps_max: float = 10.0, p: Any = 2,
                 target: Any = None, frames: Any = None, rtol: float = 1e-3, planes: str = "exact",
                 threads: Optional[int] = None, device: str = "cpu", executor: Optional[Executor] = None,
                 progress: Any = False, chunk_size: Optional[int] = None, retries: int = 2,
                 ball: str = "frame", frame_weights: Any = None, domain: Any = None,
                 rounding: str = "sound") -> list[Certificate]:
    """Certify a batch ``X`` of shape (N, T, n); one Certificate per input, in order.

    Every certificate records the SHA-256 of the model and of its input
    (``model_sha256``, ``input_sha256``), so that it can be re-checked later
    (``popqorn-fast verify``).

    Parameters
    ----------
    weights : RNNWeights, LSTMWeights or GRUWeights
    X : array_like, shape (N, T, n)
    labels : array_like of int, optional
        True labels; misclassified inputs get ``eps = 0`` and ``misclassified = True``.
        Default: certify each input's own prediction.
    eps_max, p, target, frames, rtol, planes
        As in :func:`certify`, the same for every input.
    threads : int, optional
        Worker threads on this machine (the core releases the GIL); default 1.
    device : {"cpu", "cuda"}
        Where bound passes run. ``"cuda"`` (needs ``pip install popqorn_fast[cuda]``, a GPU
        and a build made with nvcc) runs the radius searches of all inputs in lock step,
        each round's probes in one batched GPU pass; same certificates as ``"cpu"`` with
        ``rounding="nearest"``, which it requires (the GPU path is not floating-point sound,
        docs/ROUNDING.md); ``threads`` is then ignored and ``executor`` refused.
    executor : concurrent.futures.Executor, optional
        Any executor (a ``ThreadPoolExecutor``, a ``ProcessPoolExecutor``, a Dask
        ``Client.get_executor()``, ...): inputs are split into chunks of
        ``chunk_size`` and certified there. Overrides ``threads``. The executor is
        not shut down.
    progress : bool or callable, optional
        ``True``: a progress bar with rate and ETA on stderr (shown once the run has
        taken over a second). A callable ``progress(done, total)`` is called instead
        after each finished input or chunk.
    chunk_size : int, optional
        Inputs per task when running on threads or an executor (default: about four
        tasks per worker, at most 64 inputs each).
    retries : int
        With threads or an executor: how often an input is tried again after its task
        failed (a lost worker, e.g. a killed Dask worker process, or an error). A failed
        chunk is resubmitted as single inputs, so only the failing input is given up.
    ball, frame_weights, domain
        The threat model (:func:`certify`), the same for every input; CPU only.
    rounding : {"sound", "sound32", "nearest"}
        As in :func:`bound_margins`; ``device="cuda"`` needs ``"nearest"``.

    Returns
    -------
    list of Certificate
        In the order of ``X``; the same values whichever executor ran them.

    Raises
    ------
    popqorn_fast.resilient.IncompleteRunError
        With threads or an executor, after every other input finished: the inputs that
        failed ``retries + 1`` times, with their errors (``.errors``) and every other
        certificate (``.results``, None at the failed inputs).
    """
    _check_weights(weights)
    threat = _threat_kw(ball, frame_weights, domain)
    if device == "cuda" and threat is not None:
        raise ValueError(f"{_threat_name(threat)} is not available with device='cuda'; use device='cpu' "
                         f"(threads=k or an executor)")
    if device == "cuda" and planes not in CUDA_PLANE_METHODS:
        raise ValueError(f"planes={planes!r} runs on the CPU only; the CUDA backend implements "
                         f"{list(CUDA_PLANE_METHODS)} (use device='cpu' with threads=k)")
    check_rounding(rounding, device)
    check_device(device)
    Xv = check_batch(X, weights.input_size)
    N = Xv.shape[0]
    if labels is None:
        labs: list[Any] = [None] * N
    else:
        arr = np.asarray(labels)
        if arr.shape != (N,):
            raise ValueError(f"labels must have shape ({N},) to match X, got {arr.shape}")
        labs = [check_class(v, weights.num_classes, "labels") for v in arr.tolist()]
    kwargs = dict(eps_max=eps_max, p=p, target=target, frames=frames, rtol=rtol, planes=planes, rounding=rounding)
    if threat is not None:
        kwargs.update(threat)
    # validate the shared arguments once, here, rather than N times on the workers
    check_eps(eps_max, "eps_max")
    parse_p(p)
    if planes not in PLANE_METHODS:
        raise ValueError(f"planes must be one of {list(PLANE_METHODS)}, got {planes!r}")
    mask, _ = frame_mask(frames, Xv.shape[1])
    if threat is not None:
        for i in range(N):  # the domain must hold every input
            check_threat(Xv[i], mask, **threat)
    if target is not None:
        check_class(target, weights.num_classes, "target")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or threads < 1):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if isinstance(retries, bool) or not isinstance(retries, (int, np.integer)) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}")
    report = _progress_callback(progress, N)
    if device == "cuda":  # one batched pass per round of probes; threads/executor do not apply
        if executor is not None:
            raise ValueError("executor cannot be combined with device='cuda' (the GPU runs the batch)")
        return _certify_batched(weights, Xv, labs, kwargs, device, report)
    own = executor is None and (threads or 1) > 1
    ex = ThreadPoolExecutor(int(threads)) if own else executor
    if ex is None:
        out: list[Certificate] = []
        for i in range(N):
            out.extend(_certify_chunk(weights, Xv[i:i + 1], labs[i:i + 1], kwargs))
            report(i + 1)
        return out
    workers = int(threads) if threads else 4
    size = int(chunk_size) if chunk_size else max(1, min(64, -(-N // (4 * workers))))
    return _certify_resilient(weights, Xv, labs, kwargs, ex, size, retries, report, own)


def _certify_resilient(weights: Any, Xv: np.ndarray, labs: list[Any], kwargs: dict[str, Any], ex: Executor,
                       size: int, retries: int, report: Any, own: bool) -> list[Certificate]:
    """certify_many on an executor: chunks resubmitted when a worker is lost (resilient.py);
    inputs that fail ``retries + 1`` times raise IncompleteRunError after the others finish."""
    from .resilient import IncompleteRunError, Work, run_resilient

    N = len(Xv)
    works = (Work(0, tuple(range(s, min(s + size, N)))) for s in range(0, N, size))

    def payload(w: Work) -> tuple[Any, ...]:
        lo, hi = w.indices[0], w.indices[-1] + 1
        return (weights, Xv[lo:hi], labs[lo:hi], kwargs) if len(w.indices) == hi - lo else \
            (weights, Xv[list(w.indices)], [labs[i] for i in w.indices], kwargs)

    out: list[Optional[Certificate]] = [None] * N
    errors: dict[int, str] = {}
    done = 0
    try:
        for o in run_resilient(works, _certify_chunk, payload, ex, max_attempts=retries + 1,
                               window=max(1, -(-N // size))):  # X is in memory: submit every chunk
            if o.ok:
                out[o.index] = o.value
            else:
                errors[o.index] = o.error or "failed"
            done += 1
            report(done)
    finally:
        if own:
            ex.shutdown(wait=True, cancel_futures=True)
    if errors:
        raise IncompleteRunError(out, errors, retries + 1)
    return [c for c in out if c is not None]


class _ProgressBar:
    """A one-line progress bar with rate and ETA on stderr, shown once a run takes over ``delay`` s."""

    def __init__(self, total: int, label: str = "certify", delay: float = 1.0, stream: Any = None) -> None:
        import sys
        self.total, self.label, self.delay = total, label, delay
        self.stream = sys.stderr if stream is None else stream
        self.t0 = time.perf_counter()
        self.last = -1.0
        self.shown = False
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        elapsed = now - self.t0
        final = done >= self.total
        if elapsed < self.delay and not (final and self.shown):
            return
        # a terminal gets ten redraws a second; a log file one line every five seconds
        if not final and now - self.last < (0.1 if self.tty else 5.0):
            return
        self.last = now
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        width = 24
        fill = int(width * done / self.total) if self.total else width
        bar = "#" * fill + "." * (width - fill)
        eta_s = "--:--" if not np.isfinite(eta) else f"{int(eta) // 60:02d}:{int(eta) % 60:02d}"
        line = (f"{self.label} [{bar}] {done}/{self.total} {100.0 * done / max(self.total, 1):5.1f}% "
                f"{rate:.2f} it/s elapsed {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d} ETA {eta_s}")
        end = "\n" if (final or not self.tty) else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()
        self.shown = True


def _progress_callback(progress: Any, total: int) -> Any:
    """Normalise ``progress`` (bool or callable(done, total)) into a callable(done)."""
    if callable(progress):
        return lambda done: progress(done, total)
    if progress:
        return _ProgressBar(total)
    return lambda done: None
