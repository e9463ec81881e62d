// The relaxations of one product (planes) or one activation (lines) over the steps of a
// chain, as a cell of the generic driver holds them, with what planes="optimized" needs
// (RECURRENCES.md §3b; the driver's side is general_optimize.hpp):
//   shared[t]  the relaxation every bound uses (fixed by the cell's relax, §3 / §2);
//   init[t]    its optimisable copy with the box, set when the step is fixed;
//   work[t]    the row's own copy while one objective row is optimised (own(true, ·));
//   rec[t]     the coefficient that row's back-substitution met there (recorded by carry),
//              which selects the side the forward sweep evaluates; while the driver keeps a
//              block's records (keep_rows), every row of a block back-substituted together
//              with the shared relaxations, so that take_row gives a row the records of
//              its first iterate without back-substituting it again.
// A relaxation is valid whatever its slopes (exact offsets, optim_planes.hpp /
// optim_lines.hpp), so every working copy gives a sound bound.
#pragma once
#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>
#include "bound_state.hpp"
#include "optim_lines.hpp"
#include "optim_planes.hpp"

namespace pq {

template <class T, class Opt, class Boxes, class Set>
class StepRelaxations {
 public:
  // contacts: the copies keep where each offset is attained (OptSettings::contacts)
  StepRelaxations(std::ptrdiff_t Tn, std::ptrdiff_t s, bool optimized, bool contacts)
      : shared_(static_cast<std::size_t>(Tn)), opt_(optimized), contacts_(contacts) {
    if (!opt_) return;
    bx_.resize(shared_.size());
    init_.resize(shared_.size());
    work_.resize(shared_.size());
    ready_.assign(shared_.size(), char(0));
    bswept_.assign(shared_.size(), char(0));
    rec_ = detail::StepRecords<T>(Tn, s);
  }

  // What a back-substitution reads at step t: the row's own copy while one is in use; in
  // a block of rows each with its own copies (use_rows), the current row's (set_row).
  const Set& at(std::ptrdiff_t t) const {
    if (!ready(t)) return shared_[t];
    if (rows_on_) return bswept_[t] ? rows_[static_cast<std::size_t>(t * rows_n_ + row_)] : shared_[t];
    return on_ ? work_[t].P : shared_[t];
  }
  Set& shared(std::ptrdiff_t t) { return shared_[t]; }

  bool optimized() const { return opt_; }
  bool ready(std::ptrdiff_t t) const { return opt_ && ready_[t]; }
  Opt& work(std::ptrdiff_t t) { return work_[t]; }
  // The coefficients the row in use met at step t (s; recorded by carry).
  const T* recs(std::ptrdiff_t t) const { return rec_.row(t); }

  // Carry: the coefficients (R x s) met at step t; row 0's while one row is in use (R = 1),
  // every row's while a block's are kept.
  void record(std::ptrdiff_t t, MatView<const T> L) {
    if (on_) rec_.put(t, L.row(0));
    else if (rec_.keeping() > 0) rec_.put_block(t, L);
  }
  // Keep the records of every row of the next back-substituted block (of at most rows rows;
  // 0: stop keeping).
  void keep_rows(std::ptrdiff_t rows) {
    if (!opt_) return;
    rec_.keep(rows);
    if (rows > 0) forget_sweep();
  }
  // A new block: no step swept yet (also for relaxations that keep no records of their own).
  void forget_sweep() { std::fill(bswept_.begin(), bswept_.end(), char(0)); }
  // Row r of the last kept block as the records of the row in use (as its own back-substitution
  // with the shared relaxations would have recorded them).
  void take_row(std::ptrdiff_t r, std::ptrdiff_t rows) {
    if (opt_) rec_.take(r, rows);
  }

  // A block's sweep (general_optimize.hpp sweep_block): every row of the last kept block (of
  // `rows` rows) swept at once with the shared relaxations, each on the side its kept record
  // selects. kept(t, r, rows): row r's records at step t (null: it met none there);
  // swept(t, r): where row r's inputs (x, y) and coefficient at step t go (s each), which
  // take_sweep(r) gives the row in use's copies as if it had swept them itself.
  const T* kept(std::ptrdiff_t t, std::ptrdiff_t r, std::ptrdiff_t rows) const { return rec_.kept(t, r, rows); }
  // (A step the block's sweep did not reach keeps the row's fresh start there: met by none.)
  void start_block_sweep(std::ptrdiff_t rows) {
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(shared_.size()) * rows, s = rec_.width();
    if (bs_x_.rows < n) bs_x_ = Mat<T>(n, s), bs_y_ = Mat<T>(n, s), bs_v_ = Mat<T>(n, s);
    brows_ = rows;
  }
  struct Swept {
    T *x, *y, *v;
  };
  Swept swept(std::ptrdiff_t t, std::ptrdiff_t r) {
    const std::ptrdiff_t k = t * brows_ + r;
    bswept_[t] = 1;
    return {bs_x_.row(k), bs_y_.row(k), bs_v_.row(k)};
  }
  void take_sweep(std::ptrdiff_t r) {
    if (!on_) return;
    for (std::size_t t = 0; t < shared_.size(); ++t)
      if (ready_[t] && bswept_[t]) {
        const std::ptrdiff_t k = static_cast<std::ptrdiff_t>(t) * brows_ + r;
        work_[t].load_sweep(bs_x_.row(k), bs_y_.row(k), bs_v_.row(k));
      }
  }

