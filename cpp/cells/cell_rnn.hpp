// The vanilla RNN cell's verbs for the generic driver (ALGORITHM.md §4 "Vanilla RNN"):
//   z_t = W_ih a_t + W_hh h_prev + b,  h_t = φ(z_t),  φ = tanh or ReLU (lines, §2).
// The backward state is Λ_h on h_t; one step passes the lines of z_t, then the affine map.
// planes="optimized" (§3b): the lines are StepLines (per-row copies, opt_relaxations.hpp);
// the sweep is z = W_ih a + W_hh h + b, h' = the line its recorded coefficient selected.
#pragma once
#include <algorithm>
#include <optional>
#include <vector>
#include "../general_model.hpp"
#include "../linear_form.hpp"
#include "../matmul.hpp"
#include "../opt_relaxations.hpp"
#include "../products_f32.hpp"
#include "../sign_rule.hpp"
#include "../sweep_kernels.hpp"

namespace pq {

// Clean constants of the stacked pre-activations at every step: row t = b (+ W_ih x̂_t when
// the cell reads the input frames directly, x != null), so that a coefficient G on the
// pre-activations of step t adds G·row_t to the constant.
template <class T>
Mat<T> step_constants(MatView<const T> w_ih, const T* b_ih, const T* b_hh, std::ptrdiff_t Tn,
                      const MatView<const T>* x) {
  Mat<T> xb(Tn, w_ih.rows);
  for (std::ptrdiff_t t = 0; t < Tn; ++t) {
    T* r = xb.row(t);
    for (std::ptrdiff_t i = 0; i < w_ih.rows; ++i) r[i] = b_ih[i] + b_hh[i];
    if (x) add_rowdots(w_ih, x->row(t), r);
  }
  return xb;
}

// b_ih + b_hh (n values): the forward sweep's constant of the stacked pre-activations.
template <class T>
std::vector<T> bias_sum(const T* b_ih, const T* b_hh, std::ptrdiff_t n) {
  std::vector<T> b(static_cast<std::size_t>(n));
  for (std::ptrdiff_t i = 0; i < n; ++i) b[i] = b_ih[i] + b_hh[i];
  return b;
}

// The sweep's state before a step: the recorded row of step prev, or the initial state
// (init, or zeros when null).
template <class T>
const T* sweep_state(const Mat<T>& m, std::ptrdiff_t prev, const T* init, const std::vector<T>& zero) {
  return prev >= 0 ? m.row(prev) : (init ? init : zero.data());
}

// rounding="sound" (rounding.hpp, ROUNDING.md §2): the charge weights of the affine step
// y = W_ih a + W_hh h_prev + b read through its clean constants xb (b_ih + b_hh, + W_ih x̂ for
// a cell reading the frames): Γ (|W_hh| |h_prev| + |W_ih| |a| + |b_ih| + |b_hh| + |xb|), where
// |a| bounds the whole input (x̂ and its perturbation), so that the clean constants' own
// rounding and the errors of the coefficients G W_ih, G W_hh are all covered.
template <class T>
void affine_charge(MatView<const T> w_ih, MatView<const T> w_hh, const T* b_ih, const T* b_hh, const T* xb,
                   const T* in_mag, const T* h_mag, T G, T* w) {
  abs_matvec(w_hh, h_mag, G, w, false);
  abs_matvec(w_ih, in_mag, G, w, true);
  for (std::ptrdiff_t i = 0; i < w_ih.rows; ++i)
    w[i] += G * (std::fabs(b_ih[i]) + std::fabs(b_hh[i]) + std::fabs(xb[i]));
}

// rounding="sound32" (products_f32.hpp): the affine step's products with W_hh and W_ih in
// float32, for a cell whose stacked gate coefficients G multiply both whole (RNN, LSTM).
template <class T>
std::optional<AffineF32<T>> affine_f32(const CellRounding<T>& cr, const DirectionWeights<T>& w, std::ptrdiff_t Tn,
                                       std::ptrdiff_t Rmax) {
  if (!cr.f32) return std::nullopt;
  return AffineF32<T>(Tn, Rmax, w.w_hh.rows, {{0, w.w_hh}}, {{0, w.w_ih}});
}

// Whether the sign-rule pass that writes a step's gate coefficients also takes the affine
// step's constant and charge (ROUNDING.md §2): whenever the products run in float64, so
// that "sound32" with weights float32 cannot hold gives the bounds of "sound" bit for bit.
template <class T>
bool folds_affine(const std::optional<AffineF32<T>>& f32) {
  return !f32 || !f32->usable();
}

// The gate coefficients G of step t through its affine step, every cell's first part: the
// step's constant G xb and its rounding charge |G| aw (one read of G); with f32
// (rounding="sound32") also the products with W_hh (into Lh, added if acc_h) and W_ih, in
// float32 and charged there, and then true; false: the float64 products are the caller's.
template <class T>
bool affine_constant(MatView<const T> G, std::ptrdiff_t t, const T* xb, const T* aw,
                     std::optional<AffineF32<T>>& f32, MatView<T> Lh, bool acc_h, InSink<T> in, RowConsts<T> k) {
  if (!f32) {
    add_rowdots_and_abs(G, xb, k.d, k.err ? aw : nullptr, k.err);
    return false;
  }
  add_rowdots(G, xb, k.d);
  if (f32->carry(t, G, Lh, acc_h, in, k.err)) return true;
  if (k.err) charge_rows(G, aw, k.err);  // float64 after all (products_f32.hpp load)
  return false;
}

// Λ (G, on the stacked pre-activations y = W_ih a + W_hh h_prev + xb of step t) carried
// through that affine step, for a cell whose G multiplies both whole (RNN, LSTM): the
// constant and charge (affine_constant; folded: the sign-rule passes that wrote G took
// both already, sign_rule.hpp / rounding.hpp fold_affine_charge), G W_ih into the input
// sink, G W_hh into Lh.
template <class T>
void carry_affine(MatView<const T> G, const DirectionWeights<T>& w, std::ptrdiff_t t, const T* xb, const T* aw,
                  std::optional<AffineF32<T>>& f32, MatView<T> Lh, InSink<T> in, RowConsts<T> k, bool folded) {
  if (!folded && affine_constant(G, t, xb, aw, f32, Lh, false, in, k)) return;
  if (in.on()) gemm(G, w.w_ih, in.dst, in.acc);
  gemm(G, w.w_hh, Lh, false);
}

// The bounds of the m stacked pre-activations y = W_in a + W_h h_prev + xb of a step: rows
// [r0, r0 + R) of the objective [I; −I] carried through that affine step without products.
// Row i is ±e_j, so its Λ on h_prev is ±W_h[j, :], its coefficients on the input ±W_in[j, :]
// (none for j >= in_rows), its constant ±xb[j] and, under rounding="sound", its charge
// aw[j]: products by ±1 are exact, so these are the values the products of the identity
// gave, without reading or writing the R x m identity.
// The relaxation stage of a cell's carry for R rows: the whole block through the shared
// relaxations, or, while every row uses its own copies (Cell::use_rows, by_rows), row by row,
// select(r) pointing the cell's relaxations at row r first. stage(r0, n, k) carries rows
// [r0, r0 + n) with their constants k.
template <class T, class Select, class Stage>
void block_or_rows(bool by_rows, std::ptrdiff_t R, RowConsts<T> k, Select&& select, Stage&& stage) {
  if (!by_rows) return stage(std::ptrdiff_t(0), R, k);
  for (std::ptrdiff_t r = 0; r < R; ++r) {
    select(r);
    stage(r, std::ptrdiff_t(1), k.from(r));
  }
}

template <class T>
void carry_identity_rows(std::ptrdiff_t r0, std::ptrdiff_t R, std::ptrdiff_t m, MatView<const T> w_h,
                         MatView<const T> w_in, std::ptrdiff_t in_rows, const T* xb, const T* aw, MatView<T> Lh,
                         InSink<T> in, RowConsts<T> k) {
  for (std::ptrdiff_t i = 0; i < R; ++i) {
    const std::ptrdiff_t r = r0 + i, j = r < m ? r : r - m;
    const T sg = r < m ? T(1) : T(-1);
    const T* wh = w_h.row(j);
    T* lh = Lh.row(i);
    for (std::ptrdiff_t c = 0; c < Lh.cols; ++c) lh[c] = sg * wh[c];
    if (in.on()) {
      T* o = in.dst.row(i);
      const T* wi = j < in_rows ? w_in.row(j) : nullptr;
      for (std::ptrdiff_t c = 0; c < in.dst.cols; ++c)
        o[c] = (in.acc ? o[c] : T(0)) + (wi ? sg * wi[c] : T(0));
    }
    k.d[i] += sg * xb[j];
    if (k.err) k.err[i] += aw[j];
  }
}

// |h_prev| of a chain's step: the initial state's (prev < 0) or the cell's bound at prev.
template <class T>
void prev_magnitude(const Cell<T>& c, std::ptrdiff_t prev, const T* init, std::ptrdiff_t s, T* m) {
  if (prev >= 0) return c.out_magnitude(prev, m);
  for (std::ptrdiff_t i = 0; i < s; ++i) m[i] = init ? std::fabs(init[i]) : T(0);
}

// A chain's block sweep (Cell::sweep_block): every step's states of the block's rows (row
// t R + r of h, and of c for an LSTM) and the affine products through transposed copies of
// the weights (made on first use: gemm takes its right factor row-major).
template <class T>
class BlockSweep {
 public:
  // in W_ihᵀ (R x rows of W_ih), overwriting the buffer it returns.
  MatView<T> times_ih(const DirectionWeights<T>& w, MatView<const T> in, std::ptrdiff_t R) {
    if (wih_.rows == 0) wih_ = transposed(w.w_ih);
    if (y_.rows < R) y_ = Mat<T>(R, w.w_ih.rows);
    MatView<T> y = top_rows(y_, R);
    gemm(in, cview(wih_.view()), y, false);
    return y;
  }
  // out += H W_hhᵀ, H: the states after step prev (prev < 0: h0 in every row, or nothing).
  void add_hh(const DirectionWeights<T>& w, std::ptrdiff_t prev, std::ptrdiff_t R, MatView<T> out) {
    if (prev >= 0) {
      if (whh_.rows == 0) whh_ = transposed(w.w_hh);
      gemm(states(h_, prev, R), cview(whh_.view()), out, true);
      return;
    }
    if (!w.h0) return;
    std::vector<T> z(static_cast<std::size_t>(w.w_hh.rows), T(0));
    add_rowdots(w.w_hh, w.h0, z.data());
    for (std::ptrdiff_t r = 0; r < R; ++r)
      for (std::ptrdiff_t j = 0; j < out.cols; ++j) out(r, j) += z[j];
  }
  // Row r of step t's states (sized for Tn steps of R rows of s on first use).
  T* h(std::ptrdiff_t t, std::ptrdiff_t r, std::ptrdiff_t Tn, std::ptrdiff_t R, std::ptrdiff_t s) {
    return at(h_, t, r, Tn, R, s);
  }
  T* c(std::ptrdiff_t t, std::ptrdiff_t r, std::ptrdiff_t Tn, std::ptrdiff_t R, std::ptrdiff_t s) {
    return at(c_, t, r, Tn, R, s);
  }
  // Row r of the state before step t (prev < 0: init, or zero; sweep_state's rule).
  const T* h_before(std::ptrdiff_t prev, std::ptrdiff_t r, std::ptrdiff_t R, const T* init, const std::vector<T>& zero) {
    return sweep_state(h_, prev < 0 ? prev : prev * R + r, init, zero);
  }
  const T* c_before(std::ptrdiff_t prev, std::ptrdiff_t r, std::ptrdiff_t R, const T* init, const std::vector<T>& zero) {
    return sweep_state(c_, prev < 0 ? prev : prev * R + r, init, zero);
  }

