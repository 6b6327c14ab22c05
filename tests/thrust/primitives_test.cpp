// The Thrust backend's primitives and fused paths: gradients against finite differences (in
// float, so with a float step and tolerance), and agreement with the naive (double) backend,
// forward and backward. Compiled for the OpenMP device system by the host compiler and, in
// cuda_test.cu, for CUDA by nvcc.
#include <pcnas/backend/thrust.hpp>

#include "support/naive_backend.hpp"
#include "support/nn_testing.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

using namespace testing_nn;
namespace pb = pcnas::backend;

namespace {

using naive = user_naive::backend<double>;
using device = pb::thrust::backend;

// Float against double, the rule of expect_close: |got − want| ≤ rtol·(|want| + RMS(want)).
// The Eigen backend meets 1e-4; so must this one.
constexpr double cmp_tol = 1e-4;
// Finite differences of a float backend: step 1e-2 on inputs of order 1. Rounding of the float
// loss (~1e-6 relative over a few hundred terms) divided by 2h gives ~1e-4; the truncation error
// of the central difference (h²·L'''/6) is below that for batch norm and softmax.
constexpr double fd_h = 1e-2;
constexpr double fd_tol = 2e-3;

struct bn_host {
  host gamma, beta, running_mean, running_var;
};

bn_host random_bn(pcnas::rng& r, ix C) {
  return {as_float(random_host(r, C, 0.5, 1.5)), as_float(random_host(r, C, -0.5, 0.5)),
          as_float(random_host(r, C, -0.2, 0.2)), as_float(random_host(r, C, 0.5, 2.0))};
}

template <class B>
struct bn_device {
  tensor_t<B> gamma, beta, running_mean, running_var, saved_mean, saved_inv_std, grad_gamma, grad_beta;
  bn_device(B& b, const bn_host& h)
      : gamma(put(b, h.gamma)), beta(put(b, h.beta)), running_mean(put(b, h.running_mean)),
        running_var(put(b, h.running_var)), saved_mean(b.allocate(ix(h.gamma.size()))),
        saved_inv_std(b.allocate(ix(h.gamma.size()))), grad_gamma(b.allocate(ix(h.gamma.size()))),
        grad_beta(b.allocate(ix(h.gamma.size()))) {}
  pb::bn_tensors_t<B> tensors() {
    return {gamma, beta, running_mean, running_var, saved_mean, saved_inv_std, grad_gamma, grad_beta};
  }
};

template <class B>
pcnas::backend::label_tensor_t<B> put_labels(B& b, const std::vector<std::int32_t>& v) {
  auto l = b.allocate_labels(static_cast<ix>(v.size()));
  b.upload_labels(std::span<const std::int32_t>(v), l);
  return l;
}

void expect_all_close(const std::vector<host>& got, const std::vector<host>& want, const std::vector<std::string>& names) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) expect_close(got[i], want[i], cmp_tol, names[i]);
}

// dL/dv by finite differences against `analytic`, where L = <forward(v), R> on the Thrust backend.
void fd(const std::function<double()>& loss, host& values, const host& analytic, const std::string& what) {
  check_gradient(loss, values, analytic, [] {}, what, fd_tol, fd_h, 48);
}

}  // namespace

TEST_CASE("thrust backend: dense convolution, against finite differences and the naive backend") {
  for (ix stride : {1, 2}) {
    CAPTURE(stride);
    pcnas::rng r(21 + stride);
    const pb::conv2d_desc d{{3, 9, 7, 2}, 5, 3, stride, 1};
    host x = as_float(random_host(r, d.in.numel())), w = as_float(random_host(r, d.weight_size()));
    const host R = as_float(random_host(r, d.out().numel()));
    auto run = [&](auto& b) {
      auto y = b.allocate(d.out().numel()), dx = b.allocate(d.in.numel()), dw = b.allocate(d.weight_size());
      b.conv2d_forward(d, put(b, x), put(b, w), y);
      b.conv2d_backward_data(d, put(b, R), put(b, w), dx);
      b.conv2d_backward_filter(d, put(b, x), put(b, R), dw);
      return std::vector<host>{get(b, y, d.out().numel()), get(b, dx, d.in.numel()), get(b, dw, d.weight_size())};
    };
    device t({.threads = 2, .serial_below = 0});
    naive n;
    const auto got = run(t);
    expect_all_close(got, run(n), {"conv2d y", "conv2d dx", "conv2d dw"});
    auto loss = [&] {
      auto y = t.allocate(d.out().numel());
      t.conv2d_forward(d, put(t, x), put(t, w), y);
      return dot(get(t, y, d.out().numel()), R);
    };
    fd(loss, x, got[1], "conv2d dx");
    fd(loss, w, got[2], "conv2d dw");
  }
}

