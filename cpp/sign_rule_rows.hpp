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
#include <type_traits>
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
  // int lanes (Lane4's itype): a value truncated toward zero, 1 where a comparison holds, the
  // lane's index from b, a where m else b, and the store
  using itype = int;
  static PQ_ROW_INLINE int to_int(T f) { return static_cast<int>(f); }
  static PQ_ROW_INLINE int ones(bool m) { return m ? 1 : 0; }
  static PQ_ROW_INLINE int iota(int b) { return b; }
  static PQ_ROW_INLINE int where(bool m, int a, int b) { return m ? a : b; }
  static PQ_ROW_INLINE void st_int(int* p, int v) { *p = v; }
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

namespace detail {
// Whether a four-lane type also offers eight lanes (L4::Wide, with L4::lo / L4::hi the
// halves of an eight-lane value): the AVX-512 builds of the fused passes (sign_rule.hpp).
template <class L4, class = void>
struct has_wide : std::false_type {};
template <class L4>
struct has_wide<L4, std::void_t<typename L4::Wide>> : std::true_type {};
}  // namespace detail

// K lane values: the contributions of one group of lanes to K sums.
template <class V, int K>
struct LaneParts {
  V v[K];
};

// out[k] = Σ_{i<n} (part k of f(lane, i)) for k < K, each with four partial sums (lane l sums
// the i ≡ l mod 4; then (p0 + p1) + (p2 + p3), then the tail in order): f(w, i, parts)
// writes the K contributions of lanes i.. (L4 on i = 0, 4, ..., detail::Lane1<T> on the
// tail). Where L4 has eight lanes too (L4::Wide), f takes i = 0, 8, ... eight at a time and
// each half is added to the four partial sums in order (i, then i + 4): the same sums, term
// for term.
template <class T, class L4, int K, class F>
PQ_ROW_INLINE void sums4_lanes(std::ptrdiff_t n, F&& f, T (&out)[K]) {
  const std::ptrdiff_t n4 = n - n % 4;
  typename L4::type acc[K] = {};
  std::ptrdiff_t i = 0;
  if constexpr (detail::has_wide<L4>::value) {
    using Wd = typename L4::Wide;
    for (; i + 8 <= n4; i += 8) {
      LaneParts<typename Wd::type, K> c{};
      f(Wd{}, i, c);
      for (int k = 0; k < K; ++k) {
        acc[k] += L4::lo(c.v[k]);
        acc[k] += L4::hi(c.v[k]);
      }
    }
  }
  for (; i < n4; i += 4) {
    LaneParts<typename L4::type, K> c{};
    f(L4{}, i, c);
    for (int k = 0; k < K; ++k) acc[k] += c.v[k];
  }
  for (int k = 0; k < K; ++k) out[k] = (acc[k][0] + acc[k][1]) + (acc[k][2] + acc[k][3]);
  for (; i < n; ++i) {
    LaneParts<T, K> c{};
    f(detail::Lane1<T>{}, i, c);
    for (int k = 0; k < K; ++k) out[k] += c.v[k];
  }
}

