// The same seed gives the same search, release after release: these results were recorded from
// the searches as they were before they moved onto the driver (search/driver.hpp) and must not
// change without a deliberate reason. The synthetic supernet has no tensor kernels, so nothing
// here depends on the CPU's instruction set.
#include <doctest/doctest.h>

#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/spos_evolution.hpp>

#include <vector>

#include "search_problem.hpp"

using namespace pcnas::search;

TEST_CASE("pinned results: PC-NAS, SPOS + evolution and random search on a fixed problem and seed") {
  const auto problem = pcnas_test::make_search_problem(11, 6, 5, 0.45);
  const auto k = problem.constraint();

  auto n1 = problem.supernet();
  const auto p = pc_nas_search(n1, k, {.pool_size = 3, .completions = 4, .total_steps = 900, .seed = 5});
  CHECK(p.best_arch == std::vector<int>{4, 1, 2, 1, 2, 1});
  CHECK(p.best_accuracy == doctest::Approx(0.82505544482483917).epsilon(1e-12));
  CHECK(p.evaluations == 244);

  auto n2 = problem.supernet();
  const auto s = spos_search(n2, k, {.training = {.total_steps = 900, .seed = 5}, .evolution = {.evaluations = 120, .seed = 5}});
  CHECK(s.search.best_arch == std::vector<int>{4, 1, 2, 1, 4, 2});
  CHECK(s.search.best_accuracy == doctest::Approx(0.82604627951696052).epsilon(1e-12));
  CHECK(s.search.evaluations == 120);

  auto n3 = problem.supernet();
  (void)train_uniform(n3, k, {.total_steps = 900, .seed = 5});
  const auto r = random_search(n3, k, {.evaluations = 120, .seed = 5});
  CHECK(r.best_arch == std::vector<int>{4, 1, 2, 1, 0, 2});
  CHECK(r.best_accuracy == doctest::Approx(0.80839122426874721).epsilon(1e-12));
  CHECK(r.evaluations == 120);
}
