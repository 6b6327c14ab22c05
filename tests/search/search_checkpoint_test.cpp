// Checkpoint and resume: a search killed at any point (simulated by a callback that throws)
// and resumed from its checkpoint ends with exactly the result of an uninterrupted one, and a
// damaged, truncated or foreign checkpoint is refused with a message.
#include <doctest/doctest.h>

#include <pcnas/io/atomic_file.hpp>
#include <pcnas/search/pc_nas.hpp>

#include <filesystem>
#include <sstream>
#include <string>

#include "io/temp_dir.hpp"
#include "search_problem.hpp"
#include "synthetic_supernet.hpp"

using namespace pcnas::search;
using pcnas_test::make_search_problem;

namespace {

struct simulated_kill {};

// Throws at a given training step, or at a given candidate of a given pool step.
struct killer {
  std::size_t at_step = static_cast<std::size_t>(-1);
  std::size_t at_layer = static_cast<std::size_t>(-1);
  std::size_t at_candidate = 0;
  void on_step(const step_info& i) {
    if (i.step == at_step) throw simulated_kill{};
  }
  void on_candidate(const candidate_info& i) {
    if (i.layer == at_layer && i.index == at_candidate) throw simulated_kill{};
  }
};

struct step_counter {
  std::size_t steps = 0;
  std::size_t first = static_cast<std::size_t>(-1);
  std::vector<std::string> events{};
  void on_step(const step_info& i) {
    if (steps++ == 0) first = i.step;
  }
  void on_event(const event_info& e) { events.emplace_back(e.kind); }
};

std::string state_of(const pcnas_test::synthetic_supernet& net) {
  std::ostringstream out;
  net.save(out);
  return out.str();
}

void check_same(const pc_nas_result& a, const pc_nas_result& b) {
  CHECK(a.best_arch == b.best_arch);
  CHECK(a.best_accuracy == b.best_accuracy);  // bit for bit, not approximately
  CHECK(a.predicted_cost == b.predicted_cost);
  CHECK(a.steps_done == b.steps_done);
  CHECK(a.evaluations == b.evaluations);
  REQUIRE(a.history.size() == b.history.size());
  for (std::size_t l = 0; l < a.history.size(); ++l) {
    CHECK(a.history[l].steps_done == b.history[l].steps_done);
    CHECK(std::bit_cast<std::uint64_t>(a.history[l].mean_train_loss) ==
          std::bit_cast<std::uint64_t>(b.history[l].mean_train_loss));
    REQUIRE(a.history[l].pool.size() == b.history[l].pool.size());
    for (std::size_t i = 0; i < a.history[l].pool.size(); ++i) {
      CHECK(a.history[l].pool[i].prefix == b.history[l].pool[i].prefix);
      CHECK(a.history[l].pool[i].potential == b.history[l].pool[i].potential);
      CHECK(a.history[l].pool[i].mean_cost == b.history[l].pool[i].mean_cost);
    }
  }
}

const auto problem = make_search_problem(3);
const pc_nas_options base{.total_steps = 2000, .seed = 17};

pc_nas_options with_checkpoint(const std::filesystem::path& path, std::size_t every = 64) {
  auto o = base;
  o.checkpoint = {.path = path, .every_steps = every, .resume = true};
  return o;
}

}  // namespace

TEST_CASE("checkpoint: a search killed during training resumes to the same result") {
  const auto k = problem.constraint();
  auto reference_net = problem.supernet();
  const auto reference = pc_nas_search(reference_net, k, base);

  pcnas_test::temp_dir dir("ckpt_train");
  const auto path = dir / "search.ckpt";
  // Killed in the warm-up, then in an interval, then left to finish: three processes' worth.
  for (std::size_t kill_at : {300u, 1234u}) {
    auto net = problem.supernet();
    killer k_cb{.at_step = kill_at};
    CHECK_THROWS_AS(pc_nas_search(net, k, with_checkpoint(path), k_cb), simulated_kill);
    CHECK(std::filesystem::exists(path));
  }
  auto net = problem.supernet();
  step_counter counter;
  const auto resumed = pc_nas_search(net, k, with_checkpoint(path), counter);
  CHECK(resumed.resumed);
  CHECK(counter.events.front() == "resume");
  CHECK(counter.first == 1234 / 64 * 64);  // continues after the last checkpoint before the kill
  check_same(resumed, reference);
  CHECK(state_of(net) == state_of(reference_net));

  // Only the checkpoint is left: no temporary files.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  CHECK(files == 1);

  // Resuming a finished search returns its result without training again.
  auto again = problem.supernet();
  step_counter none;
  check_same(pc_nas_search(again, k, with_checkpoint(path), none), reference);
  CHECK(none.steps == 0);
}

