// "optimized" planes (issue 11; RECURRENCES.md §3b): slopes chosen per bound, offsets exact.
//
// With the boxes of every plane fixed, the lower bound L_r of an objective row r (a
// margin, or ±e_i on an intermediate neuron) is a function of the slopes (a, b) of every
// plane that row's back-substitution passes through. Each row gets its own copy of the
// planes (a plane is valid whatever its slopes, because its offset is the exact
// extreme of F - a x - b y over the box, offset_extremes, widened by plane_margin),
// so every iterate is a sound bound and the best L_r seen is returned (general_optimize.hpp).
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
// then Adam on the tangent planes' points of contact in box-scaled coordinates (OptPlaneSet).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>

#include "bound_state.hpp"
#include "dual_norm.hpp"
#include "envelope_kernels.hpp"
#include "planes.hpp"
#include "sign_rule.hpp"
#include "sweep_kernels.hpp"

namespace pq {


// The boxes of one layer of s planes, with f and sigma at their sides (fixed while optimising).
template <class T>
struct PlaneBoxes {
  Surface sf = Surface::TanhSigmoid;
  std::vector<detail::Box<T>> box;
  std::vector<detail::SideValues<T>> sv;
  // Best responses on a grid (OptSettings::grid): the candidate planes of every row, each
  // computed on first use (a NaN slope: not yet) and kept while the boxes are. A layer whose
  // grid would hold more than detail::kMaxCandidates slots (more than 512 neurons at G = 8)
  // takes the tangent at each row's own point instead.
  struct Candidate {
    T a, b, c, xs, ys;
  };
  // Slots (neuron, side, cell) of cells 0 and 1: McCormick's two planes of the bilinear F4,
  // the one cell of G = 1.
  detail::CandidateGrid<Candidate> cand;
  static constexpr std::size_t kCellSlots = 2;
  // The grid's envelope (RECURRENCES.md §3b): slot (neuron, side, cell) holds the index in
  // `winners` of the cell whose candidate is highest (lower side; upper: lowest) at this
  // cell's centre, -1 before it is filled (fill_cell). The winners of one
  // box side are stored together (wcell: each one's cell), computed on first use: a
  // candidate slot for each of the G² cells of every side (2 MB per pass at LSTM T = 8,
  // h = 16, allocated and filled for each pass) was mostly missed in cache
  // (bench/results/2026-12-07-optimized-cost.md).
  detail::CandidateGrid<int> envelope;
  std::vector<Candidate> winners;
  std::vector<int> wcell;
  // Side `lower` of plane i with slopes (a, b): its exact offset and where it is attained.
  Candidate exact(std::size_t i, bool lower, T a, T b) const {
    if (lower) {
      const auto r = detail::offset_extremes(sf, a, b, box[i], sv[i], Want::Min);
      return {a, b, r.gmin - detail::plane_margin(a, b, box[i], sv[i]), r.xmin, r.ymin};
    }
    const auto r = detail::offset_extremes(sf, a, b, box[i], sv[i], Want::Max);
    return {a, b, r.gmax + detail::plane_margin(a, b, box[i], sv[i]), r.xmax, r.ymax};
  }
  // The slopes (F_x, F_y) of the tangent plane of F at (x, y).
  static std::pair<T, T> tangent_slopes(Surface sf, T x, T y) {
    const T sg = detail::surface_g(sf, y), f = detail::surface_factor(sf, x);
    return {detail::surface_df(sf, x) * sg, f * detail::surface_dg(sf, y)};
  }
  // Cells a side of a grid of G (at least 2: McCormick's two planes of the bilinear F4).
  static std::size_t per_side(int G) { return static_cast<std::size_t>(std::max(G * G, 2)); }
  // Grid slot (i, side, cell): the plane of slopes slopes() with its exact offset, computed
  // on first use.
  template <class Slopes>
  const Candidate& candidate(std::size_t i, bool lower, int cell, Slopes&& slopes) {
    const T none = std::numeric_limits<T>::quiet_NaN();
    Candidate& q = cand.at(box.size(), kCellSlots, i, lower, static_cast<std::size_t>(cell),
                           {none, none, none, none, none});
    if (std::isnan(q.a)) {
      const auto [a, b] = slopes();
      q = exact(i, lower, a, b);
    }
    return q;
  }
  // The bilinear F4's candidate slots: McCormick's two planes of each side of every box, (yl,
  // xl) and (yu, xu) for the lower side, (yu, xl) and (yl, xu) for the upper, with their exact
  // offsets (computed once for the boxes).
  const Candidate* mccormick() {
    if (!mccormick_) {
      for (std::size_t i = 0; i < box.size(); ++i) {
        const auto& b = box[i];
        for (const bool lower : {true, false}) {
          const T A0 = lower ? b.yl : b.yu, A1 = lower ? b.yu : b.yl;
          candidate(i, lower, 0, [&] { return std::make_pair(A0, b.xl); });
          candidate(i, lower, 1, [&] { return std::make_pair(A1, b.xu); });
        }
      }
      mccormick_ = true;
    }
    return candidate_slots();
  }
  bool mccormick_ = false;
  // The candidate slots (neuron, side, cell) of cells 0 and 1 (candidate()'s).
  const Candidate* candidate_slots() {
    const T none = std::numeric_limits<T>::quiet_NaN();
    return &cand.at(box.size(), kCellSlots, 0, true, 0, {none, none, none, none, none});
  }
  // The envelope's slots (neuron, side, cell) of grid G, −1 where a box's table is not filled.
  const int* envelope_slots(int G) { return &envelope.at(box.size(), per_side(G), 0, true, 0, -1); }
  // Winner k of side `lower` of box i: the tangent at its cell's centre (cell wcell[k]) with
  // its exact offset, computed on first use.
  const Candidate& winner(std::size_t i, bool lower, int G, int k) {
    Candidate& q = winners[static_cast<std::size_t>(k)];
    if (std::isnan(q.a)) {
      const int e = wcell[static_cast<std::size_t>(k)];
      const auto& b = box[i];
      const T x = detail::grid_centre(e / G, b.xl, b.xu, G), y = detail::grid_centre(e % G, b.yl, b.yu, G);
      const auto [a, bs] = tangent_slopes(sf, x, y);
      q = exact(i, lower, a, bs);
    }
    return q;
  }
  // The envelope tables of box i (RECURRENCES.md §3b): the candidates are the tangents at
  // the G x G cell centres; to rank them, each one's offsets are estimated as the min and max
  // of F - a x - b y over a kLattice x kLattice lattice of the box (its corners and edges
  // included), once per box (rank_box); a cell's winners (both sides) are found the first
  // time a row's sweep point lands in it (fill_cell: a pass meets ~40 % of the cells). The
  // estimate only picks the winner: a row that takes it gets its exact offset (winner()), so
  // every plane in use stays valid.
  static constexpr int kLattice = 9;
  // Per ranked box (rank_of[i], −1: not yet): its candidates' slopes a, b and estimated
  // offsets lo, hi, then the cell centres cx, cy (ranks, 4 G² + 2 G each), and each side's
  // candidate -> its slot in `winners` (rank_slots, 2 G² each, −1: not a winner yet).
  std::vector<int> rank_of;
  std::vector<T> ranks;
  std::vector<int> rank_slots;
  std::vector<int> win_;  // fill_cell's scratch (2 G²)
  struct Ranked {
    T *a, *b, *lo, *hi, *cx, *cy;
    int* slots;  // side * G² + candidate
  };
  // The storage of ranked box `id` at grid G.
  Ranked ranked(std::size_t id, int G) {
    const int C = G * G;
    T* a = ranks.data() + id * static_cast<std::size_t>(4 * C + 2 * G);
    int* slots = rank_slots.data() + id * static_cast<std::size_t>(2 * C);
    return {a, a + C, a + 2 * C, a + 3 * C, a + 4 * C, a + 4 * C + G, slots};
  }
  void rank_box(std::size_t i, int G) {
    const auto& b = box[i];
    const int S = kLattice, C = G * G;
    const std::size_t id = ranks.size() / static_cast<std::size_t>(4 * C + 2 * G);
    rank_of[i] = static_cast<int>(id);
    ranks.resize((id + 1) * static_cast<std::size_t>(4 * C + 2 * G));
    rank_slots.resize((id + 1) * static_cast<std::size_t>(2 * C), -1);
    const Ranked r = ranked(id, G);
    T *a = r.a, *bb = r.b, *lo = r.lo, *hi = r.hi, *cx = r.cx, *cy = r.cy;
    T fx[kLattice], gy[kLattice], lx[kLattice], ly[kLattice];
    for (int j = 0; j < S; ++j) {
      lx[j] = j + 1 == S ? b.xu : b.xl + (b.xu - b.xl) * (T(j) / T(S - 1));
      ly[j] = j + 1 == S ? b.yu : b.yl + (b.yu - b.yl) * (T(j) / T(S - 1));
      fx[j] = detail::surface_factor(sf, lx[j]);
      gy[j] = detail::surface_g(sf, ly[j]);
    }
    // the cell centres and the factors of tangent_slopes there, once per axis
    T dfx[kMaxGrid], fcx[kMaxGrid], gcy[kMaxGrid], dgy[kMaxGrid];
    for (int k = 0; k < G; ++k) {
      cx[k] = detail::grid_centre(k, b.xl, b.xu, G);
      cy[k] = detail::grid_centre(k, b.yl, b.yu, G);
      dfx[k] = detail::surface_df(sf, cx[k]);
      fcx[k] = detail::surface_factor(sf, cx[k]);
      gcy[k] = detail::surface_g(sf, cy[k]);
      dgy[k] = detail::surface_dg(sf, cy[k]);
    }
    // each candidate's slopes (tangent_slopes at its cell's centre) and estimated min / max
    // of F - a x - b y
    for (int k = 0; k < C; ++k) {
      a[k] = dfx[k / G] * gcy[k % G];
      bb[k] = fcx[k / G] * dgy[k % G];
      lo[k] = std::numeric_limits<T>::infinity();
      hi[k] = -std::numeric_limits<T>::infinity();
    }
    detail::envelope_lattice(S, fx, gy, lx, ly, C, a, bb, lo, hi);
  }
  // Cell c's winner of each side of box i into the tables (envelope_kernels.hpp); a side's
  // distinct winners get one slot each in `winners` (offsets computed on first use).
  void fill_cell(std::size_t i, int G, int c) {
    if (rank_of[i] < 0) rank_box(i, G);
    const int C = G * G;
    const std::size_t per = per_side(G), n = box.size();
    const Ranked r = ranked(static_cast<std::size_t>(rank_of[i]), G);
    win_.resize(2 * static_cast<std::size_t>(C));
    detail::envelope_winners(G, r.cx, r.cy, C, r.a, r.b, r.lo, r.hi, win_.data(), c, c + 1);
    const T none = std::numeric_limits<T>::quiet_NaN();
    for (int side = 0; side < 2; ++side) {
      const int w = win_[side * C + c];
      int& slot = r.slots[side * C + w];
      if (slot < 0) {
        slot = static_cast<int>(winners.size());
        winners.push_back({none, none, none, none, none});
        wcell.push_back(w);
      }
      envelope.at(n, per, i, side == 0, static_cast<std::size_t>(c), -1) = slot;
    }
  }
  // The G x G grid's cells by neuron in arrays (envelope_response): the box's sides, and G
  // over its widths (0 for a degenerate side: one cell), for the G last asked.
  struct GridScale {
    std::vector<T> xl, xu, yl, yu, kx, ky;
    int G = 0;
  };
  GridScale gs;
  const GridScale& grid_scale(int G) {
    if (gs.G == G) return gs;
    const std::size_t n = box.size();
    for (auto* v : {&gs.xl, &gs.xu, &gs.yl, &gs.yu, &gs.kx, &gs.ky}) v->resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& b = box[i];
      gs.xl[i] = b.xl, gs.xu[i] = b.xu, gs.yl[i] = b.yl, gs.yu[i] = b.yu;
      gs.kx[i] = b.xu > b.xl ? T(G) / (b.xu - b.xl) : T(0);
      gs.ky[i] = b.yu > b.yl ? T(G) / (b.yu - b.yl) : T(0);
    }
    gs.G = G;
    return gs;
  }
  void set(Surface f, const T* xl, const T* xu, const T* yl, const T* yu, std::ptrdiff_t s) {
    sf = f;
    gs.G = 0;
    mccormick_ = false;
    box.resize(s);
    sv.resize(s);
    cand.clear();
    envelope.clear();
    winners.clear();
    wcell.clear();
    rank_of.assign(static_cast<std::size_t>(s), -1);
    ranks.clear();
    rank_slots.clear();
    for (std::ptrdiff_t i = 0; i < s; ++i) {
      box[i] = {xl[i], xu[i], yl[i], yu[i]};
      sv[i] = detail::side_values(f, box[i]);
    }
  }
};

