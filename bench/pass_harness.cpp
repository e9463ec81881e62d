// One bound pass of the C++ core on a random network, without Python: for
// instruction counts (valgrind --tool=callgrind) and min-of-N timings of the
// back-substitution. Not part of the package build.
//   g++ -std=c++17 -O3 -g -fno-math-errno -Icpp bench/pass_harness.cpp -o /tmp/pass_harness
//   /tmp/pass_harness lstm 8 32 20 exact        # kind T h reps [exact|1d|constant]
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null /tmp/pass_harness rnn 8 64 3 exact
// Per-pass instructions = (Ir with reps=3 - Ir with reps=1) / 2.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include "one_layer.hpp"
using namespace pq;
int main(int argc, char** argv) {
  std::string kind = argv[1]; int T = atoi(argv[2]), s = atoi(argv[3]), reps = atoi(argv[4]);
  std::string pl = argc > 5 ? argv[5] : "constant";
  int n = 8, K = 9, G = kind == "rnn" ? 1 : kind == "lstm" ? 4 : 3;
  std::mt19937 rng(0); std::uniform_real_distribution<double> u(-1/std::sqrt(s), 1/std::sqrt(s)), u01(0,1);
  std::normal_distribution<double> nd;
  Mat<double> wih(G*s, n), whh(G*s, s), x(T, n), sw(K, s);
  for (auto& v : wih.v) v = u(rng); for (auto& v : whh.v) v = u(rng); for (auto& v : x.v) v = u01(rng); for (auto& v : sw.v) v = nd(rng);
  std::vector<double> b1(G*s), b2(G*s), h0(s, 0.0), c0(s, 0.0), sb(K); for (auto& v : b1) v = u(rng); for (auto& v : b2) v = u(rng);
  std::vector<double> bb(G*s); for (int i = 0; i < G*s; ++i) bb[i] = b1[i] + b2[i];
  bool mask[1024]; for (int i = 0; i < T; ++i) mask[i] = true;
  PassCommon<double> pc; pc.ball.x = cview(x.view()); pc.ball.eps = 0.01; pc.ball.q = DualNorm::L2; pc.ball.mask = mask; pc.spec_w = cview(sw.view()); pc.spec_b = sb.data();
  PlaneMethod pm = pl == "exact" ? PlaneMethod::Exact : pl == "1d" ? PlaneMethod::OneD : PlaneMethod::Constant;
  double best = 1e9, chk = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    BoundResult<double> res;
    if (kind == "rnn") { RnnNet<double> net{cview(wih.view()), cview(whh.view()), bb.data(), h0.data(), Activation::Tanh}; res = rnn_bounds(net, pc); }
    else if (kind == "lstm") { LstmNet<double> net{cview(wih.view()), cview(whh.view()), bb.data(), h0.data(), c0.data(), pm}; res = lstm_bounds(net, pc); }
    else { GruNet<double> net{cview(wih.view()), cview(whh.view()), b1.data(), b2.data(), h0.data(), pm}; res = gru_bounds(net, pc); }
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, dt); chk = res.lower[0];
  }
  std::printf("%s T=%d s=%d %s best %.3f ms lower0 %.12g\n", kind.c_str(), T, s, pl.c_str(), best * 1e3, chk);
}
