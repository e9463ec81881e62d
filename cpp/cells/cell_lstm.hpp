// The LSTM cell's verbs for the generic driver (ALGORITHM.md §4 "LSTM"). Gates stacked
// i, f, g, o: y_t = W_ih a_t + W_hh h_prev + b,
//   c_t = σ(y^f)·c_prev + σ(y^i)·tanh(y^g) ≤/≥ P^f(c_prev, y^f) + P^ig(y^g, y^i),
//   h_t = σ(y^o)·tanh(c_t)                 ≤/≥ P^o(c_t, y^o).
// Relaxing step t: gate bounds, planes P^f and P^ig, cell bounds (objective entering at
// c_t), plane P^o. The backward state is (Λ_h, Λ_c); one product of the stacked gate
// coefficients G = [Λ_yi, Λ_yf, Λ_yg, Λ_yo] with W_hh (and one with W_ih) serves all gates.
// planes="optimized" (§3b): the planes are StepPlanes (per-row copies); the sweep is
// y = W_ih a + W_hh h + b, c' = P^f(c, y^f) + P^ig(y^g, y^i), h' = P^o(c', y^o).
#pragma once
#include <algorithm>
#include <optional>
#include <utility>
#include <vector>
#include "cell_rnn.hpp"

namespace pq {

template <class T>
class LstmCell final : public Cell<T> {
 public:
  LstmCell(const DirectionWeights<T>& w, const PassOptions& opt, std::ptrdiff_t Tn, std::ptrdiff_t Rmax,
           const MatView<const T>* x, const CellRounding<T>& cr)
      : w_(w), planes_(opt.planes), s_(w.w_hh.cols), xb_(step_constants(w.w_ih, w.b_ih, w.b_hh, Tn, x)),
        yl_(Tn, 4 * s_), yu_(Tn, 4 * s_), cl_(Tn, s_), cu_(Tn, s_),
        Pf_(Tn, s_, opt.optimized(), opt.opt.contacts()), Pig_(Tn, s_, opt.optimized(), opt.opt.contacts()),
        Po_(Tn, s_, opt.optimized(), opt.opt.contacts()), Lh_(Rmax, s_), Lc_(Rmax, s_),
        Lc2_(Rmax, s_), G_(Rmax, 4 * s_), zero_(s_, T(0)), b_(bias_sum(w.b_ih, w.b_hh, 4 * s_)),
        sh_(opt.optimized() ? Tn : 0, s_), sc_(opt.optimized() ? Tn : 0, s_), y_(4 * s_), cr_(cr),
        aw_(cr.rd.on() ? Tn : 0, 4 * s_), cw_(cr.rd.on() ? s_ : 0), cw2_(cr.rd.on() ? s_ : 0), mh_(cr.rd.on() ? s_ : 0),
        prev_(static_cast<std::size_t>(Tn), -1), f32_(affine_f32(cr, w, Tn, Rmax)) {}

  void relax(Bounder<T>& bd, std::ptrdiff_t t, std::ptrdiff_t prev, bool) override {
    const std::ptrdiff_t s = s_;
    T* yl = yl_.row(t);
    T* yu = yu_.row(t);
    prev_[t] = prev;
    if (cr_.rd.on()) {  // rounding="sound": the affine step's charge weights (cell_rnn.hpp)
      prev_magnitude<T>(*this, prev, w_.h0, s, mh_.data());
      affine_charge(w_.w_ih, w_.w_hh, w_.b_ih, w_.b_hh, xb_.row(t), cr_.in_mag->row(t), mh_.data(), cr_.rd.G,
                    aw_.row(t));
      if (f32_) f32_->relax(t, aw_.row(t), mh_.data(), cr_.in_mag->row(t));
    }
    bd.bound(4 * s, Entry::Pre, t, [&](std::ptrdiff_t r0, std::ptrdiff_t) { pre_r0_ = r0; }, yl, yu);
    const T* c_init = w_.c0 ? w_.c0 : zero_.data();
    const T* cpl = prev < 0 ? c_init : cl_.row(prev);
    const T* cpu = prev < 0 ? c_init : cu_.row(prev);
    Pf_.compute(t, Surface::XSigmoid, planes_, cpl, cpu, yl + s, yu + s, s);
    Pig_.compute(t, Surface::TanhSigmoid, planes_, yl + 2 * s, yu + 2 * s, yl, yu, s);
    bd.bound(s, Entry::Cell, t, [&](std::ptrdiff_t r0, std::ptrdiff_t R) {
      set_signed_identity_rows(top_rows(Lc_, R), r0, R, s, 0);
      zero_rows(top_rows(Lh_, R));
    }, cl_.row(t), cu_.row(t));
    Po_.compute(t, Surface::TanhSigmoid, planes_, cl_.row(t), cu_.row(t), yl + 3 * s, yu + 3 * s, s);
  }

