// Relaxations stored per step and the sign rule that passes an objective through
// them (ALGORITHM.md §4, RECURRENCES.md §4): for a LOWER bound, coefficient
// λ = Λ[r, i] takes the lower relaxation of neuron i when λ >= 0 and the upper one
// when λ < 0, sends λ·slope to each input of the relaxation and λ·offset to the
// constant. (Upper bounds use the stacked objective −Λ, never a second rule.)
#pragma once
#include <cstddef>
#include <vector>
#include "common.hpp"
#include "lines.hpp"
#include "planes.hpp"

namespace pq {

// Lines αL z + βL <= φ(z) <= αU z + βU of one layer of s neurons (§2).
template <class T>
struct LineSet {
  std::vector<T> al, bl, au, bu;
  void compute(Activation fn, const T* l, const T* u, std::ptrdiff_t s) {
    al.resize(s); bl.resize(s); au.resize(s); bu.resize(s);
    bound_activation<T>(fn, l, u, s, al.data(), bl.data(), au.data(), bu.data());
  }
};

// Planes aL x + bL y + cL <= F(x, y) <= aU x + bU y + cU of s boxes (§3).
template <class T>
struct PlaneSet {
  std::vector<T> aL, bL, cL, aU, bU, cU;
  void compute(Surface f, PlaneMethod m, const T* xl, const T* xu, const T* yl, const T* yu,
               std::ptrdiff_t s) {
    aL.resize(s); bL.resize(s); cL.resize(s); aU.resize(s); bU.resize(s); cU.resize(s);
    bound_product<T>(f, m, xl, xu, yl, yu, s, aL.data(), bL.data(), cL.data(), aU.data(),
                     bU.data(), cU.data());
  }
};

// Σ_{i<n} f(i) with four partial sums, so that the loop (f also writes the passed
// coefficients) vectorises without -ffast-math.
template <class T, class F>
inline T sum4(std::ptrdiff_t n, F&& f) {
  const std::ptrdiff_t n4 = n - n % 4;
  T p[4] = {T(0), T(0), T(0), T(0)};
  for (std::ptrdiff_t i = 0; i < n4; i += 4)
    for (int l = 0; l < 4; ++l) p[l] += f(i + l);
  T acc = (p[0] + p[1]) + (p[2] + p[3]);
  for (std::ptrdiff_t i = n4; i < n; ++i) acc += f(i);
  return acc;
}

// Λ (R x s) on φ(z) -> out (R x s) on z, d[r] += Σ_i λ·β.
template <class T>
void pass_lines(MatView<const T> L, const LineSet<T>& ln, MatView<T> out, T* d) {
  const std::ptrdiff_t s = L.cols;
  const T* al = ln.al.data(); const T* bl = ln.bl.data();
  const T* au = ln.au.data(); const T* bu = ln.bu.data();
  for (std::ptrdiff_t r = 0; r < L.rows; ++r) {
    const T* lam = L.row(r);
    T* __restrict o = out.row(r);
    d[r] += sum4<T>(s, [&](std::ptrdiff_t i) {
      const T v = lam[i];
      const bool lo = v >= T(0);
      o[i] = v * (lo ? al[i] : au[i]);
      return v * (lo ? bl[i] : bu[i]);
    });
  }
}

// Λ (R x s) on F(x, y) -> x-part into ox, y-part (times y_scale) into oy, each
// assigned or accumulated (AccX / AccY); d[r] += Σ_i λ·c.
// y_scale = −1 serves a plane built over w = −y (GRU's 1 − σ(y^z) = σ(−y^z)).
template <bool AccX, bool AccY, class T>
void pass_plane(MatView<const T> L, const PlaneSet<T>& P, MatView<T> ox, MatView<T> oy, T y_scale,
                T* d) {
  const std::ptrdiff_t s = L.cols;
  const T* aL = P.aL.data(); const T* bL = P.bL.data(); const T* cL = P.cL.data();
  const T* aU = P.aU.data(); const T* bU = P.bU.data(); const T* cU = P.cU.data();
  for (std::ptrdiff_t r = 0; r < L.rows; ++r) {
    const T* lam = L.row(r);
    T* __restrict x = ox.row(r);
    T* __restrict y = oy.row(r);
    d[r] += sum4<T>(s, [&](std::ptrdiff_t i) {
      const T v = lam[i];
      const bool lo = v >= T(0);
      const T ax = v * (lo ? aL[i] : aU[i]);
      const T by = y_scale * (v * (lo ? bL[i] : bU[i]));
      if (AccX) x[i] += ax; else x[i] = ax;
      if (AccY) y[i] += by; else y[i] = by;
      return v * (lo ? cL[i] : cU[i]);
    });
  }
}

// Λ (R x s) on the sum F(x1, y1) + F(x2, y2) of two planes sharing the coefficient
// (LSTM's c_t = P^f + P^ig): one sign decision feeds both planes.
template <class T>
void pass_plane_pair(MatView<const T> L, const PlaneSet<T>& P1, const PlaneSet<T>& P2,
                     MatView<T> ox1, MatView<T> oy1, MatView<T> ox2, MatView<T> oy2, T* d) {
  const std::ptrdiff_t s = L.cols;
  const T* aL1 = P1.aL.data(); const T* bL1 = P1.bL.data(); const T* cL1 = P1.cL.data();
  const T* aU1 = P1.aU.data(); const T* bU1 = P1.bU.data(); const T* cU1 = P1.cU.data();
  const T* aL2 = P2.aL.data(); const T* bL2 = P2.bL.data(); const T* cL2 = P2.cL.data();
  const T* aU2 = P2.aU.data(); const T* bU2 = P2.bU.data(); const T* cU2 = P2.cU.data();
  for (std::ptrdiff_t r = 0; r < L.rows; ++r) {
    const T* lam = L.row(r);
    T* __restrict x1 = ox1.row(r); T* __restrict y1 = oy1.row(r);
    T* __restrict x2 = ox2.row(r); T* __restrict y2 = oy2.row(r);
    d[r] += sum4<T>(s, [&](std::ptrdiff_t i) {  // selects, not branches: signs are random
      const T v = lam[i];
      const bool lo = v >= T(0);
      x1[i] = v * (lo ? aL1[i] : aU1[i]); y1[i] = v * (lo ? bL1[i] : bU1[i]);
      x2[i] = v * (lo ? aL2[i] : aU2[i]); y2[i] = v * (lo ? bL2[i] : bU2[i]);
      return v * (lo ? cL1[i] : cU1[i]) + v * (lo ? cL2[i] : cU2[i]);
    });
  }
}

}  // namespace pq
