// Bounding planes for the 2-D products of LSTM/GRU cells (ALGORITHM.md §3):
//   F1(x, y) = tanh(x) * sigmoid(y),   F2(x, y) = x * sigmoid(y)
// on boxes [xl, xu] x [yl, yu]; and, for the GRU's shared-z relaxation (RECURRENCES.md §4),
//   F3(x, y) = tanh(x) * y,   F4(x, y) = x * y
// (the same methods with g(y) = y in place of sigma(y): "1d" bounds g by itself; F4's
// "exact" planes are McCormick planes, see mccormick_planes).
//
// For every box i and every (x, y) in it:
//   aL[i]*x + bL[i]*y + cL[i] <= F(x, y) <= aU[i]*x + bU[i]*y + cU[i]
// guaranteed in floating point: whatever the method chose as slopes, the offsets
// are the exact extremes of F - a x - b y over the box (planes_offset.hpp: all
// candidate extremes in closed form / bracketed roots) widened by plane_margin
// (8 eps of the magnitudes). Degenerate boxes (xl == xu and/or yl == yu) are allowed.
//
// Methods (slopes only; offsets always exact):
//  * Constant: slopes 0 (offsets = corner min / max: F = f(x) g(y) with f, g monotone).
//  * OneD (paper appendix B.1 baseline): sigma(y) bounded by the 1-D lines of lines.hpp,
//    f(x) (tanh x or x) by its interval endpoint:  f(x) sigma(y) <= fu sigma(y) <=
//    fu (alpha_u y + beta_u) if fu >= 0, fu (alpha_l y + beta_l) if fu < 0 (sigma > 0);
//    lower mirrored with fl. So a = 0, b = fu*alpha_{u|l} (upper), fl*alpha_{l|u} (lower).
//  * Exact: the volume-minimising plane (upper: minimise a xc + b yc + c_max(a, b),
//    (xc, yc) the box centre; lower: maximise with c_min). The optimum is the supporting
//    plane of the concave envelope of F at the centre:
//        min_{a,b} a xc + b yc + c_max(a,b) = max { sum lam_k F(p_k) : p_k in box,
//                                                 lam >= 0, sum lam = 1, sum lam p = centre }.
//    We run the simplex method on the right-hand (dual) LP with column generation:
//    the basis is a triangle of box points containing the centre, the current plane
//    interpolates F at its vertices, pricing is the EXACT offset computation (the global
//    maximiser p* of F - plane over the box, planes_offset.hpp), p* enters and the
//    vertex chosen by the barycentric ratio test leaves (the centre stays in the
//    triangle, the interpolated value at the centre never decreases). Stop when the gap
//    c_max - c_plane <= tol = max(1e-8 * range(F on box), 16 eps * magnitudes), or when
//    the best primal objective minus the best dual value (the interpolated value at the
//    centre of box points that contain it) is <= tol, or after 50 iterations; the plane with
//    the smallest objective seen is returned with its exact offset, so it is valid whatever
//    happens. Why this method: no step sizes, each iteration costs one exact-offset
//    evaluation, its optimality certificate (primal - dual gap) is exact, and on supports
//    made of corners it ends in a few pivots (degenerate cycling is bounded by the cap). One
//    cheap start comes first: the tangent plane at the centre: if its exact offset is
//    attained at the centre, the envelope equals F(centre) and that plane is the unique
//    optimum. Which optimum, and why no other warm start: the volume-minimal plane is often
//    NOT unique (a two-point support leaves a one-parameter family of planes with the same
//    volume), and the member chosen matters downstream. Starting the simplex from the corner
//    triangle ends on a vertex plane; a warm start from the best pair of points symmetric
//    about the centre (planes tangent along the edges) reached the same volumes in 2.4
//    instead of ~4 pricing calls, but cost 10 % of the certified radius on lstm_T8_h16
//    (1.054 -> 0.946 x auto_LiRPA CROWN) and 16 % on gru_T8_h16 (0.970 -> 0.81 x), so it
//    was removed. Choosing the member for the final margin is the "optimized" planes' job.
//    Nearly degenerate sides (width <= 1e-12 max(1,|end|)) get slope 0 and the 1-D version
//    of the same method on the remaining variable (the 2-point basis brackets the centre).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "common.hpp"
#include "lines.hpp"
#include "planes_offset.hpp"

