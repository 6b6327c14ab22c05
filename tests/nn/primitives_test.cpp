// Every backend primitive: gradients of the naive (double) backend against finite differences,
// and the Eigen backend against the naive one, forward and backward, fused paths included.
#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen.hpp>

#include "support/naive_backend.hpp"
#include "support/nn_testing.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

using namespace testing_nn;
namespace pb = pcnas::backend;

using naive = user_naive::backend<double>;
using fast = pb::eigen::backend;

namespace {

// Gradient-check tolerance for the double backend: central differences with h = 1e-6 have
// truncation error ~h² and rounding error ~1e-16·|L|/h, both far below 1e-6.
constexpr double fd_tol = 1e-6;
// Float (Eigen) against double (naive): see expect_close.
constexpr double cmp_tol = 1e-4;

struct bn_host {
  host gamma, beta, running_mean, running_var;
};

bn_host random_bn(pcnas::rng& r, ix C) {
  return {as_float(random_host(r, C, 0.5, 1.5)), as_float(random_host(r, C, -0.5, 0.5)),
          as_float(random_host(r, C, -0.2, 0.2)), as_float(random_host(r, C, 0.5, 2.0))};
}

// A batch-norm layer's tensors on a backend, from host values.
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

}  // namespace

// ---------------------------------------------------------------------------------------------
// Finite differences on the naive backend
// ---------------------------------------------------------------------------------------------

TEST_CASE("naive backend: dense convolution gradients match finite differences") {
  for (ix stride : {1, 2}) {
    CAPTURE(stride);
    naive b;
    pcnas::rng r(11);
    const pb::conv2d_desc d{{2, 5, 6, 3}, 4, 3, stride, 1};
    host x = random_host(r, d.in.numel()), w = random_host(r, d.weight_size());
    const host R = random_host(r, d.out().numel());
    auto loss = [&] {
      auto y = b.allocate(d.out().numel());
      b.conv2d_forward(d, put(b, x), put(b, w), y);
      return dot(get(b, y, d.out().numel()), R);
    };
    auto dx = b.allocate(d.in.numel()), dw = b.allocate(d.weight_size());
    b.conv2d_backward_data(d, put(b, R), put(b, w), dx);
    b.conv2d_backward_filter(d, put(b, x), put(b, R), dw);
    check_gradient(loss, x, get(b, dx, d.in.numel()), [] {}, "conv2d dx", fd_tol);
    check_gradient(loss, w, get(b, dw, d.weight_size()), [] {}, "conv2d dw", fd_tol);
  }
}

TEST_CASE("naive backend: pointwise convolution gradients match finite differences") {
  naive b;
  pcnas::rng r(12);
  const pb::pointwise_desc d{10, 5, 7};
  host x = random_host(r, d.rows * d.in_channels), w = random_host(r, d.weight_size());
  const host R = random_host(r, d.rows * d.out_channels);
  auto loss = [&] {
    auto y = b.allocate(d.rows * d.out_channels);
    b.pointwise_forward(d, put(b, x), put(b, w), y);
    return dot(get(b, y, d.rows * d.out_channels), R);
  };
  auto dx = b.allocate(d.rows * d.in_channels), dw = b.allocate(d.weight_size());
  b.pointwise_backward_data(d, put(b, R), put(b, w), dx, false);
  b.pointwise_backward_filter(d, put(b, x), put(b, R), dw);
  check_gradient(loss, x, get(b, dx, d.rows * d.in_channels), [] {}, "pointwise dx", fd_tol);
  check_gradient(loss, w, get(b, dw, d.weight_size()), [] {}, "pointwise dw", fd_tol);
  // accumulate = true adds to what dx held.
  auto acc = put(b, host(static_cast<std::size_t>(d.rows * d.in_channels), 1.0));
  b.pointwise_backward_data(d, put(b, R), put(b, w), acc, true);
  host expected = get(b, dx, d.rows * d.in_channels);
  for (auto& v : expected) v += 1.0;
  expect_close(get(b, acc, d.rows * d.in_channels), expected, 1e-12, "pointwise dx accumulate");
}

