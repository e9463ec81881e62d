// The one-layer passes of RECURRENCES.md §0 (rnn_bounds, lstm_bounds, gru_bounds) as
// instances of the generic driver (general_driver.hpp, docs/GENERAL.md): one recurrent layer,
// one direction, readout "last", the folded specification head (spec_w, spec_b) as the one
// Dense layer, and the identity as the specification. States keep their one-layer names
// (the driver's "L0f_" prefix dropped).
#pragma once
#include <string>
#include <utility>
#include <vector>
#include "bound_state.hpp"
#include "general_driver.hpp"

namespace pq {

namespace detail {
template <class T>
BoundResult<T> one_layer(CellKind kind, Activation act, const DirectionWeights<T>& w, PassOptions opt,
                         const PassCommon<T>& pc) {
  GeneralNet<T> net;
  RecurrentLayerView<T> layer;
  layer.kind = kind;
  layer.act = act;
  layer.dirs.push_back(w);
  net.layers.push_back(std::move(layer));
  net.readout = Readout::Last;
  DenseView<T> head;
  head.w = pc.spec_w;
  head.b = pc.spec_b;
  net.head.push_back(head);
  const std::ptrdiff_t K = pc.spec_w.rows;
  Mat<T> eye(K, K);
  for (std::ptrdiff_t k = 0; k < K; ++k) eye(k, k) = T(1);
  const std::vector<T> zero(static_cast<std::size_t>(K), T(0));
  opt.want_states = pc.want_states;
  ThreatModel<T> tm;  // the per-frame ball of §0
  tm.ball = pc.ball;
  BoundResult<T> r = general_bounds(net, tm, cview(eye.view()), zero.data(), opt);
  for (auto& st : r.states)
    if (st.name.rfind("L0f_", 0) == 0) st.name = st.name.substr(4);
  return r;
}

template <class T>
PassOptions pass_options(PlaneMethod planes, bool shared_z, const OptSettings& opt) {
  PassOptions o;
  o.planes = planes;
  o.shared_z = shared_z;
  o.opt = opt;
  return o;
}
}  // namespace detail

// b = b_ih + b_hh folded: the driver reads (b_ih, b_hh) = (bias, zeros).
template <class T>
BoundResult<T> rnn_bounds(const RnnNet<T>& net, const PassCommon<T>& pc) {
  const std::vector<T> zero(static_cast<std::size_t>(net.w_hh.rows), T(0));
  DirectionWeights<T> w{net.w_ih, net.w_hh, net.bias, zero.data(), net.h0, nullptr};
  return detail::one_layer(CellKind::Rnn, net.act, w, detail::pass_options<T>(PlaneMethod::Exact, false, net.opt), pc);
}

template <class T>
BoundResult<T> lstm_bounds(const LstmNet<T>& net, const PassCommon<T>& pc) {
  const std::vector<T> zero(static_cast<std::size_t>(net.w_hh.rows), T(0));
  DirectionWeights<T> w{net.w_ih, net.w_hh, net.bias, zero.data(), net.h0, net.c0};
  return detail::one_layer(CellKind::Lstm, Activation::Tanh, w, detail::pass_options<T>(net.planes, false, net.opt),
                           pc);
}

template <class T>
BoundResult<T> gru_bounds(const GruNet<T>& net, const PassCommon<T>& pc) {
  DirectionWeights<T> w{net.w_ih, net.w_hh, net.b_ih, net.b_hh, net.h0, nullptr};
  return detail::one_layer(CellKind::Gru, Activation::Tanh, w,
                           detail::pass_options<T>(net.planes, net.shared_z, net.opt), pc);
}

}  // namespace pq