 private:
  static Mat<T> transposed(MatView<const T> w) {
    Mat<T> t(w.cols, w.rows);
    for (std::ptrdiff_t i = 0; i < w.rows; ++i)
      for (std::ptrdiff_t j = 0; j < w.cols; ++j) t(j, i) = w(i, j);
    return t;
  }
  static MatView<const T> states(const Mat<T>& m, std::ptrdiff_t t, std::ptrdiff_t R) {
    return {m.row(t * R), R, m.cols, m.cols};
  }
  static T* at(Mat<T>& m, std::ptrdiff_t t, std::ptrdiff_t r, std::ptrdiff_t Tn, std::ptrdiff_t R, std::ptrdiff_t s) {
    if (m.rows < Tn * R || m.cols != s) m = Mat<T>(Tn * R, s);
    return m.row(t * R + r);
  }
  Mat<T> wih_, whh_, y_, h_, c_;
};

template <class T>
class RnnCell final : public Cell<T> {
 public:
  // x: the clean input frames when this cell reads them directly, else null.
  RnnCell(const DirectionWeights<T>& w, Activation act, bool optimized, std::ptrdiff_t Tn, std::ptrdiff_t Rmax,
          const MatView<const T>* x, const CellRounding<T>& cr)
      : w_(w), act_(act), s_(w.w_hh.cols), xb_(step_constants(w.w_ih, w.b_ih, w.b_hh, Tn, x)),
        zl_(Tn, s_), zu_(Tn, s_), lines_(Tn, s_, optimized), Lh_(Rmax, s_), G_(Rmax, s_),
        b_(bias_sum(w.b_ih, w.b_hh, s_)), sh_(optimized ? Tn : 0, s_), z_(s_), zero_(s_, T(0)), cr_(cr),
        aw_(cr.rd.on() ? Tn : 0, s_), cw_(cr.rd.on() ? s_ : 0), mh_(cr.rd.on() ? s_ : 0),
        f32_(affine_f32(cr, w, Tn, Rmax)) {}