namespace pq {

enum class PlaneMethod { Exact, OneD, Constant };

namespace detail {

template <class T>
PQ_HD inline bool nearly_degenerate(T lo, T hi) {
  return hi - lo <= T(1e-12) * std::max(T(1), std::max(std::fabs(lo), std::fabs(hi)));
}

// max over the box of G - A x - B y with G = sense * F, its argmax, and G there (gs: the value
// G(xs, ys) computes, without computing it again).
template <class T>
PQ_HD inline void price(Surface sf, int sense, T A, T B, const Box<T>& bx, const SideValues<T>& sv, T& gmax, T& xs,
                  T& ys, T& gs) {
  if (sense > 0) {
    const auto r = offset_extremes(sf, A, B, bx, sv, Want::Max);
    gmax = r.gmax; xs = r.xmax; ys = r.ymax; gs = r.fmax;
  } else {
    const auto r = offset_extremes(sf, -A, -B, bx, sv, Want::Min);
    gmax = -r.gmin; xs = r.xmin; ys = r.ymin; gs = -r.fmin;
  }
}

// The exact planes' stopping tolerance, relative to F's range over the box: the simplex
// converges linearly (each decade costs about 0.86 pricing calls more on LSTM boxes), and the
// plane it stops at has at most this much more volume than the optimum. 1e-8 instead of 1e-12:
// 5.5 - 6.7 instead of 8.9 - 10.1 pricing calls per plane, certified radii within -1.8e-4 ..
// +3.1e-4 (relative) of 1e-12's on 292 searches (bench/results/2026-12-10-exact-planes.md).
constexpr double kExactRelTol = 1e-8;

struct ExactStats {
  int iterations = 0;   // pricing calls
  bool converged = false;
};

// Slopes (A, B) and exact offset C (max of G - A x - B y over the box) of the
// volume-minimising plane over G = sense * F (see the header comment).
template <class T>
PQ_HD inline void exact_plane(Surface sf, int sense, const Box<T>& bx, const SideValues<T>& sv, T& A_out, T& B_out,
                        T& C_out, ExactStats* stats = nullptr, int max_iter = 50) {
  const T eps = std::numeric_limits<T>::epsilon();
  const bool dx = nearly_degenerate(bx.xl, bx.xu), dy = nearly_degenerate(bx.yl, bx.yu);
  const T xc = T(0.5) * bx.xl + T(0.5) * bx.xu, yc = T(0.5) * bx.yl + T(0.5) * bx.yu;
  const T hx = T(0.5) * (bx.xu - bx.xl), hy = T(0.5) * (bx.yu - bx.yl);
  const T s = T(sense);
  auto G = [&](T x, T y) { return s * surface_value(sf, x, y); };
  // magnitudes for the stopping tolerance
  const T g00 = s * sv.fxl * sv.syl, g10 = s * sv.fxu * sv.syl, g11 = s * sv.fxu * sv.syu, g01 = s * sv.fxl * sv.syu;
  const T gmaxc = std::max(std::max(g00, g10), std::max(g11, g01));
  const T gminc = std::min(std::min(g00, g10), std::min(g11, g01));
  const T gabs = std::max(std::fabs(gmaxc), std::fabs(gminc));
  const T X = std::max(std::fabs(bx.xl), std::fabs(bx.xu)), Y = std::max(std::fabs(bx.yl), std::fabs(bx.yu));
  auto tol_for = [&](T A, T B) {
    return std::max(T(kExactRelTol) * (gmaxc - gminc), T(16) * eps * (gabs + std::fabs(A) * X + std::fabs(B) * Y));
  };
  int iters = 0;
  T bestV = std::numeric_limits<T>::infinity(), bestA = 0, bestB = 0, bestC = 0;
  bool conv = false;
  // Evaluate slopes: exact offset, objective V = A xc + B yc + C; returns gap to the
  // value the plane would have at (xs, ys) from the basis (caller computes).
  auto consider = [&](T A, T B, T gmax) {
    const T V = A * xc + B * yc + gmax;
    if (V < bestV) { bestV = V; bestA = A; bestB = B; bestC = gmax; }
  };

  if (dx && dy) {  // a point (up to 1e-12): constant
    T gm, xs, ys, gs;
    price(sf, sense, T(0), T(0), bx, sv, gm, xs, ys, gs);
    ++iters;
    consider(T(0), T(0), gm);
    conv = true;
  } else if (dx || dy) {
    // 1-D: G restricted to a segment; slope 0 on the collapsed variable.
    // x collapsed: F is increasing in x where g(y) >= 0 (always for sigma; the GRU's F3 / F4
    // boxes have y = w, z > 0), so max_x G(x, y) is at x = xu (sense > 0) or xl. Otherwise
    // only optimality suffers: the offset below is priced over the full box.
    const T xsel = sense > 0 ? bx.xu : bx.xl;
    const Box<T> seg = dx ? Box<T>{xsel, xsel, bx.yl, bx.yu} : Box<T>{bx.xl, bx.xu, yc, yc};
    const SideValues<T> ssv = side_values(sf, seg);
    const T h = dx ? hy : hx;
    auto pt = [&](T t, T& x, T& y) {
      if (dx) { x = xsel; y = yc + h * t; } else { x = xc + h * t; y = yc; }
    };
    T t0 = -1, t1 = 1, x, y;
    pt(t0, x, y); T v0 = G(x, y);
    pt(t1, x, y); T v1 = G(x, y);
    for (int it = 0; it < max_iter; ++it) {
      const T m = (v1 - v0) / (t1 - t0);         // slope in t
      const T gam = v0 - m * t0;                   // value at the centre
      const T A = dx ? T(0) : m / h, B = dx ? m / h : T(0);
      T gm, xs, ys, gs;
      price(sf, sense, A, B, seg, ssv, gm, xs, ys, gs);
      ++iters;
      const T ts = dx ? (ys - yc) / h : (xs - xc) / h;
      const T gap = gs - (m * ts + gam);
      if (gap <= tol_for(A, B)) { conv = true; consider(A, B, gm); break; }
      consider(A, B, gm);
      if (ts > T(0)) { t1 = ts; v1 = gs; } else { t0 = ts; v0 = gs; }
      if (!(t1 > t0)) break;
    }
    // offset over the full (thin) box for the best slopes
    T gm, xs, ys, gs;
    price(sf, sense, bestA, bestB, bx, sv, gm, xs, ys, gs);
    ++iters;
    bestC = gm;
  } else {
    // 2-D. Normalised coordinates u = (x - xc)/hx, v = (y - yc)/hy in [-1, 1]^2.
    // lb: best dual value seen (the interpolated value at the centre of points of the box
    // with the centre in their convex hull) <= optimum <= bestV.
    T lb = -std::numeric_limits<T>::infinity();
    // 0) tangent plane at the centre (optimal iff its exact offset is attained at the centre):
    // the derivatives of G = s f(x) g(y) there, f and g at the centre computed once
    {
      const T fc = surface_factor(sf, xc), gc = surface_g(sf, yc);
      const T A = s * surface_df(sf, xc) * gc, B = s * fc * surface_dg(sf, yc);
      T gm, xs, ys, gs;
      price(sf, sense, A, B, bx, sv, gm, xs, ys, gs);
      ++iters;
      consider(A, B, gm);
      lb = s * (fc * gc);  // G(xc, yc)
      if (bestV - lb <= tol_for(A, B)) conv = true;
    }
    T pu[3], pv[3], pg[3];
    // 1) simplex on the dual LP with exact pricing, from the corner triangle
    if (!conv) {
      {
        // the corner diagonal with the larger mean (centre on it), plus the better other corner
        const T cu[4] = {-1, 1, 1, -1}, cv[4] = {-1, -1, 1, 1};
        const T cg[4] = {g00, g10, g11, g01};
        int i0, i1, i2;
        if (g00 + g11 >= g10 + g01) { i0 = 0; i1 = 2; i2 = (g10 >= g01) ? 1 : 3; }
        else { i0 = 1; i1 = 3; i2 = (g00 >= g11) ? 0 : 2; }
        pu[0] = cu[i0]; pv[0] = cv[i0]; pg[0] = cg[i0];
        pu[1] = cu[i1]; pv[1] = cv[i1]; pg[1] = cg[i1];
        pu[2] = cu[i2]; pv[2] = cv[i2]; pg[2] = cg[i2];
      }
      for (int it = 0; it < max_iter; ++it) {
        const T e1u = pu[1] - pu[0], e1v = pv[1] - pv[0], e2u = pu[2] - pu[0], e2v = pv[2] - pv[0];
        const T D = e1u * e2v - e1v * e2u;
        if (!(std::fabs(D) > T(64) * eps)) break;  // flat triangle: keep the best plane seen
        const T d1 = pg[1] - pg[0], d2 = pg[2] - pg[0];
        const T al = (d1 * e2v - e1v * d2) / D;     // dG/du of the interpolating plane
        const T be = (e1u * d2 - d1 * e2u) / D;     // dG/dv
        const T gam = pg[0] - al * pu[0] - be * pv[0];  // its value at the centre
        lb = std::max(lb, gam);
        if (bestV - lb <= tol_for(bestA, bestB)) { conv = true; break; }
        const T A = al / hx, B = be / hy;
        T gm, xs, ys, gs;
        price(sf, sense, A, B, bx, sv, gm, xs, ys, gs);
        ++iters;
        consider(A, B, gm);
        const T us = (xs - xc) / hx, vs = (ys - yc) / hy;
        const T gap = gs - (al * us + be * vs + gam);
        if (gap <= tol_for(A, B) || bestV - lb <= tol_for(bestA, bestB)) { conv = true; break; }
        // barycentric coordinates of the centre (lam) and of p* (mu)
        auto bary = [&](T qu, T qv, T out[3]) {
          const T wu = qu - pu[0], wv = qv - pv[0];
          out[1] = (wu * e2v - wv * e2u) / D;
          out[2] = (e1u * wv - e1v * wu) / D;
          out[0] = T(1) - out[1] - out[2];
        };
        T lam[3], mu[3];
        bary(T(0), T(0), lam);
        bary(us, vs, mu);
        int leave = -1;
        T theta = std::numeric_limits<T>::infinity();
        for (int k = 0; k < 3; ++k) {
          if (mu[k] > T(1e-15)) {
            const T r = std::max(lam[k], T(0)) / mu[k];
            if (r < theta) { theta = r; leave = k; }
          }
        }
        if (leave < 0) break;
        pu[leave] = us; pv[leave] = vs; pg[leave] = gs;
      }
    }
  }
  if (stats) { stats->iterations = iters; stats->converged = conv; }
  A_out = bestA; B_out = bestB; C_out = bestC;
}

// F-plane from a G-plane: upper (sense +1) as is; lower: a = -A, b = -B, c = -C.
template <class T>
PQ_HD inline void exact_planes(Surface sf, const Box<T>& bx, T& aL, T& bL, T& cL, T& aU, T& bU, T& cU,
                         ExactStats* su = nullptr, ExactStats* sl = nullptr) {
  T A, B, C;
  const SideValues<T> sv = side_values(sf, bx);
  exact_plane(sf, +1, bx, sv, A, B, C, su);
  aU = A; bU = B; cU = C + plane_margin(A, B, bx, sv);
  exact_plane(sf, -1, bx, sv, A, B, C, sl);
  aL = -A; bL = -B; cL = -C - plane_margin(aL, bL, bx, sv);
}

// F4 = x y, "exact": one McCormick plane per side (valid at the 4 corners, hence on the box:
// F4 - plane is bilinear). Every McCormick plane, and their average (the tangent plane at the
// centre, where the column generation of exact_plane starts and stops), has the minimal
// volume; the average is the loosest off one line, so a McCormick plane is taken: the one the
// simplex of exact_plane reaches from the corner triangle (the corner diagonal plus the better
// other corner): upper (yl, xu) if xu yl >= xl yu, else (yu, xl); lower (yl, xl) if
// xl yl <= xu yu, else (yu, xu). (On gru_T8_h16 it beats auto_LiRPA CROWN's fixed choice,
// lower (yl, xl) / upper (yu, xl), by far: margin bound -0.61 vs -1.36 at input 0, eps 0.02.)
// Offsets exact (corners) plus plane_margin.
template <class T>
PQ_HD inline void mccormick_planes(const Box<T>& bx, T& aL, T& bL, T& cL, T& aU, T& bU, T& cU) {
  const SideValues<T> sv = side_values(Surface::Bilinear, bx);
  const bool up10 = bx.xu * bx.yl >= bx.xl * bx.yu, lo00 = bx.xl * bx.yl <= bx.xu * bx.yu;
  aU = up10 ? bx.yl : bx.yu; bU = up10 ? bx.xu : bx.xl;
  aL = lo00 ? bx.yl : bx.yu; bL = lo00 ? bx.xl : bx.xu;
  cL = offset_extremes(Surface::Bilinear, aL, bL, bx, sv, Want::Min).gmin - plane_margin(aL, bL, bx, sv);
  cU = offset_extremes(Surface::Bilinear, aU, bU, bx, sv, Want::Max).gmax + plane_margin(aU, bU, bx, sv);
}

template <class T>
PQ_HD inline void oned_planes(Surface sf, const Box<T>& bx, T& aL, T& bL, T& cL, T& aU, T& bU, T& cU) {
  T al, bl_, au, bu_;
  if (bx.yu - bx.yl <= T(0)) { al = au = T(0); }
  else if (!sigmoid_g(sf)) { al = au = T(1); }  // g(y) = y is its own line
  else sshape_lines(Activation::Sigmoid, bx.yl, bx.yu, al, bl_, au, bu_);
  const SideValues<T> sv = side_values(sf, bx);  // once for the slopes, both offsets and margins
  const T fl = sv.fxl, fu = sv.fxu;
  aU = T(0); bU = fu >= T(0) ? fu * au : fu * al;
  aL = T(0); bL = fl >= T(0) ? fl * al : fl * au;
  const auto ru = offset_extremes(sf, aU, bU, bx, sv, Want::Max);
  const auto rl = offset_extremes(sf, aL, bL, bx, sv, Want::Min);
  cU = ru.gmax + plane_margin(aU, bU, bx, sv);
  cL = rl.gmin - plane_margin(aL, bL, bx, sv);
}

template <class T>
PQ_HD inline void constant_planes(Surface sf, const Box<T>& bx, T& aL, T& bL, T& cL, T& aU, T& bU, T& cU) {
  const SideValues<T> sv = side_values(sf, bx);  // F at the corners: f and g at the sides
  const T v[4] = {sv.fxl * sv.syl, sv.fxl * sv.syu, sv.fxu * sv.syl, sv.fxu * sv.syu};
  const T m = plane_margin(T(0), T(0), bx, sv);
  aL = bL = aU = bU = T(0);
  cU = std::max(std::max(v[0], v[1]), std::max(v[2], v[3])) + m;
  cL = std::min(std::min(v[0], v[1]), std::min(v[2], v[3])) - m;
}

}  // namespace detail

template <class T>
void bound_product(Surface s, PlaneMethod m, const T* xl, const T* xu, const T* yl, const T* yu,
                   std::ptrdiff_t n, T* aL, T* bL, T* cL, T* aU, T* bU, T* cU) {
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const detail::Box<T> bx{xl[i], xu[i], yl[i], yu[i]};
    if (!(bx.xl <= bx.xu) || !(bx.yl <= bx.yu) || !std::isfinite(bx.xl) || !std::isfinite(bx.xu) ||
        !std::isfinite(bx.yl) || !std::isfinite(bx.yu))
      throw InvalidArgument("bound_product: need finite xl <= xu and yl <= yu");
    switch (m) {
      case PlaneMethod::Exact:
        if (s == Surface::Bilinear) detail::mccormick_planes(bx, aL[i], bL[i], cL[i], aU[i], bU[i], cU[i]);
        else detail::exact_planes(s, bx, aL[i], bL[i], cL[i], aU[i], bU[i], cU[i]);
        break;
      case PlaneMethod::OneD: detail::oned_planes(s, bx, aL[i], bL[i], cL[i], aU[i], bU[i], cU[i]); break;
      default: detail::constant_planes(s, bx, aL[i], bL[i], cL[i], aU[i], bU[i], cU[i]);
    }
  }
}

}  // namespace pq
