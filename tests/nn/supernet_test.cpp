// The supernet over typed choice blocks, and the trainer that binds it to data: one path at a
// time, backends agree, only the path's weights move, state files round-trip and refuse damage.
#include <pcnas/backend/eigen.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/search/supernet_concept.hpp>
#include <pcnas/space/presets.hpp>

#include "support/naive_backend.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

namespace {

using namespace pcnas;
using fast = backend::eigen::backend;
using naive = user_naive::backend<double>;

// A small space with every kind of block: stride 2, residual, expansion 1, zero, a conv stem.
using ops = space::choices<space::mbconv<3, 1>, space::mbconv<5, 3>>;
struct small : space::search_space<space::input<1, 8, 8>, space::stem<space::fixed<space::conv<3>, 4, 1>>,
                                   space::body<space::stage<2, 4, 6, 2, ops, space::with_zero<ops>>>,
                                   space::head<8, 3>> {
  static constexpr std::string_view name = "small";
};

data::dataset random_images(std::size_t count, std::uint64_t seed) {
  data::dataset ds;
  ds.count = count;
  ds.height = ds.width = 8;
  ds.channels = 1;
  ds.num_classes = 3;
  ds.norm = data::identity_normalization(1);
  rng r(seed);
  ds.images.resize(count * 64);
  for (auto& v : ds.images) v = static_cast<float>(r.uniform01() * 2 - 1);
  ds.labels.resize(count);
  // Labels that depend on the image, so that the network can learn them.
  for (std::size_t i = 0; i < count; ++i) ds.labels[i] = static_cast<std::uint8_t>(ds.images[i * 64 + 27] > 0.3f ? 2 : ds.images[i * 64 + 36] > 0 ? 1 : 0);
  return ds;
}

template <class B>
std::vector<double> logits_of(B& b, const std::vector<int>& arch, const data::dataset& ds) {
  nn::context<B> ctx(b);
  nn::supernet<B, small> net(b, {.seed = 7});
  auto x = ctx.acquire(backend::act_shape{4, 8, 8, 1});
  std::vector<backend::value_type_t<B>> host(ds.images.begin(), ds.images.begin() + 4 * 64);
  b.upload(std::span<const backend::value_type_t<B>>(host), x.tensor());
  auto y = net.forward(ctx, std::move(x), arch, nn::mode::train);
  std::vector<backend::value_type_t<B>> out(static_cast<std::size_t>(y.shape().numel()));
  b.download(y.tensor(), std::span<backend::value_type_t<B>>(out));
  net.release(arch);
  return {out.begin(), out.end()};
}

}  // namespace

TEST_CASE("a supernet's shapes and choice counts come from the space") {
  static_assert(small::num_layers == 2);
  static_assert(small::num_choices == std::array<std::size_t, 2>{2, 3});
  static_assert(search::searchable_supernet<nn::supernet_trainer<fast, small>>);
  static_assert(search::searchable_supernet<nn::supernet_trainer<naive, presets::fmnist_micro>>);
}

TEST_CASE("the Eigen and the naive backend compute the same supernet path") {
  const auto ds = random_images(8, 1);
  for (const std::vector<int> arch : {std::vector<int>{0, 2}, std::vector<int>{1, 1}, std::vector<int>{1, 0}}) {
    fast f({.threads = 2});
    naive n;
    const auto a = logits_of(f, arch, ds), b = logits_of(n, arch, ds);
    REQUIRE(a.size() == 12);
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-4).scale(1.0));
  }
}

TEST_CASE("a bad architecture is refused with the layer and the valid range") {
  fast b({.threads = 1});
  nn::context<fast> ctx(b);
  nn::supernet<fast, small> net(b);
  auto x = ctx.acquire(backend::act_shape{1, 8, 8, 1});
  b.fill(64, 0.f, x.tensor());
  CHECK_THROWS_WITH_AS(net.forward(ctx, x, std::vector<int>{0, 3}, nn::mode::eval),
                       doctest::Contains("out of range [0, 3)"), space::arch_error);
  CHECK_THROWS_AS(net.forward(ctx, x, std::vector<int>{0}, nn::mode::eval), space::arch_error);
  CHECK_THROWS_AS(nn::with_index<3>(3, [](auto) {}), std::out_of_range);
}

