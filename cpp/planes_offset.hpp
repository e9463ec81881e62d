// Exact offsets of a plane under / over the 2-D products of LSTM/GRU cells
// (ALGORITHM.md §3):   F1(x, y) = tanh(x) * sigmoid(y),   F2(x, y) = x * sigmoid(y)
// on a box [xl, xu] x [yl, yu] (degenerate boxes allowed). Two more surfaces serve the
// GRU's shared-z relaxation (RECURRENCES.md §4 "GRU, shared z"):
//   F3(x, y) = tanh(x) * y (TanhLinear),   F4(x, y) = x * y (Bilinear).
// Every surface is f(x) g(y) with f in {tanh, id}, g in {sigmoid, id}, both increasing.
// For F3 / F4 (g linear): edges x = x0 are linear in y (endpoints only); F3's edges
// y = y0 (y0 != 0): y0 sech^2(x) = a, i.e. |x| = atanh(sqrt(1 - a/y0)) when 0 < a/y0 < 1
// (y0 == 0 or a/y0 outside (0, 1]: endpoints only); interior critical points of F3 and
// F4 are saddles (Hessian det -f'(x)^2 < 0), never extremes.
//
// For slopes (a, b), g = F - a x - b y is smooth, so its max and min over the box
// are attained among (§3):
//   * the 4 corners;
//   * edge x = x0: f(x0) sigma'(y) = b, i.e. sech^2(y/2) = 4 b / f(x0)   (f = tanh or id);
//   * edge y = y0 (F1 only; F2 is linear in x there): sigma(y0) sech^2(x) = a;
//   * interior (F1 only): s (1 - t^2) = a, t s (1 - s) = b with s = sigma(y), t = tanh(x):
//     s solves s (s - a)(1 - s)^2 = b^2 on (max(a, 0), 1), which needs 0 < a < 1.
//     log h(s), h = s(s-a)(1-s)^2, is strictly concave on (a, 1), so h rises to one peak
//     s_p = ((2 + 3a) + sqrt(9a^2 - 4a + 4)) / 8 (root of h'(s) = 0) and falls: at most one
//     root per branch. Each branch is solved in y = logit(s) (accurate for saturated s)
//     by safeguarded Newton on h(y) - b^2 (log form for |b| < 1e-150) inside a
//     sign-change bracket.
//     F2's interior critical points are saddles (Hessian det -sigma'^2 < 0), never extremes.
//     Which interior points can be extremes: det Hess F = -(1 - t^2) s (1 - s) q(s) with
//     q(s) = h'(s) / (1 - s) = -4 s^2 + (2 + 3a) s - a, so the root on h's rising branch
//     (q > 0) and the b = 0 point (q(a) = a (1 - a) > 0) are saddles; the root on the falling
//     branch (q < 0) is a local max of F (and of g: same Hessian) where t > 0, i.e. b > 0
//     (b = t s (1 - s)), a local min where b < 0. A one-sided search (Want::Min / Want::Max,
//     what every plane offset needs) solves only that branch, and only for the sign of b
//     whose extreme it wants: a saddle is never an extreme of g over the box. Likewise on an
//     edge, where the box's min (max) can only be the edge's local min (max): of the two
//     stationary points +-ys (+-xs) a one-sided search visits the one of its kind.
// Any point of the box is a harmless extra candidate (g there is <= max, >= min), so
// candidates are only ever kept when they lie in the box; missing none is what matters.
// Root/closed-form location errors enter g only at second order (g is stationary there).
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>

#include "lines.hpp"

