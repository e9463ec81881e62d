// Relaxations stored per step and the sign rule that passes an objective through them
// (ALGORITHM.md §4, RECURRENCES.md §4; one row at a time in sign_rule_rows.hpp, shared with
// the CUDA kernels): for a LOWER bound, coefficient λ = Λ[r, i] takes the lower
// relaxation of neuron i when λ >= 0 and the upper one when λ < 0, sends λ·slope to each
// input of the relaxation and λ·offset to the constant. (Upper bounds use the stacked
// objective −Λ, never a second rule.)
#pragma once
#include <cstddef>
#include <vector>
#include "common.hpp"
#include "lines.hpp"
#include "matmul.hpp"
#include "planes.hpp"
#include "sign_rule_rows.hpp"

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

// The CPU's four-lane type for the row functions of sign_rule_rows.hpp: a vector of four T
// (GCC/Clang vector extensions) with the loads, stores and the sign-rule select.
// pick(v, a, b) = v >= 0 ? a : b lane-wise, as a bitwise blend: no branch on the (random)
// signs of the objective.
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

// Σ_{i<n} f(lane, i) with four partial sums (sign_rule_rows.hpp sum4_lanes) on the CPU's
// lanes: f is a generic lambda that also writes the passed coefficients, called with
// detail::Lane4<T> on i = 0, 4, ... and detail::Lane1<T> on the tail. The same sums as a
// scalar loop over four partial sums, so every ISA rounds alike (no FMA: see the dispatch
// below).
template <class T, class F>
PQ_ALWAYS_INLINE T sum4(std::ptrdiff_t n, F&& f) {
  return sum4_lanes<T, detail::Lane4<T>>(n, static_cast<F&&>(f));
}

template <class T>
LineRefs<T> refs(const LineSet<T>& ln) {
  return {ln.al.data(), ln.bl.data(), ln.au.data(), ln.bu.data()};
}
template <class T>
PlaneRefs<T> refs(const PlaneSet<T>& P) {
  return {P.aL.data(), P.bL.data(), P.cL.data(), P.aU.data(), P.bU.data(), P.cU.data()};
}

// The row functions of sign_rule_rows.hpp over the rows of a block.

// Λ (R x s) on φ(z) -> out (R x s) on z, d[r] += Σ_i λ·β (+ out·xo when xo is given: the
// folded constant of sign_rule_rows.hpp).
template <class T>
PQ_ALWAYS_INLINE void pass_lines_body(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d, const T* xo) {
  const LineRefs<T> r = refs(ln);
  if (xo) {
    for (std::ptrdiff_t i = 0; i < L.rows; ++i)
      d[i] += lines_row<T, detail::Lane4<T>, true>(L.row(i), L.cols, r, out.row(i), xo);
    return;
  }
  for (std::ptrdiff_t i = 0; i < L.rows; ++i) d[i] += lines_row<T, detail::Lane4<T>>(L.row(i), L.cols, r, out.row(i));
}

// Λ (R x s) on F(x, y) -> x-part into ox, y-part (times y_scale) into oy, each
// assigned or accumulated (AccX / AccY); d[r] += Σ_i λ·c. kx / ky: the folded constants
// of the x- / y-part (sign_rule_rows.hpp plane_row), or null.
template <bool AccX, bool AccY, bool FoldX, bool FoldY, class T>
PQ_ALWAYS_INLINE void pass_plane_folded(MatView<const T> L, PlaneRefs<T> r, MatView<T> ox, MatView<T> oy, T y_scale,
                                        T* d, const T* kx, const T* ky) {
  for (std::ptrdiff_t i = 0; i < L.rows; ++i)
    d[i] += plane_row<AccX, AccY, T, detail::Lane4<T>, FoldX, FoldY>(L.row(i), L.cols, r, ox.row(i), oy.row(i),
                                                                      y_scale, kx, ky);
}
template <bool AccX, bool AccY, class T>
PQ_ALWAYS_INLINE void pass_plane_body(MatView<const T> L, const PlaneSet<T>& P, MatView<T> ox,
                                      MatView<T> oy, T y_scale, T* d, const T* kx, const T* ky) {
  const PlaneRefs<T> r = refs(P);
  if (kx && ky) return pass_plane_folded<AccX, AccY, true, true>(L, r, ox, oy, y_scale, d, kx, ky);
  if (kx) return pass_plane_folded<AccX, AccY, true, false>(L, r, ox, oy, y_scale, d, kx, ky);
  if (ky) return pass_plane_folded<AccX, AccY, false, true>(L, r, ox, oy, y_scale, d, kx, ky);
  pass_plane_folded<AccX, AccY, false, false>(L, r, ox, oy, y_scale, d, kx, ky);
}

