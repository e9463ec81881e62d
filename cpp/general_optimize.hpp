// planes="optimized" in the generic driver (RECURRENCES.md §3b; docs/GENERAL.md): every
// bound is refined row by row, each objective row with its own copies of the relaxations it
// passes (cells: opt_relaxations.hpp), chosen for that row's lower bound:
//
//   repeat (iters times, then once more to evaluate):
//     back-substitute the row with its copies (the driver's own pass, R = 1), recording the
//       coefficient met at every relaxation and A_t, the coefficients on each input frame;
//     forward sweep of the relaxed network at the worst-case input x*_t = x̂_t − ε∇‖A_t‖_q,
//       every relaxation evaluated on the side its recorded coefficient selected (the
//       adjoint of the back-substitution: the cells' `sweep` verb, layer by layer, each
//       chain in its own order);
//     improve every copy met: a best response (the tangent at the sweep's values, kept if
//       tighter there), or an Adam step along the envelope-theorem gradient (optim_planes.hpp).
//
// The row's bound is the best of its iterates. Offsets are exact for any slopes, so every
// iterate is sound; the sweep only steers the choice. Frame layers are swept with their
// activation itself (their lines are the shared ones, not optimised), which is a heuristic
// for the sweep values only.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <utility>
#include <vector>
#include "general_model.hpp"
#include "linear_form.hpp"
#include "matmul.hpp"
#include "optim_planes.hpp"

namespace pq {

template <class T>
class RowOptimizer {
 public:
  using Chains = std::vector<std::vector<std::unique_ptr<Cell<T>>>>;
  // How far the sweep runs: every chain of the layers below `layer`, then chain `dir` of
  // `layer` for its first `steps` steps in its own order (the objective's position);
  // layer == number of layers: the whole network (margins, head).
  struct Scope {
    std::ptrdiff_t layer = 0, dir = 0, steps = 0;
  };

  RowOptimizer(const GeneralNet<T>& net, const InputBall<T>& ball, const OptSettings& opt, Chains& chains)
      : net_(net), ball_(ball), opt_(opt), chains_(chains), Tn_(ball.x.rows), n_(ball.x.cols),
        fa_(Tn_, n_), xs_(n_) {
    std::ptrdiff_t w = n_;
    for (const auto& f : net.frame) w = std::max(w, f.w.rows);
    a_ = Mat<T>(Tn_, net.layers[0].input());
    fz_.assign(static_cast<std::size_t>(w), T(0));
    fa2_.assign(static_cast<std::size_t>(w), T(0));
    for (const auto& l : net.layers) h_.emplace_back(Tn_, l.output());
  }

  const OptSettings& settings() const { return opt_; }
  Scope whole() const { return {static_cast<std::ptrdiff_t>(net_.layers.size()), 0, 0}; }

  // The driver's concretisation reports the coefficients A (R x n) on frame t: row 0's while
  // a row is optimised (R = 1), every row's while a block's records are kept.
  void record_frame(std::ptrdiff_t t, MatView<const T> A) {
    if (on_) fa_.put(t, A.row(0));
    else if (fa_.keeping() > 0) fa_.put_block(t, A);
  }

  // Keep the records of every row of the next block of (at most) rows rows the driver
  // back-substitutes with the shared relaxations (0: stop keeping).
  void keep_block(std::ptrdiff_t rows) {
    if (rows > 0) swept_ = false;
    fa_.keep(rows);
    for_cells([&](Cell<T>& c) { c.keep_rows(rows); });
  }

  // The best lower bound of row r of the last kept block (of `rows` rows), whose first
  // iterate, the block's bound L0 with the shared relaxations, is not back-substituted again:
  // the row starts at the sweep from the block's records (the block's sweep, sweep_block,
  // where one was made).
  template <class Bound>
  T block_row(std::ptrdiff_t r, std::ptrdiff_t rows, T L0, int iters, Bound&& bound, Scope scope) {
    for_cells([&](Cell<T>& c) { c.take_row(r, rows); });
    fa_.take(r, rows);
    return row(iters, bound, scope, nullptr, {}, &L0, swept_ ? r : -1);
  }

