// The accumulated linear form of a back-substitution and its concretisation over
// the per-frame lp balls (RECURRENCES.md §1):
//   lower = d + Σ_t A_t x̂_t − eps Σ_{t∈S} ||A_t||_q   (row-wise)
// The constant d and the clean part A_t x̂_t are accumulated together as the
// objective passes each step; the eps term is added for moving frames only.
// Upper bounds come from the stacked objective [Λ; −Λ]: upper = −lower(−Λ).
#pragma once
#include <cstddef>
#include "common.hpp"
#include "dual_norm.hpp"
#include "matmul.hpp"

namespace pq {

// The threat model: x̂ (T x n), the radius, the dual norm and which frames move.
template <class T>
struct InputBall {
  MatView<const T> x;          // clean input, row t-1 is frame t
  T eps = T(0);
  DualNorm q = DualNorm::L2;
  const bool* mask = nullptr;  // (T,), true = frame moves
  bool moves(std::ptrdiff_t k) const { return mask[k] && eps != T(0); }
};

// §1: d[r] -= eps * ||A[r, :]||_q for the coefficients A that reached a moving frame.
template <class T>
void subtract_ball_radius(MatView<const T> A, T eps, DualNorm q, T* d) {
  for (std::ptrdiff_t r = 0; r < A.rows; ++r) d[r] -= eps * dual_norm(A.row(r), A.cols, q);
}

// Rows [0, m) of d hold lower bounds of Λ, rows [m, 2m) lower bounds of −Λ.
// Exactly, lower <= upper; where rounding alone crosses them (a width at the ulp
// level, e.g. eps = 0) the pair is ordered, so that the relaxations downstream
// always receive a proper interval (they reject l > u).
template <class T>
void finish_stacked(const T* d, std::ptrdiff_t m, T* lower, T* upper) {
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    const T lo = d[i], up = -d[m + i];
    lower[i] = lo <= up ? lo : up;
    upper[i] = lo <= up ? up : lo;
  }
}

// Fill the first 2m rows of G (width >= c0 + m) with the objective [I; −I] placed at
// columns [c0, c0+m), zeros elsewhere.
template <class T>
void set_stacked_identity(MatView<T> G, std::ptrdiff_t m, std::ptrdiff_t c0) {
  for (std::ptrdiff_t r = 0; r < 2 * m; ++r) {
    T* g = G.row(r);
    for (std::ptrdiff_t j = 0; j < G.cols; ++j) g[j] = T(0);
  }
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    G(i, c0 + i) = T(1);
    G(m + i, c0 + i) = T(-1);
  }
}

// Fill the first 2K rows of L with [W; −W] (W: K x width) and d with [b; −b].
template <class T>
void set_stacked_spec(MatView<const T> W, const T* b, MatView<T> L, T* d) {
  const std::ptrdiff_t K = W.rows;
  for (std::ptrdiff_t r = 0; r < K; ++r) {
    const T* w = W.row(r);
    T* lp = L.row(r);
    T* lm = L.row(K + r);
    for (std::ptrdiff_t j = 0; j < W.cols; ++j) {
      lp[j] = w[j];
      lm[j] = -w[j];
    }
    d[r] = b[r];
    d[K + r] = -b[r];
  }
}

}  // namespace pq
