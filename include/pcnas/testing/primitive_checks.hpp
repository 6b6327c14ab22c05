// The conformance checks of a backend's primitives and of its primitive-level fused paths: each
// call against the reference backend, forward and backward, and every gradient against finite
// differences on the backend itself (tolerances in compare.hpp).
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/testing/compare.hpp>
#include <pcnas/testing/naive_backend.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace pcnas::testing {

using reference_backend = naive_backend<double>;

namespace detail {

template <class B>
using backend_of = std::remove_cvref_t<B>;

// Runs one primitive through `forward(b, inputs) -> host` and `backward(b, inputs, dy) ->
// gradients of the first `differentiable` inputs`, on B and on the reference: outputs and
// gradients must agree, and B's gradients of the first `by_differences` inputs (all
// differentiable ones unless stated) must match finite differences of L = Σ dy·forward.
template <class B, class Forward, class Backward>
void check_primitive(B& b, const tolerance& tol, const std::string& what, const std::vector<host>& inputs,
                     const std::vector<std::string>& names, std::size_t differentiable, Forward forward,
                     Backward backward, std::uint64_t seed, std::size_t by_differences = ~std::size_t{0}) {
  reference_backend ref;
  const host want_y = forward(ref, inputs);
  pcnas::rng r(seed);
  const host dy = as_float(random_host(r, static_cast<ix>(want_y.size())));
  const std::vector<host> want_g = backward(ref, inputs, dy);
  const host y = forward(b, inputs);
  const std::vector<host> g = backward(b, inputs, dy);
  expect_close(y, want_y, tol.reference, what + ": forward against the reference");
  REQUIRE(g.size() == differentiable);
  REQUIRE(want_g.size() == differentiable);
  for (std::size_t i = 0; i < differentiable; ++i)
    expect_close(g[i], want_g[i], tol.reference, what + ": d" + names[i] + " against the reference");
  for (std::size_t i = 0; i < differentiable && i < by_differences; ++i) {
    auto loss = [&](const host& v) {
      std::vector<host> in = inputs;
      in[i] = v;
      return dot(forward(b, in), dy);
    };
    check_gradient_fd<value_type_t<B>>(loss, inputs[i], g[i], tol, what + ": d" + names[i] + " by finite differences");
  }
}

}  // namespace detail

template <class B>
void check_memory(B& b) {
  pcnas::rng r(1);
  const host v = as_float(random_host(r, 37));
  auto t = put(b, v);
  expect_close(get(b, t, 37), v, 0.0, "upload then download");
  auto big = b.allocate(100);
  b.fill(100, value_type_t<B>(2.5), big);
  const host filled = get(b, big, 100);
  for (double x : filled) REQUIRE(x == 2.5);
  b.copy(37, t, big);  // a larger tensor is always fine: only the first n elements are touched
  const host copied = get(b, big, 100);
  expect_close(host(copied.begin(), copied.begin() + 37), v, 0.0, "copy");
  for (std::size_t i = 37; i < 100; ++i) REQUIRE(copied[i] == 2.5);
  auto labels = b.allocate_labels(4);
  const std::vector<std::int32_t> lab{3, 0, 2, 1};
  b.upload_labels(lab, labels);
  b.synchronize();
  CHECK_FALSE(std::string(b.name()).empty());
}

template <class B>
void check_conv2d(B& b, const tolerance& tol) {
  for (const pcnas::backend::conv2d_desc d : {pcnas::backend::conv2d_desc{{2, 5, 6, 3}, 4, 3, 1, 1},
                                               pcnas::backend::conv2d_desc{{3, 9, 8, 2}, 16, 3, 2, 1},
                                               pcnas::backend::conv2d_desc{{2, 7, 7, 1}, 8, 3, 2, 1}}) {
    CAPTURE(d.stride);
    CAPTURE(d.out_channels);
    pcnas::rng r(11 + static_cast<std::uint64_t>(d.out_channels));
    const std::vector<host> in{as_float(random_host(r, d.in.numel())), as_float(random_host(r, d.weight_size()))};
    detail::check_primitive(
        b, tol, "conv2d", in, {"x", "w"}, 2,
        [&](auto& be, const std::vector<host>& v) {
          auto y = be.allocate(d.out().numel());
          be.conv2d_forward(d, put(be, v[0]), put(be, v[1]), y);
          return get(be, y, d.out().numel());
        },
        [&](auto& be, const std::vector<host>& v, const host& dy) {
          auto dx = be.allocate(d.in.numel());
          auto dw = be.allocate(d.weight_size());
          be.conv2d_backward_data(d, put(be, dy), put(be, v[1]), dx);
          be.conv2d_backward_filter(d, put(be, v[0]), put(be, dy), dw);
          return std::vector<host>{get(be, dx, d.in.numel()), get(be, dw, d.weight_size())};
        },
        12);
  }
}

