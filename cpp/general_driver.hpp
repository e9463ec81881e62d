// The generic bound pass over the general model (docs/GENERAL.md): one driver for every
// shape, composing the verbs of the cells (cells/*.hpp) and of the Dense stacks
// (dense_stack.hpp) over the (layer, direction, time) graph.
//
// Forward order (every bound is one back-substitution of [I; −I] through the relaxations
// already fixed): frame-layer pre-activations per frame; then layer by layer, each
// direction's steps in its own order (forward t = 0..T−1, backward t = T−1..0), the cell
// relaxing each step; the head's hidden pre-activations; finally the margins.
//
// A back-substitution runs in reverse topological order: the chain it enters (or the head
// and the readout), then layer by layer downwards. Coefficients that reach layer l's input
// at time t accumulate in in_[l] block t (both directions of layer l add there); they are
// layer l−1's coefficients on [h_fwd_t, h_bwd_t], read by its chains as they pass t. At
// the bottom, the coefficients on each frame, summed over every path, are carried through
// the frame layers and concretised over the threat model (threat_model.hpp): summing
// before the dual norm is what makes a bidirectional layer's bound tight (‖A₁+A₂‖ ≤ ‖A₁‖+‖A₂‖).
// Rows are processed in chunks of at most Rc, so memory stays O(Rc·T·width).
//
// planes="optimized" (RECURRENCES.md §3b): every bound is then refined row by row, each row
// with its own relaxations (general_optimize.hpp, called from `bound` and `head_bound`).
//
// rounding="sound" (docs/ROUNDING.md, rounding.hpp): every step also charges its rounding
// error to err_ (the cells, the Dense stacks, the concretiser), using bounds on the magnitude
// of every variable: the inputs (|x̂| plus the largest displacement), each layer's outputs
// (Cell::out_magnitude), the Dense layers' outputs (dense_out_magnitude). A back-substitution
// ends with settle: d − 2 err, rounded down.
#pragma once
#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include "bound_state.hpp"
#include "cells/cell_gru.hpp"
#include "cells/cell_lstm.hpp"
#include "cells/cell_rnn.hpp"
#include "dense_stack.hpp"
#include "general_model.hpp"
#include "general_optimize.hpp"
#include "linear_form.hpp"
#include "matmul.hpp"
#include "row_pool.hpp"
#include "threat_model.hpp"

