// The threat models of the generic pass (docs/THREAT_MODELS.md) and their concretisation:
// the lower bound of a linear form Σ_t A_t x_t + d (row-wise) over the input set, given the
// clean part d + Σ_t A_t x̂_t already in d. One rule per threat model:
//   frame ball   d −= Σ_t ε w_t ‖A_t‖_q                      (RECURRENCES.md §1, w_t = 1)
//   joint ball   d −= ε ‖(w_t ‖A_t‖_q)_t‖_q                  (one lp ball over all moving frames,
//                p = 2: root of the sum of squares; p = 1: the max; p = ∞: the frame ball)
//   ∩ box        d −= max over {ball} ∩ [lo, hi] of −A·δ, solved exactly per row (the per-axis
//                clip for p = ∞, a greedy fill for p = 1, water-filling for p = 2)
//   substitution d += Σ of the `budget` most negative min(0, min_{s∈S_t} A_t (s − x̂_t))
// A row's frames arrive one at a time (add) and are combined at the end (finish), since the
// joint ball, a box under the joint ball and the budget need all of a row's frames at once.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <vector>
#include "linear_form.hpp"
#include "rounding.hpp"

namespace pq {

enum class BallKind { Frame, Joint };

// The input set: the ball (centre x̂, ε, q, moving frames) and what refines it.
template <class T>
struct ThreatModel {
  InputBall<T> ball;
  BallKind kind = BallKind::Frame;
  const T* weights = nullptr;              // (T,) radius multipliers w_t >= 0; null: all 1
  const T* lo = nullptr;                   // (T, n) box domain (lo <= x̂ <= hi); null: none
  const T* hi = nullptr;
  std::vector<MatView<const T>> subs;      // substitution model: candidates of frame t (k_t x n)
  std::ptrdiff_t budget = 0;               // at most this many frames substituted at once

