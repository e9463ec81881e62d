// Python bindings of the 1-D lines and 2-D planes (popqorn_fast._core):
//   bound_activation(fn, l, u) -> (alpha_l, beta_l, alpha_u, beta_u)
//   bound_product(surface, method, xl, xu, yl, yu) -> (aL, bL, cL, aU, bU, cU)
//   plane_offset(surface, a, b, xl, xu, yl, yu) -> (c_min, c_max)   exact, no margin
//   product_candidates(surface, a, b, xl, xu, yl, yu) -> (box_index, x, y)   all candidates
//   _exact_stats(surface, xl, xu, yl, yu) -> (iters_upper, iters_lower, converged_u, converged_l)
//   _envelope_kernels(fx, gy, lx, ly, a, b, cx, cy) -> (lo, hi, winners)   planes="optimized"'s
//       envelope-table kernels (envelope_kernels.hpp) as this CPU runs them: the tests compare
//       them with NumPy's arithmetic, with and without AVX2
// All arrays float64, 1-D, equal length (the Python layer validates and broadcasts).
// The GIL is released inside the loops; pq::InvalidArgument -> ValueError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "envelope_kernels.hpp"
#include "lines.hpp"
#include "planes.hpp"

#include <cstdint>
#include <vector>

namespace py = pybind11;
using Arr = py::array_t<double, py::array::c_style | py::array::forcecast>;