template <class B>
void check_pointwise(B& b, const tolerance& tol) {
  for (const pcnas::backend::pointwise_desc d : {pcnas::backend::pointwise_desc{10, 5, 7},
                                                  pcnas::backend::pointwise_desc{300, 24, 144},
                                                  pcnas::backend::pointwise_desc{200, 144, 40}}) {
    CAPTURE(d.rows);
    CAPTURE(d.in_channels);
    pcnas::rng r(21 + static_cast<std::uint64_t>(d.rows));
    const ix nx = d.rows * d.in_channels;
    const std::vector<host> in{as_float(random_host(r, nx)), as_float(random_host(r, d.weight_size())),
                               as_float(random_host(r, nx))};
    // The third input is what dx held before an accumulating backward: dx(acc) = prior + dy·Wᵀ.
    detail::check_primitive(
        b, tol, "pointwise", in, {"x", "w"}, 2,
        [&](auto& be, const std::vector<host>& v) {
          auto y = be.allocate(d.rows * d.out_channels);
          be.pointwise_forward(d, put(be, v[0]), put(be, v[1]), y);
          return get(be, y, d.rows * d.out_channels);
        },
        [&](auto& be, const std::vector<host>& v, const host& dy) {
          auto dx = be.allocate(nx);
          auto dw = be.allocate(d.weight_size());
          be.pointwise_backward_data(d, put(be, dy), put(be, v[1]), dx, false);
          be.pointwise_backward_filter(d, put(be, v[0]), put(be, dy), dw);
          return std::vector<host>{get(be, dx, nx), get(be, dw, d.weight_size())};
        },
        22);
    pcnas::rng gr(23);
    const host dy = as_float(random_host(gr, d.rows * d.out_channels));
    auto run_acc = [&](auto& be) {
      auto acc = put(be, in[2]);
      auto plain = be.allocate(nx);
      be.pointwise_backward_data(d, put(be, dy), put(be, in[1]), acc, true);
      be.pointwise_backward_data(d, put(be, dy), put(be, in[1]), plain, false);
      return std::vector<host>{get(be, acc, nx), get(be, plain, nx)};
    };
    reference_backend ref;
    const auto want = run_acc(ref);
    const auto got = run_acc(b);
    expect_close(got[0], want[0], tol.reference, "pointwise: dx accumulated against the reference");
    host sum = got[1];
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += in[2][i];
    expect_close(got[0], sum, tol.reference, "pointwise: accumulate adds to what dx held");
  }
}