// Σ_{i<n} f(lane, i): f (a generic lambda that also writes the passed coefficients) is
// called with L4 on i = 0, 4, ... and detail::Lane1<T> on the tail; sums4_lanes with one sum.
template <class T, class L4, class F>
PQ_ROW_INLINE T sum4_lanes(std::ptrdiff_t n, F&& f) {
  T out[1];
  sums4_lanes<T, L4>(n, [&](auto w, std::ptrdiff_t i, auto& c) { c.v[0] = f(w, i); }, out);
  return out[0];
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
                                     const T* cw, T (&out)[2]) {
  sums4_lanes<T, L4>(s, [&](auto w, std::ptrdiff_t i, auto& c) {
    using W = decltype(w);
    const auto v = W::ld(lam + i);
    c.v[1] = W::abs(v) * W::ld(cw + i);
    const auto g = v * W::pick(v, W::ld(ln.al + i), W::ld(ln.au + i));
    W::st(o + i, g);
    if constexpr (Fold) c.v[0] = v * W::pick(v, W::ld(ln.bl + i), W::ld(ln.bu + i)) + g * W::ld(xo + i);
    else c.v[0] = v * W::pick(v, W::ld(ln.bl + i), W::ld(ln.bu + i));
  }, out);
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

// plane_pair_row's lanes i.. (lane type W): writes them, returns their terms of the sum
// (also hidden_cell_row's second half).
template <class W, bool Fold, class T>
PQ_ROW_INLINE typename W::type pair_lanes(typename W::type v, std::ptrdiff_t i, PlaneRefs<T> P1, PlaneRefs<T> P2,
                                          T* __restrict__ x1, T* __restrict__ y1, T* __restrict__ x2,
                                          T* __restrict__ y2, const T* k1y, const T* k2x, const T* k2y) {
  W::st(x1 + i, v * W::pick(v, W::ld(P1.aL + i), W::ld(P1.aU + i)));  // blends, not branches: signs are random
  const auto g1 = v * W::pick(v, W::ld(P1.bL + i), W::ld(P1.bU + i));
  const auto g2 = v * W::pick(v, W::ld(P2.aL + i), W::ld(P2.aU + i));
  const auto g3 = v * W::pick(v, W::ld(P2.bL + i), W::ld(P2.bU + i));
  W::st(y1 + i, g1);
  W::st(x2 + i, g2);
  W::st(y2 + i, g3);
  const auto c = v * W::pick(v, W::ld(P1.cL + i), W::ld(P1.cU + i)) + v * W::pick(v, W::ld(P2.cL + i), W::ld(P2.cU + i));
  if constexpr (Fold) return c + ((g1 * W::ld(k1y + i) + g2 * W::ld(k2x + i)) + g3 * W::ld(k2y + i));
  return c;
}

// λ (s) on the sum F(x1, y1) + F(x2, y2) of two planes sharing the coefficient (LSTM's
// c_t = P^f + P^ig): one sign decision feeds both; returns Σ_i λ·(c1 + c2). Fold: y1, x2
// and y2 are gates' coefficients, and the sum also takes Σ_i (y1_i k1y_i + x2_i k2x_i +
// y2_i k2y_i), the k the gates' clean constants (lines_row's Fold).
template <class T, class L4, bool Fold = false>
PQ_ROW_INLINE T plane_pair_row(const T* lam, std::ptrdiff_t s, PlaneRefs<T> P1, PlaneRefs<T> P2,
                               T* __restrict__ x1, T* __restrict__ y1, T* __restrict__ x2, T* __restrict__ y2,
                               const T* k1y = nullptr, const T* k2x = nullptr, const T* k2y = nullptr) {
  return sum4_lanes<T, L4>(s, [&](auto w, std::ptrdiff_t i) {
    using W = decltype(w);
    return pair_lanes<W, Fold>(W::ld(lam + i), i, P1, P2, x1, y1, x2, y2, k1y, k2x, k2y);
  });
}

// LSTM's hidden step for one row in one read of λ_h and λ_c (cells/cell_lstm.hpp): λ_h
// through P^o(c_t, y^o) (λ_c' = λ_c + λ_h a_o into no store, λ_h b_o into go), then λ_c'
// through P^f + P^ig as plane_pair_row (into lc2, gf, gg, gi). out[0] and out[1]: the sums of
// plane_row<true, false> (Fold: ko, the gate o's clean constants) and of plane_pair_row
// (Fold: kf, kg, ki); with Charge (out then has four entries), out[2] and out[3]: Σ_i |λ_h| cwo_i and Σ_i |λ_c'| cwc_i,
// the charges of rounding.hpp charge_rows. Every sum keeps four partial sums in the order of
// sum4_lanes (rowdots' order too; sums4_lanes), so the results are those of the separate
// passes, bit for bit.
template <class T, class L4, bool Fold, bool Charge>
PQ_ROW_INLINE void hidden_cell_row(const T* lh, const T* lc, std::ptrdiff_t s, PlaneRefs<T> Po, PlaneRefs<T> Pf,
                                   PlaneRefs<T> Pig, T* __restrict__ lc2, T* __restrict__ go, T* __restrict__ gf,
                                   T* __restrict__ gg, T* __restrict__ gi, const T* ko, const T* kf, const T* kg,
                                   const T* ki, const T* cwo, const T* cwc, T (&out)[Charge ? 4 : 2]) {
  sums4_lanes<T, L4>(s, [&](auto w, std::ptrdiff_t i, auto& c) {
    using W = decltype(w);
    const auto v = W::ld(lh + i);
    if constexpr (Charge) c.v[2] = W::abs(v) * W::ld(cwo + i);
    const auto ax = v * W::pick(v, W::ld(Po.aL + i), W::ld(Po.aU + i));
    const auto by = v * W::pick(v, W::ld(Po.bL + i), W::ld(Po.bU + i));
    const auto u = W::ld(lc + i) + ax;
    W::st(go + i, by);
    c.v[0] = v * W::pick(v, W::ld(Po.cL + i), W::ld(Po.cU + i));
    if constexpr (Fold) c.v[0] = c.v[0] + by * W::ld(ko + i);
    if constexpr (Charge) c.v[3] = W::abs(u) * W::ld(cwc + i);
    c.v[1] = pair_lanes<W, Fold>(u, i, Pf, Pig, lc2, gf, gg, gi, kf, kg, ki);
  }, out);
}

// GRU's hidden step for one row in one read of λ_h (cells/cell_gru.hpp, separate z): λ_h
// through P^u(u, −y^z) (λ a_u into gu, −λ b_u) and P^z(h_prev, y^z) (λ a_z into lh2, the two
// y^z parts summed into gz), then Λ_u = λ a_u through P^r(v, y^r) (into gv, gr). out[0..2]:
// the sums of the three plane_row passes (Fold: ku, kz, kv, kr, the gates' clean constants);
// with Charge (five entries), out[3], out[4]: Σ|λ_h| cwh and Σ|Λ_u| cwu (charge_rows). Four partial sums each
// in sum4_lanes' order: the results of the separate passes, bit for bit.
template <class T, class L4, bool Fold, bool Charge>
PQ_ROW_INLINE void gru_hidden_row(const T* lh, std::ptrdiff_t s, PlaneRefs<T> Pu, PlaneRefs<T> Pz, PlaneRefs<T> Pr,
                                  T* __restrict__ lh2, T* __restrict__ gr, T* __restrict__ gz, T* __restrict__ gv,
                                  T* __restrict__ gu, const T* ku, const T* kz, const T* kv, const T* kr,
                                  const T* cwh, const T* cwu, T (&out)[Charge ? 5 : 3]) {
  sums4_lanes<T, L4>(s, [&](auto w, std::ptrdiff_t i, auto& c) {
    using W = decltype(w);
    const auto v = W::ld(lh + i);
    if constexpr (Charge) c.v[3] = W::abs(v) * W::ld(cwh + i);
    const auto au = v * W::pick(v, W::ld(Pu.aL + i), W::ld(Pu.aU + i));
    const auto bu = T(-1) * (v * W::pick(v, W::ld(Pu.bL + i), W::ld(Pu.bU + i)));
    W::st(gu + i, au);
    c.v[0] = v * W::pick(v, W::ld(Pu.cL + i), W::ld(Pu.cU + i));
    if constexpr (Fold) c.v[0] = c.v[0] + au * W::ld(ku + i);
    W::st(lh2 + i, v * W::pick(v, W::ld(Pz.aL + i), W::ld(Pz.aU + i)));
    const auto yz = bu + v * W::pick(v, W::ld(Pz.bL + i), W::ld(Pz.bU + i));
    W::st(gz + i, yz);
    c.v[1] = v * W::pick(v, W::ld(Pz.cL + i), W::ld(Pz.cU + i));
    if constexpr (Fold) c.v[1] = c.v[1] + yz * W::ld(kz + i);
    if constexpr (Charge) c.v[4] = W::abs(au) * W::ld(cwu + i);
    const auto av = au * W::pick(au, W::ld(Pr.aL + i), W::ld(Pr.aU + i));
    const auto br = au * W::pick(au, W::ld(Pr.bL + i), W::ld(Pr.bU + i));
    W::st(gv + i, av);
    W::st(gr + i, br);
    c.v[2] = au * W::pick(au, W::ld(Pr.cL + i), W::ld(Pr.cU + i));
    if constexpr (Fold) {
      c.v[2] = c.v[2] + av * W::ld(kv + i);
      c.v[2] = c.v[2] + br * W::ld(kr + i);
    }
  }, out);
}

}  // namespace pq
