// The elementwise loops of the forward sweeps (planes="optimized", RECURRENCES.md §3b; the
// cells' sweep_block for a block of rows, their sweep through OptPlaneSet / OptLineSet::
// sweep_values for one row): each neuron's relaxation on the side its coefficient selects,
// evaluated at its inputs. Four lanes at a time with the side a select (the coefficients'
// signs are random: as branches they were mostly mispredicted), for the baseline ISA and,
// where the CPU has it, AVX2 (no FMA: a x + b y + c rounds as written, in both builds).
#pragma once
#include <cstddef>

#include "sign_rule.hpp"

namespace pq {
namespace detail {

// out_i = (Add: out_i +) the plane of P that v_i selects (lower for v_i >= 0) at (x_i, y_i).
template <class T, bool Add>
PQ_ALWAYS_INLINE void plane_values_body(PlaneRefs<T> P, const T* v, const T* x, const T* y, std::ptrdiff_t n,
                                        T* out) {
  auto one = [&](auto w, std::ptrdiff_t i) {
    using W = decltype(w);
    const auto vi = W::ld(v + i), xi = W::ld(x + i), yi = W::ld(y + i);
    const auto lo = W::ld(P.aL + i) * xi + W::ld(P.bL + i) * yi + W::ld(P.cL + i);
    const auto hi = W::ld(P.aU + i) * xi + W::ld(P.bU + i) * yi + W::ld(P.cU + i);
    const auto val = W::pick(vi, lo, hi);
    W::st(out + i, Add ? W::ld(out + i) + val : val);
  };
  for_lanes4<T>(n, one);
}

// out_i = the line of L that v_i selects (lower for v_i >= 0) at z_i.
template <class T>
PQ_ALWAYS_INLINE void line_values_body(LineRefs<T> L, const T* v, const T* z, std::ptrdiff_t n, T* out) {
  auto one = [&](auto w, std::ptrdiff_t i) {
    using W = decltype(w);
    const auto vi = W::ld(v + i), zi = W::ld(z + i);
    W::st(out + i, W::pick(vi, W::ld(L.al + i) * zi + W::ld(L.bl + i), W::ld(L.au + i) * zi + W::ld(L.bu + i)));
  };
  for_lanes4<T>(n, one);
}

// The GRU's shared z (gru_shared_z.hpp): mu_i = the merged coefficient on z for v_i
// (v pick(v, bm) − v pick(v, bu), the sign rule's choice), and z_i = the line of lz that mu_i selects
// at g_i.
template <class T>
PQ_ALWAYS_INLINE void shared_z_values_body(PlaneRefs<T> Pu, PlaneRefs<T> Pm, LineRefs<T> lz, const T* v, const T* g,
                                           std::ptrdiff_t n, T* mu, T* z) {
  auto one = [&](auto w, std::ptrdiff_t i) {
    using W = decltype(w);
    const auto vi = W::ld(v + i), gi = W::ld(g + i);
    const auto m = vi * W::pick(vi, W::ld(Pm.bL + i), W::ld(Pm.bU + i)) - vi * W::pick(vi, W::ld(Pu.bL + i), W::ld(Pu.bU + i));
    W::st(mu + i, m);
    W::st(z + i, W::pick(m, W::ld(lz.al + i) * gi + W::ld(lz.bl + i), W::ld(lz.au + i) * gi + W::ld(lz.bu + i)));
  };
  for_lanes4<T>(n, one);
}

#if PQ_X86_DISPATCH && !defined(__AVX2__)
template <class T>
PQ_TARGET_AVX2 void shared_z_values_avx2(PlaneRefs<T> Pu, PlaneRefs<T> Pm, LineRefs<T> lz, const T* v, const T* g,
                                         std::ptrdiff_t n, T* mu, T* z) {
  shared_z_values_body(Pu, Pm, lz, v, g, n, mu, z);
}
template <class T, bool Add>
PQ_TARGET_AVX2 void plane_values_avx2(PlaneRefs<T> P, const T* v, const T* x, const T* y, std::ptrdiff_t n, T* out) {
  plane_values_body<T, Add>(P, v, x, y, n, out);
}
template <class T>
PQ_TARGET_AVX2 void line_values_avx2(LineRefs<T> L, const T* v, const T* z, std::ptrdiff_t n, T* out) {
  line_values_body(L, v, z, n, out);
}
#endif

}  // namespace detail

// out_i = the plane of P that v_i selects (lower for v_i >= 0) at (x_i, y_i), i < n; Add:
// added to out_i.
template <class T, bool Add = false>
void plane_values(const PlaneSet<T>& P, const T* v, const T* x, const T* y, std::ptrdiff_t n, T* out) {
  PQ_SIGN_RULE_DISPATCH(plane_values_avx2<T, Add>(refs(P), v, x, y, n, out));
  detail::plane_values_body<T, Add>(refs(P), v, x, y, n, out);
}

// out_i = the line of L that v_i selects (lower for v_i >= 0) at z_i, i < n.
template <class T>
void line_values(const LineSet<T>& L, const T* v, const T* z, std::ptrdiff_t n, T* out) {
  PQ_SIGN_RULE_DISPATCH(line_values_avx2(refs(L), v, z, n, out));
  detail::line_values_body(refs(L), v, z, n, out);
}

// The GRU's shared z for n neurons: mu_i, the merged coefficient on z for v_i on h, and z_i,
// the line of lz that mu_i selects at g_i (shared_z_values_body).
template <class T>
void shared_z_values(const PlaneSet<T>& Pu, const PlaneSet<T>& Pm, const LineSet<T>& lz, const T* v, const T* g,
                     std::ptrdiff_t n, T* mu, T* z) {
  PQ_SIGN_RULE_DISPATCH(shared_z_values_avx2(refs(Pu), refs(Pm), refs(lz), v, g, n, mu, z));
  detail::shared_z_values_body(refs(Pu), refs(Pm), refs(lz), v, g, n, mu, z);
}

}  // namespace pq
