// Relaxations stored per step and the sign rule that passes an objective through them
// (ALGORITHM.md §4, RECURRENCES.md §4; one row at a time in sign_rule_rows.hpp, shared with
// the CUDA kernels): for a LOWER bound, coefficient λ = Λ[r, i] takes the lower
// relaxation of neuron i when λ >= 0 and the upper one when λ < 0, sends λ·slope to each
// input of the relaxation and λ·offset to the constant. (Upper bounds use the stacked
// objective −Λ, never a second rule.)
#pragma once
#include <cstddef>
#include <cstdlib>
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
template <class T, int N = 4>
struct Lane4 {  // N = 8: the eight lanes of Lane4Wide
  using V = Vec<T, N * static_cast<int>(sizeof(T))>;
  using type = typename V::type;
  static PQ_ALWAYS_INLINE type ld(const T* p) { return V::load(p); }
  static PQ_ALWAYS_INLINE void st(T* p, type v) { V::store(p, v); }
  static PQ_ALWAYS_INLINE type pick(type v, type a, type b) {
    const auto m = v >= type{};  // lanes all ones where v >= 0 (false for NaN, as in Lane1)
    using M = decltype(m);
    return (type)(((M)a & m) | ((M)b & ~m));
  }
  static PQ_ALWAYS_INLINE type abs(type v) {  // the sign bits cleared, as std::fabs
    using M = decltype(v >= type{});
    const M sign = (M)(-type{});  // the bits of -0.0: the sign bit alone
    return (type)((M)v & ~sign);
  }
  // N int lanes, as Lane1's: to_int truncates toward zero (as static_cast), ones(m) is 1
  // where the comparison mask m holds, iota(b) = {b, b + 1, ...}, where(m, a, b) = m ? a : b
  using itype = typename Vec<int, N * static_cast<int>(sizeof(int))>::type;
  static PQ_ALWAYS_INLINE itype to_int(type f) { return __builtin_convertvector(f, itype); }
  template <class M>
  static PQ_ALWAYS_INLINE itype ones(M m) { return -__builtin_convertvector(m, itype); }
  static PQ_ALWAYS_INLINE itype iota(int b) {
    itype r;
    for (int j = 0; j < N; ++j) r[j] = b + j;
    return r;
  }
  template <class M>
  static PQ_ALWAYS_INLINE itype where(M m, itype a, int b) {
    const itype k = __builtin_convertvector(m, itype);  // all ones where m
    return (a & k) | ((itype{} + b) & ~k);
  }
  static PQ_ALWAYS_INLINE void st_int(int* p, itype v) { __builtin_memcpy(p, &v, sizeof v); }
};

// Four lanes that also offer eight (sign_rule_rows.hpp sums4_lanes: the same sums), for the
// AVX-512 builds of the fused passes below.
template <class T>
struct Lane4Wide : Lane4<T> {
  using Wide = Lane4<T, 8>;
  using type = typename Lane4<T>::type;
  static PQ_ALWAYS_INLINE type lo(typename Wide::type q) {
    type h;
    __builtin_memcpy(&h, &q, sizeof h);
    return h;
  }
  static PQ_ALWAYS_INLINE type hi(typename Wide::type q) {
    type h;
    __builtin_memcpy(&h, reinterpret_cast<const char*>(&q) + sizeof h, sizeof h);
    return h;
  }
};

// f(Lane4<T>{}, i) for i = 0, 4, ... and f(Lane1<T>{}, i) on the tail of n: an elementwise
// loop written once for the lanes and the tail (sweep_kernels.hpp, envelope_kernels.hpp).
template <class T, class F>
PQ_ALWAYS_INLINE void for_lanes4(std::ptrdiff_t n, F&& f) {
  std::ptrdiff_t i = 0;
  for (; i + 4 <= n; i += 4) f(Lane4<T>{}, i);
  for (; i < n; ++i) f(Lane1<T>{}, i);
}

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

