// The GRU cell's verbs for the generic driver (ALGORITHM.md §4 "GRU"). PyTorch gates
// r, z, n with b_hn inside the reset product:
//   g_t = [y^r; y^z; v] = [W_ir a + W_hr h + b_ir + b_hr; W_iz a + W_hz h + b_iz + b_hz; W_hn h + b_hn]
//   u_t = W_in a_t + b_in + F2(v_t, y^r_t)                     (P^r)
//   h_t = F1(u_t, −y^z_t) + F2(h_prev, y^z_t)                  (P^u, P^z; 1−σ(y) = σ(−y))
// or, with shared z (RECURRENCES.md §4 "GRU, shared z", gru_shared_z.hpp),
//   h_t = F3(u_t, w_t) + F4(h_prev, z_t), z = σ(y^z) by lines L^z, w = 1 − z.
// Relaxing step t: gate bounds, P^r, u bounds, P^u and P^z (and L^z), hidden bounds
// (needed by the next step's P^z). The coefficient buffer is G4 = [Λ_yr | Λ_yz | Λ_v | Λ_u]:
// its first three blocks times W_hh give Λ on h_prev; [Λ_yr, Λ_yz] W_ih[r,z] + Λ_u W_in
// give the input's coefficients.
// planes="optimized" (§3b) implies shared z: P^r, P^u, P^z are StepPlanes and L^z StepLines
// (per-row copies); the sweep is g = W_hh h + W_ih[r,z] a + b_g, u = W_in a + b_in + P^r(v, y^r),
// z~ = L^z(y^z) (side by the merged coefficient μ), h' = P^u(u, 1 − z~) + P^z(h, z~).
#pragma once
#include <algorithm>
#include <optional>
#include <utility>
#include <vector>
#include "../gru_shared_z.hpp"
#include "cell_rnn.hpp"

namespace pq {

template <class T>
class GruCell final : public Cell<T> {
 public:
  GruCell(const DirectionWeights<T>& w, const PassOptions& opt, std::ptrdiff_t Tn, std::ptrdiff_t Rmax,
          const MatView<const T>* x, const CellRounding<T>& cr)
      : w_(w), planes_(opt.planes), shared_z_(opt.shared_z || opt.optimized()), s_(w.w_hh.cols),
        xb4_(Tn, 4 * s_), gl_(Tn, 3 * s_), gu_(Tn, 3 * s_), ul_(Tn, s_), uu_(Tn, s_), hl_(Tn, s_), hu_(Tn, s_),
        Pr_(Tn, s_, opt.optimized(), opt.opt.contacts()), Pu_(Tn, s_, opt.optimized(), opt.opt.contacts()),
        Pz_(Tn, s_, opt.optimized(), opt.opt.contacts()),
        Lz_(shared_z_ ? Tn : 0, s_, opt.optimized()), zw_(shared_z_ ? Tn : 0, 4 * s_), Lh_(Rmax, s_),
        Lh2_(Rmax, s_), G4_(Rmax, 4 * s_), wl_(s_), wu_(s_), zero_(s_, T(0)),
        sh_(opt.optimized() ? Tn : 0, s_), g_(3 * s_), u_(s_), zmu_(s_), zs_(s_), ws_(s_), cr_(cr),
        aw_(cr.rd.on() ? Tn : 0, 4 * s_),
        cw_(cr.rd.on() ? s_ : 0), cw2_(cr.rd.on() ? s_ : 0), mh_(cr.rd.on() ? s_ : 0),
        prev_(static_cast<std::size_t>(Tn), -1),
        hb_(static_cast<std::size_t>(Tn), char(0)) {
    const std::ptrdiff_t s = s_, n = w.w_ih.cols;
    if (cr.f32)  // G4 = [Λ_yr Λ_yz Λ_v Λ_u]: W_hh under the first three blocks, W_ih[r,z] and W_in
      f32_.emplace(Tn, Rmax, 4 * s, std::vector<ProductPiece<T>>{{0, w.w_hh}},
                   std::vector<ProductPiece<T>>{{0, block(w.w_ih, 0, 2 * s, 0, n)}, {3 * s, block(w.w_ih, 2 * s, s, 0, n)}});
    // |h_t| <= max(1, |h0|): h_t is a convex combination of tanh(u_t) and h_{t−1}
    hmag_ = T(1);
    if (w.h0)
      for (std::ptrdiff_t i = 0; i < s; ++i) hmag_ = std::max(hmag_, std::fabs(w.h0[i]));
    // clean constants of the four blocks: [W_ir x̂ + b_ir + b_hr; W_iz x̂ + b_iz + b_hz; b_hn; W_in x̂ + b_in]
    for (std::ptrdiff_t t = 0; t < Tn; ++t) {
      T* r = xb4_.row(t);
      for (std::ptrdiff_t i = 0; i < 2 * s; ++i) r[i] = w.b_ih[i] + w.b_hh[i];
      for (std::ptrdiff_t i = 0; i < s; ++i) {
        r[2 * s + i] = w.b_hh[2 * s + i];
        r[3 * s + i] = w.b_ih[2 * s + i];
      }
      if (x) {
        add_rowdots(block(w.w_ih, 0, 2 * s, 0, n), x->row(t), r);
        add_rowdots(block(w.w_ih, 2 * s, s, 0, n), x->row(t), r + 3 * s);
      }
    }
  }