TEST_CASE("naive backend: depthwise convolution gradients match finite differences") {
  for (ix k : {3, 5, 7})
    for (ix stride : {1, 2}) {
      CAPTURE(k);
      CAPTURE(stride);
      naive b;
      pcnas::rng r(13 + k * 10 + stride);
      const pb::depthwise_desc d{{2, 7, 6, 3}, k, stride};
      host x = random_host(r, d.in.numel()), w = random_host(r, d.weight_size());
      const host R = random_host(r, d.out().numel());
      auto loss = [&] {
        auto y = b.allocate(d.out().numel());
        b.depthwise_forward(d, put(b, x), put(b, w), y);
        return dot(get(b, y, d.out().numel()), R);
      };
      auto dx = b.allocate(d.in.numel()), dw = b.allocate(d.weight_size());
      b.depthwise_backward_data(d, put(b, R), put(b, w), dx);
      b.depthwise_backward_filter(d, put(b, x), put(b, R), dw);
      check_gradient(loss, x, get(b, dx, d.in.numel()), [] {}, "depthwise dx", fd_tol);
      check_gradient(loss, w, get(b, dw, d.weight_size()), [] {}, "depthwise dw", fd_tol);
    }
}

TEST_CASE("naive backend: batch norm (training) gradients match finite differences") {
  naive b;
  pcnas::rng r(14);
  const pb::batch_norm_desc d{24, 5, 1e-5};
  host x = random_host(r, d.rows * d.channels, -2, 3);
  bn_host p = random_bn(r, d.channels);
  const host R = random_host(r, d.rows * d.channels);
  auto loss = [&] {
    bn_device<naive> t(b, p);
    auto y = b.allocate(d.rows * d.channels);
    b.batch_norm_forward_train(d, t.tensors(), put(b, x), y, 0.1);
    return dot(get(b, y, d.rows * d.channels), R);
  };
  bn_device<naive> t(b, p);
  auto y = b.allocate(d.rows * d.channels), dx = b.allocate(d.rows * d.channels);
  b.batch_norm_forward_train(d, t.tensors(), put(b, x), y, 0.1);
  b.batch_norm_backward(d, t.tensors(), put(b, x), put(b, R), dx);
  check_gradient(loss, x, get(b, dx, d.rows * d.channels), [] {}, "bn dx", fd_tol);
  check_gradient(loss, p.gamma, get(b, t.grad_gamma, d.channels), [] {}, "bn dgamma", fd_tol);
  check_gradient(loss, p.beta, get(b, t.grad_beta, d.channels), [] {}, "bn dbeta", fd_tol);
}

