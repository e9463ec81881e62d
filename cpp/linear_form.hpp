// The accumulated linear form of a back-substitution and its concretisation over
// the per-frame lp balls (RECURRENCES.md §1):
//   lower = d + Σ_t A_t x̂_t − eps Σ_{t∈S} ||A_t||_q   (row-wise)
// The constant d and the clean part A_t x̂_t are accumulated together as the
// objective passes each step; the eps term is added for moving frames only.
// Upper bounds come from the stacked objective [Λ; −Λ]: upper = −lower(−Λ).
#pragma once
#include <algorithm>
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

// Clean input of stacked pre-activations y_k = W_ih x_k + W_hh h_{k-1} + b at every
// step: row k of the result is W_ih x̂_k + b, so that a coefficient G on y_k contributes
// G·xb_k to the constant and, for a moving frame, −eps ||G W_ih||_q (§1).
template <class T>
Mat<T> clean_inputs(MatView<const T> w_ih, const T* bias, const InputBall<T>& ball) {
  Mat<T> xb(ball.x.rows, w_ih.rows);
  for (std::ptrdiff_t k = 0; k < ball.x.rows; ++k) {
    std::copy(bias, bias + w_ih.rows, xb.row(k));
    add_rowdots(w_ih, ball.x.row(k), xb.row(k));
  }
  return xb;
}

// §4, the affine part of step k: coefficients G on y_k = W_ih x_k + W_hh h_{k-1} + b.
// Adds the clean part G·xb_k to d, subtracts the ball term for a moving frame (A is
// scratch for G W_ih, left holding it), and writes Λ on h_{k-1} = G W_hh into Lh.
template <class T>
void through_affine(MatView<const T> G, MatView<const T> w_ih, MatView<const T> w_hh,
                    const InputBall<T>& ball, std::ptrdiff_t k, const T* xb_k,
                    MatView<T> A, MatView<T> Lh, T* d) {
  add_rowdots(G, xb_k, d);
  if (ball.moves(k)) {
    gemm(G, w_ih, A, false);
    subtract_ball_radius(cview(A), ball.eps, ball.q, d);
  }
  gemm(G, w_hh, Lh, false);
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
