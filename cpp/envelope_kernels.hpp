// The two loops of planes="optimized"'s envelope tables (optim_planes.hpp
// PlaneBoxes::rank_box / fill_cell; RECURRENCES.md §3b), compiled for the baseline ISA and, where
// the CPU has it, for AVX2. Both do elementwise arithmetic and exact max / min reductions
// (no FMA, no reassociation of a sum), so both builds give the same values and winners:
//   envelope_lattice: for each of the S x S lattice points (x_p, y_q) with F = f_p g_q,
//     every candidate k's F - a_k x - b_k y into its running min lo_k and max hi_k;
//   envelope_winners: for each of the cells c0 <= c < c1 of the G x G grid (centre
//     (cx_i, cy_j), cell c = i G + j), the first candidate k with the highest
//     a_k cx + b_k cy + lo_k (win[c], the lower side's winner) and the first with the lowest
//     a_k cx + b_k cy + hi_k (win[C + c]).
// And the two loops of a best response on the tables (OptPlaneSet::envelope_response), four
// neurons at a time with every data-dependent choice a select (the sides and the takes follow
// the random signs of the coefficients: as branches they were mostly mispredicted):
//   envelope_cells: each neuron's slot in the tables, the cell of its sweep point (line_cells:
//     a line's, optim_lines.hpp);
//   envelope_take: each met side takes its winner where tighter at the sweep point (line_take:
//     a line's candidate, optim_lines.hpp).
#pragma once
#include <cstddef>
#include <limits>
#include <type_traits>

#include "matmul.hpp"
#include "sign_rule.hpp"