  void relax(Bounder<T>& bd, std::ptrdiff_t t, std::ptrdiff_t prev, bool last) override {
    const std::ptrdiff_t s = s_;
    T* gl = gl_.row(t);
    T* gu = gu_.row(t);
    prev_[t] = prev;
    if (cr_.rd.on()) affine_weights(t, prev);
    // 1. gates [y^r; y^z; v] (u block zero)
    bd.bound(3 * s, Entry::Pre, t, [&](std::ptrdiff_t r0, std::ptrdiff_t) { pre_r0_ = r0; }, gl, gu);
    // 2. P^r over (v_t, y^r_t)
    Pr_.compute(t, Surface::XSigmoid, planes_, gl + 2 * s, gu + 2 * s, gl, gu, s);
    // 3. u_t (the other blocks zero)
    bd.bound(s, Entry::U, t, [&](std::ptrdiff_t r0, std::ptrdiff_t R) {
      set_signed_identity_rows(top_rows(G4_, R), r0, R, s, 3 * s);
    }, ul_.row(t), uu_.row(t));
    // 4. P^u over (u_t, −y^z_t), P^z over (h_prev, y^z_t); shared z: L^z, P^u over (u, 1 − z),
    //    P^z over (h_prev, z)
    const T* h_init = w_.h0 ? w_.h0 : zero_.data();
    const T* hpl = prev < 0 ? h_init : hl_.row(prev);
    const T* hpu = prev < 0 ? h_init : hu_.row(prev);
    if (shared_z_) {
      T* zw = zw_.row(t);
      Lz_.compute(t, Activation::Sigmoid, gl + s, gu + s, s);
      shared_z_boxes(gl + s, gu + s, s, zw, zw + s, zw + 2 * s, zw + 3 * s);
      Pu_.compute(t, Surface::TanhLinear, planes_, ul_.row(t), uu_.row(t), zw + 2 * s, zw + 3 * s, s);
      Pz_.compute(t, Surface::Bilinear, planes_, hpl, hpu, zw, zw + s, s);
    } else {
      for (std::ptrdiff_t i = 0; i < s; ++i) {
        wl_[i] = -gu[s + i];
        wu_[i] = -gl[s + i];
      }
      Pu_.compute(t, Surface::TanhSigmoid, planes_, ul_.row(t), uu_.row(t), wl_.data(), wu_.data(), s);
      Pz_.compute(t, Surface::XSigmoid, planes_, hpl, hpu, gl + s, gu + s, s);
    }
    // 5. h_t: read by the next step's P^z (the chain's last only for the states)
    hb_[t] = !last || bd.want_states();
    if (hb_[t])
      bd.bound(s, Entry::Hidden, t, [&](std::ptrdiff_t r0, std::ptrdiff_t R) {
        set_signed_identity_rows(top_rows(Lh_, R), r0, R, s, 0);
      }, hl_.row(t), hu_.row(t));
  }

