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
#include "rounding.hpp"
#include "sign_rule.hpp"

namespace pq {

// Ping-pong buffers for a form carried through Dense layers of any widths (<= cols).
template <class T>
struct DenseScratch {
  Mat<T> a, b;
  DenseScratch(std::ptrdiff_t rows, std::ptrdiff_t cols) : a(rows, cols), b(rows, cols) {}
  static MatView<T> rows_cols(Mat<T>& m, std::ptrdiff_t R, std::ptrdiff_t c) { return {m.v.data(), R, c, m.cols}; }
};

// rounding="sound" (rounding.hpp): per layer i of a stack, the charge weights of the sign
// rule through its lines (lin[i], over its pre-activation bounds) and of its affine map
// (aff[i] = Γ (|W_i| |a_i| + |b_i|), |a_i| bounding the layer's input).
template <class T>
struct DenseCharges {
  std::vector<std::vector<T>> lin, aff;
  explicit DenseCharges(const std::vector<DenseView<T>>& layers) {
    for (const auto& L : layers) lin.emplace_back(L.w.rows), aff.emplace_back(L.w.rows);
  }
  // aff[i] from the input magnitudes in_mag (L.w.cols values)
  void set_affine(const DenseView<T>& L, std::size_t i, const T* in_mag, T G) {
    abs_matvec(L.w, in_mag, G, aff[i].data(), false);
    for (std::ptrdiff_t r = 0; r < L.w.rows; ++r) aff[i][r] += G * std::fabs(L.b[r]);
  }
};

// A bound on the magnitude of a Dense layer's output from its pre-activation bounds [lo, up]
// (rounding="sound"): tanh and σ are below 1, ReLU below max(0, up), no activation max(|lo|, |up|).
template <class T>
void dense_out_magnitude(const DenseView<T>& L, const T* lo, const T* up, T* m) {
  for (std::ptrdiff_t i = 0; i < L.w.rows; ++i) {
    if (!L.has_act) m[i] = std::max(std::fabs(lo[i]), std::fabs(up[i]));
    else if (L.act == Activation::Relu) m[i] = std::max(T(0), up[i]);
    else m[i] = T(1);
  }
}

// Λ (R rows) on the output of layer j of `layers` (on its pre-activation z_j when from_pre)
// carried back through layers j..0: returns Λ on the stack's input (a view into scratch);
// constants into k.d (and, with ch, rounding errors into k.err). lines[i]: the lines of
// layer i's activation (unused without one).
template <class T>
MatView<const T> dense_carry(const std::vector<DenseView<T>>& layers, const LineSet<T>* lines, std::ptrdiff_t j,
                             bool from_pre, MatView<const T> lam, DenseScratch<T>& sc, RowConsts<T> k,
                             const DenseCharges<T>* ch = nullptr) {
  const std::ptrdiff_t R = lam.rows;
  const bool charge = ch && k.err;
  Mat<T>* next = &sc.a;
  Mat<T>* other = &sc.b;
  MatView<const T> cur = lam;
  for (std::ptrdiff_t i = j; i >= 0; --i) {
    const DenseView<T>& L = layers[i];
    if (L.has_act && !(i == j && from_pre)) {
      MatView<T> out = DenseScratch<T>::rows_cols(*next, R, L.w.rows);
      if (charge) charge_rows(cur, ch->lin[i].data(), k.err);
      pass_lines(cur, lines[i], out, k.d);
      cur = cview(out);
      std::swap(next, other);
    }
    if (charge) charge_rows(cur, ch->aff[i].data(), k.err);
    add_rowdots(cur, L.b, k.d);
    MatView<T> out = DenseScratch<T>::rows_cols(*next, R, L.w.cols);
    gemm(cur, L.w, out, false);
    cur = cview(out);
    std::swap(next, other);
  }
  return cur;
}

}  // namespace pq
