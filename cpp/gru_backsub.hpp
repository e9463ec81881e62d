// Back-substitution through time for the GRU (ALGORITHM.md §4 "GRU",
// RECURRENCES.md §4 GRU). PyTorch gates r, z, n with b_hn inside the reset product:
//   g_t = [y^r; y^z; v] = [W_ir x + W_hr h + b_ir + b_hr; W_iz x + W_hz h + b_iz + b_hz; W_hn h + b_hn]
//   u_t = W_in x_t + b_in + F2(v_t, y^r_t)                     (P^r)
//   h_t = F1(u_t, −y^z_t) + F2(h_{t-1}, y^z_t)                 (P^u, P^z; 1−σ(y) = σ(−y))
// or, with net.shared_z (RECURRENCES.md §4 "GRU, shared z", gru_shared_z.hpp),
//   h_t = F3(u_t, w_t) + F4(h_{t-1}, z_t), z = σ(y^z) by lines L^z, w = 1 − z  (P^u, P^z, L^z).
// Per step, forward order: gate bounds, P^r, u bounds (objective entering at u_t),
// P^u and P^z (and L^z), hidden bounds (objective [I; −I] on h_t, a full back-substitution).
// The stacked coefficient buffer is G4 = [Λ_yr | Λ_yz | Λ_v | Λ_u] (R x 4s): its first
// three blocks times W_hh give Λ_{h,t-1}; [Λ_yr, Λ_yz] W_ih[r,z] + Λ_u W_in give A_t.
// net.opt.iters > 0 (planes "optimized", shared z): per margin row, the slopes of the row's
// own copies of P^r, P^u, P^z are optimised as for the LSTM (optim_planes.hpp); the gradient
// comes from a forward sweep of the relaxed GRU at the worst-case input (gru_optim.hpp).
// Code indexes steps from 0; h0 is the state before step 0.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>
#include "bound_state.hpp"
#include "gru_optim.hpp"
#include "gru_shared_z.hpp"
#include "linear_form.hpp"
#include "matmul.hpp"
#include "sign_rule.hpp"

