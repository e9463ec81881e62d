// The two loops of planes="optimized"'s envelope tables (optim_planes.hpp
// PlaneBoxes::fill_envelope; RECURRENCES.md §3b), compiled for the baseline ISA and, where
// the CPU has it, for AVX2. Both do elementwise arithmetic and exact max / min reductions
// (no FMA, no reassociation of a sum), so both builds give the same values and winners:
//   envelope_lattice: for each of the S x S lattice points (x_p, y_q) with F = f_p g_q,
//     every candidate k's F - a_k x - b_k y into its running min lo_k and max hi_k;
//   envelope_winners: for each of the G x G cells (centre (cx_i, cy_j), cell c = i G + j),
//     the first candidate k with the highest a_k cx + b_k cy + lo_k (win[c], the lower
//     side's winner) and the first with the lowest a_k cx + b_k cy + hi_k (win[C + c]).
#pragma once
#include <cstddef>
#include <limits>
#include <type_traits>

#include "matmul.hpp"

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
                                            const T* __restrict hi, int* win) {
  using V = Vec<T, 4 * static_cast<int>(sizeof(T))>;
  using v_t = typename V::type;
  using I = std::conditional_t<sizeof(T) == 8, long long, int>;
  typedef I i_t __attribute__((vector_size(4 * sizeof(T))));
  const int C4 = C / 4 * 4;
  for (int c = 0; c < C; ++c) {
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

#if PQ_X86_DISPATCH && !defined(__AVX2__)
template <class T>
PQ_TARGET_AVX2 void envelope_lattice_avx2(int S, const T* fx, const T* gy, const T* lx, const T* ly, int C,
                                          const T* A, const T* B, T* L, T* H) {
  envelope_lattice_body(S, fx, gy, lx, ly, C, A, B, L, H);
}
template <class T>
PQ_TARGET_AVX2 void envelope_winners_avx2(int G, const T* cx, const T* cy, int C, const T* A, const T* B,
                                          const T* lo, const T* hi, int* win) {
  envelope_winners_body(G, cx, cy, C, A, B, lo, hi, win);
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
                      int* win) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return envelope_winners_avx2(G, cx, cy, C, A, B, lo, hi, win);
#endif
  envelope_winners_body(G, cx, cy, C, A, B, lo, hi, win);
}

}  // namespace detail
}  // namespace pq
