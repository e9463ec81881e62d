// Inputs and outputs of one bound pass (RECURRENCES.md §0): the weights as
// strided views, the threat model, the folded specification head, and the
// result (bounds of spec_weight @ h_T + spec_bias plus optional per-step
// state intervals, each (T, rows)).
#pragma once
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>
#include "common.hpp"
#include "linear_form.hpp"
#include "lines.hpp"
#include "planes.hpp"

namespace pq {

// Interval bounds of one named state over all steps (row k = step k+1).
template <class T>
struct StateBounds {
  std::string name;
  Mat<T> lower, upper;
};

template <class T>
struct BoundResult {
  std::vector<T> lower, upper;          // (K,)
  // (K,) how fast each lower bound at least rises as the ball shrinks with the same
  // relaxations (RECURRENCES.md §5): lower_j + slope_j (ε − ε') bounds margin j over the
  // ball of any radius ε' <= ε; empty where the pass does not provide it
  std::vector<T> slope;
  std::vector<StateBounds<T>> states;   // filled only with want_states
};

// The part shared by every architecture: input ball, head, options.
template <class T>
struct PassCommon {
  InputBall<T> ball;
  MatView<const T> spec_w;   // (K, s)
  const T* spec_b = nullptr; // (K,)
  bool want_states = false;
};

// "optimized" relaxations (RECURRENCES.md §3b; optim_planes.hpp, optim_lines.hpp): per margin
// row `iters` iterations on that row's own planes / lines (iters = 0: off), the first
// `br_iters` best responses, then Adam steps of size `lr` (planes only).
// The bindings' default of both: three best responses per margin row (six before 0.2.7 gave
// radii 1.0002x larger on average at 1.02-1.16x the pass; bench/results/2026-12-14-issue-base.md)
inline constexpr int kMarginIters = 3;
struct OptSettings {
  int iters = 0;
  double lr = 0.02;
  int br_iters = 0;
  int inter_steps = 0;  // intermediate bounds of the last inter_steps steps optimised too,
  int inter_iters = 1;  // with this many iterations (best responses) per bound
  int grid = 8;         // best responses: the tangent at the centre of the sweep point's cell
                        // of a G x G grid over the plane's box (G cells of a line's interval),
                        // each cell's exact offset computed once per box and shared by every
                        // row (optim_planes.hpp, optim_lines.hpp); 0: at the point itself
  bool trace = false;   // also return per margin row and iteration (backward L, sweep L) (tests)
  bool blocks = true;   // intermediate rows a block at a time (one sweep of the block, one
                        // back-substitution of it with every row's own relaxations; false: row
                        // by row, the same bounds; the tests compare the two)
  // Whether a block's rows are improved once each and carried back together (one iteration,
  // no Adam steps); else each row is optimised alone (general_optimize.hpp).
  bool block_rows() const { return blocks && inter_iters == 1 && !contacts(); }
  // Whether Adam steps follow the best responses (then the sweeps accumulate gradients).
  bool adam_steps() const { return std::max(iters, inter_iters) > br_iters; }
  // Whether the rows' plane copies keep where each offset is attained (the gradients read
  // them: Adam steps, or the tests' gradient check).
  bool contacts() const { return trace || adam_steps(); }
};

// OptSettings::grid as the bindings take it: 0 .. kMaxGrid.
inline constexpr int kMaxGrid = 64;
inline int checked_grid(int g) {
  if (g < 0 || g > kMaxGrid) throw InvalidArgument("opt_grid must be in [0, 64]");
  return g;
}

namespace detail {
// The most grid slots one layer keeps (optim_lines.hpp: candidate lines; optim_planes.hpp:
// the envelope's table of winner indices, 256 KB); a larger layer takes the tangent at each
// row's own point.
constexpr std::size_t kMaxCandidates = std::size_t(1) << 16;
// Whether a grid of n neurons with `per` cells a side stays within kMaxCandidates slots.
inline bool grid_fits(std::size_t n, std::size_t per) { return n * 2 * per <= kMaxCandidates; }
// The candidates of one layer's best responses on a grid (optim_planes.hpp, optim_lines.hpp):
// slot (neuron i, side, cell) of n neurons with `per` cells a side, allocated (all `empty`) on
// first use, dropped with the boxes.
template <class Slot>
class CandidateGrid {
 public:
  void clear() { slots_.clear(); }
  Slot& at(std::size_t n, std::size_t per, std::size_t i, bool lower, std::size_t cell, const Slot& empty) {
    if (slots_.empty()) slots_.assign(n * 2 * per, empty);
    return slots_[(i * 2 + (lower ? 0 : 1)) * per + cell];
  }

