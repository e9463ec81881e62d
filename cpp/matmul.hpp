// Dense products for back-substitution: Λ' = G W (objective rows times a weight
// block) and row dot products d += G v. Row-major, i-k-j order so that the
// innermost loop streams one row of W and one row of the output (vectorises).
#pragma once
#include <cstddef>
#include "common.hpp"

namespace pq {

template <class T>
MatView<const T> cview(MatView<T> m) { return {m.data, m.rows, m.cols, m.stride}; }
template <class T>
MatView<const T> cview(MatView<const T> m) { return m; }

// The sub-block rows [r0, r0+nr) x cols [c0, c0+nc) of m (same stride).
template <class M>
auto block(M m, std::ptrdiff_t r0, std::ptrdiff_t nr, std::ptrdiff_t c0, std::ptrdiff_t nc) {
  M b = m;
  b.data = m.data + r0 * m.stride + c0;
  b.rows = nr;
  b.cols = nc;
  return b;
}

// The first r rows of an owning matrix, as a view (buffers are sized for the
// largest objective and reused with fewer rows).
template <class T>
MatView<T> top_rows(Mat<T>& m, std::ptrdiff_t r) { return {m.v.data(), r, m.cols, m.cols}; }

// C = A B (accumulate=false) or C += A B. A: R x K, B: K x N, C: R x N.
// Zero entries of A are skipped (objectives are often identities or blocks of zeros).
template <class T>
void gemm(MatView<const T> A, MatView<const T> B, MatView<T> C, bool accumulate) {
  const std::ptrdiff_t R = A.rows, K = A.cols, N = B.cols;
  for (std::ptrdiff_t i = 0; i < R; ++i) {
    T* __restrict c = C.row(i);
    if (!accumulate)
      for (std::ptrdiff_t j = 0; j < N; ++j) c[j] = T(0);
    const T* a = A.row(i);
    for (std::ptrdiff_t k = 0; k < K; ++k) {
      const T aik = a[k];
      if (aik == T(0)) continue;
      const T* __restrict b = B.row(k);
      for (std::ptrdiff_t j = 0; j < N; ++j) c[j] += aik * b[j];
    }
  }
}

// d[i] += A[i, :] . v  for every row i.
template <class T>
void add_rowdots(MatView<const T> A, const T* v, T* d) {
  for (std::ptrdiff_t i = 0; i < A.rows; ++i) {
    const T* a = A.row(i);
    T acc = T(0);
    for (std::ptrdiff_t j = 0; j < A.cols; ++j) acc += a[j] * v[j];
    d[i] += acc;
  }
}

}  // namespace pq
