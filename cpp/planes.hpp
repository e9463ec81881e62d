// Bounding planes for the 2-D products of LSTM/GRU cells (ALGORITHM.md §3):
//   F1(x, y) = tanh(x) * sigmoid(y),   F2(x, y) = x * sigmoid(y)
// on boxes [xl, xu] x [yl, yu].
// INTERFACE FIXED BY THE SKELETON; implementation owned by the relaxations work.
//
// For every box i and every (x, y) in it:
//   aL[i]*x + bL[i]*y + cL[i] <= F(x, y) <= aU[i]*x + bU[i]*y + cU[i]
// guaranteed in floating point (exact offsets from all candidate extremes,
// plus a documented tiny margin). Degenerate boxes (xl == xu and/or yl == yu)
// are allowed.
#pragma once
#include <cstddef>
#include "common.hpp"

namespace pq {

enum class Surface { TanhSigmoid, XSigmoid };
enum class PlaneMethod { Exact, OneD, Constant };

template <class T>
void bound_product(Surface s, PlaneMethod m, const T* xl, const T* xu, const T* yl, const T* yu,
                   std::ptrdiff_t n, T* aL, T* bL, T* cL, T* aU, T* bU, T* cU);

}  // namespace pq