TEST_CASE("checkpoint: a search killed during a pool step resumes to the same result") {
  const auto k = problem.constraint();
  auto reference_net = problem.supernet();
  const auto reference = pc_nas_search(reference_net, k, base);

  pcnas_test::temp_dir dir("ckpt_pool");
  const auto path = dir / "search.ckpt";
  {
    auto net = problem.supernet();
    killer k_cb{.at_layer = 3, .at_candidate = 5};
    // every_steps = 0: checkpoints only after pool steps.
    CHECK_THROWS_AS(pc_nas_search(net, k, with_checkpoint(path, 0), k_cb), simulated_kill);
  }
  auto net = problem.supernet();
  const auto resumed = pc_nas_search(net, k, with_checkpoint(path, 0));
  check_same(resumed, reference);
  CHECK(state_of(net) == state_of(reference_net));
}

TEST_CASE("checkpoint: writing checkpoints does not change the search") {
  const auto k = problem.constraint();
  auto a = problem.supernet();
  const auto plain = pc_nas_search(a, k, base);
  pcnas_test::temp_dir dir("ckpt_same");
  auto b = problem.supernet();
  check_same(pc_nas_search(b, k, with_checkpoint(dir / "x.ckpt", 7)), plain);
}

TEST_CASE("checkpoint: damaged, truncated and foreign checkpoints are refused") {
  const auto k = problem.constraint();
  pcnas_test::temp_dir dir("ckpt_bad");
  const auto path = dir / "search.ckpt";
  {
    auto net = problem.supernet();
    killer k_cb{.at_step = 700};
    CHECK_THROWS_AS(pc_nas_search(net, k, with_checkpoint(path), k_cb), simulated_kill);
  }
  const std::string good = pcnas::io::read_file(path);
  auto resume_with = [&](const std::string& bytes, pc_nas_options options) {
    pcnas::io::write_file_atomically(path, bytes);
    auto net = problem.supernet();
    return pc_nas_search(net, k, options);
  };

  SUBCASE("a flipped byte") {
    std::string bad = good;
    bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x10);
    CHECK_THROWS_WITH_AS(resume_with(bad, with_checkpoint(path)),
                         doctest::Contains("refused checkpoint: the checksum does not match"), std::runtime_error);
  }
  SUBCASE("truncated") {
    CHECK_THROWS_WITH_AS(resume_with(good.substr(0, good.size() - 100), with_checkpoint(path)),
                         doctest::Contains("(truncated)"), std::runtime_error);
    CHECK_THROWS_WITH_AS(resume_with(good.substr(0, 20), with_checkpoint(path)),
                         doctest::Contains("less than the 32-byte header (truncated)"), std::runtime_error);
  }
  SUBCASE("not a checkpoint, or another version") {
    CHECK_THROWS_WITH_AS(resume_with("{\"json\": true}" + std::string(40, ' '), with_checkpoint(path)),
                         doctest::Contains("not a pcnas checkpoint"), std::runtime_error);
    std::string v3 = good;
    v3[8] = 3;
    CHECK_THROWS_WITH_AS(resume_with(v3, with_checkpoint(path)), doctest::Contains("format version 3"),
                         std::runtime_error);
  }
  SUBCASE("written by a search with other options") {
    auto other = with_checkpoint(path);
    other.seed = 18;
    CHECK_THROWS_WITH_AS(resume_with(good, other), doctest::Contains("other options, another seed or another constraint"),
                         std::runtime_error);
  }
  SUBCASE("the refused file is left as it was, and resume = false starts afresh") {
    std::string bad = good;
    bad.back() = static_cast<char>(bad.back() ^ 1);
    CHECK_THROWS_AS(resume_with(bad, with_checkpoint(path)), std::runtime_error);
    CHECK(pcnas::io::read_file(path) == bad);
    auto fresh = with_checkpoint(path);
    fresh.checkpoint.resume = false;
    auto net = problem.supernet();
    const auto result = pc_nas_search(net, k, fresh);
    CHECK(!result.resumed);
    CHECK(result.steps_done == base.total_steps);
  }
}

TEST_CASE("checkpoint: a diverged run leaves its last checkpoint usable") {
  const auto k = problem.constraint();
  pcnas_test::temp_dir dir("ckpt_nan");
  const auto path = dir / "search.ckpt";
  auto net = problem.supernet();
  net.fail_with_nan_at_step(900);
  CHECK_THROWS_WITH_AS(pc_nas_search(net, k, with_checkpoint(path)), doctest::Contains("training diverged"),
                       std::runtime_error);
  auto fresh = problem.supernet();
  step_counter counter;
  const auto result = pc_nas_search(fresh, k, with_checkpoint(path), counter);
  CHECK(counter.first == 896);
  CHECK(result.steps_done == base.total_steps);
}
