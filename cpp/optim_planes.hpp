// "optimized" planes (issue 11; RECURRENCES.md §3b): slopes chosen per bound, offsets exact.
//
// With the boxes of every plane fixed, the lower bound L_r of an objective row r (a
// margin, or ±e_i on an intermediate neuron) is a function of the slopes (a, b) of every
// plane that row's back-substitution passes through. Each row gets its own copy of the
// planes (a plane is valid whatever its slopes, because its offset is the exact
// extreme of F - a x - b y over the box, offset_extremes, widened by plane_margin),
// so every iterate is a sound bound and the best L_r seen is returned (optimize_row).
//
// Gradient. The backward pass is linear in Λ with sign-selected planes; its adjoint is
// a forward sweep: the relaxed network evaluated at the worst-case input x*_k =
// x̂_k − eps ∇||A_k||_q (A_k: the coefficients on frame k), every product replaced by
// the plane its coefficient selected. Writing μ for the forward values, L_r equals the
// objective row applied to μ (tests/test_optimized_sweep.py), and for a plane with coefficient v,
// input values (μx, μy) and offset attained at (x*, y*) (envelope theorem):
//     dL/da = v (μx − x*),   dL/db = v (μy − y*).
// Only the selected side (lower for v >= 0, upper for v < 0) of a plane moves.
// Steps: best responses (the tangent plane at the sweep's values, kept if tighter there),
// then Adam in box-scaled coordinates (OptPlaneSet).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>
#include <limits>
#include <type_traits>
#include <utility>

#include "bound_state.hpp"
#include "dual_norm.hpp"
#include "planes.hpp"
#include "sign_rule.hpp"