  void carry(Entry entry, std::ptrdiff_t t, std::ptrdiff_t R, InSink<T> in, RowConsts<T> k) override {
    if (entry == Entry::Pre)  // W_ih's rows r, z reach the input; v = W_hn h + b_hn does not (cell_rnn.hpp)
      return carry_identity_rows(pre_r0_, R, 3 * s_, w_.w_hh, w_.w_ih, 2 * s_, xb4_.row(t),
                                 k.err ? aw_.row(t) : nullptr, top_rows(Lh_, R), in, k);
    // the planes write all of G4 (u entry: all but the identity on u): they take the affine
    // step's constant and charge too (ROUNDING.md §2), unless shared z or float32 products
    const bool fold = !shared_z_ && folds_affine(f32_);
    const T* xb = xb4_.row(t);
    const T* aw = k.err ? aw_.row(t) : nullptr;
    const MatView<const T> L = cview(top_rows(Lh_, R));
    if (entry == Entry::Hidden && !shared_z_ && !Pu_.optimized() && fused_passes()) {  // P^u, P^z, then P^r in one pass
      if (k.err) {
        hidden_weights(t, fold ? aw : nullptr, cw_.data());
        reset_weights(t, fold, cw2_.data());
      }
      pass_gru_hidden(L, Pu_.at(t), Pz_.at(t), Pr_.at(t),
                      GruHiddenOut<T>{top_rows(Lh2_, R), blk(R, 0), blk(R, 1), blk(R, 2), blk(R, 3)}, k.d, k.err,
                      fold ? GruHiddenFold<T>{xb + 3 * s_, xb + s_, xb + 2 * s_, xb} : GruHiddenFold<T>{},
                      cw_.data(), cw2_.data());
      return through_inputs(t, R, true, in, k, fold);
    }
    auto row = [&](std::ptrdiff_t r) { Pr_.set_row(r), Pu_.set_row(r), Pz_.set_row(r), Lz_.set_row(r); };
    block_or_rows(Pr_.by_rows(), R, k, row,
                  [&](std::ptrdiff_t r0, std::ptrdiff_t n, RowConsts<T> kr) { planes(entry, t, r0, n, kr, fold); });
    through_inputs(t, R, entry == Entry::Hidden, in, k, fold);
  }

  // Rows [r0, r0 + n) at step t (entered at h_t or u_t) through the relaxations into G4
  // (and Λ on h_prev, P^z's, into Lh2); k: those rows' constants; fold: as carry's.
  void planes(Entry entry, std::ptrdiff_t t, std::ptrdiff_t r0, std::ptrdiff_t n, RowConsts<T> k, bool fold) {
    const T* xb = xb4_.row(t);
    const T* aw = k.err ? aw_.row(t) : nullptr;
    if (entry == Entry::U) {
      if (fold) add_rowdots_and_abs(cview(blk(r0, n, 3)), xb + 3 * s_, k.d, aw ? aw + 3 * s_ : nullptr, k.err);
    } else {
      const MatView<const T> L = cview(row_block(Lh_, r0, n));
      Pu_.record(t, L);
      if (k.err) {
        hidden_weights(t, fold ? aw : nullptr, cw_.data());
        charge_rows(L, cw_.data(), k.err);
      }
      if (shared_z_) {
        pass_shared_z(L, Pu_.at(t), Pz_.at(t), Lz_.at(t), blk(r0, n, 3), row_block(Lh2_, r0, n), blk(r0, n, 1), k.d);
      } else {
        // P^u over (u, −y^z): Λ_u = λ a_u, Λ_yz = −λ b_u; P^z over (h_prev, y^z): Λ_h' = λ a_z, Λ_yz += λ b_z
        pass_plane<false, false>(L, Pu_.at(t), blk(r0, n, 3), blk(r0, n, 1), T(-1), k.d,
                                 fold ? PlaneFold<T>{xb + 3 * s_, nullptr} : PlaneFold<T>{});
        pass_plane<false, true>(L, Pz_.at(t), row_block(Lh2_, r0, n), blk(r0, n, 1), T(1), k.d,
                                fold ? PlaneFold<T>{nullptr, xb + s_} : PlaneFold<T>{});
      }
    }
    reset_node(t, r0, n, k, fold);
  }

