// What the binding files share: NumPy arrays in (shape and finiteness checked, naming the
// argument, as pq::InvalidArgument -> ValueError), row-major views of them, and a bound
// pass's result out as a dict of arrays.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "bound_state.hpp"
#include "common.hpp"

namespace pq::bind {

namespace py = pybind11;

using Arr = py::array_t<double, py::array::c_style | py::array::forcecast>;
using BoolArr = py::array_t<bool, py::array::c_style | py::array::forcecast>;

// "(3,)", "(3, 4)": a shape as Python writes it.
inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    s += std::to_string(a.shape(i));
    if (a.ndim() == 1 || i + 1 < a.ndim()) s += a.ndim() == 1 ? "," : ", ";
  }
  return s + ")";
}

// Require a.shape == shape exactly (entries < 0 = any size >= 1) and finite values.
inline void check(const Arr& a, const std::string& name, const std::vector<std::ptrdiff_t>& shape) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i)
    ok = shape[i] < 0 ? a.shape(i) >= 1 : a.shape(i) == shape[i];
  if (!ok) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i)
      want += (shape[i] < 0 ? std::string("*") : std::to_string(shape[i])) +
              (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
    throw InvalidArgument(name + " has shape " + shape_str(a) + "; expected " + want + ")");
  }
  const double* p = a.data();
  for (py::ssize_t i = 0; i < a.size(); ++i)
    if (!std::isfinite(p[i])) throw InvalidArgument(name + " contains NaN or infinite values");
}

inline MatView<const double> mat(const Arr& a) {
  return {a.data(), static_cast<std::ptrdiff_t>(a.shape(0)), static_cast<std::ptrdiff_t>(a.shape(1)),
          static_cast<std::ptrdiff_t>(a.shape(1))};
}

// {"lower", "upper"} of the objective rows, and "<state>_lower" / "<state>_upper" per state.
inline py::dict to_dict(const BoundResult<double>& r) {
  py::dict out;
  const py::ssize_t K = static_cast<py::ssize_t>(r.lower.size());
  py::array_t<double> lo(K), up(K);
  std::copy(r.lower.begin(), r.lower.end(), lo.mutable_data());
  std::copy(r.upper.begin(), r.upper.end(), up.mutable_data());
  out["lower"] = lo;
  out["upper"] = up;
  if (!r.slope.empty()) {
    py::array_t<double> sl(K);
    std::copy(r.slope.begin(), r.slope.end(), sl.mutable_data());
    out["slope"] = sl;
  }
  for (const auto& st : r.states) {
    py::array_t<double> a({st.lower.rows, st.lower.cols}), b({st.upper.rows, st.upper.cols});
    std::copy(st.lower.v.begin(), st.lower.v.end(), a.mutable_data());
    std::copy(st.upper.v.begin(), st.upper.v.end(), b.mutable_data());
    out[py::str(st.name + "_lower")] = a;
    out[py::str(st.name + "_upper")] = b;
  }
  return out;
}

}  // namespace pq::bind
