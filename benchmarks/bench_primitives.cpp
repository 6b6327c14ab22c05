// The hot backend primitives at the shapes of the `fmnist` space (batch 128), the Eigen backend
// against the naive user-style backend (float) as the baseline, with GFLOP/s counters; then whole
// MBConv training steps and whole training paths in images per second.
//
// Threads: PCNAS_THREADS (default 2). The naive baselines run first; each Eigen run of a shape
// that has a baseline reports the ratio as `x_naive`.
#include <pcnas/backend/eigen.hpp>
#include <pcnas/nn/conv_bn_relu6.hpp>
#include <pcnas/nn/head.hpp>
#include <pcnas/nn/loss.hpp>
#include <pcnas/nn/mbconv.hpp>
#include <pcnas/nn/optimizer.hpp>

#include "support/naive_backend.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace pb = pcnas::backend;
namespace nn = pcnas::nn;
using fast = pb::eigen::backend;
using naive = user_naive::backend<float>;
using ix = pb::index;

namespace {

constexpr ix batch = 128;

int threads() {
  const char* t = std::getenv("PCNAS_THREADS");
  return t != nullptr ? std::atoi(t) : 2;
}

template <class B>
B make_backend() {
  if constexpr (std::is_same_v<B, fast>)
    return fast({.threads = threads()});
  else
    return B{};
}

template <class B>
pb::tensor_t<B> random_tensor(B& b, ix n, float lo = -1.0f, float hi = 1.0f, std::uint64_t seed = 1) {
  pcnas::rng r(seed);
  std::vector<pb::value_type_t<B>> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = static_cast<pb::value_type_t<B>>(lo + (hi - lo) * r.uniform01());
  auto t = b.allocate(n);
  b.upload(std::span<const pb::value_type_t<B>>(v), t);
  return t;
}

// Seconds per call of the naive baseline, by primitive and arguments.
std::map<std::string, double>& baselines() {
  static std::map<std::string, double> m;
  return m;
}

std::string shape_key(const char* primitive, const benchmark::State& s, int args) {
  std::string k = primitive;
  for (int i = 0; i < args; ++i) k += "/" + std::to_string(s.range(i));
  return k;
}

// Times the benchmark loop; at the end, a naive run records its time per call and an Eigen run
// reports its speed-up over the recorded baseline of the same shape, if there is one.
template <class B>
class versus_naive {
 public:
  versus_naive(benchmark::State& s, const char* primitive, int args)
      : state_(s), key_(shape_key(primitive, s, args)), start_(std::chrono::steady_clock::now()) {}
  ~versus_naive() {
    if (state_.iterations() == 0) return;
    const double per = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() /
                       static_cast<double>(state_.iterations());
    if constexpr (std::is_same_v<B, naive>) {
      baselines()[key_] = per;
    } else {
      const auto it = baselines().find(key_);
      if (it != baselines().end()) state_.counters["x_naive"] = it->second / per;
    }
  }