TEST_CASE("thrust backend: pointwise convolution, against finite differences and the naive backend") {
  pcnas::rng r(22);
  // 37 rows and odd channel counts: GEMM row blocks and cuBLAS leading dimensions that do not
  // divide evenly.
  const pb::pointwise_desc d{37, 13, 11};
  host x = as_float(random_host(r, d.rows * d.in_channels)), w = as_float(random_host(r, d.weight_size()));
  const host R = as_float(random_host(r, d.rows * d.out_channels));
  const host ones(static_cast<std::size_t>(d.rows * d.in_channels), 1.0);
  auto run = [&](auto& b) {
    auto y = b.allocate(d.rows * d.out_channels), dx = b.allocate(d.rows * d.in_channels),
         dw = b.allocate(d.weight_size());
    auto acc = put(b, ones);
    b.pointwise_forward(d, put(b, x), put(b, w), y);
    b.pointwise_backward_data(d, put(b, R), put(b, w), dx, false);
    b.pointwise_backward_data(d, put(b, R), put(b, w), acc, true);
    b.pointwise_backward_filter(d, put(b, x), put(b, R), dw);
    return std::vector<host>{get(b, y, d.rows * d.out_channels), get(b, dx, d.rows * d.in_channels),
                             get(b, acc, d.rows * d.in_channels), get(b, dw, d.weight_size())};
  };
  device t({.threads = 2, .serial_below = 0});
  naive n;
  const auto got = run(t);
  expect_all_close(got, run(n), {"pointwise y", "pointwise dx", "pointwise dx accumulated", "pointwise dw"});
  auto loss = [&] {
    auto y = t.allocate(d.rows * d.out_channels);
    t.pointwise_forward(d, put(t, x), put(t, w), y);
    return dot(get(t, y, d.rows * d.out_channels), R);
  };
  fd(loss, x, got[1], "pointwise dx");
  fd(loss, w, got[3], "pointwise dw");
}

TEST_CASE("thrust backend: depthwise convolution, against finite differences and the naive backend") {
  for (ix k : {3, 5, 7})
    for (ix stride : {1, 2}) {
      CAPTURE(k);
      CAPTURE(stride);
      pcnas::rng r(23 + 10 * k + stride);
      const pb::depthwise_desc d{{3, 9, 8, 5}, k, stride};
      host x = as_float(random_host(r, d.in.numel())), w = as_float(random_host(r, d.weight_size()));
      const host R = as_float(random_host(r, d.out().numel()));
      auto run = [&](auto& b) {
        auto y = b.allocate(d.out().numel()), dx = b.allocate(d.in.numel()), dw = b.allocate(d.weight_size());
        b.depthwise_forward(d, put(b, x), put(b, w), y);
        b.depthwise_backward_data(d, put(b, R), put(b, w), dx);
        b.depthwise_backward_filter(d, put(b, x), put(b, R), dw);
        return std::vector<host>{get(b, y, d.out().numel()), get(b, dx, d.in.numel()), get(b, dw, d.weight_size())};
      };
      device t({.threads = 2, .serial_below = 0});
      naive n;
      const auto got = run(t);
      expect_all_close(got, run(n), {"depthwise y", "depthwise dx", "depthwise dw"});
      auto loss = [&] {
        auto y = t.allocate(d.out().numel());
        t.depthwise_forward(d, put(t, x), put(t, w), y);
        return dot(get(t, y, d.out().numel()), R);
      };
      fd(loss, x, got[1], "depthwise dx");
      fd(loss, w, got[2], "depthwise dw");
    }
}

