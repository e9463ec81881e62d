// Host side of the CUDA backend: buffers, grid, launch, copies (cuda_api.hpp).
#include "batch_pass.cuh"

namespace pqcuda {
namespace {
using namespace dev;

long workspace_doubles(const BatchArgs& a) {
  Bump b{nullptr};
  switch (a.arch) {
    case Arch::Rnn: { RnnWs w(b, a.T, a.s, a.n, rnn_rmax(a.s, a.K)); break; }
    case Arch::Lstm: { LstmWs w(b, a.T, a.s, a.n, lstm_rmax(a.s, a.K)); break; }
    default: { GruWs w(b, a.T, a.s, a.n, gru_rmax(a.s, a.K)); break; }
  }
  return b.used;
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

// Owning device buffer.
struct DBuf {
  void* p = nullptr;
  DBuf() = default;
  explicit DBuf(size_t bytes) { if (bytes) check(cudaMalloc(&p, bytes), "cudaMalloc"); }
  DBuf(const void* host, size_t bytes) : DBuf(bytes) {
    if (bytes) check(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  DBuf(const DBuf&) = delete;
  DBuf& operator=(const DBuf&) = delete;
  DBuf(DBuf&& o) noexcept : p(o.p) { o.p = nullptr; }
  ~DBuf() { if (p) cudaFree(p); }
  template <class T> T* as() const { return static_cast<T*>(p); }
};

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error state
    return 0;
  }
  return n;
}

std::string device_error() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return cudaGetErrorString(e);
  }
  return n > 0 ? "" : "no CUDA device";
}

void run_batch(const BatchArgs& a, BatchOut& out) {
  const long N = a.N, T = a.T, s = a.s, n = a.n, K = a.K;
  const long gates = a.arch == Arch::Rnn ? 1 : a.arch == Arch::Lstm ? 4 : 3;
  out.lower.assign(N * K, 0.0);
  out.upper.assign(N * K, 0.0);
  out.status.assign(N, 0);
  out.states.clear();
  if (N == 0) return;
  const size_t D = sizeof(double);
  DBuf w_ih(a.w_ih, gates * s * n * D), w_hh(a.w_hh, gates * s * s * D);
  DBuf bias(a.bias, gates * s * D);
  DBuf bias2(a.bias2, a.arch == Arch::Gru ? gates * s * D : 0);
  DBuf h0(a.h0, s * D), c0(a.c0, a.arch == Arch::Lstm ? s * D : 0);
  DBuf x(a.x, N * T * n * D), eps(a.eps, N * D), mask(a.mask, T);
  DBuf spec_w(a.spec_w, N * K * s * D), spec_b(a.spec_b, N * K * D);
  DBuf lower(N * K * D), upper(N * K * D), status(N * sizeof(int));

  std::vector<std::pair<std::string, long>> names;
  if (a.want_states) {
    if (a.arch == Arch::Rnn) names = {{"pre", s}, {"hidden", s}};
    else if (a.arch == Arch::Lstm) names = {{"gates", 4 * s}, {"cell", s}, {"hidden", s}};
    else names = {{"gates", 3 * s}, {"u", s}, {"hidden", s}};
  }
  std::vector<DBuf> st;
  for (const auto& nm : names) {
    st.emplace_back(N * T * nm.second * D);
    st.emplace_back(N * T * nm.second * D);
  }

  // Grid: at most one block per pair, at most ~1/2 of free memory for workspaces.
  const long wsd = workspace_doubles(a);
  size_t free_b = 0, total_b = 0;
  check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  int dev = 0, sms = 1;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  long grid = std::min<long>(N, 64L * sms);
  const long by_mem = static_cast<long>((free_b / 2) / (static_cast<size_t>(wsd) * D + 1));
  grid = std::max<long>(1, std::min(grid, by_mem));
  DBuf ws(static_cast<size_t>(grid) * wsd * D);

  DevArgs d{};
  d.activation = a.activation; d.planes = a.planes; d.q = a.q;
  d.s = s; d.n = n; d.T = T; d.K = K; d.N = N;
  d.w_ih = w_ih.as<double>(); d.w_hh = w_hh.as<double>(); d.bias = bias.as<double>();
  d.bias2 = bias2.as<double>(); d.h0 = h0.as<double>(); d.c0 = c0.as<double>();
  d.x = x.as<double>(); d.eps = eps.as<double>(); d.mask = mask.as<unsigned char>();
  d.spec_w = spec_w.as<double>(); d.spec_b = spec_b.as<double>();
  d.want_states = a.want_states;
  d.lower = lower.as<double>(); d.upper = upper.as<double>(); d.status = status.as<int>();
  for (size_t i = 0; i < st.size(); ++i) d.st[i] = st[i].as<double>();
  d.ws = ws.as<double>(); d.ws_per_block = wsd;

  switch (a.arch) {
    case Arch::Rnn: launch_rnn(d, grid); break;
    case Arch::Lstm: launch_lstm(d, grid); break;
    default: launch_gru(d, grid); break;
  }
  check(cudaGetLastError(), "kernel launch");
  check(cudaDeviceSynchronize(), "kernel execution");

  check(cudaMemcpy(out.lower.data(), d.lower, N * K * D, cudaMemcpyDeviceToHost), "cudaMemcpy lower");
  check(cudaMemcpy(out.upper.data(), d.upper, N * K * D, cudaMemcpyDeviceToHost), "cudaMemcpy upper");
  check(cudaMemcpy(out.status.data(), d.status, N * sizeof(int), cudaMemcpyDeviceToHost), "cudaMemcpy status");
  for (size_t j = 0; j < names.size(); ++j) {
    StateOut so;
    so.name = names[j].first;
    so.rows = names[j].second;
    so.lower.resize(N * T * so.rows);
    so.upper.resize(N * T * so.rows);
    check(cudaMemcpy(so.lower.data(), st[2 * j].p, so.lower.size() * D, cudaMemcpyDeviceToHost), "cudaMemcpy states");
    check(cudaMemcpy(so.upper.data(), st[2 * j + 1].p, so.upper.size() * D, cudaMemcpyDeviceToHost), "cudaMemcpy states");
    out.states.push_back(std::move(so));
  }
}

}  // namespace pqcuda