  void add_top(MatView<const T> top, std::ptrdiff_t R, bool first) override {
    copy_or_add(top, top_rows(Lh_, R), !first);
  }

  void initial(std::ptrdiff_t R, RowConsts<T> k) override {
    if (w_.h0) add_rowdots_charged(cview(top_rows(Lh_, R)), w_.h0, cr_.rd, k);
  }

  // the settled bounds of h_t where the step computed them, else max(1, |h0|)
  void out_magnitude(std::ptrdiff_t t, T* m) const override {
    for (std::ptrdiff_t i = 0; i < s_; ++i)
      m[i] = hb_[t] ? std::min(hmag_, std::max(std::fabs(hl_(t, i)), std::fabs(hu_(t, i)))) : hmag_;
  }

  void states(std::vector<StateBounds<T>>& out, const std::string& prefix) override {
    out.push_back({prefix + "gates", gl_, gu_});
    out.push_back({prefix + "u", ul_, uu_});
    out.push_back({prefix + "hidden", hl_, hu_});
  }

  void own(bool on, bool grads) override {
    Pr_.own(on, grads);
    Pu_.own(on, grads);
    Pz_.own(on, grads);
    Lz_.own(on, grads);
  }
  void clear_record() override {
    Pr_.clear_record();
    Pu_.clear_record();
  }
  void keep_rows(std::ptrdiff_t rows) override {
    Pr_.keep_rows(rows);
    Pu_.keep_rows(rows);
    if (rows > 0) Pz_.forget_sweep(), Lz_.forget_sweep();
  }
  void take_row(std::ptrdiff_t r, std::ptrdiff_t rows) override {
    Pr_.take_row(r, rows);
    Pu_.take_row(r, rows);
  }

  // Shared z only (what "optimized" uses).
  void sweep(std::ptrdiff_t t, std::ptrdiff_t prev, const T* in, T* h) override {
    if (!Pr_.ready(t)) return;
    const std::ptrdiff_t s = s_, n = w_.w_ih.cols;
    const T* hp = sweep_state(sh_, prev, w_.h0, zero_);
    for (std::ptrdiff_t i = 0; i < 2 * s; ++i) g_[i] = w_.b_ih[i] + w_.b_hh[i];
    for (std::ptrdiff_t i = 0; i < s; ++i) {
      g_[2 * s + i] = w_.b_hh[2 * s + i];  // b_hn
      u_[i] = w_.b_ih[2 * s + i];          // b_in
    }
    add_rowdots(w_.w_hh, hp, g_.data());
    add_rowdots(block(w_.w_ih, 0, 2 * s, 0, n), in, g_.data());
    add_rowdots(block(w_.w_ih, 2 * s, s, 0, n), in, u_.data());
    Pr_.work(t).template sweep_values<true>(Pr_.recs(t), g_.data() + 2 * s, g_.data(), u_.data());
    if (!Pu_.ready(t)) return;  // an objective on u_t: P^u, P^z not fixed yet
    OptPlaneSet<T>& pu = Pu_.work(t);
    OptPlaneSet<T>& pz = Pz_.work(t);
    const T* v = Pu_.recs(t);
    // the merged coefficient on z and z itself (the block's kernel), then F₁(u, 1 − z) + F₂(h_{t−1}, z)
    shared_z_values(pu.P, pz.P, Lz_.work(t).P, v, g_.data() + s, s, zmu_.data(), zs_.data());
    Lz_.work(t).load_sweep(g_.data() + s, nullptr, zmu_.data());
    for (std::ptrdiff_t i = 0; i < s; ++i) ws_[i] = T(1) - zs_[i];
    T* o = sh_.row(t);
    pu.sweep_values(v, u_.data(), ws_.data(), o);
    pz.template sweep_values<true>(v, hp, zs_.data(), o);
    std::copy(o, o + s, h);
  }