TEST_CASE("thrust backend: batch norm in every mode, fused or not, against finite differences and the naive backend") {
  // 150 rows: more than two chunks of the per-channel sums, the last one partial.
  const pb::batch_norm_desc d{150, 7, 1e-5};
  const ix n = d.rows * d.channels;
  pcnas::rng r(24);
  // Inputs away from 0 and 6 after normalisation would hide the ReLU6 mask: spread them wide.
  host x = as_float(random_host(r, n, -2, 5));
  const host res = as_float(random_host(r, n));
  bn_host p = random_bn(r, d.channels);
  for (auto& g : p.gamma) g *= 3;  // outputs well past 6, so the mask has both sides
  const host R = as_float(random_host(r, n));

  // Forward train (plain, +ReLU6, +residual), inference (same three), backward (plain, ReLU6).
  auto run = [&](auto& b) {
    using B = std::remove_reference_t<decltype(b)>;
    std::vector<host> out;
    for (int variant = 0; variant < 3; ++variant) {
      bn_device<B> t(b, p);
      auto y = b.allocate(n), yi = b.allocate(n), dx = b.allocate(n);
      const auto xs = put(b, x), rs = put(b, res), Rs = put(b, R);
      if (variant == 0) {
        b.batch_norm_forward_train(d, t.tensors(), xs, y, 0.25);
        b.batch_norm_backward(d, t.tensors(), xs, Rs, dx);
        b.batch_norm_forward_inference(d, t.tensors(), xs, yi);
      } else if (variant == 1) {
        if constexpr (pb::has_batch_norm_relu6<B>) {
          b.batch_norm_relu6_forward_train(d, t.tensors(), xs, y, 0.25);
          b.batch_norm_relu6_backward(d, t.tensors(), xs, y, Rs, dx);
          b.batch_norm_relu6_forward_inference(d, t.tensors(), xs, yi);
        } else {
          auto z = b.allocate(n), dz = b.allocate(n);
          b.batch_norm_forward_train(d, t.tensors(), xs, z, 0.25);
          b.relu6_forward(n, z, y);
          b.relu6_backward(n, y, Rs, dz);
          b.batch_norm_backward(d, t.tensors(), xs, dz, dx);
          b.batch_norm_forward_inference(d, t.tensors(), xs, z);
          b.relu6_forward(n, z, yi);
        }
      } else {
        if constexpr (pb::has_batch_norm_add<B>) {
          b.batch_norm_add_forward_train(d, t.tensors(), xs, rs, y, 0.25);
          b.batch_norm_add_forward_inference(d, t.tensors(), xs, rs, yi);
        } else {
          auto z = b.allocate(n);
          b.batch_norm_forward_train(d, t.tensors(), xs, z, 0.25);
          b.add(n, z, rs, y);
          b.batch_norm_forward_inference(d, t.tensors(), xs, z);
          b.add(n, z, rs, yi);
        }
        b.batch_norm_backward(d, t.tensors(), xs, Rs, dx);
      }
      out.push_back(get(b, y, n));
      out.push_back(get(b, yi, n));
      out.push_back(get(b, dx, n));
      for (auto* s : {&t.grad_gamma, &t.grad_beta, &t.saved_mean, &t.saved_inv_std, &t.running_mean, &t.running_var})
        out.push_back(get(b, *s, d.channels));
    }
    return out;
  };
  device t({.threads = 2, .serial_below = 0});
  naive nv;
  const auto got = run(t), want = run(nv);
  std::vector<std::string> names;
  for (const char* v : {"", "relu6 ", "add "})
    for (const char* s : {"y", "y (inference)", "dx", "dgamma", "dbeta", "saved mean", "saved inv_std",
                          "running mean", "running var"})
      names.push_back(std::string("bn ") + v + s);
  expect_all_close(got, want, names);
  // The mask must have cut somewhere, or the ReLU6 variant proves nothing.
  const auto& y_relu = got[9];
  CHECK(std::count(y_relu.begin(), y_relu.end(), 0.0) > 0);
  CHECK(std::count(y_relu.begin(), y_relu.end(), 6.0) > 0);

  // Finite differences of the training forward, plain and with ReLU6 (the latter on x only: one
  // entry's step moves its own output across a kink only when it lies within ~1e-2 of one).
  for (bool relu : {false, true}) {
    CAPTURE(relu);
    auto loss = [&] {
      bn_device<device> tt(t, p);
      auto y = t.allocate(n);
      if (relu)
        t.batch_norm_relu6_forward_train(d, tt.tensors(), put(t, x), y, 0.1);
      else
        t.batch_norm_forward_train(d, tt.tensors(), put(t, x), y, 0.1);
      return dot(get(t, y, n), R);
    };
    const std::size_t base = relu ? 9 : 0;
    fd(loss, x, got[base + 2], relu ? "bn relu6 dx" : "bn dx");
    if (relu) continue;  // a step in gamma or beta moves a whole channel across the ReLU6 kinks
    fd(loss, p.gamma, got[base + 3], "bn dgamma");
    fd(loss, p.beta, got[base + 4], "bn dbeta");
  }
}

