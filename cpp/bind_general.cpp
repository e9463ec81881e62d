// Python binding of the generic bound pass (general_driver.hpp): _core.general_bounds and
// its option object _core.PassOptions. The model arrives as nested tuples of arrays (built
// by popqorn_fast/backend.py from a RecurrentClassifier); every shape is checked here
// (pq::InvalidArgument -> ValueError) before the GIL is released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "bind_arrays.hpp"
#include "general_driver.hpp"

namespace py = pybind11;

namespace {

using pq::bind::Arr;
using pq::bind::BoolArr;
using pq::bind::mat;

// Keeps the converted arrays alive while views into them are in use.
struct Keep {
  std::deque<Arr> arrays;  // a deque: references stay valid as it grows
  std::deque<pq::Mat<double>> copies;
  const Arr& add(const py::handle& h, const std::string& name, std::vector<std::ptrdiff_t> shape) {
    Arr a = Arr::ensure(h);
    if (!a) throw pq::InvalidArgument(name + " is not a float array");
    pq::bind::check(a, name, shape);
    arrays.push_back(std::move(a));
    return arrays.back();
  }
  // a (2-D), or a copy of it on cache-line boundaries, for the pass: the products read the
  // recurrent weights row by row in vectors, which NumPy's buffers (16-byte aligned) split
  // across lines. Copied only where that aligns every row (8 columns a line) and a is not
  // aligned already; the copy lives while the pass runs.
  pq::MatView<const double> aligned(const Arr& a) {
    const pq::MatView<const double> m = mat(a);
    const auto at = reinterpret_cast<std::uintptr_t>(m.data);
    if (m.cols % 8 != 0 || at % pq::LineAligned<double>::kAlign == 0) return m;
    copies.emplace_back(m.rows, m.cols);
    pq::Mat<double>& c = copies.back();
    std::copy(m.data, m.data + m.rows * m.cols, c.v.begin());  // both contiguous (stride = cols)
    return static_cast<const pq::Mat<double>&>(c).view();
  }
};

pq::Activation activation(const std::string& s, const std::string& where) {
  if (s == "tanh") return pq::Activation::Tanh;
  if (s == "relu") return pq::Activation::Relu;
  if (s == "sigmoid") return pq::Activation::Sigmoid;
  throw pq::InvalidArgument(where + ": activation must be \"tanh\", \"relu\" or \"sigmoid\", got \"" + s + "\"");
}

// (weight, bias, activation or None) tuples, each reading `width` inputs; returns the last width.
std::ptrdiff_t dense_list(const py::list& src, const std::string& what, std::ptrdiff_t width, Keep& keep,
                          std::vector<pq::DenseView<double>>& out) {
  for (size_t j = 0; j < src.size(); ++j) {
    const auto t = src[j].cast<py::tuple>();
    const std::string name = what + "[" + std::to_string(j) + "]";
    if (t.size() != 3) throw pq::InvalidArgument(name + " must be (weight, bias, activation)");
    const Arr& w = keep.add(t[0], name + " weight", {-1, width});
    const Arr& b = keep.add(t[1], name + " bias", {w.shape(0)});
    pq::DenseView<double> v;
    v.w = mat(w);
    v.b = b.data();
    v.has_act = !t[2].is_none();
    if (v.has_act) v.act = activation(t[2].cast<std::string>(), name);
    out.push_back(v);
    width = w.shape(0);
  }
  return width;
}

// _core.ThreatModel: the input set beyond the ball's centre, radius, p and moving frames
// (threat_model.hpp); arrays are checked against x when a pass uses it.
struct PyThreat {
  std::string ball = "frame";
  py::object weights = py::none(), lo = py::none(), hi = py::none(), subs = py::none();
  std::ptrdiff_t budget = 0;
};

// The threat model of one pass over x (T x n): every array checked and kept alive in keep.
pq::ThreatModel<double> threat_model(const PyThreat& th, const pq::InputBall<double>& ball, Keep& keep) {
  pq::ThreatModel<double> tm;
  tm.ball = ball;
  const std::ptrdiff_t T = ball.x.rows, n = ball.x.cols;
  if (th.ball == "joint") tm.kind = pq::BallKind::Joint;
  else if (th.ball != "frame") throw pq::InvalidArgument("ball must be \"frame\" or \"joint\", got \"" + th.ball + "\"");
  if (!th.weights.is_none()) {
    tm.weights = keep.add(th.weights, "frame_weights", {T}).data();
    for (std::ptrdiff_t t = 0; t < T; ++t)
      if (tm.weights[t] < 0.0) throw pq::InvalidArgument("frame_weights must be >= 0");
  }
  if (th.lo.is_none() != th.hi.is_none()) throw pq::InvalidArgument("domain needs both lo and hi");
  if (!th.lo.is_none()) {
    tm.lo = keep.add(th.lo, "domain lo", {T, n}).data();
    tm.hi = keep.add(th.hi, "domain hi", {T, n}).data();
    for (std::ptrdiff_t i = 0; i < T * n; ++i)
      if (!(tm.lo[i] <= ball.x.data[i] && ball.x.data[i] <= tm.hi[i]))
        throw pq::InvalidArgument("x lies outside the domain [lo, hi]");
  }
  if (!th.subs.is_none()) {
    const auto lst = th.subs.cast<py::list>();
    if (static_cast<std::ptrdiff_t>(lst.size()) != T) throw pq::InvalidArgument("substitutions must hold one array per frame of x");
    if (ball.eps != 0.0) throw pq::InvalidArgument("eps must be 0 with substitutions (the candidates are the input set)");
    if (th.budget < 0) throw pq::InvalidArgument("budget must be >= 0");
    tm.budget = th.budget;
    for (std::ptrdiff_t t = 0; t < T; ++t) {
      const std::string name = "substitutions[" + std::to_string(t) + "]";
      Arr a = Arr::ensure(lst[t]);
      if (a && a.ndim() == 2 && a.shape(0) == 0 && a.shape(1) == n) tm.subs.push_back({nullptr, 0, n, n});
      else tm.subs.push_back(mat(keep.add(lst[t], name, {-1, n})));
    }
  }
  return tm;
}

py::dict general(const py::list& frame, const py::list& layers, const std::string& readout, const py::list& head,
                 const Arr& x, double eps, double p, const BoolArr& mask, const Arr& spec_w, const Arr& spec_b,
                 const pq::PassOptions& opt, const PyThreat& threat) {
  Keep keep;
  pq::GeneralNet<double> net;
  if (x.ndim() != 2 || x.shape(0) < 1 || x.shape(1) < 1) throw pq::InvalidArgument("x must be (T, n) with T, n >= 1");
  std::ptrdiff_t width = dense_list(frame, "frame_layers", x.shape(1), keep, net.frame);
  if (layers.size() == 0) throw pq::InvalidArgument("layers is empty");
  for (size_t l = 0; l < layers.size(); ++l) {
    const auto t = layers[l].cast<py::tuple>();
    const std::string name = "layers[" + std::to_string(l) + "]";
    if (t.size() != 3) throw pq::InvalidArgument(name + " must be (kind, activation, directions)");
    pq::RecurrentLayerView<double> L;
    const std::string kind = t[0].cast<std::string>();
    std::ptrdiff_t G = 1;
    if (kind == "rnn") L.kind = pq::CellKind::Rnn;
    else if (kind == "lstm") L.kind = pq::CellKind::Lstm, G = 4;
    else if (kind == "gru") L.kind = pq::CellKind::Gru, G = 3;
    else throw pq::InvalidArgument(name + ": kind must be \"rnn\", \"lstm\" or \"gru\", got \"" + kind + "\"");
    L.act = activation(t[1].cast<std::string>(), name);
    if (L.kind == pq::CellKind::Rnn && L.act == pq::Activation::Sigmoid)
      throw pq::InvalidArgument(name + ": an RNN's activation must be \"tanh\" or \"relu\"");
    const auto dirs = t[2].cast<py::list>();
    if (dirs.size() < 1 || dirs.size() > 2) throw pq::InvalidArgument(name + ": one or two directions");
    std::ptrdiff_t s = -1;
    for (size_t k = 0; k < dirs.size(); ++k) {
      const auto dt = dirs[k].cast<py::tuple>();
      const std::string dn = name + (k ? " reverse" : "");
      if (dt.size() != 6) throw pq::InvalidArgument(dn + " must be (w_ih, w_hh, b_ih, b_hh, h0, c0)");
      const Arr& whh = keep.add(dt[1], dn + " weight_hh", {-1, s < 0 ? -1 : s});
      s = whh.shape(1);
      if (whh.shape(0) != G * s) throw pq::InvalidArgument(dn + " weight_hh must be (G*s, s)");
      pq::DirectionWeights<double> w;
      w.w_hh = keep.aligned(whh);
      w.w_ih = keep.aligned(keep.add(dt[0], dn + " weight_ih", {G * s, width}));
      w.b_ih = keep.add(dt[2], dn + " bias_ih", {G * s}).data();
      w.b_hh = keep.add(dt[3], dn + " bias_hh", {G * s}).data();
      if (!dt[4].is_none()) w.h0 = keep.add(dt[4], dn + " h0", {s}).data();
      if (!dt[5].is_none()) {
        if (L.kind != pq::CellKind::Lstm) throw pq::InvalidArgument(dn + ": c0 is for LSTM layers only");
        w.c0 = keep.add(dt[5], dn + " c0", {s}).data();
      }
      L.dirs.push_back(w);
    }
    width = L.output();
    net.layers.push_back(std::move(L));
  }
  if (readout == "last") net.readout = pq::Readout::Last;
  else if (readout == "last_step") net.readout = pq::Readout::LastStep;
  else if (readout == "mean") net.readout = pq::Readout::Mean;
  else throw pq::InvalidArgument("readout must be \"last\", \"last_step\" or \"mean\", got \"" + readout + "\"");
  if (head.size() == 0) throw pq::InvalidArgument("head is empty");
  const std::ptrdiff_t C = dense_list(head, "head", width, keep, net.head);
  const Arr& sw = keep.add(spec_w, "spec_weight", {-1, C});
  const Arr& sb = keep.add(spec_b, "spec_bias", {sw.shape(0)});
  const Arr& xx = keep.add(x, "x", {-1, x.shape(1)});
  if (!(std::isfinite(eps) && eps >= 0.0)) throw pq::InvalidArgument("eps must be finite and >= 0, got " + std::to_string(eps));
  if (mask.ndim() != 1 || mask.shape(0) != xx.shape(0))
    throw pq::InvalidArgument("frame_mask must have one entry per frame of x");
  pq::InputBall<double> ball;
  ball.x = mat(xx);
  ball.eps = eps;
  ball.q = pq::dual_of_p(p);
  ball.mask = mask.data();
  const pq::ThreatModel<double> tm = threat_model(threat, ball, keep);
  pq::BoundResult<double> r;
  {
    py::gil_scoped_release nogil;
    r = pq::general_bounds(net, tm, mat(sw), sb.data(), opt);
  }
  return pq::bind::to_dict(r);
}

}  // namespace

