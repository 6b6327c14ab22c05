// The additive cost model and the exact constraint: counts and feasibility against brute-force
// enumeration, uniformity of the sampler by a chi-square test, and the error paths.
#include <doctest/doctest.h>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/cost/count128.hpp>
#include <pcnas/cost/table.hpp>
#include <pcnas/rng.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

using pcnas::rng;
using pcnas::cost::additive_cost_model;
using pcnas::cost::constraint;
using pcnas::cost::constraint_options;
using pcnas::cost::count128;

namespace {

// Every architecture of a model, in lexicographic order.
std::vector<std::vector<int>> enumerate(const additive_cost_model& m) {
  std::vector<std::vector<int>> out{{}};
  for (std::size_t l = 0; l < m.num_layers(); ++l) {
    std::vector<std::vector<int>> next;
    for (const auto& p : out)
      for (std::size_t c = 0; c < m.num_choices(l); ++c) {
        auto q = p;
        q.push_back(static_cast<int>(c));
        next.push_back(q);
      }
    out = std::move(next);
  }
  return out;
}

additive_cost_model random_model(rng& r, std::size_t layers, std::size_t max_choices, bool on_grid) {
  additive_cost_model m{.name = "latency", .unit = "ms", .fixed = 0.0, .per_layer = {}};
  m.fixed = on_grid ? static_cast<double>(r.uniform_index(3)) : r.uniform01();
  for (std::size_t l = 0; l < layers; ++l) {
    const std::size_t n = 1 + r.uniform_index(max_choices);
    std::vector<double> row;
    for (std::size_t c = 0; c < n; ++c)
      row.push_back(on_grid ? static_cast<double>(r.uniform_index(10)) : 10.0 * r.uniform01());
    m.per_layer.push_back(row);
  }
  return m;
}

bool starts_with(const std::vector<int>& arch, const std::vector<int>& prefix) {
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (arch[i] != prefix[i]) return false;
  return true;
}

double chi_square(const std::map<std::vector<int>, int>& hits, std::size_t cells, int draws) {
  const double expected = static_cast<double>(draws) / static_cast<double>(cells);
  double chi2 = 0.0;
  std::size_t seen = 0;
  for (const auto& [arch, n] : hits) {
    chi2 += (n - expected) * (n - expected) / expected;
    ++seen;
  }
  chi2 += static_cast<double>(cells - seen) * expected;  // cells never drawn
  return chi2;
}

// df + 5·sqrt(2·df): beyond the 0.9999 quantile of χ²(df) for every df used here, yet far below
// what a visibly biased sampler produces (checked below with a greedy sampler).
double chi_square_bound(std::size_t cells) {
  const double df = static_cast<double>(cells - 1);
  return df + 5.0 * std::sqrt(2.0 * df);
}

}  // namespace

TEST_CASE("count128: exact arithmetic beyond 64 bits and refused overflow") {
  count128 a{~std::uint64_t{0}};
  a += count128{6};
  CHECK(a.high() == 1);
  CHECK(a.low() == 5);
  CHECK(a.to_string() == "18446744073709551621");
  CHECK((a - count128{6}).to_string() == "18446744073709551615");
  CHECK(count128{0}.to_string() == "0");
  CHECK(count128{12345}.to_string() == "12345");
  const count128 max{~std::uint64_t{0}, ~std::uint64_t{0}};
  CHECK(max.to_string() == "340282366920938463463374607431768211455");
  CHECK_THROWS_AS(count128(max) += count128{1}, std::overflow_error);
  CHECK(count128{1} < a);
  CHECK(a.to_double() == doctest::Approx(18446744073709551621.0));

  rng r(3);
  const count128 n{2, 17};
  for (int i = 0; i < 200; ++i) CHECK(pcnas::cost::uniform_below(r, n) < n);
}