// The folded constants of a plane pass's x- and y-part (pass_plane), each null when that
// part is not a gate's coefficient.
template <class T>
struct PlaneFold {
  const T *x = nullptr, *y = nullptr;
};

// Λ (R x s) on P1 + P2 sharing the coefficient (LSTM's c_t = P^f + P^ig); k: the folded
// constants of oy1, ox2, oy2 (sign_rule_rows.hpp plane_pair_row), or all null.
template <class T>
struct PairFold {
  const T *y1 = nullptr, *x2 = nullptr, *y2 = nullptr;
};
template <class T>
PQ_ALWAYS_INLINE void pass_plane_pair_body(MatView<const T> L, const PlaneSet<T>& P1,
                                           const PlaneSet<T>& P2, MatView<T> ox1, MatView<T> oy1,
                                           MatView<T> ox2, MatView<T> oy2, T* d, PairFold<T> k) {
  const PlaneRefs<T> r1 = refs(P1), r2 = refs(P2);
  if (k.y1) {
    for (std::ptrdiff_t i = 0; i < L.rows; ++i)
      d[i] += plane_pair_row<T, detail::Lane4<T>, true>(L.row(i), L.cols, r1, r2, ox1.row(i), oy1.row(i), ox2.row(i),
                                                        oy2.row(i), k.y1, k.x2, k.y2);
    return;
  }
  for (std::ptrdiff_t i = 0; i < L.rows; ++i)
    d[i] += plane_pair_row<T, detail::Lane4<T>>(L.row(i), L.cols, r1, r2, ox1.row(i), oy1.row(i), ox2.row(i),
                                                oy2.row(i));
}

// The passes above, compiled for the baseline ISA and, on x86-64 with GCC/Clang, for
// AVX2 (without FMA, so that products and sums round as in the baseline build),
// chosen at run time like gemm (matmul.hpp).
#if PQ_X86_DISPATCH && !defined(__AVX2__)
namespace detail {
template <class T>
PQ_TARGET_AVX2 void pass_lines_avx2(MatView<const T> L, const LineSet<T>& ln, MatView<T> out,
                                    T* d, const T* xo) {
  pass_lines_body(L, ln, out, d, xo);
}
template <bool AccX, bool AccY, class T>
PQ_TARGET_AVX2 void pass_plane_avx2(MatView<const T> L, const PlaneSet<T>& P, MatView<T> ox,
                                    MatView<T> oy, T y_scale, T* d, const T* kx, const T* ky) {
  pass_plane_body<AccX, AccY>(L, P, ox, oy, y_scale, d, kx, ky);
}
template <class T>
PQ_TARGET_AVX2 void pass_plane_pair_avx2(MatView<const T> L, const PlaneSet<T>& P1,
                                         const PlaneSet<T>& P2, MatView<T> ox1, MatView<T> oy1,
                                         MatView<T> ox2, MatView<T> oy2, T* d, PairFold<T> k) {
  pass_plane_pair_body(L, P1, P2, ox1, oy1, ox2, oy2, d, k);
}
}  // namespace detail
#define PQ_SIGN_RULE_DISPATCH(...) \
  if (detail::cpu_has_avx2_fma()) return detail::__VA_ARGS__
