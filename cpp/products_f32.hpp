// rounding="sound32" (docs/ROUNDING.md §7): a cell's large back-substitution products
// G W (G: R x K coefficients on the stacked gates, W: W_hh or W_ih) computed in float32 and
// their error charged, so that the bounds stay those of the real-arithmetic model.
//
// The K columns are taken in blocks of at most kBlockK: each block's product is one float32
// gemm, and the blocks' results are added in float64. The error of one block's
// C_b = fl32(fl32(G_b) fl32(W_b)) (both casts, every product and sum rounded, in any order,
// with or without FMA, underflow included) against the real G_b W_b is, entry by entry
// (Higham Lemma 3.1, the two casts as two more relative errors, u = 2^-24, b = block width):
//     |C_b(r, k) − (G_b W_b)(r, k)| <= γ_{b+2} Σ_j |G(r, j)| |W(j, k)|
//                                    + η (2 Σ_j |G(r, j)| + 2 Σ_j |W(j, k)| + 3b),
// η = 2^-125 >= any absolute underflow error, flush-to-zero included; the float64 sum of the
// blocks is one more sum of products, covered by the float64 charge of the same product,
// which the cell keeps. The computed coefficient is then taken as exact (ROUNDING.md §2),
// and its difference, times m[k] >= |v_k| of the variable it multiplies, is charged: per
// column j of G the weight
//     γ_{b+2} (|W| m)_j + 2η Σ_k m_k,
// per row the constant η (2 Σ_jk |W(j, k)| m_k + 3K Σ_k m_k), doubled for the rounding of
// these sums (`charge`). Blocks keep γ small: γ_{K+2} at K = 1024 would charge 16x more.
//
// Overflow: G is cast only when max|G| <= 2^60 and max|G| K max|W| <= 2^100, so no
// float32 value overflows; otherwise (or for NaN) the product runs in float64 (`load`
// returns false), which the larger float32 charge covers as well. A cell whose nonzero
// weights leave [2^-100, 2^60] keeps float64 products throughout.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>
#include "common.hpp"
#include "general_model.hpp"
#include "matmul.hpp"
#include "rounding.hpp"
#include "row_pool.hpp"

namespace pq {

namespace detail {

// A = fl32(G) row by row; returns max |G| (NaN if G holds one), read from the bit patterns
// (sign cleared, an integer max: it vectorises, and NaN > inf > every finite value).
template <class T>
PQ_ALWAYS_INLINE T cast_rows_body(MatView<const T> G, MatView<float> A) {
  using Bits = std::conditional_t<sizeof(T) == 8, std::int64_t, std::int32_t>;
  static_assert(sizeof(Bits) == sizeof(T), "a float64 or float32 pass");
  Bits mb = 0;
  for (std::ptrdiff_t i = 0; i < G.rows; ++i) {
    const T* g = G.row(i);
    float* a = A.row(i);
    for (std::ptrdiff_t j = 0; j < G.cols; ++j) {
      Bits b;
      std::memcpy(&b, g + j, sizeof b);
      b &= std::numeric_limits<Bits>::max();
      mb = b > mb ? b : mb;
      a[j] = static_cast<float>(g[j]);
    }
  }
  T m;
  std::memcpy(&m, &mb, sizeof m);
  return m;
}

// C = S or C += S, S in float32 (exact conversions; the additions round in T).
template <class T>
PQ_ALWAYS_INLINE void widen_rows_body(MatView<const float> S, MatView<T> C, bool add) {
  for (std::ptrdiff_t i = 0; i < S.rows; ++i) {
    const float* s = S.row(i);
    T* d = C.row(i);
    if (add)
      for (std::ptrdiff_t k = 0; k < S.cols; ++k) d[k] += static_cast<T>(s[k]);
    else
      for (std::ptrdiff_t k = 0; k < S.cols; ++k) d[k] = static_cast<T>(s[k]);
  }
}

#if PQ_X86_DISPATCH && !defined(__AVX2__)
template <class T>
PQ_TARGET_AVX2 T cast_rows_avx2(MatView<const T> G, MatView<float> A) { return cast_rows_body(G, A); }
template <class T>
PQ_TARGET_AVX2 void widen_rows_avx2(MatView<const float> S, MatView<T> C, bool add) { widen_rows_body(S, C, add); }
#endif

template <class T>
T cast_rows_one(MatView<const T> G, MatView<float> A) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return cast_rows_avx2(G, A);
#endif
  return cast_rows_body(G, A);
}

// Both in row blocks on the pass's threads (row_pool.hpp; the max is exact, so the same
// whatever the blocks). Each block leaves its max at its first row; the other entries stay
// 0, which never wins.
template <class T>
T cast_rows(MatView<const T> G, MatView<float> A) {
  std::vector<T> m(static_cast<std::size_t>(G.rows), T(0));
  detail::for_row_blocks(G.rows, 0.25 * static_cast<double>(G.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    m[static_cast<std::size_t>(r0)] = cast_rows_one(rows_of(G, r0, r1), rows_of(A, r0, r1));
  });
  T mx = T(0);
  for (const T v : m) mx = (v > mx || std::isnan(v)) ? v : mx;
  return mx;
}

template <class T>
void widen_rows_one(MatView<const float> S, MatView<T> C, bool add) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return widen_rows_avx2(S, C, add);
#endif
  widen_rows_body(S, C, add);
}

}  // namespace detail

