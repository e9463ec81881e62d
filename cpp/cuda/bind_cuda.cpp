// popqorn_fast._cuda: the CUDA backend's Python module (host C++; the kernels are in
// batch_pass.cu). Batched versions of _core.rnn_bounds / lstm_bounds / gru_bounds
// (RECURRENCES.md §0) with a leading batch axis on x (N, T, n), eps (N,),
// spec_weight (N, K, s) and spec_bias (N, K); the weights are shared. Returns the same
// dict as the CPU functions, every array with the leading batch axis, plus "status"
// (N,) int32: 0 = bounds valid, 1 = a relaxation received a non-finite interval (float64
// overflow: where the CPU core raises ValueError "need finite", nothing is proven).
// Host NumPy arrays only (the Python layer converts CuPy arrays); the GIL is released
// while the device works.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_api.hpp"
#include "dual_norm.hpp"
#include "lines.hpp"
#include "planes.hpp"

namespace py = pybind11;

namespace {

using Arr = py::array_t<double, py::array::c_style | py::array::forcecast>;
using BoolArr = py::array_t<bool, py::array::c_style | py::array::forcecast>;

void need(bool ok, const std::string& msg) {
  if (!ok) throw py::value_error(msg);
}

void finite(const Arr& a, const char* name) {
  const double* p = a.data();
  for (py::ssize_t i = 0; i < a.size(); ++i)
    need(std::isfinite(p[i]), std::string(name) + " contains NaN or infinite values");
}

void shape(const Arr& a, const char* name, std::vector<long> want) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(want.size());
  for (size_t i = 0; ok && i < want.size(); ++i) ok = a.shape(i) == want[i];
  std::string w = "(";
  for (size_t i = 0; i < want.size(); ++i) w += std::to_string(want[i]) + (i + 1 < want.size() ? ", " : "");
  need(ok, std::string(name) + " has the wrong shape; expected " + w + (want.size() == 1 ? ",)" : ")"));
  finite(a, name);
}

int dual_q(double p) {
  if (!(p == 1.0 || p == 2.0 || (std::isinf(p) && p > 0)))
    throw py::value_error("p must be 1.0, 2.0 or inf, got " + std::to_string(p));
  return static_cast<int>(pq::dual_of_p(p));
}

int plane_method(const std::string& s) {
  if (s == "exact") return static_cast<int>(pq::PlaneMethod::Exact);
  if (s == "1d") return static_cast<int>(pq::PlaneMethod::OneD);
  if (s == "constant") return static_cast<int>(pq::PlaneMethod::Constant);
  throw py::value_error("planes must be \"exact\", \"1d\" or \"constant\", got \"" + s + "\"");
}

void ensure_device() {
  if (pqcuda::device_count() < 1)
    throw std::runtime_error("no CUDA device visible (" + pqcuda::device_error() + ")");
}

// Shared: x, eps, mask, spec; fills the batch fields of a.
void batch_common(pqcuda::BatchArgs& a, const Arr& x, const Arr& eps, double p, const BoolArr& mask,
                  const Arr& spec_w, const Arr& spec_b, bool want_states) {
  need(x.ndim() == 3 && x.shape(0) >= 1 && x.shape(1) >= 1 && x.shape(2) == a.n,
       "x must have shape (N, T, " + std::to_string(a.n) + ")");
  finite(x, "x");
  a.N = x.shape(0);
  a.T = x.shape(1);
  shape(eps, "eps", {a.N});
  for (py::ssize_t i = 0; i < eps.size(); ++i) need(eps.data()[i] >= 0.0, "eps must be >= 0");
  need(mask.ndim() == 1 && mask.shape(0) == a.T, "frame_mask must have shape (T,)");
  need(spec_w.ndim() == 3 && spec_w.shape(0) == a.N && spec_w.shape(1) >= 1 && spec_w.shape(2) == a.s,
       "spec_weight must have shape (N, K, " + std::to_string(a.s) + ")");
  a.K = spec_w.shape(1);
  finite(spec_w, "spec_weight");
  shape(spec_b, "spec_bias", {a.N, a.K});
  a.q = dual_q(p);
  a.x = x.data();
  a.eps = eps.data();
  a.mask = reinterpret_cast<const unsigned char*>(mask.data());
  a.spec_w = spec_w.data();
  a.spec_b = spec_b.data();
  a.want_states = want_states;
}

py::dict run(const pqcuda::BatchArgs& a) {
  ensure_device();
  pqcuda::BatchOut o;
  {
    py::gil_scoped_release nogil;
    pqcuda::run_batch(a, o);
  }
  auto arr = [](const std::vector<double>& v, std::vector<py::ssize_t> shp) {
    py::array_t<double> r(shp);
    std::copy(v.begin(), v.end(), r.mutable_data());
    return r;
  };
  py::dict out;
  out["lower"] = arr(o.lower, {a.N, a.K});
  out["upper"] = arr(o.upper, {a.N, a.K});
  py::array_t<int> st(a.N);
  std::copy(o.status.begin(), o.status.end(), st.mutable_data());
  out["status"] = st;
  for (const auto& s : o.states) {
    out[py::str(s.name + "_lower")] = arr(s.lower, {a.N, a.T, s.rows});
    out[py::str(s.name + "_upper")] = arr(s.upper, {a.N, a.T, s.rows});
  }
  return out;
}