namespace pq {

template <class T>
class GeneralPass final : public Bounder<T> {
 public:
  GeneralPass(const GeneralNet<T>& net, const ThreatModel<T>& tm, const PassOptions& opt, std::ptrdiff_t K)
      : net_(net), tm_(tm), ball_(tm.ball), opt_(opt), Tn_(tm.ball.x.rows), L_(static_cast<std::ptrdiff_t>(net.layers.size())) {
    // widths of in_[l]: layer l's input (l < L), the readout's source (l = L)
    std::ptrdiff_t need = 2 * K, sum_w = 0, dense_w = tm.ball.x.cols, frame_rows = 0;
    for (const auto& f : net.frame) {
      frame_rows = std::max(frame_rows, 2 * f.w.rows);
      dense_w = std::max({dense_w, f.w.rows, f.w.cols});
    }
    for (const auto& h : net.head) {
      need = std::max(need, 2 * h.w.rows);
      dense_w = std::max({dense_w, h.w.rows, h.w.cols});
    }
    for (const auto& l : net.layers) {
      width_.push_back(l.input());
      const std::ptrdiff_t G = l.kind == CellKind::Rnn ? 1 : l.kind == CellKind::Lstm ? 4 : 3;
      need = std::max(need, 2 * G * l.hidden());
    }
    width_.push_back(net.layers.back().output());
    for (auto w : width_) sum_w += w;
    // chunk: the objective rows carried together through every step (matmul.hpp
    // chunk_rows): one product block of the widest product on one thread, kMaxRowBlocks
    // blocks on several; fewer where the coefficient store would pass ~48 MB (whole
    // blocks where it can)
    std::ptrdiff_t widest = dense_w;
    for (const auto& l : net.layers) widest = std::max({widest, l.input(), l.hidden()});
    const std::ptrdiff_t B = detail::block_rows(widest);
    const RowPool* pool = product_pool();
    const std::ptrdiff_t budget = static_cast<std::ptrdiff_t>((48u << 20) / (sizeof(T) * Tn_ * sum_w));
    std::ptrdiff_t cap = detail::chunk_rows(widest, pool && pool->threads() > 1);
    if (budget < cap) cap = budget >= B ? budget / B * B : budget;
    Rc_ = std::max<std::ptrdiff_t>(std::min(need, cap), 16);
    for (std::ptrdiff_t l = 0; l <= L_; ++l) {
      in_.emplace_back(Tn_ * Rc_, width_[l]);
      has_.emplace_back(Tn_, char(0));
    }
    d_.assign(std::max(Rc_, frame_rows), T(0));
    dense_rows_ = std::max(Rc_, frame_rows);
    scratch_ = std::make_unique<DenseScratch<T>>(dense_rows_, dense_w);
    if (opt.sound) {
      rd_ = Rounding<T>::sound(longest_sum(net, tm, K));
      err_.assign(d_.size(), T(0));
      for (std::ptrdiff_t l = 0; l < L_; ++l) inmag_.emplace_back(Tn_, width_[l]);
      if (!net.frame.empty()) frame_ch_.assign(static_cast<std::size_t>(Tn_), DenseCharges<T>(net.frame));
      head_ch_ = std::make_unique<DenseCharges<T>>(net.head);
    }
    conc_ = std::make_unique<Concretiser<T>>(tm_, dense_rows_, rd_);
    obj_ = Mat<T>(dense_rows_, dense_w);
    // the cells: layer 0 reads the frames directly unless frame layers come first
    const bool direct = net.frame.empty();
    for (std::ptrdiff_t l = 0; l < L_; ++l) {
      const auto& layer = net.layers[l];
      const CellRounding<T> cr{rd_, opt.sound ? &inmag_[l] : nullptr, opt.sound && opt.f32_products};
      chains_.emplace_back();
      for (const auto& w : layer.dirs) {
        const MatView<const T>* x = (l == 0 && direct) ? &ball_.x : nullptr;
        if (layer.kind == CellKind::Rnn)
          chains_.back().push_back(std::make_unique<RnnCell<T>>(w, layer.act, opt.optimized(), Tn_, Rc_, x, cr));
        else if (layer.kind == CellKind::Lstm)
          chains_.back().push_back(std::make_unique<LstmCell<T>>(w, opt, Tn_, Rc_, x, cr));
        else chains_.back().push_back(std::make_unique<GruCell<T>>(w, opt, Tn_, Rc_, x, cr));
      }
    }
    frame_lines_.assign(Tn_, std::vector<LineSet<T>>(net.frame.size()));
    for (const auto& f : net.frame) frame_lo_.emplace_back(Tn_, f.w.rows), frame_up_.emplace_back(Tn_, f.w.rows);
    head_lines_.resize(net.head.size());
    for (const auto& h : net.head) head_lo_.emplace_back(1, h.w.rows), head_up_.emplace_back(1, h.w.rows);
    if (opt.optimized()) optim_ = std::make_unique<RowOptimizer<T>>(net_, ball_, opt.opt, chains_);
  }

