// Dense products for back-substitution (ALGORITHM.md §4): Λ' = G W (objective rows
// times a weight block, shapes rows x 4s times 4s x s) and row dot products d += G v.
// Row-major views with explicit strides.
//
// gemm is register-blocked. On x86-64 with AVX2+FMA (chosen at run time; wheels stay
// portable, -DPOPQORN_NATIVE=ON compiles everything for the build host) the double
// kernel packs B into 8-column panels (k-major, zero-padded; column groups sized to
// stay in L2) and keeps a 6-row x 8-column tile of C in 12 ymm registers while k runs
// over the (nonzero) columns of those 6 rows of A: per k, 2 panel loads, 6 broadcasts
// and 12 multiply-adds. Elsewhere (baseline ISA, other scalar types) a 4-row x
// 2-vector tile of GCC/Clang vector extensions streams B unpacked. In both, every
// entry of C is summed over k in increasing order, one accumulator each, so the
// tiling never changes a result. For sparse rows (first row of the block at most half
// nonzero) the list of k where the block's rows are not all zero is built once per
// row block (once per product, before the column groups), so objectives that are
// identities or diagonal blocks (the first step of every back-substitution) cost only
// their nonzeros.
//
// gemm itself cuts A into row blocks fixed by the shape (block_rows) and sends each
// dense block of a shape where it wins to the BLAS (blas.hpp: OpenBLAS from PyPI, when
// the build found it), the others to the hand kernel; the blocks run on the threads of
// the calling pass (row_pool.hpp). The BLAS sums in its own order (results differ from
// the hand kernel's at the ulp level), but a block's result never depends on the thread
// count, so k threads give the bounds of one bit for bit.
//
// add_rowdots has the same baseline / AVX2 pair (AVX2 without FMA there, so that its
// rounding, and the results, are those of the baseline build).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>
#include "blas.hpp"
#include "common.hpp"
#include "row_pool.hpp"
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

