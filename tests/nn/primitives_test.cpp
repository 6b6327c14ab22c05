// The Eigen backend beyond the conformance kit (conformance_test.cpp runs the kit on it): what
// the kit cannot know about a backend, here its threads.
#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen.hpp>

#include "support/nn_testing.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

using namespace testing_nn;
namespace pb = pcnas::backend;

using fast = pb::eigen::backend;

namespace {
// Float against float with another summation order: see expect_close.
constexpr double cmp_tol = 1e-4;
}  // namespace

TEST_CASE("eigen backend: results do not depend on the thread count beyond rounding") {
  pcnas::rng r(26);
  const pb::depthwise_desc d{{4, 14, 14, 40}, 5, 1};
  const host x = as_float(random_host(r, d.in.numel())), w = as_float(random_host(r, d.weight_size())),
             g = as_float(random_host(r, d.out().numel()));
  auto run = [&](int threads) {
    fast b({.threads = threads});
    auto dx = b.allocate(d.in.numel()), dw = b.allocate(d.weight_size());
    b.depthwise_backward(d, put(b, x), put(b, w), put(b, g), dx, dw);
    return get(b, dw, d.weight_size());
  };
  const host one = run(1), two = run(2), again = run(2);
  expect_close(two, one, cmp_tol, "depthwise dw, 2 threads vs 1");
  CHECK(two == again);  // the same thread count gives the same bits
}

// The direct 1×1 kernel (gemm.hpp) claims Eigen's bits wherever direct_gemm_exact holds: the
// channel counts of the fmnist space and others, row counts around the groups of 4 and 8.
TEST_CASE("eigen backend: the direct 1x1 kernel gives Eigen's bits where it claims to") {
  namespace ed = pb::eigen::detail;
  pcnas::rng r(27);
  const ed::eigen_single_thread one;  // as the backend calls Eigen (its threaded split blocks the depth otherwise)
  int checked = 0;
  for (pb::index K : {8, 16, 24, 40, 48, 72, 80, 96, 120, 144, 240, 480})
    for (pb::index N : {8, 16, 24, 32, 40, 48, 56, 72, 80, 96, 120, 144, 240, 256, 480})
      for (pb::index n : {2, 3, 4, 5, 7, 8, 9, 12, 13, 49, 196, 257}) {
        if (!ed::direct_gemm_exact(n, K, N)) continue;
        CAPTURE(K);
        CAPTURE(N);
        CAPTURE(n);
        std::vector<float> x(static_cast<std::size_t>(n * K)), w(static_cast<std::size_t>(K * N)),
            want(static_cast<std::size_t>(n * N)), got(want.size());
        for (auto& v : x) v = static_cast<float>(2 * r.uniform01() - 1);
        for (auto& v : w) v = static_cast<float>(2 * r.uniform01() - 1);
        ed::matrix_map(want.data(), n, N).noalias() = ed::const_matrix_map(x.data(), n, K) * ed::const_matrix_map(w.data(), K, N);
        ed::direct_gemm(n, K, N, x.data(), w.data(), got.data());
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
        ++checked;
      }
  MESSAGE("direct kernel against Eigen: " << checked << " shapes");
}
