// Back-substitution through time for the LSTM (ALGORITHM.md §4 "LSTM",
// RECURRENCES.md §4 LSTM). Gates stacked i, f, g, o:
//   y_t = W_ih x_t + W_hh h_{t-1} + b,
//   c_t = σ(y^f)·c_{t-1} + σ(y^i)·tanh(y^g) ≤/≥ P^f(c_{t-1}, y^f) + P^ig(y^g, y^i),
//   h_t = σ(y^o)·tanh(c_t)                 ≤/≥ P^o(c_t, y^o).
// Per step, forward order: gate bounds (objective [I; −I] on y_t), planes P^f and
// P^ig, cell bounds (objective [I; −I] entering at c_t, P^o unused), plane P^o.
// The backward state is (Λ_h, Λ_c); one product of the stacked gate coefficients
// G = [Λ_yi, Λ_yf, Λ_yg, Λ_yo] with W_hh (and one with W_ih) serves all four gates.
// Code indexes steps from 0; (h0, c0) is the state before step 0.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <cstddef>
#include <utility>
#include <vector>
#include "bound_state.hpp"
#include "linear_form.hpp"
#include "matmul.hpp"
#include "lstm_optim.hpp"
#include "optim_planes.hpp"
#include "sign_rule.hpp"

namespace pq {

template <class T>
BoundResult<T> lstm_bounds(const LstmNet<T>& net, const PassCommon<T>& pc) {
  const std::ptrdiff_t s = net.w_hh.cols, n = net.w_ih.cols, s4 = 4 * s;
  const std::ptrdiff_t Tn = pc.ball.x.rows, K = pc.spec_w.rows;
  const std::ptrdiff_t Rmax = std::max(2 * s4, 2 * K);
  const InputBall<T>& ball = pc.ball;

  Mat<T> xb = clean_inputs(net.w_ih, net.bias, ball);

  Mat<T> yl(Tn, s4), yu(Tn, s4), cl(Tn, s), cu(Tn, s);
  std::vector<PlaneSet<T>> Pf(Tn), Pig(Tn), Po(Tn);
  Mat<T> Lh(Rmax, s), Lc(Rmax, s), Lc2(Rmax, s), G(Rmax, s4), A(Rmax, n);
  std::vector<T> d(static_cast<size_t>(Rmax));
  // the affine part of step k for the top R rows of G (linear_form.hpp)
  auto affine = [&](std::ptrdiff_t k, std::ptrdiff_t R) {
    through_affine(cview(top_rows(G, R)), net.w_ih, net.w_hh, ball, k, xb.row(k), top_rows(A, R),
                   top_rows(Lh, R), d.data());
  };

  // (Λ_h, Λ_c) in (Lh, Lc) on (h_{k_top}, c_{k_top}); pass steps k_top..0, then the
  // initial state into the constant. skip_o: the objective enters at c_{k_top}.
  // The planes are Pf/Pig/Po unless a row's own copies are given (optimized planes, R = 1);
  // rec (R = 1) records, per step, the coefficients met by P^o and by the cell, and A_k.
  auto backward = [&](std::ptrdiff_t k_top, std::ptrdiff_t R, bool skip_o,
                      const PlaneSet<T>* const* own = nullptr, LstmRec<T>* rec = nullptr) {
    for (std::ptrdiff_t k = k_top; k >= 0; --k) {
      const PlaneSet<T>& pf = own ? *own[3 * k] : Pf[k];
      const PlaneSet<T>& pig = own ? *own[3 * k + 1] : Pig[k];
      const PlaneSet<T>* po = own ? own[3 * k + 2] : &Po[k];  // unread (maybe unset) if skipped
      MatView<T> Gv = top_rows(G, R);
      MatView<T> g_i = block(Gv, 0, R, 0, s), g_f = block(Gv, 0, R, s, s);
      MatView<T> g_g = block(Gv, 0, R, 2 * s, s), g_o = block(Gv, 0, R, 3 * s, s);
      if (rec) std::copy(Lh.row(0), Lh.row(0) + s, rec->vo.row(k));
      if (skip_o && k == k_top) {
        for (std::ptrdiff_t r = 0; r < R; ++r) std::fill(g_o.row(r), g_o.row(r) + s, T(0));
      } else {  // h_k = P^o(c_k, y^o_k): Λ_c += λ a_o, Λ_yo = λ b_o
        pass_plane<true, false>(cview(top_rows(Lh, R)), *po, top_rows(Lc, R), g_o, T(1),
                                d.data());
      }
      if (rec) std::copy(Lc.row(0), Lc.row(0) + s, rec->vc.row(k));
      // c_k = P^f(c_{k-1}, y^f) + P^ig(y^g, y^i), one sign decision per coefficient
      pass_plane_pair(cview(top_rows(Lc, R)), pf, pig, top_rows(Lc2, R), g_f, g_g, g_i,
                      d.data());
      affine(k, R);
      if (rec && ball.moves(k)) std::copy(A.row(0), A.row(0) + n, rec->a.row(k));
      std::swap(Lc, Lc2);
    }
    add_rowdots(cview(top_rows(Lh, R)), net.h0, d.data());
    add_rowdots(cview(top_rows(Lc, R)), net.c0, d.data());
  };
  auto zero_rows = [](Mat<T>& M, std::ptrdiff_t R) { std::fill(M.v.begin(), M.v.begin() + R * M.cols, T(0)); };

  // ---- optimized planes (optim_planes.hpp, RECURRENCES.md §3b): per objective row, the
  // slopes of that row's own copies of the planes are chosen for the row's lower bound;
  // offsets stay exact, so every iterate is sound and the best bound seen is kept.
  // Objectives: a margin row (enters at h_{T-1}), a cell neuron ±e_i (enters at c_t, P^o
  // unused) or a gate ±e_j (enters at y_t). bx/init hold each step's plane boxes and planes
  // once that step's bounds are final.
  const bool optimize = net.opt.iters > 0;
  std::vector<PlaneBoxes<T>> bx(optimize ? 3 * Tn : 0);
  std::vector<OptPlaneSet<T>> init(optimize ? 3 * Tn : 0), op;
  std::vector<const PlaneSet<T>*> own(optimize ? 3 * Tn : 0);
  LstmRec<T> rec(optimize ? Tn : 0, s, n);
  LstmSweep<T> sweep(net, s, n);
  enum class Obj { Margin, Cell, Gate };
  // lower bound of objective (kind, step t, row obj of width s or 4s, constant ob) with the
  // planes in own, recording for the sweep
  auto bound_with = [&](Obj kind, std::ptrdiff_t t, const T* obj, T ob) {
    d[0] = ob;
    if (kind == Obj::Gate) {  // Λ_c = 0; Λ_h (step t-1) from the gates' affine part
      std::copy(obj, obj + s4, G.row(0));
      std::fill(Lc.row(0), Lc.row(0) + s, T(0));
      affine(t, 1);
    } else {
      std::copy(obj, obj + s, (kind == Obj::Margin ? Lh : Lc).row(0));
      std::fill((kind == Obj::Margin ? Lc : Lh).row(0), (kind == Obj::Margin ? Lc : Lh).row(0) + s, T(0));
    }
    backward(kind == Obj::Gate ? t - 1 : t, 1, kind == Obj::Cell, own.data(), &rec);
    return d[0];
  };
  auto sweep_of = [&](Obj kind, std::ptrdiff_t t, std::vector<OptPlaneSet<T>>& planes, const T* obj, T ob) {
    if (kind == Obj::Gate) return sweep.run(ball, rec, planes, t, false, nullptr, T(0));
    return sweep.run(ball, rec, planes, kind == Obj::Cell ? t : t + 1, kind == Obj::Cell, obj, ob);
  };
  Mat<T> trace(optimize && net.opt.trace ? K : 0, 2 * (net.opt.iters + 1) + 2);
  // Best lower bound of an objective; trace_row >= 0 (margins, opt_trace) records the
  // iterations and a gradient check in row trace_row of trace.
  auto opt_row = [&](Obj kind, std::ptrdiff_t t, const T* obj, T ob, std::ptrdiff_t trace_row = -1) {
    // layers met: P^f, P^ig, P^o of the steps before t, then step t's (a cell: not its P^o)
    const std::ptrdiff_t layers = kind == Obj::Gate ? 3 * t : kind == Obj::Cell ? 3 * t + 2 : 3 * (t + 1);
    return optimize_row<T>(
        init, bx, layers, kind == Obj::Margin ? net.opt.iters : net.opt.inter_iters, net.opt, op, own,
        [&] { return bound_with(kind, t, obj, ob); },
        [&](std::vector<OptPlaneSet<T>>& planes) { return sweep_of(kind, t, planes, obj, ob); },
        trace_row >= 0 ? trace.row(trace_row) : nullptr);
  };
  std::vector<T> unit(s4, T(0));
  const std::ptrdiff_t inter_from = optimize && net.opt.inter_iters > 0 ? Tn - net.opt.inter_steps : Tn;

  for (std::ptrdiff_t t = 0; t < Tn; ++t) {
    // 1. gates: [I; −I] on y_t
    const std::ptrdiff_t Rg = 2 * s4;
    std::fill(d.begin(), d.begin() + Rg, T(0));
    set_stacked_identity(top_rows(G, Rg), s4, 0);
    affine(t, Rg);
    zero_rows(Lc, Rg);
    backward(t - 1, Rg, false);
    finish_stacked(d.data(), s4, yl.row(t), yu.row(t));
    if (t >= inter_from && t > 0)
      refine_intervals(s4, yl.row(t), yu.row(t), unit, [&](const T* e) { return opt_row(Obj::Gate, t, e, T(0)); });
    // 2. planes P^f over (c_{t-1}, y^f_t) and P^ig over (y^g_t, y^i_t)
    const T* cpl = t == 0 ? net.c0 : cl.row(t - 1);
    const T* cpu = t == 0 ? net.c0 : cu.row(t - 1);
    Pf[t].compute(Surface::XSigmoid, net.planes, cpl, cpu, yl.row(t) + s, yu.row(t) + s, s);
    Pig[t].compute(Surface::TanhSigmoid, net.planes, yl.row(t) + 2 * s, yu.row(t) + 2 * s,
                   yl.row(t), yu.row(t), s);
    if (optimize) {
      bx[3 * t].set(Surface::XSigmoid, cpl, cpu, yl.row(t) + s, yu.row(t) + s, s);
      bx[3 * t + 1].set(Surface::TanhSigmoid, yl.row(t) + 2 * s, yu.row(t) + 2 * s, yl.row(t), yu.row(t), s);
      init[3 * t].init_from(Pf[t], bx[3 * t]);
      init[3 * t + 1].init_from(Pig[t], bx[3 * t + 1]);
    }
    // 3. cell: [I; −I] entering at c_t
    const std::ptrdiff_t Rc = 2 * s;
    std::fill(d.begin(), d.begin() + Rc, T(0));
    set_stacked_identity(top_rows(Lc, Rc), s, 0);
    zero_rows(Lh, Rc);
    backward(t, Rc, true);
    finish_stacked(d.data(), s, cl.row(t), cu.row(t));
    if (t >= inter_from)
      refine_intervals(s, cl.row(t), cu.row(t), unit, [&](const T* e) { return opt_row(Obj::Cell, t, e, T(0)); });
    // 4. plane P^o over (c_t, y^o_t)
    Po[t].compute(Surface::TanhSigmoid, net.planes, cl.row(t), cu.row(t), yl.row(t) + 3 * s,
                  yu.row(t) + 3 * s, s);
    if (optimize) {
      bx[3 * t + 2].set(Surface::TanhSigmoid, cl.row(t), cu.row(t), yl.row(t) + 3 * s, yu.row(t) + 3 * s, s);
      init[3 * t + 2].init_from(Po[t], bx[3 * t + 2]);
    }
  }

  BoundResult<T> res;
  set_stacked_spec(pc.spec_w, pc.spec_b, top_rows(Lh, 2 * K), d.data());
  zero_rows(Lc, 2 * K);
  backward(Tn - 1, 2 * K, false);
  res.lower.resize(K);
  res.upper.resize(K);
  finish_stacked(d.data(), K, res.lower.data(), res.upper.data());
  // optimized: only the margins' lower bounds (what certification uses) are improved
  if (optimize) {
    for (std::ptrdiff_t r = 0; r < K; ++r)
      res.lower[r] = std::max(res.lower[r], opt_row(Obj::Margin, Tn - 1, pc.spec_w.row(r), pc.spec_b[r],
                                                    net.opt.trace ? r : -1));
    // opt_trace (tests): per margin row, (back-substituted L, forward-sweep L) per iteration,
    // then (|g|^2, finite-difference derivative of L along g) from gradient_check
    if (net.opt.trace) res.states.push_back({"opt_trace", trace, std::move(trace)});
  }

  if (pc.want_states) {
    // hidden: corner min/max of tanh(c)·σ(y^o) over the (c_t, y^o_t) box
    StateBounds<T> hid{"hidden", Mat<T>(Tn, s), Mat<T>(Tn, s)};
    for (std::ptrdiff_t k = 0; k < Tn; ++k)
      for (std::ptrdiff_t i = 0; i < s; ++i) {
        const T tl = activation_value<T>(Activation::Tanh, cl(k, i));
        const T tu = activation_value<T>(Activation::Tanh, cu(k, i));
        const T sl = activation_value<T>(Activation::Sigmoid, yl(k, 3 * s + i));
        const T su = activation_value<T>(Activation::Sigmoid, yu(k, 3 * s + i));
        const T c1 = tl * sl, c2 = tl * su, c3 = tu * sl, c4 = tu * su;
        hid.lower(k, i) = std::min(std::min(c1, c2), std::min(c3, c4));
        hid.upper(k, i) = std::max(std::max(c1, c2), std::max(c3, c4));
      }
    res.states.push_back({"gates", std::move(yl), std::move(yu)});
    res.states.push_back({"cell", std::move(cl), std::move(cu)});
    res.states.push_back(std::move(hid));
  }
  return res;
}

}  // namespace pq
