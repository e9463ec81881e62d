// Forward sweep of the relaxed GRU with shared z (RECURRENCES.md §4 "GRU, shared z
// (optimized)"), the adjoint of one margin row's back-substitution (optim_planes.hpp):
// at the worst-case input x*_k = x̂_k − eps ∇||A_k||_q, every relaxation replaced by the
// side its recorded coefficient selected:
//   g = [y^r; y^z; v] = W_hh h + [W_ir; W_iz] x* + b_gates,   u = W_in x* + b_in + P^r(v, y^r),
//   z~ = L^z(y^z) (the row's own z-lines, side by the sign of the merged z coefficient μ,
//        gru_shared_z.hpp; optim_lines.hpp),
//   h' = P^u(u, 1 − z~) + P^z(h, z~).
// Its value spec_row · h_T + spec_bias equals the row's back-substituted lower bound (tested),
// and each plane's eval_and_grad accumulates the envelope-theorem gradient of that bound.
#pragma once
#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>
#include "bound_state.hpp"
#include "gru_shared_z.hpp"
#include "linear_form.hpp"
#include "matmul.hpp"
#include "optim_lines.hpp"
#include "optim_planes.hpp"

namespace pq {

// Per step k of one row's backward pass: the coefficients met at h_k (vh) and at u_k (vu),
// and A_k, the coefficients on frame k (rows of a moving frame only).
template <class T>
struct GruRec {
  Mat<T> vh, vu, a;
  GruRec(std::ptrdiff_t Tn, std::ptrdiff_t s, std::ptrdiff_t n) : vh(Tn, s), vu(Tn, s), a(Tn, n) {}
};

template <class T>
struct GruSweep {
  const GruNet<T>& net;
  std::ptrdiff_t s, n;
  std::vector<OptLineSet<T>>* lines = nullptr;  // the row's own z-lines, per step
  std::vector<T> bg, xs, g, ui, mh, mh2;
  GruSweep(const GruNet<T>& nt, std::ptrdiff_t s_, std::ptrdiff_t n_)
      : net(nt), s(s_), n(n_), bg(3 * s_), xs(n_), g(3 * s_), ui(s_), mh(s_), mh2(s_) {
    for (std::ptrdiff_t i = 0; i < 2 * s; ++i) bg[i] = net.b_ih[i] + net.b_hh[i];
    for (std::ptrdiff_t i = 0; i < s; ++i) bg[2 * s + i] = net.b_hh[2 * s + i];
  }
  // op: the row's planes, [P^r, P^u, P^z] per step. Full steps 0..steps-1, then with u_step
  // P^r of step `steps` alone (an objective on u_steps). Returns sw · h_steps + sb (sw: an
  // objective on the last swept hidden state; nullptr: 0).
  T run(const InputBall<T>& ball, const GruRec<T>& rec, std::vector<OptPlaneSet<T>>& op, std::ptrdiff_t steps,
        bool u_step, const T* sw, T sb) {
    std::copy(net.h0, net.h0 + s, mh.begin());
    for (std::ptrdiff_t k = 0; k < steps + (u_step ? 1 : 0); ++k) {
      worst_input(ball.x.row(k), rec.a.row(k), n, ball.eps, ball.q, ball.moves(k), xs.data());
      std::copy(bg.begin(), bg.end(), g.begin());
      matvec(net.w_hh, mh.data(), g.data(), true);
      matvec(block(net.w_ih, 0, 2 * s, 0, n), xs.data(), g.data(), true);
      for (std::ptrdiff_t i = 0; i < s; ++i) ui[i] = net.b_ih[2 * s + i];
      matvec(block(net.w_ih, 2 * s, s, 0, n), xs.data(), ui.data(), true);
      OptPlaneSet<T>& pr = op[3 * k];
      if (k == steps) {  // u_step: only P^r meets the objective
        for (std::ptrdiff_t i = 0; i < s; ++i) pr.eval_and_grad(i, rec.vu(k, i), g[2 * s + i], g[i]);
        break;
      }
      OptPlaneSet<T>& pu = op[3 * k + 1];
      OptPlaneSet<T>& pz = op[3 * k + 2];
      OptLineSet<T>& L = (*lines)[k];
      for (std::ptrdiff_t i = 0; i < s; ++i) {
        const T u = ui[i] + pr.eval_and_grad(i, rec.vu(k, i), g[2 * s + i], g[i]);
        const T v = rec.vh(k, i), yz = g[s + i];
        const T zt = L.eval(i, shared_z_mu(v, pu.P, pz.P, i), yz);
        mh2[i] = pu.eval_and_grad(i, v, u, T(1) - zt) + pz.eval_and_grad(i, v, mh[i], zt);
      }
      std::swap(mh, mh2);
    }
    if (!sw) return T(0);
    T acc = sb;
    for (std::ptrdiff_t i = 0; i < s; ++i) acc += sw[i] * mh[i];
    return acc;
  }
};

}  // namespace pq
