// Training semantics over both backends: batch-norm running statistics (momentum and the
// cumulative recalibration), the SGD step, the label-smoothed loss, where activations live,
// parameter enumeration and state save/load.
#include <pcnas/backend/eigen.hpp>
#include <pcnas/nn/conv_bn_relu6.hpp>
#include <pcnas/nn/head.hpp>
#include <pcnas/nn/loss.hpp>
#include <pcnas/nn/mbconv.hpp>
#include <pcnas/nn/optimizer.hpp>

#include "support/naive_backend.hpp"
#include "support/nn_testing.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

using namespace testing_nn;
namespace nn = pcnas::nn;

using naive = user_naive::backend<double>;
using fast = pcnas::backend::eigen::backend;

namespace {

// Per-channel mean and unbiased variance of an NHWC batch, computed here on the host.
std::pair<host, host> channel_stats(const host& x, ix C) {
  const ix rows = static_cast<ix>(x.size()) / C;
  host mean(static_cast<std::size_t>(C), 0.0), var(static_cast<std::size_t>(C), 0.0);
  for (ix r = 0; r < rows; ++r)
    for (ix c = 0; c < C; ++c) mean[c] += x[r * C + c] / double(rows);
  for (ix r = 0; r < rows; ++r)
    for (ix c = 0; c < C; ++c) var[c] += (x[r * C + c] - mean[c]) * (x[r * C + c] - mean[c]) / double(rows - 1);
  return {mean, var};
}

// The stem's conv output for a 1×1 kernel with weight 1 is its input, so its BN sees the input
// batch directly: that makes the expected running statistics a host computation.
template <class B>
nn::conv_bn_relu6<B> identity_stem(B& b, pcnas::rng& r, ix C) {
  nn::conv_bn_relu6<B> stem(b, {.in_channels = C, .height = 3, .width = 3, .out_channels = C, .kernel = 1}, r);
  host eye(static_cast<std::size_t>(C * C), 0.0);
  for (ix c = 0; c < C; ++c) eye[c * C + c] = 1.0;
  put_into(b, eye, stem.parameters()[0]->value);
  return stem;
}

}  // namespace

TEST_CASE_TEMPLATE("batch norm recalibration gives the cumulative average of the batches", B, naive, fast) {
  B b;
  nn::context<B> ctx(b);
  pcnas::rng init(1), r(2);
  const ix C = 3;
  auto stem = identity_stem(b, init, C);
  const act_shape s{4, 3, 3, C};
  // Training first moves the running statistics away from their reset values.
  for (int i = 0; i < 2; ++i) stem.forward(ctx, put_activation(ctx, as_float(random_host(r, s.numel(), 5, 9)), s), nn::mode::train);
  stem.release();
  const auto weights_before = get(b, stem.parameters()[0]->value, C * C);

  stem.reset_running_stats(b);
  auto buffers = stem.buffers();
  CHECK(get(b, buffers[0]->value, C) == host(C, 0.0));
  CHECK(get(b, buffers[1]->value, C) == host(C, 1.0));
  host mean_sum(C, 0.0), var_sum(C, 0.0);
  const int batches = 5;
  for (int i = 0; i < batches; ++i) {
    // Batches with different means and spreads, so that an exponential average would differ.
    const host x = as_float(random_host(r, s.numel(), -1.0 + i, 1.0 + 3.0 * i));
    stem.forward(ctx, put_activation(ctx, x, s), nn::mode::recalibrate);
    const auto [m, v] = channel_stats(x, C);
    for (ix c = 0; c < C; ++c) {
      mean_sum[c] += m[c];
      var_sum[c] += v[c];
    }
  }
  host want_mean(C), want_var(C);
  for (ix c = 0; c < C; ++c) {
    want_mean[c] = mean_sum[c] / batches;
    want_var[c] = var_sum[c] / batches;
  }
  expect_close(get(b, buffers[0]->value, C), want_mean, 1e-5, "recalibrated running mean");
  expect_close(get(b, buffers[1]->value, C), want_var, 1e-5, "recalibrated running variance");
  // Recalibration keeps nothing and changes no weight.
  CHECK(ctx.pool().in_use_elements() == 0);
  CHECK(get(b, stem.parameters()[0]->value, C * C) == weights_before);
}