void bind_general(py::module_& m) {
  using namespace pybind11::literals;
  py::class_<pq::PassOptions>(m, "PassOptions", "Options of one bound pass over the general model.")
      .def(py::init([](const std::string& planes, bool shared_z, bool want_states, int opt_iters, double opt_lr,
                       int opt_br, int opt_inter, int opt_inter_iters, const std::string& rounding, int opt_grid,
                       bool opt_blocks) {
             pq::PassOptions o;
             if (rounding != "sound" && rounding != "sound32" && rounding != "nearest")
               throw pq::InvalidArgument("rounding must be \"sound\", \"sound32\" or \"nearest\", got \"" +
                                         rounding + "\"");
             o.sound = rounding != "nearest";
             o.f32_products = rounding == "sound32";
             if (planes == "exact") o.planes = pq::PlaneMethod::Exact;
             else if (planes == "1d") o.planes = pq::PlaneMethod::OneD;
             else if (planes == "constant") o.planes = pq::PlaneMethod::Constant;
             else if (planes == "optimized") {
               // RECURRENCES.md §3b: exact planes, every bound refined by its rows' own
               // relaxations (general_optimize.hpp); GRU layers use shared z
               if (opt_iters < 1 || opt_br < 0 || !(opt_lr > 0.0) || opt_inter < 0 || opt_inter_iters < 0)
                 throw pq::InvalidArgument("opt_iters must be >= 1, opt_lr > 0, opt_br, opt_inter and "
                                           "opt_inter_iters >= 0");
               o.planes = pq::PlaneMethod::Exact;
               o.opt.iters = opt_iters;
               o.opt.lr = opt_lr;
               o.opt.br_iters = opt_br;
               o.opt.inter_steps = opt_inter;
               o.opt.inter_iters = opt_inter_iters;
               o.opt.grid = pq::checked_grid(opt_grid);
               o.opt.blocks = opt_blocks;
             } else {
               throw pq::InvalidArgument("planes must be \"exact\", \"optimized\", \"1d\" or \"constant\", got \"" +
                                         planes + "\"");
             }
             o.shared_z = shared_z;
             o.want_states = want_states;
             return o;
           }),
           "planes"_a = "exact", "shared_z"_a = false, "want_states"_a = false, "opt_iters"_a = pq::kMarginIters,
           "opt_lr"_a = 0.01, "opt_br"_a = pq::kMarginIters, "opt_inter"_a = 1 << 20, "opt_inter_iters"_a = 1, "rounding"_a = "sound", "opt_grid"_a = 8,
           "opt_blocks"_a = true,
           "planes: \"exact\", \"1d\", \"constant\" or \"optimized\" (RECURRENCES.md §3b: opt_iters "
           "iterations per margin row, the first opt_br best responses, then Adam steps of size opt_lr; "
           "intermediate bounds of the last opt_inter steps of each chain refined with opt_inter_iters; best "
           "responses on an opt_grid x opt_grid grid of each plane's box, opt_grid cells of a line's "
           "interval, 0: at the sweep point itself; opt_blocks: the intermediate rows a block at a time, one "
           "sweep and one back-substitution of the block with every row's own relaxations, else row by row, "
           "the same bounds). "
           "rounding: \"sound\" (floating-point error charged to every bound, ROUNDING.md), \"sound32\" "
           "(the same, the recurrent steps' products in float32, ROUNDING.md §7) or \"nearest\".")
      .def_readonly("shared_z", &pq::PassOptions::shared_z)
      .def_readonly("want_states", &pq::PassOptions::want_states)
      .def_property_readonly("rounding", [](const pq::PassOptions& o) {
        return o.f32_products ? "sound32" : o.sound ? "sound" : "nearest";
      })
      .def_property_readonly("optimized", &pq::PassOptions::optimized);
  py::class_<PyThreat>(m, "ThreatModel",
                       "The input set of a bound pass beyond the per-frame ball (cpp/threat_model.hpp): "
                       "ball \"frame\" | \"joint\", frame_weights (T,) radius multipliers, domain_lo / "
                       "domain_hi (T, n) box, substitutions (T arrays (k_t, n) of candidates; eps must be 0) "
                       "with budget (most frames substituted at once).")
      .def(py::init([](const std::string& ball, py::object weights, py::object lo, py::object hi, py::object subs,
                       std::ptrdiff_t budget) {
             PyThreat t;
             t.ball = ball;
             t.weights = std::move(weights);
             t.lo = std::move(lo);
             t.hi = std::move(hi);
             t.subs = std::move(subs);
             t.budget = budget;
             return t;
           }),
           "ball"_a = "frame", "frame_weights"_a = py::none(), "domain_lo"_a = py::none(), "domain_hi"_a = py::none(),
           "substitutions"_a = py::none(), "budget"_a = 0)
      .def_readonly("ball", &PyThreat::ball)
      .def_readonly("budget", &PyThreat::budget);
  m.def("general_bounds", &general, "frame"_a, "layers"_a, "readout"_a, "head"_a, "x"_a, "eps"_a, "p"_a,
        "frame_mask"_a, "spec_weight"_a, "spec_bias"_a, "options"_a, "threat"_a = PyThreat(),
        "Bounds of spec_weight @ logits + spec_bias for the general model (general_driver.hpp). "
        "frame / head: lists of (weight, bias, activation or None); layers: list of (kind, activation, "
        "[(w_ih, w_hh, b_ih, b_hh, h0 or None, c0 or None) per direction]). Returns lower, upper, slope "
        "(K,) (slope: how fast lower at least rises as the radius shrinks with these relaxations, "
        "RECURRENCES.md §5) and the states.");
}
