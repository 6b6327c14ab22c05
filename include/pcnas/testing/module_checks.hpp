// The conformance checks of whole op modules on a backend: every output, gradient and statistic
// against the same module on the reference backend, and every gradient against finite
// differences on the backend itself. The library's modules take a backend's fused paths (a whole
// MBConv, the stem, the head) when it has them, so this is where those paths are checked; a new
// op's module is checked the same way (docs/ops.md).
#pragma once

#include <pcnas/nn/context.hpp>
#include <pcnas/nn/conv_bn_relu6.hpp>
#include <pcnas/nn/head.hpp>
#include <pcnas/nn/mbconv.hpp>
#include <pcnas/testing/compare.hpp>
#include <pcnas/testing/naive_backend.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace pcnas::testing {

struct named_values {
  std::string name;
  host values;
};

// One module through a training forward and backward, an inference forward and a
// recalibration: what comes out of each, named.
template <class B, class M>
std::vector<named_values> module_outputs(B& b, M& m, act_shape in, const host& x, const host& dy) {
  nn::context<B> ctx(b);
  std::vector<named_values> out;
  auto y = m.forward(ctx, put_activation(ctx, x, in), nn::mode::train);
  out.push_back({"train output", get_activation(ctx, y)});
  y.reset();
  auto dx = m.backward(ctx, put_activation(ctx, dy, m.output_shape(in.n)));
  if (dx) out.push_back({"dx", get_activation(ctx, dx)});
  dx.reset();
  for (auto* p : m.parameters()) out.push_back({"grad " + p->name, get(b, p->grad, p->size)});
  for (auto* s : m.buffers()) out.push_back({"train " + s->name, get(b, s->value, s->size)});
  out.push_back({"eval output", get_activation(ctx, m.forward(ctx, put_activation(ctx, x, in), nn::mode::eval))});
  m.reset_running_stats(b);
  out.push_back({"recalibrate output",
                 get_activation(ctx, m.forward(ctx, put_activation(ctx, x, in), nn::mode::recalibrate))});
  for (auto* s : m.buffers()) out.push_back({"recalibrated " + s->name, get(b, s->value, s->size)});
  CHECK_MESSAGE(ctx.pool().in_use_elements() == 0, "the module left activations in use after release");
  return out;
}

// A batch norm that feeds another batch norm is invariant to its scale and (away from borders
// and clipping) its shift, so the gradients of its γ and β are sums that cancel to a small
// fraction of their terms: rounding of the terms shows in the result. Those are held to 20 times
// the reference tolerance or ten times the error of the reference loops run in the backend's own
// precision, whichever is larger.
inline bool cancels(const std::string& name) {
  return name.find("grad expand_bn") == 0 || name.find("grad depthwise_bn") == 0 || name.find("grad inner_bn") == 0;
}

// `make(backend, rng)` builds the module on any backend; the same seed gives every backend the
// same initial weights. Compares B's module with the reference's.
template <class B, class Make>
void check_module_against_reference(B& b, Make make, act_shape in, std::uint64_t seed, const tolerance& tol,
                                    const std::string& what) {
  pcnas::rng r(seed + 1);
  const host x = as_float(random_host(r, in.numel(), -1, 2));
  auto run = [&](auto& be) {
    pcnas::rng init(seed);
    auto m = make(be, init);
    pcnas::rng gr(seed + 2);
    const host dy = as_float(random_host(gr, m.output_shape(in.n).numel()));
    return module_outputs(be, m, in, x, dy);
  };
  naive_backend<double> ref;
  naive_backend<value_type_t<B>> plain;  // the reference's loops in B's precision
  const auto want = run(ref);
  const auto rounding = run(plain);
  const auto got = run(b);
  REQUIRE_MESSAGE(got.size() == want.size(), what << ": the module gives " << got.size() << " results where the reference gives "
                                                  << want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CAPTURE(want[i].name);
    REQUIRE(got[i].name == want[i].name);
    double t = tol.reference;
    if (cancels(want[i].name))
      t = std::max(20 * tol.reference, 10 * relative_error(rounding[i].values, want[i].values).error);
    expect_close(got[i].values, want[i].values, t, what + ": " + want[i].name + " against the reference");
  }
}

