// The Eigen backend beyond the conformance kit (conformance_test.cpp runs the kit on it): what
// the kit cannot know about a backend, here its threads.
#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen.hpp>

#include "support/nn_testing.hpp"

#include <doctest/doctest.h>

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