 private:
  std::vector<Slot> slots_;
};
// What the back-substitutions of planes="optimized" meet, per step, w values a step (the
// coefficients at a relaxation, opt_relaxations.hpp; on a frame, general_optimize.hpp): the
// row in use's, and while a block's are kept, every row's of that block, so that take(r) gives
// a row its values later without carrying it again. A step not met holds zeros.
template <class T>
class StepRecords {
 public:
  StepRecords() = default;
  StepRecords(std::ptrdiff_t steps, std::ptrdiff_t w)
      : row_(steps, w), has_(static_cast<std::size_t>(steps), char(0)), kept_(has_) {}
  const T* row(std::ptrdiff_t t) const { return row_.row(t); }
  std::ptrdiff_t width() const { return row_.cols; }
  bool has(std::ptrdiff_t t) const { return has_[t] != 0; }
  // Any nonzero value met: whether the row in use passed this place at all.
  bool any() const {
    return std::any_of(row_.v.begin(), row_.v.end(), [](T x) { return x != T(0); });
  }
  // The row in use starts afresh.
  void clear() {
    std::fill(row_.v.begin(), row_.v.end(), T(0));
    std::fill(has_.begin(), has_.end(), char(0));
  }
  void put(std::ptrdiff_t t, const T* v) {
    std::copy(v, v + row_.cols, row_.row(t));
    has_[t] = 1;
  }
  // Keep every row of the next block of (at most) `rows` rows (0: stop keeping).
  void keep(std::ptrdiff_t rows) {
    keep_ = rows;
    if (rows == 0) return;
    if (block_.rows < row_.rows * rows) block_ = Mat<T>(row_.rows * rows, row_.cols);
    std::fill(kept_.begin(), kept_.end(), char(0));
  }
  std::ptrdiff_t keeping() const { return keep_; }
  void put_block(std::ptrdiff_t t, MatView<const T> L) {
    for (std::ptrdiff_t r = 0; r < L.rows; ++r) std::copy(L.row(r), L.row(r) + row_.cols, block_.row(t * keep_ + r));
    kept_[t] = 1;
  }
  // Row r of the last kept block (of `rows` rows) at step t, or null where the block met no
  // coefficient there.
  const T* kept(std::ptrdiff_t t, std::ptrdiff_t r, std::ptrdiff_t rows) const {
    return kept_[t] ? block_.row(t * rows + r) : nullptr;
  }
  // Row r of the last kept block (of `rows` rows) as the row in use's.
  void take(std::ptrdiff_t r, std::ptrdiff_t rows) {
    for (std::ptrdiff_t t = 0; t < row_.rows; ++t) {
      has_[t] = kept_[t];
      T* dst = row_.row(t);
      if (kept_[t]) std::copy(block_.row(t * rows + r), block_.row(t * rows + r) + row_.cols, dst);
      else std::fill(dst, dst + row_.cols, T(0));
    }
  }

 private:
  Mat<T> row_, block_;  // the row in use's (step t: row t); the kept block's (row t * keep_ + r)
  std::vector<char> has_, kept_;
  std::ptrdiff_t keep_ = 0;
};

// The centre of cell k of G equal cells of [lo, hi].
template <class T>
T grid_centre(int k, T lo, T hi, int G) {
  return std::min(std::max(lo + (T(k) + T(0.5)) * ((hi - lo) / T(G)), lo), hi);
}
}  // namespace detail

// z_t = W_ih x_t + W_hh h_{t-1} + b, h_t = φ(z_t).
template <class T>
struct RnnNet {
  MatView<const T> w_ih, w_hh;  // (s, n), (s, s)
  const T* bias = nullptr;      // (s,) = b_ih + b_hh
  const T* h0 = nullptr;        // (s,)
  Activation act = Activation::Tanh;
  OptSettings opt;  // iters > 0: "optimized" lines (optim_lines.hpp)
};

// Gates stacked i, f, g, o: y_t = W_ih x_t + W_hh h_{t-1} + b.
template <class T>
struct LstmNet {
  MatView<const T> w_ih, w_hh;  // (4s, n), (4s, s)
  const T* bias = nullptr;      // (4s,) = b_ih + b_hh
  const T* h0 = nullptr;        // (s,)
  const T* c0 = nullptr;        // (s,)
  PlaneMethod planes = PlaneMethod::Exact;
  OptSettings opt;
};

// PyTorch GRU, gates r, z, n; b_hn inside the reset product.
template <class T>
struct GruNet {
  MatView<const T> w_ih, w_hh;  // (3s, n), (3s, s)
  const T* b_ih = nullptr;      // (3s,)
  const T* b_hh = nullptr;      // (3s,)
  const T* h0 = nullptr;        // (s,)
  PlaneMethod planes = PlaneMethod::Exact;
  bool shared_z = false;        // RECURRENCES.md §4 "GRU, shared z" (implied by "optimized")
  OptSettings opt;
};

}  // namespace pq
