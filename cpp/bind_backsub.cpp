// Python bindings of the RNN/LSTM/GRU bound passes (RECURRENCES.md §0):
// _core.rnn_bounds, _core.lstm_bounds, _core.gru_bounds, each the generic driver on one
// layer (one_layer.hpp). Every shape and value is
// checked here (pq::InvalidArgument -> ValueError naming the argument) before the
// GIL is released for the computation; results come back as a dict of arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "bind_arrays.hpp"
#include "bound_state.hpp"
#include "one_layer.hpp"

namespace py = pybind11;

namespace {

using pq::bind::Arr;
using pq::bind::BoolArr;
using pq::bind::check;
using pq::bind::mat;
using pq::bind::shape_str;
using pq::bind::to_dict;

// "optimized" = the exact pass with every intermediate bound and margin row also bounded by
// its own planes / lines (RECURRENCES.md §3b; optim_planes.hpp, optim_lines.hpp).
pq::PlaneMethod parse_planes(const std::string& s, pq::OptSettings& opt, int opt_iters, double opt_lr, int opt_br,
                             int opt_grid) {
  if (s == "optimized") {
    opt.br_iters = opt_br;
    if (opt_iters < 0 || !(opt_lr > 0.0)) throw pq::InvalidArgument("opt_iters must be >= 0 and opt_lr > 0");
    opt.iters = opt_iters;
    opt.lr = opt_lr;
    opt.grid = pq::checked_grid(opt_grid);
    return pq::PlaneMethod::Exact;
  }
  if (s == "exact") return pq::PlaneMethod::Exact;
  if (s == "1d") return pq::PlaneMethod::OneD;
  if (s == "constant") return pq::PlaneMethod::Constant;
  throw pq::InvalidArgument("planes must be \"exact\", \"optimized\", \"1d\" or \"constant\", got \"" + s + "\"");
}

// Checks the arguments every architecture shares, given the hidden size s.
pq::PassCommon<double> common(const Arr& x, double eps, double p, const BoolArr& mask,
                              const Arr& spec_w, const Arr& spec_b, bool want_states,
                              std::ptrdiff_t n, std::ptrdiff_t s) {
  check(x, "x", {-1, n});
  const std::ptrdiff_t T = x.shape(0);
  if (!(std::isfinite(eps) && eps >= 0.0))
    throw pq::InvalidArgument("eps must be finite and >= 0, got " + std::to_string(eps));
  if (mask.ndim() != 1 || mask.shape(0) != T)
    throw pq::InvalidArgument("frame_mask has shape " + shape_str(mask) + "; expected (" +
                              std::to_string(T) + ",) (one entry per frame of x)");
  check(spec_w, "spec_weight", {-1, s});
  check(spec_b, "spec_bias", {spec_w.shape(0)});
  pq::PassCommon<double> pc;
  pc.ball.x = mat(x);
  pc.ball.eps = eps;
  pc.ball.q = pq::dual_of_p(p);
  pc.ball.mask = mask.data();
  pc.spec_w = mat(spec_w);
  pc.spec_b = spec_b.data();
  pc.want_states = want_states;
  return pc;
}

std::ptrdiff_t hidden_size(const Arr& w_hh, std::ptrdiff_t gates) {
  if (w_hh.ndim() != 2 || w_hh.shape(1) < 1 || w_hh.shape(0) != gates * w_hh.shape(1))
    throw pq::InvalidArgument("weight_hh has shape " + shape_str(w_hh) + "; expected (" +
                              std::to_string(gates) + "*s, s) with s >= 1");
  return w_hh.shape(1);
}

std::ptrdiff_t input_size(const Arr& w_ih, std::ptrdiff_t rows) {
  if (w_ih.ndim() != 2 || w_ih.shape(0) != rows || w_ih.shape(1) < 1)
    throw pq::InvalidArgument("weight_ih has shape " + shape_str(w_ih) + "; expected (" +
                              std::to_string(rows) + ", n) with n >= 1");
  return w_ih.shape(1);
}

py::dict rnn(const Arr& w_ih, const Arr& w_hh, const Arr& bias, const Arr& h0,
             const std::string& activation, const Arr& x, double eps, double p,
             const BoolArr& mask, const Arr& spec_w, const Arr& spec_b, bool want_states,
             const std::string& planes, int opt_iters, int opt_inter, int opt_inter_iters, bool opt_trace,
             int opt_grid) {
  const std::ptrdiff_t s = hidden_size(w_hh, 1), n = input_size(w_ih, s);
  check(w_ih, "weight_ih", {s, n});
  check(w_hh, "weight_hh", {s, s});
  check(bias, "bias", {s});
  check(h0, "h0", {s});
  pq::RnnNet<double> net;
  if (activation == "tanh") net.act = pq::Activation::Tanh;
  else if (activation == "relu") net.act = pq::Activation::Relu;
  else throw pq::InvalidArgument("activation must be \"tanh\" or \"relu\", got \"" + activation + "\"");
  net.w_ih = mat(w_ih); net.w_hh = mat(w_hh); net.bias = bias.data(); net.h0 = h0.data();
  // no products: the plane methods are all the §2 lines, "optimized" the lines of §3b
  parse_planes(planes, net.opt, opt_iters, 0.01, opt_iters, opt_grid);
  if (opt_inter < 0 || opt_inter_iters < 0) throw pq::InvalidArgument("opt_inter and opt_inter_iters must be >= 0");
  net.opt.inter_steps = opt_inter;
  net.opt.inter_iters = opt_inter_iters;
  net.opt.trace = opt_trace;
  const auto pc = common(x, eps, p, mask, spec_w, spec_b, want_states, n, s);
  pq::BoundResult<double> r;
  {
    py::gil_scoped_release nogil;
    r = pq::rnn_bounds(net, pc);
  }
  return to_dict(r);
}

py::dict lstm(const Arr& w_ih, const Arr& w_hh, const Arr& bias, const Arr& h0, const Arr& c0,
              const Arr& x, double eps, double p, const BoolArr& mask, const Arr& spec_w,
              const Arr& spec_b, const std::string& planes, bool want_states, int opt_iters,
              double opt_lr, int opt_br, int opt_inter, int opt_inter_iters, bool opt_trace, int opt_grid) {
  const std::ptrdiff_t s = hidden_size(w_hh, 4), n = input_size(w_ih, 4 * s);
  check(w_ih, "weight_ih", {4 * s, n});
  check(w_hh, "weight_hh", {4 * s, s});
  check(bias, "bias", {4 * s});
  check(h0, "h0", {s});
  check(c0, "c0", {s});
  pq::LstmNet<double> net;
  net.w_ih = mat(w_ih); net.w_hh = mat(w_hh); net.bias = bias.data();
  net.h0 = h0.data(); net.c0 = c0.data();
  net.planes = parse_planes(planes, net.opt, opt_iters, opt_lr, opt_br, opt_grid);
  if (opt_inter < 0 || opt_inter_iters < 0) throw pq::InvalidArgument("opt_inter and opt_inter_iters must be >= 0");
  net.opt.inter_steps = opt_inter;
  net.opt.inter_iters = opt_inter_iters;
  net.opt.trace = opt_trace;
  const auto pc = common(x, eps, p, mask, spec_w, spec_b, want_states, n, s);
  pq::BoundResult<double> r;
  {
    py::gil_scoped_release nogil;
    r = pq::lstm_bounds(net, pc);
  }
  return to_dict(r);
}

py::dict gru(const Arr& w_ih, const Arr& w_hh, const Arr& b_ih, const Arr& b_hh, const Arr& h0,
             const Arr& x, double eps, double p, const BoolArr& mask, const Arr& spec_w,
             const Arr& spec_b, const std::string& planes, bool want_states, int opt_iters,
             double opt_lr, int opt_br, int opt_inter, int opt_inter_iters, bool shared_z, bool opt_trace,
             int opt_grid) {
  const std::ptrdiff_t s = hidden_size(w_hh, 3), n = input_size(w_ih, 3 * s);
  check(w_ih, "weight_ih", {3 * s, n});
  check(w_hh, "weight_hh", {3 * s, s});
  check(b_ih, "bias_ih", {3 * s});
  check(b_hh, "bias_hh", {3 * s});
  check(h0, "h0", {s});
  pq::GruNet<double> net;
  net.w_ih = mat(w_ih); net.w_hh = mat(w_hh); net.b_ih = b_ih.data(); net.b_hh = b_hh.data();
  net.h0 = h0.data();
  // "optimized": shared z (RECURRENCES.md §4 "GRU, shared z") with exact planes for every
  // intermediate bound, then the per-row slope optimisation (general_optimize.hpp).
  // Defaults opt_iters = opt_br = kMarginIters (best responses only, as the LSTM's): Adam steps
  // after them (lr 0.01 .. 0.0005) changed the margin bound by < 1 % at 2-3x the time.
  net.planes = parse_planes(planes, net.opt, opt_iters, opt_lr, opt_br, opt_grid);
  net.shared_z = shared_z || planes == "optimized";
  net.opt.trace = opt_trace;
  if (opt_inter < 0 || opt_inter_iters < 0) throw pq::InvalidArgument("opt_inter and opt_inter_iters must be >= 0");
  net.opt.inter_steps = opt_inter;
  net.opt.inter_iters = opt_inter_iters;
  const auto pc = common(x, eps, p, mask, spec_w, spec_b, want_states, n, s);
  pq::BoundResult<double> r;
  {
    py::gil_scoped_release nogil;
    r = pq::gru_bounds(net, pc);
  }
  return to_dict(r);
}

// Test hook for the product kernel (matmul.hpp), not public API: returns a copy of c
// with c[:, :n] (+)= a[:, :k] @ b[:k, :n], computed on views that keep the arrays' own
// row strides.
Arr gemm_py(const Arr& a, const Arr& b, const Arr& c, std::ptrdiff_t k, std::ptrdiff_t n,
            bool accumulate) {
  if (a.ndim() != 2 || b.ndim() != 2 || c.ndim() != 2 || k < 0 || n < 0 || a.shape(1) < k ||
      b.shape(0) < k || b.shape(1) < n || c.shape(1) < n || c.shape(0) != a.shape(0))
    throw pq::InvalidArgument("_gemm: inconsistent shapes");
  Arr out({c.shape(0), c.shape(1)});
  std::copy(c.data(), c.data() + c.size(), out.mutable_data());
  pq::MatView<const double> A = mat(a), B = mat(b);
  A.cols = k;
  B.rows = k;
  B.cols = n;
  pq::MatView<double> C{out.mutable_data(), static_cast<std::ptrdiff_t>(c.shape(0)), n,
                        static_cast<std::ptrdiff_t>(c.shape(1))};
  pq::gemm(A, B, C, accumulate);
  return out;
}

}  // namespace