// One row's copy of a layer of planes: the PlaneSet the backward pass reads, the points
// where each side's offset is attained, each side's point of contact when it is a tangent
// plane, and the Adam state of those points.
template <class T>
struct OptPlaneSet {
  PlaneSet<T> P;
  std::vector<T> xsL, ysL, xsU, ysU;               // argmin (lower) / argmax (upper)
  std::vector<T> gaL, gbL, gaU, gbU;               // gradients (accumulated by the sweep)
  std::vector<T> maL, mbL, maU, mbU, vaL, vbL, vaU, vbU;  // Adam moments (a: of px, b: of py)
  std::vector<T> pxL, pyL, pxU, pyU;               // the tangent point of each side (NaN: not a tangent)
  // A row's start: the shared planes (their offsets exact already). With contacts (the
  // gradients read them), also where each side's offset is attained, found by recomputing
  // it (the same offset); without, those stay 0 (bench/results/2026-12-07-optimized-cost.md).
  void init_from(const PlaneSet<T>& src, const PlaneBoxes<T>& bx, bool contacts) {
    P = src;
    const std::size_t s = src.aL.size();
    for (auto* v : {&xsL, &ysL, &xsU, &ysU, &gaL, &gbL, &gaU, &gbU, &maL, &mbL, &maU, &mbU, &vaL, &vbL, &vaU, &vbU})
      v->assign(s, T(0));
    for (auto* v : {&pxL, &pyL, &pxU, &pyU}) v->assign(s, std::numeric_limits<T>::quiet_NaN());
    if (!contacts) return;
    for (std::size_t i = 0; i < s; ++i) {
      refresh(bx, i, true);
      refresh(bx, i, false);
    }
  }
  // Exact offset (and where it is attained) of side `lower` of plane i for its slopes.
  void refresh(const PlaneBoxes<T>& bx, std::size_t i, bool lower) {
    if (lower) {
      const auto q = bx.exact(i, true, P.aL[i], P.bL[i]);
      P.cL[i] = q.c;
      xsL[i] = q.xs; ysL[i] = q.ys;
    } else {
      const auto q = bx.exact(i, false, P.aU[i], P.bU[i]);
      P.cU[i] = q.c;
      xsU[i] = q.xs; ysU[i] = q.ys;
    }
  }
  void zero_grad() {
    for (auto* v : {&gaL, &gbL, &gaU, &gbU}) std::fill(v->begin(), v->end(), T(0));
  }
  // A fresh copy of src (the row's start, init_from's) for one row. Without gradients (no
  // Adam step follows and no gradient check, OptSettings) only the planes are copied: the
  // contact points, gradients and Adam moments are read by those alone.
  void start_row(const OptPlaneSet& src, bool with_grads) {
    if (with_grads || xsL.size() != src.xsL.size()) *this = src;
    else P = src.P;
    grads = with_grads;
    const std::size_t s = P.aL.size();
    mxv.resize(s);
    myv.resize(s);
    vv.assign(s, T(0));
  }
  // The sweep's inputs and coefficients of every plane (s each), swept elsewhere (a block's
  // sweep with the shared planes, StepRelaxations::take_sweep) as if by sweep_values.
  void load_sweep(const T* mx, const T* my, const T* v) {
    const std::size_t s = P.aL.size();
    mxv.assign(mx, mx + s);
    myv.assign(my, my + s);
    vv.assign(v, v + s);
  }
  std::vector<T> mxv, myv, vv;                     // last sweep: inputs and coefficient
  bool grads = true;
  // A row's forward sweep through this step (the cells' sweep): the planes the coefficients v
  // select at inputs (mx, my), s each, into out (Add: added to it), by the block's sweep
  // kernel (sweep_kernels.hpp); the sweep's values kept for the best responses and, with
  // grads, the gradient of L w.r.t. each selected side's slopes.
  template <bool Add = false>
  void sweep_values(const T* v, const T* mx, const T* my, T* out) {
    load_sweep(mx, my, v);
    const std::size_t s = P.aL.size();
    if (grads) {
      zero_grad();
      for (std::size_t i = 0; i < s; ++i) {
        if (v[i] >= T(0)) {
          gaL[i] += v[i] * (mx[i] - xsL[i]);
          gbL[i] += v[i] * (my[i] - ysL[i]);
        } else {
          gaU[i] += v[i] * (mx[i] - xsU[i]);
          gbU[i] += v[i] * (my[i] - ysU[i]);
        }
      }
    }
    plane_values<T, Add>(P, v, mx, my, static_cast<std::ptrdiff_t>(s), out);
  }
  // Steps in coordinates scaled by the box (a floor for degenerate ones), so one step size
  // suits every plane.
  static T wfloor(T w) { return std::max(w, T(1e-3)); }
  // Best response: for each plane met by the last sweep, try the tangent plane of F at its
  // input values (clipped to the box), with its exact offset; keep it if the selected side is
  // tighter there (higher lower plane / lower upper plane at (mx, my)). For the bilinear F4
  // (a saddle: its tangent plane is a poor bound) the two McCormick planes of the side are
  // tried instead. On a grid (G > 0, OptSettings::grid) the point moves to the centre of its
  // cell of the G x G grid over the box, and from G = 2 on the plane tried is the grid's
  // envelope there (the best of the G^2 cells' tangents, fill_cell); each cell's plane
  // is looked up once computed: the rows of a pass share at most G^2 offsets per plane and
  // side instead of one per row met.
  void tangent_response(PlaneBoxes<T>& bx, int G) {
    if (!detail::grid_fits(bx.box.size(), PlaneBoxes<T>::per_side(G))) G = 0;
    if (G >= 2 && bx.sf != Surface::Bilinear) return envelope_response(bx, G);
    for (std::size_t i = 0; i < vv.size(); ++i) {
      const T v = vv[i];
      if (v == T(0)) continue;
      const auto& b = bx.box[i];
      const bool lower = v >= T(0);
      if (bx.sf == Surface::Bilinear) {
        const T A0 = lower ? b.yl : b.yu, A1 = lower ? b.yu : b.yl, none = std::numeric_limits<T>::quiet_NaN();
        try_slopes(bx, i, lower, G > 0 ? 0 : -1, [&] { return std::make_pair(A0, b.xl); }, none, none);
        try_slopes(bx, i, lower, G > 0 ? 1 : -1, [&] { return std::make_pair(A1, b.xu); }, none, none);
        continue;
      }
      // the tangent at the point (G = 0) or at the centre of its cell, the box (G = 1)
      T x = std::min(std::max(mxv[i], b.xl), b.xu), y = std::min(std::max(myv[i], b.yl), b.yu);
      if (G == 1) x = detail::grid_centre(0, b.xl, b.xu, 1), y = detail::grid_centre(0, b.yl, b.yu, 1);
      try_slopes(bx, i, lower, G == 1 ? 0 : -1, [&] { return PlaneBoxes<T>::tangent_slopes(bx.sf, x, y); }, x, y);
    }
  }
  // G >= 2: F is not convex (concave) over most boxes, so the tangent at the point is seldom
  // the best plane there; the grid's best plane at the centre of the point's cell instead
  // (its own tangent is one of the candidates; the winner's centre is the point of contact
  // that only Adam steps, grads, read). At the sweep's values (mx, my) with coefficients v
  // (s each). In three sweeps over the neurons, so that the loads of different neurons
  // overlap: each met side's slot of the envelope, then its winner, then the take.
  void envelope_response(PlaneBoxes<T>& bx, int G) { envelope_response(bx, G, mxv.data(), myv.data(), vv.data(), P); }
  // (from: the planes responded to; P, written whole without gradients, may be another set.)
  void envelope_response(PlaneBoxes<T>& bx, int G, const T* mx, const T* my, const T* v, const PlaneSet<T>& from) {
    const std::size_t s = P.aL.size();
    wk_.resize(s);
    const int* table = bx.envelope_slots(G);
    const int per = static_cast<int>(PlaneBoxes<T>::per_side(G));
    const auto& g = bx.grid_scale(G);
    int* wk = wk_.data();
    detail::envelope_cells<T>({mx, my, v, g.xl.data(), g.xu.data(), g.kx.data(), g.yl.data(), g.yu.data(), g.ky.data()},
                              s, G, per, wk);
    for (std::size_t i = 0; i < s; ++i) {  // each met slot's winner, computed on first use
      if (wk[i] < 0) continue;
      int k = table[wk[i]];
      if (k < 0) {  // the cell's winners (no reallocation: the slots exist)
        bx.fill_cell(i, G, wk[i] % per);
        k = table[wk[i]];
      }
      bx.winner(i, v[i] >= T(0), G, k);
      wk[i] = k;
    }
    if (!grads) return take_winners(bx, mx, my, v, from);
    for (std::size_t i = 0; i < s; ++i) {
      if (wk[i] < 0) continue;
      const bool lower = v[i] >= T(0);
      const auto& q = bx.winner(i, lower, G, wk[i]);
      const int e = bx.wcell[static_cast<std::size_t>(wk[i])];
      const auto& b = bx.box[i];
      take_if_tighter(i, lower, q, mx[i], my[i], detail::grid_centre(e / G, b.xl, b.xu, G),
                      detail::grid_centre(e % G, b.yl, b.yu, G));
    }
  }
  // Each met side takes its winner (wk_, computed) where tighter at (mx, my): the take of
  // take_if_tighter without contact points, with both sides written through selects (the
  // side and the take are data-dependent: as branches they were mostly mispredicted).
  void take_winners(const PlaneBoxes<T>& bx, const T* mx, const T* my, const T* v, const PlaneSet<T>& from) {
    if (bx.winners.empty()) {  // none met
      if (&from != &P) P = from;
      return;
    }
    detail::envelope_take<T>(take_args(mx, my, v, from), bx.winners.data(), wk_.data(), P.aL.size());
  }
  // The take kernels' arguments: the sides of `from`, into P.
  detail::TakeArgs<T> take_args(const T* mx, const T* my, const T* v, const PlaneSet<T>& from) {
    return {mx, my, v, {from.aL.data(), from.bL.data(), from.cL.data(), from.aU.data(), from.bU.data(), from.cU.data()},
            {P.aL.data(), P.bL.data(), P.cL.data(), P.aU.data(), P.bU.data(), P.cU.data()}};
  }
  // A best response of a row without gradients at values swept elsewhere (a block's sweep:
  // inputs mx, my and coefficients v, s each; StepRelaxations::respond_rows) to the planes
  // `from` (the row's start), into P.
  void respond_swept(PlaneBoxes<T>& bx, const T* mx, const T* my, const T* v, const OptSettings& opt,
                     const PlaneSet<T>& from) {
    if (P.aL.size() != from.aL.size()) P = from;  // (sized once)
    const int G = opt.grid;
    const bool fits = detail::grid_fits(bx.box.size(), PlaneBoxes<T>::per_side(G));
    if (opt.br_iters > 0 && !grads && G >= 2 && bx.sf != Surface::Bilinear && fits)
      return envelope_response(bx, G, mx, my, v, from);
    if (opt.br_iters > 0 && !grads && G > 0 && bx.sf == Surface::Bilinear && fits)
      return mccormick_response(bx, mx, my, v, from);
    P = from;
    load_sweep(mx, my, v);
    improve(bx, 0, opt);
  }
  // The bilinear F4 on a grid without gradients (tangent_response's McCormick branch): each
  // met side tries the first of McCormick's two planes of that side, then the second, each
  // kept where tighter at (mx, my) (the planes of every box computed once, mccormick()).
  void mccormick_response(PlaneBoxes<T>& bx, const T* mx, const T* my, const T* v, const PlaneSet<T>& from) {
    const std::size_t s = P.aL.size();
    const auto* W = bx.mccormick();
    wk_.resize(s);
    int* wk = wk_.data();
    for (std::size_t i = 0; i < s; ++i) {  // (selects: vectorised)
      const int slot = (2 * static_cast<int>(i) + static_cast<int>(v[i] < T(0))) * PlaneBoxes<T>::kCellSlots;
      wk[i] = v[i] != T(0) ? slot : -1;
    }
    detail::envelope_take<T>(take_args(mx, my, v, from), W, wk, s);  // McCormick's first plane,
    for (std::size_t i = 0; i < s; ++i) wk[i] += wk[i] >= 0 ? 1 : 0;
    detail::envelope_take<T>(take_args(mx, my, v, P), W, wk, s);     // then the second
  }

