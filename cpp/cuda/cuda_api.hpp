// Host interface of the CUDA backend (cpp/cuda/batch_pass.cu), shared with the
// pybind11 binding (bind_cuda.cpp, compiled by the host compiler). Everything here
// is plain C++: the binding never sees a CUDA header.
//
// One call bounds N (input, eps) pairs of ONE model at once (RECURRENCES.md §0 with a
// leading batch axis): pair i has its own x (T, n), eps, and folded head
// spec_weight (K, s) / spec_bias (K,) (K is the same for every pair). The recurrences
// are the CPU core's (RECURRENCES.md §4), step by step in the summation order of the former
// one-layer routines (the CPU core now runs them on the generic driver, one_layer.hpp).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace pqcuda {

enum class Arch { Rnn = 0, Lstm = 1, Gru = 2 };

struct BatchArgs {
  Arch arch = Arch::Rnn;
  int activation = 0;   // pq::Activation as int (RNN only)
  int planes = 0;       // pq::PlaneMethod as int (LSTM/GRU)
  int q = 0;            // pq::DualNorm as int
  long s = 0, n = 0, T = 0, K = 0, N = 0;
  const double* w_ih = nullptr;   // (G s, n)
  const double* w_hh = nullptr;   // (G s, s)
  const double* bias = nullptr;   // RNN/LSTM: b_ih + b_hh; GRU: b_ih
  const double* bias2 = nullptr;  // GRU: b_hh
  const double* h0 = nullptr;     // (s,)
  const double* c0 = nullptr;     // (s,) LSTM
  const double* x = nullptr;      // (N, T, n)
  const double* eps = nullptr;    // (N,)
  const unsigned char* mask = nullptr;  // (T,)
  const double* spec_w = nullptr; // (N, K, s)
  const double* spec_b = nullptr; // (N, K)
  bool want_states = false;
};

struct StateOut {
  std::string name;
  long rows = 0;                   // per step
  std::vector<double> lower, upper;  // (N, T, rows)
};

struct BatchOut {
  std::vector<double> lower, upper;  // (N, K)
  std::vector<int> status;           // (N,): 0 ok, 1 a relaxation got a non-finite / inverted interval
  std::vector<StateOut> states;
};

// Number of visible CUDA devices; 0 (never an exception) when there is no driver or device.
int device_count();
// A one-line description of why device_count() is 0 ("" when it is not).
std::string device_error();
// Runs the batch on the current device; throws std::runtime_error on a CUDA error.
void run_batch(const BatchArgs& a, BatchOut& out);

}  // namespace pqcuda