  // Bounds of spec_w · logits + spec_b (spec_w: K x C).
  BoundResult<T> run(MatView<const T> spec_w, const T* spec_b) {
    if (rd_.on()) input_magnitudes();
    for (std::size_t j = 0; j < net_.frame.size(); ++j)
      for (std::ptrdiff_t t = 0; t < Tn_; ++t) bound_frame_layer(static_cast<std::ptrdiff_t>(j), t);
    for (std::ptrdiff_t l = 0; l < L_; ++l) {
      if (rd_.on()) layer_input_magnitudes(l);
      for (std::size_t k = 0; k < chains_[l].size(); ++k) {
        cur_l_ = l;
        cur_dir_ = static_cast<std::ptrdiff_t>(k);
        const bool rev = k == 1;
        for (std::ptrdiff_t i = 0; i < Tn_; ++i) {
          const std::ptrdiff_t t = rev ? Tn_ - 1 - i : i;
          const std::ptrdiff_t prev = i == 0 ? -1 : (rev ? t + 1 : t - 1);
          chains_[l][k]->relax(*this, t, prev, i + 1 == Tn_);
        }
      }
    }
    const std::ptrdiff_t H = static_cast<std::ptrdiff_t>(net_.head.size());
    for (std::ptrdiff_t j = 0; j < H; ++j) {
      if (rd_.on()) head_input_charges(j);
      if (j + 1 == H && !net_.head[j].has_act) break;
      const std::ptrdiff_t m = net_.head[j].w.rows;
      head_bound(2 * m, j, true, [&](std::ptrdiff_t r0, std::ptrdiff_t R, MatView<T> P, T*) {
        set_signed_identity_rows(P, r0, R, m, 0);
      }, head_lo_[j].row(0), head_up_[j].row(0), true);
      if (net_.head[j].has_act) {
        head_lines_[j].compute(net_.head[j].act, head_lo_[j].row(0), head_up_[j].row(0), m);
        if (rd_.on())
          line_charge(head_lines_[j], head_lo_[j].row(0), head_up_[j].row(0), m, rd_.G, head_ch_->lin[j].data(), false);
      }
    }
    const std::ptrdiff_t K = spec_w.rows, C = spec_w.cols;
    BoundResult<T> res;
    res.lower.resize(K);
    res.upper.resize(K);
    const HeadSetup margins = [&](std::ptrdiff_t r0, std::ptrdiff_t R, MatView<T> P, T* d) {
      for (std::ptrdiff_t i = 0; i < R; ++i) {  // rows [spec; −spec], constants [b; −b]
        const std::ptrdiff_t r = r0 + i, k = r < K ? r : r - K;
        const T sg = r < K ? T(1) : T(-1);
        for (std::ptrdiff_t c = 0; c < C; ++c) P(i, c) = sg * spec_w(k, c);
        d[i] = sg * spec_b[k];
      }
    };
    res.slope.resize(K);
    head_bound(2 * K, H - 1, false, margins, res.lower.data(), res.upper.data(), false, res.slope.data());
    if (optim_) optimize_margins(spec_w, spec_b, margins, res);
    for (T& v : res.slope) v *= unit_floor();
    if (opt_.want_states) collect_states(res.states);
    return res;
  }

  void bound(std::ptrdiff_t m, Entry entry, std::ptrdiff_t t, const typename Bounder<T>::Setup& setup, T* lo,
             T* up) override {
    // optimized (§3b): each row again with its own relaxations, on the last inter_steps steps,
    // from its block's back-substitution (the records of its first iterate)
    const std::ptrdiff_t pos = cur_dir_ == 1 ? Tn_ - 1 - t : t;
    const bool refine = optim_ && optim_->settings().inter_iters > 0 && pos >= Tn_ - optim_->settings().inter_steps;
    const typename RowOptimizer<T>::Scope here{cur_l_, cur_dir_, pos + (entry == Entry::Pre ? 0 : 1)};
    std::vector<T> all(static_cast<size_t>(2 * m));
    for (std::ptrdiff_t r0 = 0; r0 < 2 * m; r0 += Rc_) {
      const std::ptrdiff_t R = std::min(Rc_, 2 * m - r0);
      if (refine) optim_->keep_block(R);
      chain_rows(entry, t, setup, r0, R);
      std::copy(d_.begin(), d_.begin() + R, all.begin() + r0);
      if (!refine) continue;
      optim_->keep_block(0);
      optim_->sweep_block(R, here);
      if (optim_->settings().block_rows()) {
        optim_->block_rows(R, all.data() + r0, [&](std::ptrdiff_t a, std::ptrdiff_t n) {
          chain_rows(entry, t, setup, r0 + a, n);
          return d_.data();
        });
        continue;
      }
      for (std::ptrdiff_t j = 0; j < R; ++j)
        all[r0 + j] = optim_->block_row(j, R, all[r0 + j], optim_->settings().inter_iters, [&] {
          chain_rows(entry, t, setup, r0 + j, 1);
          return d_[0];
        }, here);
    }
    finish_stacked(all.data(), m, lo, up);
  }

  bool want_states() const override { return opt_.want_states; }

 private:
  using HeadSetup = std::function<void(std::ptrdiff_t, std::ptrdiff_t, MatView<T>, T*)>;