TEST_CASE_TEMPLATE("batch norm in training moves the running statistics by the momentum", B, naive, fast) {
  B b;
  nn::context<B> ctx(b);
  pcnas::rng init(3), r(4);
  const ix C = 2;
  auto stem = identity_stem(b, init, C);
  const act_shape s{2, 3, 3, C};
  const host x = as_float(random_host(r, s.numel(), 1, 4));
  stem.forward(ctx, put_activation(ctx, x, s), nn::mode::train);
  const auto [m, v] = channel_stats(x, C);
  host want_mean(C), want_var(C);
  for (ix c = 0; c < C; ++c) {
    want_mean[c] = 0.9 * 0.0 + 0.1 * m[c];
    want_var[c] = 0.9 * 1.0 + 0.1 * v[c];
  }
  auto buffers = stem.buffers();
  expect_close(get(b, buffers[0]->value, C), want_mean, 1e-5, "running mean after one step");
  expect_close(get(b, buffers[1]->value, C), want_var, 1e-5, "running variance after one step");
  CHECK(ctx.pool().in_use_elements() > 0);  // kept for backward
  stem.release();
  CHECK(ctx.pool().in_use_elements() == 0);
}

TEST_CASE_TEMPLATE("SGD with Nesterov momentum matches a hand computation", B, naive, fast) {
  B b;
  nn::parameter<B> w = nn::make_parameter(b, "w", host{1.0, -2.0}, true);
  nn::parameter<B> g = nn::make_parameter(b, "bn.gamma", host{0.5, 0.5}, false);
  const nn::sgd<B> opt({.momentum = 0.9, .weight_decay = 0.1, .nesterov = true});
  // Step 1, grad (0.5, 1): d = g + 0.1·w = (0.6, 0.8); m = d; w -= 0.1·(d + 0.9·m) = 0.1·1.9·d.
  put_into(b, host{0.5, 1.0}, w.grad);
  put_into(b, host{1.0, 1.0}, g.grad);
  nn::parameter_list<B> params{&w, &g};
  opt.step(b, params, 0.1);
  expect_close(get(b, w.value, 2), host{1.0 - 0.114, -2.0 - 0.152}, 1e-6, "w after step 1");
  expect_close(get(b, w.momentum, 2), host{0.6, 0.8}, 1e-6, "momentum after step 1");
  // No decay on the BN parameter: d = 1, m = 1, step 0.1·1.9.
  expect_close(get(b, g.value, 2), host{0.5 - 0.19, 0.5 - 0.19}, 1e-6, "gamma after step 1");
  // Step 2, grad (0, 0): w = (0.886, -2.152); d = 0.1·w = (0.0886, -0.2152);
  // m = 0.9·(0.6, 0.8) + d = (0.6286, 0.5048); w -= 0.1·(d + 0.9·m).
  put_into(b, host{0.0, 0.0}, w.grad);
  opt.step(b, w, 0.1);
  const double m0 = 0.9 * 0.6 + 0.0886, m1 = 0.9 * 0.8 - 0.2152;
  expect_close(get(b, w.value, 2), host{0.886 - 0.1 * (0.0886 + 0.9 * m0), -2.152 - 0.1 * (-0.2152 + 0.9 * m1)}, 1e-6,
               "w after step 2");
  // Without Nesterov, the step is the momentum itself.
  nn::parameter<B> p = nn::make_parameter(b, "p", host{1.0}, false);
  put_into(b, host{2.0}, p.grad);
  nn::sgd<B>({.momentum = 0.9, .weight_decay = 0.0, .nesterov = false}).step(b, p, 0.5);
  expect_close(get(b, p.value, 1), host{0.0}, 1e-7, "plain momentum step");
}

TEST_CASE("the cosine schedule runs from the base rate to the final one") {
  CHECK(nn::cosine_learning_rate(0.1, 0, 100) == doctest::Approx(0.1));
  CHECK(nn::cosine_learning_rate(0.1, 50, 100) == doctest::Approx(0.05));
  CHECK(nn::cosine_learning_rate(0.1, 100, 100, 0.001) == doctest::Approx(0.001));
  CHECK(nn::cosine_learning_rate(0.1, 25, 100) == doctest::Approx(0.05 * (1 + std::sqrt(0.5))));
}