TEST_CASE("naive backend: relu6, add, pooling, linear and loss gradients match finite differences") {
  naive b;
  pcnas::rng r(15);
  SUBCASE("relu6") {
    const ix n = 40;
    host x = random_host(r, n, -3, 9);
    const host R = random_host(r, n);
    auto loss = [&] {
      auto y = b.allocate(n);
      b.relu6_forward(n, put(b, x), y);
      return dot(get(b, y, n), R);
    };
    auto y = b.allocate(n), dx = b.allocate(n);
    b.relu6_forward(n, put(b, x), y);
    b.relu6_backward(n, y, put(b, R), dx);
    check_gradient(loss, x, get(b, dx, n), [] {}, "relu6 dx", fd_tol);
  }
  SUBCASE("add") {
    const ix n = 10;
    const host a = random_host(r, n), c = random_host(r, n);
    auto out = b.allocate(n);
    b.add(n, put(b, a), put(b, c), out);
    host sum(a);
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += c[i];
    expect_close(get(b, out, n), sum, 1e-15, "add");
  }
  SUBCASE("global average pooling") {
    const act_shape s{3, 4, 5, 6};
    host x = random_host(r, s.numel());
    const host R = random_host(r, s.n * s.c);
    auto loss = [&] {
      auto y = b.allocate(s.n * s.c);
      b.global_avg_pool_forward(s, put(b, x), y);
      return dot(get(b, y, s.n * s.c), R);
    };
    auto dx = b.allocate(s.numel());
    b.global_avg_pool_backward(s, put(b, R), dx);
    check_gradient(loss, x, get(b, dx, s.numel()), [] {}, "pool dx", fd_tol);
  }
  SUBCASE("linear") {
    const pb::linear_desc d{4, 6, 3};
    host x = random_host(r, d.batch * d.in_features), w = random_host(r, d.in_features * d.out_features),
         bias = random_host(r, d.out_features);
    const host R = random_host(r, d.batch * d.out_features);
    auto loss = [&] {
      auto y = b.allocate(d.batch * d.out_features);
      b.linear_forward(d, put(b, x), put(b, w), put(b, bias), y);
      return dot(get(b, y, d.batch * d.out_features), R);
    };
    auto dx = b.allocate(d.batch * d.in_features), dw = b.allocate(d.in_features * d.out_features),
         db = b.allocate(d.out_features);
    b.linear_backward_data(d, put(b, R), put(b, w), dx);
    b.linear_backward_params(d, put(b, x), put(b, R), dw, db);
    check_gradient(loss, x, get(b, dx, d.batch * d.in_features), [] {}, "linear dx", fd_tol);
    check_gradient(loss, w, get(b, dw, d.in_features * d.out_features), [] {}, "linear dw", fd_tol);
    check_gradient(loss, bias, get(b, db, d.out_features), [] {}, "linear dbias", fd_tol);
  }
  SUBCASE("softmax cross-entropy with label smoothing") {
    const pb::cross_entropy_desc d{5, 4, 0.1};
    host z = random_host(r, d.batch * d.classes, -3, 3);
    auto labels = b.allocate_labels(d.batch);
    const std::vector<std::int32_t> lab{0, 3, 1, 1, 2};
    b.upload_labels(lab, labels);
    auto loss = [&] {
      auto stats = put(b, host{0.0, 0.0});
      b.softmax_cross_entropy_forward(d, put(b, z), labels, stats);
      return get(b, stats, 2)[0] / double(d.batch);  // the mean loss
    };
    auto dz = b.allocate(d.batch * d.classes);
    b.softmax_cross_entropy_backward(d, put(b, z), labels, dz);
    check_gradient(loss, z, get(b, dz, d.batch * d.classes), [] {}, "cross-entropy dlogits", fd_tol);
  }
}

// ---------------------------------------------------------------------------------------------
// Eigen against the naive oracle
// ---------------------------------------------------------------------------------------------

TEST_CASE("eigen backend: dense convolution agrees with the naive backend") {
  for (ix stride : {1, 2}) {
    CAPTURE(stride);
    naive nb;
    fast fb({.threads = 2});
    pcnas::rng r(21);
    const pb::conv2d_desc d{{3, 9, 8, 2}, 16, 3, stride, 1};
    const host x = as_float(random_host(r, d.in.numel())), w = as_float(random_host(r, d.weight_size())),
               g = as_float(random_host(r, d.out().numel()));
    auto run = [&](auto& b) {
      using B = std::remove_reference_t<decltype(b)>;
      tensor_t<B> y = b.allocate(d.out().numel()), dx = b.allocate(d.in.numel()), dw = b.allocate(d.weight_size());
      b.conv2d_forward(d, put(b, x), put(b, w), y);
      b.conv2d_backward_data(d, put(b, g), put(b, w), dx);
      b.conv2d_backward_filter(d, put(b, x), put(b, g), dw);
      return std::vector<host>{get(b, y, d.out().numel()), get(b, dx, d.in.numel()), get(b, dw, d.weight_size())};
    };
    const auto want = run(nb);
    const auto got = run(fb);
    expect_close(got[0], want[0], cmp_tol, "conv2d y");
    expect_close(got[1], want[1], cmp_tol, "conv2d dx");
    expect_close(got[2], want[2], cmp_tol, "conv2d dw");
  }
}

