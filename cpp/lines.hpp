// 1-D linear relaxations of tanh, sigmoid and ReLU on [l, u] (ALGORITHM.md §2).
// INTERFACE FIXED BY THE SKELETON; implementation owned by the relaxations work.
//
// For every neuron i: alpha_l[i]*z + beta_l[i] <= phi(z) <= alpha_u[i]*z + beta_u[i]
// for all z in [l[i], u[i]], guaranteed in floating point (offsets exact for the
// chosen slope, plus a documented tiny margin).
#pragma once
#include <cstddef>
#include "common.hpp"

namespace pq {

enum class Activation { Tanh, Sigmoid, Relu };

template <class T>
void bound_activation(Activation fn, const T* l, const T* u, std::ptrdiff_t n,
                      T* alpha_l, T* beta_l, T* alpha_u, T* beta_u);

template <class T> T activation_value(Activation fn, T z);

}  // namespace pq
