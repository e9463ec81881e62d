// Forward sweep of the relaxed vanilla RNN (RECURRENCES.md §3b, §4 RNN), the adjoint of one
// objective row's back-substitution (optim_lines.hpp): at the worst-case input
// x*_k = x̂_k − eps ∇||A_k||_q, z = W_ih x* + W_hh h + b and h' = the line of φ its recorded
// coefficient selected. Its value (the objective row at the sweep's h) equals the row's
// back-substituted lower bound (tests/test_optimized_sweep.py).
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>
#include "bound_state.hpp"
#include "optim_lines.hpp"
#include "optim_planes.hpp"

namespace pq {

// Per step k of one row's backward pass: the coefficients met at h_k, and A_k.
template <class T>
struct RnnRec {
  Mat<T> vh, a;
  RnnRec(std::ptrdiff_t Tn, std::ptrdiff_t s, std::ptrdiff_t n) : vh(Tn, s), a(Tn, n) {}
};

template <class T>
struct RnnSweep {
  const RnnNet<T>& net;
  std::ptrdiff_t s, n;
  std::vector<T> xs, mz, mh;
  RnnSweep(const RnnNet<T>& nt, std::ptrdiff_t s_, std::ptrdiff_t n_) : net(nt), s(s_), n(n_), xs(n_), mz(s_), mh(s_) {}
  // op: the row's lines per step. Steps 0..steps-1; returns obj · h_{steps-1} + ob (obj nullptr: 0).
  T run(const InputBall<T>& ball, const RnnRec<T>& rec, std::vector<OptLineSet<T>>& op, std::ptrdiff_t steps,
        const T* obj, T ob) {
    std::copy(net.h0, net.h0 + s, mh.begin());
    for (std::ptrdiff_t k = 0; k < steps; ++k) {
      worst_input(ball.x.row(k), rec.a.row(k), n, ball.eps, ball.q, ball.moves(k), xs.data());
      std::copy(net.bias, net.bias + s, mz.begin());
      matvec(net.w_ih, xs.data(), mz.data(), true);
      matvec(net.w_hh, mh.data(), mz.data(), true);
      for (std::ptrdiff_t i = 0; i < s; ++i) mh[i] = op[k].eval(i, rec.vh(k, i), mz[i]);
    }
    if (!obj) return T(0);
    T acc = ob;
    for (std::ptrdiff_t i = 0; i < s; ++i) acc += obj[i] * mh[i];
    return acc;
  }
};

}  // namespace pq