  bool substitution() const { return !subs.empty(); }
  T weight(std::ptrdiff_t t) const { return weights ? weights[t] : T(1); }
  T radius(std::ptrdiff_t t) const { return weights ? ball.eps * weights[t] : ball.eps; }
  // frame t can differ from x̂_t
  bool moves(std::ptrdiff_t t) const {
    if (!ball.mask[t]) return false;
    if (substitution()) return budget > 0 && subs[t].rows > 0;
    return radius(t) != T(0);
  }
  // the joint ball with p = ∞ is the frame ball: one code path, the same numbers
  bool joint() const { return kind == BallKind::Joint && ball.q != DualNorm::L1; }
};

// max Σ_j m_j v_j over 0 <= v_j <= cap_j, ‖v‖_p <= r (m_j, cap_j >= 0): how far a box-clipped
// ball lowers a row. p = ∞ (q = L1): per axis; p = 1 (q = Linf): the budget r on the largest m
// first; p = 2: v_j = min(cap_j, τ m_j) with τ where ‖v‖ = r (breakpoints cap_j / m_j, sorted).
// m and cap are the caller's scratch (cap is rescaled in place).
// G > 0 (rounding="sound", ROUNDING.md §3): the result is instead an upper bound of the real
// maximum, whatever the rounding: the weak-duality value at the multiplier the computation
// found (exact for the exact multiplier, an upper bound for any), and the box alone
// (Σ m cap), both sums of nonnegative terms computed to a relative error far below G.
template <class T>
T box_ball_gain(std::vector<T>& m, std::vector<T>& cap, T r, DualNorm q, std::vector<std::ptrdiff_t>& idx,
                T G = T(0)) {
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(m.size());
  T gain = T(0), box = T(0);
  if (G > T(0))
    for (std::ptrdiff_t j = 0; j < n; ++j) box += m[j] * cap[j];
  const T up = T(1) + T(8) * G;
  if (q == DualNorm::L1) {
    for (std::ptrdiff_t j = 0; j < n; ++j) gain += m[j] * std::min(cap[j], r);
    return G > T(0) ? gain * up : gain;
  }
  idx.resize(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), std::ptrdiff_t(0));
  if (q == DualNorm::Linf) {
    std::sort(idx.begin(), idx.end(), [&](std::ptrdiff_t a, std::ptrdiff_t b) { return m[a] > m[b]; });
    T left = r, mu = T(0);
    for (std::ptrdiff_t j : idx) {
      if (left <= T(0)) break;
      const T v = std::min(cap[j], left);
      if (cap[j] >= left) mu = m[j];  // the coordinate the budget ends in
      gain += m[j] * v;
      left -= v;
    }
    if (G == T(0)) return gain;
    // dual: for any μ >= 0, Σ m v <= μ r + Σ cap max(0, m − μ); μ = the m the budget ends in (0
    // if every cap fits): the exact optimum's multiplier
    T dual = mu * r;
    for (std::ptrdiff_t j = 0; j < n; ++j) dual += cap[j] * std::max(T(0), m[j] - mu);
    return std::min(dual, box) * up;
  }
  // p = 2: coordinates saturate in order of cap_j / m_j; the first k saturate where
  // ‖v(τ)‖² = Σ_{sat} cap² + τ² Σ_{free} m² first reaches r² beyond the k-th breakpoint.
  // Solved for the ball of radius 1 with caps cap_j / r (no under- or overflow of r²).
  for (std::ptrdiff_t j = 0; j < n; ++j) cap[j] /= r;
  std::sort(idx.begin(), idx.end(), [&](std::ptrdiff_t a, std::ptrdiff_t b) { return cap[a] * m[b] < cap[b] * m[a]; });
  T M = T(0), sat2 = T(0);
  for (std::ptrdiff_t j = 0; j < n; ++j) M += m[j] * m[j];
  std::ptrdiff_t k = 0;
  for (; k < n; ++k) {
    const std::ptrdiff_t j = idx[k];
    const T tau = cap[j] / m[j];
    if (sat2 + tau * tau * M >= T(1)) break;
    sat2 += cap[j] * cap[j];
    M -= m[j] * m[j];
  }
  // the sums again, without the running subtraction's cancellation
  T satgain = T(0);
  M = T(0), sat2 = T(0);
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const std::ptrdiff_t j = idx[i];
    if (i < k) sat2 += cap[j] * cap[j], satgain += m[j] * cap[j];
    else M += m[j] * m[j];
  }
  if (k == n) return G > T(0) ? box * up : r * satgain;  // every coordinate at its cap: the box lies inside the ball
  const T tau = std::sqrt(std::max(T(0), T(1) - sat2) / M);
  if (G == T(0)) return r * (satgain + tau * M);
  if (!(tau > T(0))) return box * up;
  // dual (unit ball, caps c = cap / r): for any μ > 0, Σ m v <= μ/2 + Σ max_{0<=v<=c} (m v − μ v²/2),
  // each term m²/(2μ) (m <= μ c) or m c − μ c²/2 >= m c / 2; μ = 1/τ
  const T mu = T(1) / tau;
  T dual = mu / T(2);
  for (std::ptrdiff_t j = 0; j < n; ++j)
    dual += m[j] <= mu * cap[j] ? m[j] * m[j] / (T(2) * mu) : m[j] * cap[j] - mu * cap[j] * cap[j] / T(2);
  return std::min(r * dual, box) * up;
}

// Concretises rows over a ThreatModel: begin(R); add(t, A_t, k) for every moving frame t
// that the rows reach; finish(k). rounding="sound" (rd.on()): every amount subtracted from
// k.d is an upper bound of its real value up to relative error Γ, charged to k.err
// (ROUNDING.md §3).
template <class T>
class Concretiser {
 public:
  Concretiser(const ThreatModel<T>& tm, std::ptrdiff_t rows, Rounding<T> rd = {}) : tm_(tm), rd_(rd) {
    const std::ptrdiff_t Tn = tm.ball.x.rows, n = tm.ball.x.cols;
    if (tm.substitution()) sub_.assign(static_cast<size_t>(rows * Tn), T(0)), sub_err_.assign(static_cast<size_t>(rows), T(0));
    if (tm.joint()) acc_.assign(static_cast<size_t>(rows), T(0)), scale_.assign(static_cast<size_t>(rows), T(0));
    unit_.assign(static_cast<size_t>(rows), T(0));
    if (tm.lo) {
      // slack_t = min_j min(x̂ − lo, hi − x̂): the box contains frame t's ball iff radius <= slack_t
      slack_.assign(static_cast<size_t>(Tn), std::numeric_limits<T>::infinity());
      T inside = std::numeric_limits<T>::infinity();  // the largest joint ε the box contains
      for (std::ptrdiff_t t = 0; t < Tn; ++t) {
        const T* x = tm.ball.x.row(t);
        for (std::ptrdiff_t j = 0; j < n; ++j)
          slack_[t] = std::min({slack_[t], x[j] - tm.lo[t * n + j], tm.hi[t * n + j] - x[j]});
        if (tm.moves(t)) inside = std::min(inside, slack_[t] / tm.weight(t));
      }
      joint_inside_ = tm.ball.eps <= inside;
      if (tm.joint() && !joint_inside_) jm_.resize(static_cast<size_t>(rows)), jc_.resize(static_cast<size_t>(rows));
    }
  }