namespace pq {

template <class T>
MatView<const T> cview(MatView<T> m) { return {m.data, m.rows, m.cols, m.stride}; }
template <class T>
MatView<const T> cview(MatView<const T> m) { return m; }

// The sub-block rows [r0, r0+nr) x cols [c0, c0+nc) of m (same stride).
template <class M>
auto block(M m, std::ptrdiff_t r0, std::ptrdiff_t nr, std::ptrdiff_t c0, std::ptrdiff_t nc) {
  M b = m;
  b.data = m.data + r0 * m.stride + c0;
  b.rows = nr;
  b.cols = nc;
  return b;
}

// Rows [r0, r1) of m, every column (the blocks of row_pool.hpp's for_blocks).
template <class M>
M rows_of(M m, std::ptrdiff_t r0, std::ptrdiff_t r1) {
  return block(m, r0, r1 - r0, 0, m.cols);
}

// The first r rows of an owning matrix, as a view (buffers are sized for the
// largest objective and reused with fewer rows).
template <class T>
MatView<T> top_rows(Mat<T>& m, std::ptrdiff_t r) { return {m.v.data(), r, m.cols, m.cols}; }
// Rows [r0, r0 + n) of an owning matrix, as a view.
template <class T>
MatView<T> row_block(Mat<T>& m, std::ptrdiff_t r0, std::ptrdiff_t n) { return {m.row(r0), n, m.cols, m.cols}; }

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PQ_X86_DISPATCH 1
#define PQ_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PQ_X86_DISPATCH 0
#define PQ_ALWAYS_INLINE inline
#endif

// Vector-typed helpers are always inlined into their ISA's kernel: no ABI crossing.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace detail {

constexpr std::ptrdiff_t kMR = 4;  // rows of a register tile (the nonzero test below spells out 4)

// C[rows, j0:j0+nr] (+)= Σ_{k in ks} A[rows, k] B[k, j0:j0+nr] for MR rows (MR <= kMR),
// nr <= NR columns, NR = 2 vectors of VB bytes (GCC/Clang vector extensions keep the
// MR x 2 accumulators in registers). acc: start from C (true) or from zero (false).
template <class T, int VB>
struct Vec {
  typedef T type __attribute__((vector_size(VB)));
  static constexpr int n = VB / static_cast<int>(sizeof(T));
  static PQ_ALWAYS_INLINE type load(const T* p) { type v; __builtin_memcpy(&v, p, sizeof v); return v; }
  static PQ_ALWAYS_INLINE void store(T* p, type v) { __builtin_memcpy(p, &v, sizeof v); }
};

template <class T, int MR, int VB, bool Sparse>
PQ_ALWAYS_INLINE void tile(const T* const* a, const std::ptrdiff_t* ks, std::ptrdiff_t nk,
                           const T* B, std::ptrdiff_t ldb, T* const* c, std::ptrdiff_t j0,
                           std::ptrdiff_t nr, bool acc) {
  using V = Vec<T, VB>;
  using v_t = typename V::type;
  constexpr int W = V::n;
  if (nr == 2 * W) {
    v_t t0[MR], t1[MR];
    for (int r = 0; r < MR; ++r) {
      t0[r] = acc ? V::load(c[r] + j0) : v_t{};
      t1[r] = acc ? V::load(c[r] + j0 + W) : v_t{};
    }
    for (std::ptrdiff_t q = 0; q < nk; ++q) {
      const std::ptrdiff_t k = Sparse ? ks[q] : q;
      const T* b = B + k * ldb + j0;
      const v_t b0 = V::load(b), b1 = V::load(b + W);
      for (int r = 0; r < MR; ++r) {
        const T ar = a[r][k];
        t0[r] += ar * b0;
        t1[r] += ar * b1;
      }
    }
    for (int r = 0; r < MR; ++r) {
      V::store(c[r] + j0, t0[r]);
      V::store(c[r] + j0 + W, t1[r]);
    }
    return;
  }
  // column tail (nr < 2W): scalar
  T t[MR][2 * W];
  for (int r = 0; r < MR; ++r)
    for (std::ptrdiff_t j = 0; j < nr; ++j) t[r][j] = acc ? c[r][j0 + j] : T(0);
  for (std::ptrdiff_t q = 0; q < nk; ++q) {
    const std::ptrdiff_t k = Sparse ? ks[q] : q;
    const T* b = B + k * ldb + j0;
    for (int r = 0; r < MR; ++r) {
      const T ar = a[r][k];
      for (std::ptrdiff_t j = 0; j < nr; ++j) t[r][j] += ar * b[j];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (std::ptrdiff_t j = 0; j < nr; ++j) c[r][j0 + j] = t[r][j];
}

// All columns of MR rows of C, given their nonzero k list.
template <class T, int MR, int VB, bool Sparse>
PQ_ALWAYS_INLINE void row_block(const T* const* a, const std::ptrdiff_t* ks, std::ptrdiff_t nk,
                                MatView<const T> B, T* const* c, bool acc) {
  constexpr std::ptrdiff_t NR = 2 * Vec<T, VB>::n;
  const std::ptrdiff_t N = B.cols;
  for (std::ptrdiff_t j0 = 0; j0 < N; j0 += NR)
    tile<T, MR, VB, Sparse>(a, ks, nk, B.data, B.stride, c, j0, N - j0 < NR ? N - j0 : NR, acc);
}

template <class T, int VB>
PQ_ALWAYS_INLINE void gemm_body(MatView<const T> A, MatView<const T> B, MatView<T> C, bool acc,
                                std::ptrdiff_t* ks) {
  const std::ptrdiff_t R = A.rows, K = A.cols, N = B.cols;
  for (std::ptrdiff_t i0 = 0; i0 < R; i0 += kMR) {
    const int mr = static_cast<int>(R - i0 < kMR ? R - i0 : kMR);
    const T* a[kMR];
    T* c[kMR];
    for (int r = 0; r < kMR; ++r) {  // rows past R alias the last one (never stored)
      const std::ptrdiff_t i = i0 + (r < mr ? r : mr - 1);
      a[r] = A.row(i);
      c[r] = C.row(i);
    }
    // Dense rows (the usual case after the first step) skip the index list; the
    // density test looks at the block's first row only (either choice is exact).
    std::ptrdiff_t nz0 = 0;
    for (std::ptrdiff_t k = 0; k < K; ++k) nz0 += a[0][k] != T(0);
    if (2 * nz0 > K) {
      switch (mr) {
        case 4: row_block<T, 4, VB, false>(a, ks, K, B, c, acc); break;
        case 3: row_block<T, 3, VB, false>(a, ks, K, B, c, acc); break;
        case 2: row_block<T, 2, VB, false>(a, ks, K, B, c, acc); break;
        default: row_block<T, 1, VB, false>(a, ks, K, B, c, acc); break;
      }
      continue;
    }
    std::ptrdiff_t nk = 0;
    for (std::ptrdiff_t k = 0; k < K; ++k) {  // rows past mr alias row mr-1: harmless
      const bool nz = (a[0][k] != T(0)) | (a[1][k] != T(0)) | (a[2][k] != T(0)) | (a[3][k] != T(0));
      ks[nk] = k;
      nk += nz;
    }
    if (nk == 0 && !acc) {  // all-zero rows: C = 0
      for (int r = 0; r < mr; ++r)
        for (std::ptrdiff_t j = 0; j < N; ++j) c[r][j] = T(0);
      continue;
    }
    switch (mr) {
      case 4: row_block<T, 4, VB, true>(a, ks, nk, B, c, acc); break;
      case 3: row_block<T, 3, VB, true>(a, ks, nk, B, c, acc); break;
      case 2: row_block<T, 2, VB, true>(a, ks, nk, B, c, acc); break;
      default: row_block<T, 1, VB, true>(a, ks, nk, B, c, acc); break;
    }
  }
}

// Vector widths in bytes: 16 (SSE2 baseline), 32 (AVX2).
constexpr int kVbBase = 16, kVbAvx2 = 32;

template <class T>
void gemm_base(MatView<const T> A, MatView<const T> B, MatView<T> C, bool acc, std::ptrdiff_t* ks) {
#if defined(__AVX2__)
  gemm_body<T, kVbAvx2>(A, B, C, acc, ks);
#else
  gemm_body<T, kVbBase>(A, B, C, acc, ks);
#endif
}

#if PQ_X86_DISPATCH && !defined(__AVX2__)
template <class T>
__attribute__((target("avx2,fma"))) void gemm_avx2(MatView<const T> A, MatView<const T> B,
                                                   MatView<T> C, bool acc, std::ptrdiff_t* ks) {
  gemm_body<T, kVbAvx2>(A, B, C, acc, ks);
}
#endif

#if PQ_X86_DISPATCH
#define PQ_TARGET_AVX2_FMA __attribute__((target("avx2,fma")))
#define PQ_TARGET_AVX2 __attribute__((target("avx2")))
// The environment variable POPQORN_NO_AVX2 (any value) keeps the baseline kernels on an
// AVX2 host: the tests use it to check both paths in one build.
inline bool cpu_has_avx2_fma() {
#if defined(__AVX2__) && defined(__FMA__)
  return true;
#else
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          std::getenv("POPQORN_NO_AVX2") == nullptr;
  return yes;
#endif
}

// The AVX-512 builds of the fused sign-rule passes (sign_rule.hpp): GCC only, whose
// optimize("fp-contract=off") keeps a * b + c from becoming an FMA where AVX-512 has one
// (they must round as the baseline build). POPQORN_NO_AVX512 (any value) keeps their AVX2
// build on an AVX-512 host (the tests compare both); POPQORN_NO_AVX2 the baseline one.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__AVX2__)
#define PQ_FUSED_AVX512 1
#define PQ_TARGET_AVX512_NOFMA __attribute__((target("avx512f,avx512dq"), optimize("fp-contract=off")))
inline bool cpu_has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          cpu_has_avx2_fma() && std::getenv("POPQORN_NO_AVX512") == nullptr;
  return yes;
}
#else
#define PQ_FUSED_AVX512 0
#endif

// ---- AVX2+FMA kernel for double (see the header comment) ----
constexpr std::ptrdiff_t kPR = 6;              // rows of the register tile
constexpr std::ptrdiff_t kPW = 8;              // columns of the register tile = one panel
constexpr std::ptrdiff_t kPanelBytes = 256 * 1024;  // packed B per column group (L2)

// Columns per group: a multiple of kPW with K x NC doubles within kPanelBytes.
inline std::ptrdiff_t panel_group_cols(std::ptrdiff_t K) {
  const std::ptrdiff_t per = kPanelBytes / static_cast<std::ptrdiff_t>(sizeof(double));
  std::ptrdiff_t nc = (K > 0 ? per / K : per) / kPW * kPW;
  return nc < kPW ? kPW : nc;
}

// Panel p of B[:, j0:j0+nc] at bp + p*K*kPW: row k holds B[k, j0+8p .. j0+8p+8), zeros
// past column nc.
PQ_ALWAYS_INLINE void pack_b_panels(MatView<const double> B, std::ptrdiff_t j0, std::ptrdiff_t nc,
                                    double* bp) {
  const std::ptrdiff_t K = B.rows;
  for (std::ptrdiff_t p = 0; p * kPW < nc; ++p) {
    const std::ptrdiff_t w = nc - p * kPW < kPW ? nc - p * kPW : kPW;
    double* dst = bp + p * K * kPW;
    for (std::ptrdiff_t k = 0; k < K; ++k, dst += kPW) {
      const double* src = B.row(k) + j0 + p * kPW;
      std::ptrdiff_t j = 0;
      for (; j < w; ++j) dst[j] = src[j];
      for (; j < kPW; ++j) dst[j] = 0.0;
    }
  }
}

// C[rows, j:j+w] (+)= Σ_{k in ks} A[rows, k] Bpanel[k, 0:w] for the kPR rows of a
// (rows past mr alias row mr-1: computed, never stored), w <= 8 columns. Each entry:
// one accumulator, k in increasing order, acc + a*b per k, written as a product and a
// sum like the baseline kernel, so that the compiler's contraction setting decides
// whether they fuse to one FMA in both (GCC: -ffp-contract=fast from -O2; the
// host emulation of the CUDA kernels, tests/test_cuda.py, builds at -O1 and fuses
// nothing, like nvcc --fmad=false). The twelve accumulators are named variables so
// that they stay in registers.
template <bool Sparse>
PQ_TARGET_AVX2_FMA PQ_ALWAYS_INLINE void tile_avx2(const double* const* a, int mr,
                                                   const std::ptrdiff_t* ks, std::ptrdiff_t nk,
                                                   const double* bp, double* const* c,
                                                   std::ptrdiff_t j, std::ptrdiff_t w, bool acc) {
  __m256d t[2 * kPR];
  if (!acc) {
    for (int r = 0; r < 2 * kPR; ++r) t[r] = _mm256_setzero_pd();
  } else {
    for (int r = 0; r < kPR; ++r) {
      double tmp[kPW] = {0, 0, 0, 0, 0, 0, 0, 0};
      const double* src = c[r < mr ? r : mr - 1] + j;
      for (std::ptrdiff_t q = 0; q < w; ++q) tmp[q] = src[q];
      t[2 * r] = _mm256_loadu_pd(tmp);
      t[2 * r + 1] = _mm256_loadu_pd(tmp + 4);
    }
  }
  __m256d c00 = t[0], c01 = t[1], c10 = t[2], c11 = t[3], c20 = t[4], c21 = t[5];
  __m256d c30 = t[6], c31 = t[7], c40 = t[8], c41 = t[9], c50 = t[10], c51 = t[11];
  const double *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
#pragma GCC unroll 4
  for (std::ptrdiff_t q = 0; q < nk; ++q) {
    const std::ptrdiff_t k = Sparse ? ks[q] : q;
    const double* b = bp + k * kPW;
    const __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);
    __m256d x = _mm256_broadcast_sd(a0 + k);
    c00 = _mm256_add_pd(c00, _mm256_mul_pd(x, b0)); c01 = _mm256_add_pd(c01, _mm256_mul_pd(x, b1));
    x = _mm256_broadcast_sd(a1 + k);
    c10 = _mm256_add_pd(c10, _mm256_mul_pd(x, b0)); c11 = _mm256_add_pd(c11, _mm256_mul_pd(x, b1));
    x = _mm256_broadcast_sd(a2 + k);
    c20 = _mm256_add_pd(c20, _mm256_mul_pd(x, b0)); c21 = _mm256_add_pd(c21, _mm256_mul_pd(x, b1));
    x = _mm256_broadcast_sd(a3 + k);
    c30 = _mm256_add_pd(c30, _mm256_mul_pd(x, b0)); c31 = _mm256_add_pd(c31, _mm256_mul_pd(x, b1));
    x = _mm256_broadcast_sd(a4 + k);
    c40 = _mm256_add_pd(c40, _mm256_mul_pd(x, b0)); c41 = _mm256_add_pd(c41, _mm256_mul_pd(x, b1));
    x = _mm256_broadcast_sd(a5 + k);
    c50 = _mm256_add_pd(c50, _mm256_mul_pd(x, b0)); c51 = _mm256_add_pd(c51, _mm256_mul_pd(x, b1));
  }
  t[0] = c00; t[1] = c01; t[2] = c10; t[3] = c11; t[4] = c20; t[5] = c21;
  t[6] = c30; t[7] = c31; t[8] = c40; t[9] = c41; t[10] = c50; t[11] = c51;
  for (int r = 0; r < mr; ++r) {
    if (w == kPW) {
      _mm256_storeu_pd(c[r] + j, t[2 * r]);
      _mm256_storeu_pd(c[r] + j + 4, t[2 * r + 1]);
    } else {
      double tmp[kPW];
      _mm256_storeu_pd(tmp, t[2 * r]);
      _mm256_storeu_pd(tmp + 4, t[2 * r + 1]);
      for (std::ptrdiff_t q = 0; q < w; ++q) c[r][j + q] = tmp[q];
    }
  }
}

template <bool Sparse>
PQ_TARGET_AVX2_FMA PQ_ALWAYS_INLINE void row_block_avx2(const double* const* a, int mr,
                                                        const std::ptrdiff_t* ks, std::ptrdiff_t nk,
                                                        const double* bp, std::ptrdiff_t K,
                                                        double* const* c, std::ptrdiff_t j0,
                                                        std::ptrdiff_t nc, bool acc) {
  for (std::ptrdiff_t p = 0; p * kPW < nc; ++p)
    tile_avx2<Sparse>(a, mr, ks, nk, bp + p * K * kPW, c, j0 + p * kPW,
                      nc - p * kPW < kPW ? nc - p * kPW : kPW, acc);
}

// Rows of tile t (kPR rows from t*kPR; rows past R alias the last one, never stored).
PQ_ALWAYS_INLINE int tile_rows(MatView<const double> A, MatView<double> C, std::ptrdiff_t t,
                               const double** a, double** c) {
  const std::ptrdiff_t i0 = t * kPR, R = A.rows;
  const int mr = static_cast<int>(R - i0 < kPR ? R - i0 : kPR);
  for (int r = 0; r < kPR; ++r) {
    const std::ptrdiff_t i = i0 + (r < mr ? r : mr - 1);
    a[r] = A.row(i);
    c[r] = C.row(i);
  }
  return mr;
}

// ks: room for tiles_scratch_size(R, K) entries; bp: room for K x round_up(min(N,
// panel_group_cols(K)), kPW) doubles. Which k each tile visits is found once, before
// the column groups: nk[t] = -1 (dense: its first row more than half nonzero; either
// path is exact) or the count of the k where one of its rows is nonzero, listed at
// ks + nt + t*K. (Found per group, it cost a sparse product at h = 256 with 8 groups
// about half a dense one.)
inline std::ptrdiff_t tiles_scratch_size(std::ptrdiff_t R, std::ptrdiff_t K) {
  const std::ptrdiff_t nt = (R + kPR - 1) / kPR;
  return nt * (K + 1);
}
PQ_TARGET_AVX2_FMA inline void gemm_avx2_f64(MatView<const double> A, MatView<const double> B,
                                              MatView<double> C, bool acc, std::ptrdiff_t* ks,
                                              double* bp) {
  const std::ptrdiff_t R = A.rows, K = A.cols, N = B.cols;
  const std::ptrdiff_t NC = panel_group_cols(K), nt = (R + kPR - 1) / kPR;
  std::ptrdiff_t* nk = ks;
  const double* a[kPR];
  double* c[kPR];
  for (std::ptrdiff_t t = 0; t < nt; ++t) {
    tile_rows(A, C, t, a, c);
    std::ptrdiff_t nz0 = 0;
    for (std::ptrdiff_t k = 0; k < K; ++k) nz0 += a[0][k] != 0.0;
    if (2 * nz0 > K) {
      nk[t] = -1;
      continue;
    }
    std::ptrdiff_t* kt = ks + nt + t * K;
    std::ptrdiff_t n = 0;
    for (std::ptrdiff_t k = 0; k < K; ++k) {  // rows past mr alias row mr-1: harmless
      const bool nz = (a[0][k] != 0.0) | (a[1][k] != 0.0) | (a[2][k] != 0.0) |
                      (a[3][k] != 0.0) | (a[4][k] != 0.0) | (a[5][k] != 0.0);
      kt[n] = k;
      n += nz;
    }
    nk[t] = n;
  }
  for (std::ptrdiff_t jc = 0; jc < N; jc += NC) {
    const std::ptrdiff_t nc = N - jc < NC ? N - jc : NC;
    pack_b_panels(B, jc, nc, bp);
    for (std::ptrdiff_t t = 0; t < nt; ++t) {
      const int mr = tile_rows(A, C, t, a, c);
      if (nk[t] < 0) {
        row_block_avx2<false>(a, mr, ks, K, bp, K, c, jc, nc, acc);
        continue;
      }
      if (nk[t] == 0 && !acc) {  // all-zero rows: C = 0
        for (int r = 0; r < mr; ++r)
          for (std::ptrdiff_t j = jc; j < jc + nc; ++j) c[r][j] = 0.0;
        continue;
      }
      row_block_avx2<true>(a, mr, ks + nt + t * K, nk[t], bp, K, c, jc, nc, acc);
    }
  }
}

// Scratch for the packed B panels, one per thread (grown, never shrunk).
inline double* b_scratch(std::ptrdiff_t K, std::ptrdiff_t N) {
  thread_local std::vector<double> buf;
  const std::ptrdiff_t nc = N < panel_group_cols(K) ? N : panel_group_cols(K);
  const std::ptrdiff_t need = K * ((nc + kPW - 1) / kPW) * kPW;
  if (static_cast<std::ptrdiff_t>(buf.size()) < need) buf.resize(static_cast<size_t>(need));
  return buf.data();
}
#endif  // PQ_X86_DISPATCH

// Scratch for the nonzero-k lists, one per thread (grown, never shrunk).
inline std::ptrdiff_t* k_scratch(std::ptrdiff_t K) {
  thread_local std::vector<std::ptrdiff_t> buf;
  if (static_cast<std::ptrdiff_t>(buf.size()) < K) buf.resize(static_cast<size_t>(K));
  return buf.data();
}

// d[i] += A[i, :] . v (Abs: |A[i, :]| . v) for every row i: four partial sums per row, so
// that the loop vectorises without -ffast-math.
template <bool Abs, class T>
PQ_ALWAYS_INLINE void rowdots_body(MatView<const T> A, const T* v, T* d) {
  const std::ptrdiff_t n = A.cols, n4 = n - n % 4;
  auto at = [](T x) { return Abs ? std::fabs(x) : x; };
  for (std::ptrdiff_t i = 0; i < A.rows; ++i) {
    const T* a = A.row(i);
    T p[4] = {T(0), T(0), T(0), T(0)};
    for (std::ptrdiff_t j = 0; j < n4; j += 4)
      for (int l = 0; l < 4; ++l) p[l] += at(a[j + l]) * v[j + l];
    T acc = (p[0] + p[1]) + (p[2] + p[3]);
    for (std::ptrdiff_t j = n4; j < n; ++j) acc += at(a[j]) * v[j];
    d[i] += acc;
  }
}

// rowdots_body<false>(A, v, d) and rowdots_body<true>(A, w, e) in one read of A (the same
// sums, so the same bits as the two calls).
template <class T>
PQ_ALWAYS_INLINE void rowdots_pair_body(MatView<const T> A, const T* v, T* d, const T* w, T* e) {
  using V = Vec<T, 4 * static_cast<int>(sizeof(T))>;  // lane l holds partial sum l
  using v_t = typename V::type;
  using Bits = std::conditional_t<sizeof(T) == 8, std::int64_t, std::int32_t>;
  typedef Bits b_t __attribute__((vector_size(4 * sizeof(T))));
  const b_t no_sign = ~(b_t{} + (Bits(1) << (8 * sizeof(T) - 1)));  // |x|: the sign bit cleared
  const std::ptrdiff_t n = A.cols, n4 = n - n % 4;
  for (std::ptrdiff_t i = 0; i < A.rows; ++i) {
    const T* a = A.row(i);
    v_t p{}, q{};
    for (std::ptrdiff_t j = 0; j < n4; j += 4) {
      const v_t x = V::load(a + j);
      p += x * V::load(v + j);
      q += (v_t)((b_t)x & no_sign) * V::load(w + j);
    }
    T acc = (p[0] + p[1]) + (p[2] + p[3]), abs_acc = (q[0] + q[1]) + (q[2] + q[3]);
    for (std::ptrdiff_t j = n4; j < n; ++j) {
      acc += a[j] * v[j];
      abs_acc += std::fabs(a[j]) * w[j];
    }
    d[i] += acc;
    e[i] += abs_acc;
  }
}

#if PQ_X86_DISPATCH && !defined(__AVX2__)
template <bool Abs, class T>
PQ_TARGET_AVX2 void rowdots_avx2(MatView<const T> A, const T* v, T* d) { rowdots_body<Abs>(A, v, d); }
template <class T>
PQ_TARGET_AVX2 void rowdots_pair_avx2(MatView<const T> A, const T* v, T* d, const T* w, T* e) {
  rowdots_pair_body(A, v, d, w, e);
}
#endif

}  // namespace detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace detail {