  // Rows [r0, r0+R) of an objective entering the chain being relaxed at (entry, t), back to
  // the frames: their lower bounds in d_[0..R).
  void chain_rows(Entry entry, std::ptrdiff_t t, const typename Bounder<T>::Setup& setup, std::ptrdiff_t r0,
                  std::ptrdiff_t R) {
    start(R);
    setup(r0, R);
    chains_[cur_l_][cur_dir_]->carry(entry, t, R, sink(cur_l_, t, R), consts());
    run_chain(cur_l_, cur_dir_, cur_dir_ == 1 ? t + 1 : t - 1, R, true);
    descend(cur_l_ - 1, R);
  }

  MatView<T> in_view(std::ptrdiff_t l, std::ptrdiff_t t, std::ptrdiff_t R) {
    return {in_[l].v.data() + t * Rc_ * width_[l], R, width_[l], width_[l]};
  }

  // a new back-substitution of R rows: no coefficients anywhere, constant zero
  void start(std::ptrdiff_t R) {
    for (auto& h : has_) std::fill(h.begin(), h.end(), char(0));
    std::fill(d_.begin(), d_.begin() + R, T(0));
    if (!err_.empty()) std::fill(err_.begin(), err_.begin() + R, T(0));
  }

  // the rows' constants, and their rounding errors under rounding="sound"
  RowConsts<T> consts() { return {d_.data(), err_.empty() ? nullptr : err_.data()}; }

  // where chain (l, ·) writes its coefficients on the input at t: nowhere for a fixed frame
  // read directly (its clean part is in the cell's constants)
  InSink<T> sink(std::ptrdiff_t l, std::ptrdiff_t t, std::ptrdiff_t R) {
    if (l == 0 && net_.frame.empty() && !tm_.moves(t)) return {};
    InSink<T> s{in_view(l, t, R), has_[l][t] != 0};
    has_[l][t] = 1;
    return s;
  }

  // Carry chain (l, k) from step `from` (in its order) to its initial state, picking up the
  // coefficients from above (in_[l+1]) as it passes each t. active: a form is already carried.
  void run_chain(std::ptrdiff_t l, std::ptrdiff_t k, std::ptrdiff_t from, std::ptrdiff_t R, bool active) {
    Cell<T>& c = *chains_[l][k];
    const std::ptrdiff_t s = net_.layers[l].hidden(), step = k == 1 ? 1 : -1;
    for (std::ptrdiff_t t = from; t >= 0 && t < Tn_; t += step) {
      if (has_[l + 1][t]) {
        c.add_top(cview(block(in_view(l + 1, t, R), 0, R, k * s, s)), R, !active);
        active = true;
      }
      if (active) c.carry(Entry::Hidden, t, R, sink(l, t, R), consts());
    }
    if (active) c.initial(R, consts());
  }

  // Layers l_top..0 (every chain from its end), then the frames.
  void descend(std::ptrdiff_t l_top, std::ptrdiff_t R) {
    for (std::ptrdiff_t l = l_top; l >= 0; --l)
      for (std::size_t k = 0; k < chains_[l].size(); ++k)
        run_chain(l, static_cast<std::ptrdiff_t>(k), k == 1 ? 0 : Tn_ - 1, R, false);
    concretise(R);
  }

  // §1: the coefficients on each frame (summed over all paths) through the frame layers,
  // then over the threat model (threat_model.hpp: all of a row's frames together).
  void concretise(std::ptrdiff_t R) {
    const std::ptrdiff_t nf = static_cast<std::ptrdiff_t>(net_.frame.size());
    const RowConsts<T> k = consts();
    conc_->begin(R);
    for (std::ptrdiff_t t = 0; t < Tn_; ++t) {
      if (!has_[0][t]) continue;
      MatView<const T> A = cview(in_view(0, t, R));
      if (nf > 0) {
        A = dense_carry(net_.frame, frame_lines_[t].data(), nf - 1, false, A, *scratch_, k, frame_charges(t));
        add_rowdots_charged(A, ball_.x.row(t), rd_, k);
      }
      if (optim_) optim_->record_frame(t, A);
      if (tm_.moves(t)) conc_->add(t, A, k);
    }
    conc_->finish(k);
    settle(k, R);
  }

