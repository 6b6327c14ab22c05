// A new method is one header (greedy_method.hpp) and one row in a method table: the driver
// gives it resume from checkpoints, the exact same result after a kill, events, and the JSON
// of every arch_search_result. Random search, moved onto the same driver, resumes exactly too.
#include <doctest/doctest.h>

#include <pcnas/json/search_result.hpp>
#include <pcnas/search/method_table.hpp>
#include <pcnas/search/random_search.hpp>

#include <string>
#include <vector>

#include "greedy_method.hpp"
#include "io/temp_dir.hpp"
#include "search_problem.hpp"
#include "synthetic_supernet.hpp"

using namespace pcnas::search;
using pcnas_test::make_search_problem;

namespace {

struct simulated_kill {};
struct kill_at_evaluation {
  std::size_t at = 0;
  std::size_t seen = 0;
  void on_evaluation(const evaluation_info&) {
    if (++seen == at) throw simulated_kill{};
  }
};
struct events {
  std::vector<std::string> kinds;
  void on_event(const event_info& e) { kinds.emplace_back(e.kind); }
};

struct random_row {
  static constexpr std::string_view name = "random";
  template <class Net, class... Cb>
  static arch_search_result run(Net& net, const pcnas::cost::constraint& k, const checkpoint_options& c, Cb&... cb) {
    return random_search(net, k, {.evaluations = 60, .seed = 3, .checkpoint = c, .checkpoint_every = 7}, cb...);
  }
};
struct greedy_row {
  static constexpr std::string_view name = "greedy";
  template <class Net, class... Cb>
  static arch_search_result run(Net& net, const pcnas::cost::constraint& k, const checkpoint_options& c, Cb&... cb) {
    return run_search(pcnas_test::greedy_method({.seed = 3}), net, k, c, cb...);
  }
};

using methods = method_table<random_row, greedy_row>;  // the registration: one row per method

arch_search_result run_by_name(std::string_view name, const pcnas_test::search_problem& problem,
                               const pcnas::cost::constraint& k, const checkpoint_options& c, auto&... cb) {
  auto net = problem.supernet();
  arch_search_result r;
  const bool found = methods::dispatch(name, [&](auto row) { r = row.run(net, k, c, cb...); });
  REQUIRE(found);
  return r;
}

}  // namespace

TEST_CASE("method table: names, lookup, and an unknown name") {
  CHECK(methods::names() == "random or greedy");
  CHECK(methods::contains("greedy"));
  CHECK(!methods::contains("evolution"));
  CHECK(!methods::dispatch("evolution", [](auto) { FAIL("no row is called evolution"); }));
}

TEST_CASE("a method added in one header runs, resumes after a kill to the same result, and reports") {
  const auto problem = make_search_problem(6, 5, 4, 0.5);
  const auto k = problem.constraint();
  for (const std::string_view name : {"random", "greedy"}) {
    CAPTURE(name);
    const auto reference = run_by_name(name, problem, k, {});
    REQUIRE(!reference.best_arch.empty());
    CHECK(k.is_feasible(reference.best_arch));
    for (const auto& e : reference.evaluated) CHECK(k.is_feasible(e.arch));

    pcnas_test::temp_dir dir("method_table");
    const checkpoint_options c{.path = dir / "ckpt.bin"};
    kill_at_evaluation kill{.at = reference.evaluations / 2 + 1};
    CHECK_THROWS_AS(run_by_name(name, problem, k, c, kill), simulated_kill);
    REQUIRE(std::filesystem::exists(c.path));
    events seen;
    const auto resumed = run_by_name(name, problem, k, c, seen);
    CHECK(resumed.resumed);
    CHECK(seen.kinds.front() == "resume");
    CHECK(resumed.best_arch == reference.best_arch);
    CHECK(resumed.best_accuracy == reference.best_accuracy);
    REQUIRE(resumed.evaluated.size() == reference.evaluated.size());
    for (std::size_t i = 0; i < resumed.evaluated.size(); ++i) CHECK(resumed.evaluated[i].arch == reference.evaluated[i].arch);
    const auto j = pcnas::io::to_json(resumed, std::string(name));
    CHECK(j.at("algorithm") == std::string(name));
    CHECK(j.at("best_arch").size() == k.num_layers());
  }
}

TEST_CASE("a checkpoint of one method is refused by another") {
  const auto problem = make_search_problem(6, 5, 4, 0.5);
  const auto k = problem.constraint();
  pcnas_test::temp_dir dir("method_kinds");
  const checkpoint_options c{.path = dir / "ckpt.bin"};
  (void)run_by_name("random", problem, k, c);
  CHECK_THROWS_WITH_AS(run_by_name("greedy", problem, k, c), doctest::Contains("holds a 'random_search' state"),
                       std::runtime_error);
}
