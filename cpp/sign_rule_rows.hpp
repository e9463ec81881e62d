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
#include <cmath>
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
  static PQ_ROW_INLINE T abs(T v) { return std::fabs(v); }
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
  static PQ_ROW_INLINE type abs(const type& v) {
    type r;
    for (int l = 0; l < 4; ++l) r.v[l] = std::fabs(v.v[l]);
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

// lines_row with its charge (rounding.hpp charge_rows) in the same read of λ: out[0] the
// sum of lines_row, out[1] Σ_i |λ_i| cw_i, each in sum4_lanes' order (rowdots' too).
template <class T, class L4, bool Fold>
PQ_ROW_INLINE void lines_charged_row(const T* lam, std::ptrdiff_t s, LineRefs<T> ln, T* __restrict__ o, const T* xo,
                                     const T* cw, T out[2]) {
  auto elem = [&](auto w, std::ptrdiff_t i, auto& p, auto& q) {
    using W = decltype(w);
    const auto v = W::ld(lam + i);
    q += W::abs(v) * W::ld(cw + i);
    const auto g = v * W::pick(v, W::ld(ln.al + i), W::ld(ln.au + i));
    W::st(o + i, g);
    if constexpr (Fold) p += v * W::pick(v, W::ld(ln.bl + i), W::ld(ln.bu + i)) + g * W::ld(xo + i);
    else p += v * W::pick(v, W::ld(ln.bl + i), W::ld(ln.bu + i));
  };
  const std::ptrdiff_t n4 = s - s % 4;
  typename L4::type p{}, q{};
  for (std::ptrdiff_t i = 0; i < n4; i += 4) elem(L4{}, i, p, q);
  T r[2] = {(p[0] + p[1]) + (p[2] + p[3]), (q[0] + q[1]) + (q[2] + q[3])};
  for (std::ptrdiff_t i = n4; i < s; ++i) elem(detail::Lane1<T>{}, i, r[0], r[1]);
  out[0] = r[0];
  out[1] = r[1];
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

// LSTM's hidden step for one row in one read of λ_h and λ_c (cells/cell_lstm.hpp): λ_h
// through P^o(c_t, y^o) (λ_c' = λ_c + λ_h a_o into no store, λ_h b_o into go), then λ_c'
// through P^f + P^ig as plane_pair_row (into lc2, gf, gg, gi). out[0] and out[1]: the sums of
// plane_row<true, false> (Fold: ko, the gate o's clean constants) and of plane_pair_row
// (Fold: kf, kg, ki); with Charge, out[2] and out[3]: Σ_i |λ_h| cwo_i and Σ_i |λ_c'| cwc_i,
// the charges of rounding.hpp charge_rows. Every sum keeps four partial sums in the order of
// sum4_lanes (rowdots' order too), so the results are those of the separate passes, bit for bit.
template <class T, class L4, bool Fold, bool Charge>
PQ_ROW_INLINE void hidden_cell_row(const T* lh, const T* lc, std::ptrdiff_t s, PlaneRefs<T> Po, PlaneRefs<T> Pf,
                                   PlaneRefs<T> Pig, T* __restrict__ lc2, T* __restrict__ go, T* __restrict__ gf,
                                   T* __restrict__ gg, T* __restrict__ gi, const T* ko, const T* kf, const T* kg,
                                   const T* ki, const T* cwo, const T* cwc, T out[4]) {
  auto elem = [&](auto w, std::ptrdiff_t i, auto& so, auto& sp, auto& qo, auto& qc) {
    using W = decltype(w);
    const auto v = W::ld(lh + i);
    if constexpr (Charge) qo += W::abs(v) * W::ld(cwo + i);
    const auto ax = v * W::pick(v, W::ld(Po.aL + i), W::ld(Po.aU + i));
    const auto by = v * W::pick(v, W::ld(Po.bL + i), W::ld(Po.bU + i));
    const auto u = W::ld(lc + i) + ax;
    W::st(go + i, by);
    auto co = v * W::pick(v, W::ld(Po.cL + i), W::ld(Po.cU + i));
    if constexpr (Fold) co = co + by * W::ld(ko + i);
    so += co;
    if constexpr (Charge) qc += W::abs(u) * W::ld(cwc + i);
    W::st(lc2 + i, u * W::pick(u, W::ld(Pf.aL + i), W::ld(Pf.aU + i)));
    const auto g1 = u * W::pick(u, W::ld(Pf.bL + i), W::ld(Pf.bU + i));
    const auto g2 = u * W::pick(u, W::ld(Pig.aL + i), W::ld(Pig.aU + i));
    const auto g3 = u * W::pick(u, W::ld(Pig.bL + i), W::ld(Pig.bU + i));
    W::st(gf + i, g1);
    W::st(gg + i, g2);
    W::st(gi + i, g3);
    const auto c =
        u * W::pick(u, W::ld(Pf.cL + i), W::ld(Pf.cU + i)) + u * W::pick(u, W::ld(Pig.cL + i), W::ld(Pig.cU + i));
    if constexpr (Fold) sp += c + ((g1 * W::ld(kf + i) + g2 * W::ld(kg + i)) + g3 * W::ld(ki + i));
    else sp += c;
  };
  const std::ptrdiff_t n4 = s - s % 4;
  typename L4::type so{}, sp{}, qo{}, qc{};
  for (std::ptrdiff_t i = 0; i < n4; i += 4) elem(L4{}, i, so, sp, qo, qc);
  T r[4] = {(so[0] + so[1]) + (so[2] + so[3]), (sp[0] + sp[1]) + (sp[2] + sp[3]),
            (qo[0] + qo[1]) + (qo[2] + qo[3]), (qc[0] + qc[1]) + (qc[2] + qc[3])};
  for (std::ptrdiff_t i = n4; i < s; ++i) elem(detail::Lane1<T>{}, i, r[0], r[1], r[2], r[3]);
  for (int j = 0; j < 4; ++j) out[j] = r[j];
}

// GRU's hidden step for one row in one read of λ_h (cells/cell_gru.hpp, separate z): λ_h
// through P^u(u, −y^z) (λ a_u into gu, −λ b_u) and P^z(h_prev, y^z) (λ a_z into lh2, the two
// y^z parts summed into gz), then Λ_u = λ a_u through P^r(v, y^r) (into gv, gr). out[0..2]:
// the sums of the three plane_row passes (Fold: ku, kz, kv, kr, the gates' clean constants);
// with Charge, out[3], out[4]: Σ|λ_h| cwh and Σ|Λ_u| cwu (charge_rows). Four partial sums each
// in sum4_lanes' order: the results of the separate passes, bit for bit.
template <class T, class L4, bool Fold, bool Charge>
PQ_ROW_INLINE void gru_hidden_row(const T* lh, std::ptrdiff_t s, PlaneRefs<T> Pu, PlaneRefs<T> Pz, PlaneRefs<T> Pr,
                                  T* __restrict__ lh2, T* __restrict__ gr, T* __restrict__ gz, T* __restrict__ gv,
                                  T* __restrict__ gu, const T* ku, const T* kz, const T* kv, const T* kr,
                                  const T* cwh, const T* cwu, T out[5]) {
  auto elem = [&](auto w, std::ptrdiff_t i, auto& s1, auto& s2, auto& s3, auto& qh, auto& qu) {
    using W = decltype(w);
    const auto v = W::ld(lh + i);
    if constexpr (Charge) qh += W::abs(v) * W::ld(cwh + i);
    const auto au = v * W::pick(v, W::ld(Pu.aL + i), W::ld(Pu.aU + i));
    const auto bu = T(-1) * (v * W::pick(v, W::ld(Pu.bL + i), W::ld(Pu.bU + i)));
    W::st(gu + i, au);
    auto cu = v * W::pick(v, W::ld(Pu.cL + i), W::ld(Pu.cU + i));
    if constexpr (Fold) cu = cu + au * W::ld(ku + i);
    s1 += cu;
    W::st(lh2 + i, v * W::pick(v, W::ld(Pz.aL + i), W::ld(Pz.aU + i)));
    const auto yz = bu + v * W::pick(v, W::ld(Pz.bL + i), W::ld(Pz.bU + i));
    W::st(gz + i, yz);
    auto cz = v * W::pick(v, W::ld(Pz.cL + i), W::ld(Pz.cU + i));
    if constexpr (Fold) cz = cz + yz * W::ld(kz + i);
    s2 += cz;
    if constexpr (Charge) qu += W::abs(au) * W::ld(cwu + i);
    const auto av = au * W::pick(au, W::ld(Pr.aL + i), W::ld(Pr.aU + i));
    const auto br = au * W::pick(au, W::ld(Pr.bL + i), W::ld(Pr.bU + i));
    W::st(gv + i, av);
    W::st(gr + i, br);
    auto cr = au * W::pick(au, W::ld(Pr.cL + i), W::ld(Pr.cU + i));
    if constexpr (Fold) {
      cr = cr + av * W::ld(kv + i);
      cr = cr + br * W::ld(kr + i);
    }
    s3 += cr;
  };
  const std::ptrdiff_t n4 = s - s % 4;
  typename L4::type s1{}, s2{}, s3{}, qh{}, qu{};
  for (std::ptrdiff_t i = 0; i < n4; i += 4) elem(L4{}, i, s1, s2, s3, qh, qu);
  T r[5] = {(s1[0] + s1[1]) + (s1[2] + s1[3]), (s2[0] + s2[1]) + (s2[2] + s2[3]), (s3[0] + s3[1]) + (s3[2] + s3[3]),
            (qh[0] + qh[1]) + (qh[2] + qh[3]), (qu[0] + qu[1]) + (qu[2] + qu[3])};
  for (std::ptrdiff_t i = n4; i < s; ++i) elem(detail::Lane1<T>{}, i, r[0], r[1], r[2], r[3], r[4]);
  for (int j = 0; j < 5; ++j) out[j] = r[j];
}

}  // namespace pq
