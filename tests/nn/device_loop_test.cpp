// The training loop as a device sees it, counted on the reference backend: host waits per step
// with deferred loss reads, allocations on a repeated path, uploads of the data per search, one
// optimizer call per step, and evaluations issued back to back. Each count is checked against
// the plain loop too, so that a test cannot pass by counting nothing.
#include <pcnas/backend/eigen.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/testing/supernet_checks.hpp>

#include "support/counting_backend.hpp"

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

namespace nn = pcnas::nn;
namespace search = pcnas::search;
using pcnas::testing::conformance_space;
using pcnas::testing::synthetic_images;

namespace {

using plain = user_counting::backend<float>;
using device_loop = user_counting::backend<float, true>;
static_assert(!pcnas::backend::has_sgd_update_many<plain> && !pcnas::backend::has_gather<plain>);
static_assert(pcnas::backend::has_sgd_update_many<device_loop> && pcnas::backend::has_gather<device_loop>);

const std::vector<int> path_a{0, 2, 0}, path_b{1, 1, 1};

struct fixture {
  pcnas::data::dataset train = synthetic_images(256, 3);
  pcnas::data::dataset val = synthetic_images(64, 4);
  nn::trainer_options options(std::size_t read_every = 1) const {
    return {.batch_size = 16, .eval_batch_size = 32, .recalibration_batches = 2, .validation_images = 64, .seed = 5,
            .loss_read_interval = read_every};
  }
};

template <class T>
std::string state_of(const T& trainer) {
  std::ostringstream out;
  trainer.save(out);
  return out.str();
}

}  // namespace

TEST_CASE("the loss is read every k steps: one host wait per k steps, the same training") {
  fixture f;
  plain b1, b4;
  nn::supernet_trainer<plain, conformance_space> every(b1, f.train, f.val, f.options(1));
  nn::supernet_trainer<plain, conformance_space> deferred(b4, f.train, f.val, f.options(4));
  double first_every = every.train_step(path_a, 0.05), first_deferred = deferred.train_step(path_a, 0.05);
  CHECK(first_every == first_deferred);  // the first step is always read
  const long waits_every = b1.count.waits, waits_deferred = b4.count.waits;
  for (int i = 0; i < 40; ++i) {
    every.train_step(i % 2 ? path_a : path_b, 0.05);
    deferred.train_step(i % 2 ? path_a : path_b, 0.05);
  }
  CHECK(b1.count.waits - waits_every == 40);
  CHECK(b4.count.waits - waits_deferred == 10);
  CHECK(deferred.unread_steps() == 0);
  CHECK(state_of(every) == state_of(deferred));
}

TEST_CASE("a deferred loss still stops a diverged run, within k steps and before any save") {
  fixture f;
  device_loop b;
  nn::supernet_trainer<device_loop, conformance_space> t(b, f.train, f.val, f.options(4));
  t.train_step(path_a, 0.05);  // read
  t.train_step(path_a, 0.05);
  t.train_step(path_a, std::nan(""));  // poisons every weight of the path
  t.train_step(path_a, 0.05);          // a NaN loss, not read yet
  CHECK(t.unread_steps() == 3);
  std::ostringstream out;
  CHECK_THROWS_AS(t.save(out), nn::training_diverged);
  CHECK(out.str().empty());
  // Without the save, the next read (step 5) would have caught it.
  nn::supernet_trainer<device_loop, conformance_space> u(b, f.train, f.val, f.options(4));
  u.train_step(path_a, 0.05);
  u.train_step(path_a, 0.05);
  u.train_step(path_a, std::nan(""));
  u.train_step(path_a, 0.05);
  try {
    u.train_step(path_a, 0.05);
    FAIL("a NaN loss went unnoticed for more than k steps");
  } catch (const nn::training_diverged& e) {
    CHECK(std::string(e.what()).find("at steps 2-5") != std::string::npos);
  }
}

TEST_CASE("a repeated path allocates nothing, in training and in evaluation") {
  fixture f;
  for (const bool loop : {false, true}) {
    CAPTURE(loop);
    auto check = [&](auto& b) {
      using B = std::remove_cvref_t<decltype(b)>;
      nn::supernet_trainer<B, conformance_space> t(b, f.train, f.val, f.options(1));
      for (int i = 0; i < 2; ++i) t.train_step(path_a, 0.05);
      const long after_warmup = b.count.allocations;
      for (int i = 0; i < 20; ++i) t.train_step(path_a, 0.05);
      CHECK(b.count.allocations == after_warmup);
      // Recalibration (training batches) and evaluation (larger batches) alternate, so the
      // activation pool settles over two rounds; from then on nothing is allocated.
      for (int i = 0; i < 2; ++i) {
        t.recalibrate(path_b);
        (void)t.evaluate(path_b);
      }
      const long settled = b.count.allocations;
      for (int i = 0; i < 5; ++i) {
        t.recalibrate(path_b);
        (void)t.evaluate(path_b);
      }
      CHECK(b.count.allocations == settled);
    };
    if (loop) {
      device_loop b;
      check(b);
    } else {
      plain b;
      check(b);
    }
  }
}