  const DenseCharges<T>* frame_charges(std::ptrdiff_t t) const {
    return frame_ch_.empty() ? nullptr : &frame_ch_[static_cast<std::size_t>(t)];
  }

  // Pre-activation bounds of frame layer j at frame t: back-substitution to x_t alone, over
  // the threat model's set of frame t (a joint ball's is the frame ball of radius ε w_t).
  void bound_frame_layer(std::ptrdiff_t j, std::ptrdiff_t t) {
    const DenseView<T>& f = net_.frame[j];
    const std::ptrdiff_t m = f.w.rows, R = 2 * m;
    std::fill(d_.begin(), d_.begin() + R, T(0));
    if (!err_.empty()) std::fill(err_.begin(), err_.begin() + R, T(0));
    const RowConsts<T> k = consts();
    if (rd_.on()) {  // layer j's affine weights at frame t, from its input's magnitudes
      std::vector<T> in(static_cast<std::size_t>(f.w.cols));
      if (j == 0) std::copy(xmag_.row(t), xmag_.row(t) + f.w.cols, in.begin());
      else dense_out_magnitude(net_.frame[j - 1], frame_lo_[j - 1].row(t), frame_up_[j - 1].row(t), in.data());
      frame_ch_[t].set_affine(f, static_cast<std::size_t>(j), in.data(), rd_.G);
    }
    MatView<T> P{obj_.v.data(), R, m, obj_.cols};
    set_signed_identity_rows(P, 0, R, m, 0);
    MatView<const T> A =
        dense_carry(net_.frame, frame_lines_[t].data(), j, true, cview(P), *scratch_, k, frame_charges(t));
    add_rowdots_charged(A, ball_.x.row(t), rd_, k);
    conc_->begin(R);
    if (tm_.moves(t)) conc_->add(t, A, k);
    conc_->finish(k);
    settle(k, R);
    finish_stacked(d_.data(), m, frame_lo_[j].row(t), frame_up_[j].row(t));
    if (f.has_act) {
      frame_lines_[t][j].compute(f.act, frame_lo_[j].row(t), frame_up_[j].row(t), m);
      if (rd_.on())
        line_charge(frame_lines_[t][j], frame_lo_[j].row(t), frame_up_[j].row(t), m, rd_.G, frame_ch_[t].lin[j].data(),
                    false);
    }
  }

  // rounding="sound" (ROUNDING.md §2): the magnitudes of the variables the charges multiply.
  // N of Γ = γ_N: at least the longest sum any pass computes. A coefficient is a sum over at
  // most a few products of the widest matrix (two directions, two W_ih blocks, then W_hh and
  // a sign-rule term); a constant is the sum of at most one contribution per step and
  // verb, each a dot product no longer than the widest matrix.
  static std::ptrdiff_t longest_sum(const GeneralNet<T>& net, const ThreatModel<T>& tm, std::ptrdiff_t K) {
    std::ptrdiff_t wide = std::max<std::ptrdiff_t>(tm.ball.x.cols, 2 * K), steps = 0;
    auto see = [&](MatView<const T> w) { wide = std::max({wide, w.rows, w.cols}); };
    for (const auto& f : net.frame) see(f.w);
    for (const auto& h : net.head) see(h.w);
    for (const auto& l : net.layers) {
      for (const auto& d : l.dirs) see(d.w_ih), see(d.w_hh);
      steps += static_cast<std::ptrdiff_t>(l.dirs.size());
    }
    for (const auto& s : tm.subs) see(s);
    const std::ptrdiff_t Tn = tm.ball.x.rows;
    const std::ptrdiff_t terms = 4 * (steps * Tn + Tn * (static_cast<std::ptrdiff_t>(net.frame.size()) + 2) +
                                      static_cast<std::ptrdiff_t>(net.head.size()) + 4) +
                                 8 * static_cast<std::ptrdiff_t>(net.layers.size());
    return 4 * wide + terms + 64;
  }

