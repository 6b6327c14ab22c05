// The op modules beyond the conformance kit (which checks every module's gradients by finite
// differences and each backend's fused paths against the reference): the gradients of a whole
// path, and the Eigen backend's op-by-op paths (its fused paths hidden) at the fmnist shapes.
#include <pcnas/backend/eigen.hpp>
#include <pcnas/nn/conv_bn_relu6.hpp>
#include <pcnas/nn/head.hpp>
#include <pcnas/nn/loss.hpp>
#include <pcnas/nn/mbconv.hpp>

#include "support/naive_backend.hpp"
#include "support/nn_testing.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

using namespace testing_nn;
namespace nn = pcnas::nn;

using naive = user_naive::backend<double>;
using fast = pcnas::backend::eigen::backend;

// The Eigen backend with its fused blocks hidden, so that the modules' op-by-op paths run on it
// too (name hiding makes the requires-expressions fail).
struct fast_unfused : fast {
  using fast::fast;
  void mbconv_forward() = delete;
  void mbconv_backward() = delete;
  void conv_bn_relu6_forward() = delete;
  void conv_bn_relu6_backward() = delete;
  void head_forward() = delete;
  void head_backward() = delete;
};
static_assert(pcnas::backend::has_fused_mbconv<fast> && !pcnas::backend::has_fused_mbconv<fast_unfused>);
static_assert(pcnas::backend::has_fused_conv_bn_relu6<fast> && !pcnas::backend::has_fused_conv_bn_relu6<fast_unfused>);
static_assert(pcnas::backend::has_fused_head<fast> && !pcnas::backend::has_fused_head<fast_unfused>);
static_assert(pcnas::backend::check_backend<fast_unfused>());

namespace {

constexpr double fd_tol = 1e-6;
constexpr double cmp_tol = 1e-4;

}  // namespace

TEST_CASE("a whole path (stem, two MBConvs, head, loss): gradients match finite differences") {
  naive b;
  nn::context<naive> ctx(b);
  pcnas::rng init(8);
  nn::conv_bn_relu6<naive> stem(b, {.in_channels = 1, .height = 8, .width = 8, .out_channels = 4}, init);
  nn::mbconv<naive> l1(b, {.in_channels = 4, .height = 8, .width = 8, .out_channels = 6, .kernel = 3, .expansion = 3,
                           .stride = 2},
                       init);
  nn::mbconv<naive> l2(b, {.in_channels = 6, .height = 4, .width = 4, .out_channels = 6, .kernel = 5, .expansion = 6,
                           .stride = 1},
                       init);
  nn::head<naive> head(b, {.in_channels = 6, .height = 4, .width = 4, .features = 12, .classes = 3}, init);
  nn::cross_entropy<naive> ce(b);
  pcnas::rng r(9);
  const act_shape in{4, 8, 8, 1};
  const host x = random_host(r, in.numel());
  auto labels = b.allocate_labels(4);
  const std::vector<std::int32_t> lab{0, 2, 1, 2};
  b.upload_labels(lab, labels);
  auto forward = [&](nn::mode m) {
    auto a = stem.forward(ctx, put_activation(ctx, x, in), m);
    a = l1.forward(ctx, std::move(a), m);
    a = l2.forward(ctx, std::move(a), m);
    return head.forward(ctx, std::move(a), m);
  };
  auto loss = [&] {
    auto logits = forward(nn::mode::train);
    stem.release();
    l1.release();
    l2.release();
    head.release();
    ce.reset(b);
    ce.forward(b, logits, labels);
    return ce.read(b).mean_loss();
  };
  auto logits = forward(nn::mode::train);
  auto d = ce.backward(ctx, logits, labels);
  logits.reset();
  d = head.backward(ctx, std::move(d));
  d = l2.backward(ctx, std::move(d));
  d = l1.backward(ctx, std::move(d));
  d = stem.backward(ctx, std::move(d));
  CHECK_FALSE(static_cast<bool>(d));  // the stem gives no input gradient by default
  CHECK(ctx.pool().in_use_elements() == 0);
  for (auto list : {stem.parameters(), l1.parameters(), l2.parameters(), head.parameters()})
    for (auto* p : list) {
      host v = p->value.data;
      const host analytic = p->grad.data;
      check_gradient(loss, v, analytic, [&] { p->value.data = v; }, "path " + p->name, fd_tol, 1e-6, 24);
    }
}