template <class B>
void check_depthwise(B& b, const tolerance& tol) {
  struct shape {
    ix n, h, w, c, k, s;
  };
  // Channel counts off any vector width, odd and even sizes, each usual kernel and stride, a
  // kernel of 9 and a stride of 3, and an image smaller than the kernel.
  const shape shapes[] = {{2, 7, 6, 3, 3, 1},  {2, 7, 7, 20, 5, 1},   {2, 7, 7, 20, 7, 1}, {2, 9, 8, 20, 3, 2},
                          {2, 9, 8, 20, 5, 2}, {2, 11, 10, 36, 9, 1}, {2, 10, 11, 12, 5, 3}, {1, 3, 2, 8, 7, 1},
                          {2, 8, 8, 48, 7, 2}};
  for (const shape s : shapes) {
    const pcnas::backend::depthwise_desc d{{s.n, s.h, s.w, s.c}, s.k, s.s};
    CAPTURE(s.h);
    CAPTURE(s.w);
    CAPTURE(s.c);
    CAPTURE(s.k);
    CAPTURE(s.s);
    pcnas::rng r(31 + static_cast<std::uint64_t>(s.k * 10 + s.s));
    const std::vector<host> in{as_float(random_host(r, d.in.numel())), as_float(random_host(r, d.weight_size()))};
    auto forward = [&](auto& be, const std::vector<host>& v) {
      auto y = be.allocate(d.out().numel());
      be.depthwise_forward(d, put(be, v[0]), put(be, v[1]), y);
      return get(be, y, d.out().numel());
    };
    detail::check_primitive(
        b, tol, "depthwise", in, {"x", "w"}, 2, forward,
        [&](auto& be, const std::vector<host>& v, const host& dy) {
          auto dx = be.allocate(d.in.numel());
          auto dw = be.allocate(d.weight_size());
          be.depthwise_backward_data(d, put(be, dy), put(be, v[1]), dx);
          be.depthwise_backward_filter(d, put(be, v[0]), put(be, dy), dw);
          return std::vector<host>{get(be, dx, d.in.numel()), get(be, dw, d.weight_size())};
        },
        32);
    if constexpr (pcnas::backend::has_depthwise_backward<B>) {
      // The fused backward against the reference's two calls, gradients by finite differences.
      detail::check_primitive(
          b, tol, "depthwise_backward (fused)", in, {"x", "w"}, 2, forward,
          [&](auto& be, const std::vector<host>& v, const host& dy) {
            auto dx = be.allocate(d.in.numel());
            auto dw = be.allocate(d.weight_size());
            if constexpr (pcnas::backend::has_depthwise_backward<detail::backend_of<decltype(be)>>) {
              be.depthwise_backward(d, put(be, v[0]), put(be, v[1]), put(be, dy), dx, dw);
            } else {
              be.depthwise_backward_data(d, put(be, dy), put(be, v[1]), dx);
              be.depthwise_backward_filter(d, put(be, v[0]), put(be, dy), dw);
            }
            return std::vector<host>{get(be, dx, d.in.numel()), get(be, dw, d.weight_size())};
          },
          33);
    }
  }
}

// A batch-norm layer's tensors on a backend, from host values.
struct bn_host {
  host gamma, beta, running_mean, running_var;
};

inline bn_host random_bn(pcnas::rng& r, ix channels) {
  return {as_float(random_host(r, channels, 0.5, 1.5)), as_float(random_host(r, channels, -0.5, 0.5)),
          as_float(random_host(r, channels, -0.2, 0.2)), as_float(random_host(r, channels, 0.5, 2.0))};
}

template <class B>
struct bn_device {
  tensor_t<B> gamma, beta, running_mean, running_var, saved_mean, saved_inv_std, grad_gamma, grad_beta;
  bn_device(B& b, const bn_host& h)
      : gamma(put(b, h.gamma)), beta(put(b, h.beta)), running_mean(put(b, h.running_mean)),
        running_var(put(b, h.running_var)), saved_mean(b.allocate(ix(h.gamma.size()))),
        saved_inv_std(b.allocate(ix(h.gamma.size()))), grad_gamma(b.allocate(ix(h.gamma.size()))),
        grad_beta(b.allocate(ix(h.gamma.size()))) {}
  pcnas::backend::bn_tensors_t<B> tensors() {
    return {gamma, beta, running_mean, running_var, saved_mean, saved_inv_std, grad_gamma, grad_beta};
  }
};