  // Every row of the last kept block (of `rows` rows; L: their bounds with the shared
  // relaxations, the first iterate) improved once from the block's sweep (sweep_block; the
  // cells' respond_rows, a step at a time for all rows), then carried back together, each
  // with its own copies (Cell::use_rows): bound_block(first, n) back-substitutes rows
  // [first, first + n) of the block and returns their lower bounds. Each L[r] becomes the
  // better of its two iterates. The rows go kOwnRows at a time (their copies stay a small
  // multiple of the coefficient store). (Where OptSettings::block_rows: one iteration, no
  // Adam steps; the same bounds as block_row row by row, tests/test_block_sweep.py.)
  static constexpr std::ptrdiff_t kOwnRows = 64;
  template <class BoundBlock>
  void block_rows(std::ptrdiff_t rows, T* L, BoundBlock&& bound_block) {
    for (std::ptrdiff_t a = 0; a < rows; a += kOwnRows) {
      const std::ptrdiff_t n = std::min(kOwnRows, rows - a);
      for_cells([&](Cell<T>& c) { c.respond_rows(a, n, opt_); });
      for_cells([](Cell<T>& c) { c.use_rows(true); });
      const T* d = bound_block(a, n);
      for_cells([](Cell<T>& c) { c.use_rows(false); });
      for (std::ptrdiff_t r = 0; r < n; ++r) L[a + r] = std::max(L[a + r], d[r]);
    }
  }

  // Sweep every row of the last kept block (of `rows` rows) at once, as far as scope, with
  // the shared relaxations: each row's first sweep (its copies start as the shared ones), in
  // products of the block instead of one row's. Not where gradients are read (Adam steps):
  // those rows sweep themselves. Valid until the next block is kept.
  void sweep_block(std::ptrdiff_t rows, Scope scope) {
    swept_ = false;
    if (opt_.contacts() || !opt_.blocks) return;
    const std::ptrdiff_t w0 = a_.cols;
    if (ab_.rows < Tn_ * rows) {
      ab_ = Mat<T>(Tn_ * rows, w0);
      hb_.clear();
      for (const auto& l : net_.layers) hb_.emplace_back(Tn_ * rows, l.output());
    }
    for (std::ptrdiff_t t = 0; t < Tn_; ++t)
      for (std::ptrdiff_t r = 0; r < rows; ++r) {
        const T* fa = fa_.kept(t, r, rows);
        frame_input(t, fa, fa != nullptr, ab_.row(t * rows + r));
      }
    for_steps(scope, [&](std::ptrdiff_t l, std::ptrdiff_t k, std::ptrdiff_t t, std::ptrdiff_t prev) {
      const std::ptrdiff_t s = net_.layers[l].hidden();
      const Mat<T>& src = l == 0 ? ab_ : hb_[l - 1];
      MatView<const T> in{src.row(t * rows), rows, src.cols, src.cols};
      MatView<T> out{hb_[l].row(t * rows) + k * s, rows, s, hb_[l].cols};
      chains_[l][k]->sweep_block(t, prev, in, out, rows);
    });
    swept_ = true;
  }

  // Best lower bound of one objective row; bound() back-substitutes it (R = 1) with the
  // relaxations the cells have in use and returns its lower bound.
  // Test hook (opt_trace; margins, scope whole()): trace (2 (iters + 1) + 2 entries) receives
  // per iteration the back-substituted bound and objective() evaluated on the sweep's logits
  // (which equal it: the sweep is the adjoint), then the gradient check's |g|² and finite
  // difference at the first iterate.
  // first: the first iterate's bound, its records already in place (block_row).
  template <class Bound>
  T row(int iters, Bound&& bound, Scope scope, T* trace = nullptr,
        const std::function<T(const std::vector<T>&)>& objective = {}, const T* first = nullptr,
        std::ptrdiff_t swept_row = -1) {
    const bool grads = trace || opt_.adam_steps();  // Adam steps follow
    for_cells([&](Cell<T>& c) { c.own(true, grads); });
    on_ = true;
    T best = -std::numeric_limits<T>::infinity();
    for (int it = 0; it <= iters; ++it) {
      const T L = it == 0 && first ? *first : evaluate(bound);
      best = std::max(best, L);
      if (it == iters && !trace) break;
      if (it == 0 && swept_row >= 0) for_cells([&](Cell<T>& c) { c.take_sweep(swept_row); });
      else sweep(scope);
      if (trace) {
        trace[2 * it] = L;
        trace[2 * it + 1] = objective(logits());
        if (it == 0) {
          const auto g = gradient_check(bound, scope);
          trace[2 * (iters + 1)] = g.first;
          trace[2 * (iters + 1) + 1] = g.second;
          evaluate(bound);  // the records and sweep values of this iterate again
          sweep(scope);
        }
      }
      if (it == iters) break;
      bool met = false;
      for_cells([&](Cell<T>& c) { met = c.improve(it, opt_) || met; });
      if (!met) break;  // the row passes no relaxation: nothing to choose
    }
    on_ = false;
    for_cells([](Cell<T>& c) { c.own(false, false); });
    return best;
  }