#else
#define PQ_SIGN_RULE_DISPATCH(...) (void)0
#endif

namespace detail {
template <class T>
void pass_lines_rows(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d, const T* xo) {
  PQ_SIGN_RULE_DISPATCH(pass_lines_avx2(L, ln, out, d, xo));
  pass_lines_body(L, ln, out, d, xo);
}
template <bool AccX, bool AccY, class T>
void pass_plane_rows(MatView<const T> L, const PlaneSet<T>& P, MatView<T> ox, MatView<T> oy, T y_scale, T* d,
                     const T* kx, const T* ky) {
  PQ_SIGN_RULE_DISPATCH(pass_plane_avx2<AccX, AccY>(L, P, ox, oy, y_scale, d, kx, ky));
  pass_plane_body<AccX, AccY>(L, P, ox, oy, y_scale, d, kx, ky);
}
template <class T>
void pass_plane_pair_rows(MatView<const T> L, const PlaneSet<T>& P1, const PlaneSet<T>& P2, MatView<T> ox1,
                          MatView<T> oy1, MatView<T> ox2, MatView<T> oy2, T* d, PairFold<T> k) {
  PQ_SIGN_RULE_DISPATCH(pass_plane_pair_avx2(L, P1, P2, ox1, oy1, ox2, oy2, d, k));
  pass_plane_pair_body(L, P1, P2, ox1, oy1, ox2, oy2, d, k);
}
}  // namespace detail

// The passes run their rows in blocks on the pass's threads (row_pool.hpp for_blocks).

// Λ (R x s) on φ(z) -> out (R x s) on z, d[r] += Σ_i λ·β; xo (the pre-activations' clean
// constants, or null): also d[r] += Σ_i out·xo, the affine step's constant folded in.
template <class T>
void pass_lines(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d, const T* xo = nullptr) {
  detail::for_row_blocks(L.rows, static_cast<double>(L.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::pass_lines_rows(rows_of(L, r0, r1), ln, rows_of(out, r0, r1), d + r0, xo);
  });
}

// Λ (R x s) on F(x, y) -> x-part into ox, y-part (times y_scale) into oy, each
// assigned or accumulated (AccX / AccY); d[r] += Σ_i λ·c. k.x / k.y (the x- / y-part is a
// gate's coefficient: its clean constants, or null): also d[r] += Σ_i ox·k.x / Σ_i oy·k.y
// over the coefficients as stored, the affine step's constant folded in (pass_lines).
template <bool AccX, bool AccY, class T>
void pass_plane(MatView<const T> L, const PlaneSet<T>& P, MatView<T> ox, MatView<T> oy, T y_scale,
                T* d, PlaneFold<T> k = {}) {
  detail::for_row_blocks(L.rows, 1.5 * static_cast<double>(L.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::pass_plane_rows<AccX, AccY>(rows_of(L, r0, r1), P, rows_of(ox, r0, r1), rows_of(oy, r0, r1), y_scale,
                                        d + r0, k.x, k.y);
  });
}

// Λ (R x s) on P1 + P2 sharing the coefficient (see pass_plane_pair_body); k: the folded
// constants of oy1, ox2, oy2, or none.
template <class T>
void pass_plane_pair(MatView<const T> L, const PlaneSet<T>& P1, const PlaneSet<T>& P2,
                     MatView<T> ox1, MatView<T> oy1, MatView<T> ox2, MatView<T> oy2, T* d, PairFold<T> k = {}) {
  detail::for_row_blocks(L.rows, 2.5 * static_cast<double>(L.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::pass_plane_pair_rows(rows_of(L, r0, r1), P1, P2, rows_of(ox1, r0, r1), rows_of(oy1, r0, r1),
                                 rows_of(ox2, r0, r1), rows_of(oy2, r0, r1), d + r0, k);
  });
}

}  // namespace pq