namespace pq {
namespace detail {

template <class T>
PQ_ALWAYS_INLINE void envelope_lattice_body(int S, const T* fx, const T* gy, const T* lx, const T* ly, int C,
                                            const T* __restrict A, const T* __restrict B, T* __restrict L,
                                            T* __restrict H) {
  for (int p = 0; p < S; ++p)
    for (int q = 0; q < S; ++q) {  // one lattice point, every candidate (independent lanes)
      const T F = fx[p] * gy[q], x = lx[p], y = ly[q];
      for (int k = 0; k < C; ++k) {
        const T g = F - A[k] * x - B[k] * y;
        L[k] = g < L[k] ? g : L[k];
        H[k] = g > H[k] ? g : H[k];
      }
    }
}

// Four lanes at a time, each lane keeping its highest value (lowest for the upper side) and
// the first candidate attaining it (strict comparisons); then, of the lanes attaining the
// overall extreme, the smallest index: the first candidate a sequential scan keeps. max and
// min are exact, so the values are those of a sequential scan too.
template <class T>
PQ_ALWAYS_INLINE void envelope_winners_body(int G, const T* cx, const T* cy, int C, const T* __restrict A,
                                            const T* __restrict B, const T* __restrict lo,
                                            const T* __restrict hi, int* win, int c0, int c1) {
  using V = Vec<T, 4 * static_cast<int>(sizeof(T))>;
  using v_t = typename V::type;
  using I = std::conditional_t<sizeof(T) == 8, long long, int>;
  typedef I i_t __attribute__((vector_size(4 * sizeof(T))));
  const int C4 = C / 4 * 4;
  for (int c = c0; c < c1; ++c) {
    const T px = cx[c / G], py = cy[c % G];
    T top = -std::numeric_limits<T>::infinity(), bot = std::numeric_limits<T>::infinity();
    int bl = 0, bu = 0;
    if (C4 > 0) {
      const v_t vx = v_t{} + px, vy = v_t{} + py;
      i_t kk = {0, 1, 2, 3}, il = kk, iu = kk;
      v_t v = V::load(A) * vx + V::load(B) * vy;
      v_t mx = v + V::load(lo), mn = v + V::load(hi);
      for (int k = 4; k < C4; k += 4) {
        kk += 4;
        v = V::load(A + k) * vx + V::load(B + k) * vy;
        const v_t l = v + V::load(lo + k), u = v + V::load(hi + k);
        const i_t gt = l > mx, lt = u < mn;
        mx = gt ? l : mx;
        il = gt ? kk : il;
        mn = lt ? u : mn;
        iu = lt ? kk : iu;
      }
      for (int j = 0; j < 4; ++j) {
        top = mx[j] > top ? mx[j] : top;
        bot = mn[j] < bot ? mn[j] : bot;
      }
      bl = bu = C;
      for (int j = 0; j < 4; ++j) {
        if (mx[j] == top && il[j] < bl) bl = static_cast<int>(il[j]);
        if (mn[j] == bot && iu[j] < bu) bu = static_cast<int>(iu[j]);
      }
    }
    for (int k = C4; k < C; ++k) {
      const T v = A[k] * px + B[k] * py;
      if (v + lo[k] > top) top = v + lo[k], bl = k;
      if (v + hi[k] < bot) bot = v + hi[k], bu = k;
    }
    win[c] = bl;
    win[C + c] = bu;
  }
}


// Slot wk_i = (2 i + side_i) per + cx_i G + cy_i of each of s neurons (side 1 where v_i < 0;
// −1 where v_i = 0): the cell of (mx_i, my_i) clamped to the box [xl, xu] x [yl, yu], cx =
// ⌊(x − xl) kx⌋ capped at G − 1 (kx = G / width, 0 for a degenerate side; NaN: cell 0).
template <class T>
struct CellArgs {
  const T *mx, *my, *v, *xl, *xu, *kx, *yl, *yu, *ky;
};
// Lanes W (Lane4 or Lane1, for_lanes4) of neurons from i: their slots.
template <class W, class T>
PQ_ALWAYS_INLINE typename W::itype cell_slots(const CellArgs<T>& a, std::ptrdiff_t i, int G, int per) {
  using V = typename W::type;
  const V zero{}, top = zero + T(G - 1);
  V x = W::ld(a.mx + i), y = W::ld(a.my + i);
  const V xl = W::ld(a.xl + i), yl = W::ld(a.yl + i), xu = W::ld(a.xu + i), yu = W::ld(a.yu + i);
  x = x > xl ? x : xl;
  y = y > yl ? y : yl;
  V fx = ((x < xu ? x : xu) - xl) * W::ld(a.kx + i), fy = ((y < yu ? y : yu) - yl) * W::ld(a.ky + i);
  fx = fx > zero ? fx : zero;
  fy = fy > zero ? fy : zero;
  const auto cx = W::to_int(fx < top ? fx : top), cy = W::to_int(fy < top ? fy : top);
  const V v = W::ld(a.v + i);
  const auto slot = (2 * W::iota(static_cast<int>(i)) + W::ones(v < zero)) * per + cx * G + cy;
  return W::where(v != zero, slot, -1);
}
template <class T>
PQ_ALWAYS_INLINE void envelope_cells_body(const CellArgs<T>& a, std::size_t s, int G, int per, int* wk) {
  for_lanes4<T>(static_cast<std::ptrdiff_t>(s), [&](auto w, std::ptrdiff_t i) {
    using W = decltype(w);
    W::st_int(wk + i, cell_slots<W>(a, i, G, per));
  });
}

// Lines (optim_lines.hpp): slot wk_i = (2 i + side_i) G + c_i of each of s neurons, c_i the
// cell of z_i clamped to [l_i, u_i] (⌊(z − l) k⌋ capped at G − 1, k = G / (u − l); NaN: cell
// 0); −1 where v_i = 0 or the interval is a point.
template <class W, class T>
PQ_ALWAYS_INLINE typename W::itype line_slots(const T* z, const T* v, const T* l, const T* u, const T* k,
                                               std::ptrdiff_t i, int G) {
  using V = typename W::type;
  const V zero{}, top = zero + T(G - 1), li = W::ld(l + i), ui = W::ld(u + i), vi = W::ld(v + i);
  V x = W::ld(z + i);
  x = x > li ? x : li;
  V f = ((x < ui ? x : ui) - li) * W::ld(k + i);
  f = f > zero ? f : zero;
  const auto slot = (2 * W::iota(static_cast<int>(i)) + W::ones(vi < zero)) * G + W::to_int(f < top ? f : top);
  return W::where((vi != zero) & (li < ui), slot, -1);
}
// Neuron i's slot alone (the rows' own responses, OptLineSet::improve).
template <class T>
PQ_ALWAYS_INLINE int line_slot(const T* z, const T* v, const T* l, const T* u, const T* k, std::size_t i, int G) {
  return line_slots<Lane1<T>>(z, v, l, u, k, static_cast<std::ptrdiff_t>(i), G);
}
template <class T>
PQ_ALWAYS_INLINE void line_cells_body(const T* z, const T* v, const T* l, const T* u, const T* k, std::size_t s, int G,
                                      int* wk) {
  for_lanes4<T>(static_cast<std::ptrdiff_t>(s), [&](auto w, std::ptrdiff_t i) {
    using W = decltype(w);
    W::st_int(wk + i, line_slots<W>(z, v, l, u, k, i, G));
  });
}

// The takes' lanes (L: Lane4 or Lane1, for_lanes4): field(W[wk_j]) for the neurons j of the
// lane from i (W[0] where wk_j < 0: not met), and whether each is met (a mask of the lanes).
template <class L, class Q, class F>
PQ_ALWAYS_INLINE auto gather(const Q* W, const int* wk, std::size_t i, F&& field) {
  using V = typename L::type;
  if constexpr (std::is_arithmetic_v<V>) {
    return field(W[wk[i] >= 0 ? wk[i] : 0]);
  } else {
    V out;
    for (std::size_t j = 0; j < sizeof(V) / sizeof(out[0]); ++j) out[j] = field(W[wk[i + j] >= 0 ? wk[i + j] : 0]);
    return out;
  }
}
template <class L>
PQ_ALWAYS_INLINE auto met_lanes(const int* wk, std::size_t i) {
  using V = typename L::type;
  if constexpr (std::is_arithmetic_v<V>) {
    return wk[i] >= 0;
  } else {
    decltype(V{} < V{}) met;
    for (std::size_t j = 0; j < sizeof(V) / sizeof(V{}[0]); ++j) met[j] = wk[i + j] >= 0 ? -1 : 0;
    return met;
  }
}

// Each neuron i with wk_i >= 0 (the index of its winner q in W: slopes q.a, q.b, offset q.c)
// on the side v_i selects (lower for v_i >= 0): that side of the planes `from` (aL, bL, cL,
// aU, bU, cU) becomes q where q is higher (lower side; upper: lower) at (mx_i, my_i), into
// `to` (the same arrays, or a row's copy written whole: from's values where not taken).
template <class T>
struct TakeArgs {
  const T *mx, *my, *v;
  const T* from[6];
  T* to[6];
};
template <class T, class Q>
PQ_ALWAYS_INLINE void envelope_take_body(const TakeArgs<T>& a, const Q* W, const int* wk, std::size_t s) {
  for_lanes4<T>(static_cast<std::ptrdiff_t>(s), [&](auto lane, std::ptrdiff_t i) {
    using L = decltype(lane);
    const auto qa = gather<L>(W, wk, i, [](const Q& q) { return q.a; });
    const auto qb = gather<L>(W, wk, i, [](const Q& q) { return q.b; });
    const auto qc = gather<L>(W, wk, i, [](const Q& q) { return q.c; });
    const auto x = L::ld(a.mx + i), y = L::ld(a.my + i);
    const auto al = L::ld(a.from[0] + i), bl = L::ld(a.from[1] + i), cl = L::ld(a.from[2] + i);
    const auto au = L::ld(a.from[3] + i), bu = L::ld(a.from[4] + i), cu = L::ld(a.from[5] + i);
    const auto lo = al * x + bl * y + cl, hi = au * x + bu * y + cu, after = qa * x + qb * y + qc;
    const auto met = met_lanes<L>(wk, i), lower = L::ld(a.v + i) >= decltype(x){};
    const auto tl = met & lower & (after > lo), tu = met & (lower == 0) & (after < hi);
    L::st(a.to[0] + i, tl ? qa : al), L::st(a.to[1] + i, tl ? qb : bl), L::st(a.to[2] + i, tl ? qc : cl);
    L::st(a.to[3] + i, tu ? qa : au), L::st(a.to[4] + i, tu ? qb : bu), L::st(a.to[5] + i, tu ? qc : cu);
  });
}

// Lines (optim_lines.hpp): each neuron i with wk_i >= 0 (the index of its candidate q in W:
// slope q.first, offset q.second) on the side v_i selects: that side's line of `from` (al, bl,
// au, bu) becomes q where q is higher (lower side; upper: lower) at z_i, into `to`.
template <class T>
struct LineTakeArgs {
  const T *z, *v;
  const T* from[4];
  T* to[4];
};
template <class T, class Q>
PQ_ALWAYS_INLINE void line_take_body(const LineTakeArgs<T>& a, const Q* W, const int* wk, std::size_t s) {
  for_lanes4<T>(static_cast<std::ptrdiff_t>(s), [&](auto lane, std::ptrdiff_t i) {
    using L = decltype(lane);
    const auto qa = gather<L>(W, wk, i, [](const Q& q) { return q.first; });
    const auto qb = gather<L>(W, wk, i, [](const Q& q) { return q.second; });
    const auto z = L::ld(a.z + i), al = L::ld(a.from[0] + i), bl = L::ld(a.from[1] + i);
    const auto au = L::ld(a.from[2] + i), bu = L::ld(a.from[3] + i), after = qa * z + qb;
    const auto met = met_lanes<L>(wk, i), lower = L::ld(a.v + i) >= decltype(z){};
    const auto tl = met & lower & (after > al * z + bl), tu = met & (lower == 0) & (after < au * z + bu);
    L::st(a.to[0] + i, tl ? qa : al), L::st(a.to[1] + i, tl ? qb : bl);
    L::st(a.to[2] + i, tu ? qa : au), L::st(a.to[3] + i, tu ? qb : bu);
  });
}

#if PQ_X86_DISPATCH && !defined(__AVX2__)
template <class T>
PQ_TARGET_AVX2 void envelope_lattice_avx2(int S, const T* fx, const T* gy, const T* lx, const T* ly, int C,
                                          const T* A, const T* B, T* L, T* H) {
  envelope_lattice_body(S, fx, gy, lx, ly, C, A, B, L, H);
}
template <class T>
PQ_TARGET_AVX2 void envelope_winners_avx2(int G, const T* cx, const T* cy, int C, const T* A, const T* B,
                                          const T* lo, const T* hi, int* win, int c0, int c1) {
  envelope_winners_body(G, cx, cy, C, A, B, lo, hi, win, c0, c1);
}
template <class T>
PQ_TARGET_AVX2 void envelope_cells_avx2(const CellArgs<T>& a, std::size_t s, int G, int per, int* wk) {
  envelope_cells_body(a, s, G, per, wk);
}
template <class T, class Q>
PQ_TARGET_AVX2 void envelope_take_avx2(const TakeArgs<T>& a, const Q* W, const int* wk, std::size_t s) {
  envelope_take_body(a, W, wk, s);
}
template <class T>
PQ_TARGET_AVX2 void line_cells_avx2(const T* z, const T* v, const T* l, const T* u, const T* k, std::size_t s, int G,
                                    int* wk) {
  line_cells_body(z, v, l, u, k, s, G, wk);
}
template <class T, class Q>
PQ_TARGET_AVX2 void line_take_avx2(const LineTakeArgs<T>& a, const Q* W, const int* wk, std::size_t s) {
  line_take_body(a, W, wk, s);
}
#endif

template <class T>
void envelope_lattice(int S, const T* fx, const T* gy, const T* lx, const T* ly, int C, const T* A, const T* B,
                      T* L, T* H) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return envelope_lattice_avx2(S, fx, gy, lx, ly, C, A, B, L, H);
#endif
  envelope_lattice_body(S, fx, gy, lx, ly, C, A, B, L, H);
}

template <class T>
void envelope_winners(int G, const T* cx, const T* cy, int C, const T* A, const T* B, const T* lo, const T* hi,
                      int* win, int c0, int c1) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return envelope_winners_avx2(G, cx, cy, C, A, B, lo, hi, win, c0, c1);
#endif
  envelope_winners_body(G, cx, cy, C, A, B, lo, hi, win, c0, c1);
}

template <class T>
void envelope_cells(const CellArgs<T>& a, std::size_t s, int G, int per, int* wk) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return envelope_cells_avx2(a, s, G, per, wk);
#endif
  envelope_cells_body(a, s, G, per, wk);
}

template <class T, class Q>
void envelope_take(const TakeArgs<T>& a, const Q* W, const int* wk, std::size_t s) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return envelope_take_avx2(a, W, wk, s);
#endif
  envelope_take_body(a, W, wk, s);
}

template <class T>
void line_cells(const T* z, const T* v, const T* l, const T* u, const T* k, std::size_t s, int G, int* wk) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return line_cells_avx2(z, v, l, u, k, s, G, wk);
#endif
  line_cells_body(z, v, l, u, k, s, G, wk);
}

template <class T, class Q>
void line_take(const LineTakeArgs<T>& a, const Q* W, const int* wk, std::size_t s) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return line_take_avx2(a, W, wk, s);
#endif
  line_take_body(a, W, wk, s);
}

}  // namespace detail
}  // namespace pq
