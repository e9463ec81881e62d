// The input ball of a back-substitution and the reading of its stacked result
// (RECURRENCES.md §1): lower = d + Σ_t A_t x̂_t − eps Σ_{t∈S} ||A_t||_q row-wise, the
// eps term concretised by threat_model.hpp; upper bounds come from the stacked
// objective [Λ; −Λ]: upper = −lower(−Λ).
#pragma once
#include <cstddef>
#include "common.hpp"
#include "dual_norm.hpp"

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

}  // namespace pq