TEST_CASE("only the sampled path holds activations and receives updates") {
  const auto train = random_images(64, 2), val = random_images(32, 3);
  fast b({.threads = 2});
  nn::supernet_trainer<fast, small> t(b, train, val, {.batch_size = 16, .eval_batch_size = 16});
  const std::vector<int> path{1, 2}, other{0, 1};
  const auto before_path = nn::save_state<fast>(b, t.net().parameters(path), {});
  (void)t.train_step(path, 0.1);
  CHECK(t.ctx().pool().in_use_elements() == 0);  // nothing kept after the step
  const auto after_path = nn::save_state<fast>(b, t.net().parameters(path), {});
  CHECK(after_path != before_path);
  // `other` shares the stem and head with `path` but not its ops: compare the ops' parameters.
  auto ops_only = [&](const std::vector<int>& arch) {
    auto all = t.net().parameters(arch), stem_head = t.net().parameters(std::vector<int>{0, 2});
    std::erase_if(all, [&](auto* p) { return std::find(stem_head.begin(), stem_head.end(), p) != stem_head.end(); });
    return nn::save_state<fast>(b, all, {});
  };
  const auto other_ops = ops_only(other);
  (void)t.train_step(path, 0.1);
  CHECK(ops_only(other) == other_ops);
}

TEST_CASE("training a path lowers its loss and raises its accuracy") {
  const auto train = random_images(256, 4), val = random_images(128, 5);
  fast b({.threads = 2});
  nn::supernet_trainer<fast, small> t(b, train, val, {.batch_size = 32, .eval_batch_size = 64, .validation_images = 128});
  const std::vector<int> arch{1, 1};
  t.recalibrate(arch);
  const double acc0 = t.evaluate(arch);
  double first = 0, last = 0;
  for (int i = 0; i < 120; ++i) {
    const double loss = t.train_step(arch, 0.05);
    if (i < 8) first += loss;
    if (i >= 112) last += loss;
  }
  CHECK(last < first * 0.8);
  t.recalibrate(arch);
  CHECK(t.evaluate(arch) > acc0 + 0.1);
}

TEST_CASE("a trainer's state round-trips and damaged or foreign files are refused") {
  const auto train = random_images(64, 6), val = random_images(32, 7);
  fast b({.threads = 2});
  nn::supernet_trainer<fast, small> t(b, train, val, {.batch_size = 16, .eval_batch_size = 16, .seed = 3});
  const std::vector<int> arch{1, 0};
  for (int i = 0; i < 5; ++i) (void)t.train_step(arch, 0.1);
  std::stringstream state;
  t.save(state);
  const std::string bytes = state.str();
  const double next_loss = t.train_step(arch, 0.1);

  nn::supernet_trainer<fast, small> other_seed(b, train, val, {.batch_size = 16, .eval_batch_size = 16, .seed = 99});
  std::istringstream for_other(bytes);
  CHECK_THROWS_WITH_AS(other_seed.load(for_other), doctest::Contains("seed 3"), nn::state_error);

  nn::supernet_trainer<fast, small> u(b, train, val, {.batch_size = 16, .eval_batch_size = 16, .seed = 3});
  std::istringstream in(bytes);
  u.load(in);
  CHECK(u.steps() == 5);
  CHECK(u.train_step(arch, 0.1) == doctest::Approx(next_loss).epsilon(1e-6));  // same weights, same next batch

  std::istringstream truncated(bytes.substr(0, bytes.size() - 10));
  CHECK_THROWS_WITH_AS(u.load(truncated), doctest::Contains("truncated"), nn::state_error);
  std::string damaged = bytes;
  damaged[damaged.size() / 2] ^= 0x40;
  std::istringstream damaged_in(damaged);
  CHECK_THROWS_WITH_AS(u.load(damaged_in), doctest::Contains("checksum"), nn::state_error);
  std::istringstream junk("definitely not a state file, but long enough to read a header");
  CHECK_THROWS_WITH_AS(u.load(junk), doctest::Contains("not a pcnas supernet state"), nn::state_error);
}

TEST_CASE("an exploding loss stops training with the step and a clear message") {
  const auto train = random_images(256, 8), val = random_images(64, 9);
  fast b({.threads = 1});
  nn::supernet_trainer<fast, small> t(b, train, val, {.batch_size = 32, .eval_batch_size = 64, .validation_images = 64});
  const std::vector<int> arch{1, 1};
  // A learning rate this large throws the weights far out at once: the loss explodes (and may
  // later settle on one class at chance level, which is what must not pass silently).
  bool stopped = false;
  std::string message;
  for (int i = 0; i < 40 && !stopped; ++i) {
    try {
      (void)t.train_step(arch, 1e4);
    } catch (const nn::training_diverged& e) {
      stopped = true;
      message = e.what();
    }
  }
  REQUIRE(stopped);
  CHECK(message.find("training diverged at step ") != std::string::npos);
  CHECK(message.find("lower the learning rate") != std::string::npos);
}

TEST_CASE("a moderate learning rate never trips the divergence check") {
  const auto train = random_images(256, 10), val = random_images(64, 11);
  fast b({.threads = 1});
  nn::supernet_trainer<fast, small> t(b, train, val, {.batch_size = 32, .eval_batch_size = 64, .validation_images = 64});
  const std::vector<int> arch{0, 1};
  for (int i = 0; i < 60; ++i) CHECK_NOTHROW((void)t.train_step(arch, 0.1));
}