  void sweep_block(std::ptrdiff_t t, std::ptrdiff_t prev, MatView<const T> in, MatView<T> h,
                   std::ptrdiff_t R) override {
    if (!Pr_.ready(t)) return;
    const std::ptrdiff_t s = s_, Tn = gl_.rows;
    Pr_.start_block_sweep(R);
    Pu_.start_block_sweep(R);
    Pz_.start_block_sweep(R);
    Lz_.start_block_sweep(R);
    MatView<T> gi = bs_.times_ih(w_, in, R);  // [W_ir; W_iz; W_in] a
    if (gh_.rows < R) gh_ = Mat<T>(R, 3 * s);
    MatView<T> gh = top_rows(gh_, R);         // W_hh h_prev
    zero_rows(gh);
    bs_.add_hh(w_, prev, R, gh);
    const PlaneSet<T>& pr = Pr_.shared(t);
    const bool out = Pu_.ready(t);  // an objective on u_t: P^u, P^z not fixed yet
    for (std::ptrdiff_t r = 0; r < R; ++r) {
      const T* a = gi.row(r);
      const T* b = gh.row(r);
      for (std::ptrdiff_t i = 0; i < 2 * s; ++i) g_[i] = a[i] + b[i] + w_.b_ih[i] + w_.b_hh[i];
      for (std::ptrdiff_t i = 0; i < s; ++i) g_[2 * s + i] = b[2 * s + i] + w_.b_hh[2 * s + i];  // v
      const T* kr = Pr_.kept(t, r, R);
      const T* vr = kr ? kr : zero_.data();
      const auto sr = Pr_.swept(t, r);
      std::copy(g_.data() + 2 * s, g_.data() + 3 * s, sr.x), std::copy(g_.data(), g_.data() + s, sr.y);
      std::copy(vr, vr + s, sr.v);
      plane_values(pr, vr, sr.x, sr.y, s, u_.data());  // r_t ⊙ (W_hn h + b_hn), then + W_in a + b_in
      for (std::ptrdiff_t i = 0; i < s; ++i) u_[i] = a[2 * s + i] + w_.b_ih[2 * s + i] + u_[i];
      if (!out) continue;
      const PlaneSet<T>& pu = Pu_.shared(t);
      const PlaneSet<T>& pz = Pz_.shared(t);
      const LineSet<T>& lz = Lz_.shared(t);
      const T* hp = bs_.h_before(prev, r, R, w_.h0, zero_);
      const T* ku = Pu_.kept(t, r, R);
      const T* v = ku ? ku : zero_.data();
      const auto su = Pu_.swept(t, r), sz = Pz_.swept(t, r), sl = Lz_.swept(t, r);
      std::copy(g_.data() + s, g_.data() + 2 * s, sl.x), std::fill(sl.y, sl.y + s, T(0));
      shared_z_values(pu, pz, lz, v, sl.x, s, sl.v, sz.y);  // the merged coefficient on z, then z
      for (std::ptrdiff_t i = 0; i < s; ++i) su.y[i] = T(1) - sz.y[i];
      std::copy(u_.data(), u_.data() + s, su.x), std::copy(v, v + s, su.v);
      std::copy(hp, hp + s, sz.x), std::copy(v, v + s, sz.v);
      T* o = bs_.h(t, r, Tn, R, s);
      plane_values(pu, v, su.x, su.y, s, o);  // F₁(u, 1 − z) + F₂(h_{t−1}, z)
      plane_values<T, true>(pz, v, sz.x, sz.y, s, o);
      std::copy(o, o + s, h.row(r));
    }
  }
  void take_sweep(std::ptrdiff_t r) override {
    Pr_.take_sweep(r);
    Pu_.take_sweep(r);
    Pz_.take_sweep(r);
    Lz_.take_sweep(r);
  }
  void respond_rows(std::ptrdiff_t first, std::ptrdiff_t n, const OptSettings& opt) override {
    Pr_.respond_rows(first, n, opt), Pu_.respond_rows(first, n, opt), Pz_.respond_rows(first, n, opt),
        Lz_.respond_rows(first, n, opt);
  }
  void use_rows(bool on) override { Pr_.use_rows(on), Pu_.use_rows(on), Pz_.use_rows(on), Lz_.use_rows(on); }

