// The GRU hidden update with z relaxed once ("shared z", RECURRENCES.md §4 "GRU, shared z
// (optimized)"; ALGORITHM.md §3, §4 GRU):
//   h_t = tanh(u_t) w_t + z_t h_{t-1},   z_t = sigma(y^z_t),   w_t = 1 - z_t,
//   tanh(u) w  by planes P^u over the (u, w) box    (Surface::TanhLinear, F3),
//   z h_{t-1}  by planes P^m over the (h_{t-1}, z) box (Surface::Bilinear, F4: McCormick),
//   z          by the sigmoid lines of lines.hpp over [yl^z, yu^z].
// A coefficient λ on h_t picks both planes by its sign (sign_rule.hpp), the coefficients
// met on w and z are merged on z (w = 1 - z: μ = λ b_m − λ b_u, constant += λ b_u), and
// μ picks the sigmoid line by ITS sign. The two σ(y^z) of the two-plane form
// (F1(u, −y^z) + F2(h, y^z)) are thus one variable, whose coefficients can cancel.
#pragma once
#include <cstddef>
#include <limits>
#include <vector>
#include "common.hpp"
#include "lines.hpp"
#include "sign_rule.hpp"

namespace pq {

// z box [σ(yl), σ(yu)] and w box [σ(−yu), σ(−yl)] of s neurons, each widened outwards by
// 4 eps relative (σ is computed to a few ulps; the planes are valid on the box only).
template <class T>
void shared_z_boxes(const T* yl, const T* yu, std::ptrdiff_t s, T* zl, T* zu, T* wl, T* wu) {
  const T e = T(4) * std::numeric_limits<T>::epsilon();
  for (std::ptrdiff_t i = 0; i < s; ++i) {
    zl[i] = detail::sigmoid(yl[i]) * (T(1) - e);
    zu[i] = detail::sigmoid(yu[i]) * (T(1) + e);
    wl[i] = detail::sigmoid(-yu[i]) * (T(1) - e);
    wu[i] = detail::sigmoid(-yl[i]) * (T(1) + e);
  }
}

// Λ (R x s) on h_k -> Λ_u (ou), Λ_{h,k-1} (oh) and Λ_yz (oz), all assigned; d[r] += constants.
template <class T>
PQ_ALWAYS_INLINE void pass_shared_z_body(MatView<const T> L, const PlaneSet<T>& Pu, const PlaneSet<T>& Pm,
                                         const LineSet<T>& lz, MatView<T> ou, MatView<T> oh, MatView<T> oz,
                                         T* d) {
  const std::ptrdiff_t s = L.cols;
  // raw pointers outside the lane lambda, as in sign_rule.hpp's passes (a helper lambda
  // nested in it drew a UBSan "member access within null pointer" from GCC 12 at -O1)
  const T* uaL = Pu.aL.data(); const T* uaU = Pu.aU.data(); const T* ubL = Pu.bL.data();
  const T* ubU = Pu.bU.data(); const T* ucL = Pu.cL.data(); const T* ucU = Pu.cU.data();
  const T* maL = Pm.aL.data(); const T* maU = Pm.aU.data(); const T* mbL = Pm.bL.data();
  const T* mbU = Pm.bU.data(); const T* mcL = Pm.cL.data(); const T* mcU = Pm.cU.data();
  const T* zal = lz.al.data(); const T* zau = lz.au.data();
  const T* zbl = lz.bl.data(); const T* zbu = lz.bu.data();
  for (std::ptrdiff_t r = 0; r < L.rows; ++r) {
    const T* lam = L.row(r);
    T* __restrict u = ou.row(r);
    T* __restrict h = oh.row(r);
    T* __restrict z = oz.row(r);
    d[r] += sum4<T>(s, [&](auto w, std::ptrdiff_t i) {  // lane-generic, branch-free (sign_rule.hpp)
      using W = decltype(w);
      const auto v = W::ld(lam + i);
      W::st(u + i, v * W::pick(v, W::ld(uaL + i), W::ld(uaU + i)));
      W::st(h + i, v * W::pick(v, W::ld(maL + i), W::ld(maU + i)));
      const auto cw = v * W::pick(v, W::ld(ubL + i), W::ld(ubU + i));
      const auto mu = v * W::pick(v, W::ld(mbL + i), W::ld(mbU + i)) - cw;
      W::st(z + i, mu * W::pick(mu, W::ld(zal + i), W::ld(zau + i)));
      return (v * W::pick(v, W::ld(ucL + i), W::ld(ucU + i)) + v * W::pick(v, W::ld(mcL + i), W::ld(mcU + i))) +
             (cw + mu * W::pick(mu, W::ld(zbl + i), W::ld(zbu + i)));
    });
  }
}

// pass_shared_z_body for the baseline ISA and, chosen at run time, AVX2 (as sign_rule.hpp's passes).
#if PQ_X86_DISPATCH && !defined(__AVX2__)
namespace detail {
template <class T>
PQ_TARGET_AVX2 void pass_shared_z_avx2(MatView<const T> L, const PlaneSet<T>& Pu, const PlaneSet<T>& Pm,
                                       const LineSet<T>& lz, MatView<T> ou, MatView<T> oh, MatView<T> oz, T* d) {
  pass_shared_z_body(L, Pu, Pm, lz, ou, oh, oz, d);
}
}  // namespace detail
#endif

template <class T>
void pass_shared_z(MatView<const T> L, const PlaneSet<T>& Pu, const PlaneSet<T>& Pm, const LineSet<T>& lz,
                   MatView<T> ou, MatView<T> oh, MatView<T> oz, T* d) {
  PQ_SIGN_RULE_DISPATCH(pass_shared_z_avx2(L, Pu, Pm, lz, ou, oh, oz, d));
  pass_shared_z_body(L, Pu, Pm, lz, ou, oh, oz, d);
}

}  // namespace pq
