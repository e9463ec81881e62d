// The GRU kernel of the CUDA backend (own translation unit: the three compile in parallel).
#include "batch_pass.cuh"

namespace pqcuda {
void launch_gru(const dev::DevArgs& a, long grid) {
  dev::pass_kernel<2><<<static_cast<unsigned>(grid), dev::kThreads>>>(a);
}
}  // namespace pqcuda