namespace pq {

template <class T>
BoundResult<T> gru_bounds(const GruNet<T>& net, const PassCommon<T>& pc) {
  const std::ptrdiff_t s = net.w_hh.cols, n = net.w_ih.cols, s3 = 3 * s, s4 = 4 * s;
  const std::ptrdiff_t Tn = pc.ball.x.rows, K = pc.spec_w.rows;
  const std::ptrdiff_t Rmax = std::max(2 * s3, 2 * K);
  const InputBall<T>& ball = pc.ball;

  // Clean input of the four coefficient blocks at step k (so d += G4 · xb4_k):
  // [W_ir x̂ + b_ir + b_hr; W_iz x̂ + b_iz + b_hz; b_hn; W_in x̂ + b_in].
  Mat<T> xb4(Tn, s4);
  for (std::ptrdiff_t k = 0; k < Tn; ++k) {
    T* r = xb4.row(k);
    for (std::ptrdiff_t i = 0; i < 2 * s; ++i) r[i] = net.b_ih[i] + net.b_hh[i];
    for (std::ptrdiff_t i = 0; i < s; ++i) {
      r[2 * s + i] = net.b_hh[2 * s + i];
      r[3 * s + i] = net.b_ih[2 * s + i];
    }
    add_rowdots(block(net.w_ih, 0, 2 * s, 0, n), ball.x.row(k), r);
    add_rowdots(block(net.w_ih, 2 * s, s, 0, n), ball.x.row(k), r + 3 * s);
  }

  Mat<T> gl(Tn, s3), gu(Tn, s3), ul(Tn, s), uu(Tn, s), hl(Tn, s), hu(Tn, s);
  std::vector<PlaneSet<T>> Pr(Tn), Pu(Tn), Pz(Tn);
  std::vector<LineSet<T>> Lz(net.shared_z ? Tn : 0);
  Mat<T> zwb(net.shared_z ? Tn : 0, 4 * s);  // shared z: per step [zl | zu | wl | wu]
  Mat<T> Lh(Rmax, s), Lh2(Rmax, s), G4(Rmax, s4), A(Rmax, n);
  std::vector<T> d(static_cast<size_t>(Rmax)), wl(s), wu(s);

  auto blk = [&](std::ptrdiff_t R, std::ptrdiff_t j) { return block(top_rows(G4, R), 0, R, j * s, s); };
  // G4 on step k's affine inputs: constant + frame k, and Λ_{h,k-1} (+)= [Λ_yr Λ_yz Λ_v] W_hh
  // into Lh2, which then becomes Lh.
  auto through_inputs = [&](std::ptrdiff_t k, std::ptrdiff_t R, bool acc_h) {
    MatView<const T> Gv = cview(top_rows(G4, R));
    add_rowdots(Gv, xb4.row(k), d.data());
    if (ball.moves(k)) {
      MatView<T> Av = top_rows(A, R);
      gemm(block(Gv, 0, R, 0, 2 * s), block(net.w_ih, 0, 2 * s, 0, n), Av, false);
      gemm(block(Gv, 0, R, 3 * s, s), block(net.w_ih, 2 * s, s, 0, n), Av, true);
      subtract_ball_radius(cview(Av), ball.eps, ball.q, d.data());
    }
    gemm(block(Gv, 0, R, 0, s3), net.w_hh, top_rows(Lh2, R), acc_h);
    std::swap(Lh, Lh2);
  };
  // Λ_u in the u block on u_k: P^r (Λ_v = λ a_r, Λ_yr = λ b_r), then the inputs.
  auto u_node = [&](std::ptrdiff_t k, std::ptrdiff_t R, bool acc_h, const PlaneSet<T>& pr) {
    pass_plane<false, false>(cview(blk(R, 3)), pr, blk(R, 2), blk(R, 0), T(1), d.data());
    through_inputs(k, R, acc_h);
  };
  // Λ in Lh on h_{k_top}: full steps k_top..0, then h0 into the constant. The planes are
  // Pr/Pu/Pz unless a row's own copies are given (optimized planes, R = 1); rec (R = 1)
  // records per step the coefficients met at h_k and at u_k, and A_k (gru_optim.hpp).
  auto backward = [&](std::ptrdiff_t k_top, std::ptrdiff_t R, const PlaneSet<T>* const* own = nullptr,
                      GruRec<T>* rec = nullptr) {
    for (std::ptrdiff_t k = k_top; k >= 0; --k) {
      const PlaneSet<T>& pr = own ? *own[3 * k] : Pr[k];
      const PlaneSet<T>& pu = own ? *own[3 * k + 1] : Pu[k];
      const PlaneSet<T>& pz = own ? *own[3 * k + 2] : Pz[k];
      MatView<const T> L = cview(top_rows(Lh, R));
      if (rec) std::copy(Lh.row(0), Lh.row(0) + s, rec->vh.row(k));
      if (net.shared_z) {
        // P^u over (u, w), P^z over (h_{k-1}, z), w = 1 − z merged on z, L^z into y^z
        pass_shared_z(L, pu, pz, Lz[k], blk(R, 3), top_rows(Lh2, R), blk(R, 1), d.data());
      } else {
        // P^u over (u, −y^z): Λ_u = λ a_u, Λ_yz = −λ b_u
        pass_plane<false, false>(L, pu, blk(R, 3), blk(R, 1), T(-1), d.data());
        // P^z over (h_{k-1}, y^z): Λ_{h,k-1} = λ a_z, Λ_yz += λ b_z
        pass_plane<false, true>(L, pz, top_rows(Lh2, R), blk(R, 1), T(1), d.data());
      }
      if (rec) std::copy(G4.row(0) + 3 * s, G4.row(0) + s4, rec->vu.row(k));
      u_node(k, R, true, pr);
      if (rec && ball.moves(k)) std::copy(A.row(0), A.row(0) + n, rec->a.row(k));
    }
    add_rowdots(cview(top_rows(Lh, R)), net.h0, d.data());
  };

  for (std::ptrdiff_t t = 0; t < Tn; ++t) {
    // 1. gates: [I; −I] on g_t = [y^r; y^z; v] (u block zero)
    const std::ptrdiff_t Rg = 2 * s3;
    std::fill(d.begin(), d.begin() + Rg, T(0));
    set_stacked_identity(top_rows(G4, Rg), s3, 0);
    through_inputs(t, Rg, false);
    backward(t - 1, Rg);
    finish_stacked(d.data(), s3, gl.row(t), gu.row(t));
    // 2. P^r over (v_t, y^r_t)
    Pr[t].compute(Surface::XSigmoid, net.planes, gl.row(t) + 2 * s, gu.row(t) + 2 * s, gl.row(t),
                  gu.row(t), s);
    // 3. u: [I; −I] entering at u_t (the other blocks start at zero)
    const std::ptrdiff_t Ru = 2 * s;
    std::fill(d.begin(), d.begin() + Ru, T(0));
    set_stacked_identity(top_rows(G4, Ru), s, 3 * s);
    u_node(t, Ru, false, Pr[t]);
    backward(t - 1, Ru);
    finish_stacked(d.data(), s, ul.row(t), uu.row(t));
    // 4. P^u over (u_t, w_t = −y^z_t), P^z over (h_{t-1}, y^z_t); shared z: L^z over y^z_t,
    //    P^u over (u_t, w_t = 1 − z_t), P^z over (h_{t-1}, z_t)
    const T* hpl = t == 0 ? net.h0 : hl.row(t - 1);
    const T* hpu = t == 0 ? net.h0 : hu.row(t - 1);
    if (net.shared_z) {
      T* zw = zwb.row(t);
      Lz[t].compute(Activation::Sigmoid, gl.row(t) + s, gu.row(t) + s, s);
      shared_z_boxes(gl.row(t) + s, gu.row(t) + s, s, zw, zw + s, zw + 2 * s, zw + 3 * s);
      Pu[t].compute(Surface::TanhLinear, net.planes, ul.row(t), uu.row(t), zw + 2 * s, zw + 3 * s, s);
      Pz[t].compute(Surface::Bilinear, net.planes, hpl, hpu, zw, zw + s, s);
    } else {
      for (std::ptrdiff_t i = 0; i < s; ++i) {
        wl[i] = -gu(t, s + i);
        wu[i] = -gl(t, s + i);
      }
      Pu[t].compute(Surface::TanhSigmoid, net.planes, ul.row(t), uu.row(t), wl.data(), wu.data(), s);
      Pz[t].compute(Surface::XSigmoid, net.planes, hpl, hpu, gl.row(t) + s, gu.row(t) + s, s);
    }
    // 5. hidden: [I; −I] on h_t (the last step's only serves want_states)
    if (t + 1 < Tn || pc.want_states) {
      const std::ptrdiff_t Rh = 2 * s;
      std::fill(d.begin(), d.begin() + Rh, T(0));
      set_stacked_identity(top_rows(Lh, Rh), s, 0);
      backward(t, Rh);
      finish_stacked(d.data(), s, hl.row(t), hu.row(t));
    }
  }

  BoundResult<T> res;
  set_stacked_spec(pc.spec_w, pc.spec_b, top_rows(Lh, 2 * K), d.data());
  backward(Tn - 1, 2 * K);
  res.lower.resize(K);
  res.upper.resize(K);
  finish_stacked(d.data(), K, res.lower.data(), res.upper.data());

  if (net.shared_z && net.opt.iters > 0) {
    // Optimized planes: per margin row, its own copies of P^r, P^u, P^z (L^z fixed), gradient
    // ascent on the row's lower bound; every iterate is sound (exact offsets); the best kept.
    std::vector<PlaneBoxes<T>> bx(3 * Tn);
    for (std::ptrdiff_t k = 0; k < Tn; ++k) {
      const T* hpl = k == 0 ? net.h0 : hl.row(k - 1);
      const T* hpu = k == 0 ? net.h0 : hu.row(k - 1);
      const T* zw = zwb.row(k);
      bx[3 * k].set(Surface::XSigmoid, gl.row(k) + 2 * s, gu.row(k) + 2 * s, gl.row(k), gu.row(k), s);
      bx[3 * k + 1].set(Surface::TanhLinear, ul.row(k), uu.row(k), zw + 2 * s, zw + 3 * s, s);
      bx[3 * k + 2].set(Surface::Bilinear, hpl, hpu, zw, zw + s, s);
    }
    std::vector<OptPlaneSet<T>> init(3 * Tn);
    for (std::ptrdiff_t k = 0; k < Tn; ++k) {
      init[3 * k].init_from(Pr[k], bx[3 * k]);
      init[3 * k + 1].init_from(Pu[k], bx[3 * k + 1]);
      init[3 * k + 2].init_from(Pz[k], bx[3 * k + 2]);
    }
    std::vector<const PlaneSet<T>*> own(3 * Tn);
    GruRec<T> rec(Tn, s, n);
    GruSweep<T> sweep(net, Lz, s, n);
    const int its = net.opt.iters;
    Mat<T> trace(net.opt.trace ? K : 0, 2 * (its + 1) + 2);
    // Test hook (opt_trace): at a generic point near the row's start (every slope jittered by
    // 1e-3 relative, so that each offset's extreme is unique: at the volume-minimal start it is
    // not, and the sweep's gradient is then a supergradient only), |g|^2 and the finite
    // difference of the lower bound along g (a step of 1e-7 in slope space) into the trace.
    auto gradient_check = [&](std::ptrdiff_t r, const std::vector<OptPlaneSet<T>>& from) {
      auto lower_with = [&](std::vector<OptPlaneSet<T>>& planes, GruRec<T>* rc) {
        for (std::ptrdiff_t j = 0; j < 3 * Tn; ++j) own[j] = &planes[j].P;
        std::copy(pc.spec_w.row(r), pc.spec_w.row(r) + s, Lh.row(0));
        d[0] = pc.spec_b[r];
        backward(Tn - 1, 1, own.data(), rc);
        return d[0];
      };
      auto shift = [&](std::vector<OptPlaneSet<T>>& planes, auto&& delta) {
        for (std::ptrdiff_t j = 0; j < 3 * Tn; ++j)
          for (std::size_t i = 0; i < planes[j].P.aL.size(); ++i) {
            OptPlaneSet<T>& o = planes[j];
            o.P.aL[i] += delta(o.P.aL[i], o.gaL[i]); o.P.bL[i] += delta(o.P.bL[i], o.gbL[i]);
            o.P.aU[i] += delta(o.P.aU[i], o.gaU[i]); o.P.bU[i] += delta(o.P.bU[i], o.gbU[i]);
            o.refresh(bx[j], i, true);
            o.refresh(bx[j], i, false);
          }
      };
      std::vector<OptPlaneSet<T>> jit = from;
      unsigned long long st = 0x9E3779B97F4A7C15ull + static_cast<unsigned long long>(r);
      shift(jit, [&](T a, T) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        const T u = T(static_cast<double>(st >> 11) * 0x1.0p-53) * T(2) - T(1);
        return T(1e-3) * u * (T(1) + std::fabs(a));
      });
      const T L0 = lower_with(jit, &rec);
      for (auto& o : jit) o.zero_grad();
      sweep.run(ball, rec, jit, pc.spec_w.row(r), pc.spec_b[r]);
      T gg = T(0);
      for (const auto& o : jit)
        for (std::size_t i = 0; i < o.gaL.size(); ++i)
          gg += o.gaL[i] * o.gaL[i] + o.gbL[i] * o.gbL[i] + o.gaU[i] * o.gaU[i] + o.gbU[i] * o.gbU[i];
      const T h = gg > T(0) ? T(1e-7) / std::sqrt(gg) : T(0);
      shift(jit, [&](T, T g) { return h * g; });
      const T L1 = lower_with(jit, nullptr);
      trace(r, 2 * (its + 1)) = gg;
      trace(r, 2 * (its + 1) + 1) = h > T(0) ? (L1 - L0) / h : T(0);
      for (std::ptrdiff_t j = 0; j < 3 * Tn; ++j) own[j] = &from[j].P;
    };
    for (std::ptrdiff_t r = 0; r < K; ++r) {
      std::vector<OptPlaneSet<T>> op = init;
      for (std::ptrdiff_t j = 0; j < 3 * Tn; ++j) own[j] = &op[j].P;
      T best = -std::numeric_limits<T>::infinity();
      for (int it = 0; it <= its; ++it) {
        // the lower bound of row r with the row's planes (every iterate is sound)
        std::copy(pc.spec_w.row(r), pc.spec_w.row(r) + s, Lh.row(0));
        d[0] = pc.spec_b[r];
        backward(Tn - 1, 1, own.data(), &rec);
        best = std::max(best, d[0]);
        if (it == its && !net.opt.trace) break;
        // forward sweep at the worst-case input: values μ and (super)gradients
        for (auto& o : op) o.zero_grad();
        const T Ls = sweep.run(ball, rec, op, pc.spec_w.row(r), pc.spec_b[r]);
        if (net.opt.trace) { trace(r, 2 * it) = d[0]; trace(r, 2 * it + 1) = Ls; }
        if (net.opt.trace && it == 0) gradient_check(r, op);
        if (it == its) break;
        if (it < net.opt.br_iters)
          for (std::ptrdiff_t j = 0; j < 3 * Tn; ++j) op[j].tangent_response(bx[j]);
        else
          for (std::ptrdiff_t j = 0; j < 3 * Tn; ++j) op[j].adam_step(bx[j], it + 1 - net.opt.br_iters, T(net.opt.lr));
      }
      if (best > res.lower[r]) res.lower[r] = best;
    }
    // trace (tests): per row, (back-substituted L, forward-sweep L) per iteration, then
    // (|g|^2, finite-difference derivative of L along g) from gradient_check
    if (net.opt.trace) res.states.push_back({"opt_trace", trace, std::move(trace)});
  }

  if (pc.want_states) {
    res.states.push_back({"gates", std::move(gl), std::move(gu)});
    res.states.push_back({"u", std::move(ul), std::move(uu)});
    res.states.push_back({"hidden", std::move(hl), std::move(hu)});
  }
  return res;
}

}  // namespace pq