TEST_CASE("additive_cost_model: predict, bounds per layer, and messages") {
  additive_cost_model m{.name = "latency", .unit = "ms", .fixed = 1.0,
                        .per_layer = {{1.0, 2.0, 0.5}, {3.0, 4.0}}};
  CHECK(m.predict(std::vector<int>{0, 1}) == doctest::Approx(6.0));
  CHECK(m.layer_min(0) == 0.5);
  CHECK(m.layer_max(0) == 2.0);
  CHECK(m.min_total() == doctest::Approx(4.5));
  CHECK(m.max_total() == doctest::Approx(7.0));
  CHECK_THROWS_WITH_AS(m.predict(std::vector<int>{0}), doctest::Contains("has 1 layers, the model has 2"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(m.predict(std::vector<int>{0, 2}), doctest::Contains("layer 1 has choices 0..1, got 2"),
                       std::out_of_range);
  additive_cost_model bad = m;
  bad.per_layer[1][0] = std::nan("");
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("layer 1 choice 0 is not finite"),
                       std::invalid_argument);
}

TEST_CASE("constraint: counts and prefix feasibility equal brute force on grid costs") {
  rng r(2024);
  for (int trial = 0; trial < 200; ++trial) {
    const auto m = random_model(r, 1 + r.uniform_index(5), 4, /*on_grid=*/true);
    const double lo = m.min_total(), hi = m.max_total();
    const double limit = lo + static_cast<double>(r.uniform_index(static_cast<std::uint64_t>(hi - lo) + 2));
    const constraint k(m, {.limit = limit, .resolution = 1.0});
    const auto all = enumerate(m);
    std::uint64_t feasible = 0;
    for (const auto& a : all) feasible += m.predict(a) <= limit ? 1 : 0;
    REQUIRE(k.count_feasible() == count128{feasible});
    // Every prefix: feasible exactly when some completion meets the limit, with the right count.
    for (std::size_t len = 0; len <= m.num_layers(); ++len) {
      std::map<std::vector<int>, std::uint64_t> completions;
      for (const auto& a : all) {
        std::vector<int> p(a.begin(), a.begin() + static_cast<long>(len));
        completions[p] += m.predict(a) <= limit ? 1 : 0;
      }
      for (const auto& [p, n] : completions) {
        CHECK(k.is_feasible(p) == (n > 0));
        CHECK(k.count_completions(p) == count128{n});
        const auto b = k.bounds(p);
        CHECK(b.feasible == (n > 0));
        double best = 1e300;
        for (const auto& a : all)
          if (starts_with(a, p)) best = std::min(best, m.predict(a));
        CHECK(b.min_total == doctest::Approx(best));
      }
    }
    for (int s = 0; s < 20; ++s) CHECK(m.predict(k.sample(r)) <= limit);
  }
}

TEST_CASE("constraint: decimal costs on a decimal grid are decided as in exact arithmetic") {
  // 0.1 is not a binary fraction: (2.9 - 0.7) / 0.1 is 21.999999999999996 in doubles. The grid
  // tolerance must still put it on 22, or architectures at the limit would be lost.
  rng r(31);
  for (int trial = 0; trial < 100; ++trial) {
    additive_cost_model m{.name = "latency", .unit = "ms", .fixed = 0.3, .per_layer = {}};
    const std::size_t layers = 1 + r.uniform_index(4);
    std::int64_t min_tenths = 3, max_tenths = 3;
    std::vector<std::vector<std::int64_t>> tenths(layers);
    for (std::size_t l = 0; l < layers; ++l) {
      std::vector<double> row;
      for (std::size_t c = 0; c < 1 + r.uniform_index(4); ++c) {
        tenths[l].push_back(static_cast<std::int64_t>(r.uniform_index(40)));
        row.push_back(0.1 * static_cast<double>(tenths[l].back()));
      }
      min_tenths += *std::min_element(tenths[l].begin(), tenths[l].end());
      max_tenths += *std::max_element(tenths[l].begin(), tenths[l].end());
      m.per_layer.push_back(row);
    }
    const auto limit_tenths = min_tenths + static_cast<std::int64_t>(
                                               r.uniform_index(static_cast<std::uint64_t>(max_tenths - min_tenths + 1)));
    const constraint k(m, {.limit = 0.1 * static_cast<double>(limit_tenths), .resolution = 0.1});
    std::uint64_t feasible = 0;
    for (const auto& a : enumerate(m)) {
      std::int64_t t = 3;
      for (std::size_t l = 0; l < a.size(); ++l) t += tenths[l][static_cast<std::size_t>(a[l])];
      feasible += t <= limit_tenths ? 1 : 0;
    }
    CHECK(k.count_feasible() == count128{feasible});
  }
}

TEST_CASE("constraint: real-valued costs are decided conservatively, never above the limit") {
  rng r(77);
  for (int trial = 0; trial < 200; ++trial) {
    const auto m = random_model(r, 1 + r.uniform_index(5), 4, /*on_grid=*/false);
    const double limit = m.min_total() + r.uniform01() * (m.max_total() - m.min_total());
    const constraint k(m, {.limit = limit, .grid_steps = 1000});
    const auto all = enumerate(m);
    std::uint64_t real_feasible = 0, margin_feasible = 0, grid_feasible = 0;
    const double margin = static_cast<double>(m.num_layers()) * k.resolution();
    for (const auto& a : all) {
      real_feasible += m.predict(a) <= limit ? 1 : 0;
      margin_feasible += m.predict(a) <= limit - margin ? 1 : 0;
      std::int64_t units = 0;
      for (std::size_t l = 0; l < a.size(); ++l) units += k.unit_costs()[l][static_cast<std::size_t>(a[l])];
      grid_feasible += units <= k.budget_units() ? 1 : 0;
      if (units <= k.budget_units()) CHECK(m.predict(a) <= limit + 1e-12);
    }
    CHECK(k.count_feasible() == count128{grid_feasible});
    CHECK(grid_feasible <= real_feasible);
    CHECK(grid_feasible >= margin_feasible);
    for (int s = 0; s < 20; ++s) CHECK(m.predict(k.sample(r)) <= limit);
  }
}

TEST_CASE("constraint: sampling is uniform over the feasible space (chi-square)") {
  const additive_cost_model m{.name = "latency", .unit = "ms", .fixed = 0.5,
                              .per_layer = {{1.0, 2.0, 3.5, 0.25}, {0.75, 3.0, 1.25}, {2.25, 0.0, 1.5, 3.0}, {0.5, 2.0}}};
  const double limit = 5.5;  // costs on a 0.25 grid: the grid decision equals the real one
  const constraint k(m, {.limit = limit, .resolution = 0.25});
  std::size_t cells = 0;
  for (const auto& a : enumerate(m)) cells += m.predict(a) <= limit ? 1 : 0;
  REQUIRE(k.count_feasible() == count128{cells});
  REQUIRE(cells > 20);
  REQUIRE(cells < enumerate(m).size());

  const int draws = 200 * static_cast<int>(cells);
  rng r(12345);
  std::map<std::vector<int>, int> hits;
  for (int i = 0; i < draws; ++i) {
    const auto a = k.sample(r);
    REQUIRE(m.predict(a) <= limit);
    ++hits[a];
  }
  CHECK(hits.size() == cells);
  CHECK(chi_square(hits, cells, draws) < chi_square_bound(cells));

  // The test has power: a sampler that picks uniformly among the choices that keep the prefix
  // feasible (the common shortcut) is not uniform over architectures, and is caught.
  std::map<std::vector<int>, int> greedy;
  for (int i = 0; i < draws; ++i) {
    std::vector<int> a;
    for (std::size_t l = 0; l < m.num_layers(); ++l) {
      std::vector<int> ok;
      for (std::size_t c = 0; c < m.num_choices(l); ++c) {
        auto p = a;
        p.push_back(static_cast<int>(c));
        if (k.is_feasible(p)) ok.push_back(static_cast<int>(c));
      }
      a.push_back(ok[r.uniform_index(ok.size())]);
    }
    ++greedy[a];
  }
  CHECK(chi_square(greedy, cells, draws) > 3.0 * chi_square_bound(cells));
}

TEST_CASE("constraint: completions of a prefix are uniform among its feasible completions") {
  const additive_cost_model m{.name = "macs", .unit = "M", .fixed = 0.0,
                              .per_layer = {{3, 1}, {1, 2, 4}, {2, 2, 1, 5}, {1, 3, 2}}};
  const double limit = 9;
  const constraint k(m, {.limit = limit, .resolution = 1.0});
  const std::vector<int> prefix{0};
  std::size_t cells = 0;
  for (const auto& a : enumerate(m)) cells += (starts_with(a, prefix) && m.predict(a) <= limit) ? 1 : 0;
  REQUIRE(k.count_completions(prefix) == count128{cells});
  const int draws = 300 * static_cast<int>(cells);
  rng r(9);
  std::map<std::vector<int>, int> hits;
  for (int i = 0; i < draws; ++i) {
    const auto a = k.complete(prefix, r);
    REQUIRE(starts_with(a, prefix));
    REQUIRE(m.predict(a) <= limit);
    ++hits[a];
  }
  CHECK(chi_square(hits, cells, draws) < chi_square_bound(cells));
}

TEST_CASE("constraint: a limit nothing meets states the smallest reachable value") {
  const additive_cost_model m{.name = "latency", .unit = "ms", .fixed = 1.0,
                              .per_layer = {{1.0, 2.0}, {0.25, 3.0}}};
  CHECK_THROWS_WITH_AS(constraint(m, {.limit = 2.0}),
                       doctest::Contains("the smallest reachable value is 2.25 ms"), std::invalid_argument);
  const constraint exact(m, {.limit = 2.25});
  CHECK(exact.count_feasible() == count128{1});
  rng r(1);
  CHECK(exact.sample(r) == std::vector<int>{0, 0});
  CHECK_THROWS_WITH_AS(exact.complete(std::vector<int>{1}, r), doctest::Contains("has no completion"),
                       std::invalid_argument);
  CHECK_THROWS_AS(exact.is_feasible(std::vector<int>{0, 0, 0}), std::invalid_argument);
  CHECK_THROWS_AS(exact.is_feasible(std::vector<int>{5}), std::out_of_range);
  CHECK_THROWS_AS(constraint(m, {.limit = 10.0, .resolution = 1e-9}), std::invalid_argument);
}

TEST_CASE("constraint: counts of large spaces are exact beyond 2^64") {
  std::vector<std::size_t> proxyless(6, 6);
  proxyless.insert(proxyless.end(), 15, 7);
  CHECK(constraint::unconstrained(proxyless).count_feasible().to_string() == "221502229807900608");
  const auto wide = constraint::unconstrained(std::vector<std::size_t>(30, 7));
  CHECK(wide.count_feasible().to_string() == "22539340290692258087863249");
  rng r(5);
  const auto a = wide.sample(r);
  CHECK(a.size() == 30);

  // A latency limit on a ProxylessNAS-sized space: every sample meets it.
  additive_cost_model m{.name = "latency", .unit = "ms", .fixed = 2.0, .per_layer = {}};
  for (auto n : proxyless) {
    std::vector<double> row;
    for (std::size_t c = 0; c < n; ++c) row.push_back(0.1 + 0.7 * r.uniform01());
    m.per_layer.push_back(row);
  }
  const double limit = 0.5 * (m.min_total() + m.max_total());
  const constraint k(m, {.limit = limit});
  CHECK(k.count_feasible().to_double() > 1e15);
  CHECK(k.count_feasible().to_double() < 221502229807900608.0);
  for (int i = 0; i < 200; ++i) CHECK(m.predict(k.sample(r)) <= limit);
}

TEST_CASE("constraint: repair keeps feasible architectures and fixes infeasible ones") {
  const additive_cost_model m{.name = "latency", .unit = "ms", .fixed = 0.0,
                              .per_layer = {{1, 5}, {1, 5}, {1, 5}}};
  const constraint k(m, {.limit = 7, .resolution = 1.0});
  rng r(4);
  CHECK(k.repair(std::vector<int>{1, 0, 0}, r) == std::vector<int>{1, 0, 0});
  const auto fixed = k.repair(std::vector<int>{1, 1, 1}, r);
  CHECK(fixed == std::vector<int>{1, 0, 0});
  CHECK(m.predict(k.repair(std::vector<int>{0, 9, -1}, r)) <= 7);
  const auto open = constraint::unconstrained({2, 3});
  CHECK(open.count_feasible() == count128{6});
  CHECK(open.is_feasible(std::vector<int>{1, 2}));
}
