// Python bindings of the 1-D lines and 2-D planes (popqorn_fast._core):
//   bound_activation(fn, l, u) -> (alpha_l, beta_l, alpha_u, beta_u)
// All arrays float64, 1-D, equal length (the Python layer validates and broadcasts).
// The GIL is released inside the loops; pq::InvalidArgument -> ValueError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <utility>

#include "lines.hpp"

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
}
