// Device side of the CUDA backend (included by pass_{rnn,lstm,gru}.cu and batch_pass.cu).
// CUDA backend of the bound passes (RECURRENCES.md §0, §4), batched over (input, eps)
// pairs. Design: one thread block per pair runs that pair's whole pass, mirroring the
// CPU one-layer passes (now the generic driver's instances, one_layer.hpp) step by step: the
// same stacked [Λ; −Λ] objectives, the same entry nodes, the same sign rule (the CPU
// core's row functions, sign_rule_rows.hpp, one thread per row), the same lines and
// planes (lines.hpp / planes.hpp, compiled for the device through PQ_HD, one thread per
// neuron / box). The products G·W are block-wide loops (one thread per output entry, k
// summed in order); the concretisations run one thread per row.
// Blocks loop over pairs (grid-stride), so the workspace is per block, not per pair.
// float64 throughout; compiled with --fmad=false so that every product and sum rounds
// as on the host (the safety margins of lines/planes assume ordinary rounding).
//
// Where the CPU throws (a relaxation receives a non-finite or inverted interval:
// float64 overflow at huge eps), the block sets status 1 for the pair and stops it;
// the Python layer maps that to BoundOverflowError ("not certified").
#pragma once
#if defined(__CUDACC__)
#include <cuda_runtime.h>
#endif
// Without nvcc this header compiles only under tests/cuda_emulation.cpp, which defines
// the CUDA keywords for one host thread (blockDim = 1) to check the kernels' logic on CPU.

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_api.hpp"
#include "dual_norm.hpp"
#include "lines.hpp"
#include "planes.hpp"
#include "sign_rule_rows.hpp"