TEST_CASE_TEMPLATE("label-smoothed cross-entropy matches a hand computation", B, naive, fast) {
  B b;
  nn::context<B> ctx(b);
  nn::cross_entropy<B> ce(b);  // smoothing 0.1 by default
  CHECK(ce.options().label_smoothing == 0.1);
  // Sample 0: logits (0, 0), label 0: p = (1/2, 1/2), loss = ln 2; the tie goes to class 0,
  // which is right. Sample 1: logits (ln 3, 0), label 1: p = (3/4, 1/4), targets (0.05, 0.95),
  // loss = 0.05·ln(4/3) + 0.95·ln 4; wrong.
  const host z{0.0, 0.0, std::log(3.0), 0.0};
  auto logits = put_activation(ctx, as_float(z), {2, 1, 1, 2});
  auto labels = b.allocate_labels(2);
  const std::vector<std::int32_t> lab{0, 1};
  b.upload_labels(lab, labels);
  ce.forward(b, logits, labels);
  const auto s = ce.read(b);
  const double want = std::log(2.0) + 0.05 * std::log(4.0 / 3.0) + 0.95 * std::log(4.0);
  CHECK(s.loss_sum == doctest::Approx(want).epsilon(1e-6));
  CHECK(s.mean_loss() == doctest::Approx(want / 2).epsilon(1e-6));
  CHECK(s.correct == 1.0);
  CHECK(s.samples == 2);
  CHECK(s.accuracy() == 0.5);
  // Gradient of the mean loss: (p − target)/batch.
  auto d = ce.backward(ctx, logits, labels);
  expect_close(get_activation(ctx, d), host{(0.5 - 0.95) / 2, (0.5 - 0.05) / 2, (0.75 - 0.05) / 2, (0.25 - 0.95) / 2}, 1e-6, "dlogits");
  // Totals accumulate until reset.
  ce.forward(b, logits, labels);
  CHECK(ce.read(b).loss_sum == doctest::Approx(2 * want).epsilon(1e-6));
  ce.reset(b);
  CHECK(ce.read(b).samples == 0);
  // No smoothing: the plain cross-entropy.
  nn::cross_entropy<B> plain(b, {.label_smoothing = 0.0});
  plain.forward(b, logits, labels);
  CHECK(plain.read(b).loss_sum == doctest::Approx(std::log(2.0) + std::log(4.0)).epsilon(1e-6));
}

TEST_CASE_TEMPLATE("only the sampled path holds activations, and the pool reuses its tensors", B, naive, fast) {
  B b;
  nn::context<B> ctx(b);
  pcnas::rng init(5), r(6);
  // Two choices of one layer, as a choice block holds them.
  nn::mbconv<B> small(b, {.in_channels = 8, .height = 6, .width = 6, .out_channels = 8, .kernel = 3, .expansion = 3}, init);
  nn::mbconv<B> big(b, {.in_channels = 8, .height = 6, .width = 6, .out_channels = 8, .kernel = 7, .expansion = 6}, init);
  const act_shape s{2, 6, 6, 8};
  const host x = as_float(random_host(r, s.numel()));
  auto step = [&](nn::mbconv<B>& m) {
    auto y = m.forward(ctx, put_activation(ctx, x, s), nn::mode::train);
    const ix held = ctx.pool().in_use_elements() - y.shape().numel();
    auto dx = m.backward(ctx, std::move(y));
    return held;
  };
  const ix held_big = step(big);
  CHECK(ctx.pool().in_use_elements() == 0);
  CHECK_FALSE(big.holds_activations());
  // x, z1, a1, z2, a2 and z3: the input, four hidden-sized tensors and one of the output's size;
  // the fused path keeps neither a1 nor a2.
  const ix hidden_tensors = pcnas::backend::has_fused_mbconv<B> ? 2 : 4;
  CHECK(held_big == 2 * 6 * 6 * 8 * 2 + hidden_tensors * 2 * 6 * 6 * 48);
  auto y_small = small.forward(ctx, put_activation(ctx, x, s), nn::mode::train);
  CHECK(small.holds_activations());
  CHECK_FALSE(big.holds_activations());  // not on this path: holds nothing
  small.backward(ctx, std::move(y_small));
  CHECK_FALSE(small.holds_activations());
  CHECK(ctx.pool().in_use_elements() == 0);
  // A second identical step allocates nothing new.
  const ix pooled = ctx.pool().idle_elements();
  step(small);
  CHECK(ctx.pool().idle_elements() == pooled);
  // Inference keeps nothing either.
  auto y = big.forward(ctx, put_activation(ctx, x, s), nn::mode::eval);
  CHECK(ctx.pool().in_use_elements() == y.shape().numel());
  // Backward without a training forward is an error.
  CHECK_THROWS_AS(big.backward(ctx, std::move(y)), std::logic_error);
}