// The hand kernels on the whole of A (any row split gives the same C: see the header).
template <class T>
void gemm_hand(MatView<const T> A, MatView<const T> B, MatView<T> C, bool accumulate) {
#if PQ_X86_DISPATCH
  if constexpr (std::is_same<T, double>::value) {
    if (cpu_has_avx2_fma())
      return gemm_avx2_f64(A, B, C, accumulate, k_scratch(tiles_scratch_size(A.rows, A.cols)),
                           b_scratch(A.cols, B.cols));
  }
#endif
  std::ptrdiff_t* ks = k_scratch(A.cols);
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return gemm_avx2<T>(A, B, C, accumulate, ks);
#endif
  gemm_base<T>(A, B, C, accumulate, ks);
}

// Row blocks of a product, for the BLAS calls and the threads of a pass: blocks of
// block_rows(N) rows for a product with N columns (64 up to N = 64, 128 up to 128, 256
// above; powers of two, so a smaller product's blocks tile a larger one's). A function of
// the product's width only, never of the row or thread count: a BLAS may round a row
// differently when it sees other rows with it (kernel choice by size), so the blocks are
// fixed and the bounds with k threads are those with one, bit for bit. Wider products
// take taller blocks because the BLAS packs all of B (K x N) once per block: at h = 256
// the packing was 12 % of an LSTM pass with 64-row blocks (bench/results/2026-12-07-blocks.md).
// With the products in float32 (products_f32.hpp) taller blocks and chunks did not pay
// (1.01-1.08x the time), and planes="optimized" keeps every row's records of a chunk (4x
// the memory at 256 rows), so such passes cap them at kMinBlockRows (BlockRowsCap).
constexpr std::ptrdiff_t kMaxRowBlocks = 8, kMinBlockRows = 64, kMaxBlockRows = 256;
inline std::ptrdiff_t& block_cap_slot() {
  thread_local std::ptrdiff_t cap = kMaxBlockRows;
  return cap;
}
inline std::ptrdiff_t block_rows(std::ptrdiff_t N) {
  const std::ptrdiff_t cap = block_cap_slot();
  std::ptrdiff_t b = kMinBlockRows;
  while (b < N && b < cap) b *= 2;
  return b;
}

}  // namespace detail

