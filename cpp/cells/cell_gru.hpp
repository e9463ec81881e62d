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
#pragma once
#include <algorithm>
#include <utility>
#include <vector>
#include "../gru_shared_z.hpp"
#include "cell_rnn.hpp"

namespace pq {

template <class T>
class GruCell final : public Cell<T> {
 public:
  GruCell(const DirectionWeights<T>& w, const PassOptions& opt, std::ptrdiff_t Tn, std::ptrdiff_t Rmax,
          const MatView<const T>* x)
      : w_(w), planes_(opt.planes), shared_z_(opt.shared_z), s_(w.w_hh.cols), xb4_(Tn, 4 * s_),
        gl_(Tn, 3 * s_), gu_(Tn, 3 * s_), ul_(Tn, s_), uu_(Tn, s_), hl_(Tn, s_), hu_(Tn, s_),
        Pr_(Tn), Pu_(Tn), Pz_(Tn), Lz_(shared_z_ ? Tn : 0), zw_(shared_z_ ? Tn : 0, 4 * s_),
        Lh_(Rmax, s_), Lh2_(Rmax, s_), G4_(Rmax, 4 * s_), wl_(s_), wu_(s_), zero_(s_, T(0)) {
    const std::ptrdiff_t s = s_, n = w.w_ih.cols;
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
    // 1. gates [y^r; y^z; v] (u block zero)
    bd.bound(3 * s, Entry::Pre, t, [&](std::ptrdiff_t r0, std::ptrdiff_t R) {
      set_signed_identity_rows(top_rows(G4_, R), r0, R, 3 * s, 0);
    }, gl, gu);
    // 2. P^r over (v_t, y^r_t)
    Pr_[t].compute(Surface::XSigmoid, planes_, gl + 2 * s, gu + 2 * s, gl, gu, s);
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
      Lz_[t].compute(Activation::Sigmoid, gl + s, gu + s, s);
      shared_z_boxes(gl + s, gu + s, s, zw, zw + s, zw + 2 * s, zw + 3 * s);
      Pu_[t].compute(Surface::TanhLinear, planes_, ul_.row(t), uu_.row(t), zw + 2 * s, zw + 3 * s, s);
      Pz_[t].compute(Surface::Bilinear, planes_, hpl, hpu, zw, zw + s, s);
    } else {
      for (std::ptrdiff_t i = 0; i < s; ++i) {
        wl_[i] = -gu[s + i];
        wu_[i] = -gl[s + i];
      }
      Pu_[t].compute(Surface::TanhSigmoid, planes_, ul_.row(t), uu_.row(t), wl_.data(), wu_.data(), s);
      Pz_[t].compute(Surface::XSigmoid, planes_, hpl, hpu, gl + s, gu + s, s);
    }
    // 5. h_t: read by the next step's P^z (the chain's last only for the states)
    if (!last || bd.want_states())
      bd.bound(s, Entry::Hidden, t, [&](std::ptrdiff_t r0, std::ptrdiff_t R) {
        set_signed_identity_rows(top_rows(Lh_, R), r0, R, s, 0);
      }, hl_.row(t), hu_.row(t));
  }

  void carry(Entry entry, std::ptrdiff_t t, std::ptrdiff_t R, InSink<T> in, T* d) override {
    if (entry == Entry::Pre) return through_inputs(t, R, false, in, d);
    if (entry == Entry::U) return u_node(t, R, false, in, d);
    const MatView<const T> L = cview(top_rows(Lh_, R));
    if (shared_z_) {
      pass_shared_z(L, Pu_[t], Pz_[t], Lz_[t], blk(R, 3), top_rows(Lh2_, R), blk(R, 1), d);
    } else {
      // P^u over (u, −y^z): Λ_u = λ a_u, Λ_yz = −λ b_u; P^z over (h_prev, y^z): Λ_h' = λ a_z, Λ_yz += λ b_z
      pass_plane<false, false>(L, Pu_[t], blk(R, 3), blk(R, 1), T(-1), d);
      pass_plane<false, true>(L, Pz_[t], top_rows(Lh2_, R), blk(R, 1), T(1), d);
    }
    u_node(t, R, true, in, d);
  }

  void add_top(MatView<const T> top, std::ptrdiff_t R, bool first) override {
    copy_or_add(top, top_rows(Lh_, R), !first);
  }

  void initial(std::ptrdiff_t R, T* d) override {
    if (w_.h0) add_rowdots(cview(top_rows(Lh_, R)), w_.h0, d);
  }

  void states(std::vector<StateBounds<T>>& out, const std::string& prefix) override {
    out.push_back({prefix + "gates", gl_, gu_});
    out.push_back({prefix + "u", ul_, uu_});
    out.push_back({prefix + "hidden", hl_, hu_});
  }

 private:
  MatView<T> blk(std::ptrdiff_t R, std::ptrdiff_t j) { return block(top_rows(G4_, R), 0, R, j * s_, s_); }

  // G4 on step t's affine inputs: constants (+ the input), and Λ on h_prev (+)= [Λ_yr Λ_yz Λ_v] W_hh
  // into Lh2, which then becomes Lh.
  void through_inputs(std::ptrdiff_t t, std::ptrdiff_t R, bool acc_h, InSink<T> in, T* d) {
    const std::ptrdiff_t s = s_, n = w_.w_ih.cols;
    const MatView<const T> G = cview(top_rows(G4_, R));
    add_rowdots(G, xb4_.row(t), d);
    if (in.on()) {
      gemm(block(G, 0, R, 0, 2 * s), block(w_.w_ih, 0, 2 * s, 0, n), in.dst, in.acc);
      gemm(block(G, 0, R, 3 * s, s), block(w_.w_ih, 2 * s, s, 0, n), in.dst, true);
    }
    gemm(block(G, 0, R, 0, 3 * s), w_.w_hh, top_rows(Lh2_, R), acc_h);
    std::swap(Lh_, Lh2_);
  }

  // Λ_u on u_t: P^r (Λ_v = λ a_r, Λ_yr = λ b_r), then the inputs.
  void u_node(std::ptrdiff_t t, std::ptrdiff_t R, bool acc_h, InSink<T> in, T* d) {
    pass_plane<false, false>(cview(blk(R, 3)), Pr_[t], blk(R, 2), blk(R, 0), T(1), d);
    through_inputs(t, R, acc_h, in, d);
  }

  DirectionWeights<T> w_;
  PlaneMethod planes_;
  bool shared_z_;
  std::ptrdiff_t s_;
  Mat<T> xb4_, gl_, gu_, ul_, uu_, hl_, hu_;
  std::vector<PlaneSet<T>> Pr_, Pu_, Pz_;
  std::vector<LineSet<T>> Lz_;
  Mat<T> zw_;                 // shared z: per step [zl | zu | wl | wu]
  Mat<T> Lh_, Lh2_, G4_;      // Λ on h_t (and its swap), the four coefficient blocks
  std::vector<T> wl_, wu_, zero_;
};

}  // namespace pq