TEST_CASE("eigen backend: pointwise convolution agrees with the naive backend") {
  struct shape {
    ix rows, in, out;
  };
  for (const shape s : {shape{37, 5, 7}, shape{1000, 24, 144}, shape{600, 144, 40}}) {
    CAPTURE(s.rows);
    CAPTURE(s.in);
    naive nb;
    fast fb({.threads = 2});
    pcnas::rng r(22);
    const pb::pointwise_desc d{s.rows, s.in, s.out};
    const host x = as_float(random_host(r, d.rows * d.in_channels)), w = as_float(random_host(r, d.weight_size())),
               g = as_float(random_host(r, d.rows * d.out_channels)),
               prior = as_float(random_host(r, d.rows * d.in_channels));
    auto run = [&](auto& b) {
      using B = std::remove_reference_t<decltype(b)>;
      tensor_t<B> y = b.allocate(d.rows * d.out_channels), dx = b.allocate(d.rows * d.in_channels),
                  dw = b.allocate(d.weight_size());
      tensor_t<B> acc = put(b, prior);
      b.pointwise_forward(d, put(b, x), put(b, w), y);
      b.pointwise_backward_data(d, put(b, g), put(b, w), dx, false);
      b.pointwise_backward_data(d, put(b, g), put(b, w), acc, true);
      b.pointwise_backward_filter(d, put(b, x), put(b, g), dw);
      return std::vector<host>{get(b, y, d.rows * d.out_channels), get(b, dx, d.rows * d.in_channels),
                               get(b, acc, d.rows * d.in_channels), get(b, dw, d.weight_size())};
    };
    const auto want = run(nb);
    const auto got = run(fb);
    expect_close(got[0], want[0], cmp_tol, "pointwise y");
    expect_close(got[1], want[1], cmp_tol, "pointwise dx");
    expect_close(got[2], want[2], cmp_tol, "pointwise dx accumulated");
    expect_close(got[3], want[3], cmp_tol, "pointwise dw");
  }
}

TEST_CASE("eigen backend: depthwise convolution agrees with the naive backend") {
  struct shape {
    ix n, h, w, c, k, s;
  };
  // Channel counts off the vector width, odd and even sizes, each unrolled kernel and stride,
  // and the generic paths (k = 9, stride 3).
  const shape shapes[] = {{2, 7, 7, 20, 3, 1},  {2, 7, 7, 20, 5, 1},  {2, 7, 7, 20, 7, 1},  {2, 9, 8, 20, 3, 2},
                          {2, 9, 8, 20, 5, 2},  {2, 14, 14, 20, 7, 2}, {1, 28, 28, 16, 7, 1}, {3, 6, 5, 4, 3, 1},
                          {2, 11, 10, 36, 9, 1}, {2, 10, 11, 12, 5, 3}, {1, 3, 2, 8, 7, 1},  {2, 8, 8, 48, 7, 2}};
  for (const shape s : shapes) {
    CAPTURE(s.h);
    CAPTURE(s.w);
    CAPTURE(s.c);
    CAPTURE(s.k);
    CAPTURE(s.s);
    naive nb;
    fast fb({.threads = 2});
    pcnas::rng r(23);
    const pb::depthwise_desc d{{s.n, s.h, s.w, s.c}, s.k, s.s};
    const host x = as_float(random_host(r, d.in.numel())), w = as_float(random_host(r, d.weight_size())),
               g = as_float(random_host(r, d.out().numel()));
    auto run = [&](auto& b, bool fused) {
      using B = std::remove_reference_t<decltype(b)>;
      tensor_t<B> y = b.allocate(d.out().numel()), dx = b.allocate(d.in.numel()), dw = b.allocate(d.weight_size());
      b.depthwise_forward(d, put(b, x), put(b, w), y);
      if constexpr (pb::has_depthwise_backward<B>) {
        if (fused) {
          b.depthwise_backward(d, put(b, x), put(b, w), put(b, g), dx, dw);
          return std::vector<host>{get(b, y, d.out().numel()), get(b, dx, d.in.numel()), get(b, dw, d.weight_size())};
        }
      }
      b.depthwise_backward_data(d, put(b, g), put(b, w), dx);
      b.depthwise_backward_filter(d, put(b, x), put(b, g), dw);
      return std::vector<host>{get(b, y, d.out().numel()), get(b, dx, d.in.numel()), get(b, dw, d.weight_size())};
    };
    const auto want = run(nb, false);
    for (bool fused : {false, true}) {
      CAPTURE(fused);
      const auto got = run(fb, fused);
      expect_close(got[0], want[0], cmp_tol, "depthwise y");
      expect_close(got[1], want[1], cmp_tol, "depthwise dx");
      expect_close(got[2], want[2], cmp_tol, "depthwise dw");
    }
  }
}