// The block cap of the products the calling thread runs while this lives (set around one
// bound pass, restored after): kMinBlockRows .. kMaxBlockRows, a power of two.
class BlockRowsCap {
 public:
  explicit BlockRowsCap(std::ptrdiff_t cap) : prev_(detail::block_cap_slot()) { detail::block_cap_slot() = cap; }
  ~BlockRowsCap() { detail::block_cap_slot() = prev_; }
  BlockRowsCap(const BlockRowsCap&) = delete;
  BlockRowsCap& operator=(const BlockRowsCap&) = delete;

 private:
  std::ptrdiff_t prev_;
};

namespace detail {

// Rows a bound pass carries through its steps together (general_driver.hpp): on one
// thread one block of its widest product, so that their coefficients stay in the core's
// caches between the products and the sign-rule passes; on several, 512 rows (kMaxRowBlocks
// blocks of 64, fewer taller ones), so that every thread has blocks and the pool's hand-offs
// are spread over more rows (eight taller blocks were ~7 % slower on two threads: the
// coefficients left the caches). Both are multiples of every block (powers of two), so every
// product sees the same blocks (block_rows), hence the same bounds.
inline std::ptrdiff_t chunk_rows(std::ptrdiff_t widest, bool threads) {
  return threads ? std::max(kMaxRowBlocks * kMinBlockRows, block_rows(widest)) : block_rows(widest);
}

// for_blocks (row_pool.hpp) over the rows of an objective chunk: the threads' rows
// start at multiples of the products' smallest block, so that each thread passes through
// the relaxations the rows it multiplied (for products of up to 64 columns exactly).
template <class F>
void for_row_blocks(std::ptrdiff_t rows, double cost, F&& f) {
  for_blocks(rows, cost, static_cast<F&&>(f), kMinBlockRows);
}

// Products worth a thread of their own: below this many flops (~1 us) handing blocks to
// the pool's (spinning, row_pool.hpp) workers costs more than the product (row_pool.hpp
// kBlockParallelWork says why it is low).
constexpr double kParallelFlops = 3e4;

// Blocks (rows x K x N) where the BLAS beats the hand kernel (bench/gemm_bench.cpp,
// 2026-12-06, OpenBLAS 0.3.34 on a Sapphire Rapids core): every shape with N > 32
// (0.9-1.8x, near parity at 128-512 x 256-512 x 64-128), and narrow ones (N <= 32: the
// products with W_ih when the input has few features) while rows*K*N <= 2^20, where
// OpenBLAS runs its unpacked small-matrix kernel (1.1-2x; 7-10x for single rows, whose
// B the hand kernel packs for nothing). Larger narrow blocks (256 x 1024 x 8) stay with
// the hand kernel, which is there 1.2-1.8x faster.
constexpr double kBlasNarrowMaxMnk = 1 << 20;
constexpr std::ptrdiff_t kBlasNarrowCols = 32;
inline bool blas_shape(std::ptrdiff_t rows, std::ptrdiff_t K, std::ptrdiff_t N) {
  return K > 0 && (N > kBlasNarrowCols || static_cast<double>(rows) * K * N <= kBlasNarrowMaxMnk);
}

// Whether the hand kernel would take its dense path on every 6-row tile of A (the first
// row of each tile more than half nonzero). Sparse rows (the identity objectives of the
// first back-substitution steps) stay with the hand kernel, which skips their zeros.
// (Counted on the bit patterns with the sign cleared: an integer compare that vectorises,
// where a floating-point != keeps NaN's unordered test scalar; NaN counts as nonzero either
// way.)
template <class T>
PQ_ALWAYS_INLINE bool tiles_dense_body(MatView<const T> A) {
  using Bits = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
  for (std::ptrdiff_t i = 0; i < A.rows; i += 6) {
    const T* a = A.row(i);
    std::ptrdiff_t nz = 0;
    for (std::ptrdiff_t k = 0; k < A.cols; ++k) {
      Bits b;
      std::memcpy(&b, a + k, sizeof b);
      nz += (b << 1) != 0;
    }
    if (2 * nz <= A.cols) return false;
  }
  return true;
}

#if PQ_X86_DISPATCH && !defined(__AVX2__)
template <class T>
PQ_TARGET_AVX2 bool tiles_dense_avx2(MatView<const T> A) { return tiles_dense_body(A); }
#endif

template <class T>
bool tiles_dense(MatView<const T> A) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return tiles_dense_avx2(A);
#endif
  return tiles_dense_body(A);
}

}  // namespace detail

