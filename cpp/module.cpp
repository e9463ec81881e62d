// The pybind11 module popqorn_fast._core: gathers the bindings of each part.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_relaxations(py::module_& m);  // bind_relaxations.cpp: lines, planes
void bind_backsub(py::module_& m);      // bind_backsub.cpp: RNN/LSTM/GRU bound passes
void bind_general(py::module_& m);      // bind_general.cpp: the generic pass over the general model

PYBIND11_MODULE(_core, m) {
  m.doc() = "popqorn_fast C++ core: relaxations and back-substitution (CPU backend)";
  bind_relaxations(m);
  bind_backsub(m);
  bind_general(m);
}
