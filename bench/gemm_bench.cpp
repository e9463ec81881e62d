// The product kernels of cpp/matmul.hpp side by side at back-substitution shapes: the hand
// kernel, the BLAS in gemm's fixed row blocks (one call per block, and gemm's own path:
// blas_gemm_sliced, 64-row calls over K slices where the small-matrix kernel pays), the BLAS
// in one call; GFLOP/s, best of 5.
// Sets matmul.hpp's thresholds (kBlasMinCols, the row blocks). Not part of the package build.
//   P=$(python -c "import scipy_openblas32 as s; print(s.get_lib_dir())")
//   g++ -std=c++17 -O3 -fno-math-errno -Wno-psabi -DPQ_HAVE_BLAS=1 -Icpp -I$P/../include \
//       bench/gemm_bench.cpp -o /tmp/gemm_bench -L$P -lscipy_openblas -Wl,-rpath,$P
//   OPENBLAS_NUM_THREADS=1 /tmp/gemm_bench [float]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include "matmul.hpp"
using namespace pq;

template <class F>
double best_seconds(F f, double flops) {
  double b = 1e9;
  const int reps = std::max(3, static_cast<int>(2e8 / flops));
  for (int t = 0; t < 5; ++t) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) f();
    b = std::min(b, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps);
  }
  return b;
}

template <class T>
void run() {
  std::mt19937 rng(0);
  std::normal_distribution<double> nd;
  std::printf("%6s %6s %6s %9s %9s %9s %9s %7s\n", "R", "K", "N", "hand", "blas-blk", "sliced", "blas-one",
              "blk/hand");
  for (long s : {8, 16, 32, 48, 64, 96, 128, 192, 256}) {
    // LSTM: gates 8s x 4s x s, cells 2s x 4s x s, margins 20 x 4s x s, the W_ih product
    // 8s x 4s x n (n = 8, 32); GRU 6s x 3s x s; one row (optimized planes).
    const long shapes[][3] = {{8 * s, 4 * s, s}, {2 * s, 4 * s, s}, {20, 4 * s, s}, {8 * s, 4 * s, 8},
                              {8 * s, 4 * s, 32}, {6 * s, 3 * s, s}, {1, 4 * s, s}, {2 * s, 4 * s, 8}};
    for (const auto& sh : shapes) {
      const long R = sh[0], K = sh[1], N = sh[2];
      Mat<T> A(R, K), B(K, N), C(R, N);
      for (auto& v : A.v) v = T(nd(rng));
      for (auto& v : B.v) v = T(nd(rng));
      const double fl = 2.0 * R * K * N;
      const auto a = cview(A.view()), b = cview(B.view());
      const double th = best_seconds([&] { detail::gemm_hand(a, b, C.view(), false); }, fl);
      const std::ptrdiff_t rb = detail::block_rows(N);
      const double tk = best_seconds([&] {
        for (std::ptrdiff_t r0 = 0; r0 < R; r0 += rb) {
          const std::ptrdiff_t nr = std::min<std::ptrdiff_t>(rb, R - r0);
          blas_gemm(block(a, r0, nr, 0, K), b, block(C.view(), r0, nr, 0, N), false);
        }
      }, fl);
      const double tsl = best_seconds([&] {
        for (std::ptrdiff_t r0 = 0; r0 < R; r0 += rb) {
          const std::ptrdiff_t nr = std::min<std::ptrdiff_t>(rb, R - r0);
          blas_gemm_sliced(block(a, r0, nr, 0, K), b, block(C.view(), r0, nr, 0, N), false);
        }
      }, fl);
      const double t1 = best_seconds([&] { blas_gemm(a, b, C.view(), false); }, fl);
      std::printf("%6ld %6ld %6ld %9.1f %9.1f %9.1f %9.1f %7.2f\n", R, K, N, fl / th / 1e9, fl / tk / 1e9,
                  fl / tsl / 1e9, fl / t1 / 1e9, th / tk);
    }
  }
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "float") run<float>();
  else run<double>();
}