  // [lo_i, hi_i] of m quantities tightened by their rows: rows(r) back-substitutes row r of
  // the stacked objective [I; −I] (2m rows) and returns its lower bound. (The recurrent
  // steps' rows go through keep_block / block_row instead, general_driver.hpp.)
  template <class Rows>
  void refine(std::ptrdiff_t m, Rows&& rows, Scope scope, T* lo, T* hi) {
    const int iters = opt_.inter_iters;
    for (std::ptrdiff_t i = 0; i < m; ++i) {
      lo[i] = std::max(lo[i], row(iters, [&] { return rows(i); }, scope));
      hi[i] = std::min(hi[i], -row(iters, [&] { return rows(m + i); }, scope));
      if (lo[i] > hi[i]) std::swap(lo[i], hi[i]);  // crossed by rounding only (finish_stacked)
    }
  }

 private:
  template <class F>
  void for_cells(F&& f) {
    for (auto& layer : chains_)
      for (auto& c : layer) f(*c);
  }

  // One back-substitution of the row, recording afresh.
  template <class Bound>
  T evaluate(Bound& bound) {
    for_cells([](Cell<T>& c) { c.clear_record(); });
    fa_.clear();
    return bound();
  }

  // Test hook: at a generic point near the row's copies (every plane slope jittered by 1e-3
  // relative, so that each offset's extreme is unique: at a volume-minimal start it is not,
  // and the sweep's gradient is then a supergradient only), |g|² of the sweep's gradient g
  // and the finite difference of the bound along g (a step of 1e-7 in slope space). The
  // copies are restored afterwards.
  template <class Bound>
  std::pair<T, T> gradient_check(Bound& bound, Scope scope) {
    std::vector<OptPlaneSet<T>> saved;
    each_plane([&](OptPlaneSet<T>& o, const PlaneBoxes<T>&) { saved.push_back(o); });
    auto shift = [&](auto&& delta) {
      each_plane([&](OptPlaneSet<T>& o, const PlaneBoxes<T>& bx) {
        for (std::size_t i = 0; i < o.P.aL.size(); ++i) {
          o.P.aL[i] += delta(o.P.aL[i], o.gaL[i]); o.P.bL[i] += delta(o.P.bL[i], o.gbL[i]);
          o.P.aU[i] += delta(o.P.aU[i], o.gaU[i]); o.P.bU[i] += delta(o.P.bU[i], o.gbU[i]);
          o.refresh(bx, i, true);
          o.refresh(bx, i, false);
        }
      });
    };
    unsigned long long st = 0x9E3779B97F4A7C15ull;
    shift([&](T a, T) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      const T u = T(static_cast<double>(st >> 11) * 0x1.0p-53) * T(2) - T(1);
      return T(1e-3) * u * (T(1) + std::fabs(a));
    });
    const T L0 = evaluate(bound);
    each_plane([](OptPlaneSet<T>& o, const PlaneBoxes<T>&) { o.zero_grad(); });
    sweep(scope);
    T gg = T(0);
    each_plane([&](OptPlaneSet<T>& o, const PlaneBoxes<T>&) {
      for (std::size_t i = 0; i < o.gaL.size(); ++i)
        gg += o.gaL[i] * o.gaL[i] + o.gbL[i] * o.gbL[i] + o.gaU[i] * o.gaU[i] + o.gbU[i] * o.gbU[i];
    });
    const T h = gg > T(0) ? T(1e-7) / std::sqrt(gg) : T(0);
    shift([&](T, T g) { return h * g; });
    const T L1 = evaluate(bound);
    std::size_t j = 0;
    each_plane([&](OptPlaneSet<T>& o, const PlaneBoxes<T>&) { o = saved[j++]; });
    return {gg, h > T(0) ? (L1 - L0) / h : T(0)};
  }

  void each_plane(const typename Cell<T>::PlaneVisit& f) {
    for_cells([&](Cell<T>& c) { c.each_plane(f); });
  }