// ---------------------------------------------------------------------------------------------
// Eigen against naive, whole modules
// ---------------------------------------------------------------------------------------------

namespace {

struct named {
  std::string name;
  host values;
};

template <class B, class M>
std::vector<named> module_run(B& b, M& m, act_shape in, const host& x, const host& g) {
  nn::context<B> ctx(b);
  std::vector<named> out;
  // Training forward and backward.
  auto y = m.forward(ctx, put_activation(ctx, x, in), nn::mode::train);
  out.push_back({"train output", get_activation(ctx, y)});
  y.reset();
  auto dx = m.backward(ctx, put_activation(ctx, g, m.output_shape(in.n)));
  if (dx) out.push_back({"dx", get_activation(ctx, dx)});
  dx.reset();
  for (auto* p : m.parameters()) out.push_back({"grad " + p->name, get(b, p->grad, p->size)});
  for (auto* s : m.buffers()) out.push_back({"train " + s->name, get(b, s->value, s->size)});
  // Inference with the running statistics.
  out.push_back({"eval output", get_activation(ctx, m.forward(ctx, put_activation(ctx, x, in), nn::mode::eval))});
  // Recalibration: output with batch statistics, running stats = this batch's.
  m.reset_running_stats(b);
  out.push_back({"recalibrate output",
                 get_activation(ctx, m.forward(ctx, put_activation(ctx, x, in), nn::mode::recalibrate))});
  for (auto* s : m.buffers()) out.push_back({"recalibrated " + s->name, get(b, s->value, s->size)});
  CHECK(ctx.pool().in_use_elements() == 0);
  return out;
}

// The batch norms of the expansion and of the depthwise convolution feed another batch norm,
// which is invariant to their scale and (away from borders and clipping) their shift, so the
// gradients of their γ and β are sums that cancel to a small fraction of their terms, and float
// rounding of the terms shows in the result. For those the bound is 2e-3 or ten times the error
// of a plain float loop that sums in double (user_naive::backend<float>), whichever is larger;
// for everything else it is 1e-4.
inline bool inner_bn(const std::string& name) {
  return name.find("grad expand_bn") == 0 || name.find("grad depthwise_bn") == 0;
}

template <class... Fast, class Make>
void compare_module(Make make, act_shape in, std::uint64_t seed, const std::string& what) {
  pcnas::rng r(seed + 1);
  const host x = as_float(random_host(r, in.numel(), -1, 2));
  auto run = [&](auto& b) {
    pcnas::rng init(seed);  // the same seed: the same initial weights on every backend
    auto m = make(b, init);
    pcnas::rng gr(seed + 2);  // the same upstream gradient for every backend
    const host g = as_float(random_host(gr, m.output_shape(in.n).numel()));
    return module_run(b, m, in, x, g);
  };
  naive nd;
  user_naive::backend<float> nf;
  const auto want = run(nd);
  const auto plain_float = run(nf);
  auto check = [&](auto& fb, const std::string& variant) {
    const auto got = run(fb);
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      double tol = cmp_tol;
      if (inner_bn(want[i].name)) tol = std::max(2e-3, 10 * relative_error(plain_float[i].values, want[i].values).error);
      expect_close(got[i].values, want[i].values, tol, what + variant + ": " + want[i].name);
    }
  };
  (
      [&] {
        Fast fb({.threads = 2});
        check(fb, std::is_same_v<Fast, fast> ? " (fused)" : " (op by op)");
      }(),
      ...);
}

}  // namespace

