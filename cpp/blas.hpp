// The optional BLAS behind the dense products of matmul.hpp: OpenBLAS as shipped on PyPI
// by scipy-openblas32 (symbols prefixed scipy_, 32-bit integers). CMake defines
// PQ_HAVE_BLAS=1 and adds the package's include and library directories when it finds
// the package (CMakeLists.txt); other builds (the test harnesses, the CUDA host
// emulation, a build without the package) use the hand kernels only.
//
// Threads: every call runs on its caller's thread. Python loads the library with
// OPENBLAS_NUM_THREADS=1 (popqorn_fast/_blas.py), so that it starts no threads of its
// own; if someone else loaded it with more, the first call here sets it to one.
// Threads inside a pass are matmul.hpp's row blocks (row_pool.hpp).
// The environment variable POPQORN_NO_BLAS (any value) keeps the hand kernels in a BLAS
// build: the tests and benchmarks compare both paths in one build.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include "common.hpp"

#if PQ_HAVE_BLAS
#include <cblas.h>
#endif

namespace pq {

#if PQ_HAVE_BLAS
inline bool blas_enabled() {
  static const bool yes = [] {
    if (std::getenv("POPQORN_NO_BLAS") != nullptr) return false;
    if (scipy_openblas_get_num_threads() > 1) scipy_openblas_set_num_threads(1);
    return true;
  }();
  return yes;
}

// C = A B (beta 0) or C += A B (beta 1), row-major views; sizes fit blasint (int), as
// the product's buffers are far smaller than 2^31 entries.
inline void blas_gemm(MatView<const double> A, MatView<const double> B, MatView<double> C, bool acc) {
  scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(A.rows),
                    static_cast<blasint>(B.cols), static_cast<blasint>(A.cols), 1.0, A.data,
                    static_cast<blasint>(A.stride), B.data, static_cast<blasint>(B.stride),
                    acc ? 1.0 : 0.0, C.data, static_cast<blasint>(C.stride));
}
inline void blas_gemm(MatView<const float> A, MatView<const float> B, MatView<float> C, bool acc) {
  scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(A.rows),
                    static_cast<blasint>(B.cols), static_cast<blasint>(A.cols), 1.0f, A.data,
                    static_cast<blasint>(A.stride), B.data, static_cast<blasint>(B.stride),
                    acc ? 1.0f : 0.0f, C.data, static_cast<blasint>(C.stride));
}

// OpenBLAS's SkylakeX kernels (also its Cooperlake and SapphireRapids ones) run a product of
// rows·K·N ≤ 100³ through an unpacked small-matrix kernel; beyond it the packed kernel packs
// both operands per call. Measured on a pass's blocks (one thread, AVX-512 Xeon): 64-row,
// K-sliced calls that stay in the small kernel reach 60-70 GFLOP/s where the packed kernel
// gives 46-57 (N = 48-192; bench/results/2026-12-08-small-kernel.md); at N = 256 the slices
// are too thin (kc ≤ 61) and the packed kernel wins.
inline bool blas_small_kernel() {
  static const bool yes = [] {
    const char* core = scipy_openblas_get_corename();
    if (core == nullptr) return false;
    for (const char* name : {"SkylakeX", "Cooperlake", "SapphireRapids"})
      if (std::strcmp(core, name) == 0) return true;
    return false;
  }();
  return yes;
}
#else
inline bool blas_enabled() { return false; }
#endif

}  // namespace pq