  void carry(Entry entry, std::ptrdiff_t t, std::ptrdiff_t R, InSink<T> in, RowConsts<T> k) override {
    const std::ptrdiff_t s = s_;
    MatView<T> Gv = top_rows(G_, R);
    MatView<T> g_i = block(Gv, 0, R, 0, s), g_f = block(Gv, 0, R, s, s);
    MatView<T> g_g = block(Gv, 0, R, 2 * s, s), g_o = block(Gv, 0, R, 3 * s, s);
    if (entry == Entry::Pre) {  // the objective sits on y_t: nothing on c_prev (cell_rnn.hpp)
      zero_rows(top_rows(Lc_, R));
      return carry_identity_rows(pre_r0_, R, 4 * s, w_.w_hh, w_.w_ih, 4 * s, xb_.row(t),
                                 k.err ? aw_.row(t) : nullptr, top_rows(Lh_, R), in, k);
    }
    // the planes write all of G (gates i, f, g, o): they take the affine step's constant and
    // charge too, unless its products run in float32 (affine_constant charges those)
    const bool fold = folds_affine(f32_);
    const T* xb = xb_.row(t);
    const T* aw = k.err ? aw_.row(t) : nullptr;
    if (entry == Entry::Hidden && !Po_.optimized() && fused_passes()) {  // both planes below in one pass
      if (k.err) {
        po_weights(t, fold ? aw : nullptr, cw_.data());
        pair_weights(t, fold ? aw : nullptr, cw2_.data());
      }
      pass_hidden_cell(cview(top_rows(Lh_, R)), cview(top_rows(Lc_, R)), Po_.at(t), Pf_.at(t), Pig_.at(t),
                       HiddenCellOut<T>{top_rows(Lc2_, R), g_o, g_f, g_g, g_i}, k.d, k.err,
                       fold ? HiddenCellFold<T>{xb + 3 * s, xb + s, xb + 2 * s, xb} : HiddenCellFold<T>{},
                       cw_.data(), cw2_.data());
      std::swap(Lc_, Lc2_);
      return carry_affine(cview(Gv), w_, t, xb, aw, f32_, top_rows(Lh_, R), in, k, fold);
    }
    auto row = [&](std::ptrdiff_t r) { for (auto* p : {&Pf_, &Pig_, &Po_}) p->set_row(r); };
    block_or_rows(Pf_.by_rows(), R, k, row,
                  [&](std::ptrdiff_t r0, std::ptrdiff_t n, RowConsts<T> kr) { planes(entry, t, r0, n, kr, fold); });
    std::swap(Lc_, Lc2_);
    carry_affine(cview(Gv), w_, t, xb, aw, f32_, top_rows(Lh_, R), in, k, fold);
  }