TEST_CASE("eigen backend, op by op: whole modules agree with the naive backend") {
  SUBCASE("stem") {
    auto make = [](auto& b, pcnas::rng& r) {
      using B = std::remove_reference_t<decltype(b)>;
      return nn::conv_bn_relu6<B>(b, {.in_channels = 1, .height = 28, .width = 28, .out_channels = 16}, r);
    };
    compare_module<fast_unfused>(make, {3, 28, 28, 1}, 40, "stem");
    // Several input channels, stride 2, channels off the vector width, the input gradient.
    auto make2 = [](auto& b, pcnas::rng& r) {
      using B = std::remove_reference_t<decltype(b)>;
      return nn::conv_bn_relu6<B>(b, {.in_channels = 3, .height = 9, .width = 8, .out_channels = 20, .kernel = 3,
                                      .stride = 2, .input_gradient = true},
                                  r);
    };
    compare_module<fast_unfused>(make2, {2, 9, 8, 3}, 41, "stem s2");
  }
  SUBCASE("MBConv at fmnist shapes") {
    struct kind {
      ix in, out, h, k, e, s, n;
    };
    const kind kinds[] = {
        {16, 24, 28, 7, 3, 2, 2}, {24, 24, 14, 5, 6, 1, 3}, {24, 40, 14, 3, 6, 2, 3}, {40, 40, 7, 7, 6, 1, 4},
        {40, 80, 7, 5, 3, 1, 4},  {80, 80, 7, 3, 6, 1, 4},  {24, 24, 14, 3, 1, 1, 3}, {16, 24, 28, 5, 1, 2, 2},
    };
    for (const kind& k : kinds) {
      const std::string name = "MBConv " + std::to_string(k.in) + "->" + std::to_string(k.out) + " k" +
                               std::to_string(k.k) + "e" + std::to_string(k.e) + " s" + std::to_string(k.s);
      CAPTURE(name);
      auto make = [&](auto& b, pcnas::rng& r) {
        using B = std::remove_reference_t<decltype(b)>;
        return nn::mbconv<B>(b, {.in_channels = k.in, .height = k.h, .width = k.h, .out_channels = k.out,
                                 .kernel = k.k, .expansion = k.e, .stride = k.s},
                             r);
      };
      const act_shape in{k.n, k.h, k.h, k.in};
      const std::uint64_t seed = 50 + static_cast<std::uint64_t>(k.k * 100 + k.e * 10 + k.s);
      compare_module<fast_unfused>(make, in, seed, name);
    }
  }
  SUBCASE("MBConv, odd shapes") {
    struct kind {
      ix in, out, h, k, e, s, n;
    };
    // Channel counts off the vector width, odd sizes, the generic kernel path.
    const kind kinds[] = {{5, 5, 9, 3, 3, 1, 3}, {6, 10, 9, 5, 4, 2, 2}, {7, 7, 6, 9, 2, 1, 2}, {12, 12, 5, 3, 1, 1, 3}};
    for (const kind& k : kinds) {
      const std::string name = "MBConv " + std::to_string(k.in) + "->" + std::to_string(k.out) + " k" +
                               std::to_string(k.k) + "e" + std::to_string(k.e) + " s" + std::to_string(k.s);
      CAPTURE(name);
      compare_module<fast_unfused>(
          [&](auto& b, pcnas::rng& r) {
            using B = std::remove_reference_t<decltype(b)>;
            return nn::mbconv<B>(b, {.in_channels = k.in, .height = k.h, .width = k.h, .out_channels = k.out,
                                     .kernel = k.k, .expansion = k.e, .stride = k.s},
                                 r);
          },
          {k.n, k.h, k.h, k.in}, 50 + static_cast<std::uint64_t>(k.k * 100 + k.e * 10 + k.s), name);
    }
  }
  SUBCASE("head") {
    auto make = [](auto& b, pcnas::rng& r) {
      using B = std::remove_reference_t<decltype(b)>;
      return nn::head<B>(b, {.in_channels = 80, .height = 7, .width = 7, .features = 256, .classes = 10}, r);
    };
    compare_module<fast_unfused>(make, {6, 7, 7, 80}, 60, "head");
    auto make2 = [](auto& b, pcnas::rng& r) {
      using B = std::remove_reference_t<decltype(b)>;
      return nn::head<B>(b, {.in_channels = 12, .height = 3, .width = 5, .features = 20, .classes = 3}, r);
    };
    compare_module<fast_unfused>(make2, {4, 3, 5, 12}, 61, "small head");
  }
}