// Batch norm: training forward (output, saved and running statistics), inference forward,
// backward; and the fused BN+ReLU6 and BN+add paths where B has them. Inputs: x, gamma, beta.
template <class B>
void check_batch_norm(B& b, const tolerance& tol) {
  struct shape {
    ix rows, c;
  };
  for (const shape s : {shape{24, 5}, shape{50, 3}, shape{1000, 24}}) {
    CAPTURE(s.rows);
    CAPTURE(s.c);
    const pcnas::backend::batch_norm_desc d{s.rows, s.c, 1e-5};
    const ix n = d.rows * d.channels;
    pcnas::rng r(41 + static_cast<std::uint64_t>(s.rows));
    const bn_host p = random_bn(r, d.channels);
    // An offset mean makes the variance computation earn its keep; the range crosses both of
    // ReLU6's kinks after normalisation.
    const std::vector<host> in{as_float(random_host(r, n, 1.0, 5.0)), p.gamma, p.beta,
                               as_float(random_host(r, n))};
    const ix C = d.channels;
    auto with = [&](const std::vector<host>& v) { return bn_host{v[1], v[2], p.running_mean, p.running_var}; };
    // kind 0: plain; 1: followed by ReLU6; 2: plus a residual. Fused on B where B has the path,
    // always op by op on the reference.
    for (int kind : {0, 1, 2}) {
      CAPTURE(kind);
      const bool fused_here = (kind == 1 && pcnas::backend::has_batch_norm_relu6<B>) ||
                              (kind == 2 && pcnas::backend::has_batch_norm_add<B>);
      if (kind != 0 && !fused_here) continue;  // the unfused sequence is the primitives, checked elsewhere
      const std::string what = kind == 0 ? "batch_norm" : kind == 1 ? "batch_norm_relu6 (fused)" : "batch_norm_add (fused)";
      auto train = [&](auto& be, bn_device<detail::backend_of<decltype(be)>>& t, const std::vector<host>& v,
                       tensor_t<detail::backend_of<decltype(be)>>& y) {
        using BE = detail::backend_of<decltype(be)>;
        auto x = put(be, v[0]);
        if constexpr (pcnas::backend::has_batch_norm_relu6<BE>) {
          if (kind == 1) return be.batch_norm_relu6_forward_train(d, t.tensors(), x, y, 0.25);
        }
        if constexpr (pcnas::backend::has_batch_norm_add<BE>) {
          if (kind == 2) return be.batch_norm_add_forward_train(d, t.tensors(), x, put(be, v[3]), y, 0.25);
        }
        be.batch_norm_forward_train(d, t.tensors(), x, y, 0.25);
        if (kind == 1) be.relu6_forward(n, y, y);
        if (kind == 2) be.add(n, y, put(be, v[3]), y);
      };
      auto forward = [&](auto& be, const std::vector<host>& v) {
        bn_device<detail::backend_of<decltype(be)>> t(be, with(v));
        auto y = be.allocate(n);
        train(be, t, v, y);
        return get(be, y, n);
      };
      auto backward = [&](auto& be, const std::vector<host>& v, const host& dy) {
        using BE = detail::backend_of<decltype(be)>;
        bn_device<BE> t(be, with(v));
        auto y = be.allocate(n);
        auto dx = be.allocate(n);
        train(be, t, v, y);
        bool done = false;
        if constexpr (pcnas::backend::has_batch_norm_relu6<BE>) {
          if (kind == 1) {
            be.batch_norm_relu6_backward(d, t.tensors(), put(be, v[0]), y, put(be, dy), dx);
            done = true;
          }
        }
        if (!done) {
          auto g = put(be, dy);
          if (kind == 1) be.relu6_backward(n, y, g, g);
          be.batch_norm_backward(d, t.tensors(), put(be, v[0]), g, dx);
        }
        std::vector<host> out{get(be, dx, n), get(be, t.grad_gamma, C), get(be, t.grad_beta, C)};
        if (kind == 2) out.push_back(dy);  // y = bn(x) + residual: d(residual) = dy
        return out;
      };
      // γ and β of BN + ReLU6 move a whole channel: a float step straddles kinks at many of its
      // pixels, so in float only dx is checked by differences there (dγ, dβ against the
      // reference, whose own are checked by differences in double).
      const std::size_t by_differences = kind == 1 && tol.skip_kinks ? 1 : 4;
      detail::check_primitive(b, tol, what, in, {"x", "gamma", "beta", "residual"}, kind == 2 ? 4 : 3, forward,
                              backward, 42 + static_cast<std::uint64_t>(kind), by_differences);
      // The statistics a training forward leaves behind, and the inference forward with them.
      auto states = [&](auto& be) {
        bn_device<detail::backend_of<decltype(be)>> t(be, p);
        auto y = be.allocate(n);
        train(be, t, in, y);
        auto yi = be.allocate(n);
        auto x = put(be, in[0]);
        using BE = detail::backend_of<decltype(be)>;
        bool done = false;
        if constexpr (pcnas::backend::has_batch_norm_relu6<BE>) {
          if (kind == 1) {
            be.batch_norm_relu6_forward_inference(d, t.tensors(), x, yi);
            done = true;
          }
        }
        if constexpr (pcnas::backend::has_batch_norm_add<BE>) {
          if (kind == 2) {
            be.batch_norm_add_forward_inference(d, t.tensors(), x, put(be, in[3]), yi);
            done = true;
          }
        }
        if (!done) {
          be.batch_norm_forward_inference(d, t.tensors(), x, yi);
          if (kind == 1) be.relu6_forward(n, yi, yi);
          if (kind == 2) be.add(n, yi, put(be, in[3]), yi);
        }
        return std::vector<host>{get(be, t.saved_mean, C), get(be, t.saved_inv_std, C), get(be, t.running_mean, C),
                                 get(be, t.running_var, C), get(be, yi, n)};
      };
      reference_backend ref;
      const auto want = states(ref);
      const auto got = states(b);
      const char* names[] = {"saved mean", "saved inverse std", "running mean", "running variance",
                             "inference output"};
      for (std::size_t i = 0; i < want.size(); ++i)
        expect_close(got[i], want[i], tol.reference, what + ": " + names[i] + " against the reference");
    }
  }
}