long hidden(const Arr& w_hh, long gates) {
  need(w_hh.ndim() == 2 && w_hh.shape(1) >= 1 && w_hh.shape(0) == gates * w_hh.shape(1),
       "weight_hh must have shape (" + std::to_string(gates) + "*s, s)");
  return w_hh.shape(1);
}

py::dict rnn(const Arr& w_ih, const Arr& w_hh, const Arr& bias, const Arr& h0, const std::string& act,
             const Arr& x, const Arr& eps, double p, const BoolArr& mask, const Arr& spec_w,
             const Arr& spec_b, bool want_states) {
  pqcuda::BatchArgs a;
  a.arch = pqcuda::Arch::Rnn;
  a.s = hidden(w_hh, 1);
  need(w_ih.ndim() == 2 && w_ih.shape(0) == a.s && w_ih.shape(1) >= 1, "weight_ih must have shape (s, n)");
  a.n = w_ih.shape(1);
  shape(w_ih, "weight_ih", {a.s, a.n}); shape(w_hh, "weight_hh", {a.s, a.s});
  shape(bias, "bias", {a.s}); shape(h0, "h0", {a.s});
  if (act == "tanh") a.activation = static_cast<int>(pq::Activation::Tanh);
  else if (act == "relu") a.activation = static_cast<int>(pq::Activation::Relu);
  else throw py::value_error("activation must be \"tanh\" or \"relu\", got \"" + act + "\"");
  a.w_ih = w_ih.data(); a.w_hh = w_hh.data(); a.bias = bias.data(); a.h0 = h0.data();
  batch_common(a, x, eps, p, mask, spec_w, spec_b, want_states);
  return run(a);
}

py::dict lstm(const Arr& w_ih, const Arr& w_hh, const Arr& bias, const Arr& h0, const Arr& c0,
              const Arr& x, const Arr& eps, double p, const BoolArr& mask, const Arr& spec_w,
              const Arr& spec_b, const std::string& planes, bool want_states) {
  pqcuda::BatchArgs a;
  a.arch = pqcuda::Arch::Lstm;
  a.s = hidden(w_hh, 4);
  need(w_ih.ndim() == 2 && w_ih.shape(0) == 4 * a.s && w_ih.shape(1) >= 1, "weight_ih must have shape (4s, n)");
  a.n = w_ih.shape(1);
  shape(w_ih, "weight_ih", {4 * a.s, a.n}); shape(w_hh, "weight_hh", {4 * a.s, a.s});
  shape(bias, "bias", {4 * a.s}); shape(h0, "h0", {a.s}); shape(c0, "c0", {a.s});
  a.planes = plane_method(planes);
  a.w_ih = w_ih.data(); a.w_hh = w_hh.data(); a.bias = bias.data(); a.h0 = h0.data(); a.c0 = c0.data();
  batch_common(a, x, eps, p, mask, spec_w, spec_b, want_states);
  return run(a);
}

py::dict gru(const Arr& w_ih, const Arr& w_hh, const Arr& b_ih, const Arr& b_hh, const Arr& h0,
             const Arr& x, const Arr& eps, double p, const BoolArr& mask, const Arr& spec_w,
             const Arr& spec_b, const std::string& planes, bool want_states) {
  pqcuda::BatchArgs a;
  a.arch = pqcuda::Arch::Gru;
  a.s = hidden(w_hh, 3);
  need(w_ih.ndim() == 2 && w_ih.shape(0) == 3 * a.s && w_ih.shape(1) >= 1, "weight_ih must have shape (3s, n)");
  a.n = w_ih.shape(1);
  shape(w_ih, "weight_ih", {3 * a.s, a.n}); shape(w_hh, "weight_hh", {3 * a.s, a.s});
  shape(b_ih, "bias_ih", {3 * a.s}); shape(b_hh, "bias_hh", {3 * a.s}); shape(h0, "h0", {a.s});
  a.planes = plane_method(planes);
  a.w_ih = w_ih.data(); a.w_hh = w_hh.data(); a.bias = b_ih.data(); a.bias2 = b_hh.data(); a.h0 = h0.data();
  batch_common(a, x, eps, p, mask, spec_w, spec_b, want_states);
  return run(a);
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  using namespace pybind11::literals;
  m.doc() = "popqorn_fast CUDA backend: batched bound passes (RECURRENCES.md §0, leading batch axis)";
  m.def("device_count", &pqcuda::device_count, "Visible CUDA devices (0 without driver or device).");
  m.def("device_error", &pqcuda::device_error, "Why device_count() is 0 ('' when it is not).");
  m.def("rnn_bounds_batch", &rnn, "weight_ih"_a, "weight_hh"_a, "bias"_a, "h0"_a, "activation"_a, "x"_a,
        "eps"_a, "p"_a, "frame_mask"_a, "spec_weight"_a, "spec_bias"_a, "want_states"_a = false);
  m.def("lstm_bounds_batch", &lstm, "weight_ih"_a, "weight_hh"_a, "bias"_a, "h0"_a, "c0"_a, "x"_a, "eps"_a,
        "p"_a, "frame_mask"_a, "spec_weight"_a, "spec_bias"_a, "planes"_a = "exact", "want_states"_a = false);
  m.def("gru_bounds_batch", &gru, "weight_ih"_a, "weight_hh"_a, "bias_ih"_a, "bias_hh"_a, "h0"_a, "x"_a,
        "eps"_a, "p"_a, "frame_mask"_a, "spec_weight"_a, "spec_bias"_a, "planes"_a = "exact",
        "want_states"_a = false);
}
