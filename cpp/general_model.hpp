// The general recurrent classifier as strided views (docs/API.md "General models";
// docs/GENERAL.md): frame Dense layers applied to every input frame, recurrent layers
// (RNN / LSTM / GRU, one direction or two) stacked bottom to top, a readout, and a Dense
// head whose last layer gives the logits. Plus the options of one bound pass and the
// verbs every recurrent cell provides to the generic driver (general_driver.hpp).
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>
#include "bound_state.hpp"
#include "common.hpp"
#include "lines.hpp"
#include "optim_planes.hpp"
#include "planes.hpp"
#include "rounding.hpp"

namespace pq {

enum class CellKind { Rnn, Lstm, Gru };
enum class Readout { Last, LastStep, Mean };

// One direction of a recurrent layer, PyTorch layout and gate order.
template <class T>
struct DirectionWeights {
  MatView<const T> w_ih, w_hh;  // (G s, in), (G s, s)
  const T* b_ih = nullptr;      // (G s,)
  const T* b_hh = nullptr;      // (G s,)
  const T* h0 = nullptr;        // (s,) or null = zero
  const T* c0 = nullptr;        // LSTM (s,) or null = zero
};

template <class T>
struct RecurrentLayerView {
  CellKind kind = CellKind::Rnn;
  Activation act = Activation::Tanh;            // RNN only
  std::vector<DirectionWeights<T>> dirs;        // [forward] or [forward, backward]
  std::ptrdiff_t hidden() const { return dirs[0].w_hh.cols; }
  std::ptrdiff_t input() const { return dirs[0].w_ih.cols; }
  std::ptrdiff_t output() const { return hidden() * static_cast<std::ptrdiff_t>(dirs.size()); }
};

// y = act(W x + b); has_act = false: y = W x + b.
template <class T>
struct DenseView {
  MatView<const T> w;  // (out, in)
  const T* b = nullptr;
  bool has_act = false;
  Activation act = Activation::Relu;
};

template <class T>
struct GeneralNet {
  std::vector<DenseView<T>> frame;            // applied to every frame, in order
  std::vector<RecurrentLayerView<T>> layers;  // bottom to top
  Readout readout = Readout::Last;
  std::vector<DenseView<T>> head;             // the last gives the logits
};

struct PassOptions {
  PlaneMethod planes = PlaneMethod::Exact;
  bool shared_z = false;     // GRU: the shared-z relaxation of the hidden update (RECURRENCES.md §4)
  bool want_states = false;  // also return every intermediate interval
  bool sound = false;        // rounding="sound": floating-point error charged (rounding.hpp, ROUNDING.md)
  bool f32_products = false; // rounding="sound32": sound, the affine steps' products in float32 (products_f32.hpp)
  // planes="optimized" (RECURRENCES.md §3b, general_optimize.hpp): opt.iters > 0 refines every
  // bound by its rows' own relaxations (GRU layers then use shared z)
  OptSettings opt;
  bool optimized() const { return opt.iters > 0; }
};

// Where an objective enters a step of a chain (the quantities a cell bounds):
// Hidden: on h_t (the full step); Pre: on the stacked gate pre-activations (RNN z_t,
// LSTM y_t, GRU [y^r; y^z; v]); Cell: on LSTM c_t (P^o unused); U: on GRU u_t.
enum class Entry { Hidden, Pre, Cell, U };

// Where a cell writes the coefficients that reach its input at step t (R x in), or
// nowhere (dst.data == nullptr: the input is a fixed frame whose clean part the cell
// already added through its clean constants). acc: add to what is there.
template <class T>
struct InSink {
  MatView<T> dst;
  bool acc = false;
  bool on() const { return dst.data != nullptr; }
};

// The driver's service to a cell that fixes the relaxations of one step: the interval
// [lo, up] of m quantities at `entry` of step t of the cell's chain. setup(r0, R) places
// rows [r0, r0+R) of the stacked objective [I; −I] (2m rows) in the cell's buffers.
template <class T>
struct Bounder {
  using Setup = std::function<void(std::ptrdiff_t r0, std::ptrdiff_t R)>;
  virtual void bound(std::ptrdiff_t m, Entry entry, std::ptrdiff_t t, const Setup& setup, T* lo, T* up) = 0;
  virtual bool want_states() const = 0;

 protected:
  ~Bounder() = default;
};

// rounding="sound" (rounding.hpp): the pass's Γ and, per step, a bound on the magnitude of
// the cell's input (Tn x input, filled by the driver before the cell relaxes; null: off);
// rounding="sound32": f32, the affine steps' products in float32 (products_f32.hpp).
template <class T>
struct CellRounding {
  Rounding<T> rd;
  const Mat<T>* in_mag = nullptr;
  bool f32 = false;
};

// The verbs of one direction of one recurrent layer over all T steps (a "chain").
// Steps are indexed by time t; prev is the step before in the chain's own order
// (t−1 forward, t+1 backward; −1 for the first step, whose state is the initial one).
template <class T>
struct Cell {
  virtual ~Cell() = default;
  // Fix the relaxations of step t (its bounds through bd). last: the chain's last step.
  virtual void relax(Bounder<T>& bd, std::ptrdiff_t t, std::ptrdiff_t prev, bool last) = 0;
  // Carry R rows entered at `entry` of step t back to the state before it; coefficients
  // on the input at t go to `in`, constants to k.d (rounding errors to k.err, rounding.hpp).
  virtual void carry(Entry entry, std::ptrdiff_t t, std::ptrdiff_t R, InSink<T> in, RowConsts<T> k) = 0;
  // Coefficients from above on h_t (top: R x s) join the carried state (first: it starts).
  virtual void add_top(MatView<const T> top, std::ptrdiff_t R, bool first) = 0;
  // The carried state reached the initial state: its constant into d.
  virtual void initial(std::ptrdiff_t R, RowConsts<T> k) = 0;
  // A bound on |h_t| over the input set (s values), once step t is relaxed (rounding="sound").
  virtual void out_magnitude(std::ptrdiff_t t, T* m) const = 0;
  // Every interval of the chain, named prefix + quantity, rows by time.
  virtual void states(std::vector<StateBounds<T>>& out, const std::string& prefix) = 0;