  std::vector<int> wk_;  // envelope_response's scratch: each neuron's slot, then winner (−1: not met)
  // Slopes (A, B) = slopes() with their exact offset for side `lower` of plane i, kept if
  // tighter at the last sweep's inputs (with (px, py), the point of contact of a tangent
  // plane, NaN for McCormick's); cell >= 0: the candidate slot of that cell (McCormick's two
  // planes, G = 1's one cell), computed there on first use.
  template <class Slopes>
  void try_slopes(PlaneBoxes<T>& bx, std::size_t i, bool lower, int cell, Slopes&& slopes, T px, T py) {
    if (cell >= 0) return take_if_tighter(i, lower, bx.candidate(i, lower, cell, slopes), mxv[i], myv[i], px, py);
    const auto [a, b] = slopes();
    take_if_tighter(i, lower, bx.exact(i, lower, a, b), mxv[i], myv[i], px, py);
  }
  // Side `lower` of plane i becomes q (slopes, exact offset, where it is attained; (px, py)
  // its point of contact) if q is tighter at the sweep's inputs (mx, my).
  // (Where the offset is attained and the point of contact only for gradients, grads.)
  PQ_ALWAYS_INLINE void take_if_tighter(std::size_t i, bool lower, const typename PlaneBoxes<T>::Candidate& q, T mx,
                                        T my, T px, T py) {
    T* pa = (lower ? P.aL : P.aU).data();
    T* pb = (lower ? P.bL : P.bU).data();
    T* pc = (lower ? P.cL : P.cU).data();
    const T before = pa[i] * mx + pb[i] * my + pc[i];
    const T after = q.a * mx + q.b * my + q.c;
    const bool take = lower ? after > before : after < before;  // else keep the old plane
    pa[i] = take ? q.a : pa[i];
    pb[i] = take ? q.b : pb[i];
    pc[i] = take ? q.c : pc[i];
    if (!grads || !take) return;
    (lower ? xsL : xsU)[i] = q.xs;
    (lower ? ysL : ysU)[i] = q.ys;
    (lower ? pxL : pxU)[i] = px;
    (lower ? pyL : pyU)[i] = py;
  }
  // Iteration `it` of a row's optimisation (general_optimize.hpp): a best response for it < br_iters, else an Adam step.
  void improve(PlaneBoxes<T>& bx, int it, const OptSettings& opt) {
    if (it < opt.br_iters) tangent_response(bx, opt.grid);
    else adam_step(bx, it + 1 - opt.br_iters, T(opt.lr));
  }
  // Adam ascent step (iteration it >= 1) on the tangent points: each side that is a tangent
  // plane of F at (px, py) moves its point (box-scaled coordinates, clipped to the box), the
  // chain rule through (a, b) = grad F(px, py) on the envelope gradient; exact offsets again.
  void adam_step(const PlaneBoxes<T>& bx, int it, T lr) {
    const T b1 = T(0.9), b2 = T(0.999), e = T(1e-30);
    const T c1 = T(1) - std::pow(b1, T(it)), c2 = T(1) - std::pow(b2, T(it));
    auto adam = [&](T& p, T g, T w, T lo, T hi, T& m, T& v) {  // p: coordinate, g = dL/dp
      g *= w;
      m = b1 * m + (T(1) - b1) * g;
      v = b2 * v + (T(1) - b2) * g * g;
      if (v > T(0)) p += lr * (m / c1) / (std::sqrt(v / c2) + e) * w;
      p = std::min(std::max(p, lo), hi);
    };
    if (bx.sf == Surface::Bilinear) return;
    const std::size_t s = P.aL.size();
    for (int side = 0; side < 2; ++side) {
      const bool lower = side == 0;
      auto& px = lower ? pxL : pxU; auto& py = lower ? pyL : pyU;
      auto& ga = lower ? gaL : gaU; auto& gb = lower ? gbL : gbU;
      auto& ma = lower ? maL : maU; auto& mb = lower ? mbL : mbU;
      auto& va = lower ? vaL : vaU; auto& vb = lower ? vbL : vbU;
      for (std::size_t i = 0; i < s; ++i) {
        if (std::isnan(px[i]) || (ga[i] == T(0) && gb[i] == T(0) && ma[i] == T(0) && mb[i] == T(0))) continue;
        const auto& b = bx.box[i];
        // F = f(x) g(y), f in {tanh, id}, g in {sigma, id}: value and two derivatives of each
        T f = px[i], fx = T(1), fxx = T(0), g = py[i], gy = T(1), gyy = T(0);
        if (detail::tanh_f(bx.sf)) detail::phi_derivatives(Activation::Tanh, px[i], f, fx, fxx);
        if (detail::sigmoid_g(bx.sf)) detail::phi_derivatives(Activation::Sigmoid, py[i], g, gy, gyy);
        // a = fx g, b = f gy: da/dx = fxx g, da/dy = fx gy = db/dx, db/dy = f gyy
        const T dx = ga[i] * fxx * g + gb[i] * fx * gy, dy = ga[i] * fx * gy + gb[i] * f * gyy;
        adam(px[i], dx, wfloor(b.xu - b.xl), b.xl, b.xu, ma[i], va[i]);
        adam(py[i], dy, wfloor(b.yu - b.yl), b.yl, b.yu, mb[i], vb[i]);
        std::tie((lower ? P.aL : P.aU)[i], (lower ? P.bL : P.bU)[i]) = PlaneBoxes<T>::tangent_slopes(bx.sf, px[i], py[i]);
        refresh(bx, i, lower);
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

}  // namespace pq