  // |x_t| <= |x̂_t| + the largest displacement of a coordinate of frame t: its ball's radius
  // (every lp ball lies in the l∞ ball of the same radius) or its substitutes' distance
  void input_magnitudes() {
    const std::ptrdiff_t n = ball_.x.cols;
    xmag_ = Mat<T>(Tn_, n);
    for (std::ptrdiff_t t = 0; t < Tn_; ++t) {
      const T* x = ball_.x.row(t);
      T* m = xmag_.row(t);
      for (std::ptrdiff_t j = 0; j < n; ++j) m[j] = std::fabs(x[j]);
      if (!tm_.moves(t)) continue;
      if (!tm_.substitution()) {
        const T r = tm_.radius(t) * (T(1) + T(4) * std::numeric_limits<T>::epsilon());
        for (std::ptrdiff_t j = 0; j < n; ++j) m[j] += r;
        continue;
      }
      const MatView<const T>& S = tm_.subs[t];
      for (std::ptrdiff_t j = 0; j < n; ++j) {
        T far = T(0);
        for (std::ptrdiff_t k = 0; k < S.rows; ++k) far = std::max(far, std::fabs(S(k, j)));
        m[j] = std::max(m[j], far);
      }
    }
  }

  // inmag_[l] (Tn x layer l's input): the frames (or the last frame layer's outputs) for
  // l = 0, else layer l − 1's outputs, both directions side by side
  void layer_input_magnitudes(std::ptrdiff_t l) {
    for (std::ptrdiff_t t = 0; t < Tn_; ++t) {
      T* m = inmag_[l].row(t);
      if (l > 0) {
        const std::ptrdiff_t s = net_.layers[l - 1].hidden();
        for (std::size_t k = 0; k < chains_[l - 1].size(); ++k)
          chains_[l - 1][k]->out_magnitude(t, m + static_cast<std::ptrdiff_t>(k) * s);
      } else if (net_.frame.empty()) {
        std::copy(xmag_.row(t), xmag_.row(t) + ball_.x.cols, m);
      } else {
        const std::size_t j = net_.frame.size() - 1;
        dense_out_magnitude(net_.frame[j], frame_lo_[j].row(t), frame_up_[j].row(t), m);
      }
    }
  }

  // the affine weights of head layer j: its input is the readout's feature (bounded over all
  // steps of the top layer's outputs) or head layer j − 1's output
  void head_input_charges(std::ptrdiff_t j) {
    const DenseView<T>& h = net_.head[j];
    std::vector<T> in(static_cast<std::size_t>(h.w.cols), T(0));
    if (j == 0) {
      const auto& top = net_.layers.back();
      const std::ptrdiff_t s = top.hidden();
      std::vector<T> m(static_cast<std::size_t>(s));
      for (std::ptrdiff_t t = 0; t < Tn_; ++t)
        for (std::size_t k = 0; k < chains_[L_ - 1].size(); ++k) {
          chains_[L_ - 1][k]->out_magnitude(t, m.data());
          for (std::ptrdiff_t i = 0; i < s; ++i) {
            T& v = in[static_cast<std::size_t>(static_cast<std::ptrdiff_t>(k) * s + i)];
            v = std::max(v, m[i]);
          }
        }
      featw_.resize(in.size());
      for (std::size_t i = 0; i < in.size(); ++i) featw_[i] = rd_.G * in[i];
    } else {
      dense_out_magnitude(net_.head[j - 1], head_lo_[j - 1].row(0), head_up_[j - 1].row(0), in.data());
    }
    head_ch_->set_affine(h, static_cast<std::size_t>(j), in.data(), rd_.G);
  }