  void relax(Bounder<T>& bd, std::ptrdiff_t t, std::ptrdiff_t prev, bool) override {
    if (cr_.rd.on()) {  // rounding="sound": the affine step's charge weights (rounding.hpp)
      prev_magnitude<T>(*this, prev, w_.h0, s_, mh_.data());
      affine_charge(w_.w_ih, w_.w_hh, w_.b_ih, w_.b_hh, xb_.row(t), cr_.in_mag->row(t), mh_.data(), cr_.rd.G,
                    aw_.row(t));
      if (f32_) f32_->relax(t, aw_.row(t), mh_.data(), cr_.in_mag->row(t));
    }
    bd.bound(s_, Entry::Pre, t, [&](std::ptrdiff_t r0, std::ptrdiff_t) { pre_r0_ = r0; },  // carry_identity_rows
             zl_.row(t), zu_.row(t));
    lines_.compute(t, act_, zl_.row(t), zu_.row(t), s_);
  }

  void carry(Entry entry, std::ptrdiff_t t, std::ptrdiff_t R, InSink<T> in, RowConsts<T> k) override {
    if (entry == Entry::Pre)
      return carry_identity_rows(pre_r0_, R, s_, w_.w_hh, w_.w_ih, s_, xb_.row(t), k.err ? aw_.row(t) : nullptr,
                                 top_rows(Lh_, R), in, k);
    // the lines write all of G: they take the affine step's constant and charge too, unless
    // its products run in float32 (affine_constant charges those)
    const bool fold = entry == Entry::Hidden && folds_affine(f32_);
    if (entry == Entry::Hidden)
      block_or_rows(lines_.by_rows(), R, k, [&](std::ptrdiff_t r) { lines_.set_row(r); },
                    [&](std::ptrdiff_t r0, std::ptrdiff_t n, RowConsts<T> kr) { lines(t, r0, n, kr, fold); });
    carry_affine(cview(top_rows(G_, R)), w_, t, xb_.row(t), k.err ? aw_.row(t) : nullptr, f32_, top_rows(Lh_, R), in, k,
                 fold);
  }

