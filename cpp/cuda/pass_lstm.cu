// The LSTM kernel of the CUDA backend (own translation unit: the three compile in parallel).
#include "batch_pass.cuh"

namespace pqcuda {
void launch_lstm(const dev::DevArgs& a, long grid) {
  dev::pass_kernel<1><<<static_cast<unsigned>(grid), dev::kThreads>>>(a);
}
}  // namespace pqcuda