  // planes="optimized" (RECURRENCES.md §3b; opt_relaxations.hpp, general_optimize.hpp).
  // own(true, grads): one objective row's own copies of the chain's fixed relaxations are in
  // use (fresh copies of the shared ones; grads: with the state gradients and Adam steps
  // read), and carry (R = 1) records the coefficient each meets; own(false, ·): the shared
  // ones again. clear_record: before each back-substitution of the row.
  virtual void own(bool on, bool grads) = 0;
  virtual void clear_record() = 0;
  // keep_rows(R): carry also keeps the records of every row of the next block back-
  // substituted with the shared relaxations (R rows at most; 0: stop); take_row(r, R): row r of
  // that block as the records of the row in use (its first iterate, not back-substituted again).
  virtual void keep_rows(std::ptrdiff_t rows) = 0;
  virtual void take_row(std::ptrdiff_t r, std::ptrdiff_t rows) = 0;
  // One step of the forward sweep of the relaxed chain (the adjoint of the recorded
  // back-substitution, §3b): the state after step prev (−1: the initial state) and the
  // input's values `in` give h (s values), every relaxation evaluated on the side its recorded
  // coefficient selected. A step whose relaxations are not all fixed yet is swept as far as
  // they are (h is then not written).
  virtual void sweep(std::ptrdiff_t t, std::ptrdiff_t prev, const T* in, T* h) = 0;
  // The same step for every row of the last kept block (R rows) at once, with the shared
  // relaxations (what each row's copies start as), each row on the sides its kept records
  // select: inputs in (R x input), states after step prev as this verb left them, h (R x s)
  // written where the step is fixed. take_sweep(r): row r's values (the copies' sweep inputs
  // and coefficients) as the row in use's, as if its own sweep had computed them (one of
  // the block's rows is then optimised without sweeping it again; general_optimize.hpp).
  virtual void sweep_block(std::ptrdiff_t t, std::ptrdiff_t prev, MatView<const T> in, MatView<T> h,
                           std::ptrdiff_t R) = 0;
  virtual void take_sweep(std::ptrdiff_t r) = 0;
  // A block of rows each with its own copies: respond_rows(first, n, opt) gives rows [first,
  // first + n) of the last kept block their copies, the shared relaxations after one best
  // response at each row's values from the block's sweep (sweep_block); use_rows(true): carry
  // then takes row j of its n rows through row first + j's relaxations (row by row through
  // them, the products for all n at once).
  virtual void respond_rows(std::ptrdiff_t first, std::ptrdiff_t n, const OptSettings& opt) = 0;
  virtual void use_rows(bool on) = 0;
  // Iteration `it` (best response or Adam step) on the copies the last sweep met; returns
  // whether the row met any relaxation of this chain.
  virtual bool improve(int it, const OptSettings& opt) = 0;
  // f on every plane copy in use with its box (test hook: the gradient check, opt_trace).
  using PlaneVisit = std::function<void(OptPlaneSet<T>&, const PlaneBoxes<T>&)>;
  virtual void each_plane(const PlaneVisit& f) = 0;
};

// Rows [r0, r0+R) of the stacked objective [I; −I] (2m rows) into the first R rows of G,
// the identity at columns [c0, c0+m), zeros elsewhere.
template <class T>
void set_signed_identity_rows(MatView<T> G, std::ptrdiff_t r0, std::ptrdiff_t R, std::ptrdiff_t m,
                              std::ptrdiff_t c0) {
  for (std::ptrdiff_t i = 0; i < R; ++i) {
    T* g = G.row(i);
    for (std::ptrdiff_t j = 0; j < G.cols; ++j) g[j] = T(0);
    const std::ptrdiff_t r = r0 + i;
    if (r < m) g[c0 + r] = T(1);
    else g[c0 + r - m] = T(-1);
  }
}

template <class T>
void zero_rows(MatView<T> M) {
  for (std::ptrdiff_t i = 0; i < M.rows; ++i)
    for (std::ptrdiff_t j = 0; j < M.cols; ++j) M(i, j) = T(0);
}

// dst (+)= src, element-wise over the rows and columns of dst.
template <class T>
void copy_or_add(MatView<const T> src, MatView<T> dst, bool add, T scale = T(1)) {
  for (std::ptrdiff_t i = 0; i < dst.rows; ++i) {
    const T* s = src.row(i);
    T* o = dst.row(i);
    if (add)
      for (std::ptrdiff_t j = 0; j < dst.cols; ++j) o[j] += scale * s[j];
    else
      for (std::ptrdiff_t j = 0; j < dst.cols; ++j) o[j] = scale * s[j];
  }
}

}  // namespace pq