  bool improve(int it, const OptSettings& opt) override {
    const bool r = Pr_.improve(it, opt), u = Pu_.improve(it, opt);
    Pz_.improve(it, opt);
    Lz_.improve(it, opt);
    return r || u;
  }
  void each_plane(const typename Cell<T>::PlaneVisit& f) override {
    Pr_.each_work(f);
    Pu_.each_work(f);
    Pz_.each_work(f);
  }

 private:
  MatView<T> blk(std::ptrdiff_t R, std::ptrdiff_t j) { return block(top_rows(G4_, R), 0, R, j * s_, s_); }
  // block j of rows [r0, r0 + n) of G4
  MatView<T> blk(std::ptrdiff_t r0, std::ptrdiff_t n, std::ptrdiff_t j) {
    return block(row_block(G4_, r0, n), 0, n, j * s_, s_);
  }

  // G4 on step t's affine inputs: constants (+ the input), and Λ on h_prev (+)= [Λ_yr Λ_yz Λ_v] W_hh
  // into Lh2, which then becomes Lh.
  // folded: the passes that wrote G4 took its constant and charge already.
  void through_inputs(std::ptrdiff_t t, std::ptrdiff_t R, bool acc_h, InSink<T> in, RowConsts<T> k, bool folded) {
    const std::ptrdiff_t s = s_, n = w_.w_ih.cols;
    const MatView<const T> G = cview(top_rows(G4_, R));
    if (!folded &&
        affine_constant(G, t, xb4_.row(t), k.err ? aw_.row(t) : nullptr, f32_, top_rows(Lh2_, R), acc_h, in, k))
      return std::swap(Lh_, Lh2_);
    if (in.on()) {
      gemm(block(G, 0, R, 0, 2 * s), block(w_.w_ih, 0, 2 * s, 0, n), in.dst, in.acc);
      gemm(block(G, 0, R, 3 * s, s), block(w_.w_ih, 2 * s, s, 0, n), in.dst, true);
    }
    gemm(block(G, 0, R, 0, 3 * s), w_.w_hh, top_rows(Lh2_, R), acc_h);
    std::swap(Lh_, Lh2_);
  }

  // Rows [r0, r0 + n) of Λ_u on u_t through P^r (Λ_v = λ a_r, Λ_yr = λ b_r); fold: as carry's.
  void reset_node(std::ptrdiff_t t, std::ptrdiff_t r0, std::ptrdiff_t n, RowConsts<T> k, bool fold) {
    const std::ptrdiff_t s = s_;
    const PlaneSet<T>& Pr = Pr_.at(t);
    const T* xb = xb4_.row(t);
    const MatView<const T> Lu = cview(blk(r0, n, 3));
    Pr_.record(t, Lu);
    if (k.err) {
      reset_weights(t, fold, cw_.data());
      charge_rows(Lu, cw_.data(), k.err);
    }
    pass_plane<false, false>(Lu, Pr, blk(r0, n, 2), blk(r0, n, 0), T(1), k.d,
                             fold ? PlaneFold<T>{xb + 2 * s, xb} : PlaneFold<T>{});
  }