namespace pq {

enum class Surface { TanhSigmoid, XSigmoid, TanhLinear, Bilinear };

// Which extremes of g = F - a x - b y a search needs.
enum class Want { Both, Min, Max };

namespace detail {

template <class T>
struct Box {
  T xl, xu, yl, yu;
  PQ_HD bool contains(T x, T y) const { return x >= xl && x <= xu && y >= yl && y <= yu; }
};

// f(x) and g(y) (sigma or y) at the box's sides, computed once per box and reused by every
// pricing; and where f' and g' are not constant, sech^2 at x's sides (tanh' for F1, F3) and
// sech^2(y / 2) = 4 sigma' at y's (F1, F2): the range of k in which an edge's stationary
// point lies on the edge (edge_point_may_lie), zero where unused.
template <class T>
struct SideValues {
  T fxl, fxu, syl, syu;
  T dxl = T(0), dxu = T(0), dyl = T(0), dyu = T(0);
};

// F = f(x) g(y): f = tanh for F1, F3 (else x); g = sigma for F1, F2 (else y).
PQ_HD inline bool tanh_f(Surface s) { return s == Surface::TanhSigmoid || s == Surface::TanhLinear; }
PQ_HD inline bool sigmoid_g(Surface s) { return s == Surface::TanhSigmoid || s == Surface::XSigmoid; }

template <class T>
PQ_HD inline T surface_factor(Surface s, T x) {
  return tanh_f(s) ? std::tanh(x) : x;
}

template <class T>
PQ_HD inline T surface_g(Surface s, T y) {
  return sigmoid_g(s) ? sigmoid(y) : y;
}

template <class T>
PQ_HD inline T surface_df(Surface s, T x) {
  return tanh_f(s) ? dtanh(x) : T(1);
}

template <class T>
PQ_HD inline T surface_dg(Surface s, T y) {
  return sigmoid_g(s) ? dsigmoid(y) : T(1);
}

template <class T>
PQ_HD inline T surface_value(Surface s, T x, T y) {
  return surface_factor(s, x) * surface_g(s, y);
}

template <class T>
PQ_HD inline SideValues<T> side_values(Surface sf, const Box<T>& bx) {
  SideValues<T> v{surface_factor(sf, bx.xl), surface_factor(sf, bx.xu), surface_g(sf, bx.yl), surface_g(sf, bx.yu)};
  if (tanh_f(sf)) { v.dxl = dtanh(bx.xl); v.dxu = dtanh(bx.xu); }
  if (sigmoid_g(sf)) { v.dyl = T(4) * dsigmoid(bx.yl); v.dyu = T(4) * dsigmoid(bx.yu); }
  return v;
}

// Whether an edge's stationary point z = ±z(k) (z(k) >= 0 with d(z(k)) = k, d = sech^2 of the
// edge's variable, scaled: d(lo), d(hi) given, d(0) = 1) can lie in [lo, hi]: pos for +z, neg
// for -z, k in (0, 1] (z(1) = 0). d is even and falls on [0, inf), so +z in [lo, hi] iff
// hi >= 0 and d(hi) <= k <= d(max(lo, 0)); -z iff lo <= 0 and d(lo) <= k <= d(max(-hi, 0)).
// False only where k lies outside by a relative 1e-6: there z(k) is at least 5e-7 (in the
// edge's variable, /2 for sech^2(y / 2)) outside, far beyond the few ulps by which the computed
// z(k) and d can be off, so the candidates skipped are exactly those the exact test (on the
// computed z) leaves out: the same visits, without the inverse's transcendental calls.
template <class T>
PQ_HD inline bool edge_point_may_lie(T k, bool pos, bool neg, T lo, T hi, T dlo, T dhi) {
  const T up = T(1) + T(1e-6), dn = T(1) - T(1e-6);
  auto within = [&](T d_far, T d_near) { return k >= d_far * dn && k <= d_near * up; };
  return (pos && hi >= T(0) && within(dhi, lo > T(0) ? dlo : T(1))) ||
         (neg && lo <= T(0) && within(dlo, hi < T(0) ? dhi : T(1)));
}

template <class T>
PQ_HD inline T logit(T s) {
  return std::log(s) - std::log1p(-s);
}

// Interior critical points of F1 - a x - b y (0 < a < 1, b != 0): roots y of
// h(y) = b^2, h = s (s - a) r^2 with s = sigma(y), r = 1 - s = sigma(-y), on [lo, hi]
// where h is monotone (increasing if rising, else decreasing); calls visit(y) for the
// root if the bracket has a sign change. Residual: R(y) = h(y) - b^2 for |b| >= 1e4 sqrt(min normal) (1.5e-150 in double)
// (b^2 normal), else the log form L(y) = log s + log(s - a) + 2 log r - 2 log|b| (no
// underflow). s - a <= 0 counts as h = 0 < b^2. Safeguarded Newton in a shrinking bracket.
template <class T, class Visit>
PQ_HD inline void solve_branch(T a, T b, T lo, T hi, bool rising, Visit&& visit) {
  if (!(lo <= hi)) return;
  const bool logform = std::fabs(b) < std::sqrt(std::numeric_limits<T>::min()) * T(1e4);  // b^2 not normal
  const T b2 = b * b, logb2 = T(2) * std::log(std::fabs(b));
  // residual and derivative in y (flipped so that it is increasing on the branch)
  auto eval = [&](T y, T& R, T& dR) {
    T s, r;
    if (y >= T(0)) { const T e = std::exp(-y); s = T(1) / (T(1) + e); r = e / (T(1) + e); }
    else { const T e = std::exp(y); s = e / (T(1) + e); r = T(1) / (T(1) + e); }
    const T sa = s - a;
    const T q = -T(4) * s * s + (T(2) + T(3) * a) * s - a;  // dh/ds / r
    if (!(sa > T(0))) {
      R = logform ? -std::numeric_limits<T>::infinity() : -b2;
      dR = T(0);
    } else if (logform) {
      R = std::log(s) + std::log(sa) + T(2) * std::log(r) - logb2;   // r > 0 here unless y > ~745
      dR = q / sa;  // d log h / dy = (q r * s r) / (s sa r^2)
      if (!std::isfinite(R)) R = -std::numeric_limits<T>::infinity();
    } else {
      R = s * sa * r * r - b2;
      dR = q * r * s * r;  // dh/dy = (dh/ds) s r = q r * s r
    }
    if (!rising) { R = -R; dR = -dR; }
  };
  T flo, fhi, d;
  eval(lo, flo, d);
  eval(hi, fhi, d);
  if (flo > T(0) || fhi < T(0)) return;  // no root in [lo, hi]
  if (flo == T(0)) { visit(lo); return; }
  if (fhi == T(0)) { visit(hi); return; }
  const T eps = std::numeric_limits<T>::epsilon();
  T y = T(0.5) * lo + T(0.5) * hi;
  for (int it = 0; it < 100; ++it) {
    T fy, dy;
    eval(y, fy, dy);
    if (fy < T(0)) lo = y; else if (fy > T(0)) hi = y; else break;
    if (hi - lo <= T(4) * eps * std::max(T(1), std::fabs(y))) break;
    T next = (dy > T(0) && std::isfinite(fy)) ? y - fy / dy : T(0.5) * (lo + hi);
    if (!(next > lo && next < hi)) next = T(0.5) * lo + T(0.5) * hi;
    if (next == y) break;
    y = next;
  }
  visit(y);
}

// Calls visit(x, y, F(x, y)) for every candidate extreme of F - a x - b y in the box (§3);
// want: Min / Max leave out the interior points that cannot be that extreme (header).
// F at corners and on the sides reuses sv (f and sigma at the sides).
template <class T, class Visit>
PQ_HD inline void for_each_candidate(Surface sf, T a, T b, const Box<T>& bx, const SideValues<T>& sv, Visit&& visit,
                                     Want want = Want::Both) {
  const T inf = std::numeric_limits<T>::infinity();
  // corners (duplicates in degenerate boxes are harmless)
  visit(bx.xl, bx.yl, sv.fxl * sv.syl);
  visit(bx.xl, bx.yu, sv.fxl * sv.syu);
  visit(bx.xu, bx.yl, sv.fxu * sv.syl);
  visit(bx.xu, bx.yu, sv.fxu * sv.syu);
  // edges x = x0: f(x0) sigma'(y) = b  <=>  sech^2(y/2) = 4 b / f(x0)  (g = y: linear there)
  const int nx = !sigmoid_g(sf) ? 0 : (bx.xl == bx.xu) ? 1 : 2;
  for (int e = 0; e < nx; ++e) {
    const T x0 = e == 0 ? bx.xl : bx.xu;
    const T f0 = e == 0 ? sv.fxl : sv.fxu;
    if (f0 == T(0)) continue;
    const T k = T(4) * (b / f0);
    if (!(k > T(0))) continue;
    // k > 1 has no solution; min(k, 1) then only adds the harmless point y = 0
    const T kc = std::min(k, T(1));
    // along the edge g'' = f0 sigma''(y), sigma'' < 0 for y > 0: +ys is the edge's local max
    // where f0 > 0, -ys its local min (one-sided searches visit only their kind; y = 0 always)
    const bool kind = want == Want::Both || (want == Want::Max) == (f0 > T(0));
    const bool neg = want == Want::Both || (want == Want::Min) == (f0 > T(0));
    if (!edge_point_may_lie(kc, kind || kc >= T(1), neg, bx.yl, bx.yu, sv.dyl, sv.dyu)) continue;
    const T ys = T(2) * inv_sech2(kc);
    const bool pos = kind || ys == T(0);
    if (ys < inf) {
      if (pos && ys >= bx.yl && ys <= bx.yu) visit(x0, ys, f0 * sigmoid(ys));
      if (neg && -ys >= bx.yl && -ys <= bx.yu && ys != T(0)) visit(x0, -ys, f0 * sigmoid(-ys));
    }
  }
  if (!tanh_f(sf)) return;  // F2, F4: linear in x on y-edges, saddles inside
  // edges y = y0: g(y0) sech^2(x) = a (k = a / g(y0); g(y0) = 0 gives k = +-inf or NaN: the
  // edge is then g = -a x - b y0, linear, and inf clamps to the harmless point x = 0)
  const int ny = (bx.yl == bx.yu) ? 1 : 2;
  for (int e = 0; e < ny; ++e) {
    const T y0 = e == 0 ? bx.yl : bx.yu;
    const T s0 = e == 0 ? sv.syl : sv.syu;
    const T k = a / s0;
    if (!(k > T(0))) continue;
    const T kc = std::min(k, T(1));
    // along the edge g'' = -2 s0 tanh(x) sech^2(x): +xs is the edge's local max where s0 > 0
    const bool kind = want == Want::Both || (want == Want::Max) == (s0 > T(0));
    const bool neg = want == Want::Both || (want == Want::Min) == (s0 > T(0));
    if (!edge_point_may_lie(kc, kind || kc >= T(1), neg, bx.xl, bx.xu, sv.dxl, sv.dxu)) continue;
    const T xs = inv_sech2(kc);
    const bool pos = kind || xs == T(0);
    if (xs < inf) {
      if (pos && xs >= bx.xl && xs <= bx.xu) visit(xs, y0, std::tanh(xs) * s0);
      if (neg && -xs >= bx.xl && -xs <= bx.xu && xs != T(0)) visit(-xs, y0, std::tanh(-xs) * s0);
    }
  }
  if (sf != Surface::TanhSigmoid) return;  // F3: saddles inside
  // interior: needs 0 < a < 1; one-sided: only a local min (b < 0) or max (b > 0) of F
  if (!(a > T(0) && a < T(1))) return;
  if (want != Want::Both && (b == T(0) || (want == Want::Max) != (b > T(0)))) return;
  if (b == T(0)) {  // t = 0, s = a
    const T y = logit(a);
    if (bx.contains(T(0), y)) visit(T(0), y, T(0));
    return;
  }
  const T rt = std::sqrt(T(9) * a * a - T(4) * a + T(4));
  const T sp = ((T(2) + T(3) * a) + rt) / T(8);
  // one-sided: the falling branch is y >= yp = logit(sp), above the box when sigma(yu) < sp (a
  // root that rounding hides there lies within rounding of the edge y = yu, whose own
  // stationary point then gives g to second order in that distance)
  if (want != Want::Both && sv.syu < sp) return;
  const T one_minus_sp = T(4) * (T(1) - a) / ((T(6) - T(3) * a) + rt);  // no cancellation
  const T yp = std::log(sp) - std::log(one_minus_sp);
  const T sgn = b > T(0) ? T(1) : T(-1);
  auto on_root = [&](T y) {
    const T s = sigmoid(y);
    const T xabs = inv_sech2(a / s);  // sech^2 x = a / s
    if (xabs < inf) {
      const T x = sgn * xabs;
      if (bx.contains(x, y)) visit(x, y, std::tanh(x) * s);
    }
  };
  if (want == Want::Both)  // the saddles
    solve_branch(a, b, std::max(bx.yl, logit(a)), std::min(bx.yu, yp), true, on_root);
  solve_branch(a, b, std::max(bx.yl, yp), bx.yu, false, on_root);
}

template <class T, class Visit>
PQ_HD inline void for_each_candidate(Surface sf, T a, T b, const Box<T>& bx, Visit&& visit, Want want = Want::Both) {
  for_each_candidate(sf, a, b, bx, side_values(sf, bx), [&](T x, T y, T) { visit(x, y); }, want);
}

// Extremes of g = F - a x - b y over the box, with their arguments.
template <class T>
struct Extremes {
  T gmax, xmax, ymax;
  T gmin, xmin, ymin;
  T fmax, fmin;  // F at (xmax, ymax) and at (xmin, ymin), as F(x, y) computes it
};

// want = Min (Max): only gmin, xmin, ymin (gmax, ...) are computed; the other side is left at
// -inf / +inf (the same values as a two-sided search on that side).
template <class T>
PQ_HD inline Extremes<T> offset_extremes(Surface sf, T a, T b, const Box<T>& bx, const SideValues<T>& sv,
                                         Want want = Want::Both) {
  Extremes<T> r;
  r.gmax = -std::numeric_limits<T>::infinity();
  r.gmin = std::numeric_limits<T>::infinity();
  r.xmax = r.xmin = bx.xl;
  r.ymax = r.ymin = bx.yl;
  r.fmax = r.fmin = sv.fxl * sv.syl;
  for_each_candidate(sf, a, b, bx, sv, [&](T x, T y, T f) {
    const T g = f - a * x - b * y;
    if (g > r.gmax && want != Want::Min) { r.gmax = g; r.xmax = x; r.ymax = y; r.fmax = f; }
    if (g < r.gmin && want != Want::Max) { r.gmin = g; r.xmin = x; r.ymin = y; r.fmin = f; }
  }, want);
  return r;
}

// Safety margin for plane offsets: 8 eps (max|F| + |a| max|x| + |b| max|y|) (+ tiny).
// Rounding budget (unit roundoff u = eps/2): F costs <= ~5u|F| (tanh, sigmoid, product),
// g = F - a x - b y another ~3u of the magnitudes, and the consumer's evaluation of
// a x + b y + c about 3u of them (|c| <= |F| + |a x| + |b y|) plus its own ~5u|F|:
// about 15u|F| + 9u(|a x| + |b y|) <= 16u(...) = 8 eps (...).
// max|F| over the box is attained at a corner (F is monotone in each variable).
template <class T>
PQ_HD inline T plane_margin(T a, T b, const Box<T>& bx, const SideValues<T>& sv) {
  const T eps = std::numeric_limits<T>::epsilon();
  const T fmax = std::max(std::fabs(sv.fxl), std::fabs(sv.fxu)) * std::max(std::fabs(sv.syl), std::fabs(sv.syu));
  const T xmax = std::max(std::fabs(bx.xl), std::fabs(bx.xu));
  const T ymax = std::max(std::fabs(bx.yl), std::fabs(bx.yu));
  return T(8) * eps * (fmax + std::fabs(a) * xmax + std::fabs(b) * ymax) + absolute_slack<T>();
}


}  // namespace detail

// Exact (unwidened) min and max of F - a x - b y over the box: the tightest valid
// offsets for the slopes (a, b), each by a one-sided search. bound_product adds
// plane_margin on top of these.
template <class T>
void plane_offset(Surface s, const T* a, const T* b, const T* xl, const T* xu, const T* yl, const T* yu,
                  std::ptrdiff_t n, T* cmin, T* cmax) {
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const detail::Box<T> bx{xl[i], xu[i], yl[i], yu[i]};
    const auto sv = detail::side_values(s, bx);
    cmin[i] = detail::offset_extremes(s, a[i], b[i], bx, sv, Want::Min).gmin;
    cmax[i] = detail::offset_extremes(s, a[i], b[i], bx, sv, Want::Max).gmax;
  }
}

}  // namespace pq