  // Rows [r0, r0 + n) of (Λ_h, Λ_c) at step t through P^o, P^f and P^ig into the gate
  // coefficients G and Λ_c's swap; k: those rows' constants.
  void planes(Entry entry, std::ptrdiff_t t, std::ptrdiff_t r0, std::ptrdiff_t n, RowConsts<T> k, bool fold) {
    const std::ptrdiff_t s = s_;
    const T* xb = xb_.row(t);
    const T* aw = k.err ? aw_.row(t) : nullptr;
    MatView<T> Gv = row_block(G_, r0, n);
    MatView<T> g_i = block(Gv, 0, n, 0, s), g_f = block(Gv, 0, n, s, s);
    MatView<T> g_g = block(Gv, 0, n, 2 * s, s), g_o = block(Gv, 0, n, 3 * s, s);
    const MatView<const T> Lh = cview(row_block(Lh_, r0, n));
    if (entry == Entry::Hidden) {  // h_t = P^o(c_t, y^o_t): Λ_c += λ a_o, Λ_yo = λ b_o
      const PlaneSet<T>& Po = Po_.at(t);
      Po_.record(t, Lh);
      if (k.err) {
        po_weights(t, fold ? aw : nullptr, cw_.data());
        charge_rows(Lh, cw_.data(), k.err);
      }
      pass_plane<true, false>(Lh, Po, row_block(Lc_, r0, n), g_o, T(1), k.d,
                              fold ? PlaneFold<T>{nullptr, xb + 3 * s} : PlaneFold<T>{});
    } else {
      zero_rows(g_o);
    }
    // c_t = P^f(c_prev, y^f) + P^ig(y^g, y^i), one sign decision per coefficient
    const MatView<const T> Lc = cview(row_block(Lc_, r0, n));
    Pf_.record(t, Lc);
    if (k.err) {
      pair_weights(t, fold ? aw : nullptr, cw_.data());
      charge_rows(Lc, cw_.data(), k.err);
    }
    pass_plane_pair(Lc, Pf_.at(t), Pig_.at(t), row_block(Lc2_, r0, n), g_f, g_g, g_i, k.d,
                    fold ? PairFold<T>{xb + s, xb + 2 * s, xb} : PairFold<T>{});
  }

  void add_top(MatView<const T> top, std::ptrdiff_t R, bool first) override {
    copy_or_add(top, top_rows(Lh_, R), !first);
    if (first) zero_rows(top_rows(Lc_, R));
  }

  void initial(std::ptrdiff_t R, RowConsts<T> k) override {
    if (w_.h0) add_rowdots_charged(cview(top_rows(Lh_, R)), w_.h0, cr_.rd, k);
    if (w_.c0) add_rowdots_charged(cview(top_rows(Lc_, R)), w_.c0, cr_.rd, k);
  }

  // |σ(y^o) tanh(c)| <= σ(y^o_u) max(|tanh c_l|, |tanh c_u|) < 1
  void out_magnitude(std::ptrdiff_t t, T* m) const override {
    const std::ptrdiff_t s = s_;
    for (std::ptrdiff_t i = 0; i < s; ++i) {
      const T a = std::max(std::fabs(activation_value<T>(Activation::Tanh, cl_(t, i))),
                           std::fabs(activation_value<T>(Activation::Tanh, cu_(t, i))));
      m[i] = libm_magnitude(a * activation_value<T>(Activation::Sigmoid, yu_(t, 3 * s + i)), T(1));
    }
  }

  void states(std::vector<StateBounds<T>>& out, const std::string& prefix) override {
    const std::ptrdiff_t Tn = cl_.rows, s = s_;
    // hidden: corner min/max of tanh(c)·σ(y^o) over the (c_t, y^o_t) box
    StateBounds<T> hid{prefix + "hidden", Mat<T>(Tn, s), Mat<T>(Tn, s)};
    for (std::ptrdiff_t k = 0; k < Tn; ++k)
      for (std::ptrdiff_t i = 0; i < s; ++i) {
        const T tl = activation_value<T>(Activation::Tanh, cl_(k, i));
        const T tu = activation_value<T>(Activation::Tanh, cu_(k, i));
        const T sl = activation_value<T>(Activation::Sigmoid, yl_(k, 3 * s + i));
        const T su = activation_value<T>(Activation::Sigmoid, yu_(k, 3 * s + i));
        const T c1 = tl * sl, c2 = tl * su, c3 = tu * sl, c4 = tu * su;
        hid.lower(k, i) = std::min(std::min(c1, c2), std::min(c3, c4));
        hid.upper(k, i) = std::max(std::max(c1, c2), std::max(c3, c4));
      }
    if (cr_.rd.on()) widen_outwards(hid.lower, hid.upper);
    out.push_back({prefix + "gates", yl_, yu_});
    out.push_back({prefix + "cell", cl_, cu_});
    out.push_back(std::move(hid));
  }

