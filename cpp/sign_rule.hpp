// Relaxations stored per step and the sign rule that passes an objective through
// them (ALGORITHM.md §4, RECURRENCES.md §4): for a LOWER bound, coefficient
// λ = Λ[r, i] takes the lower relaxation of neuron i when λ >= 0 and the upper one
// when λ < 0, sends λ·slope to each input of the relaxation and λ·offset to the
// constant. (Upper bounds use the stacked objective −Λ, never a second rule.)
#pragma once
#include <cstddef>
#include <vector>
#include "common.hpp"
#include "lines.hpp"
#include "matmul.hpp"
#include "planes.hpp"

namespace pq {

// Lines αL z + βL <= φ(z) <= αU z + βU of one layer of s neurons (§2).
template <class T>
struct LineSet {
  std::vector<T> al, bl, au, bu;
  void compute(Activation fn, const T* l, const T* u, std::ptrdiff_t s) {
    al.resize(s); bl.resize(s); au.resize(s); bu.resize(s);
    for_blocks(s, 200.0, [&](std::ptrdiff_t i, std::ptrdiff_t j) {  // neurons in blocks (row_pool.hpp)
      bound_activation<T>(fn, l + i, u + i, j - i, al.data() + i, bl.data() + i, au.data() + i, bu.data() + i);
    });
  }
};

// Planes aL x + bL y + cL <= F(x, y) <= aU x + bU y + cU of s boxes (§3).
template <class T>
struct PlaneSet {
  std::vector<T> aL, bL, cL, aU, bU, cU;
  void compute(Surface f, PlaneMethod m, const T* xl, const T* xu, const T* yl, const T* yu,
               std::ptrdiff_t s) {
    aL.resize(s); bL.resize(s); cL.resize(s); aU.resize(s); bU.resize(s); cU.resize(s);
    const double cost = m == PlaneMethod::Exact ? 3000.0 : 300.0;  // ns per box, about
    for_blocks(s, cost, [&](std::ptrdiff_t i, std::ptrdiff_t j) {  // boxes in blocks (row_pool.hpp)
      bound_product<T>(f, m, xl + i, xu + i, yl + i, yu + i, j - i, aL.data() + i, bL.data() + i, cL.data() + i,
                       aU.data() + i, bU.data() + i, cU.data() + i);
    });
  }
};

namespace detail {

// The two lane widths that sum4 hands to its body: Lane1 (one T) and Lane4 (a
// vector of four T, GCC/Clang vector extensions), with the loads, stores and the
// sign-rule select that the bodies need. pick(v, a, b) = v >= 0 ? a : b lane-wise,
// as a bitwise blend: no branch on the (random) signs of the objective.
template <class T>
struct Lane1 {
  using type = T;
  static PQ_ALWAYS_INLINE T ld(const T* p) { return *p; }
  static PQ_ALWAYS_INLINE void st(T* p, T v) { *p = v; }
  static PQ_ALWAYS_INLINE T pick(T v, T a, T b) { return v >= T(0) ? a : b; }
};
template <class T>
struct Lane4 {
  using V = Vec<T, 4 * static_cast<int>(sizeof(T))>;
  using type = typename V::type;
  static PQ_ALWAYS_INLINE type ld(const T* p) { return V::load(p); }
  static PQ_ALWAYS_INLINE void st(T* p, type v) { V::store(p, v); }
  static PQ_ALWAYS_INLINE type pick(type v, type a, type b) {
    const auto m = v >= type{};  // lanes all ones where v >= 0 (false for NaN, as in Lane1)
    using M = decltype(m);
    return (type)(((M)a & m) | ((M)b & ~m));
  }
};

}  // namespace detail

// Σ_{i<n} f(lane, i) with four partial sums (lane l of a 4-vector sums the i ≡ l mod 4;
// then (p0 + p1) + (p2 + p3), then the tail in order): f is a generic lambda that
// also writes the passed coefficients, called with detail::Lane4<T> on i = 0, 4, ...
// and detail::Lane1<T> on the tail. The same sums as a scalar loop over four
// partial sums, so every ISA rounds alike (no FMA: see the dispatch below).
template <class T, class F>
PQ_ALWAYS_INLINE T sum4(std::ptrdiff_t n, F&& f) {
  const std::ptrdiff_t n4 = n - n % 4;
  typename detail::Lane4<T>::type p{};
  for (std::ptrdiff_t i = 0; i < n4; i += 4) p += f(detail::Lane4<T>{}, i);
  T acc = (p[0] + p[1]) + (p[2] + p[3]);
  for (std::ptrdiff_t i = n4; i < n; ++i) acc += f(detail::Lane1<T>{}, i);
  return acc;
}

// Λ (R x s) on φ(z) -> out (R x s) on z, d[r] += Σ_i λ·β.
template <class T>
PQ_ALWAYS_INLINE void pass_lines_body(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d) {
  const std::ptrdiff_t s = L.cols;
  const T* al = ln.al.data(); const T* bl = ln.bl.data();
  const T* au = ln.au.data(); const T* bu = ln.bu.data();
  for (std::ptrdiff_t r = 0; r < L.rows; ++r) {
    const T* lam = L.row(r);
    T* __restrict o = out.row(r);
    d[r] += sum4<T>(s, [&](auto w, std::ptrdiff_t i) {
      using W = decltype(w);
      const auto v = W::ld(lam + i);
      W::st(o + i, v * W::pick(v, W::ld(al + i), W::ld(au + i)));
      return v * W::pick(v, W::ld(bl + i), W::ld(bu + i));
    });
  }
}

// Λ (R x s) on F(x, y) -> x-part into ox, y-part (times y_scale) into oy, each
// assigned or accumulated (AccX / AccY); d[r] += Σ_i λ·c.
// y_scale = −1 serves a plane built over w = −y (GRU's 1 − σ(y^z) = σ(−y^z)).
template <bool AccX, bool AccY, class T>
PQ_ALWAYS_INLINE void pass_plane_body(MatView<const T> L, const PlaneSet<T>& P, MatView<T> ox,
                                      MatView<T> oy, T y_scale, T* d) {
  const std::ptrdiff_t s = L.cols;
  const T* aL = P.aL.data(); const T* bL = P.bL.data(); const T* cL = P.cL.data();
  const T* aU = P.aU.data(); const T* bU = P.bU.data(); const T* cU = P.cU.data();
  for (std::ptrdiff_t r = 0; r < L.rows; ++r) {
    const T* lam = L.row(r);
    T* __restrict x = ox.row(r);
    T* __restrict y = oy.row(r);
    d[r] += sum4<T>(s, [&](auto w, std::ptrdiff_t i) {
      using W = decltype(w);
      const auto v = W::ld(lam + i);
      const auto ax = v * W::pick(v, W::ld(aL + i), W::ld(aU + i));
      const auto by = y_scale * (v * W::pick(v, W::ld(bL + i), W::ld(bU + i)));
      W::st(x + i, AccX ? W::ld(x + i) + ax : ax);
      W::st(y + i, AccY ? W::ld(y + i) + by : by);
      return v * W::pick(v, W::ld(cL + i), W::ld(cU + i));
    });
  }
}

// Λ (R x s) on the sum F(x1, y1) + F(x2, y2) of two planes sharing the coefficient
// (LSTM's c_t = P^f + P^ig): one sign decision feeds both planes.
template <class T>
PQ_ALWAYS_INLINE void pass_plane_pair_body(MatView<const T> L, const PlaneSet<T>& P1,
                                           const PlaneSet<T>& P2, MatView<T> ox1, MatView<T> oy1,
                                           MatView<T> ox2, MatView<T> oy2, T* d) {
  const std::ptrdiff_t s = L.cols;
  const T* aL1 = P1.aL.data(); const T* bL1 = P1.bL.data(); const T* cL1 = P1.cL.data();
  const T* aU1 = P1.aU.data(); const T* bU1 = P1.bU.data(); const T* cU1 = P1.cU.data();
  const T* aL2 = P2.aL.data(); const T* bL2 = P2.bL.data(); const T* cL2 = P2.cL.data();
  const T* aU2 = P2.aU.data(); const T* bU2 = P2.bU.data(); const T* cU2 = P2.cU.data();
  for (std::ptrdiff_t r = 0; r < L.rows; ++r) {
    const T* lam = L.row(r);
    T* __restrict x1 = ox1.row(r); T* __restrict y1 = oy1.row(r);
    T* __restrict x2 = ox2.row(r); T* __restrict y2 = oy2.row(r);
    d[r] += sum4<T>(s, [&](auto w, std::ptrdiff_t i) {  // blends, not branches: signs are random
      using W = decltype(w);
      const auto v = W::ld(lam + i);
      W::st(x1 + i, v * W::pick(v, W::ld(aL1 + i), W::ld(aU1 + i)));
      W::st(y1 + i, v * W::pick(v, W::ld(bL1 + i), W::ld(bU1 + i)));
      W::st(x2 + i, v * W::pick(v, W::ld(aL2 + i), W::ld(aU2 + i)));
      W::st(y2 + i, v * W::pick(v, W::ld(bL2 + i), W::ld(bU2 + i)));
      return v * W::pick(v, W::ld(cL1 + i), W::ld(cU1 + i)) +
             v * W::pick(v, W::ld(cL2 + i), W::ld(cU2 + i));
    });
  }
}

// The passes above, compiled for the baseline ISA and, on x86-64 with GCC/Clang, for
// AVX2 (without FMA, so that products and sums round as in the baseline build),
// chosen at run time like gemm (matmul.hpp).
#if PQ_X86_DISPATCH && !defined(__AVX2__)
namespace detail {
template <class T>
PQ_TARGET_AVX2 void pass_lines_avx2(MatView<const T> L, const LineSet<T>& ln, MatView<T> out,
                                    T* d) {
  pass_lines_body(L, ln, out, d);
}
template <bool AccX, bool AccY, class T>
PQ_TARGET_AVX2 void pass_plane_avx2(MatView<const T> L, const PlaneSet<T>& P, MatView<T> ox,
                                    MatView<T> oy, T y_scale, T* d) {
  pass_plane_body<AccX, AccY>(L, P, ox, oy, y_scale, d);
}
template <class T>
PQ_TARGET_AVX2 void pass_plane_pair_avx2(MatView<const T> L, const PlaneSet<T>& P1,
                                         const PlaneSet<T>& P2, MatView<T> ox1, MatView<T> oy1,
                                         MatView<T> ox2, MatView<T> oy2, T* d) {
  pass_plane_pair_body(L, P1, P2, ox1, oy1, ox2, oy2, d);
}
}  // namespace detail
#define PQ_SIGN_RULE_DISPATCH(...) \
  if (detail::cpu_has_avx2_fma()) return detail::__VA_ARGS__
#else
#define PQ_SIGN_RULE_DISPATCH(...) (void)0
#endif

namespace detail {
template <class T>
void pass_lines_rows(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d) {
  PQ_SIGN_RULE_DISPATCH(pass_lines_avx2(L, ln, out, d));
  pass_lines_body(L, ln, out, d);
}
template <bool AccX, bool AccY, class T>
void pass_plane_rows(MatView<const T> L, const PlaneSet<T>& P, MatView<T> ox, MatView<T> oy, T y_scale, T* d) {
  PQ_SIGN_RULE_DISPATCH(pass_plane_avx2<AccX, AccY>(L, P, ox, oy, y_scale, d));
  pass_plane_body<AccX, AccY>(L, P, ox, oy, y_scale, d);
}
template <class T>
void pass_plane_pair_rows(MatView<const T> L, const PlaneSet<T>& P1, const PlaneSet<T>& P2, MatView<T> ox1,
                          MatView<T> oy1, MatView<T> ox2, MatView<T> oy2, T* d) {
  PQ_SIGN_RULE_DISPATCH(pass_plane_pair_avx2(L, P1, P2, ox1, oy1, ox2, oy2, d));
  pass_plane_pair_body(L, P1, P2, ox1, oy1, ox2, oy2, d);
}
// rows [r0, r1) of a view
template <class M>
M rows_of(M m, std::ptrdiff_t r0, std::ptrdiff_t r1) {
  return {m.data + r0 * m.stride, r1 - r0, m.cols, m.stride};
}
}  // namespace detail

// The passes run their rows in blocks on the pass's threads (row_pool.hpp for_blocks).

// Λ (R x s) on φ(z) -> out (R x s) on z, d[r] += Σ_i λ·β.
template <class T>
void pass_lines(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d) {
  using detail::rows_of;
  for_blocks(L.rows, static_cast<double>(L.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::pass_lines_rows(rows_of(L, r0, r1), ln, rows_of(out, r0, r1), d + r0);
  });
}

// Λ (R x s) on F(x, y) -> x-part into ox, y-part (times y_scale) into oy, each
// assigned or accumulated (AccX / AccY); d[r] += Σ_i λ·c.
template <bool AccX, bool AccY, class T>
void pass_plane(MatView<const T> L, const PlaneSet<T>& P, MatView<T> ox, MatView<T> oy, T y_scale,
                T* d) {
  using detail::rows_of;
  for_blocks(L.rows, 1.5 * static_cast<double>(L.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::pass_plane_rows<AccX, AccY>(rows_of(L, r0, r1), P, rows_of(ox, r0, r1), rows_of(oy, r0, r1), y_scale,
                                        d + r0);
  });
}

// Λ (R x s) on P1 + P2 sharing the coefficient (see pass_plane_pair_body).
template <class T>
void pass_plane_pair(MatView<const T> L, const PlaneSet<T>& P1, const PlaneSet<T>& P2,
                     MatView<T> ox1, MatView<T> oy1, MatView<T> ox2, MatView<T> oy2, T* d) {
  using detail::rows_of;
  for_blocks(L.rows, 2.5 * static_cast<double>(L.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::pass_plane_pair_rows(rows_of(L, r0, r1), P1, P2, rows_of(ox1, r0, r1), rows_of(oy1, r0, r1),
                                 rows_of(ox2, r0, r1), rows_of(oy2, r0, r1), d + r0);
  });
}

}  // namespace pq