TEST_CASE("a search uploads its data once; evaluations of a candidate run back to back") {
  fixture f;
  const auto macs = pcnas::cost::analytic_model<conformance_space>(pcnas::cost::analytic_measure::macs);
  const pcnas::cost::constraint any(macs, {.limit = macs.max_total()});
  // Counts from the start of the search: building the supernet uploads its initial weights.
  auto run = [&](auto& b, std::size_t steps) {
    using B = std::remove_cvref_t<decltype(b)>;
    nn::supernet_trainer<B, conformance_space> t(b, f.train, f.val, f.options(4));
    b.count = {};
    return search::pc_nas_search(t, any, {.pool_size = 2, .completions = 3, .total_steps = steps, .seed = 9});
  };
  device_loop short_run, long_run;
  const auto a = run(short_run, 40);
  const auto b = run(long_run, 80);
  CHECK(a.steps_done == 40);
  // The training set (1), the recalibration batches (2) and the validation batches (64/32 = 2):
  // once each, however long the search.
  CHECK(short_run.count.image_uploads == 5);
  CHECK(long_run.count.image_uploads == 5);
  // One optimizer call per step.
  CHECK(long_run.count.sgd_calls == 80);
  // The plain loop uploads every training batch and calls the optimizer per tensor.
  plain uploads_each_batch;
  const auto c = run(uploads_each_batch, 80);
  CHECK(uploads_each_batch.count.image_uploads == 80 + 4);
  CHECK(uploads_each_batch.count.sgd_calls > 2 * 80);
  // The same search either way.
  CHECK(c.best_arch == b.best_arch);
  CHECK(c.best_accuracy == b.best_accuracy);
  CHECK(c.evaluations == b.evaluations);
  // Host waits: one per 4 training steps (plus the first), one per candidate's evaluate_all.
  std::size_t candidates = 0;
  for (const auto& h : b.history) candidates += h.candidates;
  CHECK(long_run.count.waits <= static_cast<long>(80 / 4 + 1 + candidates));
  CHECK(b.evaluations > candidates);  // so that several evaluations share one wait
}

TEST_CASE_TEMPLATE("evaluate_all gives what one-at-a-time calls give, bit for bit, and leaves the same state", B,
                   device_loop, pcnas::backend::eigen::backend) {
  fixture f;
  // Every level kept, the first one or two (a level is about 100 kB here), none.
  for (const std::size_t budget : {std::size_t{1} << 30, std::size_t{250'000}, std::size_t{0}}) {
    CAPTURE(budget);
    B b1, b2;
    auto kept = f.options(1);
    kept.kept_outputs_bytes = budget;
    nn::supernet_trainer<B, conformance_space> one(b1, f.train, f.val, f.options(1));
    nn::supernet_trainer<B, conformance_space> all(b2, f.train, f.val, kept);
    for (int i = 0; i < 10; ++i) {
      one.train_step(i % 2 ? path_a : path_b, 0.05);
      all.train_step(i % 2 ? path_a : path_b, 0.05);
    }
    // No shared choice (only the stem is shared), one, and two: the shared layers run once.
    const std::vector<std::vector<std::vector<int>>> groups{
        {path_a, path_b, {1, 0, 0}, {0, 1, 1}}, {{1, 0, 0}, {1, 1, 1}, {1, 2, 0}}, {{0, 2, 0}, {0, 2, 1}}, {path_b}};
    // The groups follow each other with nothing in between, so each call also reuses what the
    // last one kept; a training step in between must make it start afresh.
    for (const bool recalibrate : {true, false, true})
      for (const auto& archs : groups) {
        if (&archs == &groups.back()) {
          one.train_step(path_a, 0.05);
          all.train_step(path_a, 0.05);
        }
        CAPTURE(recalibrate);
        CAPTURE(archs.size());
        std::vector<double> expected;
        for (const auto& a : archs) {
          if (recalibrate) one.recalibrate(a);
          expected.push_back(one.evaluate(a));
        }
        CHECK(all.evaluate_all(archs, recalibrate) == expected);
        CHECK(state_of(all) == state_of(one));
      }
  }
}

TEST_CASE("evaluate_all waits for the device once") {
  fixture f;
  device_loop b;
  nn::supernet_trainer<device_loop, conformance_space> t(b, f.train, f.val, f.options(1));
  t.train_step(path_a, 0.05);
  const std::vector<std::vector<int>> archs{path_a, path_b, {1, 0, 0}, {1, 0, 1}};
  const long waits = b.count.waits;
  (void)t.evaluate_all(archs, true);
  CHECK(b.count.waits - waits == 1);
  // One at a time, each evaluation waits.
  const long before = b.count.waits;
  for (const auto& a : archs) {
    t.recalibrate(a);
    (void)t.evaluate(a);
  }
  CHECK(b.count.waits - before == 4);
}
