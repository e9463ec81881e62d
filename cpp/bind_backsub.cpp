// Python bindings of the RNN/LSTM/GRU bound passes (owned by the core work).
#include <pybind11/pybind11.h>
namespace py = pybind11;
void bind_backsub(py::module_& m) { (void)m; }
