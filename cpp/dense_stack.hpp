// Dense layers y = act(W a + b) in the generic driver: the frame layers (applied to every
// frame) and the head. Carrying a linear form back through a stack of them (the sign rule
// of §4 through each activation's lines, §2, then the affine map) and their lines.
#pragma once
#include <algorithm>
#include <utility>
#include <vector>
#include "general_model.hpp"
#include "linear_form.hpp"
#include "matmul.hpp"
#include "sign_rule.hpp"

namespace pq {

// Ping-pong buffers for a form carried through Dense layers of any widths (<= cols).
template <class T>
struct DenseScratch {
  Mat<T> a, b;
  DenseScratch(std::ptrdiff_t rows, std::ptrdiff_t cols) : a(rows, cols), b(rows, cols) {}
  static MatView<T> rows_cols(Mat<T>& m, std::ptrdiff_t R, std::ptrdiff_t c) { return {m.v.data(), R, c, m.cols}; }
};

// Λ (R rows) on the output of layer j of `layers` (on its pre-activation z_j when from_pre)
// carried back through layers j..0: returns Λ on the stack's input (a view into scratch);
// constants into d. lines[i]: the lines of layer i's activation (unused without one).
template <class T>
MatView<const T> dense_carry(const std::vector<DenseView<T>>& layers, const LineSet<T>* lines, std::ptrdiff_t j,
                             bool from_pre, MatView<const T> lam, DenseScratch<T>& sc, T* d) {
  const std::ptrdiff_t R = lam.rows;
  Mat<T>* next = &sc.a;
  Mat<T>* other = &sc.b;
  MatView<const T> cur = lam;
  for (std::ptrdiff_t i = j; i >= 0; --i) {
    const DenseView<T>& L = layers[i];
    if (L.has_act && !(i == j && from_pre)) {
      MatView<T> out = DenseScratch<T>::rows_cols(*next, R, L.w.rows);
      pass_lines(cur, lines[i], out, d);
      cur = cview(out);
      std::swap(next, other);
    }
    add_rowdots(cur, L.b, d);
    MatView<T> out = DenseScratch<T>::rows_cols(*next, R, L.w.cols);
    gemm(cur, L.w, out, false);
    cur = cview(out);
    std::swap(next, other);
  }
  return cur;
}

}  // namespace pq