  void own(bool on, bool grads) override {
    Pf_.own(on, grads);
    Pig_.own(on, grads);
    Po_.own(on, grads);
  }
  // records: on P^f (Λ_c, which P^ig shares) and P^o; P^ig's own stay empty
  void clear_record() override {
    Pf_.clear_record();
    Po_.clear_record();
  }
  void keep_rows(std::ptrdiff_t rows) override {
    Pf_.keep_rows(rows);
    Po_.keep_rows(rows);
    if (rows > 0) Pig_.forget_sweep();
  }
  void take_row(std::ptrdiff_t r, std::ptrdiff_t rows) override {
    Pf_.take_row(r, rows);
    Po_.take_row(r, rows);
  }

  void sweep(std::ptrdiff_t t, std::ptrdiff_t prev, const T* in, T* h) override {
    if (!Pf_.ready(t)) return;
    const std::ptrdiff_t s = s_;
    std::copy(b_.begin(), b_.end(), y_.begin());
    add_rowdots(w_.w_ih, in, y_.data());
    add_rowdots(w_.w_hh, sweep_state(sh_, prev, w_.h0, zero_), y_.data());
    const T* cp = sweep_state(sc_, prev, w_.c0, zero_);
    T* c = sc_.row(t);
    const T* v = Pf_.recs(t);  // P^f and P^ig share the coefficient met at c_t
    Pf_.work(t).sweep_values(v, cp, y_.data() + s, c);
    Pig_.work(t).template sweep_values<true>(v, y_.data() + 2 * s, y_.data(), c);
    if (!Po_.ready(t)) return;  // an objective on c_t: P^o not fixed yet
    T* o = sh_.row(t);
    Po_.work(t).sweep_values(Po_.recs(t), c, y_.data() + 3 * s, o);
    std::copy(o, o + s, h);
  }

  void sweep_block(std::ptrdiff_t t, std::ptrdiff_t prev, MatView<const T> in, MatView<T> h,
                   std::ptrdiff_t R) override {
    if (!Pf_.ready(t)) return;
    const std::ptrdiff_t s = s_, Tn = yl_.rows;
    for (auto* p : {&Pf_, &Pig_, &Po_}) p->start_block_sweep(R);
    MatView<T> y = bs_.times_ih(w_, in, R);
    bs_.add_hh(w_, prev, R, y);
    const PlaneSet<T>& pf = Pf_.shared(t);
    const PlaneSet<T>& pig = Pig_.shared(t);
    const bool out = Po_.ready(t);  // an objective on c_t: P^o not fixed yet
    for (std::ptrdiff_t r = 0; r < R; ++r) {
      T* yr = y.row(r);
      for (std::ptrdiff_t j = 0; j < 4 * s; ++j) yr[j] += b_[j];
      const T* cp = bs_.c_before(prev, r, R, w_.c0, zero_);
      const T* kf = Pf_.kept(t, r, R);
      const T* v = kf ? kf : zero_.data();  // P^f and P^ig share the coefficient met at c_t
      const auto f = Pf_.swept(t, r), ig = Pig_.swept(t, r);
      std::copy(cp, cp + s, f.x), std::copy(yr + s, yr + 2 * s, f.y), std::copy(v, v + s, f.v);
      std::copy(yr + 2 * s, yr + 3 * s, ig.x), std::copy(yr, yr + s, ig.y), std::copy(v, v + s, ig.v);
      T* c = bs_.c(t, r, Tn, R, s);
      plane_values(pf, v, cp, yr + s, s, c);
      plane_values<T, true>(pig, v, yr + 2 * s, yr, s, c);
      if (!out) continue;
      const T* ko = Po_.kept(t, r, R);
      const T* vo = ko ? ko : zero_.data();
      const auto o = Po_.swept(t, r);
      std::copy(c, c + s, o.x), std::copy(yr + 3 * s, yr + 4 * s, o.y), std::copy(vo, vo + s, o.v);
      T* hr = bs_.h(t, r, Tn, R, s);
      plane_values(Po_.shared(t), vo, c, yr + 3 * s, s, hr);
      std::copy(hr, hr + s, h.row(r));
    }
  }
  void take_sweep(std::ptrdiff_t r) override {
    Pf_.take_sweep(r);
    Pig_.take_sweep(r);
    Po_.take_sweep(r);
  }
  void respond_rows(std::ptrdiff_t first, std::ptrdiff_t n, const OptSettings& opt) override {
    for (auto* p : {&Pf_, &Pig_, &Po_}) p->respond_rows(first, n, opt);
  }
  void use_rows(bool on) override {
    for (auto* p : {&Pf_, &Pig_, &Po_}) p->use_rows(on);
  }