template <class B>
void check_elementwise(B& b, const tolerance& tol) {
  const ix n = 50000;  // large enough for a backend to split the work
  pcnas::rng r(51);
  // Away from the kinks by more than a finite-difference step, so that the check is fair.
  host x = as_float(random_host(r, n, -3, 9));
  for (auto& v : x)
    for (double kink : {0.0, 6.0})
      if (std::abs(v - kink) < 0.01) v = kink + 0.02;
  detail::check_primitive(
      b, tol, "relu6", {x}, {"x"}, 1,
      [&](auto& be, const std::vector<host>& v) {
        auto y = be.allocate(n);
        be.relu6_forward(n, put(be, v[0]), y);
        return get(be, y, n);
      },
      [&](auto& be, const std::vector<host>& v, const host& dy) {
        auto y = be.allocate(n);
        auto dx = be.allocate(n);
        be.relu6_forward(n, put(be, v[0]), y);
        be.relu6_backward(n, y, put(be, dy), dx);
        return std::vector<host>{get(be, dx, n)};
      },
      52);
  const host a = as_float(random_host(r, n)), c = as_float(random_host(r, n));
  auto sum = [&](auto& be) {
    auto out = be.allocate(n);
    be.add(n, put(be, a), put(be, c), out);
    auto in_place = put(be, a);
    be.add(n, in_place, put(be, c), in_place);  // the output may alias an input
    return std::vector<host>{get(be, out, n), get(be, in_place, n)};
  };
  reference_backend ref;
  const auto want = sum(ref);
  const auto got = sum(b);
  expect_close(got[0], want[0], tol.reference, "add against the reference");
  expect_close(got[1], want[1], tol.reference, "add in place against the reference");
}

template <class B>
void check_pooling(B& b, const tolerance& tol) {
  for (const act_shape s : {act_shape{3, 4, 5, 6}, act_shape{5, 7, 7, 40}}) {
    CAPTURE(s.c);
    pcnas::rng r(61 + static_cast<std::uint64_t>(s.c));
    detail::check_primitive(
        b, tol, "global_avg_pool", {as_float(random_host(r, s.numel()))}, {"x"}, 1,
        [&](auto& be, const std::vector<host>& v) {
          auto y = be.allocate(s.n * s.c);
          be.global_avg_pool_forward(s, put(be, v[0]), y);
          return get(be, y, s.n * s.c);
        },
        [&](auto& be, const std::vector<host>&, const host& dy) {
          auto dx = be.allocate(s.numel());
          be.global_avg_pool_backward(s, put(be, dy), dx);
          return std::vector<host>{get(be, dx, s.numel())};
        },
        62);
  }
}