  // rows objective rows (chunked) placed by setup on head layer j's output (its
  // pre-activation if from_pre) with initial constants; through the head, the readout and
  // every layer. Lower bounds of the first rows/2 rows, upper of the rest, ordered.
  // optimized (§3b) and refine: then each row again with its own relaxations.
  // slope (optional, rows/2): the lower rows' Concretiser::unit, as computed.
  void head_bound(std::ptrdiff_t rows, std::ptrdiff_t j, bool from_pre, const HeadSetup& setup, T* lo, T* up,
                  bool refine, T* slope = nullptr) {
    std::vector<T> all(static_cast<size_t>(rows));
    const std::ptrdiff_t m = rows / 2;
    for (std::ptrdiff_t r0 = 0; r0 < rows; r0 += Rc_) {
      const std::ptrdiff_t R = std::min(Rc_, rows - r0);
      head_rows(j, from_pre, setup, r0, R);
      std::copy(d_.begin(), d_.begin() + R, all.begin() + r0);
      if (slope) std::copy(conc_->unit(), conc_->unit() + std::max<std::ptrdiff_t>(0, std::min(R, m - r0)), slope + r0);
    }
    finish_stacked(all.data(), m, lo, up);
    if (!optim_ || !refine || optim_->settings().inter_iters == 0) return;
    optim_->refine(m, [&](std::ptrdiff_t r) {
      head_rows(j, from_pre, setup, r, 1);
      return d_[0];
    }, optim_->whole(), lo, up);
  }

  // optimized (§3b): the margins' lower bounds (what certification reads), each row with its
  // own relaxations; opt.trace (tests) adds the state "opt_trace" (K x 2 (iters + 1) + 2).
  void optimize_margins(MatView<const T> spec_w, const T* spec_b, const HeadSetup& margins, BoundResult<T>& res) {
    const OptSettings& o = optim_->settings();
    const std::ptrdiff_t K = spec_w.rows, H = static_cast<std::ptrdiff_t>(net_.head.size());
    Mat<T> trace(o.trace ? K : 0, 2 * (o.iters + 1) + 2);
    std::vector<std::pair<T, T>> seen;  // (bound, unit) of each back-substitution of the row
    for (std::ptrdiff_t r = 0; r < K; ++r) {
      seen.clear();
      auto one = [&] {
        head_rows(H - 1, false, margins, r, 1);
        seen.emplace_back(d_[0], conc_->unit()[0]);
        return d_[0];
      };
      auto objective = [&](const std::vector<T>& logits) {
        T acc = spec_b[r];
        for (std::ptrdiff_t c = 0; c < spec_w.cols; ++c) acc += spec_w(r, c) * logits[c];
        return acc;
      };
      const T best = optim_->row(o.iters, one, optim_->whole(), o.trace ? trace.row(r) : nullptr, objective);
      if (!(best > res.lower[r])) continue;
      res.lower[r] = best;  // and the unit of the back-substitution that gave it (the largest of equals)
      T u = T(0);
      for (const auto& [b, v] : seen)
        if (b == best) u = std::max(u, v);
      res.slope[r] = u;
    }
    if (o.trace) res.states.push_back({"opt_trace", trace, std::move(trace)});
  }

  // Concretiser::unit is Σ_t w_t ‖A_t‖_q as computed: its T + 4 roundings and the norms' own
  // relative error (at most Γ, ROUNDING.md §3) taken off, a lower bound of the real sum.
  T unit_floor() const {
    return T(1) - T(4) * rd_.G - T(Tn_ + 4) * std::numeric_limits<T>::epsilon();
  }

  // Rows [r0, r0+R) of a head objective back to the frames: lower bounds in d_[0..R).
  void head_rows(std::ptrdiff_t j, bool from_pre, const HeadSetup& setup, std::ptrdiff_t r0, std::ptrdiff_t R) {
    const std::ptrdiff_t w = net_.head[j].w.rows;  // on z_j or a_j: the same width
    start(R);
    MatView<T> P{obj_.v.data(), R, w, obj_.cols};
    setup(r0, R, P, d_.data());
    MatView<const T> F =
        dense_carry(net_.head, head_lines_.data(), j, from_pre, cview(P), *scratch_, consts(), head_ch_.get());
    // the mean's 1/T is itself rounded: charged with the products (|F| times the features' bound)
    if (rd_.on() && net_.readout == Readout::Mean) charge_rows(F, featw_.data(), err_.data());
    to_readout(F, R);
    descend(L_ - 1, R);
  }