namespace {

pq::Activation parse_activation(const std::string& s) {
  if (s == "tanh") return pq::Activation::Tanh;
  if (s == "sigmoid") return pq::Activation::Sigmoid;
  if (s == "relu") return pq::Activation::Relu;
  throw py::value_error("fn must be 'tanh', 'sigmoid' or 'relu', got '" + s + "'");
}

py::ssize_t common_length(std::initializer_list<std::pair<const char*, const Arr*>> arrs) {
  py::ssize_t n = -1;
  for (const auto& [name, a] : arrs) {
    if (a->ndim() != 1) throw py::value_error(std::string(name) + " must be a 1-D array");
    if (n < 0) n = a->shape(0);
    else if (a->shape(0) != n) throw py::value_error(std::string(name) + " has a different length");
  }
  return n;
}

py::tuple bound_activation_py(const std::string& fn_name, const Arr& l, const Arr& u) {
  const pq::Activation fn = parse_activation(fn_name);
  const py::ssize_t n = common_length({{"l", &l}, {"u", &u}});
  Arr al(n), bl(n), au(n), bu(n);
  const double* pl = l.data();
  const double* pu = u.data();
  double *pal = al.mutable_data(), *pbl = bl.mutable_data(), *pau = au.mutable_data(), *pbu = bu.mutable_data();
  {
    py::gil_scoped_release release;
    pq::bound_activation<double>(fn, pl, pu, n, pal, pbl, pau, pbu);
  }
  return py::make_tuple(al, bl, au, bu);
}

pq::Surface parse_surface(const std::string& s) {
  if (s == "tanh_sigmoid") return pq::Surface::TanhSigmoid;
  if (s == "x_sigmoid") return pq::Surface::XSigmoid;
  if (s == "tanh_linear") return pq::Surface::TanhLinear;  // GRU shared z (RECURRENCES.md §4)
  if (s == "bilinear") return pq::Surface::Bilinear;
  throw py::value_error("surface must be 'tanh_sigmoid', 'x_sigmoid', 'tanh_linear' or 'bilinear', got '" + s + "'");
}

pq::PlaneMethod parse_method(const std::string& s) {
  if (s == "exact") return pq::PlaneMethod::Exact;
  if (s == "1d") return pq::PlaneMethod::OneD;
  if (s == "constant") return pq::PlaneMethod::Constant;
  throw py::value_error("method must be 'exact', '1d' or 'constant', got '" + s + "'");
}

void check_box(double xl, double xu, double yl, double yu) {
  if (!(xl <= xu) || !(yl <= yu) || !std::isfinite(xl) || !std::isfinite(xu) || !std::isfinite(yl) ||
      !std::isfinite(yu))
    throw pq::InvalidArgument("need finite xl <= xu and yl <= yu");
}

py::tuple bound_product_py(const std::string& surface, const std::string& method, const Arr& xl, const Arr& xu,
                           const Arr& yl, const Arr& yu) {
  const pq::Surface sf = parse_surface(surface);
  const pq::PlaneMethod pm = parse_method(method);
  const py::ssize_t n = common_length({{"xl", &xl}, {"xu", &xu}, {"yl", &yl}, {"yu", &yu}});
  Arr aL(n), bL(n), cL(n), aU(n), bU(n), cU(n);
  const double *pxl = xl.data(), *pxu = xu.data(), *pyl = yl.data(), *pyu = yu.data();
  double *o0 = aL.mutable_data(), *o1 = bL.mutable_data(), *o2 = cL.mutable_data();
  double *o3 = aU.mutable_data(), *o4 = bU.mutable_data(), *o5 = cU.mutable_data();
  {
    py::gil_scoped_release release;
    pq::bound_product<double>(sf, pm, pxl, pxu, pyl, pyu, n, o0, o1, o2, o3, o4, o5);
  }
  return py::make_tuple(aL, bL, cL, aU, bU, cU);
}

py::tuple plane_offset_py(const std::string& surface, const Arr& a, const Arr& b, const Arr& xl, const Arr& xu,
                          const Arr& yl, const Arr& yu) {
  const pq::Surface sf = parse_surface(surface);
  const py::ssize_t n =
      common_length({{"a", &a}, {"b", &b}, {"xl", &xl}, {"xu", &xu}, {"yl", &yl}, {"yu", &yu}});
  Arr cmin(n), cmax(n);
  const double *pa = a.data(), *pb = b.data(), *pxl = xl.data(), *pxu = xu.data(), *pyl = yl.data(),
               *pyu = yu.data();
  double *omin = cmin.mutable_data(), *omax = cmax.mutable_data();
  {
    py::gil_scoped_release release;
    for (py::ssize_t i = 0; i < n; ++i) check_box(pxl[i], pxu[i], pyl[i], pyu[i]);
    pq::plane_offset<double>(sf, pa, pb, pxl, pxu, pyl, pyu, n, omin, omax);
  }
  return py::make_tuple(cmin, cmax);
}

py::tuple product_candidates_py(const std::string& surface, const Arr& a, const Arr& b, const Arr& xl, const Arr& xu,
                                const Arr& yl, const Arr& yu) {
  const pq::Surface sf = parse_surface(surface);
  const py::ssize_t n =
      common_length({{"a", &a}, {"b", &b}, {"xl", &xl}, {"xu", &xu}, {"yl", &yl}, {"yu", &yu}});
  const double *pa = a.data(), *pb = b.data(), *pxl = xl.data(), *pxu = xu.data(), *pyl = yl.data(),
               *pyu = yu.data();
  std::vector<std::int64_t> idx;
  std::vector<double> xs, ys;
  {
    py::gil_scoped_release release;
    for (py::ssize_t i = 0; i < n; ++i) {
      check_box(pxl[i], pxu[i], pyl[i], pyu[i]);
      pq::detail::for_each_candidate(sf, pa[i], pb[i], pq::detail::Box<double>{pxl[i], pxu[i], pyl[i], pyu[i]},
                                     [&](double x, double y) {
                                       idx.push_back(i);
                                       xs.push_back(x);
                                       ys.push_back(y);
                                     });
    }
  }
  const auto m = static_cast<py::ssize_t>(xs.size());
  return py::make_tuple(py::array_t<std::int64_t>(m, idx.data()), Arr(m, xs.data()), Arr(m, ys.data()));
}

py::tuple exact_stats_py(const std::string& surface, const Arr& xl, const Arr& xu, const Arr& yl, const Arr& yu) {
  const pq::Surface sf = parse_surface(surface);
  const py::ssize_t n = common_length({{"xl", &xl}, {"xu", &xu}, {"yl", &yl}, {"yu", &yu}});
  py::array_t<int> iu(n), il(n);
  py::array_t<bool> cu(n), cl(n);
  const double *pxl = xl.data(), *pxu = xu.data(), *pyl = yl.data(), *pyu = yu.data();
  int *piu = iu.mutable_data(), *pil = il.mutable_data();
  bool *pcu = cu.mutable_data(), *pcl = cl.mutable_data();
  {
    py::gil_scoped_release release;
    for (py::ssize_t i = 0; i < n; ++i) {
      check_box(pxl[i], pxu[i], pyl[i], pyu[i]);
      pq::detail::ExactStats su, sl;
      double t[6];
      pq::detail::exact_planes(sf, pq::detail::Box<double>{pxl[i], pxu[i], pyl[i], pyu[i]}, t[0], t[1], t[2], t[3],
                               t[4], t[5], &su, &sl);
      piu[i] = su.iterations; pil[i] = sl.iterations; pcu[i] = su.converged; pcl[i] = sl.converged;
    }
  }
  return py::make_tuple(iu, il, cu, cl);
}

// The lattice (S = len(fx) points a side) over C = len(a) candidates, then the winners of the
// G x G cells (G = len(cx), C = G^2).
py::tuple envelope_kernels_py(const Arr& fx, const Arr& gy, const Arr& lx, const Arr& ly, const Arr& a, const Arr& b,
                              const Arr& cx, const Arr& cy) {
  const py::ssize_t S = common_length({{"fx", &fx}, {"gy", &gy}, {"lx", &lx}, {"ly", &ly}});
  const py::ssize_t C = common_length({{"a", &a}, {"b", &b}});
  const py::ssize_t G = common_length({{"cx", &cx}, {"cy", &cy}});
  if (G * G != C || S < 1 || G < 1) throw py::value_error("need len(a) = len(cx)^2 >= 1 and len(fx) >= 1");
  Arr lo(C), hi(C);
  py::array_t<int> win(2 * C);
  double *plo = lo.mutable_data(), *phi = hi.mutable_data();
  std::fill(plo, plo + C, std::numeric_limits<double>::infinity());
  std::fill(phi, phi + C, -std::numeric_limits<double>::infinity());
  pq::detail::envelope_lattice(static_cast<int>(S), fx.data(), gy.data(), lx.data(), ly.data(), static_cast<int>(C),
                               a.data(), b.data(), plo, phi);
  pq::detail::envelope_winners(static_cast<int>(G), cx.data(), cy.data(), static_cast<int>(C), a.data(), b.data(),
                               plo, phi, win.mutable_data(), 0, static_cast<int>(C));
  return py::make_tuple(lo, hi, win);
}

}  // namespace