#if PQ_HAVE_BLAS
constexpr std::ptrdiff_t kSmallRows = 64, kSmallMinRows = 8, kSmallMaxCols = 192;

// C (+)= A B as blas_gemm, a float64 product of more than kc columns of A cut into calls the
// small-matrix kernel takes (blas.hpp; 64 x kc x N ≤ 64 x 64 x 192 < 100³): row blocks of 64
// and column slices of A (rows of B) of kc = max(64, 16 floor(256 / N)), 32 where N is a
// multiple of 128 (B's rows 1 KB apart: wider slices of them collide in the cache, 52-54
// GFLOP/s against 62-63), the slices accumulated in order (beta 1 after the first). Also
// below 100³ where the whole block would fit the kernel (GRU h = 64: 0.90x the pass). The
// cut is a function of the shape only (a pass's bits do not depend on its threads), and a
// sum in slices is a sum of K terms in another order: the same γ_K charge (rounding.hpp).
inline void blas_gemm_sliced(MatView<const double> A, MatView<const double> B, MatView<double> C, bool acc) {
  const std::ptrdiff_t R = A.rows, K = A.cols, N = B.cols;
  const std::ptrdiff_t kc = N % 128 == 0 ? 32 : std::max<std::ptrdiff_t>(64, 16 * (256 / N));
  if (N > kSmallMaxCols || K <= kc || R < kSmallMinRows || !blas_small_kernel()) return blas_gemm(A, B, C, acc);
  for (std::ptrdiff_t r0 = 0; r0 < R; r0 += kSmallRows) {
    const std::ptrdiff_t nr = std::min(kSmallRows, R - r0);
    for (std::ptrdiff_t k0 = 0; k0 < K; k0 += kc) {
      const std::ptrdiff_t kb = std::min(kc, K - k0);
      blas_gemm(block(A, r0, nr, k0, kb), block(B, k0, kb, 0, N), block(C, r0, nr, 0, N), acc || k0 > 0);
    }
  }
}
inline void blas_gemm_sliced(MatView<const float> A, MatView<const float> B, MatView<float> C, bool acc) {
  blas_gemm(A, B, C, acc);  // float32 products come in 64 x 64 slices already (products_f32.hpp)
}
#endif

