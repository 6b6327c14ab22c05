// The baseline: uniform one-shot training, evolution and random search on the synthetic
// supernet. Everything they train or evaluate meets the constraint, evaluations are distinct
// and counted against PC-NAS's budget, small spaces end without spinning, and resume is exact.
#include <doctest/doctest.h>

#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/spos_evolution.hpp>

#include <set>
#include <sstream>
#include <vector>

#include "io/temp_dir.hpp"
#include "search_problem.hpp"
#include "synthetic_supernet.hpp"

using namespace pcnas::search;
using pcnas_test::make_search_problem;

namespace {

struct watch {
  const pcnas::cost::constraint* k = nullptr;
  std::size_t violations = 0;
  std::vector<std::vector<int>> trained{};
  std::vector<std::vector<int>> evaluated{};
  std::size_t generations = 0;
  void on_step(const step_info& i) {
    trained.emplace_back(i.arch.begin(), i.arch.end());
    if (!(k->model().predict(i.arch) <= k->limit())) ++violations;
  }
  void on_evaluation(const evaluation_info& i) {
    evaluated.emplace_back(i.arch.begin(), i.arch.end());
    if (!(i.cost <= k->limit()) || !k->is_feasible(i.arch)) ++violations;
  }
  void on_generation(const generation_info& g) {
    ++generations;
    for (std::size_t i = 1; i < g.best.size(); ++i)
      if (g.best[i - 1].accuracy < g.best[i].accuracy) ++violations;
  }
};

struct simulated_kill {};
struct kill_at_evaluation {
  std::size_t at = 0;
  void on_evaluation(const evaluation_info& i) {
    if (i.index == at) throw simulated_kill{};
  }
};
struct kill_at_step {
  std::size_t at = 0;
  void on_step(const step_info& i) {
    if (i.step == at) throw simulated_kill{};
  }
};

std::string state_of(const pcnas_test::synthetic_supernet& net) {
  std::ostringstream out;
  net.save(out);
  return out.str();
}

}  // namespace

TEST_CASE("uniform training trains only feasible paths, the same ones as PC-NAS's warm-up") {
  const auto problem = make_search_problem(4, 6, 4, 0.3);
  const auto k = problem.constraint();
  auto net = problem.supernet();
  watch w{.k = &k};
  const auto r = train_uniform(net, k, {.total_steps = 800, .seed = 5}, w);
  CHECK(r.steps_done == 800);
  CHECK(w.violations == 0);
  CHECK(w.trained.size() == 800);
  CHECK(r.final_loss < r.mean_loss);  // it learns

  auto other = problem.supernet();
  watch pc{.k = &k};
  (void)pc_nas_search(other, k, {.total_steps = 1000, .seed = 5}, pc);
  // PC-NAS's warm-up is 250 steps of the same stream.
  for (std::size_t t = 0; t < 250; ++t) CHECK(pc.trained[t] == w.trained[t]);
}

TEST_CASE("evolution: feasible, distinct, budgeted evaluations that find a good architecture") {
  const auto problem = make_search_problem(2, 6, 4, 0.4);
  const auto k = problem.constraint();
  auto net = problem.supernet();
  watch w{.k = &k};
  const auto result = spos_search(net, k, {.training = {.total_steps = 3000, .seed = 2}, .evolution = {.seed = 2}}, w);
  const std::size_t budget = pc_nas_nominal_evaluations(k.choices_per_layer(), 5, 8);
  CHECK(result.search.evaluations == budget);  // the default: PC-NAS's nominal count
  CHECK(w.evaluated.size() == budget);
  CHECK(std::set<std::vector<int>>(w.evaluated.begin(), w.evaluated.end()).size() == budget);
  CHECK(w.violations == 0);
  CHECK(w.generations == result.search.generations);
  CHECK(result.search.generations == (budget + 49) / 50);
  CHECK(k.is_feasible(result.search.best_arch));
  for (const auto& s : result.search.evaluated) CHECK(s.accuracy <= result.search.best_accuracy);
  CHECK(result.search.predicted_cost == k.model().predict(result.search.best_arch));
  // With a well-trained supernet it ranks near the top of the feasible space.
  CHECK(problem.rank_of(result.search.best_arch) <= problem.feasible().size() / 100);
  // Evolution improves on its random initial population.
  CHECK(result.search.best_per_generation.back() >= result.search.best_per_generation.front());
}

