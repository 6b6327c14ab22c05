// Training steps and evaluation batches of the standard fmnist paths (smallest, largest, a
// fixed random one, and `mixed`: k3e6 k7e3 k3e3 k5e3 k3e3 k5e6 zero k5e6, expansions 3 and 6,
// kernels 3/5/7 and a zero layer, the path furthest behind PyTorch when it was added) on the Eigen backend, beside the naive user-style backend as the
// hand-written baseline (smallest path only: it is slow). Counters: images/s and GFLOP/s
// (a training step counted as three forward passes). Also evaluation at batch 500 (the search's
// validation batch) and BN recalibration (4 batches of 128 in mode::recalibrate), and one core's
// multiply-add peak (BM_fma_peak) to read the GFLOP/s against.
#include <pcnas/backend/eigen.hpp>
#include <pcnas/cost/analytic.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/space/presets.hpp>

#include "support/naive_backend.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

namespace {

using namespace pcnas;
using S = presets::fmnist;

data::dataset synthetic_fmnist(std::size_t count) {
  data::dataset ds;
  ds.count = count;
  ds.height = ds.width = 28;
  ds.channels = 1;
  ds.num_classes = 10;
  ds.norm = data::identity_normalization(1);
  rng r(1);
  ds.images.resize(count * 784);
  for (auto& v : ds.images) v = static_cast<float>(r.uniform01());
  ds.labels.resize(count);
  for (auto& l : ds.labels) l = static_cast<std::uint8_t>(r.uniform_index(10));
  return ds;
}

space::architecture<S> path(int which) {
  space::architecture<S> a{};
  for (std::size_t l = 0; l < S::num_layers; ++l) {
    std::size_t pick = 0;
    for (std::size_t c = 1; c < S::num_choices[l]; ++c) {
      const auto m = S::choice_costs[l][c].macs, best = S::choice_costs[l][pick].macs;
      if (which == 0 ? m < best : m > best) pick = c;
    }
    a[l] = static_cast<int>(pick);
  }
  if (which == 3) return {1, 4, 0, 2, 0, 3, 6, 3};  // mixed
  if (which == 2) {  // the fixed random path
    rng r(2024);
    for (std::size_t l = 0; l < S::num_layers; ++l) a[l] = static_cast<int>(r.uniform_index(S::num_choices[l]));
  }
  return a;
}

const char* path_name(int which) {
  return which == 0 ? "smallest" : which == 1 ? "largest" : which == 2 ? "random" : "mixed";
}

template <class B>
void train_step(benchmark::State& state, B& b) {
  const int which = static_cast<int>(state.range(0));
  const std::size_t batch = static_cast<std::size_t>(state.range(1));
  static const auto ds = synthetic_fmnist(1024);
  nn::supernet_trainer<B, S> t(b, ds, ds, {.batch_size = batch});
  const auto arch = path(which);
  for (int i = 0; i < 2; ++i) (void)t.train_step(arch, 0.01);
  for (auto _ : state) benchmark::DoNotOptimize(t.train_step(arch, 0.01));
  const double macs = static_cast<double>(cost::arch_cost<S>(arch).macs);
  state.SetLabel(std::string(path_name(which)) + ": " + space::to_string<S>(arch));
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(6.0 * macs * static_cast<double>(batch) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

template <class B>
void eval_batch(benchmark::State& state, B& b) {
  const int which = static_cast<int>(state.range(0));
  const std::size_t batch = static_cast<std::size_t>(state.range(1));
  static const auto ds = synthetic_fmnist(1024);
  nn::supernet_trainer<B, S> t(b, ds, ds, {.batch_size = batch, .eval_batch_size = batch});
  const auto arch = path(which);
  t.forward_only(arch, batch);
  for (auto _ : state) t.forward_only(arch, batch);
  const double macs = static_cast<double>(cost::arch_cost<S>(arch).macs);
  state.SetLabel(std::string(path_name(which)) + ": " + space::to_string<S>(arch));
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * macs * static_cast<double>(batch) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// A path's BN recalibration as the search runs it: `recalibration_batches` (4) forward passes of
// training batches in mode::recalibrate (batch statistics, no backward). Images/s count all of them.
template <class B>
void recalibrate(benchmark::State& state, B& b) {
  const int which = static_cast<int>(state.range(0));
  const std::size_t batch = static_cast<std::size_t>(state.range(1));
  static const auto ds = synthetic_fmnist(1024);
  nn::supernet_trainer<B, S> t(b, ds, ds, {.batch_size = batch});
  const auto arch = path(which);
  t.recalibrate(arch);
  for (auto _ : state) t.recalibrate(arch);
  const double macs = static_cast<double>(cost::arch_cost<S>(arch).macs);
  const double images = 4.0 * static_cast<double>(batch);
  state.SetLabel(std::string(path_name(which)) + ": " + space::to_string<S>(arch));
  state.counters["images/s"] = benchmark::Counter(images, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * macs * images / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// Two threads, or PCNAS_BENCH_THREADS (one thread measures the kernels without the barrier waits
// that other load on the machine inflates).
int bench_threads() {
  const char* t = std::getenv("PCNAS_BENCH_THREADS");
  return t != nullptr && std::atoi(t) > 0 ? std::atoi(t) : 2;
}

void BM_eigen_train(benchmark::State& state) {
  backend::eigen::backend b({.threads = bench_threads()});
  train_step(state, b);
}
void BM_eigen_eval(benchmark::State& state) {
  backend::eigen::backend b({.threads = bench_threads()});
  eval_batch(state, b);
}
// Evaluation at the search's validation batch (500), under its own name so that
// compare_paths.py (batch 128, ^BM_eigen_eval/) does not pick it up.
void BM_eigen_eval500(benchmark::State& state) {
  backend::eigen::backend b({.threads = bench_threads()});
  eval_batch(state, b);
}
void BM_eigen_recal(benchmark::State& state) {
  backend::eigen::backend b({.threads = bench_threads()});
  recalibrate(state, b);
}
void BM_naive_train(benchmark::State& state) {
  user_naive::backend<float> b;
  train_step(state, b);
}

}  // namespace

// One core's multiply-add peak with the backend's vectors: 12 independent accumulators, enough
// to keep two FMA pipes busy through their latency. The ceiling for any kernel here, or any
// GEMM, on one thread: the paths' GFLOP/s read against it (benchmarks/compare_paths.py).
void BM_fma_peak(benchmark::State& state) {
  using backend::eigen::detail::lanes;
  using backend::eigen::detail::vbroadcast;
  using v = backend::eigen::detail::vfloat;
  constexpr int chains = 12;
  constexpr long inner = 1 << 20;
  const v m = vbroadcast(0.999999f), c = vbroadcast(1e-7f);
  v acc[chains];
  for (int j = 0; j < chains; ++j) acc[j] = vbroadcast(static_cast<float>(j));
  for (auto _ : state) {
    for (long i = 0; i < inner; ++i) {
#pragma GCC unroll 12
      for (int j = 0; j < chains; ++j) acc[j] = acc[j] * m + c;
    }
    for (int j = 0; j < chains; ++j) benchmark::DoNotOptimize(acc[j]);
  }
  state.SetLabel(std::to_string(lanes) + " lanes");
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * lanes * chains * inner / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_fma_peak)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_eigen_train)->ArgsProduct({{0, 1, 2, 3}, {128}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_eigen_eval)->ArgsProduct({{0, 1, 2, 3}, {128}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_eigen_eval500)->ArgsProduct({{0, 1, 2, 3}, {500}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_eigen_recal)->ArgsProduct({{0, 1, 2, 3}, {128}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_naive_train)->Args({0, 128})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

BENCHMARK_MAIN();
