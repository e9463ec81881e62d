// Back-substitution through time for the vanilla RNN (ALGORITHM.md §4 "Vanilla
// RNN", RECURRENCES.md §4 RNN):
//   z_t = W_ih x_t + W_hh h_{t-1} + b,  h_t = φ(z_t).
// For t = 1..T the bounds of z_t come from one back-substitution of the stacked
// objective [I; −I] down to x_1, through the lines already fixed for z_1..z_{t-1};
// the margins from [spec; −spec] on h_T. Code indexes steps from 0 (step k reads
// x row k); h0 is the state before step 0.
#pragma once
#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>
#include "bound_state.hpp"
#include "linear_form.hpp"
#include "matmul.hpp"
#include "sign_rule.hpp"

namespace pq {

template <class T>
BoundResult<T> rnn_bounds(const RnnNet<T>& net, const PassCommon<T>& pc) {
  const std::ptrdiff_t s = net.w_hh.rows, n = net.w_ih.cols;
  const std::ptrdiff_t Tn = pc.ball.x.rows, K = pc.spec_w.rows;
  const std::ptrdiff_t Rmax = std::max(2 * s, 2 * K);
  const InputBall<T>& ball = pc.ball;

  // Clean part of every step's input: xb_k = W_ih x̂_k + b, so that a coefficient
  // G on z_k contributes G·xb_k and (moving frames) −eps ||G W_ih||_q (§1).
  Mat<T> xb(Tn, s);
  for (std::ptrdiff_t k = 0; k < Tn; ++k) {
    std::copy(net.bias, net.bias + s, xb.row(k));
    add_rowdots(net.w_ih, ball.x.row(k), xb.row(k));
  }

  Mat<T> zl(Tn, s), zu(Tn, s);
  std::vector<LineSet<T>> lines(static_cast<size_t>(Tn));
  Mat<T> Lh(Rmax, s), G(Rmax, s), A(Rmax, n);
  std::vector<T> d(static_cast<size_t>(Rmax));

  // G (R x s) on z_k: constant, input frame k, and Λ on h_{k-1} into Lh.
  auto through_affine = [&](std::ptrdiff_t k, std::ptrdiff_t R) {
    MatView<const T> Gv = cview(top_rows(G, R));
    add_rowdots(Gv, xb.row(k), d.data());
    if (ball.moves(k)) {
      gemm(Gv, net.w_ih, top_rows(A, R), false);
      subtract_ball_radius(cview(top_rows(A, R)), ball.eps, ball.q, d.data());
    }
    gemm(Gv, net.w_hh, top_rows(Lh, R), false);
  };
  // Λ in Lh on h_{k_top}: pass steps k_top..0, then h0 into the constant.
  auto backward = [&](std::ptrdiff_t k_top, std::ptrdiff_t R) {
    for (std::ptrdiff_t k = k_top; k >= 0; --k) {
      pass_lines(cview(top_rows(Lh, R)), lines[k], top_rows(G, R), d.data());
      through_affine(k, R);
    }
    add_rowdots(cview(top_rows(Lh, R)), net.h0, d.data());
  };

  for (std::ptrdiff_t t = 0; t < Tn; ++t) {
    std::fill(d.begin(), d.begin() + 2 * s, T(0));
    set_stacked_identity(top_rows(G, 2 * s), s, 0);
    through_affine(t, 2 * s);
    backward(t - 1, 2 * s);
    finish_stacked(d.data(), s, zl.row(t), zu.row(t));
    lines[t].compute(net.act, zl.row(t), zu.row(t), s);
  }

  BoundResult<T> res;
  set_stacked_spec(pc.spec_w, pc.spec_b, top_rows(Lh, 2 * K), d.data());
  backward(Tn - 1, 2 * K);
  res.lower.resize(K);
  res.upper.resize(K);
  finish_stacked(d.data(), K, res.lower.data(), res.upper.data());

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