TEST_CASE("evolution and random search end on a space smaller than their budget") {
  // 2·2·3 = 12 architectures, of which the limit leaves a handful.
  const pcnas::cost::additive_cost_model m{.name = "latency", .unit = "ms", .fixed = 0.0,
                                           .per_layer = {{1, 3}, {1, 3}, {1, 2, 3}}};
  const pcnas::cost::constraint k(m, {.limit = 5, .resolution = 1.0});
  const auto feasible = k.count_feasible().low();
  REQUIRE(feasible == 5);
  pcnas_test::synthetic_supernet net({{0.1, 0.9}, {0.2, 0.8}, {0.3, 0.5, 0.7}}, 1);
  (void)train_uniform(net, k, {.total_steps = 300});
  watch w{.k = &k};
  const auto evo = evolution_search(net, k, {.population = 4, .parents = 2, .evaluations = 100}, w);
  CHECK(evo.evaluations == feasible);
  CHECK(evo.exhausted);
  CHECK(w.violations == 0);
  const auto rnd = random_search(net, k, {.evaluations = 100, .seed = 3});
  CHECK(rnd.evaluations == feasible);
  CHECK(rnd.exhausted);
  CHECK(evo.best_arch == rnd.best_arch);  // both saw the whole feasible space
}

TEST_CASE("random search: distinct feasible architectures, best by held-out accuracy") {
  const auto problem = make_search_problem(6, 6, 4, 0.35);
  const auto k = problem.constraint();
  auto net = problem.supernet();
  (void)train_uniform(net, k, {.total_steps = 2000, .seed = 6});
  watch w{.k = &k};
  const auto r = random_search(net, k, {.evaluations = 200, .seed = 6}, w);
  CHECK(r.evaluations == 200);
  CHECK(w.violations == 0);
  CHECK(std::set<std::vector<int>>(w.evaluated.begin(), w.evaluated.end()).size() == 200);
  CHECK(r.top.size() == 10);
  CHECK(r.best_arch == r.top.front().arch);
  for (std::size_t i = 1; i < r.top.size(); ++i) CHECK(r.top[i - 1].accuracy >= r.top[i].accuracy);
}

TEST_CASE("evolution and uniform training resume from checkpoints to the same result") {
  const auto problem = make_search_problem(8, 6, 4, 0.4);
  const auto k = problem.constraint();
  const spos_options options{.training = {.total_steps = 1500, .seed = 8}, .evolution = {.seed = 8}};
  auto reference_net = problem.supernet();
  const auto reference = spos_search(reference_net, k, options);

  pcnas_test::temp_dir dir("ckpt_spos");
  auto with_paths = options;
  with_paths.training.checkpoint = {.path = dir / "train.ckpt", .every_steps = 100};
  with_paths.evolution.checkpoint = {.path = dir / "evolution.ckpt"};
  {
    auto net = problem.supernet();
    kill_at_step kill{.at = 777};
    CHECK_THROWS_AS(spos_search(net, k, with_paths, kill), simulated_kill);
  }
  {
    auto net = problem.supernet();
    kill_at_evaluation kill{.at = 123};
    CHECK_THROWS_AS(spos_search(net, k, with_paths, kill), simulated_kill);
  }
  auto net = problem.supernet();
  const auto resumed = spos_search(net, k, with_paths);
  CHECK(resumed.training.resumed);
  CHECK(resumed.search.resumed);
  CHECK(resumed.training.final_loss == reference.training.final_loss);
  CHECK(resumed.search.best_arch == reference.search.best_arch);
  CHECK(resumed.search.best_accuracy == reference.search.best_accuracy);
  CHECK(resumed.search.best_per_generation == reference.search.best_per_generation);
  REQUIRE(resumed.search.evaluated.size() == reference.search.evaluated.size());
  for (std::size_t i = 0; i < resumed.search.evaluated.size(); ++i)
    CHECK(resumed.search.evaluated[i].arch == reference.search.evaluated[i].arch);
  CHECK(state_of(net) == state_of(reference_net));
}