namespace pqcuda {
namespace dev {

constexpr int kThreads = 256;

// Row-major view: rows x cols, row stride.
struct DM {
  double* p;
  long rows, cols, stride;
  __device__ double* row(long r) const { return p + r * stride; }
  __device__ DM top(long r) const { return {p, r, cols, stride}; }
  __device__ DM blk(long r0, long nr, long c0, long nc) const { return {p + r0 * stride + c0, nr, nc, stride}; }
};
__device__ inline DM mk(double* p, long rows, long cols) { return {p, rows, cols, cols}; }

// ---- block-wide primitives (every thread calls; each ends with a barrier) ----

// C (R x m) (+)= A (R x k) · B (k x m)
__device__ inline void bgemm(DM A, DM B, DM C, bool acc) {
  const long R = A.rows, m = B.cols, kk = A.cols;
  for (long idx = threadIdx.x; idx < R * m; idx += blockDim.x) {
    const long r = idx / m, j = idx % m;
    const double* a = A.row(r);
    double c = acc ? C.row(r)[j] : 0.0;
    for (long k = 0; k < kk; ++k) c += a[k] * B.row(k)[j];
    C.row(r)[j] = c;
  }
  __syncthreads();
}

// d[r] += A[r, :] · v (matmul.hpp add_rowdots order)
__device__ inline void browdots(DM A, const double* v, double* d) {
  const long n = A.cols, n4 = n - n % 4;
  for (long i = threadIdx.x; i < A.rows; i += blockDim.x) {
    const double* a = A.row(i);
    double p[4] = {0, 0, 0, 0};
    for (long j = 0; j < n4; j += 4)
      for (int l = 0; l < 4; ++l) p[l] += a[j + l] * v[j + l];
    double acc = (p[0] + p[1]) + (p[2] + p[3]);
    for (long j = n4; j < n; ++j) acc += a[j] * v[j];
    d[i] += acc;
  }
  __syncthreads();
}

// d[r] -= eps ||A[r, :]||_q (the frame ball's rule of threat_model.hpp's Concretiser)
__device__ inline void bball(DM A, double eps, pq::DualNorm q, double* d) {
  for (long r = threadIdx.x; r < A.rows; r += blockDim.x) d[r] -= eps * pq::dual_norm(A.row(r), A.cols, q);
  __syncthreads();
}

struct Lines { double *al, *bl, *au, *bu; };
struct Planes { double *aL, *bL, *cL, *aU, *bU, *cU; };
__device__ inline pq::LineRefs<double> refs(Lines l) { return {l.al, l.bl, l.au, l.bu}; }
__device__ inline pq::PlaneRefs<double> refs(Planes p) { return {p.aL, p.bL, p.cL, p.aU, p.bU, p.cU}; }
using Lanes = pq::detail::LaneArr4<double>;  // the row functions' four partial sums, as scalars

// The sign-rule passes: one thread per row, each row by the CPU core's own row function
// (sign_rule_rows.hpp), so the same sums in the same order.
__device__ inline void bpass_lines(DM L, Lines ln, DM out, double* d) {
  for (long r = threadIdx.x; r < L.rows; r += blockDim.x)
    d[r] += pq::lines_row<double, Lanes>(L.row(r), L.cols, refs(ln), out.row(r));
  __syncthreads();
}

template <bool AccX, bool AccY>
__device__ inline void bpass_plane(DM L, Planes P, DM ox, DM oy, double y_scale, double* d) {
  for (long r = threadIdx.x; r < L.rows; r += blockDim.x)
    d[r] += pq::plane_row<AccX, AccY, double, Lanes>(L.row(r), L.cols, refs(P), ox.row(r), oy.row(r), y_scale);
  __syncthreads();
}

__device__ inline void bpass_plane_pair(DM L, Planes P1, Planes P2, DM ox1, DM oy1, DM ox2, DM oy2, double* d) {
  for (long r = threadIdx.x; r < L.rows; r += blockDim.x)
    d[r] += pq::plane_pair_row<double, Lanes>(L.row(r), L.cols, refs(P1), refs(P2), ox1.row(r), oy1.row(r),
                                             ox2.row(r), oy2.row(r));
  __syncthreads();
}

__device__ inline void bzero(double* p, long n) {
  for (long i = threadIdx.x; i < n; i += blockDim.x) p[i] = 0.0;
  __syncthreads();
}

__device__ inline void bcopy(double* dst, const double* src, long n) {
  for (long i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
  __syncthreads();
}

// [I; −I] at columns [c0, c0+m) of the first 2m rows of G, zeros elsewhere.
__device__ inline void bstacked_identity(DM G, long m, long c0) {
  for (long idx = threadIdx.x; idx < 2 * m * G.cols; idx += blockDim.x) {
    const long r = idx / G.cols, j = idx % G.cols;
    const long i = r < m ? r : r - m;
    G.row(r)[j] = (j == c0 + i) ? (r < m ? 1.0 : -1.0) : 0.0;
  }
  __syncthreads();
}

__device__ inline void bstacked_spec(const double* W, const double* b, long K, long width, DM L, double* d) {
  for (long idx = threadIdx.x; idx < K * width; idx += blockDim.x) {
    const long r = idx / width, j = idx % width;
    L.row(r)[j] = W[r * width + j];
    L.row(K + r)[j] = -W[r * width + j];
  }
  for (long r = threadIdx.x; r < K; r += blockDim.x) {
    d[r] = b[r];
    d[K + r] = -b[r];
  }
  __syncthreads();
}

__device__ inline void bfinish(const double* d, long m, double* lower, double* upper) {
  for (long i = threadIdx.x; i < m; i += blockDim.x) {
    const double lo = d[i], up = -d[m + i];
    lower[i] = lo <= up ? lo : up;
    upper[i] = lo <= up ? up : lo;
  }
  __syncthreads();
}

// Lines of s neurons; *err = 1 where the CPU would throw. Returns the error (uniform).
__device__ inline bool blines(pq::Activation fn, const double* l, const double* u, long s, Lines ln, int* err) {
  for (long i = threadIdx.x; i < s; i += blockDim.x) {
    const double li = l[i], ui = u[i];
    if (!(li <= ui) || !isfinite(li) || !isfinite(ui)) { *err = 1; continue; }
    if (fn == pq::Activation::Relu) pq::detail::relu_lines(li, ui, ln.al[i], ln.bl[i], ln.au[i], ln.bu[i]);
    else pq::detail::sshape_lines(fn, li, ui, ln.al[i], ln.bl[i], ln.au[i], ln.bu[i]);
  }
  __syncthreads();
  return *err != 0;
}

__device__ inline bool bplanes(pq::Surface sf, pq::PlaneMethod m, const double* xl, const double* xu,
                        const double* yl, const double* yu, long s, Planes P, int* err) {
  for (long i = threadIdx.x; i < s; i += blockDim.x) {
    const pq::detail::Box<double> bx{xl[i], xu[i], yl[i], yu[i]};
    if (!(bx.xl <= bx.xu) || !(bx.yl <= bx.yu) || !isfinite(bx.xl) || !isfinite(bx.xu) ||
        !isfinite(bx.yl) || !isfinite(bx.yu)) { *err = 1; continue; }
    switch (m) {
      case pq::PlaneMethod::Exact:
        pq::detail::exact_planes(sf, bx, P.aL[i], P.bL[i], P.cL[i], P.aU[i], P.bU[i], P.cU[i]); break;
      case pq::PlaneMethod::OneD:
        pq::detail::oned_planes(sf, bx, P.aL[i], P.bL[i], P.cL[i], P.aU[i], P.bU[i], P.cU[i]); break;
      default:
        pq::detail::constant_planes(sf, bx, P.aL[i], P.bL[i], P.cL[i], P.aU[i], P.bU[i], P.cU[i]);
    }
  }
  __syncthreads();
  return *err != 0;
}

// ---- per-pair problem and workspace ----

struct DevArgs {
  int activation, planes, q;
  long s, n, T, K, N;
  const double *w_ih, *w_hh, *bias, *bias2, *h0, *c0, *x, *eps, *spec_w, *spec_b;
  const unsigned char* mask;
  bool want_states;
  double* lower;   // (N, K)
  double* upper;
  int* status;     // (N,)
  double* st[6];   // states: (N, T, rows) lower/upper pairs, up to 3 states
  double* ws;      // gridDim.x blocks of ws_per_block doubles
  long ws_per_block;
};

// A bump allocator over one block's workspace (same layout computed on the host).
struct Bump {
  double* p;
  long used = 0;
  __host__ __device__ double* take(long n) { double* r = p ? p + used : nullptr; used += n; return r; }
};

__device__ inline DM wmat(const double* p, long rows, long cols) { return {const_cast<double*>(p), rows, cols, cols}; }

// ---------------- RNN (RECURRENCES.md §4 RNN) ----------------
struct RnnWs {
  double *xb, *zl, *zu, *al, *bl, *au, *bu, *Lh, *G, *A, *d;
  __host__ __device__ RnnWs(Bump& b, long T, long s, long n, long Rmax) {
    xb = b.take(T * s); zl = b.take(T * s); zu = b.take(T * s);
    al = b.take(T * s); bl = b.take(T * s); au = b.take(T * s); bu = b.take(T * s);
    Lh = b.take(Rmax * s); G = b.take(Rmax * s); A = b.take(Rmax * n); d = b.take(Rmax);
  }
};
__host__ __device__ inline long rnn_rmax(long s, long K) { return 2 * s > 2 * K ? 2 * s : 2 * K; }

__device__ inline void rnn_pair(const DevArgs& a, long pi, double* wsp, int* err) {
  const long s = a.s, n = a.n, Tn = a.T, K = a.K, Rmax = rnn_rmax(s, K);
  Bump b{wsp};
  RnnWs w(b, Tn, s, n, Rmax);
  const DM Wih = wmat(a.w_ih, s, n), Whh = wmat(a.w_hh, s, s);
  const double* x = a.x + pi * Tn * n;
  const double eps = a.eps[pi];
  const pq::DualNorm q = static_cast<pq::DualNorm>(a.q);
  const pq::Activation act = static_cast<pq::Activation>(a.activation);
  DM xb = mk(w.xb, Tn, s), Lh = mk(w.Lh, Rmax, s), G = mk(w.G, Rmax, s), A = mk(w.A, Rmax, n);
  double* d = w.d;
  for (long k = 0; k < Tn; ++k) {
    bcopy(xb.row(k), a.bias, s);
    browdots(Wih, x + k * n, xb.row(k));
  }
  auto moves = [&](long k) { return a.mask[k] && eps != 0.0; };
  auto lines = [&](long k) { return Lines{w.al + k * s, w.bl + k * s, w.au + k * s, w.bu + k * s}; };
  auto through_affine = [&](long k, long R) {
    DM Gv = G.top(R);
    browdots(Gv, xb.row(k), d);
    if (moves(k)) {
      bgemm(Gv, Wih, A.top(R), false);
      bball(A.top(R), eps, q, d);
    }
    bgemm(Gv, Whh, Lh.top(R), false);
  };
  auto backward = [&](long k_top, long R) {
    for (long k = k_top; k >= 0; --k) {
      bpass_lines(Lh.top(R), lines(k), G.top(R), d);
      through_affine(k, R);
    }
    browdots(Lh.top(R), a.h0, d);
  };
  for (long t = 0; t < Tn; ++t) {
    bzero(d, 2 * s);
    bstacked_identity(G.top(2 * s), s, 0);
    through_affine(t, 2 * s);
    backward(t - 1, 2 * s);
    bfinish(d, s, w.zl + t * s, w.zu + t * s);
    if (blines(act, w.zl + t * s, w.zu + t * s, s, lines(t), err)) return;
  }
  bstacked_spec(a.spec_w + pi * K * s, a.spec_b + pi * K, K, s, Lh.top(2 * K), d);
  backward(Tn - 1, 2 * K);
  bfinish(d, K, a.lower + pi * K, a.upper + pi * K);
  if (a.want_states) {
    const long off = pi * Tn * s;
    for (long i = threadIdx.x; i < Tn * s; i += blockDim.x) {
      a.st[0][off + i] = w.zl[i];
      a.st[1][off + i] = w.zu[i];
      a.st[2][off + i] = pq::activation_value<double>(act, w.zl[i]);
      a.st[3][off + i] = pq::activation_value<double>(act, w.zu[i]);
    }
    __syncthreads();
  }
}

// ---------------- LSTM (RECURRENCES.md §4 LSTM) ----------------
__host__ __device__ inline Planes take_planes(Bump& b, long n) {
  Planes P;
  P.aL = b.take(n); P.bL = b.take(n); P.cL = b.take(n); P.aU = b.take(n); P.bU = b.take(n); P.cU = b.take(n);
  return P;
}
__host__ __device__ inline Planes plane_at(Planes P, long off) {
  return {P.aL + off, P.bL + off, P.cL + off, P.aU + off, P.bU + off, P.cU + off};
}

struct LstmWs {
  double *xb, *yl, *yu, *cl, *cu, *Lh, *Lc, *Lc2, *G, *A, *d;
  Planes Pf, Pig, Po;  // (T * s) each
  __host__ __device__ LstmWs(Bump& b, long T, long s, long n, long Rmax) {
    xb = b.take(T * 4 * s); yl = b.take(T * 4 * s); yu = b.take(T * 4 * s);
    cl = b.take(T * s); cu = b.take(T * s);
    Pf = take_planes(b, T * s); Pig = take_planes(b, T * s); Po = take_planes(b, T * s);
    Lh = b.take(Rmax * s); Lc = b.take(Rmax * s); Lc2 = b.take(Rmax * s);
    G = b.take(Rmax * 4 * s); A = b.take(Rmax * n); d = b.take(Rmax);
  }
};
__host__ __device__ inline long lstm_rmax(long s, long K) { return 8 * s > 2 * K ? 8 * s : 2 * K; }

__device__ inline void lstm_pair(const DevArgs& a, long pi, double* wsp, int* err) {
  const long s = a.s, n = a.n, s4 = 4 * s, Tn = a.T, K = a.K, Rmax = lstm_rmax(s, K);
  Bump b{wsp};
  LstmWs w(b, Tn, s, n, Rmax);
  const DM Wih = wmat(a.w_ih, s4, n), Whh = wmat(a.w_hh, s4, s);
  const double* x = a.x + pi * Tn * n;
  const double eps = a.eps[pi];
  const pq::DualNorm q = static_cast<pq::DualNorm>(a.q);
  const pq::PlaneMethod pm = static_cast<pq::PlaneMethod>(a.planes);
  DM xb = mk(w.xb, Tn, s4), Lh = mk(w.Lh, Rmax, s), Lc = mk(w.Lc, Rmax, s), Lc2 = mk(w.Lc2, Rmax, s);
  DM G = mk(w.G, Rmax, s4), A = mk(w.A, Rmax, n);
  double* d = w.d;
  for (long k = 0; k < Tn; ++k) {
    bcopy(xb.row(k), a.bias, s4);
    browdots(Wih, x + k * n, xb.row(k));
  }
  auto moves = [&](long k) { return a.mask[k] && eps != 0.0; };
  auto through_affine = [&](long k, long R) {
    DM Gv = G.top(R);
    browdots(Gv, xb.row(k), d);
    if (moves(k)) {
      bgemm(Gv, Wih, A.top(R), false);
      bball(A.top(R), eps, q, d);
    }
    bgemm(Gv, Whh, Lh.top(R), false);
  };
  auto backward = [&](long k_top, long R, bool skip_o) {
    for (long k = k_top; k >= 0; --k) {
      DM Gv = G.top(R);
      DM g_i = Gv.blk(0, R, 0, s), g_f = Gv.blk(0, R, s, s), g_g = Gv.blk(0, R, 2 * s, s),
         g_o = Gv.blk(0, R, 3 * s, s);
      if (skip_o && k == k_top) {
        for (long idx = threadIdx.x; idx < R * s; idx += blockDim.x) g_o.row(idx / s)[idx % s] = 0.0;
        __syncthreads();
      } else {
        bpass_plane<true, false>(Lh.top(R), plane_at(w.Po, k * s), Lc.top(R), g_o, 1.0, d);
      }
      bpass_plane_pair(Lc.top(R), plane_at(w.Pf, k * s), plane_at(w.Pig, k * s), Lc2.top(R), g_f, g_g, g_i, d);
      through_affine(k, R);
      const DM tmp = Lc; Lc = Lc2; Lc2 = tmp;
    }
    browdots(Lh.top(R), a.h0, d);
    browdots(Lc.top(R), a.c0, d);
  };
  for (long t = 0; t < Tn; ++t) {
    const long Rg = 2 * s4;
    bzero(d, Rg);
    bstacked_identity(G.top(Rg), s4, 0);
    through_affine(t, Rg);
    bzero(Lc.p, Rg * s);
    backward(t - 1, Rg, false);
    double* ylt = w.yl + t * s4; double* yut = w.yu + t * s4;
    bfinish(d, s4, ylt, yut);
    const double* cpl = t == 0 ? a.c0 : w.cl + (t - 1) * s;
    const double* cpu = t == 0 ? a.c0 : w.cu + (t - 1) * s;
    if (bplanes(pq::Surface::XSigmoid, pm, cpl, cpu, ylt + s, yut + s, s, plane_at(w.Pf, t * s), err)) return;
    if (bplanes(pq::Surface::TanhSigmoid, pm, ylt + 2 * s, yut + 2 * s, ylt, yut, s, plane_at(w.Pig, t * s), err))
      return;
    const long Rc = 2 * s;
    bzero(d, Rc);
    bstacked_identity(Lc.top(Rc), s, 0);
    bzero(Lh.p, Rc * s);
    backward(t, Rc, true);
    bfinish(d, s, w.cl + t * s, w.cu + t * s);
    if (bplanes(pq::Surface::TanhSigmoid, pm, w.cl + t * s, w.cu + t * s, ylt + 3 * s, yut + 3 * s, s,
                plane_at(w.Po, t * s), err))
      return;
  }
  bstacked_spec(a.spec_w + pi * K * s, a.spec_b + pi * K, K, s, Lh.top(2 * K), d);
  bzero(Lc.p, 2 * K * s);
  backward(Tn - 1, 2 * K, false);
  bfinish(d, K, a.lower + pi * K, a.upper + pi * K);
  if (a.want_states) {
    const long o4 = pi * Tn * s4, o1 = pi * Tn * s;
    for (long i = threadIdx.x; i < Tn * s4; i += blockDim.x) {
      a.st[0][o4 + i] = w.yl[i];
      a.st[1][o4 + i] = w.yu[i];
    }
    for (long idx = threadIdx.x; idx < Tn * s; idx += blockDim.x) {
      const long k = idx / s, i = idx % s;
      a.st[2][o1 + idx] = w.cl[idx];
      a.st[3][o1 + idx] = w.cu[idx];
      const double tl = pq::activation_value<double>(pq::Activation::Tanh, w.cl[idx]);
      const double tu = pq::activation_value<double>(pq::Activation::Tanh, w.cu[idx]);
      const double sl = pq::activation_value<double>(pq::Activation::Sigmoid, w.yl[k * s4 + 3 * s + i]);
      const double su = pq::activation_value<double>(pq::Activation::Sigmoid, w.yu[k * s4 + 3 * s + i]);
      const double c1 = tl * sl, c2 = tl * su, c3 = tu * sl, c4 = tu * su;
      a.st[4][o1 + idx] = fmin(fmin(c1, c2), fmin(c3, c4));
      a.st[5][o1 + idx] = fmax(fmax(c1, c2), fmax(c3, c4));
    }
    __syncthreads();
  }
}

// ---------------- GRU (RECURRENCES.md §4 GRU) ----------------
struct GruWs {
  double *xb4, *gl, *gu, *ul, *uu, *hl, *hu, *Lh, *Lh2, *G4, *A, *d, *wl, *wu;
  Planes Pr, Pu, Pz;
  __host__ __device__ GruWs(Bump& b, long T, long s, long n, long Rmax) {
    xb4 = b.take(T * 4 * s); gl = b.take(T * 3 * s); gu = b.take(T * 3 * s);
    ul = b.take(T * s); uu = b.take(T * s); hl = b.take(T * s); hu = b.take(T * s);
    Pr = take_planes(b, T * s); Pu = take_planes(b, T * s); Pz = take_planes(b, T * s);
    Lh = b.take(Rmax * s); Lh2 = b.take(Rmax * s); G4 = b.take(Rmax * 4 * s); A = b.take(Rmax * n);
    d = b.take(Rmax); wl = b.take(s); wu = b.take(s);
  }
};
__host__ __device__ inline long gru_rmax(long s, long K) { return 6 * s > 2 * K ? 6 * s : 2 * K; }

__device__ inline void gru_pair(const DevArgs& a, long pi, double* wsp, int* err) {
  const long s = a.s, n = a.n, s3 = 3 * s, s4 = 4 * s, Tn = a.T, K = a.K, Rmax = gru_rmax(s, K);
  Bump b{wsp};
  GruWs w(b, Tn, s, n, Rmax);
  const DM Wih = wmat(a.w_ih, s3, n), Whh = wmat(a.w_hh, s3, s);
  const double* x = a.x + pi * Tn * n;
  const double eps = a.eps[pi];
  const pq::DualNorm q = static_cast<pq::DualNorm>(a.q);
  const pq::PlaneMethod pm = static_cast<pq::PlaneMethod>(a.planes);
  const double* b_ih = a.bias; const double* b_hh = a.bias2;
  DM xb4 = mk(w.xb4, Tn, s4), G4 = mk(w.G4, Rmax, s4), A = mk(w.A, Rmax, n);
  DM Lh = mk(w.Lh, Rmax, s), Lh2 = mk(w.Lh2, Rmax, s);
  double* d = w.d;
  for (long k = 0; k < Tn; ++k) {
    double* r = xb4.row(k);
    for (long i = threadIdx.x; i < s; i += blockDim.x) {
      r[i] = b_ih[i] + b_hh[i];
      r[s + i] = b_ih[s + i] + b_hh[s + i];
      r[2 * s + i] = b_hh[2 * s + i];
      r[3 * s + i] = b_ih[2 * s + i];
    }
    __syncthreads();
    browdots(Wih.blk(0, 2 * s, 0, n), x + k * n, r);
    browdots(Wih.blk(2 * s, s, 0, n), x + k * n, r + 3 * s);
  }
  auto moves = [&](long k) { return a.mask[k] && eps != 0.0; };
  auto blk = [&](long R, long j) { return G4.top(R).blk(0, R, j * s, s); };
  auto through_inputs = [&](long k, long R, bool acc_h) {
    DM Gv = G4.top(R);
    browdots(Gv, xb4.row(k), d);
    if (moves(k)) {
      DM Av = A.top(R);
      bgemm(Gv.blk(0, R, 0, 2 * s), Wih.blk(0, 2 * s, 0, n), Av, false);
      bgemm(Gv.blk(0, R, 3 * s, s), Wih.blk(2 * s, s, 0, n), Av, true);
      bball(Av, eps, q, d);
    }
    bgemm(Gv.blk(0, R, 0, s3), Whh, Lh2.top(R), acc_h);
    const DM tmp = Lh; Lh = Lh2; Lh2 = tmp;
  };
  auto u_node = [&](long k, long R, bool acc_h) {
    bpass_plane<false, false>(blk(R, 3), plane_at(w.Pr, k * s), blk(R, 2), blk(R, 0), 1.0, d);
    through_inputs(k, R, acc_h);
  };
  auto backward = [&](long k_top, long R) {
    for (long k = k_top; k >= 0; --k) {
      DM L = Lh.top(R);
      bpass_plane<false, false>(L, plane_at(w.Pu, k * s), blk(R, 3), blk(R, 1), -1.0, d);
      bpass_plane<false, true>(L, plane_at(w.Pz, k * s), Lh2.top(R), blk(R, 1), 1.0, d);
      u_node(k, R, true);
    }
    browdots(Lh.top(R), a.h0, d);
  };
  for (long t = 0; t < Tn; ++t) {
    double* glt = w.gl + t * s3; double* gut = w.gu + t * s3;
    const long Rg = 2 * s3;
    bzero(d, Rg);
    bstacked_identity(G4.top(Rg), s3, 0);
    through_inputs(t, Rg, false);
    backward(t - 1, Rg);
    bfinish(d, s3, glt, gut);
    if (bplanes(pq::Surface::XSigmoid, pm, glt + 2 * s, gut + 2 * s, glt, gut, s, plane_at(w.Pr, t * s), err)) return;
    const long Ru = 2 * s;
    bzero(d, Ru);
    bstacked_identity(G4.top(Ru), s, 3 * s);
    u_node(t, Ru, false);
    backward(t - 1, Ru);
    bfinish(d, s, w.ul + t * s, w.uu + t * s);
    for (long i = threadIdx.x; i < s; i += blockDim.x) {
      w.wl[i] = -gut[s + i];
      w.wu[i] = -glt[s + i];
    }
    __syncthreads();
    if (bplanes(pq::Surface::TanhSigmoid, pm, w.ul + t * s, w.uu + t * s, w.wl, w.wu, s, plane_at(w.Pu, t * s), err))
      return;
    const double* hpl = t == 0 ? a.h0 : w.hl + (t - 1) * s;
    const double* hpu = t == 0 ? a.h0 : w.hu + (t - 1) * s;
    if (bplanes(pq::Surface::XSigmoid, pm, hpl, hpu, glt + s, gut + s, s, plane_at(w.Pz, t * s), err)) return;
    if (t + 1 < Tn || a.want_states) {
      const long Rh = 2 * s;
      bzero(d, Rh);
      bstacked_identity(Lh.top(Rh), s, 0);
      backward(t, Rh);
      bfinish(d, s, w.hl + t * s, w.hu + t * s);
    }
  }
  bstacked_spec(a.spec_w + pi * K * s, a.spec_b + pi * K, K, s, Lh.top(2 * K), d);
  backward(Tn - 1, 2 * K);
  bfinish(d, K, a.lower + pi * K, a.upper + pi * K);
  if (a.want_states) {
    const long o3 = pi * Tn * s3, o1 = pi * Tn * s;
    for (long i = threadIdx.x; i < Tn * s3; i += blockDim.x) {
      a.st[0][o3 + i] = w.gl[i];
      a.st[1][o3 + i] = w.gu[i];
    }
    for (long i = threadIdx.x; i < Tn * s; i += blockDim.x) {
      a.st[2][o1 + i] = w.ul[i];
      a.st[3][o1 + i] = w.uu[i];
      a.st[4][o1 + i] = w.hl[i];
      a.st[5][o1 + i] = w.hu[i];
    }
    __syncthreads();
  }
}

template <int ARCH>
__global__ void __launch_bounds__(kThreads) pass_kernel(DevArgs a) {
  __shared__ int err;
  double* wsp = a.ws + static_cast<long>(blockIdx.x) * a.ws_per_block;
  for (long pi = blockIdx.x; pi < a.N; pi += gridDim.x) {
    if (threadIdx.x == 0) err = 0;
    __syncthreads();
    if constexpr (ARCH == 0) rnn_pair(a, pi, wsp, &err);
    else if constexpr (ARCH == 1) lstm_pair(a, pi, wsp, &err);
    else gru_pair(a, pi, wsp, &err);
    __syncthreads();
    if (threadIdx.x == 0) a.status[pi] = err;
    __syncthreads();
  }
}

}  // namespace dev

// One kernel launch per architecture, each in its own translation unit
// (pass_rnn.cu, pass_lstm.cu, pass_gru.cu: compiled in parallel).
void launch_rnn(const dev::DevArgs& a, long grid);
void launch_lstm(const dev::DevArgs& a, long grid);
void launch_gru(const dev::DevArgs& a, long grid);

}  // namespace pqcuda