  bool improve(int it, const OptSettings& opt) override {
    const bool f = Pf_.improve(it, opt), g = Pig_.improve(it, opt), o = Po_.improve(it, opt);
    return f || g || o;
  }
  void each_plane(const typename Cell<T>::PlaneVisit& f) override {
    Pf_.each_work(f);
    Pig_.each_work(f);
    Po_.each_work(f);
  }

 private:
  // rounding="sound": the charge weights of Λ_h through P^o (over (c_t, y^o)) at step t into
  // w; aw (the affine step's weights, when the pass folds its constant): gate o's too
  void po_weights(std::ptrdiff_t t, const T* aw, T* w) const {
    const std::ptrdiff_t s = s_;
    const PlaneSet<T>& Po = Po_.at(t);
    plane_charge(Po, cl_.row(t), cu_.row(t), yl_.row(t) + 3 * s, yu_.row(t) + 3 * s, s, cr_.rd.G, w, false);
    if (aw) fold_affine_charge(Po.bL.data(), Po.bU.data(), aw + 3 * s, s, w);
  }

  // rounding="sound": the charge weights of Λ_c through P^f (over (c_prev, y^f)) and P^ig
  // (over (y^g, y^i)) at step t into w; aw: gates f, g and i's too
  void pair_weights(std::ptrdiff_t t, const T* aw, T* w) const {
    const std::ptrdiff_t s = s_, p = prev_[t];
    const T* c_init = w_.c0 ? w_.c0 : zero_.data();
    const T* yl = yl_.row(t);
    const T* yu = yu_.row(t);
    const PlaneSet<T>& Pf = Pf_.at(t);
    const PlaneSet<T>& Pig = Pig_.at(t);
    plane_charge(Pf, p < 0 ? c_init : cl_.row(p), p < 0 ? c_init : cu_.row(p), yl + s, yu + s, s, cr_.rd.G, w, false);
    plane_charge(Pig, yl + 2 * s, yu + 2 * s, yl, yu, s, cr_.rd.G, w, true);
    if (aw) {  // gates f (P^f's y), g (P^ig's x), i (P^ig's y)
      fold_affine_charge(Pf.bL.data(), Pf.bU.data(), aw + s, s, w);
      fold_affine_charge(Pig.aL.data(), Pig.aU.data(), aw + 2 * s, s, w);
      fold_affine_charge(Pig.bL.data(), Pig.bU.data(), aw, s, w);
    }
  }

  DirectionWeights<T> w_;
  PlaneMethod planes_;
  std::ptrdiff_t s_;
  Mat<T> xb_, yl_, yu_, cl_, cu_;
  StepPlanes<T> Pf_, Pig_, Po_;
  Mat<T> Lh_, Lc_, Lc2_, G_;  // Λ on h_t, Λ on c_t (and its swap), gate coefficients
  std::vector<T> zero_, b_;   // zeros (no h0 / c0); optimized: the sweep's bias,
  Mat<T> sh_, sc_;            // its hidden and cell values per step,
  std::vector<T> y_;          // its gate pre-activations
  CellRounding<T> cr_;        // rounding="sound": Γ and the input's magnitudes,
  Mat<T> aw_;                 // the affine step's charge weights per step,
  std::vector<T> cw_, cw2_, mh_;  // scratch: the planes' weights (P^o, P^f + P^ig), |h_prev|
  std::vector<std::ptrdiff_t> prev_;  // the step before t in the chain's order (−1: none)
  std::optional<AffineF32<T>> f32_;   // rounding="sound32": the products in float32
  std::ptrdiff_t pre_r0_ = 0;         // the first row of an objective on y_t (its setup)
  BlockSweep<T> bs_;                  // optimized: a block's sweep
};

}  // namespace pq