namespace pq {


// The boxes of one layer of s planes, with f and sigma at their sides (fixed while optimising).
template <class T>
struct PlaneBoxes {
  Surface sf = Surface::TanhSigmoid;
  std::vector<detail::Box<T>> box;
  std::vector<detail::SideValues<T>> sv;
  void set(Surface f, const T* xl, const T* xu, const T* yl, const T* yu, std::ptrdiff_t s) {
    sf = f;
    box.resize(s);
    sv.resize(s);
    for (std::ptrdiff_t i = 0; i < s; ++i) {
      box[i] = {xl[i], xu[i], yl[i], yu[i]};
      sv[i] = detail::side_values(f, box[i]);
    }
  }
};

// One row's copy of a layer of planes: the PlaneSet the backward pass reads, the points
// where each side's offset is attained, and the Adam state of the four slopes.
template <class T>
struct OptPlaneSet {
  PlaneSet<T> P;
  std::vector<T> xsL, ysL, xsU, ysU;               // argmin (lower) / argmax (upper)
  std::vector<T> gaL, gbL, gaU, gbU;               // gradients (accumulated by the sweep)
  std::vector<T> maL, mbL, maU, mbU, vaL, vbL, vaU, vbU;  // Adam moments
  void init_from(const PlaneSet<T>& src, const PlaneBoxes<T>& bx) {
    P = src;
    const std::size_t s = src.aL.size();
    for (auto* v : {&xsL, &ysL, &xsU, &ysU, &gaL, &gbL, &gaU, &gbU, &maL, &mbL, &maU, &mbU, &vaL, &vbL, &vaU, &vbU})
      v->assign(s, T(0));
    for (std::size_t i = 0; i < s; ++i) {
      refresh(bx, i, true);
      refresh(bx, i, false);
    }
  }
  // Exact offset (and where it is attained) of side `lower` of plane i for its slopes.
  void refresh(const PlaneBoxes<T>& bx, std::size_t i, bool lower) {
    if (lower) {
      const auto r = detail::offset_extremes(bx.sf, P.aL[i], P.bL[i], bx.box[i], bx.sv[i]);
      P.cL[i] = r.gmin - detail::plane_margin(P.aL[i], P.bL[i], bx.box[i], bx.sv[i]);
      xsL[i] = r.xmin; ysL[i] = r.ymin;
    } else {
      const auto r = detail::offset_extremes(bx.sf, P.aU[i], P.bU[i], bx.box[i], bx.sv[i]);
      P.cU[i] = r.gmax + detail::plane_margin(P.aU[i], P.bU[i], bx.box[i], bx.sv[i]);
      xsU[i] = r.xmax; ysU[i] = r.ymax;
    }
  }
  void zero_grad() {
    for (auto* v : {&gaL, &gbL, &gaU, &gbU}) std::fill(v->begin(), v->end(), T(0));
  }
  // Forward value of the plane selected by coefficient v at inputs (mx, my); accumulates
  // the gradient of L w.r.t. the selected side's slopes.
  std::vector<T> mxv, myv, vv;                     // last sweep: inputs and coefficient
  T eval_and_grad(std::size_t i, T v, T mx, T my) {
    if (mxv.size() != P.aL.size()) { mxv.assign(P.aL.size(), T(0)); myv = mxv; vv = mxv; }
    mxv[i] = mx; myv[i] = my; vv[i] = v;
    if (v >= T(0)) {
      gaL[i] += v * (mx - xsL[i]);
      gbL[i] += v * (my - ysL[i]);
      return P.aL[i] * mx + P.bL[i] * my + P.cL[i];
    }
    gaU[i] += v * (mx - xsU[i]);
    gbU[i] += v * (my - ysU[i]);
    return P.aU[i] * mx + P.bU[i] * my + P.cU[i];
  }
  // Coordinates scaled by the box: alpha = a wx, beta = b wy (the plane's rise across the
  // box), so one step size suits every plane. Largest |dL/dalpha|, |dL/dbeta| of the layer.
  static T wfloor(T w) { return std::max(w, T(1e-3)); }
  T grad_max(const PlaneBoxes<T>& bx) const {
    T m = T(0);
    for (std::size_t i = 0; i < P.aL.size(); ++i) {
      const T wx = wfloor(bx.box[i].xu - bx.box[i].xl), wy = wfloor(bx.box[i].yu - bx.box[i].yl);
      m = std::max(m, std::max(std::max(std::fabs(gaL[i]) / wx, std::fabs(gbL[i]) / wy),
                               std::max(std::fabs(gaU[i]) / wx, std::fabs(gbU[i]) / wy)));
    }
    return m;
  }
  // Best response: for each plane met by the last sweep, try the tangent plane of F at its
  // input values (clipped to the box), with its exact offset; keep it if the selected side is
  // tighter there (higher lower plane / lower upper plane at (mx, my)). For the bilinear F4
  // (a saddle: its tangent plane is a poor bound) the two McCormick planes of the side are
  // tried instead.
  void tangent_response(const PlaneBoxes<T>& bx) {
    for (std::size_t i = 0; i < vv.size(); ++i) {
      const T v = vv[i];
      if (v == T(0)) continue;
      const auto& b = bx.box[i];
      const bool lower = v >= T(0);
      if (bx.sf == Surface::Bilinear) {
        try_slopes(bx, i, lower, lower ? b.yl : b.yu, b.xl);
        try_slopes(bx, i, lower, lower ? b.yu : b.yl, b.xu);
        continue;
      }
      const T x = std::min(std::max(mxv[i], b.xl), b.xu), y = std::min(std::max(myv[i], b.yl), b.yu);
      const T sg = detail::surface_g(bx.sf, y), f = detail::surface_factor(bx.sf, x);
      const T A = detail::surface_df(bx.sf, x) * sg, B = f * detail::surface_dg(bx.sf, y);
      try_slopes(bx, i, lower, A, B);
    }
  }
  // Slopes (A, B) with their exact offset for side `lower` of plane i, kept if tighter at the
  // last sweep's inputs.
  void try_slopes(const PlaneBoxes<T>& bx, std::size_t i, bool lower, T A, T B) {
    T& a = lower ? P.aL[i] : P.aU[i];
    T& bb = lower ? P.bL[i] : P.bU[i];
    const T olda = a, oldb = bb, oldc = lower ? P.cL[i] : P.cU[i];
    const T oxs = lower ? xsL[i] : xsU[i], oys = lower ? ysL[i] : ysU[i];
    const T before = olda * mxv[i] + oldb * myv[i] + oldc;
    a = A; bb = B;
    refresh(bx, i, lower);
    const T after = a * mxv[i] + bb * myv[i] + (lower ? P.cL[i] : P.cU[i]);
    if (lower ? !(after > before) : !(after < before)) {  // keep the old plane
      a = olda; bb = oldb;
      (lower ? P.cL[i] : P.cU[i]) = oldc;
      (lower ? xsL[i] : xsU[i]) = oxs;
      (lower ? ysL[i] : ysU[i]) = oys;
    }
  }
  // Iteration `it` of optimize_row: a best response for it < br_iters, else an Adam step.
  void improve(const PlaneBoxes<T>& bx, int it, const OptSettings& opt) {
    if (it < opt.br_iters) tangent_response(bx);
    else adam_step(bx, it + 1 - opt.br_iters, T(opt.lr));
  }
  // Adam ascent step (iteration it >= 1) in the box-scaled coordinates; refreshes the
  // offsets of the slopes that moved.
  void adam_step(const PlaneBoxes<T>& bx, int it, T lr) {
    const T b1 = T(0.9), b2 = T(0.999), e = T(1e-30);
    const T c1 = T(1) - std::pow(b1, T(it)), c2 = T(1) - std::pow(b2, T(it));
    auto adam = [&](T& p, T g, T w, T& m, T& v) {  // p: slope, g = dL/dp, scaled by w
      g /= w;
      m = b1 * m + (T(1) - b1) * g;
      v = b2 * v + (T(1) - b2) * g * g;
      if (v > T(0)) p += lr * (m / c1) / (std::sqrt(v / c2) + e) / w;
    };
    const std::size_t s = P.aL.size();
    for (std::size_t i = 0; i < s; ++i) {
      const T wx = wfloor(bx.box[i].xu - bx.box[i].xl), wy = wfloor(bx.box[i].yu - bx.box[i].yl);
      if (gaL[i] != T(0) || gbL[i] != T(0) || maL[i] != T(0) || mbL[i] != T(0)) {
        adam(P.aL[i], gaL[i], wx, maL[i], vaL[i]);
        adam(P.bL[i], gbL[i], wy, mbL[i], vbL[i]);
        refresh(bx, i, true);
      }
      if (gaU[i] != T(0) || gbU[i] != T(0) || maU[i] != T(0) || mbU[i] != T(0)) {
        adam(P.aU[i], gaU[i], wx, maU[i], vaU[i]);
        adam(P.bU[i], gbU[i], wy, mbU[i], vbU[i]);
        refresh(bx, i, false);
      }
    }
  }
};

// x*_k = x̂_k − eps ∇||a||_q (the minimiser of a·x over the ball), into out (n).
template <class T>
void worst_input(const T* xhat, const T* a, std::ptrdiff_t n, T eps, DualNorm q, bool moves, T* out) {
  for (std::ptrdiff_t j = 0; j < n; ++j) out[j] = xhat[j];
  if (!moves) return;
  switch (q) {
    case DualNorm::L2: {
      const T nrm = dual_norm(a, n, q);
      if (nrm > T(0))
        for (std::ptrdiff_t j = 0; j < n; ++j) out[j] -= eps * a[j] / nrm;
      break;
    }
    case DualNorm::L1:
      for (std::ptrdiff_t j = 0; j < n; ++j) out[j] -= eps * (a[j] > T(0) ? T(1) : (a[j] < T(0) ? T(-1) : T(0)));
      break;
    case DualNorm::Linf: {
      std::ptrdiff_t jm = 0;
      for (std::ptrdiff_t j = 1; j < n; ++j)
        if (std::abs(a[j]) > std::abs(a[jm])) jm = j;
      if (a[jm] != T(0)) out[jm] -= eps * (a[jm] > T(0) ? T(1) : T(-1));
      break;
    }
  }
}

// y (rows) = W (rows x n) v (+ y if acc)
template <class T>
void matvec(MatView<const T> W, const T* v, T* y, bool acc) {
  for (std::ptrdiff_t r = 0; r < W.rows; ++r) {
    const T* w = W.row(r);
    T s = acc ? y[r] : T(0);
    for (std::ptrdiff_t j = 0; j < W.cols; ++j) s += w[j] * v[j];
    y[r] = s;
  }
}

// Test hook (opt_trace): at a generic point near `from` (every slope jittered by 1e-3
// relative, so that each offset's extreme is unique: at a volume-minimal start it is not,
// and the sweep's gradient is then a supergradient only), returns |g|^2 of the sweep's
// gradient g and the finite difference of the bound along g (a step of 1e-7 in slope space).
// bound() back-substitutes with the planes in own and records for the sweep; sweep(planes).
template <class T, class Bound, class Sweep>
std::pair<T, T> gradient_check(const std::vector<OptPlaneSet<T>>& from, const std::vector<PlaneBoxes<T>>& bx,
                               std::vector<const PlaneSet<T>*>& own, unsigned long long seed, Bound&& bound,
                               Sweep&& sweep) {
  const std::size_t layers = from.size();
  auto shift = [&](std::vector<OptPlaneSet<T>>& planes, auto&& delta) {
    for (std::size_t j = 0; j < layers; ++j)
      for (std::size_t i = 0; i < planes[j].P.aL.size(); ++i) {
        OptPlaneSet<T>& o = planes[j];
        o.P.aL[i] += delta(o.P.aL[i], o.gaL[i]); o.P.bL[i] += delta(o.P.bL[i], o.gbL[i]);
        o.P.aU[i] += delta(o.P.aU[i], o.gaU[i]); o.P.bU[i] += delta(o.P.bU[i], o.gbU[i]);
        o.refresh(bx[j], i, true);
        o.refresh(bx[j], i, false);
      }
  };
  auto use = [&](const std::vector<OptPlaneSet<T>>& planes) {
    for (std::size_t j = 0; j < layers; ++j) own[j] = &planes[j].P;
  };
  std::vector<OptPlaneSet<T>> jit = from;
  unsigned long long st = 0x9E3779B97F4A7C15ull + seed;
  shift(jit, [&](T a, T) {
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    const T u = T(static_cast<double>(st >> 11) * 0x1.0p-53) * T(2) - T(1);
    return T(1e-3) * u * (T(1) + std::fabs(a));
  });
  use(jit);
  const T L0 = bound();
  for (auto& o : jit) o.zero_grad();
  sweep(jit);
  T gg = T(0);
  for (const auto& o : jit)
    for (std::size_t i = 0; i < o.gaL.size(); ++i)
      gg += o.gaL[i] * o.gaL[i] + o.gbL[i] * o.gbL[i] + o.gaU[i] * o.gaU[i] + o.gbU[i] * o.gbU[i];
  const T h = gg > T(0) ? T(1e-7) / std::sqrt(gg) : T(0);
  shift(jit, [&](T, T g) { return h * g; });
  const T L1 = bound();
  use(from);
  return {gg, h > T(0) ? (L1 - L0) / h : T(0)};
}

// One objective row: its own copies of the first `layers` plane layers (from init; own
// points at them), iterations 0..iters. bound() back-substitutes the row with the copies
// (recording what the sweep needs) and returns its lower bound; sweep(op) runs the adjoint
// forward sweep on the copies (accumulating each plane's gradient) and returns the
// objective at the sweep's values; then best responses (iterations < opt.br_iters) or Adam
// steps (Layer::improve). Layer: OptPlaneSet (own[j] -> its PlaneSet) or OptLineSet
// (optim_lines.hpp); extra: further families (ExtraLayers) improved after each sweep.
// Returns the best bound seen. Test hook: trace (nullptr: off;
// 2 (iters + 1) + 2 entries) receives (L, sweep value) per iteration, then for planes
// gradient_check's pair at the start.
// A further family of a row's own relaxations, optimised along with the first (the GRU's
// z-lines): copies of the first `layers` of init in op, pointed to by own.
template <class Layer, class Boxes, class Relax>
struct ExtraLayers {
  const std::vector<Layer>& init;
  const std::vector<Boxes>& bx;
  std::vector<Layer>& op;
  std::vector<const Relax*>& own;
  std::ptrdiff_t layers;
  void start() {
    op.assign(init.begin(), init.begin() + layers);
    for (std::ptrdiff_t j = 0; j < layers; ++j) own[j] = &op[j].P;
  }
  void improve(int it, const OptSettings& opt) {
    for (std::ptrdiff_t j = 0; j < layers; ++j) op[j].improve(bx[j], it, opt);
  }
};

template <class T, class Layer, class Boxes, class Relax, class Bound, class Sweep, class... Extra>
T optimize_row(const std::vector<Layer>& init, const std::vector<Boxes>& bx, std::ptrdiff_t layers, int iters,
               const OptSettings& opt, std::vector<Layer>& op, std::vector<const Relax*>& own, Bound&& bound,
               Sweep&& sweep, T* trace = nullptr, Extra... extra) {
  op.assign(init.begin(), init.begin() + layers);
  for (std::ptrdiff_t j = 0; j < layers; ++j) own[j] = &op[j].P;
  (extra.start(), ...);
  T best = -std::numeric_limits<T>::infinity();
  for (int it = 0; it <= iters; ++it) {
    const T L = bound();
    best = std::max(best, L);
    if ((it == iters && !trace) || layers == 0) break;
    for (auto& o : op) o.zero_grad();
    const T Ls = sweep(op);
    if (trace) {
      trace[2 * it] = L;
      trace[2 * it + 1] = Ls;
      if constexpr (std::is_same_v<Layer, OptPlaneSet<T>>) {  // lines: best responses only
        if (it == 0) {
          const auto g = gradient_check<T>(op, bx, own, static_cast<unsigned long long>(layers), bound, sweep);
          trace[2 * (iters + 1)] = g.first;
          trace[2 * (iters + 1) + 1] = g.second;
        }
      }
    }
    if (it == iters) break;
    for (std::ptrdiff_t j = 0; j < layers; ++j) op[j].improve(bx[j], it, opt);
    (extra.improve(it, opt), ...);
  }
  return best;
}

// [lo_i, hi_i] of m neurons tightened by the rows ±e_i; row(obj) is the best lower bound of
// obj · layer (optimize_row). unit: m zeros, returned as zeros.
template <class T, class Row>
void refine_intervals(std::ptrdiff_t m, T* lo, T* hi, std::vector<T>& unit, Row&& row) {
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    unit[i] = T(1);
    lo[i] = std::max(lo[i], row(unit.data()));
    unit[i] = T(-1);
    hi[i] = std::min(hi[i], -row(unit.data()));
    unit[i] = T(0);
    if (lo[i] > hi[i]) std::swap(lo[i], hi[i]);  // crossed by rounding only (finish_stacked)
  }
}

}  // namespace pq