  // Λ on the readout's feature -> coefficients on the top layer's outputs (in_[L]).
  void to_readout(MatView<const T> F, std::ptrdiff_t R) {
    const auto& top = net_.layers.back();
    const std::ptrdiff_t s = top.hidden(), last = Tn_ - 1;
    const bool bi = top.dirs.size() == 2;
    auto put = [&](std::ptrdiff_t t, std::ptrdiff_t c0, std::ptrdiff_t nc, T scale) {
      MatView<T> dst = block(in_view(L_, t, R), 0, R, c0, nc);
      if (!has_[L_][t]) zero_rows(in_view(L_, t, R));
      copy_or_add(block(F, 0, R, c0, nc), dst, true, scale);
      has_[L_][t] = 1;
    };
    if (net_.readout == Readout::Last) {
      put(last, 0, s, T(1));             // forward: h at T−1
      if (bi) put(0, s, s, T(1));        // backward: h at 0 (its last step)
    } else if (net_.readout == Readout::LastStep) {
      put(last, 0, top.output(), T(1));
    } else {
      for (std::ptrdiff_t t = 0; t < Tn_; ++t) put(t, 0, top.output(), T(1) / T(Tn_));
    }
  }

  void collect_states(std::vector<StateBounds<T>>& out) {
    for (std::size_t j = 0; j < net_.frame.size(); ++j)
      out.push_back({"frame" + std::to_string(j) + "_pre", frame_lo_[j], frame_up_[j]});
    for (std::ptrdiff_t l = 0; l < L_; ++l)
      for (std::size_t k = 0; k < chains_[l].size(); ++k)
        chains_[l][k]->states(out, "L" + std::to_string(l) + (k == 1 ? "b_" : "f_"));
    const std::ptrdiff_t H = static_cast<std::ptrdiff_t>(net_.head.size());
    for (std::ptrdiff_t j = 0; j < H; ++j)
      if (j + 1 < H || net_.head[j].has_act)
        out.push_back({"head" + std::to_string(j) + "_pre", head_lo_[j], head_up_[j]});
  }

  const GeneralNet<T>& net_;
  const ThreatModel<T>& tm_;
  const InputBall<T>& ball_;
  PassOptions opt_;
  std::ptrdiff_t Tn_, L_, Rc_ = 0, dense_rows_ = 0;
  std::vector<std::ptrdiff_t> width_;
  std::vector<Mat<T>> in_;                 // in_[l]: T blocks of Rc x width_[l]
  std::vector<std::vector<char>> has_;     // has_[l][t]: block t of in_[l] holds coefficients
  std::vector<T> d_;
  std::unique_ptr<DenseScratch<T>> scratch_;
  std::unique_ptr<Concretiser<T>> conc_;
  Mat<T> obj_;
  std::vector<std::vector<std::unique_ptr<Cell<T>>>> chains_;  // [layer][direction]
  std::ptrdiff_t cur_l_ = 0, cur_dir_ = 0;                     // the chain being relaxed
  std::vector<std::vector<LineSet<T>>> frame_lines_;          // [t][j]
  std::vector<Mat<T>> frame_lo_, frame_up_, head_lo_, head_up_;
  std::vector<LineSet<T>> head_lines_;
  std::unique_ptr<RowOptimizer<T>> optim_;  // planes="optimized" only
  Rounding<T> rd_;                          // rounding="sound" only (else off):
  std::vector<T> err_;                      // the rows' rounding errors (beside d_),
  std::vector<Mat<T>> inmag_;               // each layer's input magnitudes (Tn x width),
  Mat<T> xmag_;                             // the frames' (Tn x n),
  std::vector<T> featw_;                    // Γ times the readout feature's,
  std::vector<DenseCharges<T>> frame_ch_;   // the frame layers' weights per frame,
  std::unique_ptr<DenseCharges<T>> head_ch_;  // the head's
};

// One bound pass over the general model: bounds of spec_w · logits + spec_b.
template <class T>
BoundResult<T> general_bounds(const GeneralNet<T>& net, const ThreatModel<T>& tm, MatView<const T> spec_w,
                              const T* spec_b, const PassOptions& opt) {
  // taller blocks (matmul.hpp block_rows) where they paid: float64 products, no per-row
  // optimisation (its kept records grow with the chunk)
  const bool tall = !opt.f32_products && !opt.optimized();
  const BlockRowsCap cap(tall ? detail::kMaxBlockRows : detail::kMinBlockRows);
  GeneralPass<T> pass(net, tm, opt, spec_w.rows);
  return pass.run(spec_w, spec_b);
}

}  // namespace pq