// Finite differences of L = Σ R·module(x) (training mode) against the module's backward, for
// the input (when the module returns its gradient) and every parameter, on B when B computes in
// double. A float step that moves a whole channel's worth of pixels straddles ReLU6 kinks at
// many of them, so for a float backend this check runs on the reference backend in double, and
// check_module_against_reference ties B's gradients to those.
template <class B, class Make>
void check_module_gradients(B& b, Make make, act_shape in, std::uint64_t seed, const tolerance& tol,
                            const std::string& what) {
  if constexpr (!std::is_same_v<value_type_t<B>, double>) {
    (void)b;
    (void)tol;
    naive_backend<double> ref;
    check_module_gradients(ref, make, in, seed, tolerance_for<double>(), what + " (on the reference)");
    return;
  } else {
  nn::context<B> ctx(b);
  pcnas::rng init(seed);
  auto m = make(b, init);
  pcnas::rng r(seed + 3);
  const host x = as_float(random_host(r, in.numel(), -1.5, 2.0));
  const act_shape out = m.output_shape(in.n);
  const host R = as_float(random_host(r, out.numel()));
  auto loss_at = [&](const host& input) {
    auto y = m.forward(ctx, put_activation(ctx, input, in), nn::mode::train);
    const double l = dot(get_activation(ctx, y), R);
    y.reset();
    m.release();
    return l;
  };
  auto y = m.forward(ctx, put_activation(ctx, x, in), nn::mode::train);
  y.reset();
  auto dx = m.backward(ctx, put_activation(ctx, R, out));
  if (dx) check_gradient_fd<value_type_t<B>>(loss_at, x, get_activation(ctx, dx), tol, what + ": dx by finite differences");
  dx.reset();
  for (auto* p : m.parameters()) {
    const host value = get(b, p->value, p->size);
    const host analytic = get(b, p->grad, p->size);
    check_gradient_fd<value_type_t<B>>(
        [&](const host& v) {
          put_into(b, v, p->value);
          return loss_at(x);
        },
        value, analytic, tol, what + ": d" + p->name + " by finite differences");
    put_into(b, value, p->value);
  }
  CHECK_MESSAGE(ctx.pool().in_use_elements() == 0, what << ": the module left activations in use after release");
  }
}

// Both checks.
template <class B, class Make>
void check_module_on(B& b, Make make, act_shape in, std::uint64_t seed, const tolerance& tol, const std::string& what) {
  check_module_against_reference(b, make, in, seed, tol, what);
  check_module_gradients(b, make, in, seed, tol, what);
}

// The library's modules: the stem (stride 1 and 2, with the input gradient), MBConv of every
// kind (expansion or not, residual or not, stride 1 and 2, usual and odd shapes) and the head.
template <class B>
void check_library_modules(B& b, const tolerance& tol) {
  SUBCASE("stem") {
    for (const index stride : {1, 2}) {
      CAPTURE(stride);
      check_module_on(
          b,
          [&](auto& be, pcnas::rng& r) {
            using BE = std::remove_cvref_t<decltype(be)>;
            return nn::conv_bn_relu6<BE>(be, {.in_channels = 3, .height = 9, .width = 8, .out_channels = 20,
                                               .kernel = 3, .stride = stride, .input_gradient = true},
                                         r);
          },
          {2, 9, 8, 3}, 40 + static_cast<std::uint64_t>(stride), tol, "stem");
    }
  }
  SUBCASE("MBConv") {
    struct kind {
      index in, out, h, k, e, s, n;
      bool by_differences;  // the larger shapes are compared with the reference only
    };
    const kind kinds[] = {{4, 4, 5, 3, 3, 1, 2, true},     {4, 6, 5, 5, 3, 1, 2, true},
                          {4, 6, 7, 7, 3, 2, 2, true},     {4, 4, 5, 3, 1, 1, 2, true},
                          {4, 6, 6, 5, 1, 2, 2, true},     {5, 5, 7, 9, 2, 1, 2, true},
                          {24, 24, 14, 5, 6, 1, 2, false}, {16, 24, 14, 7, 3, 2, 2, false},
                          {40, 40, 7, 7, 6, 1, 3, false}};
    for (const kind& k : kinds) {
      const std::string name = "MBConv " + std::to_string(k.in) + "->" + std::to_string(k.out) + " k" +
                               std::to_string(k.k) + "e" + std::to_string(k.e) + " s" + std::to_string(k.s);
      CAPTURE(name);
      auto make = [&](auto& be, pcnas::rng& r) {
        using BE = std::remove_cvref_t<decltype(be)>;
        return nn::mbconv<BE>(be, {.in_channels = k.in, .height = k.h, .width = k.h, .out_channels = k.out,
                                   .kernel = k.k, .expansion = k.e, .stride = k.s},
                              r);
      };
      const act_shape in{k.n, k.h, k.h, k.in};
      const std::uint64_t seed = 50 + static_cast<std::uint64_t>(k.k * 100 + k.e * 10 + k.s);
      check_module_against_reference(b, make, in, seed, tol, name);
      if (k.by_differences) check_module_gradients(b, make, in, seed, tol, name);
    }
  }
  SUBCASE("head") {
    check_module_on(
        b,
        [&](auto& be, pcnas::rng& r) {
          using BE = std::remove_cvref_t<decltype(be)>;
          return nn::head<BE>(be, {.in_channels = 12, .height = 3, .width = 5, .features = 20, .classes = 3}, r);
        },
        {4, 3, 5, 12}, 61, tol, "head");
  }
}

}  // namespace pcnas::testing
