// The Eigen backend's results, pinned bit for bit. A few SGD steps of two fmnist paths (the
// largest, and one with expansion 3 and 6, kernels 3/5/7, a zero layer and residuals), then an
// inference batch, on 1 and on 2 threads: the losses, a checksum of every weight, momentum and
// running statistic afterwards, and a checksum of the inference logits.
//
// What can make this fail, and what cannot:
//  - Within one build, every result is a fixed function of the seed and the thread count: the
//    work splits are static and partial sums are reduced in thread order. So the same run twice
//    must give the same bits (checked first, on every machine).
//  - Across builds, the bits depend on the instruction set (the vector width sets the order of
//    the per-lane partial sums; FMA contraction changes rounding), on the compiler and on Eigen's
//    GEMM kernels. The pinned values are therefore keyed by that configuration (see config_key);
//    a configuration without pinned values reports its values and checks only the determinism.
//    Pinned here: AVX-512 + FMA (-march=native on an AVX-512 machine), AVX2 + FMA (-mavx2 -mfma,
//    the CI variant) and the portable build (PCNAS_NATIVE=OFF: SSE2, no FMA), GCC 12, Eigen 3.4.
//  - A kernel change that changes rounding changes these values: that is the point. Update them
//    deliberately (the failure message prints the new ones) and say why in the commit.
#include <pcnas/backend/eigen.hpp>
#include <pcnas/nn/loss.hpp>
#include <pcnas/nn/optimizer.hpp>
#include <pcnas/nn/supernet.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/space/presets.hpp>

#include <Eigen/Core>
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace pcnas;
using fast = backend::eigen::backend;
using S = presets::fmnist;

std::string config_key(int threads) {
  char key[128];
  std::snprintf(key, sizeof key, "lanes=%d fma=%d gcc=%d eigen=%d.%d threads=%d", backend::eigen::detail::lanes,
#if defined(__FMA__)
                1,
#else
                0,
#endif
#if defined(__clang__)
                -__clang_major__,
#else
                __GNUC__,
#endif
                EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, threads);
  return key;
}

