// One objective row through the relaxations of one step (the sign rule, ALGORITHM.md §4,
// RECURRENCES.md §4), written once for the CPU core (sign_rule.hpp, which runs it over the
// rows of a block) and the CUDA kernels (cuda/batch_pass.cuh, one thread per row): for a
// LOWER bound, coefficient λ = Λ[r, i] takes the lower relaxation of neuron i when λ >= 0
// and the upper one when λ < 0, sends λ·slope to each input and λ·offset to the constant.
//
// Each row function is generic over a four-lane type L4: the CPU's is a vector of four T
// (GCC/Clang vector extensions, sign_rule.hpp Lane4), the device's LaneArr4 (four scalars).
// sum4_lanes keeps four partial sums (lane l sums the i ≡ l mod 4; then (p0 + p1) +
// (p2 + p3), then the tail in order), so every ISA and the device round alike.
#pragma once
#include <cstddef>
#include "common.hpp"

#if defined(__CUDACC__)
#define PQ_ROW_INLINE __forceinline__ __host__ __device__
#elif defined(__GNUC__)
#define PQ_ROW_INLINE inline __attribute__((always_inline))
#else
#define PQ_ROW_INLINE inline
#endif

namespace pq {

// The relaxations of one step as the row functions read them (views of a LineSet /
// PlaneSet, or of the device's workspace).
template <class T>
struct LineRefs {
  const T *al, *bl, *au, *bu;
};
template <class T>
struct PlaneRefs {
  const T *aL, *bL, *cL, *aU, *bU, *cU;
};

namespace detail {

// One T: the tail of sum4_lanes. pick(v, a, b) = v >= 0 ? a : b (NaN: b).
template <class T>
struct Lane1 {
  using type = T;
  static PQ_ROW_INLINE T ld(const T* p) { return *p; }
  static PQ_ROW_INLINE void st(T* p, T v) { *p = v; }
  static PQ_ROW_INLINE T pick(T v, T a, T b) { return v >= T(0) ? a : b; }
};

// Four scalars with lane-wise arithmetic: the four-lane type where vector extensions are
// not available (device code).
template <class T>
struct Arr4 {
  T v[4];
  PQ_ROW_INLINE T operator[](int l) const { return v[l]; }
  PQ_ROW_INLINE Arr4& operator+=(const Arr4& o) {
    for (int l = 0; l < 4; ++l) v[l] += o.v[l];
    return *this;
  }
  friend PQ_ROW_INLINE Arr4 operator*(const Arr4& a, const Arr4& b) {
    Arr4 r;
    for (int l = 0; l < 4; ++l) r.v[l] = a.v[l] * b.v[l];
    return r;
  }
  friend PQ_ROW_INLINE Arr4 operator*(T a, const Arr4& b) {
    Arr4 r;
    for (int l = 0; l < 4; ++l) r.v[l] = a * b.v[l];
    return r;
  }
  friend PQ_ROW_INLINE Arr4 operator+(const Arr4& a, const Arr4& b) {
    Arr4 r;
    for (int l = 0; l < 4; ++l) r.v[l] = a.v[l] + b.v[l];
    return r;
  }
};
template <class T>
struct LaneArr4 {
  using type = Arr4<T>;
  static PQ_ROW_INLINE type ld(const T* p) { return {{p[0], p[1], p[2], p[3]}}; }
  static PQ_ROW_INLINE void st(T* p, const type& x) {
    for (int l = 0; l < 4; ++l) p[l] = x.v[l];
  }
  static PQ_ROW_INLINE type pick(const type& v, const type& a, const type& b) {
    type r;
    for (int l = 0; l < 4; ++l) r.v[l] = v.v[l] >= T(0) ? a.v[l] : b.v[l];
    return r;
  }
};

}  // namespace detail

// Σ_{i<n} f(lane, i): f (a generic lambda that also writes the passed coefficients) is
// called with L4 on i = 0, 4, ... and detail::Lane1<T> on the tail.
template <class T, class L4, class F>
PQ_ROW_INLINE T sum4_lanes(std::ptrdiff_t n, F&& f) {
  const std::ptrdiff_t n4 = n - n % 4;
  typename L4::type p{};
  for (std::ptrdiff_t i = 0; i < n4; i += 4) p += f(L4{}, i);
  T acc = (p[0] + p[1]) + (p[2] + p[3]);
  for (std::ptrdiff_t i = n4; i < n; ++i) acc += f(detail::Lane1<T>{}, i);
  return acc;
}

// λ (s) on φ(z) -> o (s) on z; returns Σ_i λ·β. Fold: o is the coefficient on a step's
// pre-activations z = ... + xb, and the returned sum also takes Σ_i o_i·xb_i (xo = xb): the
// affine step's constant G·xb, summed here from the coefficients as stored instead of in a
// second read of them (cells/cell_rnn.hpp carry_affine; ROUNDING.md §2).
template <class T, class L4, bool Fold = false>
PQ_ROW_INLINE T lines_row(const T* lam, std::ptrdiff_t s, LineRefs<T> ln, T* __restrict__ o,
                          const T* xo = nullptr) {
  return sum4_lanes<T, L4>(s, [&](auto w, std::ptrdiff_t i) {
    using W = decltype(w);
    const auto v = W::ld(lam + i);
    const auto g = v * W::pick(v, W::ld(ln.al + i), W::ld(ln.au + i));
    W::st(o + i, g);
    if constexpr (Fold) return v * W::pick(v, W::ld(ln.bl + i), W::ld(ln.bu + i)) + g * W::ld(xo + i);
    return v * W::pick(v, W::ld(ln.bl + i), W::ld(ln.bu + i));
  });
}

// λ (s) on F(x, y) -> x-part into x, y-part (times y_scale) into y, each assigned or
// accumulated (AccX / AccY); returns Σ_i λ·c. y_scale = −1 serves a plane built over
// w = −y (GRU's 1 − σ(y^z) = σ(−y^z)). FoldX / FoldY (x / y a gate's coefficient): the sum
// also takes Σ_i x_i·kx_i / Σ_i y_i·ky_i with x, y as stored (after the accumulation), the
// k the gate's clean constants (lines_row's Fold).
template <bool AccX, bool AccY, class T, class L4, bool FoldX = false, bool FoldY = false>
PQ_ROW_INLINE T plane_row(const T* lam, std::ptrdiff_t s, PlaneRefs<T> P, T* __restrict__ x, T* __restrict__ y,
                          T y_scale, const T* kx = nullptr, const T* ky = nullptr) {
  return sum4_lanes<T, L4>(s, [&](auto w, std::ptrdiff_t i) {
    using W = decltype(w);
    const auto v = W::ld(lam + i);
    const auto ax = v * W::pick(v, W::ld(P.aL + i), W::ld(P.aU + i));
    const auto by = y_scale * (v * W::pick(v, W::ld(P.bL + i), W::ld(P.bU + i)));
    const auto xs = AccX ? W::ld(x + i) + ax : ax;
    const auto ys = AccY ? W::ld(y + i) + by : by;
    W::st(x + i, xs);
    W::st(y + i, ys);
    auto c = v * W::pick(v, W::ld(P.cL + i), W::ld(P.cU + i));
    if constexpr (FoldX) c = c + xs * W::ld(kx + i);
    if constexpr (FoldY) c = c + ys * W::ld(ky + i);
    return c;
  });
}

// λ (s) on the sum F(x1, y1) + F(x2, y2) of two planes sharing the coefficient (LSTM's
// c_t = P^f + P^ig): one sign decision feeds both; returns Σ_i λ·(c1 + c2). Fold: y1, x2
// and y2 are gates' coefficients, and the sum also takes Σ_i (y1_i k1y_i + x2_i k2x_i +
// y2_i k2y_i), the k the gates' clean constants (lines_row's Fold).
template <class T, class L4, bool Fold = false>
PQ_ROW_INLINE T plane_pair_row(const T* lam, std::ptrdiff_t s, PlaneRefs<T> P1, PlaneRefs<T> P2,
                               T* __restrict__ x1, T* __restrict__ y1, T* __restrict__ x2, T* __restrict__ y2,
                               const T* k1y = nullptr, const T* k2x = nullptr, const T* k2y = nullptr) {
  return sum4_lanes<T, L4>(s, [&](auto w, std::ptrdiff_t i) {  // blends, not branches: signs are random
    using W = decltype(w);
    const auto v = W::ld(lam + i);
    W::st(x1 + i, v * W::pick(v, W::ld(P1.aL + i), W::ld(P1.aU + i)));
    const auto g1 = v * W::pick(v, W::ld(P1.bL + i), W::ld(P1.bU + i));
    const auto g2 = v * W::pick(v, W::ld(P2.aL + i), W::ld(P2.aU + i));
    const auto g3 = v * W::pick(v, W::ld(P2.bL + i), W::ld(P2.bU + i));
    W::st(y1 + i, g1);
    W::st(x2 + i, g2);
    W::st(y2 + i, g3);
    const auto c = v * W::pick(v, W::ld(P1.cL + i), W::ld(P1.cU + i)) + v * W::pick(v, W::ld(P2.cL + i), W::ld(P2.cU + i));
    if constexpr (Fold) return c + ((g1 * W::ld(k1y + i) + g2 * W::ld(k2x + i)) + g3 * W::ld(k2y + i));
    return c;
  });
}

}  // namespace pq
