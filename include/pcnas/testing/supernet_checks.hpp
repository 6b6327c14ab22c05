// The conformance checks of a backend under the whole library: supernet paths against the
// reference backend, a few training steps with their losses, and a short PC-NAS search on a small
// space with synthetic, learnable data. Nothing here reads files.
#pragma once

#include <pcnas/cost/analytic.hpp>
#include <pcnas/cost/constraint.hpp>
#include <pcnas/data/images.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/space/space.hpp>
#include <pcnas/testing/compare.hpp>
#include <pcnas/testing/naive_backend.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

namespace pcnas::testing {

// A small space with every kind of block: a conv stem, stride 2, residual, expansion 1 and 3,
// kernels 3 and 5, zero.
namespace detail {
using conformance_ops = space::choices<space::mbconv<3, 1>, space::mbconv<5, 3>>;
}  // namespace detail

struct conformance_space
    : space::search_space<space::input<1, 8, 8>, space::stem<space::fixed<space::conv<3>, 4, 1>>,
                          space::body<space::stage<2, 4, 6, 2, detail::conformance_ops,
                                                   space::with_zero<detail::conformance_ops>>,
                                      space::stage<1, 6, 8, 2, detail::conformance_ops>>,
                          space::head<12, 3>> {
  static constexpr std::string_view name = "conformance";
};

// 8×8 single-channel images in [-1, 1] whose labels depend on two pixels, so that a network can
// learn them in a few dozen steps.
inline data::dataset synthetic_images(std::size_t count, std::uint64_t seed) {
  data::dataset ds;
  ds.count = count;
  ds.height = ds.width = 8;
  ds.channels = 1;
  ds.num_classes = 3;
  ds.norm = data::identity_normalization(1);
  pcnas::rng r(seed);
  ds.images.resize(count * 64);
  for (auto& v : ds.images) v = static_cast<float>(r.uniform01() * 2 - 1);
  ds.labels.resize(count);
  for (std::size_t i = 0; i < count; ++i)
    ds.labels[i] = static_cast<std::uint8_t>(ds.images[i * 64 + 27] > 0.3f ? 2 : ds.images[i * 64 + 36] > 0 ? 1 : 0);
  return ds;
}

template <class B>
host supernet_logits(B& b, std::span<const int> arch, const data::dataset& ds, nn::mode m) {
  nn::context<B> ctx(b);
  nn::supernet<B, conformance_space> net(b, {.seed = 7});
  auto x = ctx.acquire(act_shape{4, 8, 8, 1});
  const host images(ds.images.begin(), ds.images.begin() + 4 * 64);
  put_into(b, images, x.tensor());
  auto y = net.forward(ctx, std::move(x), arch, m);
  host out = get_activation(ctx, y);
  y.reset();
  net.release(arch);
  return out;
}

// Paths through the supernet, training and inference mode, against the reference; then five
// SGD steps along a fixed sequence of paths, whose losses and final held-out accuracy must agree
// with the reference's (the tolerance grows with the steps: 10× the reference tolerance).
template <class B, class Make>
void check_supernet(Make make, const tolerance& tol) {
  const auto ds = synthetic_images(64, 1);
  const std::vector<std::vector<int>> paths{{0, 2, 0}, {1, 1, 1}, {1, 0, 0}, {0, 1, 1}};
  for (const auto& arch : paths) {
    CAPTURE(arch[0]);
    CAPTURE(arch[1]);
    CAPTURE(arch[2]);
    B b = make();
    naive_backend<double> ref;
    expect_close(supernet_logits(b, arch, ds, nn::mode::train), supernet_logits(ref, arch, ds, nn::mode::train),
                 tol.reference, "supernet path, training forward, against the reference");
  }
  const auto val = synthetic_images(32, 2);
  auto train = [&](auto& be) {
    using BE = std::remove_cvref_t<decltype(be)>;
    nn::supernet_trainer<BE, conformance_space> t(be, ds, val,
                                                  {.batch_size = 16, .eval_batch_size = 16, .recalibration_batches = 2,
                                                   .validation_images = 32, .seed = 3});
    host losses;
    for (std::size_t step = 0; step < 5; ++step) losses.push_back(t.train_step(paths[step % paths.size()], 0.05));
    t.recalibrate(paths[0]);
    losses.push_back(t.evaluate_stats(paths[0], val, 32).mean_loss());
    return losses;
  };
  B b = make();
  naive_backend<double> ref;
  expect_close(train(b), train(ref), 10 * tol.reference,
               "training losses of five steps and the held-out loss after recalibration, against the reference");
}

// A short PC-NAS search under a MACs limit: it runs its whole budget, and what it returns is a
// valid, feasible architecture with an accuracy and a cost that the supernet and the model confirm.
template <class B, class Make>
void check_search(Make make) {
  using S = conformance_space;
  const auto train = synthetic_images(256, 3);
  const auto val = synthetic_images(64, 4);
  B b = make();
  nn::supernet_trainer<B, S> net(b, train, val,
                                 {.batch_size = 16, .eval_batch_size = 32, .recalibration_batches = 2,
                                  .validation_images = 64, .seed = 5});
  const auto macs = cost::analytic_model<S>(cost::analytic_measure::macs);
  const double limit = macs.min_total() + 0.5 * (macs.max_total() - macs.min_total());
  const cost::constraint within(macs, {.limit = limit});
  const auto result = search::pc_nas_search(net, within, {.pool_size = 2, .completions = 2, .total_steps = 60, .seed = 9});
  CHECK(result.steps_done == 60);
  REQUIRE(result.best_arch.size() == S::num_layers);
  for (std::size_t l = 0; l < S::num_layers; ++l) {
    CHECK(result.best_arch[l] >= 0);
    CHECK(static_cast<std::size_t>(result.best_arch[l]) < S::num_choices[l]);
  }
  CHECK(result.predicted_cost <= limit);
  CHECK(result.predicted_cost == doctest::Approx(macs.predict(result.best_arch)));
  CHECK(std::isfinite(result.best_accuracy));
  CHECK(result.best_accuracy >= 0.0);
  CHECK(result.best_accuracy <= 1.0);
  CHECK(result.evaluations > 0);
  net.recalibrate(result.best_arch);
  CHECK(net.evaluate(result.best_arch) == doctest::Approx(result.best_accuracy).epsilon(1e-9));
}

}  // namespace pcnas::testing