// One weight matrix, cast once per pass (AffineF32 checks its magnitude first).
template <class T>
struct WeightsF32 {
  Mat<float> w;
  explicit WeightsF32(MatView<const T> W) : w(W.rows, W.cols) {
    for (std::ptrdiff_t i = 0; i < W.rows; ++i)
      for (std::ptrdiff_t j = 0; j < W.cols; ++j) w(i, j) = static_cast<float>(W(i, j));
  }
  MatView<const float> view() const { return w.view(); }
};

// The float32 copy of a cell's coefficient block G, and the products with it.
template <class T>
class ProductsF32 {
 public:
  static constexpr T kEta = T(0x1p-125);
  static constexpr std::ptrdiff_t kBlockK = 64;
  // K: the columns of G; wmax: the largest |W| any product with it uses.
  ProductsF32(std::ptrdiff_t Rmax, std::ptrdiff_t K, std::ptrdiff_t Nmax, T wmax)
      : K_(K), wmax_(wmax), a_(Rmax, K), c_(Rmax, Nmax) {}

  // whether products may run in float32 at all (the weights' range, AffineF32::fit)
  bool usable() const { return wmax_ <= T(0x1p60); }

  // γ_{b+2} in float32's unit roundoff, b the widest block
  T gamma() const {
    const T nu = T(std::min(K_, kBlockK) + 2) * T(0x1p-24);
    return nu / (T(1) - nu);
  }

  // G into float32 (rows of G, all K columns); false: too large, use float64.
  bool load(MatView<const T> G) {
    if (!usable()) return false;
    const T m = detail::cast_rows(G, a_.view());
    if (!(m <= T(0x1p60)) || !(m * T(K_) * wmax_ <= T(0x1p100))) return false;
    R_ = G.rows;
    return true;
  }

  // C (+)= G[:, j0 : j0 + W.rows] W, with the G of the last successful load: per block of
  // rows (matmul.hpp's block_rows, kMinBlockRows in a float32 pass; on the pass's
  // threads), one float32 product per block of at most kBlockK columns, added in float64.
  // Every row block sees the same shapes whatever the thread count, hence the same bits.
  void gemm_into(std::ptrdiff_t j0, MatView<const float> W, MatView<T> C, bool acc) {
    const std::ptrdiff_t rb = detail::block_rows(W.cols), nb = (R_ + rb - 1) / rb;
    auto one = [&](std::ptrdiff_t b) {
      const std::ptrdiff_t r0 = b * rb, nr = std::min(rb, R_ - r0);
      const MatView<float> c{c_.row(r0), nr, W.cols, c_.cols};
      const MatView<T> Cb = block(C, r0, nr, 0, W.cols);
      for (std::ptrdiff_t k0 = 0; k0 < W.rows; k0 += kBlockK) {
        const std::ptrdiff_t kb = std::min(kBlockK, W.rows - k0);
        gemm(cview(block(a_.view(), r0, nr, j0 + k0, kb)), block(W, k0, kb, 0, W.cols), c, false);
        detail::widen_rows_one(cview(c), Cb, acc || k0 > 0);
      }
    };
    RowPool* pool = product_pool();
    if (pool != nullptr && !pool->active() && nb > 1 &&
        2.0 * static_cast<double>(R_) * static_cast<double>(W.rows) * static_cast<double>(W.cols) >=
            detail::kParallelFlops)
      return pool->run(nb, one);
    for (std::ptrdiff_t b = 0; b < nb; ++b) one(b);
  }

  // The charge of products with W (rows j0.. of G's columns) on a variable bounded by m:
  // adds the column weights to w[0 .. W.rows) and returns the row constant.
  T charge(MatView<const T> W, const T* m, T* w) {
    const T g = gamma();
    T msum = T(0), wm = T(0);
    for (std::ptrdiff_t k = 0; k < W.cols; ++k) msum += m[k];
    wm_.resize(static_cast<std::size_t>(W.rows));
    abs_matvec(W, m, T(1), wm_.data(), false);  // (|W| m)_j
    for (std::ptrdiff_t j = 0; j < W.rows; ++j) {
      w[j] += g * wm_[j] + T(2) * kEta * msum;
      wm += wm_[j];
    }
    // 2x: the rounding of these sums of nonnegative terms (far below a factor 2)
    return T(2) * kEta * (T(2) * wm + T(3 * K_) * msum);
  }