  // A block whose rows each carry their own copies (general_optimize.hpp block_rows):
  // respond_rows gives every row of the last kept block (of `rows` rows) its copies, the
  // shared relaxations improved once (a best response) at the row's values from the block's
  // sweep, a step at a time for all rows (each step's candidates stay in cache); use_rows(true)
  // then makes at() read row set_row(r)'s (the shared relaxations at steps the block's sweep
  // did not reach), so that one back-substitution of the block carries
  // every row with its own relaxations (each cell's carry goes row by row through them).
  // (Rows [first, first + count) of the block: at most a few dozen at a time, so that their
  // copies stay a small multiple of the coefficient store; row set_row(j) is row first + j.)
  void respond_rows(std::ptrdiff_t first, std::ptrdiff_t count, const OptSettings& opt) {
    if (!opt_) return;
    const std::size_t R = static_cast<std::size_t>(count), n = shared_.size() * R;
    if (rows_.size() < n) rows_.resize(n);
    rows_n_ = count;
    for (std::size_t t = 0; t < shared_.size(); ++t) {
      if (!ready_[t] || !bswept_[t]) continue;  // (unswept: the block's rows meet nothing here, at())
      Opt& w = work_[t];  // the responder: its planes swapped with each row's in turn
      w.start_row(init_[t], false);
      for (std::size_t r = 0; r < R; ++r) {
        const std::ptrdiff_t k = static_cast<std::ptrdiff_t>(t) * brows_ + first + static_cast<std::ptrdiff_t>(r);
        std::swap(w.P, rows_[t * R + r]);  // written whole from the row's start, init_[t].P
        w.respond_swept(bx_[t], bs_x_.row(k), bs_y_.row(k), bs_v_.row(k), opt, init_[t].P);
        std::swap(w.P, rows_[t * R + r]);
      }
    }
  }
  void use_rows(bool on) {
    rows_on_ = on && opt_;
    row_ = 0;
  }
  bool by_rows() const { return rows_on_; }
  void set_row(std::ptrdiff_t r) { row_ = r; }

  // A row's own copies (fresh from init; grads: with what gradients and Adam steps read) in
  // use, or the shared relaxations again.
  void own(bool on, bool grads) {
    on_ = on && opt_;
    if (!on_) return;
    for (std::size_t t = 0; t < shared_.size(); ++t)
      if (ready_[t]) work_[t].start_row(init_[t], grads);
  }
  void clear_record() {
    if (on_) rec_.clear();
  }
  // Iteration `it` on every copy the last sweep met (best response or Adam step). Returns
  // whether the row's back-substitution recorded a coefficient here.
  bool improve(int it, const OptSettings& opt) {
    if (!on_) return false;
    for (std::size_t t = 0; t < shared_.size(); ++t)
      if (ready_[t]) work_[t].improve(bx_[t], it, opt);
    return rec_.any();
  }
  // f(work copy, its box) for every fixed step (the gradient check of the tests).
  template <class F>
  void each_work(F&& f) {
    if (!on_) return;
    for (std::size_t t = 0; t < shared_.size(); ++t)
      if (ready_[t]) f(work_[t], bx_[t]);
  }

 protected:
  void fixed(std::ptrdiff_t t) {
    init_[t].init_from(shared_[t], bx_[t], contacts_);
    ready_[t] = 1;
  }
  std::vector<Set> shared_;
  std::vector<Boxes> bx_;
  std::vector<Opt> init_, work_;
  std::vector<char> ready_;
  detail::StepRecords<T> rec_;
  Mat<T> bs_x_, bs_y_, bs_v_;  // a block's sweep: row (t * brows_ + r) per step and row,
  std::vector<char> bswept_;   // the steps it reached
  std::vector<Set> rows_;      // a block's rows' own copies (t * rows_n_ + r)
  std::ptrdiff_t rows_n_ = 0, row_ = 0;
  bool rows_on_ = false;
  std::ptrdiff_t brows_ = 0;
  bool opt_ = false, contacts_ = false, on_ = false;
};

// Planes of one product surface (§3), one per neuron and step.
template <class T>
class StepPlanes final : public StepRelaxations<T, OptPlaneSet<T>, PlaneBoxes<T>, PlaneSet<T>> {
 public:
  using StepRelaxations<T, OptPlaneSet<T>, PlaneBoxes<T>, PlaneSet<T>>::StepRelaxations;
  void compute(std::ptrdiff_t t, Surface f, PlaneMethod m, const T* xl, const T* xu, const T* yl, const T* yu,
               std::ptrdiff_t s) {
    this->shared_[t].compute(f, m, xl, xu, yl, yu, s);
    if (!this->opt_) return;
    this->bx_[t].set(f, xl, xu, yl, yu, s);
    this->fixed(t);
  }
};

// Lines of one activation (§2), one per neuron and step.
template <class T>
class StepLines final : public StepRelaxations<T, OptLineSet<T>, LineBoxes<T>, LineSet<T>> {
 public:
  // (a line's offset needs no contact point: its copies keep none)
  StepLines(std::ptrdiff_t Tn, std::ptrdiff_t s, bool optimized)
      : StepRelaxations<T, OptLineSet<T>, LineBoxes<T>, LineSet<T>>(Tn, s, optimized, false) {}
  void compute(std::ptrdiff_t t, Activation f, const T* lo, const T* hi, std::ptrdiff_t s) {
    this->shared_[t].compute(f, lo, hi, s);
    if (!this->opt_) return;
    this->bx_[t].set(f, lo, hi, s);
    this->fixed(t);
  }
};

}  // namespace pq