void bind_relaxations(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const pq::InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.def("bound_activation", &bound_activation_py, py::arg("fn"), py::arg("l"), py::arg("u"),
        "Lines alpha_l*z+beta_l <= fn(z) <= alpha_u*z+beta_u on [l, u] (fn: tanh|sigmoid|relu).");
  m.def("bound_product", &bound_product_py, py::arg("surface"), py::arg("method"), py::arg("xl"), py::arg("xu"),
        py::arg("yl"), py::arg("yu"),
        "Planes aL x+bL y+cL <= F <= aU x+bU y+cU on boxes (surface: tanh_sigmoid|x_sigmoid; "
        "method: exact|1d|constant).");
  m.def("plane_offset", &plane_offset_py, py::arg("surface"), py::arg("a"), py::arg("b"), py::arg("xl"),
        py::arg("xu"), py::arg("yl"), py::arg("yu"),
        "Exact (min, max) of F - a x - b y over each box (no safety margin).");
  m.def("product_candidates", &product_candidates_py, py::arg("surface"), py::arg("a"), py::arg("b"),
        py::arg("xl"), py::arg("xu"), py::arg("yl"), py::arg("yu"),
        "Candidate extreme points (x, y) of F - a x - b y on one box (corners, edge and interior critical points).");
  m.def("_exact_stats", &exact_stats_py, "Diagnostics: pricing calls and convergence of the exact method per box.");
  m.def("_envelope_kernels", &envelope_kernels_py, py::arg("fx"), py::arg("gy"), py::arg("lx"), py::arg("ly"),
        py::arg("a"), py::arg("b"), py::arg("cx"), py::arg("cy"),
        "Diagnostics: the envelope tables' lattice and winner kernels of planes='optimized' -> (lo, hi, winners).");
}
