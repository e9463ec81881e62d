"""Radius search over ε (ALGORITHM.md §1, docs/RECURRENCES.md §5).

Sound whatever the bound does between probes: the returned ε is always one
at which certification succeeded (or 0), since a certified ball certifies
every smaller ball.

The probe callable may return the smallest lower bound of the margins (a
float, certified iff > 0) rather than a bool. The values then steer the
probes: secant steps on ε ↦ margin, then (once the root is bracketed) the
root of a parabola through the nearest probes, each placed just past the
estimated root on the side the bracket still lacks, so that a good estimate
closes the bracket to ``rtol`` in two probes. Every step is
safeguarded (kept inside the bracket, at most 16x from the last certified ε,
and replaced by a bisection when the bracket stops shrinking), so the search
never takes more probes than about twice plain bisection. A bool gives plain
doubling / bisection.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Generator, Optional, Union

import numpy as np

MAX_PASSES = 200
EPS_FLOOR = 1e-7
EPS_START = 0.1
GROW_MAX = 16.0     # the largest factor of an aimed step up before any probe failed
SHRINK_MAX = 256.0  # the largest factor of an aimed step down before any probe certified


@dataclass(frozen=True)
class SearchResult:
    """Outcome of a radius search."""
    eps: float                      # largest certified ε (0.0 if none)
    eps_upper: Optional[float]      # smallest probed ε that failed, None if none failed
    passes: int                     # bound computations spent
    relaxed_at: Optional[float] = None  # eps was certified by the relaxations of this failed probe


# what a probe reports: a bool, the smallest margin lower bound, or that and the largest
# smaller radius the probe's own relaxations certify (smaller_ball.py; None: none)
Probe = Union[bool, float, tuple[float, Optional[float]]]


def _secant_root(e1: float, f1: float, e2: float, f2: float) -> Optional[float]:
    """Root of the line through (e1, f1) and (e2, f2), None if it has none (or is not finite)."""
    if not (math.isfinite(f1) and math.isfinite(f2)) or f1 == f2:
        return None
    r = e2 - f2 * (e2 - e1) / (f2 - f1)
    return r if math.isfinite(r) else None


def _has_slope(slope: Optional[float]) -> bool:
    return slope is not None and math.isfinite(slope) and slope > 0.0


def _cubic_root(m0: float, s0: float, p1: tuple[float, float], p2: tuple[float, float], lo: float,
                hi: float) -> Optional[float]:
    """The smallest root in (lo, hi) of the cubic with value m0 and slope −s0 at ε = 0 that
    passes through p1 and p2; None if it has none there (or the points are degenerate)."""
    (e1, f1), (e2, f2) = p1, p2
    r1, r2 = f1 - m0 + s0 * e1, f2 - m0 + s0 * e2  # = a e² + b e³ at e1, e2
    den = e1 * e1 * e2 * e2 * (e2 - e1)
    if not (math.isfinite(r1) and math.isfinite(r2)) or den == 0.0 or not math.isfinite(den):
        return None
    b = (r2 * e1 * e1 - r1 * e2 * e2) / den
    a = (r1 - b * e1 ** 3) / (e1 * e1)
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    roots = [z.real for z in np.roots([b, a, -s0, m0]) if abs(z.imag) <= 1e-12 * max(1.0, abs(z.real))]
    inside = [z for z in roots if lo < z < hi]
    return min(inside) if inside else None


def _quadratic_root(m0: float, s0: float, e1: float, f1: float) -> Optional[float]:
    """The positive root of the parabola with value m0 > 0 and slope −s0 at ε = 0 through
    (e1, f1), where that parabola bends down (the margin falls faster and faster, as the
    shared models' do); None otherwise (a margin that falls slower and slower: the chord),
    or where the probe has not yet lost a tenth of m0 (too little of the curve seen)."""
    if not (math.isfinite(f1) and e1 > 0.0 and m0 > 0.0 and f1 <= 0.9 * m0):
        return None
    a = (f1 - m0 + s0 * e1) / (e1 * e1)  # m0 − s0 e + a e²
    if not (math.isfinite(a) and a < 0.0):
        return None
    r = 2.0 * m0 / (s0 + math.sqrt(s0 * s0 - 4.0 * a * m0))  # the stable form of the root
    return r if math.isfinite(r) else None


def _saturated_root(f0: float, hi: float, f_hi: float) -> float:
    """Where to aim below a failed probe whose margin f_hi is below −f0 (f0 = the clean
    margin): there the loss f0 − f(ε) has stopped growing (a squashing activation's bounds
    are bounded), so the chord from ε = 0 falls short of the root. The root of a loss that
    grows as ε^(4/3), between the chord's (ε^1) and a square law's (§5)."""
    return hi * (f0 / (f0 - f_hi)) ** 0.75


def _parabola_root(lo: float, f_lo: float, hi: float, p2: tuple[float, float],
                   p3: tuple[float, float]) -> Optional[float]:
    """The first root in (lo, hi) of the parabola through (lo, f_lo) (f_lo > 0), p2 and p3:
    where it first turns non-positive to the right of lo; None if it does not there (or
    the points are degenerate)."""
    (e2, f2), (e3, f3) = p2, p3
    if not (math.isfinite(f2) and math.isfinite(f3)) or len({lo, e2, e3}) < 3:
        return None
    d12 = (f2 - f_lo) / (e2 - lo)
    c = ((f3 - f2) / (e3 - e2) - d12) / (e3 - lo)  # second divided difference
    b = d12 + c * (lo - e2)                          # slope at lo
    if not (math.isfinite(b) and math.isfinite(c)):
        return None
    w = hi - lo
    # c t^2 + b t + f_lo = 0 in t = e - lo; roots 2 f_lo / (-b -+ sqrt(b^2 - 4 c f_lo))
    disc = b * b - 4.0 * c * f_lo
    if not disc >= 0.0:
        return None
    sq = math.sqrt(disc)
    ts = [2.0 * f_lo / den for den in (-b - sq, -b + sq) if den != 0.0]
    ts = [t for t in ts if 0.0 < t < w and math.isfinite(t)]
    return lo + min(ts) if ts else None


def search_radius(certified: Callable[[float], Probe], eps_max: float, rtol: float = 1e-3,
                  eps_start: float = EPS_START, max_passes: int = MAX_PASSES,
                  margin_at_zero: Optional[float] = None, slope: Optional[float] = None,
                  slope_at_zero: Optional[float] = None) -> SearchResult:
    """Largest certified ε in ``(0, eps_max]`` to relative accuracy ``rtol``.

    Parameters
    ----------
    certified : callable
        ``certified(eps)`` runs one bound pass. It returns either a bool (is every
        margin's lower bound > 0 at ``eps``?) or a float, the smallest margin lower
        bound (certified iff > 0), which lets the search aim its probes, or a pair
        (that float, a radius below ``eps`` that the failed pass's own relaxations
        certify, or None; smaller_ball.py), which may end the search at a failed probe.
    eps_max : float
        The search never probes above it; returning it means "certified up to the cap".
    rtol : float
        Stop when ``hi - lo <= rtol * lo``.
    eps_start : float
        The first probe (capped at ``eps_max``).
    max_passes : int
        Hard cap on the number of probes.
    margin_at_zero : float, optional
        The smallest margin of the clean input (the bound at ε = 0); only steers the
        probes, never decides certification.
    slope : float, optional
        How fast the margin falls near its root (−dm/dε > 0), known from an earlier search
        of a similar bound: the step after the first probe is then a Newton step from it
        instead of the chord from ε = 0. Only steers the probes.
    slope_at_zero : float, optional
        −dm/dε at ε = 0 (with ``margin_at_zero``): the first bracket's estimate is then the
        root of the cubic through the clean margin, this slope and the two probes. Only
        steers the probes.

    Returns
    -------
    SearchResult
        ``eps`` is a probed ε at which ``certified`` succeeded, or a radius a failed probe
        certified (then ``relaxed_at`` is that probe), or 0.0; ``eps_upper`` a probed ε at
        which it failed (None if none did).
    """
    steps = search_steps(eps_max, rtol, eps_start, max_passes, margin_at_zero, slope, slope_at_zero)
    try:
        eps = next(steps)
        while True:
            eps = steps.send(certified(eps))
    except StopIteration as done:
        return done.value


def search_steps(eps_max: float, rtol: float = 1e-3, eps_start: float = EPS_START,
                 max_passes: int = MAX_PASSES, margin_at_zero: Optional[float] = None,
                 slope: Optional[float] = None, slope_at_zero: Optional[float] = None
                 ) -> Generator[float, Probe, SearchResult]:
    """The search of :func:`search_radius` as a generator, for batched drivers.

    Yields each ε to probe and receives (``send``) what ``certified(ε)`` would return;
    its return value (``StopIteration.value``) is the :class:`SearchResult`. Driving
    many of these in lock step lets one batched bound pass serve the probes of many
    inputs (``certify_many(device="cuda")``) with exactly the same search per input.
    """
    passes = 0
    informative = True
    pts: list[tuple[float, float]] = []      # every probe (ε, value), in order
    f_zero = margin_at_zero if margin_at_zero is not None else math.nan  # the clean margin (NaN: unknown)
    lo, f_lo = 0.0, f_zero
    hi: Optional[float] = None
    f_hi = math.nan
    side = rtol / 3.0                        # offset of a probe from the estimated root
    hinted = _has_slope(slope)

    below = 0.0                              # the best radius certified by a failed probe
    below_at: Optional[float] = None         # ... and that probe
    direct: dict[float, float] = {}          # a failed probe's −dm/dε with its relaxations fixed

    def record(e: float, raw: Probe) -> bool:
        nonlocal passes, informative, lo, f_lo, hi, f_hi, below, below_at
        passes += 1
        if isinstance(raw, tuple):
            raw, within = raw
            if within is not None and 0.0 < within < e:
                direct[e] = -float(raw) / (e - within)
                if within > below:
                    below, below_at = within, e
        if isinstance(raw, (bool, np.bool_)):
            informative = False
            v = 1.0 if raw else -1.0
        else:
            v = float(raw)
        ok = v > 0.0
        pts.append((e, v))
        if ok and e > lo:
            lo, f_lo = e, v
        elif not ok and (hi is None or e < hi):
            hi, f_hi = e, v
        return ok

    zero = [(0.0, f_zero)] if margin_at_zero is not None else []
    record(min(eps_start, eps_max), (yield min(eps_start, eps_max)))
    widths: list[float] = []
    bisected = False
    excused = False                          # the last stall was let pass (converging)
    aimed_short = False                      # the last aimed step outside a bracket fell short
    while passes < max_passes:
        if hi is None:                       # everything so far certified: grow
            if lo >= eps_max:
                break
            r = None
            local = informative and hinted   # steps from the slope and the nearby probes
            newton = local and len(pts) == 1
            if informative:
                good = sorted([p for p in pts if p[1] > 0.0] + zero)  # good[-1] is (lo, f_lo)
                if newton:
                    r = lo + f_lo / slope
                elif len(pts) == 1 and _has_slope(slope_at_zero) and math.isfinite(f_zero):
                    # from the first probe: the parabola through m(0), m'(0) and it (the
                    # margin falls faster and faster; the chord from ε = 0 overshoots)
                    r = _quadratic_root(f_zero, slope_at_zero, lo, f_lo)
                if r is None and not newton and len(good) > 1:
                    r = _secant_root(good[-2][0], good[-2][1], lo, f_lo)
            if r is None or r <= lo:
                nxt = 2.0 * lo
            elif aimed_short:                # the last aimed step still certified: step further
                nxt = (min(lo + 2.0 * (r * (1.0 + side) - lo), 2.0 * lo) if local
                       else min(max(r * (1.0 + side), 2.0 * lo), GROW_MAX * lo))
            else:
                nxt = min(max(r * (1.0 + side), lo * (1.0 + 2.0 * side)), GROW_MAX * lo)
            aimed_short = record(min(nxt, eps_max), (yield min(nxt, eps_max))) and not newton
            continue
        if hi - below <= rtol * below:       # a failed probe certified within rtol of itself
            break
        if lo == 0.0:                        # nothing certified yet: shrink
            local = informative and hinted
            newton = local and len(pts) == 1
            bad = sorted(p for p in pts if math.isfinite(p[1]))[:2]  # the two smallest failed
            if newton:                       # from the first probe, along the known slope
                r = hi + f_hi / slope if math.isfinite(f_hi) else None
            elif local and len(bad) == 2:    # probes near the root: the secant through them
                r = _secant_root(bad[0][0], bad[0][1], bad[1][0], bad[1][1])
            else:
                r = _secant_root(0.0, f_lo, hi, f_hi) if informative else None
                if r is not None and 0.0 < r < hi and f_hi < -f_lo:
                    r = _saturated_root(f_lo, hi, f_hi)
                elif len(pts) == 1 and _has_slope(slope_at_zero) and math.isfinite(f_zero):
                    # unsaturated: the parabola through m(0), m'(0) and the probe (as when growing)
                    q = _quadratic_root(f_zero, slope_at_zero, hi, f_hi)
                    r = q if q is not None and 0.0 < q < hi else r
            if r is None or not 0.0 < r < hi:
                nxt = 0.5 * hi
            else:
                nxt = max(r * (1.0 - side), hi / SHRINK_MAX)
                if aimed_short:              # the last aimed step still failed: at least halve
                    nxt = max(hi - 2.0 * (hi - nxt), 0.5 * hi) if local else min(nxt, 0.5 * hi)
            # never below what a failed probe certified: just above it, failing ends the search
            nxt = max(nxt, below * (1.0 + rtol * (1.0 - 1e-9)))
            if nxt < EPS_FLOOR:
                break
            aimed_short = not record(nxt, (yield nxt)) and not newton
            continue
        width = hi - lo
        if width <= rtol * lo:
            break
        widths.append(width)
        last_ok = pts[-1][1] > 0.0
        r = None
        spread = 0.0                         # uncertainty of r: how far to aim past it
        quad = False
        if informative:                      # linear candidates: the chord, the certified side's secant
            good = sorted([p for p in pts if p[1] > 0.0] + zero)[-2:]
            cands = [_secant_root(lo, f_lo, hi, f_hi)]
            if len(good) == 2:
                cands.append(_secant_root(good[0][0], good[0][1], good[1][0], good[1][1]))
            found = [c for c in cands if c is not None]
            if found:  # aim to cross: after a success the largest estimate, after a failure the
                r = max(found) if last_ok else min(found)  # smallest (outside the bracket: bisect)
            # better: the parabola through lo and the two probes (or ε = 0) nearest to it
            # (the margin is smooth in ε). In a wide bracket its distance to the linear
            # estimate, which errs towards the side to be crossed, is how far past it to
            # aim (§5)
            near = sorted({p for p in pts + zero if p[0] != lo and math.isfinite(p[1])},
                          key=lambda p: abs(p[0] - lo))
            r_q = _parabola_root(lo, f_lo, hi, near[0], near[1]) if len(near) >= 2 else None
            if r_q is not None:
                wide = hi > 4.0 * lo         # far ends bend the parabola: hedge towards r
                spread = abs(r - r_q) if wide and r is not None and lo < r < hi else 0.0
                r, quad = r_q, True
            # the first bracket (two probes): the cubic through m(0), m'(0) and both probes,
            # while the failed end is still on the smooth part of the curve (a saturated or
            # kinked end, far below -m(0), would bend it anywhere)
            if len(pts) == 2 and _has_slope(slope_at_zero) and f_hi >= -4.0 * f_zero:
                r_c = _cubic_root(f_zero, slope_at_zero, pts[0], pts[1], lo, hi)
                if r_c is not None:
                    r, spread, quad = r_c, 0.0, True
        # two aimed probes did not halve the bracket: bisect once (bounds the probes at
        # about three times plain bisection whatever the values say) -- unless the last two
        # probes landed on the same side with the margin at least halving, the estimates
        # closing in on the root from that side while the far end stays put; once in a row
        converging = (len(pts) >= 2 and (pts[-1][1] > 0.0) == (pts[-2][1] > 0.0)
                      and abs(pts[-1][1]) <= 0.5 * abs(pts[-2][1]) and not excused)
        stalled = len(widths) >= 3 and widths[-1] > 0.5 * widths[-3] and not bisected
        excused = stalled and converging
        stalled = stalled and not excused
        bisected = False
        if r is None or not (lo < r < hi) or stalled:
            base = max(lo, below)            # the bracket's certified end, probed or not
            nxt = math.sqrt(base * hi) if hi > 4.0 * base else 0.5 * (base + hi)
            bisected = True
        elif hi in direct and math.isfinite(f_lo):
            # the smallest failed probe's own relaxations certified below it (§5): aim just
            # above the root, where failing certifies within rtol through those relaxations
            # if the bound falls kappa times faster than the ball alone moves it, and
            # certifying pins the root from below
            kappa = max((f_lo - f_hi) / (hi - lo) / direct[hi], 1.0)
            nxt = r * (1.0 + 0.5 * rtol / kappa)
        else:                                # aim just past the root, on the side not yet pinned
            off = max(side * r, spread)
            nxt = r + off if last_ok else r - off
            # snap: a probe aimed within 2 rtol of the pinned end moves to exactly rtol from
            # it, so that landing on the expected side ends the search (with the parabola's
            # estimate, only where that estimate lies on the far side of the snapped probe)
            close_up, close_dn = lo * (1.0 + rtol * (1.0 - 1e-9)), hi / (1.0 + rtol * (1.0 - 1e-9))
            if last_ok and close_up < nxt <= lo * (1.0 + 2.0 * rtol) and (not quad or r < close_up):
                nxt = close_up
            elif (not last_ok and hi / (1.0 + 2.0 * rtol) <= nxt < close_dn
                  and (not quad or r > close_dn)):
                nxt = close_dn
        if not bisected:                     # keep an aimed probe strictly inside the bracket
            inner = 0.25 * rtol * lo
            nxt = min(max(nxt, max(lo, below) + inner), hi - inner)
        record(nxt, (yield nxt))
    if below > lo:
        return SearchResult(below, hi, passes, below_at)
    return SearchResult(lo, hi, passes)
