// Back-substitution through time for the vanilla RNN (ALGORITHM.md §4 "Vanilla
// RNN", RECURRENCES.md §4 RNN):
//   z_t = W_ih x_t + W_hh h_{t-1} + b,  h_t = φ(z_t).
// For t = 1..T the bounds of z_t come from one back-substitution of the stacked
// objective [I; −I] down to x_1, through the lines already fixed for z_1..z_{t-1};
// the margins from [spec; −spec] on h_T. Code indexes steps from 0 (step k reads
// x row k); h0 is the state before step 0.
#pragma once
#include <algorithm>
#include <limits>
#include <cstddef>
#include <utility>
#include <vector>
#include "bound_state.hpp"
#include "linear_form.hpp"
#include "matmul.hpp"
#include "optim_lines.hpp"
#include "rnn_optim.hpp"
#include "sign_rule.hpp"

namespace pq {

template <class T>
BoundResult<T> rnn_bounds(const RnnNet<T>& net, const PassCommon<T>& pc) {
  const std::ptrdiff_t s = net.w_hh.rows, n = net.w_ih.cols;
  const std::ptrdiff_t Tn = pc.ball.x.rows, K = pc.spec_w.rows;
  const std::ptrdiff_t Rmax = std::max(2 * s, 2 * K);
  const InputBall<T>& ball = pc.ball;

  Mat<T> xb = clean_inputs(net.w_ih, net.bias, ball);

  Mat<T> zl(Tn, s), zu(Tn, s);
  std::vector<LineSet<T>> lines(static_cast<size_t>(Tn));
  Mat<T> Lh(Rmax, s), G(Rmax, s), A(Rmax, n);
  std::vector<T> d(static_cast<size_t>(Rmax));
  // the affine part of step k for the top R rows of G (linear_form.hpp)
  auto affine = [&](std::ptrdiff_t k, std::ptrdiff_t R) {
    through_affine(cview(top_rows(G, R)), net.w_ih, net.w_hh, ball, k, xb.row(k), top_rows(A, R),
                   top_rows(Lh, R), d.data());
  };

  // Λ in Lh on h_{k_top}: pass steps k_top..0, then h0 into the constant. The lines are
  // `lines` unless a row's own copies are given (optimized, R = 1); rec (R = 1) records per
  // step the coefficients met at h_k and A_k (rnn_optim.hpp).
  auto backward = [&](std::ptrdiff_t k_top, std::ptrdiff_t R, const LineSet<T>* const* own = nullptr,
                      RnnRec<T>* rec = nullptr) {
    for (std::ptrdiff_t k = k_top; k >= 0; --k) {
      if (rec) std::copy(Lh.row(0), Lh.row(0) + s, rec->vh.row(k));
      pass_lines(cview(top_rows(Lh, R)), own ? *own[k] : lines[k], top_rows(G, R), d.data());
      affine(k, R);
      if (rec && ball.moves(k)) std::copy(A.row(0), A.row(0) + n, rec->a.row(k));
    }
    add_rowdots(cview(top_rows(Lh, R)), net.h0, d.data());
  };

  // ---- optimized lines (optim_lines.hpp, RECURRENCES.md §3b): per objective row (a margin,
  // or ±e_i on z_t), its own copies of the lines of the steps it passes, each chosen for
  // that row (best responses, exact offsets); boxes[k] / init[k] once z_k's bounds are final.
  const bool optimize = net.opt.iters > 0;
  std::vector<LineBoxes<T>> boxes(optimize ? Tn : 0);
  std::vector<OptLineSet<T>> init(optimize ? Tn : 0), op;
  std::vector<const LineSet<T>*> own(optimize ? Tn : 0);
  RnnRec<T> rec(optimize ? Tn : 0, s, n);
  RnnSweep<T> sweep(net, s, n);
  Mat<T> trace(optimize && net.opt.trace ? K : 0, 2 * (net.opt.iters + 1) + 2);
  // Best lower bound of obj · z_t (margin: obj · h_{T-1} + ob, t = T).
  auto opt_row = [&](bool margin, std::ptrdiff_t t, const T* obj, T ob, T* trace_row = nullptr) {
    auto bound = [&] {
      d[0] = ob;
      if (margin) {
        std::copy(obj, obj + s, Lh.row(0));
      } else {
        std::copy(obj, obj + s, G.row(0));
        affine(t, 1);
      }
      backward(t - 1, 1, own.data(), &rec);
      return d[0];
    };
    return optimize_row<T>(init, boxes, t, margin ? net.opt.iters : net.opt.inter_iters, net.opt, op, own, bound,
                           [&](std::vector<OptLineSet<T>>& l) { return sweep.run(ball, rec, l, t, margin ? obj : nullptr, ob); },
                           trace_row);
  };
  std::vector<T> unit(s, T(0));
  const std::ptrdiff_t inter_from = optimize && net.opt.inter_iters > 0 ? Tn - net.opt.inter_steps : Tn;

  for (std::ptrdiff_t t = 0; t < Tn; ++t) {
    std::fill(d.begin(), d.begin() + 2 * s, T(0));
    set_stacked_identity(top_rows(G, 2 * s), s, 0);
    affine(t, 2 * s);
    backward(t - 1, 2 * s);
    finish_stacked(d.data(), s, zl.row(t), zu.row(t));
    if (t >= inter_from && t > 0)
      refine_intervals(s, zl.row(t), zu.row(t), unit, [&](const T* e) { return opt_row(false, t, e, T(0)); });
    lines[t].compute(net.act, zl.row(t), zu.row(t), s);
    if (optimize) {
      boxes[t].set(net.act, zl.row(t), zu.row(t), s);
      init[t].init_from(lines[t], boxes[t]);
    }
  }

  BoundResult<T> res;
  set_stacked_spec(pc.spec_w, pc.spec_b, top_rows(Lh, 2 * K), d.data());
  backward(Tn - 1, 2 * K);
  res.lower.resize(K);
  res.upper.resize(K);
  finish_stacked(d.data(), K, res.lower.data(), res.upper.data());
  // optimized: only the margins' lower bounds (what certification uses) are improved
  if (optimize) {
    for (std::ptrdiff_t r = 0; r < K; ++r)
      res.lower[r] = std::max(res.lower[r], opt_row(true, Tn, pc.spec_w.row(r), pc.spec_b[r],
                                                    net.opt.trace ? trace.row(r) : nullptr));
    if (net.opt.trace) res.states.push_back({"opt_trace", trace, std::move(trace)});
  }

  if (pc.want_states) {
    StateBounds<T> hid{"hidden", Mat<T>(Tn, s), Mat<T>(Tn, s)};
    for (std::ptrdiff_t k = 0; k < Tn; ++k)
      for (std::ptrdiff_t i = 0; i < s; ++i) {  // φ is monotone
        hid.lower(k, i) = activation_value<T>(net.act, zl(k, i));
        hid.upper(k, i) = activation_value<T>(net.act, zu(k, i));
      }
    res.states.push_back({"pre", std::move(zl), std::move(zu)});
    res.states.push_back(std::move(hid));
  }
  return res;
}

}  // namespace pq