  // rounding="sound" (rounding.hpp): the affine step's weights over G4 = [Λ_yr | Λ_yz | Λ_v | Λ_u]
  // (cell_rnn.hpp's affine_charge, block by block: W_hh under the first three, W_ih[r,z] under
  // the first two, W_in under u; the clean constants' biases)
  void affine_weights(std::ptrdiff_t t, std::ptrdiff_t prev) {
    const std::ptrdiff_t s = s_, n = w_.w_ih.cols;
    const T G = cr_.rd.G;
    const T* in = cr_.in_mag->row(t);
    T* w = aw_.row(t);
    prev_magnitude<T>(*this, prev, w_.h0, s, mh_.data());
    abs_matvec(w_.w_hh, mh_.data(), G, w, false);
    abs_matvec(block(w_.w_ih, 0, 2 * s, 0, n), in, G, w, true);
    abs_matvec(block(w_.w_ih, 2 * s, s, 0, n), in, G, w + 3 * s, false);
    const T* xb = xb4_.row(t);
    for (std::ptrdiff_t i = 0; i < 2 * s; ++i) w[i] += G * (std::fabs(w_.b_ih[i]) + std::fabs(w_.b_hh[i]));
    for (std::ptrdiff_t i = 0; i < s; ++i) {
      w[2 * s + i] += G * std::fabs(w_.b_hh[2 * s + i]);
      w[3 * s + i] += G * std::fabs(w_.b_ih[2 * s + i]);
    }
    for (std::ptrdiff_t i = 0; i < 4 * s; ++i) w[i] += G * std::fabs(xb[i]);
    if (f32_) f32_->relax(t, w, mh_.data(), in);
  }

  // rounding="sound": Λ on h_t through P^u and P^z (or, shared z, P^u, P^z and the lines L^z of
  // z: the merged coefficient μ = λ b_z − λ b_u on z in [0, 1] is itself computed, |μ| <=
  // |λ|(|b_z| + |b_u|)(1 + u), then μ α on y^z and μ β; ROUNDING.md §2)
  // aw (the affine step's weights, when the pass folds its constant): their charge too, on
  // Λ_u (P^u's a) and on Λ_yz (P^u's and P^z's b, whose sum it holds).
  void hidden_weights(std::ptrdiff_t t, const T* aw, T* w) const {
    const std::ptrdiff_t s = s_, p = prev_[t];
    const T G = cr_.rd.G;
    const T* h_init = w_.h0 ? w_.h0 : zero_.data();
    const T* hpl = p < 0 ? h_init : hl_.row(p);
    const T* hpu = p < 0 ? h_init : hu_.row(p);
    const T* yl = gl_.row(t) + s;
    const T* yu = gu_.row(t) + s;
    if (!shared_z_) {
      plane_charge(Pu_.at(t), ul_.row(t), uu_.row(t), yl, yu, s, G, w, false);
      plane_charge(Pz_.at(t), hpl, hpu, yl, yu, s, G, w, true);
      if (aw) {
        const PlaneSet<T>& Pu = Pu_.at(t);
        const PlaneSet<T>& Pz = Pz_.at(t);
        fold_affine_charge(Pu.aL.data(), Pu.aU.data(), aw + 3 * s, s, w);
        fold_affine_charge(Pu.bL.data(), Pu.bU.data(), aw + s, s, w);
        fold_affine_charge(Pz.bL.data(), Pz.bU.data(), aw + s, s, w);
      }
    } else {
      const PlaneSet<T>& Pu = Pu_.at(t);
      const PlaneSet<T>& Pm = Pz_.at(t);
      const LineSet<T>& lz = Lz_.at(t);
      const T* zw = zw_.row(t);
      for (std::ptrdiff_t i = 0; i < s; ++i) {
        const T mu = std::max(std::fabs(ul_(t, i)), std::fabs(uu_(t, i)));
        const T mh = std::max(std::fabs(hpl[i]), std::fabs(hpu[i]));
        const T mz = std::max(std::fabs(zw[i]), std::fabs(zw[s + i]));
        const T my = std::max(std::fabs(yl[i]), std::fabs(yu[i]));
        const T bu = std::max(std::fabs(Pu.bL[i]), std::fabs(Pu.bU[i]));
        const T bm = std::max(std::fabs(Pm.bL[i]), std::fabs(Pm.bU[i]));
        const T az = std::max(std::fabs(lz.al[i]), std::fabs(lz.au[i]));
        const T bz = std::max(std::fabs(lz.bl[i]), std::fabs(lz.bu[i]));
        w[i] = G * (std::max(std::fabs(Pu.aL[i]), std::fabs(Pu.aU[i])) * mu +
                      std::max(std::fabs(Pm.aL[i]), std::fabs(Pm.aU[i])) * mh +
                      std::max(std::fabs(Pu.cL[i]), std::fabs(Pu.cU[i])) +
                      std::max(std::fabs(Pm.cL[i]), std::fabs(Pm.cU[i])) + bu +
                      (bu + bm) * (mz + T(2) * (az * my + bz)));
      }
    }
  }