 private:
  benchmark::State& state_;
  std::string key_;
  std::chrono::steady_clock::time_point start_;
};

void flops(benchmark::State& s, double per_iteration) {
  s.counters["GFLOP/s"] = benchmark::Counter(per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// --- 1×1 convolution: args (h·w, in, out), pass 0 forward, 1 data gradient, 2 weight gradient
template <class B>
void pointwise(benchmark::State& s) {
  B b = make_backend<B>();
  const pb::pointwise_desc d{batch * s.range(0), s.range(1), s.range(2)};
  auto x = random_tensor(b, d.rows * d.in_channels), w = random_tensor(b, d.weight_size()),
       y = random_tensor(b, d.rows * d.out_channels);
  const int pass = static_cast<int>(s.range(3));
  {
  versus_naive<B> timer(s, "pointwise", 4);
  for (auto _ : s) {
    if (pass == 0) b.pointwise_forward(d, x, w, y);
    if (pass == 1) b.pointwise_backward_data(d, y, w, x, false);
    if (pass == 2) b.pointwise_backward_filter(d, x, y, w);
    b.synchronize();
  }
  }
  flops(s, 2.0 * double(d.rows * d.in_channels * d.out_channels));
}

// --- depthwise: args (h, c, k, stride), pass 0 forward, 1 both gradients
template <class B>
void depthwise(benchmark::State& s) {
  B b = make_backend<B>();
  const pb::depthwise_desc d{{batch, s.range(0), s.range(0), s.range(1)}, s.range(2), s.range(3)};
  auto x = random_tensor(b, d.in.numel()), w = random_tensor(b, d.weight_size()), y = random_tensor(b, d.out().numel()),
       dx = random_tensor(b, d.in.numel()), dw = random_tensor(b, d.weight_size());
  const int pass = static_cast<int>(s.range(4));
  {
  versus_naive<B> timer(s, "depthwise", 5);
  for (auto _ : s) {
    if (pass == 0) {
      b.depthwise_forward(d, x, w, y);
    } else if constexpr (pb::has_depthwise_backward<B>) {
      b.depthwise_backward(d, x, w, y, dx, dw);
    } else {
      b.depthwise_backward_data(d, y, w, dx);
      b.depthwise_backward_filter(d, x, y, dw);
    }
    b.synchronize();
  }
  }
  const double macs = double(d.out().numel() * d.kernel * d.kernel);
  flops(s, 2.0 * macs * (pass == 0 ? 1 : 2));
}

// --- batch norm + ReLU6 over (h·w, c): pass 0 training forward, 1 backward
template <class B>
void bn_relu6(benchmark::State& s) {
  B b = make_backend<B>();
  const ix c = s.range(1);
  const pb::batch_norm_desc d{batch * s.range(0), c, 1e-5};
  auto x = random_tensor(b, d.rows * c, 2, 6), y = random_tensor(b, d.rows * c), g = random_tensor(b, d.rows * c),
       dx = random_tensor(b, d.rows * c);
  auto gamma = random_tensor(b, c, 0.5, 1.5), beta = random_tensor(b, c), rm = random_tensor(b, c), rv = random_tensor(b, c, 1, 2),
       sm = random_tensor(b, c), si = random_tensor(b, c), dg = random_tensor(b, c), db = random_tensor(b, c);
  pb::bn_tensors_t<B> t{gamma, beta, rm, rv, sm, si, dg, db};
  const int pass = static_cast<int>(s.range(2));
  if constexpr (pb::has_batch_norm_relu6<B>) b.batch_norm_relu6_forward_train(d, t, x, y, 0.1);
  else b.batch_norm_forward_train(d, t, x, y, 0.1);
  {
  versus_naive<B> timer(s, "bn_relu6", 3);
  for (auto _ : s) {
    if constexpr (pb::has_batch_norm_relu6<B>) {
      if (pass == 0) b.batch_norm_relu6_forward_train(d, t, x, y, 0.1);
      else b.batch_norm_relu6_backward(d, t, x, y, g, dx);
    } else {
      if (pass == 0) {
        b.batch_norm_forward_train(d, t, x, y, 0.1);
        b.relu6_forward(d.rows * c, y, y);
      } else {
        b.relu6_backward(d.rows * c, y, g, g);
        b.batch_norm_backward(d, t, x, g, dx);
      }
    }
    b.synchronize();
  }
  }
  // Bytes moved in the ideal case: forward reads x twice and writes y; backward reads x and dy
  // twice and writes dx. Reported as GB/s against the memory bandwidth.
  const double bytes = 4.0 * double(d.rows * c) * (pass == 0 ? 3 : 5);
  s.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// --- the stem: 28×28×1 → 16, k3: pass 0 forward, 1 weight gradient
template <class B>
void stem_conv(benchmark::State& s) {
  B b = make_backend<B>();
  const pb::conv2d_desc d{{batch, 28, 28, 1}, 16, 3, 1, 1};
  auto x = random_tensor(b, d.in.numel()), w = random_tensor(b, d.weight_size()), y = random_tensor(b, d.out().numel());
  const int pass = static_cast<int>(s.range(0));
  {
    versus_naive<B> timer(s, "stem_conv", 1);
    for (auto _ : s) {
      if (pass == 0) b.conv2d_forward(d, x, w, y);
      else b.conv2d_backward_filter(d, x, y, w);
      b.synchronize();
    }
  }
  flops(s, 2.0 * double(d.out().numel() * 9));
}

void pointwise_args(benchmark::internal::Benchmark* bm) {
  bm->ArgNames({"hw", "in", "out", "pass"});
  const std::vector<std::vector<ix>> shapes = {{784, 16, 96}, {196, 96, 24},  {196, 24, 144}, {196, 144, 24},
                                                  {49, 40, 240}, {49, 240, 40}, {49, 240, 80},  {49, 80, 480},
                                                  {49, 480, 80}, {49, 80, 256}};
  for (const auto& sh : shapes)
    for (ix pass : {0, 1, 2}) bm->Args({sh[0], sh[1], sh[2], pass});
  bm->Unit(benchmark::kMicrosecond)->UseRealTime();
}
void depthwise_args(benchmark::internal::Benchmark* bm) {
  bm->ArgNames({"h", "c", "k", "s", "pass"});
  const std::vector<std::vector<ix>> shapes = {{28, 96, 7, 2}, {14, 144, 7, 1}, {14, 144, 3, 1}, {14, 144, 7, 2},
                                                  {7, 240, 7, 1}, {7, 480, 7, 1},  {7, 480, 5, 1},  {7, 480, 3, 1}};
  for (const auto& sh : shapes)
    for (ix pass : {0, 1}) bm->Args({sh[0], sh[1], sh[2], sh[3], pass});
  bm->Unit(benchmark::kMicrosecond)->UseRealTime();
}
void bn_args(benchmark::internal::Benchmark* bm) {
  bm->ArgNames({"hw", "c", "pass"});
  for (const auto& sh : std::vector<std::vector<ix>>{{784, 96}, {196, 144}, {49, 480}})
    for (ix pass : {0, 1}) bm->Args({sh[0], sh[1], pass});
  bm->Unit(benchmark::kMicrosecond)->UseRealTime();
}
// The naive baseline at a representative subset (it is slow).
void pointwise_naive_args(benchmark::internal::Benchmark* bm) {
  bm->ArgNames({"hw", "in", "out", "pass"});
  for (ix pass : {0, 1, 2}) bm->Args({196, 24, 144, pass});
  for (ix pass : {0, 1, 2}) bm->Args({49, 480, 80, pass});
  bm->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
}
void depthwise_naive_args(benchmark::internal::Benchmark* bm) {
  bm->ArgNames({"h", "c", "k", "s", "pass"});
  for (ix pass : {0, 1}) bm->Args({14, 144, 7, 1, pass});
  for (ix pass : {0, 1}) bm->Args({7, 480, 7, 1, pass});
  bm->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
}
void bn_naive_args(benchmark::internal::Benchmark* bm) {
  bm->ArgNames({"hw", "c", "pass"});
  for (ix pass : {0, 1}) bm->Args({196, 144, pass});
  bm->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
}

}  // namespace

BENCHMARK(pointwise<naive>)->Name("pointwise/naive")->Apply(pointwise_naive_args);
BENCHMARK(depthwise<naive>)->Name("depthwise/naive")->Apply(depthwise_naive_args);
BENCHMARK(bn_relu6<naive>)->Name("bn_relu6/naive")->Apply(bn_naive_args);
BENCHMARK(stem_conv<naive>)->Name("stem_conv/naive")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(pointwise<fast>)->Name("pointwise/eigen")->Apply(pointwise_args);
BENCHMARK(depthwise<fast>)->Name("depthwise/eigen")->Apply(depthwise_args);
BENCHMARK(bn_relu6<fast>)->Name("bn_relu6/eigen")->Apply(bn_args);
BENCHMARK(stem_conv<fast>)->Name("stem_conv/eigen")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

// ---------------------------------------------------------------------------------------------
// Whole training steps on the Eigen backend: one MBConv, and whole `fmnist` paths.
// ---------------------------------------------------------------------------------------------

namespace {

struct layer_shape {
  ix in, out, h, s;
};
// The `fmnist` space: stem 28×28×16, then these eight layers, head 1×1→256, FC 10.
constexpr layer_shape fmnist_layers[] = {{16, 24, 28, 2}, {24, 24, 14, 1}, {24, 40, 14, 2}, {40, 40, 7, 1},
                                         {40, 40, 7, 1},  {40, 80, 7, 1},  {80, 80, 7, 1},  {80, 80, 7, 1}};

void mbconv_step(benchmark::State& s) {
  fast b({.threads = threads()});
  nn::context<fast> ctx(b);
  pcnas::rng r(1);
  const layer_shape l = fmnist_layers[s.range(0)];
  nn::mbconv<fast> m(b, {.in_channels = l.in, .height = l.h, .width = l.h, .out_channels = l.out,
                         .kernel = s.range(1), .expansion = s.range(2), .stride = l.s},
                     r);
  const pb::act_shape in{batch, l.h, l.h, l.in};
  auto x = random_tensor(b, in.numel());
  auto step = [&] {
    auto a = ctx.acquire(in);
    b.copy(in.numel(), x, a.tensor());
    auto y = m.forward(ctx, std::move(a), nn::mode::train);
    auto dx = m.backward(ctx, std::move(y));
    b.synchronize();
  };
  step();
  for (auto _ : s) step();
  s.counters["img/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

// A whole training step of one path: forward, loss, backward, SGD. Arg: 0 = all k7e6 (the
// largest path), 1 = the smallest (k3e3 where the layer must have an op, zero elsewhere),
// 2 = all k3e3.
void path_step(benchmark::State& s) {
  fast b({.threads = threads()});
  nn::context<fast> ctx(b);
  pcnas::rng r(1);
  const int which = static_cast<int>(s.range(0));
  nn::conv_bn_relu6<fast> stem(b, {.in_channels = 1, .height = 28, .width = 28, .out_channels = 16}, r);
  std::vector<nn::mbconv<fast>> layers;
  for (const auto& l : fmnist_layers) {
    const bool skippable = l.s == 1 && l.in == l.out;
    if (which == 1 && skippable) continue;  // zero: identity
    const ix k = which == 0 ? 7 : 3, e = which == 0 ? 6 : 3;
    layers.emplace_back(b, nn::mbconv_config{.in_channels = l.in, .height = l.h, .width = l.h, .out_channels = l.out,
                                             .kernel = k, .expansion = e, .stride = l.s},
                        r);
  }
  nn::head<fast> head(b, {.in_channels = 80, .height = 7, .width = 7, .features = 256, .classes = 10}, r);
  nn::cross_entropy<fast> loss(b);
  const nn::sgd<fast> opt;
  const pb::act_shape in{batch, 28, 28, 1};
  auto x = random_tensor(b, in.numel(), 0, 1);
  auto labels = b.allocate_labels(batch);
  std::vector<std::int32_t> lab(batch);
  for (ix i = 0; i < batch; ++i) lab[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % 10);
  b.upload_labels(lab, labels);
  nn::parameter_list<fast> params = stem.parameters();
  for (auto& l : layers)
    for (auto* p : l.parameters()) params.push_back(p);
  for (auto* p : head.parameters()) params.push_back(p);
  auto step = [&] {
    auto a = ctx.acquire(in);
    b.copy(in.numel(), x, a.tensor());
    a = stem.forward(ctx, std::move(a), nn::mode::train);
    for (auto& l : layers) a = l.forward(ctx, std::move(a), nn::mode::train);
    auto logits = head.forward(ctx, std::move(a), nn::mode::train);
    loss.forward(b, logits, labels);
    auto d = loss.backward(ctx, logits, labels);
    logits.reset();
    d = head.backward(ctx, std::move(d));
    for (auto it = layers.rbegin(); it != layers.rend(); ++it) d = it->backward(ctx, std::move(d));
    stem.backward(ctx, std::move(d));
    opt.step(b, params, 0.01);
    b.synchronize();
  };
  step();  // the first step fills the activation pool and the scratch buffers
  for (auto _ : s) step();
  s.counters["img/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(mbconv_step)
    ->ArgNames({"layer", "k", "e"})
    ->Args({0, 7, 6})
    ->Args({1, 7, 6})
    ->Args({2, 7, 6})
    ->Args({3, 7, 6})
    ->Args({5, 7, 6})
    ->Args({6, 7, 6})
    ->Args({6, 3, 3})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(path_step)->ArgName("path")->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
