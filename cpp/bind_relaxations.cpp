// Python bindings of the 1-D lines and 2-D planes (owned by the relaxations work).
#include <pybind11/pybind11.h>
namespace py = pybind11;
void bind_relaxations(py::module_& m) { (void)m; }