  void begin(std::ptrdiff_t R) {
    R_ = R;
    if (!sub_.empty()) {
      std::fill(sub_.begin(), sub_.begin() + R * tm_.ball.x.rows, T(0));
      std::fill(sub_err_.begin(), sub_err_.begin() + R, T(0));
    }
    if (!acc_.empty()) std::fill(acc_.begin(), acc_.begin() + R, T(0)), std::fill(scale_.begin(), scale_.begin() + R, T(0));
    std::fill(unit_.begin(), unit_.begin() + R, T(0));
    for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(jm_.size()) && r < R; ++r) jm_[r].clear(), jc_[r].clear();
  }

  // coefficients A (R x n) on moving frame t
  void add(std::ptrdiff_t t, MatView<const T> A, RowConsts<T> k) {
    if (tm_.substitution()) return add_substitution(t, A);
    const T rt = tm_.radius(t);
    const bool boxed = tm_.lo && !(tm_.joint() ? joint_inside_ : rt <= slack_[t]);
    if (!boxed) {
      if (!tm_.joint()) {
        for (std::ptrdiff_t r = 0; r < A.rows; ++r) {
          const T g = dual_norm(A.row(r), A.cols, tm_.ball.q);
          subtract(k, r, rt * g);
          unit_[r] += tm_.weight(t) * g;
        }
        return;
      }
      for (std::ptrdiff_t r = 0; r < A.rows; ++r) combine(r, tm_.weight(t) * dual_norm(A.row(r), A.cols, tm_.ball.q));
      return;
    }
    const std::ptrdiff_t n = A.cols;
    for (std::ptrdiff_t r = 0; r < A.rows; ++r) {
      if (tm_.joint()) {  // the variable u = δ / w_t: coefficient w_t a, box / w_t; solved at finish
        const T w = tm_.weight(t);
        push_axes(t, A.row(r), n, w, jm_[r], jc_[r]);
        combine(r, w * dual_norm(A.row(r), n, tm_.ball.q));
        continue;
      }
      m1_.clear(), c1_.clear();
      push_axes(t, A.row(r), n, T(1), m1_, c1_);
      subtract(k, r, no_looser(box_ball_gain(m1_, c1_, rt, tm_.ball.q, idx_, rd_.G), rt * dual_norm(A.row(r), n, tm_.ball.q)));
    }
  }

  // Row r's unit(r) = the radius coefficient of what the ball subtracted, Σ_t w_t ‖A_t‖_q
  // (joint: the joint norm) as computed, over the frames whose set is linear in the radius
  // (a box-clipped frame or joint ball adds 0): the rows' bound at a radius ε' <= ε with the
  // same linear form is at least the bound at ε plus (ε − ε') × the real sum (RECURRENCES.md
  // §5, "a failed probe's own radius"). Valid after finish.
  const T* unit() const { return unit_.data(); }

  void finish(RowConsts<T> k) {
    if (tm_.substitution()) return finish_substitution(k);
    if (!tm_.joint()) return;
    const T eps = tm_.ball.eps;
    for (std::ptrdiff_t r = 0; r < R_; ++r) {
      const T ball = tm_.ball.q == DualNorm::L2 ? scale_[r] * std::sqrt(acc_[r]) : acc_[r];
      if (jm_.empty()) {
        subtract(k, r, eps * ball);
        unit_[r] = ball;
      } else subtract(k, r, no_looser(box_ball_gain(jm_[r], jc_[r], eps, tm_.ball.q, idx_, rd_.G), eps * ball));
    }
  }

 private:
  // d[r] −= g, and under rounding="sound" its relative error (the norms, products and the
  // subtraction; a box gain is an upper bound already, box_ball_gain) charged: Γ g
  void subtract(RowConsts<T> k, std::ptrdiff_t r, T g) {
    k.d[r] -= g;
    if (k.err) k.err[r] += rd_.G * g;
  }

  // the joint ball's combination of one frame's weighted dual norm v into row r: the running
  // scaled sum of squares (p = 2, no overflow) or the running max (p = 1)
  void combine(std::ptrdiff_t r, T v) {
    if (tm_.ball.q == DualNorm::Linf) {
      acc_[r] = std::max(acc_[r], v);
      return;
    }
    if (v == T(0)) return;
    if (v > scale_[r]) {
      const T f = scale_[r] / v;
      acc_[r] = acc_[r] * f * f + T(1);
      scale_[r] = v;
    } else {
      const T f = v / scale_[r];
      acc_[r] += f * f;
    }
  }

  // a box gain is never more than the ball's own (exactly; this only absorbs rounding; under
  // rounding="sound" both are upper bounds up to the relative error Γ charged by subtract)
  static T no_looser(T box, T ball) { return std::min(box, ball); }

  // the axes of frame t for one row a: gain m = |a| w, capacity = room towards −sign(a) / w
  void push_axes(std::ptrdiff_t t, const T* a, std::ptrdiff_t n, T w, std::vector<T>& m, std::vector<T>& c) const {
    const T* x = tm_.ball.x.row(t);
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      if (a[j] == T(0)) continue;
      const T room = a[j] > T(0) ? x[j] - tm_.lo[t * n + j] : tm_.hi[t * n + j] - x[j];
      if (room <= T(0)) continue;
      m.push_back(std::abs(a[j]) * w);
      c.push_back(room / w);
    }
  }

  // rounding="sound": each A (s − x̂) is within Γ |A| (|s| + |x̂|) of its real value; the
  // largest such error of frame t is charged for every frame (whichever B are chosen)
  void add_substitution(std::ptrdiff_t t, MatView<const T> A) {
    const MatView<const T>& S = tm_.subs[t];
    const T* x = tm_.ball.x.row(t);
    const std::ptrdiff_t Tn = tm_.ball.x.rows;
    for (std::ptrdiff_t r = 0; r < A.rows; ++r) {
      const T* a = A.row(r);
      T ax = T(0), best = T(0), ax_abs = T(0), worst = T(0);
      for (std::ptrdiff_t j = 0; j < A.cols; ++j) ax += a[j] * x[j], ax_abs += std::fabs(a[j] * x[j]);
      for (std::ptrdiff_t k = 0; k < S.rows; ++k) {
        const T* s = S.row(k);
        T as = T(0), as_abs = T(0);
        for (std::ptrdiff_t j = 0; j < A.cols; ++j) as += a[j] * s[j], as_abs += std::fabs(a[j] * s[j]);
        best = std::min(best, as - ax);
        worst = std::max(worst, as_abs + ax_abs);
      }
      sub_[r * Tn + t] = best;
      if (rd_.on()) sub_err_[r] += rd_.G * worst;
    }
  }

  void finish_substitution(RowConsts<T> k) {
    const std::ptrdiff_t Tn = tm_.ball.x.rows, B = std::min(tm_.budget, Tn);
    for (std::ptrdiff_t r = 0; r < R_; ++r) {
      T* v = sub_.data() + r * Tn;
      if (B < Tn) std::nth_element(v, v + B, v + Tn);  // the B most negative first
      for (std::ptrdiff_t j = 0; j < B; ++j) k.d[r] += v[j];
      if (k.err) k.err[r] += sub_err_[r];
    }
  }

  const ThreatModel<T>& tm_;
  Rounding<T> rd_;
  std::ptrdiff_t R_ = 0;
  bool joint_inside_ = true;
  std::vector<T> sub_, sub_err_, acc_, scale_, slack_, m1_, c1_, unit_;
  std::vector<std::vector<T>> jm_, jc_;
  std::vector<std::ptrdiff_t> idx_;
};

}  // namespace pq