TEST_CASE("eigen backend: batch norm agrees with the naive backend in every mode, fused or not") {
  struct shape {
    ix rows, c;
  };
  for (const shape s : {shape{50, 3}, shape{6272, 40}, shape{3000, 144}}) {
    CAPTURE(s.rows);
    CAPTURE(s.c);
    naive nb;
    fast fb({.threads = 2});
    pcnas::rng r(24);
    const pb::batch_norm_desc d{s.rows, s.c, 1e-5};
    const ix n = d.rows * d.channels;
    // An offset mean (5) makes the variance computation earn its keep.
    const host x = as_float(random_host(r, n, 3.0, 7.0)), g = as_float(random_host(r, n)),
               res = as_float(random_host(r, n));
    const bn_host p = random_bn(r, d.channels);
    // kind: 0 plain, 1 relu6 (fused on Eigen, unfused on naive), 2 add
    auto run = [&](auto& b, int kind) {
      using B = std::remove_reference_t<decltype(b)>;
      bn_device<B> t(b, p);
      tensor_t<B> y = b.allocate(n), dx = b.allocate(n), yi = b.allocate(n);
      auto tx = put(b, x), tg = put(b, g), tr = put(b, res);
      if constexpr (pb::has_batch_norm_relu6<B>) {
        if (kind == 1) {
          b.batch_norm_relu6_forward_train(d, t.tensors(), tx, y, 0.25);
          b.batch_norm_relu6_backward(d, t.tensors(), tx, y, tg, dx);
          b.batch_norm_relu6_forward_inference(d, t.tensors(), tx, yi);
        }
      }
      if constexpr (pb::has_batch_norm_add<B>) {
        if (kind == 2) {
          b.batch_norm_add_forward_train(d, t.tensors(), tx, tr, y, 0.25);
          b.batch_norm_backward(d, t.tensors(), tx, tg, dx);
          b.batch_norm_add_forward_inference(d, t.tensors(), tx, tr, yi);
        }
      }
      const bool fused = (kind == 1 && pb::has_batch_norm_relu6<B>) || (kind == 2 && pb::has_batch_norm_add<B>);
      if (!fused) {
        b.batch_norm_forward_train(d, t.tensors(), tx, y, 0.25);
        if (kind == 1) {
          b.relu6_forward(n, y, y);
          tensor_t<B> gm = b.allocate(n);
          b.relu6_backward(n, y, tg, gm);
          b.batch_norm_backward(d, t.tensors(), tx, gm, dx);
        } else {
          b.batch_norm_backward(d, t.tensors(), tx, tg, dx);
        }
        b.batch_norm_forward_inference(d, t.tensors(), tx, yi);
        if (kind == 1) b.relu6_forward(n, yi, yi);
        if (kind == 2) {
          b.add(n, y, tr, y);
          b.add(n, yi, tr, yi);
        }
      }
      return std::vector<host>{get(b, y, n),
                               get(b, dx, n),
                               get(b, yi, n),
                               get(b, t.grad_gamma, d.channels),
                               get(b, t.grad_beta, d.channels),
                               get(b, t.running_mean, d.channels),
                               get(b, t.running_var, d.channels),
                               get(b, t.saved_mean, d.channels),
                               get(b, t.saved_inv_std, d.channels)};
    };
    const char* names[] = {"y", "dx", "inference y", "dgamma", "dbeta", "running mean", "running var", "saved mean",
                           "saved inv std"};
    for (int kind : {0, 1, 2}) {
      CAPTURE(kind);
      const auto want = run(nb, kind);
      const auto got = run(fb, kind);
      for (std::size_t i = 0; i < want.size(); ++i) expect_close(got[i], want[i], cmp_tol, std::string("bn ") + names[i]);
    }
  }
}