// C = A B (accumulate=false) or C += A B. A: R x K, B: K x N, C: R x N; C must not
// overlap A or B. Dense row blocks of BLAS-friendly shapes go to the BLAS (blas.hpp),
// the rest to the hand kernels; the blocks run on the pass's threads (row_pool.hpp).
template <class T>
void gemm(MatView<const T> A, MatView<const T> B, MatView<T> C, bool accumulate) {
  if (A.rows == 0 || B.cols == 0) return;
  const std::ptrdiff_t R = A.rows, K = A.cols, N = B.cols;
  const std::ptrdiff_t rb = detail::block_rows(N), nb = (R + rb - 1) / rb;
  // decided on a full block's shape (a smaller last block passes the same test)
  const bool blas = blas_enabled() && detail::blas_shape(std::min(rb, R), K, N);
  RowPool* pool = product_pool();
  const bool par = pool != nullptr && !pool->active() && nb > 1 && 2.0 * static_cast<double>(R) * K * N >= detail::kParallelFlops;
  if (!blas && !par) return detail::gemm_hand(A, B, C, accumulate);
  auto one = [&](std::ptrdiff_t b) {
    const std::ptrdiff_t r0 = b * rb, nr = R - r0 < rb ? R - r0 : rb;
    const MatView<const T> Ab = block(A, r0, nr, 0, K);
    const MatView<T> Cb = block(C, r0, nr, 0, N);
#if PQ_HAVE_BLAS
    if (blas && detail::tiles_dense(Ab))
      return blas_gemm_sliced(Ab, B, Cb, accumulate);
#endif
    detail::gemm_hand(Ab, B, Cb, accumulate);
  };
  if (par) {
    pool->run(nb, one);
  } else {
    for (std::ptrdiff_t b = 0; b < nb; ++b) one(b);
  }
}

