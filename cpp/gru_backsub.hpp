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
#include "optim_lines.hpp"
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
  // Pr/Pu/Pz and L^z unless a row's own copies are given (optimized, R = 1); rec (R = 1)
  // records per step the coefficients met at h_k and at u_k, and A_k (gru_optim.hpp).
  auto backward = [&](std::ptrdiff_t k_top, std::ptrdiff_t R, const PlaneSet<T>* const* own = nullptr,
                      GruRec<T>* rec = nullptr, const LineSet<T>* const* own_l = nullptr) {
    for (std::ptrdiff_t k = k_top; k >= 0; --k) {
      const PlaneSet<T>& pr = own ? *own[3 * k] : Pr[k];
      const PlaneSet<T>& pu = own ? *own[3 * k + 1] : Pu[k];
      const PlaneSet<T>& pz = own ? *own[3 * k + 2] : Pz[k];
      MatView<const T> L = cview(top_rows(Lh, R));
      if (rec) std::copy(Lh.row(0), Lh.row(0) + s, rec->vh.row(k));
      if (net.shared_z) {
        // P^u over (u, w), P^z over (h_{k-1}, z), w = 1 − z merged on z, L^z into y^z
        pass_shared_z(L, pu, pz, own_l ? *own_l[k] : Lz[k], blk(R, 3), top_rows(Lh2, R), blk(R, 1), d.data());
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

  // ---- optimized planes (shared z; optim_planes.hpp, RECURRENCES.md §3b): per objective
  // row, its own copies of P^r, P^u, P^z and of the z-lines L^z with slopes chosen for that
  // row's lower bound (best responses, then Adam for planes); offsets stay exact, every
  // iterate is sound, the best kept. Objectives: a margin row (enters at h_{T-1}), ±e_i on
  // h_t, ±e_i on u_t, or ±e_j on the gates g_t. bx/init (planes) and zbx/init_l (z-lines)
  // hold each step's boxes and relaxations once its bounds are final.
  const bool optimize = net.shared_z && net.opt.iters > 0;
  std::vector<PlaneBoxes<T>> bx(optimize ? 3 * Tn : 0);
  std::vector<OptPlaneSet<T>> init(optimize ? 3 * Tn : 0), op;
  std::vector<const PlaneSet<T>*> own(optimize ? 3 * Tn : 0);
  std::vector<LineBoxes<T>> zbx(optimize ? Tn : 0);
  std::vector<OptLineSet<T>> init_l(optimize ? Tn : 0), op_l;
  std::vector<const LineSet<T>*> own_l(optimize ? Tn : 0);
  GruRec<T> rec(optimize ? Tn : 0, s, n);
  GruSweep<T> sweep(net, s, n);
  sweep.lines = &op_l;
  enum class Obj { Margin, Hidden, U, Gate };
  // Lower bound of objective (kind, step t, row obj, constant ob) with the planes in own;
  // rc records what the sweep needs.
  auto bound_with = [&](Obj kind, std::ptrdiff_t t, const T* obj, T ob, GruRec<T>* rc) {
    d[0] = ob;
    if (kind == Obj::Gate || kind == Obj::U) {
      std::fill(G4.row(0), G4.row(0) + s4, T(0));
      if (kind == Obj::Gate) {
        std::copy(obj, obj + s3, G4.row(0));
        through_inputs(t, 1, false);
      } else {
        std::copy(obj, obj + s, G4.row(0) + 3 * s);
        if (rc) std::copy(obj, obj + s, rc->vu.row(t));
        u_node(t, 1, false, *own[3 * t]);
        if (rc && ball.moves(t)) std::copy(A.row(0), A.row(0) + n, rc->a.row(t));
      }
      backward(t - 1, 1, own.data(), rc, own_l.data());
    } else {
      std::copy(obj, obj + s, Lh.row(0));
      backward(t, 1, own.data(), rc, own_l.data());
    }
    return d[0];
  };
  // planes met by an objective at step t: steps < t fully, plus P^r (u) or all three (h)
  auto layers_of = [&](Obj kind, std::ptrdiff_t t) {
    return kind == Obj::Gate ? 3 * t : kind == Obj::U ? 3 * t + 1 : 3 * (t + 1);
  };
  auto sweep_of = [&](Obj kind, std::ptrdiff_t t, std::vector<OptPlaneSet<T>>& planes, const T* obj, T ob) {
    if (kind == Obj::Gate) return sweep.run(ball, rec, planes, t, false, nullptr, T(0));
    if (kind == Obj::U) return sweep.run(ball, rec, planes, t, true, nullptr, T(0));
    return sweep.run(ball, rec, planes, t + 1, false, obj, ob);
  };
  Mat<T> trace(optimize && net.opt.trace ? K : 0, 2 * (net.opt.iters + 1) + 2);
  // Best lower bound of an objective; trace_row >= 0 (margins, opt_trace) records the
  // iterations and a gradient check in row trace_row of trace.
  auto opt_row = [&](Obj kind, std::ptrdiff_t t, const T* obj, T ob, std::ptrdiff_t trace_row = -1) {
    return optimize_row<T>(
        init, bx, layers_of(kind, t), kind == Obj::Margin ? net.opt.iters : net.opt.inter_iters, net.opt, op,
        own, [&] { return bound_with(kind, t, obj, ob, &rec); },
        [&](std::vector<OptPlaneSet<T>>& planes) { return sweep_of(kind, t, planes, obj, ob); },
        trace_row >= 0 ? trace.row(trace_row) : nullptr,
        ExtraLayers<OptLineSet<T>, LineBoxes<T>, LineSet<T>>{init_l, zbx, op_l, own_l,
                                                             kind == Obj::Gate || kind == Obj::U ? t : t + 1});
  };
  std::vector<T> unit(s3, T(0));
  const std::ptrdiff_t inter_from = optimize && net.opt.inter_iters > 0 ? Tn - net.opt.inter_steps : Tn;

  for (std::ptrdiff_t t = 0; t < Tn; ++t) {
    // 1. gates: [I; −I] on g_t = [y^r; y^z; v] (u block zero)
    const std::ptrdiff_t Rg = 2 * s3;
    std::fill(d.begin(), d.begin() + Rg, T(0));
    set_stacked_identity(top_rows(G4, Rg), s3, 0);
    through_inputs(t, Rg, false);
    backward(t - 1, Rg);
    finish_stacked(d.data(), s3, gl.row(t), gu.row(t));
    if (t >= inter_from && t > 0)
      refine_intervals(s3, gl.row(t), gu.row(t), unit, [&](const T* e) { return opt_row(Obj::Gate, t, e, T(0)); });
    // 2. P^r over (v_t, y^r_t)
    Pr[t].compute(Surface::XSigmoid, net.planes, gl.row(t) + 2 * s, gu.row(t) + 2 * s, gl.row(t),
                  gu.row(t), s);
    if (optimize) {
      bx[3 * t].set(Surface::XSigmoid, gl.row(t) + 2 * s, gu.row(t) + 2 * s, gl.row(t), gu.row(t), s);
      init[3 * t].init_from(Pr[t], bx[3 * t]);
    }
    // 3. u: [I; −I] entering at u_t (the other blocks start at zero)
    const std::ptrdiff_t Ru = 2 * s;
    std::fill(d.begin(), d.begin() + Ru, T(0));
    set_stacked_identity(top_rows(G4, Ru), s, 3 * s);
    u_node(t, Ru, false, Pr[t]);
    backward(t - 1, Ru);
    finish_stacked(d.data(), s, ul.row(t), uu.row(t));
    if (t >= inter_from)
      refine_intervals(s, ul.row(t), uu.row(t), unit, [&](const T* e) { return opt_row(Obj::U, t, e, T(0)); });
    // 4. P^u over (u_t, w_t = −y^z_t), P^z over (h_{t-1}, y^z_t); shared z: L^z over y^z_t,
    //    P^u over (u_t, w_t = 1 − z_t), P^z over (h_{t-1}, z_t)
    const T* hpl = t == 0 ? net.h0 : hl.row(t - 1);
    const T* hpu = t == 0 ? net.h0 : hu.row(t - 1);
    if (net.shared_z) {
      T* zw = zwb.row(t);
      Lz[t].compute(Activation::Sigmoid, gl.row(t) + s, gu.row(t) + s, s);
      if (optimize) {
        zbx[t].set(Activation::Sigmoid, gl.row(t) + s, gu.row(t) + s, s);
        init_l[t].init_from(Lz[t], zbx[t]);
      }
      shared_z_boxes(gl.row(t) + s, gu.row(t) + s, s, zw, zw + s, zw + 2 * s, zw + 3 * s);
      Pu[t].compute(Surface::TanhLinear, net.planes, ul.row(t), uu.row(t), zw + 2 * s, zw + 3 * s, s);
      Pz[t].compute(Surface::Bilinear, net.planes, hpl, hpu, zw, zw + s, s);
      if (optimize) {
        bx[3 * t + 1].set(Surface::TanhLinear, ul.row(t), uu.row(t), zw + 2 * s, zw + 3 * s, s);
        bx[3 * t + 2].set(Surface::Bilinear, hpl, hpu, zw, zw + s, s);
        init[3 * t + 1].init_from(Pu[t], bx[3 * t + 1]);
        init[3 * t + 2].init_from(Pz[t], bx[3 * t + 2]);
      }
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
      if (t >= inter_from)
      refine_intervals(s, hl.row(t), hu.row(t), unit, [&](const T* e) { return opt_row(Obj::Hidden, t, e, T(0)); });
    }
  }

  BoundResult<T> res;
  set_stacked_spec(pc.spec_w, pc.spec_b, top_rows(Lh, 2 * K), d.data());
  backward(Tn - 1, 2 * K);
  res.lower.resize(K);
  res.upper.resize(K);
  finish_stacked(d.data(), K, res.lower.data(), res.upper.data());

  if (optimize) {
    for (std::ptrdiff_t r = 0; r < K; ++r)
      res.lower[r] = std::max(res.lower[r], opt_row(Obj::Margin, Tn - 1, pc.spec_w.row(r), pc.spec_b[r],
                                                    net.opt.trace ? r : -1));
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