template <class B>
void check_linear(B& b, const tolerance& tol) {
  for (const pcnas::backend::linear_desc d : {pcnas::backend::linear_desc{4, 6, 3}, pcnas::backend::linear_desc{6, 32, 10}}) {
    CAPTURE(d.in_features);
    pcnas::rng r(71 + static_cast<std::uint64_t>(d.in_features));
    const std::vector<host> in{as_float(random_host(r, d.batch * d.in_features)),
                               as_float(random_host(r, d.in_features * d.out_features)),
                               as_float(random_host(r, d.out_features))};
    detail::check_primitive(
        b, tol, "linear", in, {"x", "w", "bias"}, 3,
        [&](auto& be, const std::vector<host>& v) {
          auto y = be.allocate(d.batch * d.out_features);
          be.linear_forward(d, put(be, v[0]), put(be, v[1]), put(be, v[2]), y);
          return get(be, y, d.batch * d.out_features);
        },
        [&](auto& be, const std::vector<host>& v, const host& dy) {
          auto dx = be.allocate(d.batch * d.in_features);
          auto dw = be.allocate(d.in_features * d.out_features);
          auto db = be.allocate(d.out_features);
          be.linear_backward_data(d, put(be, dy), put(be, v[1]), dx);
          be.linear_backward_params(d, put(be, v[0]), put(be, dy), dw, db);
          return std::vector<host>{get(be, dx, d.batch * d.in_features), get(be, dw, d.in_features * d.out_features),
                                   get(be, db, d.out_features)};
        },
        72);
  }
}

// Loss: the forward's statistics (sum of losses added to stats[0], correct count to stats[1])
// against the reference; the backward (of the mean loss) by finite differences.
template <class B>
void check_cross_entropy(B& b, const tolerance& tol) {
  const pcnas::backend::cross_entropy_desc d{6, 10, 0.1};
  pcnas::rng r(81);
  const host z = as_float(random_host(r, d.batch * d.classes, -4, 4));
  const std::vector<std::int32_t> labels{0, 9, 3, 3, 7, 1};
  auto stats_of = [&](auto& be, const host& logits, const host& start) {
    auto lab = be.allocate_labels(d.batch);
    be.upload_labels(labels, lab);
    auto stats = put(be, start);
    be.softmax_cross_entropy_forward(d, put(be, logits), lab, stats);
    return get(be, stats, 2);
  };
  reference_backend ref;
  expect_close(stats_of(b, z, {1.0, 2.0}), stats_of(ref, z, {1.0, 2.0}), tol.reference,
               "softmax_cross_entropy_forward: statistics added to what they held, against the reference");
  auto dlogits = [&](auto& be) {
    auto lab = be.allocate_labels(d.batch);
    be.upload_labels(labels, lab);
    auto dz = be.allocate(d.batch * d.classes);
    be.softmax_cross_entropy_backward(d, put(be, z), lab, dz);
    return get(be, dz, d.batch * d.classes);
  };
  const host g = dlogits(b);
  expect_close(g, dlogits(ref), tol.reference, "softmax_cross_entropy_backward against the reference");
  check_gradient_fd<value_type_t<B>>(
      [&](const host& v) { return stats_of(b, v, {0.0, 0.0})[0] / static_cast<double>(d.batch); }, z, g, tol,
      "softmax_cross_entropy_backward by finite differences of the mean loss");
}

template <class B>
void check_sgd(B& b, const tolerance& tol) {
  pcnas::rng r(91);
  const ix n = 1000;
  const host w = as_float(random_host(r, n)), g = as_float(random_host(r, n)), m = as_float(random_host(r, n));
  for (const bool nesterov : {true, false}) {
    CAPTURE(nesterov);
    auto step = [&](auto& be) {
      auto tw = put(be, w);
      auto tm = put(be, m);
      be.sgd_update({n, 0.1, 0.9, 4e-5, nesterov}, tw, put(be, g), tm);
      return std::vector<host>{get(be, tw, n), get(be, tm, n)};
    };
    reference_backend ref;
    const auto want = step(ref);
    const auto got = step(b);
    expect_close(got[0], want[0], tol.reference, "sgd_update: weights against the reference");
    expect_close(got[1], want[1], tol.reference, "sgd_update: momentum against the reference");
  }
}