TEST_CASE("thrust backend: relu6, add, pooling, linear, loss and SGD, against finite differences and the naive backend") {
  pcnas::rng r(25);
  const ix n = 301;
  host x = as_float(random_host(r, n, -2, 8));
  const host a2 = as_float(random_host(r, n)), R = as_float(random_host(r, n));
  const act_shape s{3, 4, 5, 6};
  host px = as_float(random_host(r, s.numel()));
  const host pR = as_float(random_host(r, s.n * s.c));
  const pb::linear_desc ld{5, 19, 10};
  host lx = as_float(random_host(r, ld.batch * ld.in_features)), lw = as_float(random_host(r, ld.in_features * ld.out_features)),
       lb = as_float(random_host(r, ld.out_features));
  const host lR = as_float(random_host(r, ld.batch * ld.out_features));
  const pb::cross_entropy_desc cd{6, 10, 0.1};
  host logits = as_float(random_host(r, cd.batch * cd.classes, -3, 3));
  const std::vector<std::int32_t> labels{0, 3, 9, 3, 5, 7};
  const pb::sgd_desc sd{n, 0.05, 0.9, 1e-3, true};
  const pb::sgd_desc sd_plain{n, 0.05, 0.9, 0.0, false};

  auto run = [&](auto& b) {
    std::vector<host> out;
    auto y = b.allocate(n), dx = b.allocate(n), sum = b.allocate(n);
    const auto xs = put(b, x);
    b.relu6_forward(n, xs, y);
    b.relu6_backward(n, y, put(b, R), dx);
    b.add(n, xs, put(b, a2), sum);
    out.push_back(get(b, y, n));
    out.push_back(get(b, dx, n));
    out.push_back(get(b, sum, n));
    auto pooled = b.allocate(s.n * s.c), pdx = b.allocate(s.numel());
    b.global_avg_pool_forward(s, put(b, px), pooled);
    b.global_avg_pool_backward(s, put(b, pR), pdx);
    out.push_back(get(b, pooled, s.n * s.c));
    out.push_back(get(b, pdx, s.numel()));
    auto ly = b.allocate(ld.batch * ld.out_features), ldx = b.allocate(ld.batch * ld.in_features),
         ldw = b.allocate(ld.in_features * ld.out_features), ldb = b.allocate(ld.out_features);
    b.linear_forward(ld, put(b, lx), put(b, lw), put(b, lb), ly);
    b.linear_backward_data(ld, put(b, lR), put(b, lw), ldx);
    b.linear_backward_params(ld, put(b, lx), put(b, lR), ldw, ldb);
    for (auto* t : {&ly, &ldx, &ldw, &ldb}) out.push_back(get(b, *t, t == &ly ? ld.batch * ld.out_features : t == &ldx ? ld.batch * ld.in_features : t == &ldw ? ld.in_features * ld.out_features : ld.out_features));
    auto stats = put(b, host{0.5, 1.0}), dz = b.allocate(cd.batch * cd.classes);
    const auto ls = put_labels(b, labels);
    b.softmax_cross_entropy_forward(cd, put(b, logits), ls, stats);
    b.softmax_cross_entropy_backward(cd, put(b, logits), ls, dz);
    out.push_back(get(b, stats, 2));
    out.push_back(get(b, dz, cd.batch * cd.classes));
    for (const auto* desc : {&sd, &sd_plain}) {
      auto w = put(b, x), m = put(b, a2);
      b.sgd_update(*desc, w, put(b, R), m);
      b.sgd_update(*desc, w, put(b, a2), m);
      out.push_back(get(b, w, n));
      out.push_back(get(b, m, n));
    }
    return out;
  };
  device t({.threads = 2, .serial_below = 0});
  naive nv;
  const auto got = run(t);
  expect_all_close(got, run(nv),
                   {"relu6 y", "relu6 dx", "add", "pool y", "pool dx", "linear y", "linear dx", "linear dw",
                    "linear dbias", "loss stats", "loss dlogits", "sgd nesterov w", "sgd nesterov momentum",
                    "sgd w", "sgd momentum"});

  auto relu_loss = [&] {
    auto y = t.allocate(n);
    t.relu6_forward(n, put(t, x), y);
    return dot(get(t, y, n), R);
  };
  fd(relu_loss, x, got[1], "relu6 dx");
  auto pool_loss = [&] {
    auto y = t.allocate(s.n * s.c);
    t.global_avg_pool_forward(s, put(t, px), y);
    return dot(get(t, y, s.n * s.c), pR);
  };
  fd(pool_loss, px, got[4], "pool dx");
  auto linear_loss = [&] {
    auto y = t.allocate(ld.batch * ld.out_features);
    t.linear_forward(ld, put(t, lx), put(t, lw), put(t, lb), y);
    return dot(get(t, y, ld.batch * ld.out_features), lR);
  };
  fd(linear_loss, lx, got[6], "linear dx");
  fd(linear_loss, lw, got[7], "linear dw");
  fd(linear_loss, lb, got[8], "linear dbias");
  // The loss's mean over the batch: stats[0] / batch.
  const auto labels_t = put_labels(t, labels);
  auto ce_loss = [&] {
    auto st = put(t, host{0.0, 0.0});
    t.softmax_cross_entropy_forward(cd, put(t, logits), labels_t, st);
    return get(t, st, 2)[0] / double(cd.batch);
  };
  fd(ce_loss, logits, got[10], "cross-entropy dlogits");
}