// ---------------------------------------------------------------------------------------------
// The Eigen backend's evaluation pipeline against its stage-by-stage forward, bit for bit
// ---------------------------------------------------------------------------------------------

namespace {

namespace ed = pcnas::backend::eigen::detail;

std::vector<float> uniform_floats(pcnas::rng& r, ix n, double lo, double hi) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = static_cast<float>(lo + (hi - lo) * r.uniform01());
  return v;
}

// A batch norm's tensors with random running statistics (the pipeline reads gamma, beta and those).
struct bn_state {
  std::vector<float> gamma, beta, mean, var, spare;
  bn_state(pcnas::rng& r, ix C)
      : gamma(uniform_floats(r, C, 0.5, 1.5)), beta(uniform_floats(r, C, -0.5, 0.5)), mean(uniform_floats(r, C, -1, 1)),
        var(uniform_floats(r, C, 0.2, 2)), spare(static_cast<std::size_t>(4 * C)) {}
  ed::bn_ptrs ptrs() {
    const std::size_t C = gamma.size();
    return {gamma.data(), beta.data(), mean.data(), var.data(), spare.data(), spare.data() + C, spare.data() + 2 * C,
            spare.data() + 3 * C};
  }
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("eigen backend: the fused evaluation forwards (MBConv pipeline, stem, head) give the stage-by-stage bits") {
  struct kind {
    ix in, out, h, k, e, s;
  };
  // The fmnist shapes (expansion 1 included), odd channel counts and sizes, the generic kernel.
  const kind kinds[] = {{16, 24, 28, 7, 6, 2}, {24, 24, 14, 5, 3, 1}, {24, 40, 14, 3, 6, 2}, {40, 40, 7, 7, 6, 1},
                        {40, 80, 7, 5, 3, 1},  {80, 80, 7, 3, 6, 1},  {8, 16, 14, 3, 1, 2},  {16, 16, 7, 5, 1, 1},
                        {5, 5, 9, 3, 3, 1},    {6, 10, 9, 5, 4, 2},   {7, 7, 6, 9, 2, 1}};
  const auto check = [](const kind& k, ix n, int threads) {
    CAPTURE(k.in);
    CAPTURE(k.out);
    CAPTURE(k.h);
    CAPTURE(k.k);
    CAPTURE(k.e);
    CAPTURE(n);
    CAPTURE(threads);
    const pcnas::backend::mbconv_desc d{{n, k.h, k.h, k.in}, k.out, k.k, k.e, k.s, 1e-5};
    const ix Ch = d.hidden();
    pcnas::rng r(static_cast<std::uint64_t>(1000 + k.in * 7 + k.k * 13 + n + threads));
    auto w1 = uniform_floats(r, k.in * Ch, -0.5, 0.5), wd = uniform_floats(r, k.k * k.k * Ch, -0.5, 0.5),
         w3 = uniform_floats(r, Ch * k.out, -0.3, 0.3);
    bn_state b1(r, Ch), b2(r, Ch), b3(r, k.out);
    const auto x = uniform_floats(r, d.in.numel(), -1, 2);
    const ed::mbconv_ptrs t{d.expands() ? w1.data() : nullptr, nullptr, b1.ptrs(), wd.data(), nullptr, b2.ptrs(),
                            w3.data(), nullptr, b3.ptrs()};
    ed::scratch ws;
    ws.resize_threads(threads);
    std::vector<float> z1(static_cast<std::size_t>(d.hidden_in().numel())),
        z2(static_cast<std::size_t>(d.hidden_out().numel())), z3(static_cast<std::size_t>(d.out().numel())),
        want(z3.size()), got(z3.size(), -7.0f);
    ed::mbconv_forward_staged(threads, ws, d, t, false, 0.0, x.data(), z1.data(), z2.data(), z3.data(), want.data());
    ed::mbconv_forward_eval(threads, ws, d, t, x.data(), got.data());
    CHECK(same_bits(got, want));
  };
  for (const kind& k : kinds)
    for (ix n : {1, 3, 13, 41})
      for (int threads : {1, 2, 3}) check(k, n, threads);
  // 177·81 = 14·1024 + 1 rows: both products end on a block of one row (a matrix-vector product).
  check({5, 5, 9, 3, 3, 1}, 177, 1);
  // The stem: the convolution with BN + ReLU6 applied as it stores, against the convolution then
  // the batch norm's pass.
  for (const auto& [ci, h, co, s] : {std::array<ix, 4>{1, 28, 16, 1}, std::array<ix, 4>{3, 9, 20, 2}})
    for (ix n : {1, 5})
      for (int threads : {1, 2}) {
        CAPTURE(ci);
        CAPTURE(n);
        CAPTURE(threads);
        const pcnas::backend::conv2d_desc d{{n, h, h, ci}, co, 3, s, 1};
        pcnas::rng r(static_cast<std::uint64_t>(3000 + ci + n + threads));
        auto wt = uniform_floats(r, 9 * ci * co, -0.5, 0.5);
        bn_state bn(r, co);
        const auto x = uniform_floats(r, d.in.numel(), -1, 2);
        ed::scratch ws;
        ws.resize_threads(threads);
        const ix out = d.out().numel();
        std::vector<float> z(static_cast<std::size_t>(out)), want(z.size()), got(z.size(), -7.0f);
        auto sc = ed::padded_channels(co), sh = ed::padded_channels(co);
        ed::bn_running_affine(co, bn.ptrs(), 1e-5, sc.data(), sh.data());
        ed::conv2d_forward_run(threads, ws, d, x.data(), wt.data(), z.data(), nullptr);
        ed::bn_apply(threads, d.out().rows(), co, z.data(), sc.data(), sh.data(), ed::bn_epilogue::relu6, nullptr,
                     want.data());
        ed::stem_forward(threads, ws, d, 1e-5, wt.data(), bn.ptrs(), false, 0.0, x.data(), nullptr, got.data());
        CHECK(same_bits(got, want));
      }
  // The head: 1×1 convolution, BN + ReLU6 and the mean over the pixels.
  for (const auto& [ci, h, w, f] : {std::array<ix, 4>{80, 7, 7, 256}, std::array<ix, 4>{12, 3, 5, 20}})
    for (ix n : {1, 6, 41, 100})
      for (int threads : {1, 2, 3}) {
        CAPTURE(ci);
        CAPTURE(n);
        CAPTURE(threads);
        const pcnas::backend::head_desc d{{n, h, w, ci}, f, 1e-5};
        pcnas::rng r(static_cast<std::uint64_t>(2000 + ci + n + threads));
        auto wt = uniform_floats(r, ci * f, -0.3, 0.3);
        bn_state bn(r, f);
        const auto x = uniform_floats(r, d.in.numel(), -1, 2);
        ed::scratch ws;
        ws.resize_threads(threads);
        std::vector<float> z(static_cast<std::size_t>(d.hidden().numel())), want(static_cast<std::size_t>(n * f)),
            got(want.size(), -7.0f);
        ed::head_forward_staged(threads, ws, d, wt.data(), bn.ptrs(), false, 0.0, x.data(), z.data(), want.data());
        ed::head_forward_eval(threads, ws, d, wt.data(), bn.ptrs(), x.data(), got.data());
        CHECK(same_bits(got, want));
      }
}