 private:
  std::ptrdiff_t K_, R_ = 0;
  T wmax_;
  Mat<float> a_, c_;
  std::vector<T> wm_;  // charge's scratch: |W| m
};

// err[r] += c for the R rows being carried (the row constants of `charge`).
template <class T>
void charge_const(T* err, std::ptrdiff_t R, T c) {
  if (err)
    for (std::ptrdiff_t r = 0; r < R; ++r) err[r] += c;
}

// A product G[:, j0 : j0 + W.rows] W of a cell's affine step.
template <class T>
struct ProductPiece {
  std::ptrdiff_t j0;
  MatView<const T> W;
};

// The affine step of a cell (cell_rnn.hpp, cell_lstm.hpp, cell_gru.hpp) with its products
// in float32: the pieces on h_prev (into Λ_h) and on the input (into the InSink), their
// charges per step (computed when the step is relaxed), and the products when it is carried.
template <class T>
class AffineF32 {
 public:
  AffineF32(std::ptrdiff_t Tn, std::ptrdiff_t Rmax, std::ptrdiff_t K, std::vector<ProductPiece<T>> on_h,
            std::vector<ProductPiece<T>> on_in)
      : on_h_(std::move(on_h)), on_in_(std::move(on_in)), wh_(Tn, K), wi_(Tn, K),
        ch_(static_cast<std::size_t>(Tn), T(0)), ci_(static_cast<std::size_t>(Tn), T(0)),
        prod_(Rmax, K, widest(), fit()) {
    if (!prod_.usable()) return;  // never cast (load refuses): no copies needed
    for (const auto& p : on_h_) h32_.emplace_back(p.W);
    for (const auto& p : on_in_) i32_.emplace_back(p.W);
  }

  // whether any product may run in float32 (the weights' range); false: always float64
  bool usable() const { return prod_.usable(); }

  // Step t's charge weights: aw, the cell's own (float64) weights of the step; |h_prev| <=
  // mh, |input| <= min.
  void relax(std::ptrdiff_t t, const T* aw, const T* mh, const T* min) {
    T* wh = wh_.row(t);
    T* wi = wi_.row(t);
    std::copy(aw, aw + wh_.cols, wh);
    ch_[t] = ci_[t] = T(0);
    for (const auto& p : on_h_) ch_[t] += prod_.charge(p.W, mh, wh + p.j0);
    std::copy(wh, wh + wh_.cols, wi);
    for (const auto& p : on_in_) ci_[t] += prod_.charge(p.W, min, wi + p.j0);
  }

  // The products of step t (Λ_h (+)= G W_h..., in (+)= G W_in...) and every charge of G on
  // the step's affine map (err null: none); false: G is too large for float32 (nothing
  // done: the caller charges and computes them in float64).
  bool carry(std::ptrdiff_t t, MatView<const T> G, MatView<T> Lh, bool acc_h, InSink<T> in, T* err) {
    if (!prod_.load(G)) return false;
    charge_rows(G, in.on() ? wi_.row(t) : wh_.row(t), err);
    charge_const(err, G.rows, ch_[t] + (in.on() ? ci_[t] : T(0)));
    for (std::size_t i = 0; i < on_h_.size(); ++i)
      prod_.gemm_into(on_h_[i].j0, h32_[i].view(), Lh, i > 0 || acc_h);
    if (in.on())
      for (std::size_t i = 0; i < on_in_.size(); ++i)
        prod_.gemm_into(on_in_[i].j0, i32_[i].view(), in.dst, i > 0 || in.acc);
    return true;
  }

 private:
  std::ptrdiff_t widest() const {
    std::ptrdiff_t n = 0;
    for (const auto* v : {&on_h_, &on_in_})
      for (const auto& p : *v) n = std::max(n, p.W.cols);
    return n;
  }
  // The largest |W| if every nonzero weight lies in [2^-100, 2^60], else infinity (the
  // products stay float64): float32 holds such weights to u relative; far smaller ones would
  // be charged η per term, times magnitudes that can be large (the frames' |x|).
  T fit() const {
    T m = T(0);
    for (const auto* v : {&on_h_, &on_in_})
      for (const auto& p : *v)
        for (std::ptrdiff_t i = 0; i < p.W.rows; ++i)
          for (std::ptrdiff_t j = 0; j < p.W.cols; ++j) {
            const T a = std::fabs(p.W(i, j));
            if (!(a == T(0) || (a >= T(0x1p-100) && a <= T(0x1p60)))) return std::numeric_limits<T>::infinity();
            m = std::max(m, a);
          }
    return m;
  }

  std::vector<ProductPiece<T>> on_h_, on_in_;
  std::vector<WeightsF32<T>> h32_, i32_;
  Mat<T> wh_, wi_;          // per step: G's charge weights without / with the input's products
  std::vector<T> ch_, ci_;  // per step: the row constants (h, input)
  ProductsF32<T> prod_;
};

}  // namespace pq