  // Rows [r0, r0 + n) of Λ_h at step t through the lines into G; k: those rows' constants.
  void lines(std::ptrdiff_t t, std::ptrdiff_t r0, std::ptrdiff_t n, RowConsts<T> k, bool fold) {
    const LineSet<T>& ln = lines_.at(t);
    const MatView<const T> L = cview(row_block(Lh_, r0, n));
    lines_.record(t, L);
    if (k.err) {
      line_charge(ln, zl_.row(t), zu_.row(t), s_, cr_.rd.G, cw_.data(), false);
      if (fold) fold_affine_charge(ln.al.data(), ln.au.data(), aw_.row(t), s_, cw_.data());
    }
    if (k.err && fused_passes())  // the charge in the same read of Λ_h as the lines
      pass_lines_charged(L, ln, row_block(G_, r0, n), k.d, fold ? xb_.row(t) : nullptr, k.err, cw_.data());
    else {
      if (k.err) charge_rows(L, cw_.data(), k.err);
      pass_lines(L, ln, row_block(G_, r0, n), k.d, fold ? xb_.row(t) : nullptr);
    }
  }

  void add_top(MatView<const T> top, std::ptrdiff_t R, bool first) override {
    copy_or_add(top, top_rows(Lh_, R), !first);
  }

  void initial(std::ptrdiff_t R, RowConsts<T> k) override {
    if (w_.h0) add_rowdots_charged(cview(top_rows(Lh_, R)), w_.h0, cr_.rd, k);
  }

  // ReLU: max(0, z_u); tanh: max(|tanh z_l|, |tanh z_u|) (monotone), below 1
  void out_magnitude(std::ptrdiff_t t, T* m) const override {
    for (std::ptrdiff_t i = 0; i < s_; ++i) {
      if (act_ == Activation::Relu) {
        m[i] = std::max(T(0), zu_(t, i));
        continue;
      }
      const T a = std::max(std::fabs(activation_value<T>(act_, zl_(t, i))),
                           std::fabs(activation_value<T>(act_, zu_(t, i))));
      m[i] = libm_magnitude(a, T(1));
    }
  }