TEST_CASE("eigen backend: relu6, add, pooling, linear, loss and SGD agree with the naive backend") {
  naive nb;
  fast fb({.threads = 2});
  pcnas::rng r(25);
  const ix n = 50000;  // above the threading threshold
  const host x = as_float(random_host(r, n, -3, 9)), g = as_float(random_host(r, n)), c = as_float(random_host(r, n));
  const act_shape ps{5, 7, 7, 40};
  const host px = as_float(random_host(r, ps.numel())), pg = as_float(random_host(r, ps.n * ps.c));
  const pb::linear_desc ld{6, 32, 10};
  const host lx = as_float(random_host(r, ld.batch * ld.in_features)),
             lw = as_float(random_host(r, ld.in_features * ld.out_features)),
             lb = as_float(random_host(r, ld.out_features)), lg = as_float(random_host(r, ld.batch * ld.out_features));
  const pb::cross_entropy_desc cd{6, 10, 0.1};
  const host z = as_float(random_host(r, cd.batch * cd.classes, -4, 4));
  const std::vector<std::int32_t> labels{0, 9, 3, 3, 7, 1};
  const host sw = as_float(random_host(r, 1000)), sg = as_float(random_host(r, 1000)),
             sm = as_float(random_host(r, 1000));
  auto run = [&](auto& b) {
    using B = std::remove_reference_t<decltype(b)>;
    std::vector<host> out;
    tensor_t<B> y = b.allocate(n), dx = b.allocate(n);
    b.relu6_forward(n, put(b, x), y);
    b.relu6_backward(n, y, put(b, g), dx);
    out.push_back(get(b, y, n));
    out.push_back(get(b, dx, n));
    b.add(n, put(b, x), put(b, c), y);
    out.push_back(get(b, y, n));
    tensor_t<B> py = b.allocate(ps.n * ps.c), pdx = b.allocate(ps.numel());
    b.global_avg_pool_forward(ps, put(b, px), py);
    b.global_avg_pool_backward(ps, put(b, pg), pdx);
    out.push_back(get(b, py, ps.n * ps.c));
    out.push_back(get(b, pdx, ps.numel()));
    tensor_t<B> ly = b.allocate(ld.batch * ld.out_features), ldx = b.allocate(ld.batch * ld.in_features),
                ldw = b.allocate(ld.in_features * ld.out_features), ldb = b.allocate(ld.out_features);
    b.linear_forward(ld, put(b, lx), put(b, lw), put(b, lb), ly);
    b.linear_backward_data(ld, put(b, lg), put(b, lw), ldx);
    b.linear_backward_params(ld, put(b, lx), put(b, lg), ldw, ldb);
    out.push_back(get(b, ly, ld.batch * ld.out_features));
    out.push_back(get(b, ldx, ld.batch * ld.in_features));
    out.push_back(get(b, ldw, ld.in_features * ld.out_features));
    out.push_back(get(b, ldb, ld.out_features));
    auto lab = b.allocate_labels(cd.batch);
    b.upload_labels(labels, lab);
    tensor_t<B> stats = put(b, host{1.0, 2.0}), dz = b.allocate(cd.batch * cd.classes);
    b.softmax_cross_entropy_forward(cd, put(b, z), lab, stats);
    b.softmax_cross_entropy_backward(cd, put(b, z), lab, dz);
    out.push_back(get(b, stats, 2));
    out.push_back(get(b, dz, cd.batch * cd.classes));
    tensor_t<B> w = put(b, sw), m = put(b, sm);
    b.sgd_update({1000, 0.1, 0.9, 4e-5, true}, w, put(b, sg), m);
    out.push_back(get(b, w, 1000));
    out.push_back(get(b, m, 1000));
    return out;
  };
  const auto want = run(nb);
  const auto got = run(fb);
  const char* names[] = {"relu6 y", "relu6 dx", "add", "pool y", "pool dx", "linear y", "linear dx", "linear dw",
                         "linear dbias", "loss stats", "loss dlogits", "sgd w", "sgd momentum"};
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) expect_close(got[i], want[i], cmp_tol, names[i]);
}

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
