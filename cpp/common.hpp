// Shared small types for the popqorn_fast core: strided matrix views and
// the error type that the bindings turn into Python ValueError.
#pragma once
#include <cstddef>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

// PQ_HD marks the scalar relaxation functions (lines.hpp, planes.hpp,
// planes_offset.hpp, dual_norm) as callable from CUDA device code (cpp/cuda/);
// empty for the host compiler. Functions that throw stay host-only.
#if defined(__CUDACC__)
#define PQ_HD __host__ __device__
#else
#define PQ_HD
#endif

namespace pq {

// The absolute term of the relaxations' and magnitudes' safety margins (ROUNDING.md §2):
// anything above the few 2^-1074 that gradual underflow can cost is sound; 2^-511
// (float: 2^-63), the square root of the smallest normal number, keeps the products of
// the pass's coefficients with it normal (subnormal operands and results run through
// microcode on x86, ~100 cycles each) while staying far below any bound's resolution.
template <class T>
PQ_HD constexpr T absolute_slack() {
  return sizeof(T) == sizeof(float) ? T(1.0842021724855044e-19) : T(1.4916681462400413e-154);
}

// A non-owning row-major view of a rows x cols matrix with an explicit row stride.
template <class T>
struct MatView {
  T* data = nullptr;
  std::ptrdiff_t rows = 0, cols = 0, stride = 0;  // stride in elements between rows
  T& operator()(std::ptrdiff_t i, std::ptrdiff_t j) const { return data[i * stride + j]; }
  T* row(std::ptrdiff_t i) const { return data + i * stride; }
};

// Storage on 64-byte boundaries (a cache line, one AVX-512 vector).
template <class T>
struct LineAligned {
  using value_type = T;
  static constexpr std::size_t kAlign = 64;
  LineAligned() = default;
  template <class U>
  LineAligned(const LineAligned<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kAlign))); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(kAlign)); }
  template <class U>
  bool operator==(const LineAligned<U>&) const { return true; }
  template <class U>
  bool operator!=(const LineAligned<U>&) const { return false; }
};

// An owning row-major matrix (contiguous, stride == cols).
template <class T>
struct Mat {
  std::ptrdiff_t rows = 0, cols = 0;
  std::vector<T, LineAligned<T>> v;
  Mat() = default;
  Mat(std::ptrdiff_t r, std::ptrdiff_t c, T fill = T(0)) : rows(r), cols(c), v(static_cast<size_t>(r * c), fill) {}
  T& operator()(std::ptrdiff_t i, std::ptrdiff_t j) { return v[static_cast<size_t>(i * cols + j)]; }
  const T& operator()(std::ptrdiff_t i, std::ptrdiff_t j) const { return v[static_cast<size_t>(i * cols + j)]; }
  T* row(std::ptrdiff_t i) { return v.data() + i * cols; }
  const T* row(std::ptrdiff_t i) const { return v.data() + i * cols; }
  MatView<T> view() { return {v.data(), rows, cols, cols}; }
  MatView<const T> view() const { return {v.data(), rows, cols, cols}; }
};

// Invalid arguments that reach the core (the Python layer validates first;
// this is the last line of defence, mapped to ValueError by pybind11).
struct InvalidArgument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

}  // namespace pq