namespace detail {
template <bool Abs, class T>
void rowdots(MatView<const T> A, const T* v, T* d) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return rowdots_avx2<Abs, T>(A, v, d);
#endif
  rowdots_body<Abs>(A, v, d);
}
template <class T>
void rowdots_pair(MatView<const T> A, const T* v, T* d, const T* w, T* e) {
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (cpu_has_avx2_fma()) return rowdots_pair_avx2<T>(A, v, d, w, e);
#endif
  rowdots_pair_body(A, v, d, w, e);
}
}  // namespace detail

// d[i] += A[i, :] . v  for every row i (same summation order on every ISA; rows in blocks
// on the pass's threads, row_pool.hpp).
template <class T>
void add_rowdots(MatView<const T> A, const T* v, T* d) {
  detail::for_row_blocks(A.rows, 0.5 * static_cast<double>(A.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::rowdots<false>(rows_of(A, r0, r1), v, d + r0);
  });
}

// d[i] += |A[i, :]| . v for every row i (the same loop).
template <class T>
void add_abs_rowdots(MatView<const T> A, const T* v, T* d) {
  detail::for_row_blocks(A.rows, 0.5 * static_cast<double>(A.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::rowdots<true>(rows_of(A, r0, r1), v, d + r0);
  });
}

// d[i] += A[i, :] . v and, when e is given, e[i] += |A[i, :]| . w (add_rowdots and
// add_abs_rowdots with one read of A, the same bits): the constant of an affine step and
// its rounding charge (rounding.hpp charge_rows).
template <class T>
void add_rowdots_and_abs(MatView<const T> A, const T* v, T* d, const T* w, T* e) {
  if (!e) return add_rowdots(A, v, d);
  detail::for_row_blocks(A.rows, 0.8 * static_cast<double>(A.cols), [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
    detail::rowdots_pair(rows_of(A, r0, r1), v, d + r0, w, e + r0);
  });
}

}  // namespace pq
