// Forward sweep of the relaxed LSTM (RECURRENCES.md §3b, §4 LSTM), the adjoint of one
// objective row's back-substitution (optim_planes.hpp): at the worst-case input
// x*_k = x̂_k − eps ∇||A_k||_q, every product replaced by the plane side its recorded
// coefficient selected:
//   y = W_ih x* + W_hh h + b,   c' = P^f(c, y^f) + P^ig(y^g, y^i),   h' = P^o(c', y^o).
// Its value (the objective row applied to the sweep's values) equals the row's
// back-substituted lower bound (tests/test_optimized_sweep.py), and each plane's
// eval_and_grad accumulates the envelope-theorem gradient of that bound.
#pragma once
#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>
#include "bound_state.hpp"
#include "linear_form.hpp"
#include "optim_planes.hpp"

namespace pq {

// Per step k of one row's backward pass: the coefficients met at h_k (vo, on P^o) and at
// c_k (vc, on P^f and P^ig), and A_k, the coefficients on frame k (moving frames only).
template <class T>
struct LstmRec {
  Mat<T> vo, vc, a;
  LstmRec(std::ptrdiff_t Tn, std::ptrdiff_t s, std::ptrdiff_t n) : vo(Tn, s), vc(Tn, s), a(Tn, n) {}
};

template <class T>
struct LstmSweep {
  const LstmNet<T>& net;
  std::ptrdiff_t s, n;
  std::vector<T> xs, my, mh, mc, mh2, mc2;
  LstmSweep(const LstmNet<T>& nt, std::ptrdiff_t s_, std::ptrdiff_t n_)
      : net(nt), s(s_), n(n_), xs(n_), my(4 * s_), mh(s_), mc(s_), mh2(s_), mc2(s_) {}
  // op: the row's planes, [P^f, P^ig, P^o] per step. Full steps 0..steps-1, then with
  // cell_step step `steps` up to its cell. Returns obj · (that cell, or h_{steps-1}) + ob
  // (obj nullptr: 0).
  T run(const InputBall<T>& ball, const LstmRec<T>& rec, std::vector<OptPlaneSet<T>>& op,
        std::ptrdiff_t steps, bool cell_step, const T* obj, T ob) {
    std::copy(net.h0, net.h0 + s, mh.begin());
    std::copy(net.c0, net.c0 + s, mc.begin());
    for (std::ptrdiff_t k = 0; k < steps + (cell_step ? 1 : 0); ++k) {
      worst_input(ball.x.row(k), rec.a.row(k), n, ball.eps, ball.q, ball.moves(k), xs.data());
      std::copy(net.bias, net.bias + 4 * s, my.begin());
      matvec(net.w_ih, xs.data(), my.data(), true);
      matvec(net.w_hh, mh.data(), my.data(), true);
      OptPlaneSet<T>& pf = op[3 * k];
      OptPlaneSet<T>& pig = op[3 * k + 1];
      for (std::ptrdiff_t i = 0; i < s; ++i) {
        const T v = rec.vc(k, i);
        mc2[i] = pf.eval_and_grad(i, v, mc[i], my[s + i]) + pig.eval_and_grad(i, v, my[2 * s + i], my[i]);
      }
      std::swap(mc, mc2);
      if (k == steps) break;  // cell_step: the objective is on this cell
      OptPlaneSet<T>& po = op[3 * k + 2];
      for (std::ptrdiff_t i = 0; i < s; ++i) mh2[i] = po.eval_and_grad(i, rec.vo(k, i), mc[i], my[3 * s + i]);
      std::swap(mh, mh2);
    }
    if (!obj) return T(0);
    const std::vector<T>& last = cell_step ? mc : mh;
    T acc = ob;
    for (std::ptrdiff_t i = 0; i < s; ++i) acc += obj[i] * last[i];
    return acc;
  }
};

}  // namespace pq