// pass_lines_body with the charge of Λ (charge_rows with weights cw) in the same read:
// err[i] += Σ_j |Λ_ij| cw_j, then d[i] += the lines' sum (the separate passes' order).
template <bool Fold, class Ln, class T>
PQ_ALWAYS_INLINE void pass_lines_charged_rows_of(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d,
                                                 const T* xo, T* err, const T* cw) {
  const LineRefs<T> r = refs(ln);
  for (std::ptrdiff_t i = 0; i < L.rows; ++i) {
    T sums[2];
    lines_charged_row<T, Ln, Fold>(L.row(i), L.cols, r, out.row(i), xo, cw, sums);
    err[i] += sums[1];
    d[i] += sums[0];
  }
}
template <class T, class Ln = detail::Lane4<T>>
PQ_ALWAYS_INLINE void pass_lines_charged_body(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d,
                                              const T* xo, T* err, const T* cw) {
  if (xo) return pass_lines_charged_rows_of<true, Ln>(L, ln, out, d, xo, err, cw);
  pass_lines_charged_rows_of<false, Ln>(L, ln, out, d, xo, err, cw);
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

// Λ_h, Λ_c (R x s) through LSTM's hidden step (sign_rule_rows.hpp hidden_cell_row: P^o, then
// P^f + P^ig, one read of each): d[r] += the constants of both, err[r] += their charges Σ|Λ_h|
// cwo and Σ|Λ_c'| cwc (when err is given). k: the folded constants of gates o, f, g, i (all or none).
template <class T>
struct HiddenCellFold {
  const T *o = nullptr, *f = nullptr, *g = nullptr, *i = nullptr;
};
template <class T>
struct HiddenCellOut {
  MatView<T> lc2, go, gf, gg, gi;
};
template <bool Fold, bool Charge, class Ln, class T>
PQ_ALWAYS_INLINE void pass_hidden_cell_rows_of(MatView<const T> Lh, MatView<const T> Lc, const PlaneSet<T>& Po,
                                               const PlaneSet<T>& Pf, const PlaneSet<T>& Pig, HiddenCellOut<T> o,
                                               T* d, T* err, HiddenCellFold<T> k, const T* cwo, const T* cwc) {
  const PlaneRefs<T> ro = refs(Po), rf = refs(Pf), rg = refs(Pig);
  for (std::ptrdiff_t r = 0; r < Lh.rows; ++r) {
    T sums[Charge ? 4 : 2];
    hidden_cell_row<T, Ln, Fold, Charge>(Lh.row(r), Lc.row(r), Lh.cols, ro, rf, rg, o.lc2.row(r),
                                                       o.go.row(r), o.gf.row(r), o.gg.row(r), o.gi.row(r), k.o, k.f,
                                                       k.g, k.i, cwo, cwc, sums);
    if constexpr (Charge) err[r] += sums[2];  // the order of the separate passes: charge, pass, charge, pass
    d[r] += sums[0];
    if constexpr (Charge) err[r] += sums[3];
    d[r] += sums[1];
  }
}
template <class T, class Ln = detail::Lane4<T>>
PQ_ALWAYS_INLINE void pass_hidden_cell_body(MatView<const T> Lh, MatView<const T> Lc, const PlaneSet<T>& Po,
                                            const PlaneSet<T>& Pf, const PlaneSet<T>& Pig, HiddenCellOut<T> o, T* d,
                                            T* err, HiddenCellFold<T> k, const T* cwo, const T* cwc) {
  if (k.o && err) return pass_hidden_cell_rows_of<true, true, Ln>(Lh, Lc, Po, Pf, Pig, o, d, err, k, cwo, cwc);
  if (k.o) return pass_hidden_cell_rows_of<true, false, Ln>(Lh, Lc, Po, Pf, Pig, o, d, err, k, cwo, cwc);
  if (err) return pass_hidden_cell_rows_of<false, true, Ln>(Lh, Lc, Po, Pf, Pig, o, d, err, k, cwo, cwc);
  pass_hidden_cell_rows_of<false, false, Ln>(Lh, Lc, Po, Pf, Pig, o, d, err, k, cwo, cwc);
}

// Λ_h (R x s) through GRU's hidden step with separate z (sign_rule_rows.hpp gru_hidden_row:
// P^u, P^z, then P^r on Λ_u, one read of Λ_h): d[r] += their constants, err[r] += the charges
// Σ|Λ_h| cwh and Σ|Λ_u| cwu (when err is given). o: Λ_h' and G4's blocks [Λ_yr Λ_yz Λ_v Λ_u];
// k: the folded constants of u, y^z, v and y^r (all or none).
template <class T>
struct GruHiddenOut {
  MatView<T> lh2, gr, gz, gv, gu;
};
template <class T>
struct GruHiddenFold {
  const T *u = nullptr, *z = nullptr, *v = nullptr, *r = nullptr;
};
template <bool Fold, bool Charge, class Ln, class T>
PQ_ALWAYS_INLINE void pass_gru_hidden_rows_of(MatView<const T> Lh, const PlaneSet<T>& Pu, const PlaneSet<T>& Pz,
                                              const PlaneSet<T>& Pr, GruHiddenOut<T> o, T* d, T* err,
                                              GruHiddenFold<T> k, const T* cwh, const T* cwu) {
  const PlaneRefs<T> ru = refs(Pu), rz = refs(Pz), rr = refs(Pr);
  for (std::ptrdiff_t r = 0; r < Lh.rows; ++r) {
    T sums[Charge ? 5 : 3];
    gru_hidden_row<T, Ln, Fold, Charge>(Lh.row(r), Lh.cols, ru, rz, rr, o.lh2.row(r), o.gr.row(r),
                                                      o.gz.row(r), o.gv.row(r), o.gu.row(r), k.u, k.z, k.v, k.r, cwh,
                                                      cwu, sums);
    if constexpr (Charge) err[r] += sums[3];  // the order of the separate passes
    d[r] += sums[0];
    d[r] += sums[1];
    if constexpr (Charge) err[r] += sums[4];
    d[r] += sums[2];
  }
}
template <class T, class Ln = detail::Lane4<T>>
PQ_ALWAYS_INLINE void pass_gru_hidden_body(MatView<const T> Lh, const PlaneSet<T>& Pu, const PlaneSet<T>& Pz,
                                           const PlaneSet<T>& Pr, GruHiddenOut<T> o, T* d, T* err, GruHiddenFold<T> k,
                                           const T* cwh, const T* cwu) {
  if (k.u && err) return pass_gru_hidden_rows_of<true, true, Ln>(Lh, Pu, Pz, Pr, o, d, err, k, cwh, cwu);
  if (k.u) return pass_gru_hidden_rows_of<true, false, Ln>(Lh, Pu, Pz, Pr, o, d, err, k, cwh, cwu);
  if (err) return pass_gru_hidden_rows_of<false, true, Ln>(Lh, Pu, Pz, Pr, o, d, err, k, cwh, cwu);
  pass_gru_hidden_rows_of<false, false, Ln>(Lh, Pu, Pz, Pr, o, d, err, k, cwh, cwu);
}

// The passes above, compiled for the baseline ISA and, on x86-64 with GCC/Clang, for
// AVX2 (without FMA, so that products and sums round as in the baseline build),
// chosen at run time like gemm (matmul.hpp); the fused passes also for AVX-512 with GCC
// (eight lanes, Lane4Wide, the same sums; FMA contraction off: matmul.hpp cpu_has_avx512):
// against their AVX2 build, passes 0.93-0.98x at GRU h = 32-128, 0.95x at LSTM T16 h64,
// 0.98-0.99x at LSTM h = 128 and the RNN, 1.0x at h = 256 (with the matrices on cache
// lines, common.hpp; before that, LSTM T8 h128 took 1.025x).
#if PQ_X86_DISPATCH && !defined(__AVX2__)
namespace detail {
#if PQ_FUSED_AVX512
template <class T>
PQ_TARGET_AVX512_NOFMA void pass_lines_charged_avx512(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d,
                                                      const T* xo, T* err, const T* cw) {
  pass_lines_charged_body<T, Lane4Wide<T>>(L, ln, out, d, xo, err, cw);
}
template <class T>
PQ_TARGET_AVX512_NOFMA void pass_hidden_cell_avx512(MatView<const T> Lh, MatView<const T> Lc, const PlaneSet<T>& Po,
                                                    const PlaneSet<T>& Pf, const PlaneSet<T>& Pig, HiddenCellOut<T> o,
                                                    T* d, T* err, HiddenCellFold<T> k, const T* cwo, const T* cwc) {
  pass_hidden_cell_body<T, Lane4Wide<T>>(Lh, Lc, Po, Pf, Pig, o, d, err, k, cwo, cwc);
}
template <class T>
PQ_TARGET_AVX512_NOFMA void pass_gru_hidden_avx512(MatView<const T> Lh, const PlaneSet<T>& Pu, const PlaneSet<T>& Pz,
                                                   const PlaneSet<T>& Pr, GruHiddenOut<T> o, T* d, T* err,
                                                   GruHiddenFold<T> k, const T* cwh, const T* cwu) {
  pass_gru_hidden_body<T, Lane4Wide<T>>(Lh, Pu, Pz, Pr, o, d, err, k, cwh, cwu);
}
#endif
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
PQ_TARGET_AVX2 void pass_hidden_cell_avx2(MatView<const T> Lh, MatView<const T> Lc, const PlaneSet<T>& Po,
                                          const PlaneSet<T>& Pf, const PlaneSet<T>& Pig, HiddenCellOut<T> o, T* d,
                                          T* err, HiddenCellFold<T> k, const T* cwo, const T* cwc) {
  pass_hidden_cell_body(Lh, Lc, Po, Pf, Pig, o, d, err, k, cwo, cwc);
}
template <class T>
PQ_TARGET_AVX2 void pass_gru_hidden_avx2(MatView<const T> Lh, const PlaneSet<T>& Pu, const PlaneSet<T>& Pz,
                                         const PlaneSet<T>& Pr, GruHiddenOut<T> o, T* d, T* err, GruHiddenFold<T> k,
                                         const T* cwh, const T* cwu) {
  pass_gru_hidden_body(Lh, Pu, Pz, Pr, o, d, err, k, cwh, cwu);
}
template <class T>
PQ_TARGET_AVX2 void pass_lines_charged_avx2(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d,
                                            const T* xo, T* err, const T* cw) {
  pass_lines_charged_body(L, ln, out, d, xo, err, cw);
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
#if PQ_X86_DISPATCH && !defined(__AVX2__) && PQ_FUSED_AVX512
#define PQ_FUSED_DISPATCH_AVX512(...) \
  if (detail::cpu_has_avx512()) return detail::__VA_ARGS__
#else
#define PQ_FUSED_DISPATCH_AVX512(...) (void)0
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
template <class T>
void pass_hidden_cell_rows(MatView<const T> Lh, MatView<const T> Lc, const PlaneSet<T>& Po, const PlaneSet<T>& Pf,
                           const PlaneSet<T>& Pig, HiddenCellOut<T> o, T* d, T* err, HiddenCellFold<T> k,
                           const T* cwo, const T* cwc) {
  PQ_FUSED_DISPATCH_AVX512(pass_hidden_cell_avx512(Lh, Lc, Po, Pf, Pig, o, d, err, k, cwo, cwc));
  PQ_SIGN_RULE_DISPATCH(pass_hidden_cell_avx2(Lh, Lc, Po, Pf, Pig, o, d, err, k, cwo, cwc));
  pass_hidden_cell_body(Lh, Lc, Po, Pf, Pig, o, d, err, k, cwo, cwc);
}
template <class T>
void pass_lines_charged_rows(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d, const T* xo, T* err,
                             const T* cw) {
  PQ_FUSED_DISPATCH_AVX512(pass_lines_charged_avx512(L, ln, out, d, xo, err, cw));
  PQ_SIGN_RULE_DISPATCH(pass_lines_charged_avx2(L, ln, out, d, xo, err, cw));
  pass_lines_charged_body(L, ln, out, d, xo, err, cw);
}
template <class T>
void pass_gru_hidden_rows(MatView<const T> Lh, const PlaneSet<T>& Pu, const PlaneSet<T>& Pz, const PlaneSet<T>& Pr,
                          GruHiddenOut<T> o, T* d, T* err, GruHiddenFold<T> k, const T* cwh, const T* cwu) {
  PQ_FUSED_DISPATCH_AVX512(pass_gru_hidden_avx512(Lh, Pu, Pz, Pr, o, d, err, k, cwh, cwu));
  PQ_SIGN_RULE_DISPATCH(pass_gru_hidden_avx2(Lh, Pu, Pz, Pr, o, d, err, k, cwh, cwu));
  pass_gru_hidden_body(Lh, Pu, Pz, Pr, o, d, err, k, cwh, cwu);
}
}  // namespace detail

// Whether the cells run a step's sign-rule passes and charges as one pass over the rows
// (pass_hidden_cell, pass_gru_hidden, pass_lines_charged: the same bits as the separate
// passes). The environment variable POPQORN_SEPARATE_PASSES (any value) keeps the separate
// passes: the tests compare both.
inline bool fused_passes() {
  static const bool yes = std::getenv("POPQORN_SEPARATE_PASSES") == nullptr;
  return yes;
}

// The passes run their rows in blocks on the pass's threads (row_pool.hpp for_blocks).

// Λ (R x s) on φ(z) -> out (R x s) on z, d[r] += Σ_i λ·β; xo (the pre-activations' clean
// constants, or null): also d[r] += Σ_i out·xo, the affine step's constant folded in.
template <class T>
void pass_lines(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d, const T* xo = nullptr) {
  detail::for_row_blocks(L.rows, static_cast<double>(L.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::pass_lines_rows(rows_of(L, r0, r1), ln, rows_of(out, r0, r1), d + r0, xo);
  });
}

// charge_rows(L, cw, err) then pass_lines(L, ln, out, d, xo) in one read of L (rounding="sound").
template <class T>
void pass_lines_charged(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d, const T* xo, T* err,
                        const T* cw) {
  detail::for_row_blocks(L.rows, 1.5 * static_cast<double>(L.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::pass_lines_charged_rows(rows_of(L, r0, r1), ln, rows_of(out, r0, r1), d + r0, xo, err + r0, cw);
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

// Λ_h, Λ_c (R x s) through LSTM's hidden step: pass_plane<true, false> over P^o, then
// pass_plane_pair over P^f + P^ig, with the charge_rows of each before it (err given), in one
// pass over the rows (pass_hidden_cell_body): the same coefficients, constants and charges.
// Λ_c' (Λ_c after P^o) is not stored.
template <class T>
void pass_hidden_cell(MatView<const T> Lh, MatView<const T> Lc, const PlaneSet<T>& Po, const PlaneSet<T>& Pf,
                      const PlaneSet<T>& Pig, HiddenCellOut<T> o, T* d, T* err, HiddenCellFold<T> k = {},
                      const T* cwo = nullptr, const T* cwc = nullptr) {
  detail::for_row_blocks(Lh.rows, 4.5 * static_cast<double>(Lh.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::pass_hidden_cell_rows(rows_of(Lh, r0, r1), rows_of(Lc, r0, r1), Po, Pf, Pig,
                                  HiddenCellOut<T>{rows_of(o.lc2, r0, r1), rows_of(o.go, r0, r1),
                                                   rows_of(o.gf, r0, r1), rows_of(o.gg, r0, r1),
                                                   rows_of(o.gi, r0, r1)},
                                  d + r0, err ? err + r0 : nullptr, k, cwo, cwc);
  });
}

// Λ_h (R x s) through GRU's hidden step with separate z: pass_plane<false, false> over P^u,
// pass_plane<false, true> over P^z, then pass_plane<false, false> over P^r on Λ_u, with the
// charge_rows of the first and the third before them (err given), in one pass over the rows
// (pass_gru_hidden_body): the same coefficients, constants and charges.
template <class T>
void pass_gru_hidden(MatView<const T> Lh, const PlaneSet<T>& Pu, const PlaneSet<T>& Pz, const PlaneSet<T>& Pr,
                     GruHiddenOut<T> o, T* d, T* err, GruHiddenFold<T> k = {}, const T* cwh = nullptr,
                     const T* cwu = nullptr) {
  detail::for_row_blocks(Lh.rows, 4.5 * static_cast<double>(Lh.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::pass_gru_hidden_rows(rows_of(Lh, r0, r1), Pu, Pz, Pr,
                                 GruHiddenOut<T>{rows_of(o.lh2, r0, r1), rows_of(o.gr, r0, r1), rows_of(o.gz, r0, r1),
                                                 rows_of(o.gv, r0, r1), rows_of(o.gu, r0, r1)},
                                 d + r0, err ? err + r0 : nullptr, k, cwh, cwu);
  });
}

}  // namespace pq