TEST_CASE("thrust backend: a tensor too small for a call is refused with the call's name") {
  device t({.threads = 1});
  auto small = t.allocate(3), big = t.allocate(100);
  CHECK_THROWS_WITH_AS(t.relu6_forward(10, small, big), doctest::Contains("relu6_forward"), std::out_of_range);
  CHECK_THROWS_AS(t.pointwise_forward({10, 2, 2}, small, small, big), std::out_of_range);
  auto labels = t.allocate_labels(2);
  CHECK_THROWS_AS(t.upload_labels(std::vector<std::int32_t>{1, 2, 3}, labels), std::out_of_range);
  CHECK(t.name().find("thrust") != std::string::npos);
}

TEST_CASE("thrust backend: the caching allocator reuses blocks by size class and counts what it does") {
  using pb::thrust::caching_allocator;
  CHECK(caching_allocator::bucket(1) == 256);
  CHECK(caching_allocator::bucket(256) == 256);
  CHECK(caching_allocator::bucket(257) == 320);
  CHECK(caching_allocator::bucket(1024) == 1024);
  CHECK(caching_allocator::bucket(1025) == 1280);
  for (std::size_t b = 1; b < 100000; b += 97) {
    CHECK(caching_allocator::bucket(b) >= b);
    CHECK(caching_allocator::bucket(b) <= b + b / 4 + 256);
  }
  device t({.threads = 1});
  const auto before = t.allocations();
  { auto a = t.allocate(1000), b = t.allocate(500); }
  const auto mid = t.allocations();
  CHECK(mid.device_allocations == before.device_allocations + 2);
  CHECK(mid.in_use == before.in_use);
  { auto a = t.allocate(990), b = t.allocate(510); }  // same size classes: served from the cache
  const auto after = t.allocations();
  CHECK(after.device_allocations == mid.device_allocations);
  CHECK(after.reuses == mid.reuses + 2);
  t.trim_memory();
  CHECK(t.allocations().device_bytes == 0);
}