  void states(std::vector<StateBounds<T>>& out, const std::string& prefix) override {
    StateBounds<T> hid{prefix + "hidden", Mat<T>(zl_.rows, s_), Mat<T>(zl_.rows, s_)};
    for (std::ptrdiff_t k = 0; k < zl_.rows; ++k)
      for (std::ptrdiff_t i = 0; i < s_; ++i) {  // φ is monotone
        hid.lower(k, i) = activation_value<T>(act_, zl_(k, i));
        hid.upper(k, i) = activation_value<T>(act_, zu_(k, i));
      }
    if (cr_.rd.on()) widen_outwards(hid.lower, hid.upper);
    out.push_back({prefix + "pre", zl_, zu_});
    out.push_back(std::move(hid));
  }

  void own(bool on, bool grads) override { lines_.own(on, grads); }
  void clear_record() override { lines_.clear_record(); }
  void keep_rows(std::ptrdiff_t rows) override { lines_.keep_rows(rows); }
  void take_row(std::ptrdiff_t r, std::ptrdiff_t rows) override { lines_.take_row(r, rows); }

  void sweep(std::ptrdiff_t t, std::ptrdiff_t prev, const T* in, T* h) override {
    if (!lines_.ready(t)) return;
    std::copy(b_.begin(), b_.end(), z_.begin());
    add_rowdots(w_.w_ih, in, z_.data());
    add_rowdots(w_.w_hh, sweep_state(sh_, prev, w_.h0, zero_), z_.data());
    T* o = sh_.row(t);
    lines_.work(t).sweep_values(lines_.recs(t), z_.data(), o);
    std::copy(o, o + s_, h);
  }

  void sweep_block(std::ptrdiff_t t, std::ptrdiff_t prev, MatView<const T> in, MatView<T> h,
                   std::ptrdiff_t R) override {
    if (!lines_.ready(t)) return;
    lines_.start_block_sweep(R);
    MatView<T> z = bs_.times_ih(w_, in, R);
    bs_.add_hh(w_, prev, R, z);
    const LineSet<T>& ln = lines_.shared(t);
    for (std::ptrdiff_t r = 0; r < R; ++r) {
      const T* k = lines_.kept(t, r, R);
      const T* v = k ? k : zero_.data();
      const auto sw = lines_.swept(t, r);
      T* zr = z.row(r);
      for (std::ptrdiff_t i = 0; i < s_; ++i) zr[i] += b_[i];
      std::copy(zr, zr + s_, sw.x), std::fill(sw.y, sw.y + s_, T(0)), std::copy(v, v + s_, sw.v);
      T* o = bs_.h(t, r, zl_.rows, R, s_);
      line_values(ln, v, zr, s_, o);
      std::copy(o, o + s_, h.row(r));
    }
  }
  void take_sweep(std::ptrdiff_t r) override { lines_.take_sweep(r); }
  void respond_rows(std::ptrdiff_t first, std::ptrdiff_t n, const OptSettings& opt) override {
    lines_.respond_rows(first, n, opt);
  }
  void use_rows(bool on) override { lines_.use_rows(on); }

  bool improve(int it, const OptSettings& opt) override { return lines_.improve(it, opt); }
  void each_plane(const typename Cell<T>::PlaneVisit&) override {}  // lines only

 private:
  DirectionWeights<T> w_;
  Activation act_;
  std::ptrdiff_t s_;
  Mat<T> xb_, zl_, zu_;
  StepLines<T> lines_;
  Mat<T> Lh_, G_;  // Λ on h_t; coefficients on z_t (Rmax rows)
  std::vector<T> b_;                // optimized: the sweep's bias,
  Mat<T> sh_;                       // its hidden values per step,
  std::vector<T> z_, zero_;         // its pre-activations; zeros (no h0)
  CellRounding<T> cr_;              // rounding="sound": Γ and the input's magnitudes,
  Mat<T> aw_;                       // the affine step's charge weights per step,
  std::vector<T> cw_, mh_;          // scratch: a relaxation's weights, |h_prev|
  std::optional<AffineF32<T>> f32_;  // rounding="sound32": the products in float32
  std::ptrdiff_t pre_r0_ = 0;       // the first row of an objective on z_t (its setup)
  BlockSweep<T> bs_;                // optimized: a block's sweep
};

}  // namespace pq
