// 1-D linear relaxations of tanh, sigmoid and ReLU on [l, u] (ALGORITHM.md §2,
// choices fixed by docs/RECURRENCES.md §2).
//
// For every neuron i: alpha_l[i]*z + beta_l[i] <= phi(z) <= alpha_u[i]*z + beta_u[i]
// for all z in [l[i], u[i]], guaranteed in floating point:
//   * slopes: chord / midpoint tangent / tangent through an endpoint (the tangent
//     point is the root of a strictly monotone function, found by safeguarded
//     Newton inside a shrinking bracket, to machine precision);
//   * offsets are EXACT for the chosen slope: max/min of phi(z) - alpha*z over
//     the endpoints and the interior stationary points phi'(z) = alpha (closed
//     form), so an inexact slope never makes a line invalid;
//   * then widened by delta = 4*eps_mach*(max|phi| + |alpha|*max(|l|,|u|) + 1e-300)
//     (RECURRENCES.md §2: covers the rounding of evaluating phi and the line on
//     both the producing and the consuming side, a few ulps each).
// All functions are overflow/NaN-free for |z| up to 1e300 (stable sigmoid and
// derivatives written with exp(-|z|)).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include "common.hpp"

namespace pq {

enum class Activation { Tanh, Sigmoid, Relu };

namespace detail {

// Numerically stable logistic sigmoid (never exp of a positive argument).
template <class T>
PQ_HD inline T sigmoid(T z) {
  if (z >= T(0)) {
    return T(1) / (T(1) + std::exp(-z));
  }
  const T e = std::exp(z);
  return e / (T(1) + e);
}

// sigma'(z) = e/(1+e)^2 with e = exp(-|z|): no cancellation in the tails (s(1-s) would give 0).
template <class T>
PQ_HD inline T dsigmoid(T z) {
  const T e = std::exp(-std::fabs(z));
  const T d = T(1) + e;
  return e / (d * d);
}

// tanh'(z) = sech^2 z = 4e/(1+e)^2 with e = exp(-2|z|).
template <class T>
PQ_HD inline T dtanh(T z) {
  const T e = std::exp(-T(2) * std::fabs(z));
  const T d = T(1) + e;
  return T(4) * e / (d * d);
}

// The |z| >= 0 with sech^2(z) = k, for 0 < k <= 1 (+inf for k <= 0, 0 for k >= 1).
// acosh(1/sqrt k) for small k (atanh(sqrt(1-k)) would lose all digits there),
// atanh(sqrt(1-k)) for k near 1 (acosh near 1 is ill-conditioned).
template <class T>
PQ_HD inline T inv_sech2(T k) {
  if (!(k > T(0))) return std::numeric_limits<T>::infinity();
  if (k >= T(1)) return T(0);
  if (k < T(0.5)) return std::acosh(T(1) / std::sqrt(k));
  return std::atanh(std::sqrt(T(1) - k));
}

template <class T>
PQ_HD inline T phi(Activation fn, T z) {
  switch (fn) {
    case Activation::Tanh: return std::tanh(z);
    case Activation::Sigmoid: return sigmoid(z);
    default: return z > T(0) ? z : T(0);
  }
}

template <class T>
PQ_HD inline T dphi(Activation fn, T z) {
  return fn == Activation::Tanh ? dtanh(z) : dsigmoid(z);
}

// phi, phi' and phi'' at z from one exponential (the Newton steps of upper_slope_crossing;
// tanh |z| = (1 - e)/(1 + e), e = exp(-2|z|); sigma(-|z|) = e/(1 + e), e = exp(-|z|)).
template <class T>
PQ_HD inline void phi_derivatives(Activation fn, T z, T& p, T& dp, T& d2p) {
  if (fn == Activation::Tanh) {
    const T e = std::exp(-T(2) * std::fabs(z)), d = T(1) + e, t = (T(1) - e) / d;
    p = z < T(0) ? -t : t;
    dp = T(4) * e / (d * d);
    d2p = -T(2) * p * dp;
  } else {
    const T e = std::exp(-std::fabs(z)), d = T(1) + e;
    p = z < T(0) ? e / d : T(1) / d;
    dp = e / (d * d);
    d2p = dp * (T(1) - T(2) * p);
  }
}

// |z| of the stationary points phi'(z) = alpha (both +-z), +inf if none.
// tanh: sech^2 z = alpha; sigmoid: sigma'(z) = sech^2(z/2)/4 = alpha.
template <class T>
PQ_HD inline T stationary_abs(Activation fn, T alpha) {
  if (fn == Activation::Tanh) return inv_sech2(alpha);
  return T(2) * inv_sech2(T(4) * alpha);
}

// max (want_max) or min over z in [l, u] of phi(z) - alpha*z, exact up to rounding:
// candidates l, u and the stationary points +-z* that lie strictly inside (§2).
// pl, pu: phi(l), phi(u) (computed once per neuron by sshape_lines).
template <class T>
PQ_HD inline T line_offset(Activation fn, T alpha, T l, T u, T pl, T pu, bool want_max) {
  T best = pl - alpha * l;
  auto keep = [&](T g) { best = want_max ? std::max(best, g) : std::min(best, g); };
  keep(pu - alpha * u);
  const T zs = stationary_abs(fn, alpha);
  if (zs < std::numeric_limits<T>::infinity()) {
    if (zs > l && zs < u) keep(phi(fn, zs) - alpha * zs);
    if (-zs > l && -zs < u) keep(phi(fn, -zs) - alpha * -zs);
  }
  return best;
}
template <class T>
PQ_HD inline T line_offset(Activation fn, T alpha, T l, T u, bool want_max) {
  return line_offset(fn, alpha, l, u, phi(fn, l), phi(fn, u), want_max);
}

// Safety margin of RECURRENCES.md §2 (phimax = max(|phi(l)|, |phi(u)|)).
template <class T>
PQ_HD inline T line_margin_of(T phimax, T alpha, T l, T u) {
  const T eps = std::numeric_limits<T>::epsilon();
  const T zmax = std::max(std::fabs(l), std::fabs(u));
  return T(4) * eps * (phimax + std::fabs(alpha) * zmax) + absolute_slack<T>();
}
template <class T>
PQ_HD inline T line_margin(Activation fn, T alpha, T l, T u) {
  return line_margin_of(std::max(std::fabs(phi(fn, l)), std::fabs(phi(fn, u))), alpha, l, u);
}

// sech(z) = 2e/(1+e^2), e = exp(-|z|): no overflow.
template <class T>
PQ_HD inline T sech(T z) {
  const T e = std::exp(-std::fabs(z));
  return T(2) * e / (T(1) + e * e);
}

// Chord slope (phi(u) - phi(l))/(u - l) without cancellation for narrow intervals:
// tanh u - tanh l = sinh(u-l) sech(u) sech(l), and sigma(z) = (1 + tanh(z/2))/2.
// (Validity never depends on it: offsets are exact for whatever slope results.)
template <class T>
PQ_HD inline T chord_slope(Activation fn, T l, T u) {
  const T w = u - l;
  if (fn == Activation::Tanh && w <= T(600)) return std::sinh(w) / w * sech(u) * sech(l);
  if (fn == Activation::Sigmoid && w <= T(1200))
    return std::sinh(T(0.5) * w) / w * T(0.5) * sech(T(0.5) * u) * sech(T(0.5) * l);
  return (phi(fn, u) - phi(fn, l)) / w;
}

// Upper slope for l < 0 < u (§2): the tangent at d in (0, u] through (l, phi(l)),
// root of f(d) = phi'(d)(d - l) - (phi(d) - phi(l)); f(0) > 0 and f is strictly
// decreasing on d > 0 (f' = phi''(d)(d - l) < 0), so the root is unique. If
// f(u) >= 0 the root lies at or beyond u and the chord is valid and tighter.
// Safeguarded Newton: the bracket [lo, hi] always contains the root; a Newton
// step that leaves it (or does not halve it) is replaced by bisection.
// pl: phi(l).
template <class T>
PQ_HD inline T upper_slope_crossing(Activation fn, T l, T u, T pl) {
  T fp = T(0);
  auto f = [&](T d) {  // f(d), and f'(d) = phi''(d)(d - l) into fp
    T p, dp, d2p;
    phi_derivatives(fn, d, p, dp, d2p);
    fp = d2p * (d - l);
    return dp * (d - l) - (p - pl);
  };
  if (f(u) >= T(0)) return chord_slope(fn, l, u);
  // Every tangent at d' in [d, u] is a valid upper line (its value at l only rises as d'
  // moves right on the concave part); the one with the least area over [l, u] touches at
  // the midpoint when d < (l+u)/2 (the same rule as the midpoint tangent of §2's convex
  // and concave cases; auto_LiRPA's CROWN makes the same choice). So f(mid) < 0 (the root
  // left of the midpoint) settles it without the root.
  const T mid = T(0.5) * l + T(0.5) * u;
  T lo = T(0), hi = u;
  if (mid > T(0)) {
    if (f(mid) < T(0)) return dphi(fn, mid);
    lo = mid;
  }
  T d = T(0.5) * (lo + hi);
  const T eps = std::numeric_limits<T>::epsilon();
  for (int it = 0; it < 200; ++it) {
    const T fd = f(d);
    if (fd > T(0)) lo = d; else if (fd < T(0)) hi = d; else break;
    if (hi - lo <= T(2) * eps * hi) break;
    T next = (fp < T(0)) ? d - fd / fp : T(0.5) * (lo + hi);
    if (!(next > lo && next < hi) || std::fabs(next - d) > T(0.5) * (hi - lo)) next = T(0.5) * (lo + hi);
    if (next == d) break;
    d = next;
  }
  return dphi(fn, std::max(d, mid));
}
template <class T>
PQ_HD inline T upper_slope_crossing(Activation fn, T l, T u) {
  return upper_slope_crossing(fn, l, u, phi(fn, l));
}

// One neuron's tanh/sigmoid lines per RECURRENCES.md §2 (phi(l) and phi(u) evaluated once).
template <class T>
PQ_HD inline void sshape_lines(Activation fn, T l, T u, T& al, T& bl, T& au, T& bu) {
  const T scale = std::max(T(1), std::max(std::fabs(l), std::fabs(u)));
  const T pl = phi(fn, l), pu = phi(fn, u);
  const T phimax = std::max(std::fabs(pl), std::fabs(pu));
  if (u - l <= T(1e-12) * scale) {
    al = T(0);
    au = T(0);
    const T m = line_margin_of(phimax, T(0), l, u);
    bl = pl - m;
    bu = pu + m;
    return;
  }
  const T mid = T(0.5) * l + T(0.5) * u;
  if (u <= T(0)) {            // convex part
    au = chord_slope(fn, l, u);
    al = dphi(fn, mid);
  } else if (l >= T(0)) {     // concave part
    al = chord_slope(fn, l, u);
    au = dphi(fn, mid);
  } else {
    au = upper_slope_crossing(fn, l, u, pl);
    // mirror: phi(-z) = const - phi(z), phi' even => lower slope on [l,u] = upper slope on [-u,-l]
    al = upper_slope_crossing(fn, -u, -l);
  }
  bu = line_offset(fn, au, l, u, pl, pu, true) + line_margin_of(phimax, au, l, u);
  bl = line_offset(fn, al, l, u, pl, pu, false) - line_margin_of(phimax, al, l, u);
}

// ReLU: CROWN lines (§2). The upper line's slope is u/(u-l); its offset is the exact
// max over {l, u} of relu(z) - alpha z (convex minus linear: max at an endpoint),
// plus the §2 margin (the plain formula -alpha*l can round below the kink at u).
template <class T>
PQ_HD inline void relu_lines(T l, T u, T& al, T& bl, T& au, T& bu) {
  if (l >= T(0)) { al = au = T(1); bl = bu = T(0); return; }
  if (u <= T(0)) { al = au = T(0); bl = bu = T(0); return; }
  au = u / (u - l);
  const T eps = std::numeric_limits<T>::epsilon();
  bu = std::max(-au * l, u - au * u) + T(4) * eps * (u + au * std::max(-l, u));
  al = (u > -l) ? T(1) : T(0);
  bl = T(0);
}

}  // namespace detail

template <class T>
PQ_HD T activation_value(Activation fn, T z) {
  return detail::phi(fn, z);
}

template <class T>
void bound_activation(Activation fn, const T* l, const T* u, std::ptrdiff_t n,
                      T* alpha_l, T* beta_l, T* alpha_u, T* beta_u) {
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const T li = l[i], ui = u[i];
    if (!(li <= ui) || !std::isfinite(li) || !std::isfinite(ui))
      throw InvalidArgument("bound_activation: need finite l <= u");
    if (fn == Activation::Relu)
      detail::relu_lines(li, ui, alpha_l[i], beta_l[i], alpha_u[i], beta_u[i]);
    else
      detail::sshape_lines(fn, li, ui, alpha_l[i], beta_l[i], alpha_u[i], beta_u[i]);
  }
}

}  // namespace pq