// The optional device-loop members, where B has them: sgd_update_many against sgd_update of
// each tensor on the reference (tensors of several sizes, with and without decay), and the
// gathers against rows picked on the host.
template <class B>
void check_device_loop(B& b, const tolerance& tol) {
  if constexpr (backend::has_sgd_update_many<B>) {
    pcnas::rng r(92);
    const std::vector<ix> sizes{1, 37, 1000, 5};
    std::vector<host> w, g, m;
    for (ix n : sizes) {
      w.push_back(as_float(random_host(r, n)));
      g.push_back(as_float(random_host(r, n)));
      m.push_back(as_float(random_host(r, n)));
    }
    for (const bool nesterov : {true, false}) {
      CAPTURE(nesterov);
      const backend::sgd_step step{0.1, 0.9, 4e-5, nesterov};
      std::vector<backend::tensor_t<B>> tw, tg, tm;
      std::vector<backend::sgd_item<backend::tensor_t<B>>> items;
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        tw.push_back(put(b, w[i]));
        tg.push_back(put(b, g[i]));
        tm.push_back(put(b, m[i]));
      }
      for (std::size_t i = 0; i < sizes.size(); ++i) items.push_back({sizes[i], i % 2 == 0, &tw[i], &tg[i], &tm[i]});
      b.sgd_update_many(step, std::span<const backend::sgd_item<backend::tensor_t<B>>>(items));
      b.sgd_update_many(step, std::span<const backend::sgd_item<backend::tensor_t<B>>>(items));  // the same table again
      reference_backend ref;
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        CAPTURE(i);
        auto rw = put(ref, w[i]), rm = put(ref, m[i]);
        const double decay = i % 2 == 0 ? 4e-5 : 0.0;
        for (int k = 0; k < 2; ++k) ref.sgd_update({sizes[i], 0.1, 0.9, decay, nesterov}, rw, put(ref, g[i]), rm);
        expect_close(get(b, tw[i], sizes[i]), get(ref, rw, sizes[i]), tol.reference,
                     "sgd_update_many: weights against sgd_update of each tensor on the reference");
        expect_close(get(b, tm[i], sizes[i]), get(ref, rm, sizes[i]), tol.reference,
                     "sgd_update_many: momentum against sgd_update of each tensor on the reference");
      }
    }
  }
  if constexpr (backend::has_gather<B>) {
    pcnas::rng r(93);
    const ix rows = 7, row = 13, picked = 5;
    const host src = as_float(random_host(r, rows * row));
    const std::vector<std::int32_t> labels{3, 1, 4, 1, 5, 9, 2}, which{6, 0, 0, 3, 5};
    auto x = put(b, src);
    auto lab = b.allocate_labels(rows);
    b.upload_labels(labels, lab);
    auto idx = b.allocate_labels(picked);
    b.upload_labels(which, idx);
    auto y = b.allocate(picked * row);
    auto out_labels = b.allocate_labels(picked);
    b.gather_rows(picked, row, x, idx, y);
    b.gather_labels(picked, lab, idx, out_labels);
    host want;
    for (std::int32_t k : which) want.insert(want.end(), src.begin() + k * row, src.begin() + (k + 1) * row);
    expect_close(get(b, y, picked * row), want, 0.0, "gather_rows: the rows picked, exactly");
    // Labels come back through a gathered one-hot loss: the cross-entropy's correct count is
    // the number of rows whose logits peak at the gathered label.
    const backend::cross_entropy_desc d{picked, 10, 0.0};
    host logits(static_cast<std::size_t>(picked * 10), 0.0);
    for (std::size_t i = 0; i < which.size(); ++i)
      logits[i * 10 + static_cast<std::size_t>(labels[static_cast<std::size_t>(which[i])])] = 5.0;
    auto stats = put(b, host{0.0, 0.0});
    b.softmax_cross_entropy_forward(d, put(b, logits), out_labels, stats);
    CHECK_MESSAGE(get(b, stats, 2)[1] == static_cast<double>(picked), "gather_labels: the labels picked");
  }
}

}  // namespace pcnas::testing
