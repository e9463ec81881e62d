// rounding="sound" (docs/ROUNDING.md): the bound pass's floating-point error as a priori
// error terms charged to the constant of every carried linear form.
//
// The rule (ROUNDING.md §2): every coefficient a back-substitution computes is taken as
// exact, and what it differs from the real-arithmetic value by, times a bound on the
// magnitude of the variable it multiplies, is charged to the row's error `err`. Every
// computed quantity here is a sum of products of computed floats (a dot product, a gemm
// entry, a sign-rule product, a constant accumulated over the steps), and any such sum of
// n terms, in any order and with any intermediate roundings, is within γ_n Σ|terms| of its
// real value (γ_n = n u / (1 − n u), u the unit roundoff). One Γ = γ_N per pass, N at least
// the longest such chain, so each charge reads
//     err[r] += Γ Σ_j |M(r, j)| w[j],   w[j] = the magnitudes that term j multiplies.
// At the end of a back-substitution the lower bound is d − 2 err − tiny, rounded down
// (settle): the factor 2 covers the rounding of the charges themselves (sums of positive
// terms, relative error far below 1/2), tiny the underflow of products (|fl(ab) − ab| <=
// u|ab| + 2^-1074).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>
#include "common.hpp"
#include "sign_rule.hpp"

namespace pq {

// Γ of one pass (0 when rounding="nearest": nothing is charged, the pass is unchanged).
template <class T>
struct Rounding {
  T G = T(0);
  bool on() const { return G > T(0); }
  // γ_N for sums of at most N terms
  static Rounding sound(std::ptrdiff_t N) {
    const T nu = T(N) * std::numeric_limits<T>::epsilon() / T(2);
    return {nu / (T(1) - nu)};
  }
};

// The constants of the R rows being carried: d, and err (null unless rounding="sound"), a
// bound on the rounding error committed so far (the real lower bound is >= d − 2 err).
template <class T>
struct RowConsts {
  T* d = nullptr;
  T* err = nullptr;
  // rows [r, ...) of the same constants
  RowConsts from(std::ptrdiff_t r) const { return {d + r, err ? err + r : nullptr}; }
};

// err[r] += Σ_j |M(r, j)| w[j] (w already holds Γ and the magnitudes); nothing when err is null.
// (Any summation order is fine for a sum of nonnegative terms: its rounding is covered by
// settle's factor 2.)
template <class T>
void charge_rows(MatView<const T> M, const T* w, T* err) {
  if (err) add_abs_rowdots(M, w, err);
}

// w[i] (+)= g Σ_j |W(i, j)| m[j]: the magnitudes behind a product's terms (the error of
// Λ W taken as the coefficients on a variable bounded by m in magnitude).
template <class T>
void abs_matvec(MatView<const T> W, const T* m, T g, T* w, bool add) {
  for (std::ptrdiff_t i = 0; i < W.rows; ++i) {
    const T* a = W.row(i);
    T acc = T(0);
    for (std::ptrdiff_t j = 0; j < W.cols; ++j) acc += std::fabs(a[j]) * m[j];
    w[i] = (add ? w[i] : T(0)) + g * acc;
  }
}

// k.d[r] += L(r, :)·v, its error charged: Γ |L| |v|.
template <class T>
void add_rowdots_charged(MatView<const T> L, const T* v, const Rounding<T>& rd, RowConsts<T> k) {
  if (k.err) {
    std::vector<T> w(static_cast<std::size_t>(L.cols));
    for (std::ptrdiff_t i = 0; i < L.cols; ++i) w[i] = rd.G * std::fabs(v[i]);
    charge_rows(L, w.data(), k.err);
  }
  add_rowdots(L, v, k.d);
}

// A bound on |v| for v = a product of library evaluations (tanh, σ) of settled values: m
// widened by 16 eps relative (their few ulps each and the product's rounding, as for
// widen_outwards), never above cap (the function's own range).
template <class T>
T libm_magnitude(T m, T cap) {
  const T v = m * (T(1) + T(16) * std::numeric_limits<T>::epsilon()) + absolute_slack<T>();
  return v < cap ? v : cap;
}

// Intervals computed from settled ones by a few libm calls and products (a cell's reported
// hidden-state bounds, e.g. the corners of σ(y^o) tanh(c)) widened outwards by 8 eps
// relative: what those evaluations can be off by (ROUNDING.md §1).
template <class T>
void widen_outwards(Mat<T>& lo, Mat<T>& up) {
  const T e = T(8) * std::numeric_limits<T>::epsilon(), tiny = absolute_slack<T>();
  for (auto& v : lo.v) v -= e * std::fabs(v) + tiny;
  for (auto& v : up.v) v += e * std::fabs(v) + tiny;
}

// Weights of a sign-rule pass through lines over [l, u] (sign_rule.hpp, pass_lines): the
// coefficient λ α on z (|z| <= max(|l|, |u|)) and the constant term λ β.
template <class T>
void line_charge(const LineSet<T>& ln, const T* l, const T* u, std::ptrdiff_t s, T G, T* w, bool add) {
  for (std::ptrdiff_t i = 0; i < s; ++i) {
    const T mz = std::max(std::fabs(l[i]), std::fabs(u[i]));
    const T a = std::max(std::fabs(ln.al[i]), std::fabs(ln.au[i]));
    const T b = std::max(std::fabs(ln.bl[i]), std::fabs(ln.bu[i]));
    w[i] = (add ? w[i] : T(0)) + G * (a * mz + b);
  }
}

// Weights of a sign-rule pass through planes over the box [xl, xu] x [yl, yu]: the terms
// λ a (on x), λ b (on y) and λ c (constant).
template <class T>
void plane_charge(const PlaneSet<T>& P, const T* xl, const T* xu, const T* yl, const T* yu, std::ptrdiff_t s, T G,
                  T* w, bool add) {
  for (std::ptrdiff_t i = 0; i < s; ++i) {
    const T mx = std::max(std::fabs(xl[i]), std::fabs(xu[i]));
    const T my = std::max(std::fabs(yl[i]), std::fabs(yu[i]));
    const T a = std::max(std::fabs(P.aL[i]), std::fabs(P.aU[i]));
    const T b = std::max(std::fabs(P.bL[i]), std::fabs(P.bU[i]));
    const T c = std::max(std::fabs(P.cL[i]), std::fabs(P.cU[i]));
    w[i] = (add ? w[i] : T(0)) + G * (a * mx + b * my + c);
  }
}

// The affine step's charge weights aw (cells/cell_rnn.hpp affine_charge) moved onto a
// sign-rule pass that folds the step's constant (sign_rule.hpp, the xo / PlaneFold /
// PairFold arguments): that pass writes the gate's coefficient g = fl(λ m), m the slope it picked
// from [lo, hi] side by side, so |g| aw <= |λ| (1 + u) max(|lo|, |hi|) aw, and the charge
// Σ|G| aw of the affine step becomes Σ|λ| w with w += (1 + 4 eps) max(|lo|, |hi|) aw (the
// pass's own charge_rows over Λ, which reads s columns where G has several blocks of s).
template <class T>
void fold_affine_charge(const T* lo, const T* hi, const T* aw, std::ptrdiff_t s, T* w) {
  const T grow = T(1) + T(4) * std::numeric_limits<T>::epsilon();
  for (std::ptrdiff_t i = 0; i < s; ++i) w[i] += grow * std::max(std::fabs(lo[i]), std::fabs(hi[i])) * aw[i];
}

// The end of a back-substitution under rounding="sound": d[r] <- a float <= d[r] − 2 err[r]
// (ROUNDING.md §2), err[r] <- 0.
template <class T>
void settle(RowConsts<T> k, std::ptrdiff_t R) {
  if (!k.err) return;
  const T tiny = T(1e-290) > std::numeric_limits<T>::min() ? T(1e-290) : std::numeric_limits<T>::min() * T(64);
  for (std::ptrdiff_t r = 0; r < R; ++r) {
    const T v = k.d[r] - (T(2) * k.err[r] + tiny);
    // the subtraction rounds to within half an ulp: one float down is below the real value
    k.d[r] = std::nextafter(v, -std::numeric_limits<T>::infinity());
    k.err[r] = T(0);
  }
}

}  // namespace pq
