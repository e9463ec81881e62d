// "optimized" 1-D lines of the vanilla RNN (issue 11; RECURRENCES.md §3b): each objective
// row gets its own copy of every step's lines. A line is valid whatever its slope, because
// its offset is the exact extreme of φ(z) − a z over [l, u] (the endpoints, the stationary
// points φ'(z) = a of tanh / sigmoid in closed form, ReLU's kink), widened by the §2
// margin (lines.hpp line_margin). Best response: the tangent at the row's forward-sweep
// value (clipped to [l, u]; ReLU: slope 1 right of the kink, 0 left of it), kept if tighter
// there than the current side.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include "bound_state.hpp"
#include "envelope_kernels.hpp"
#include "lines.hpp"
#include "sign_rule.hpp"
#include "sweep_kernels.hpp"

namespace pq {

// The intervals [l, u] of one layer of s neurons (fixed while optimising).
template <class T>
struct LineBoxes {
  Activation fn = Activation::Tanh;
  std::vector<T> l, u;
  // Best responses on a grid (OptSettings::grid = G): the tangent at the centre of the
  // point's cell of G equal cells of [l, u], slot (neuron, side, cell): slope and offset,
  // computed on first use (a NaN slope: not yet) and kept while the intervals are (at most
  // detail::kMaxCandidates slots; beyond, the tangent at each row's own point).
  detail::CandidateGrid<std::pair<T, T>> cand;
  // G over each interval's width (0 for a point), for the G last asked (line_cells).
  std::vector<T> k;
  int kG = 0;
  const T* grid_scale(int G) {
    if (kG != G) {
      k.resize(l.size());
      for (std::size_t i = 0; i < l.size(); ++i) k[i] = u[i] > l[i] ? T(G) / (u[i] - l[i]) : T(0);
      kG = G;
    }
    return k.data();
  }
  void set(Activation f, const T* lo, const T* hi, std::ptrdiff_t s) {
    fn = f;
    kG = 0;
    cand.clear();
    l.assign(lo, lo + s);
    u.assign(hi, hi + s);
  }
};

namespace detail {
// max (want_max) or min over z in [l, u] of φ(z) − a z: every candidate extreme.
template <class T>
T line_extreme(Activation fn, T a, T l, T u, bool want_max) {
  if (fn != Activation::Relu) return line_offset(fn, a, l, u, want_max);
  T best = phi(fn, l) - a * l;
  const T gu = phi(fn, u) - a * u;
  best = want_max ? std::max(best, gu) : std::min(best, gu);
  if (l < T(0) && T(0) < u) best = want_max ? std::max(best, T(0)) : std::min(best, T(0));
  return best;
}
}  // namespace detail

template <class T>
struct OptLineSet {
  LineSet<T> P;                 // what the backward pass reads
  std::vector<T> mzv, vv;       // last sweep: input value and coefficient per neuron
  void init_from(const LineSet<T>& src, const LineBoxes<T>&, bool) { P = src; }
  // A fresh copy of src for one row (OptPlaneSet::start_row; lines keep no gradient).
  void start_row(const OptLineSet& src, bool) {
    P = src.P;
    mzv.resize(P.al.size());
    vv.assign(P.al.size(), T(0));
  }
  void zero_grad() {}
  // Exact offset of side `lower` of neuron i for slope a (widened by line_margin).
  static T offset(const LineBoxes<T>& bx, std::size_t i, bool lower, T a) {
    const T c = detail::line_extreme(bx.fn, a, bx.l[i], bx.u[i], !lower);
    const T m = detail::line_margin(bx.fn, a, bx.l[i], bx.u[i]);
    return lower ? c - m : c + m;
  }
  // Exact offset of side `lower` of neuron i for its current slope.
  void refresh(const LineBoxes<T>& bx, std::size_t i, bool lower) {
    (lower ? P.bl[i] : P.bu[i]) = offset(bx, i, lower, lower ? P.al[i] : P.au[i]);
  }
  // The sweep's inputs and coefficients of every line (s each; my unused), swept elsewhere
  // (OptPlaneSet::load_sweep).
  void load_sweep(const T* mz, const T*, const T* v) {
    const std::size_t s = P.al.size();
    mzv.assign(mz, mz + s);
    vv.assign(v, v + s);
  }
  // A best response at values swept elsewhere (OptPlaneSet::respond_swept).
  // On a grid (not ReLU): each met side's cell candidate (computed on first use, as improve),
  // then the takes four neurons at a time (envelope_kernels.hpp line_take).
  // (from: the lines responded to, the row's start; P is written whole.)
  void respond_swept(LineBoxes<T>& bx, const T* mz, const T* my, const T* v, const OptSettings& opt,
                     const LineSet<T>& from) {
    if (P.al.size() != from.al.size()) P = from;  // (sized once)
    const std::size_t s = P.al.size();
    const int G = grid(opt, s);
    if (G == 0 || bx.fn == Activation::Relu) {
      P = from;
      load_sweep(mz, my, v);
      return improve(bx, 0, opt);
    }
    wk_.resize(s);
    detail::line_cells(mz, v, bx.l.data(), bx.u.data(), bx.grid_scale(G), s, G, wk_.data());
    const auto* W = &bx.cand.at(s, static_cast<std::size_t>(G), 0, true, 0, {std::numeric_limits<T>::quiet_NaN(), T(0)});
    for (std::size_t i = 0; i < s; ++i)  // each met slot's candidate, computed on first use
      if (wk_[i] >= 0 && std::isnan(W[wk_[i]].first)) candidate(bx, i, v[i] >= T(0), wk_[i] % G, G);
    detail::line_take<T>({mz, v, {from.al.data(), from.bl.data(), from.au.data(), from.bu.data()},
                          {P.al.data(), P.bl.data(), P.au.data(), P.bu.data()}},
                         W, wk_.data(), s);
  }
  std::vector<int> wk_;  // respond_swept's scratch: each neuron's candidate slot (−1: not met)
  // A row's forward sweep through this step (OptPlaneSet::sweep_values): the lines the
  // coefficients v select at inputs mz, s each, into out; the sweep's values kept for the
  // best responses (lines keep no gradient).
  void sweep_values(const T* v, const T* mz, T* out) {
    load_sweep(mz, nullptr, v);
    line_values(P, v, mz, static_cast<std::ptrdiff_t>(P.al.size()), out);
  }
  // The grid of opt for s neurons (0: none, or too large).
  static int grid(const OptSettings& opt, std::size_t s) {
    return opt.grid > 0 && detail::grid_fits(s, static_cast<std::size_t>(opt.grid)) ? opt.grid : 0;
  }
  // Candidate (slope, offset) of cell `cell` of side `lower` of neuron i: the tangent at the
  // cell's centre with its exact offset, computed on first use.
  std::pair<T, T>& candidate(LineBoxes<T>& bx, std::size_t i, bool lower, int cell, int G) {
    auto& q = bx.cand.at(P.al.size(), static_cast<std::size_t>(G), i, lower, static_cast<std::size_t>(cell),
                         {std::numeric_limits<T>::quiet_NaN(), T(0)});
    if (std::isnan(q.first)) {
      const T a = detail::dphi(bx.fn, detail::grid_centre(cell, bx.l[i], bx.u[i], G));
      q = {a, offset(bx, i, lower, a)};
    }
    return q;
  }
  void improve(LineBoxes<T>& bx, int, const OptSettings& opt) {
    const int G = grid(opt, vv.size());
    for (std::size_t i = 0; i < vv.size(); ++i) {
      const T v = vv[i];
      if (v == T(0) || !(bx.l[i] < bx.u[i])) continue;
      const bool lower = v >= T(0);
      const T z = std::min(std::max(mzv[i], bx.l[i]), bx.u[i]);
      T& a = lower ? P.al[i] : P.au[i];
      T& b = lower ? P.bl[i] : P.bu[i];
      const T olda = a, oldb = b, before = a * mzv[i] + b;
      if (G > 0 && bx.fn != Activation::Relu) {  // ReLU's responses need no offset search
        const int cell = detail::line_slot(mzv.data(), vv.data(), bx.l.data(), bx.u.data(), bx.grid_scale(G), i, G) % G;
        const auto& q = candidate(bx, i, lower, cell, G);  // (line_cells' cell, as respond_swept)
        a = q.first;
        b = q.second;
      } else {
        a = bx.fn == Activation::Relu ? (z > T(0) ? T(1) : T(0)) : detail::dphi(bx.fn, z);
        refresh(bx, i, lower);
      }
      const T after = a * mzv[i] + b;
      if (lower ? !(after > before) : !(after < before)) { a = olda; b = oldb; }
    }
  }
};

}  // namespace pq