  // rounding="sound": Λ_u on u_t through P^r (over (v, y^r)) at step t into w; fold: the
  // affine step's weights of gates v and y^r too
  void reset_weights(std::ptrdiff_t t, bool fold, T* w) const {
    const std::ptrdiff_t s = s_;
    const PlaneSet<T>& Pr = Pr_.at(t);
    const T* gl = gl_.row(t);
    const T* gu = gu_.row(t);
    plane_charge(Pr, gl + 2 * s, gu + 2 * s, gl, gu, s, cr_.rd.G, w, false);
    if (fold) {
      fold_affine_charge(Pr.aL.data(), Pr.aU.data(), aw_.row(t) + 2 * s, s, w);
      fold_affine_charge(Pr.bL.data(), Pr.bU.data(), aw_.row(t), s, w);
    }
  }


  DirectionWeights<T> w_;
  PlaneMethod planes_;
  bool shared_z_;
  std::ptrdiff_t s_;
  Mat<T> xb4_, gl_, gu_, ul_, uu_, hl_, hu_;
  StepPlanes<T> Pr_, Pu_, Pz_;
  StepLines<T> Lz_;
  Mat<T> zw_;                 // shared z: per step [zl | zu | wl | wu]
  Mat<T> Lh_, Lh2_, G4_;      // Λ on h_t (and its swap), the four coefficient blocks
  std::vector<T> wl_, wu_, zero_;
  Mat<T> sh_;                 // optimized: the sweep's hidden values per step,
  std::vector<T> g_, u_;      // its gates [y^r; y^z; v] and u,
  std::vector<T> zmu_, zs_, ws_;  // the merged coefficient on z, z and w = 1 − z
  BlockSweep<T> bs_;          // a block's sweep,
  Mat<T> gh_;                 // its W_hh h_prev
  CellRounding<T> cr_;        // rounding="sound": Γ and the input's magnitudes,
  Mat<T> aw_;                 // the affine step's charge weights per step,
  std::vector<T> cw_, cw2_, mh_;  // scratch: the relaxations' weights (h_t's, P^r's), |h_prev|
  std::vector<std::ptrdiff_t> prev_;  // the step before t in the chain's order (−1: none)
  std::vector<char> hb_;              // step t computed its hidden bounds (hl_, hu_)
  std::optional<AffineF32<T>> f32_;   // rounding="sound32": the products in float32
  T hmag_ = T(1);             // max(1, |h0|): bounds every |h_t|
  std::ptrdiff_t pre_r0_ = 0;  // the first row of an objective on the gates (its setup)
};

}  // namespace pq
