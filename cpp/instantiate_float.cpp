// Explicit float instantiations of the three bound passes: proves the core compiles
// for T = float (only double is bound to Python).
#include "one_layer.hpp"

namespace pq {
template BoundResult<float> rnn_bounds<float>(const RnnNet<float>&, const PassCommon<float>&);
template BoundResult<float> lstm_bounds<float>(const LstmNet<float>&, const PassCommon<float>&);
template BoundResult<float> gru_bounds<float>(const GruNet<float>&, const PassCommon<float>&);
}  // namespace pq