  // The logits at the sweep's values of the top layer (after sweep(whole())): the readout,
  // then the head with its activations themselves (linear heads: the adjoint's value).
  std::vector<T> logits() const {
    const auto& top = net_.layers.back();
    const Mat<T>& H = h_.back();
    const std::ptrdiff_t s = top.hidden(), w = top.output(), last = Tn_ - 1;
    std::vector<T> f(static_cast<std::size_t>(w), T(0));
    if (net_.readout == Readout::Last) {
      std::copy(H.row(last), H.row(last) + s, f.begin());
      if (top.dirs.size() == 2) std::copy(H.row(0) + s, H.row(0) + 2 * s, f.begin() + s);
    } else if (net_.readout == Readout::LastStep) {
      std::copy(H.row(last), H.row(last) + w, f.begin());
    } else {
      for (std::ptrdiff_t t = 0; t < Tn_; ++t)
        for (std::ptrdiff_t i = 0; i < w; ++i) f[i] += H(t, i) / T(Tn_);
    }
    for (const auto& d : net_.head) {
      std::vector<T> z(d.b, d.b + d.w.rows);
      add_rowdots(d.w, f.data(), z.data());
      if (d.has_act)
        for (auto& v : z) v = detail::phi(d.act, v);
      f = std::move(z);
    }
    return f;
  }

  // The relaxed network forward at the worst-case input, as far as scope.
  // Layer 0's input at frame t (into out): the worst-case frame for coefficients fa (moves:
  // the row has coefficients there), through the frame layers with their activations.
  void frame_input(std::ptrdiff_t t, const T* fa, bool moves, T* out) {
    worst_input(ball_.x.row(t), fa, n_, ball_.eps, ball_.q, ball_.moves(t) && moves, xs_.data());
    if (net_.frame.empty()) {
      std::copy(xs_.begin(), xs_.end(), out);
      return;
    }
    std::copy(xs_.begin(), xs_.end(), fa2_.begin());
    for (const auto& f : net_.frame) {  // a = act(W a + b), the activation itself
      for (std::ptrdiff_t i = 0; i < f.w.rows; ++i) fz_[i] = f.b[i];
      add_rowdots(f.w, fa2_.data(), fz_.data());
      for (std::ptrdiff_t i = 0; i < f.w.rows; ++i) fa2_[i] = f.has_act ? detail::phi(f.act, fz_[i]) : fz_[i];
    }
    std::copy(fa2_.begin(), fa2_.begin() + a_.cols, out);
  }

  void sweep(Scope scope) {
    for (std::ptrdiff_t t = 0; t < Tn_; ++t) frame_input(t, fa_.row(t), fa_.has(t), a_.row(t));
    for_steps(scope, [&](std::ptrdiff_t l, std::ptrdiff_t k, std::ptrdiff_t t, std::ptrdiff_t prev) {
      const T* in = l == 0 ? a_.row(t) : h_[l - 1].row(t);
      chains_[l][k]->sweep(t, prev, in, h_[l].row(t) + k * net_.layers[l].hidden());
    });
  }

  // f(layer, chain, t, prev) for every step a sweep as far as scope runs, in forward order:
  // every chain of the layers below scope.layer, then chain scope.dir of that layer for its
  // first scope.steps steps, each chain in its own order (prev: the step before, −1: none).
  template <class F>
  void for_steps(Scope scope, F&& f) {
    const std::ptrdiff_t L = static_cast<std::ptrdiff_t>(net_.layers.size());
    for (std::ptrdiff_t l = 0; l <= std::min(scope.layer, L - 1); ++l)
      for (std::ptrdiff_t k = 0; k < static_cast<std::ptrdiff_t>(chains_[l].size()); ++k) {
        if (l == scope.layer && k != scope.dir) continue;
        const std::ptrdiff_t steps = l == scope.layer ? scope.steps : Tn_;
        const bool rev = k == 1;
        for (std::ptrdiff_t i = 0; i < steps; ++i) {
          const std::ptrdiff_t t = rev ? Tn_ - 1 - i : i;
          f(l, k, t, i == 0 ? -1 : (rev ? t + 1 : t - 1));
        }
      }
  }

  const GeneralNet<T>& net_;
  const InputBall<T>& ball_;
  OptSettings opt_;
  Chains& chains_;
  std::ptrdiff_t Tn_, n_;
  bool on_ = false;
  detail::StepRecords<T> fa_;  // the row's coefficients on each frame (recorded)
  std::vector<T> xs_, fz_, fa2_;
  Mat<T> a_;                 // the sweep's layer-0 inputs per frame
  std::vector<Mat<T>> h_;    // the sweep's outputs of each layer per step [fwd | bwd]
  Mat<T> ab_;                // a block's sweep: layer 0's inputs (row t R + r),
  std::vector<Mat<T>> hb_;   // each layer's outputs
  bool swept_ = false;       // the last kept block is swept
};

}  // namespace pq