TEST_CASE_TEMPLATE("parameters are enumerated with names and decay flags, and state saves and loads", B, naive, fast) {
  B b;
  nn::context<B> ctx(b);
  pcnas::rng init(7), r(8);
  nn::mbconv<B> m(b, {.in_channels = 4, .height = 5, .width = 5, .out_channels = 4, .kernel = 3, .expansion = 3}, init);
  auto params = m.parameters();
  std::vector<std::string> names;
  for (auto* p : params) names.push_back(p->name);
  CHECK(names == std::vector<std::string>{"expand.weight", "expand_bn.gamma", "expand_bn.beta", "depthwise.weight",
                                          "depthwise_bn.gamma", "depthwise_bn.beta", "project.weight",
                                          "project_bn.gamma", "project_bn.beta"});
  for (auto* p : params) CHECK_MESSAGE(p->decay == (p->name.find("bn") == std::string::npos), p->name);
  CHECK(params[0]->size == 4 * 12);
  CHECK(params[3]->size == 3 * 3 * 12);
  CHECK(m.buffers().size() == 6);
  nn::head<B> h(b, {.in_channels = 4, .height = 5, .width = 5, .features = 6, .classes = 3}, init);
  CHECK(h.parameters().back()->name == "fc.bias");

  // Train a step, save, train another step, load: the outputs come back exactly.
  const act_shape s{2, 5, 5, 4};
  const host x = as_float(random_host(r, s.numel()));
  const nn::sgd<B> opt;
  auto train_step = [&] {
    auto y = m.forward(ctx, put_activation(ctx, x, s), nn::mode::train);
    auto dx = m.backward(ctx, std::move(y));  // dL/dy = y: any gradient will do
    opt.step(b, m.parameters(), 0.1);
  };
  auto eval = [&] { return get_activation(ctx, m.forward(ctx, put_activation(ctx, x, s), nn::mode::eval)); };
  train_step();
  auto p = m.parameters();
  auto bufs = m.buffers();
  const auto state = nn::save_state<B>(b, p, bufs, {.momentum = true});
  CHECK(static_cast<ix>(state.size()) == nn::state_size<B>(p, bufs, {.momentum = true}));
  const host before = eval();
  train_step();
  CHECK(eval() != before);
  nn::load_state<B>(b, p, bufs, state, {.momentum = true});
  CHECK(eval() == before);
  std::vector<pcnas::backend::value_type_t<B>> short_state(state.begin(), state.end() - 1);
  CHECK_THROWS_AS(nn::load_state<B>(b, p, bufs, short_state, {.momentum = true}), std::invalid_argument);
}

TEST_CASE("modules reject an input of the wrong shape with a message that names both shapes") {
  fast b;
  nn::context<fast> ctx(b);
  pcnas::rng init(9);
  nn::mbconv<fast> m(b, {.in_channels = 8, .height = 6, .width = 6, .out_channels = 8}, init);
  try {
    m.forward(ctx, ctx.acquire({2, 6, 6, 4}), nn::mode::eval);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) ==
          "pcnas::nn::mbconv: the input has shape (NHWC) [2, 6, 6, 4] but the module was built for [n, 6, 6, 8]");
  }
  CHECK_THROWS_AS(nn::mbconv<fast>(b, {.kernel = 4}, init), std::invalid_argument);
}

TEST_CASE("every backend starts from the same initial weights") {
  naive nb;
  fast fb;
  pcnas::rng ra(10), rb(10);
  nn::mbconv<naive> mn(nb, {.in_channels = 8, .height = 6, .width = 6, .out_channels = 16, .kernel = 5}, ra);
  nn::mbconv<fast> mf(fb, {.in_channels = 8, .height = 6, .width = 6, .out_channels = 16, .kernel = 5}, rb);
  auto pn = mn.parameters();
  auto pf = mf.parameters();
  REQUIRE(pn.size() == pf.size());
  for (std::size_t i = 0; i < pn.size(); ++i) {
    const host a = get(nb, pn[i]->value, pn[i]->size), c = get(fb, pf[i]->value, pf[i]->size);
    expect_close(c, a, 1e-7, pn[i]->name);
  }
  // He (fan-out) initialisation: the expansion weights have std sqrt(2/48).
  const host w = get(nb, pn[0]->value, pn[0]->size);
  const double var = std::inner_product(w.begin(), w.end(), w.begin(), 0.0) / double(w.size());
  CHECK(std::sqrt(var) == doctest::Approx(std::sqrt(2.0 / 48.0)).epsilon(0.15));
}
