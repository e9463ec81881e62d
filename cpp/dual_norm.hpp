// Dual norms of the rows of a linear form (ALGORITHM.md §4, RECURRENCES.md §1):
// the extreme of a.x over ||x - x̂||_p <= eps is a.x̂ ± eps*||a||_q, 1/p + 1/q = 1.
#pragma once
#include <cmath>
#include <cstddef>
#include <limits>
#include "common.hpp"

namespace pq {

// The dual exponent q of the threat model's p (p=1 <-> q=inf, p=2 <-> q=2, p=inf <-> q=1).
enum class DualNorm { L1, L2, Linf };

// Map p in {1, 2, inf} to its dual norm; anything else is an InvalidArgument naming "p".
inline DualNorm dual_of_p(double p) {
  if (p == 1.0) return DualNorm::Linf;
  if (p == 2.0) return DualNorm::L2;
  if (std::isinf(p) && p > 0) return DualNorm::L1;
  throw InvalidArgument("p must be 1.0, 2.0 or inf, got " + std::to_string(p));
}

// ||a||_q of one contiguous row a[0..n).
template <class T>
PQ_HD T dual_norm(const T* a, std::ptrdiff_t n, DualNorm q) {
  T acc = T(0);
  switch (q) {
    case DualNorm::L1:
      for (std::ptrdiff_t j = 0; j < n; ++j) acc += std::abs(a[j]);
      return acc;
    case DualNorm::L2: {
      for (std::ptrdiff_t j = 0; j < n; ++j) acc += a[j] * a[j];
      if (acc >= std::numeric_limits<T>::min() && acc <= std::numeric_limits<T>::max())
        return std::sqrt(acc);
      // the squares overflowed (|a_j| > ~1e154) or underflowed (|a_j| < ~1e-154, where a
      // zero norm would collapse the ball to a point): redo the sum scaled by max |a_j|
      T m = T(0);
      for (std::ptrdiff_t j = 0; j < n; ++j) m = std::max(m, std::abs(a[j]));
      if (m == T(0) || !std::isfinite(m)) return m;
      acc = T(0);
      for (std::ptrdiff_t j = 0; j < n; ++j) acc += (a[j] / m) * (a[j] / m);
      return m * std::sqrt(acc);
    }
    case DualNorm::Linf:
      for (std::ptrdiff_t j = 0; j < n; ++j) acc = std::max(acc, std::abs(a[j]));
      return acc;
  }
  return acc;
}

}  // namespace pq