std::uint64_t fnv1a(const void* p, std::size_t bytes, std::uint64_t h = 14695981039346656037ull) {
  const auto* c = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

struct outcome {
  std::array<std::uint32_t, 3> loss_bits{};  // the float bits of each step's summed loss
  std::uint64_t state = 0;                   // weights, momenta, running statistics
  std::uint64_t logits = 0;                  // one inference batch
  bool operator==(const outcome&) const = default;
  std::string text() const {
    char s[160];
    std::snprintf(s, sizeof s, "{{0x%08xu, 0x%08xu, 0x%08xu}, 0x%016llxull, 0x%016llxull}", loss_bits[0],
                  loss_bits[1], loss_bits[2], static_cast<unsigned long long>(state),
                  static_cast<unsigned long long>(logits));
    return s;
  }
};

constexpr backend::index batch = 16;

outcome run(int threads, const std::vector<int>& arch) {
  fast b({.threads = threads});
  nn::context<fast> ctx(b);
  nn::supernet<fast, S> net(b, {.seed = 11});
  nn::cross_entropy<fast> loss(b);
  const nn::sgd<fast> sgd{nn::sgd_options{}};
  const backend::act_shape shape{batch, 28, 28, 1};
  rng r(5);
  std::vector<float> images(static_cast<std::size_t>(shape.numel()));
  std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
  auto labels_t = b.allocate_labels(batch);
  outcome o;
  auto upload = [&] {
    for (auto& v : images) v = static_cast<float>(r.uniform01());
    for (auto& l : labels) l = static_cast<std::int32_t>(r.uniform_index(10));
    auto x = ctx.acquire(shape);
    b.upload(std::span<const float>(images), x.tensor());
    b.upload_labels(std::span<const std::int32_t>(labels), labels_t);
    return x;
  };
  for (std::size_t step = 0; step < o.loss_bits.size(); ++step) {
    auto logits = net.forward(ctx, upload(), arch, nn::mode::train);
    loss.reset(b);
    loss.forward(b, logits, labels_t);
    auto dlogits = loss.backward(ctx, logits, labels_t);
    logits.reset();
    net.backward(ctx, std::move(dlogits), arch);
    const auto params = net.parameters(arch);
    sgd.step(b, params, 0.05);
    const float l = static_cast<float>(loss.read(b).loss_sum);
    std::memcpy(&o.loss_bits[step], &l, sizeof l);
  }
  const auto state = nn::save_state<fast>(b, net.all_parameters(), net.all_buffers(), {.momentum = true});
  o.state = fnv1a(state.data(), state.size() * sizeof(float));
  auto logits = net.forward(ctx, upload(), arch, nn::mode::eval);
  std::vector<float> host(static_cast<std::size_t>(logits.shape().numel()));
  b.download(logits.tensor(), std::span<float>(host));
  o.logits = fnv1a(host.data(), host.size() * sizeof(float));
  net.release(arch);
  return o;
}

struct pinned {
  const char* key;
  outcome largest, mixed;
};

// Recorded from the kernels before their restructuring into kernel_policy, one Welford type and
// one ReLU6 mask helper (which left every bit unchanged).
const pinned table[] = {
    {"lanes=16 fma=1 gcc=12 eigen=3.4 threads=1",
     {{0x4214a857u, 0x42188e91u, 0x4212eb8bu}, 0xcd7113cfce0dcf9aull, 0x165f78d806d7d0c0ull},
     {{0x42149385u, 0x4218013cu, 0x42131a34u}, 0x52d9ea5cbf4086c3ull, 0xd1fc279d9e420b0bull}},
    {"lanes=16 fma=1 gcc=12 eigen=3.4 threads=2",
     {{0x4214a857u, 0x42188ed5u, 0x4212eaccu}, 0x770b41e08303a399ull, 0x7d9eae9f6dcbf208ull},
     {{0x42149385u, 0x42180128u, 0x42131a0eu}, 0xe397ad8537b57dcdull, 0xede5e322ffbe8fadull}},
    {"lanes=8 fma=1 gcc=12 eigen=3.4 threads=1",
     {{0x4214a857u, 0x42188ed7u, 0x4212ec3fu}, 0x97911f9b9a7b048bull, 0x4af65ffd9ba9ec37ull},
     {{0x42149385u, 0x4218013cu, 0x42131a1fu}, 0x1d3472d6bbe0a8d1ull, 0x57c4b055ade5a6e9ull}},
    {"lanes=8 fma=1 gcc=12 eigen=3.4 threads=2",
     {{0x4214a857u, 0x42188ed9u, 0x4212ed05u}, 0x632d9ae6be7918b6ull, 0xd2fef9884c4f781dull},
     {{0x42149385u, 0x42180129u, 0x42131a31u}, 0xdfd936d7f8181a59ull, 0x84fb8de9174f7408ull}},
    {"lanes=4 fma=0 gcc=12 eigen=3.4 threads=1",
     {{0x4214a857u, 0x42188f05u, 0x4212ea14u}, 0x2e42129fffc17ba8ull, 0x532951d66a0ef517ull},
     {{0x42149385u, 0x4218012eu, 0x42131b2eu}, 0xa1be25004863954cull, 0x32fde61bdfa9ae7eull}},
    {"lanes=4 fma=0 gcc=12 eigen=3.4 threads=2",
     {{0x4214a857u, 0x42188f06u, 0x4212e9c8u}, 0x209c6269dc040b84ull, 0x13dcdb7247f00ad1ull},
     {{0x42149385u, 0x4218013cu, 0x42131a3fu}, 0xd6e998bb439b8110ull, 0x9d6ac8a809490edcull}},
};

const std::vector<int> largest(S::num_layers, 5);                // k7e6 everywhere
const std::vector<int> mixed{1, 4, 0, 2, 0, 3, 6, 3};            // k3e6 k7e3 k3e3 k5e3 k3e3 k5e6 zero k5e6

}  // namespace

TEST_CASE("eigen backend: a short training run gives the pinned bits for this instruction set") {
  for (int threads : {1, 2}) {
    const std::string key = config_key(threads);
    CAPTURE(key);
    const outcome a = run(threads, largest), m = run(threads, mixed);
    // Determinism within the build: the same seed and thread count give the same bits.
    CHECK(run(threads, largest) == a);
    CHECK(run(threads, mixed) == m);
    const pinned* p = nullptr;
    for (const auto& e : table)
      if (key == e.key) p = &e;
    if (p == nullptr) {
      MESSAGE("no pinned values for \"" << key << "\": computed {\"" << key << "\", " << a.text() << ", " << m.text()
                                        << "}");
      continue;
    }
    CHECK_MESSAGE(a == p->largest, "largest path: computed " << a.text());
    CHECK_MESSAGE(m == p->mixed, "mixed path: computed " << m.text());
  }
}