void bind_backsub(py::module_& m) {
  using namespace pybind11::literals;
  m.def("rnn_bounds", &rnn, "weight_ih"_a, "weight_hh"_a, "bias"_a, "h0"_a, "activation"_a, "x"_a,
        "eps"_a, "p"_a, "frame_mask"_a, "spec_weight"_a, "spec_bias"_a, "want_states"_a = false,
        "planes"_a = "exact", "opt_iters"_a = pq::kMarginIters, "opt_inter"_a = 1 << 20, "opt_inter_iters"_a = 1,
        "opt_trace"_a = false, "opt_grid"_a = 8,
        "Bounds of spec_weight @ h_T + spec_bias for a vanilla RNN (RECURRENCES.md §0, §4).");
  m.def("lstm_bounds", &lstm, "weight_ih"_a, "weight_hh"_a, "bias"_a, "h0"_a, "c0"_a, "x"_a,
        "eps"_a, "p"_a, "frame_mask"_a, "spec_weight"_a, "spec_bias"_a, "planes"_a = "exact",
        "want_states"_a = false, "opt_iters"_a = pq::kMarginIters, "opt_lr"_a = 0.01, "opt_br"_a = pq::kMarginIters, "opt_inter"_a = 1 << 20, "opt_inter_iters"_a = 1,
        "opt_trace"_a = false, "opt_grid"_a = 8,
        "Bounds of spec_weight @ h_T + spec_bias for an LSTM (RECURRENCES.md §0, §4). planes=\"optimized\" "
        "(§3b): opt_iters iterations per margin row (the first opt_br best responses, then Adam steps of "
        "size opt_lr), intermediate bounds of the last opt_inter steps refined with opt_inter_iters; "
        "best responses on an opt_grid x opt_grid grid of each box (0: at the sweep point); "
        "opt_trace: also opt_trace_lower as for gru_bounds (tests).");
  m.def("gru_bounds", &gru, "weight_ih"_a, "weight_hh"_a, "bias_ih"_a, "bias_hh"_a, "h0"_a, "x"_a,
        "eps"_a, "p"_a, "frame_mask"_a, "spec_weight"_a, "spec_bias"_a, "planes"_a = "exact",
        "want_states"_a = false, "opt_iters"_a = pq::kMarginIters, "opt_lr"_a = 0.01, "opt_br"_a = pq::kMarginIters,
        "opt_inter"_a = 1 << 20, "opt_inter_iters"_a = 1, "gru_shared_z"_a = false, "opt_trace"_a = false,
        "opt_grid"_a = 8,
        "Bounds of spec_weight @ h_T + spec_bias for a GRU (RECURRENCES.md §0, §4). gru_shared_z: "
        "the shared-z relaxation of the hidden update with any plane method (implied by "
        "planes=\"optimized\"); opt_trace: with \"optimized\", also opt_trace_lower (K, 2(iters+1)+2): "
        "per iteration the back-substituted and the forward-sweep lower bound, then |g|^2 and the "
        "finite-difference derivative along g at the first iterate (tests).");
  m.def("_product_threads", [](int k) {
          if (k < 1) throw pq::InvalidArgument("threads must be >= 1");
          return pq::set_product_threads(k);
        }, "threads"_a,
        "Threads for the products of the bound passes run on the calling thread from now on "
        "(row blocks, cpp/row_pool.hpp; same bounds as one thread); returns the previous count.");
#if PQ_HAVE_BLAS
  m.attr("blas") = "scipy-openblas32";
#else
  m.attr("blas") = py::none();
#endif
  m.def("_blas_enabled", &pq::blas_enabled,
        "Whether the products use the BLAS (a BLAS build without POPQORN_NO_BLAS).");
  m.def("_gemm", &gemm_py, "a"_a, "b"_a, "c"_a, "k"_a, "n"_a, "accumulate"_a,
        "Test hook: copy of c with c[:, :n] (+)= a[:, :k] @ b[:k, :n] (cpp/matmul.hpp).");
}
