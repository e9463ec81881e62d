// Dense products for back-substitution (ALGORITHM.md §4): Λ' = G W (objective rows
// times a weight block, shapes rows x 4s times 4s x s) and row dot products d += G v.
// Row-major views with explicit strides.
//
// gemm is register-blocked: a 4-row x NR-column tile of C stays in registers while
// k runs over the (nonzero) columns of those 4 rows of A, streaming one row of B per
// k. For sparse rows (first row of the block at most half nonzero) the list of k
// where the 4 rows are not all zero is built once per row block, so
// objectives that are identities or diagonal blocks (the first step of every
// back-substitution) cost only their nonzeros. The same body is compiled twice: for
// the baseline ISA and, on x86-64 with GCC/Clang, for AVX2+FMA, chosen at run time
// (wheels stay portable; -DPOPQORN_NATIVE=ON compiles everything for the build host).
#pragma once
#include <cstddef>
#include <vector>
#include "common.hpp"

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

// The first r rows of an owning matrix, as a view (buffers are sized for the
// largest objective and reused with fewer rows).
template <class T>
MatView<T> top_rows(Mat<T>& m, std::ptrdiff_t r) { return {m.v.data(), r, m.cols, m.cols}; }

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
inline bool cpu_has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

// Scratch for the nonzero-k lists, one per thread (grown, never shrunk).
inline std::ptrdiff_t* k_scratch(std::ptrdiff_t K) {
  thread_local std::vector<std::ptrdiff_t> buf;
  if (static_cast<std::ptrdiff_t>(buf.size()) < K) buf.resize(static_cast<size_t>(K));
  return buf.data();
}

}  // namespace detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// C = A B (accumulate=false) or C += A B. A: R x K, B: K x N, C: R x N; C must not
// overlap A or B.
template <class T>
void gemm(MatView<const T> A, MatView<const T> B, MatView<T> C, bool accumulate) {
  if (A.rows == 0 || B.cols == 0) return;
  std::ptrdiff_t* ks = detail::k_scratch(A.cols);
#if PQ_X86_DISPATCH && !defined(__AVX2__)
  if (detail::cpu_has_avx2_fma()) return detail::gemm_avx2<T>(A, B, C, accumulate, ks);
#endif
  detail::gemm_base<T>(A, B, C, accumulate, ks);
}

// d[i] += A[i, :] . v  for every row i.
// Four partial sums per row, so that the loop vectorises without -ffast-math.
template <class T>
void add_rowdots(MatView<const T> A, const T* v, T* d) {
  const std::ptrdiff_t n = A.cols, n4 = n - n % 4;
  for (std::ptrdiff_t i = 0; i < A.rows; ++i) {
    const T* a = A.row(i);
    T p[4] = {T(0), T(0), T(0), T(0)};
    for (std::ptrdiff_t j = 0; j < n4; j += 4)
      for (int l = 0; l < 4; ++l) p[l] += a[j + l] * v[j + l];
    T acc = (p[0] + p[1]) + (p[2] + p[3]);
    for (std::ptrdiff_t j = n4; j < n; ++j) acc += a[j] * v[j];
    d[i] += acc;
  }
}

}  // namespace pq
