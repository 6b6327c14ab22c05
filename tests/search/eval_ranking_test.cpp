// Ranking metrics against values computed by hand.
#include <doctest/doctest.h>

#include <pcnas/eval/ranking.hpp>

#include <cmath>
#include <vector>

using pcnas::eval::kendall_tau_b;
using pcnas::eval::spearman_rho;
using pcnas::eval::top_k_overlap;

TEST_CASE("kendall_tau_b: no ties, perfect, reversed") {
  // Pairs of (1..5) against (3,4,1,2,5): 6 concordant, 4 discordant of 10 → τ = 0.2.
  const std::vector<double> x{1, 2, 3, 4, 5}, y{3, 4, 1, 2, 5};
  CHECK(kendall_tau_b(x, y) == doctest::Approx(0.2));
  CHECK(kendall_tau_b(x, x) == doctest::Approx(1.0));
  const std::vector<double> rev{5, 4, 3, 2, 1};
  CHECK(kendall_tau_b(x, rev) == doctest::Approx(-1.0));
}

TEST_CASE("kendall_tau_b: ties in both variables") {
  // x = (1,2,2,3), y = (1,3,2,2): C = 3, D = 1, one pair tied in x, one in y, n0 = 6:
  // τ-b = 2 / sqrt(5 · 5) = 0.4.
  const std::vector<double> x{1, 2, 2, 3}, y{1, 3, 2, 2};
  CHECK(kendall_tau_b(x, y) == doctest::Approx(0.4));
  const std::vector<double> flat{1, 1, 1, 1};
  CHECK(std::isnan(kendall_tau_b(x, flat)));
}

TEST_CASE("spearman_rho: average ranks for ties") {
  // y = (5,6,7,8,7) ranks (1,2,3.5,5,3.5): Σdxdy = 8, Σdx² = 10, Σdy² = 9.5 → 8/sqrt(95).
  const std::vector<double> x{1, 2, 3, 4, 5}, y{5, 6, 7, 8, 7};
  CHECK(spearman_rho(x, y) == doctest::Approx(8.0 / std::sqrt(95.0)));
  // Without ties ρ = 1 − 6Σd²/(n(n²−1)): (1..5) against (3,4,1,2,5), Σd² = 4+4+4+4+0 = 16 → 0.2.
  const std::vector<double> z{3, 4, 1, 2, 5};
  CHECK(spearman_rho(x, z) == doctest::Approx(0.2));
  CHECK(spearman_rho(x, x) == doctest::Approx(1.0));
}

TEST_CASE("top_k_overlap and error messages") {
  const std::vector<double> x{0.9, 0.8, 0.7, 0.1}, y{0.1, 0.85, 0.95, 0.9};
  CHECK(top_k_overlap(x, y, 2) == doctest::Approx(0.0));
  CHECK(top_k_overlap(x, y, 3) == doctest::Approx(2.0 / 3.0));
  CHECK(top_k_overlap(x, y, 4) == doctest::Approx(1.0));
  CHECK_THROWS_WITH_AS(top_k_overlap(x, y, 5), doctest::Contains("k must be in 1..4"), std::invalid_argument);
  const std::vector<double> shorter{1, 2, 3};
  CHECK_THROWS_WITH_AS(kendall_tau_b(x, shorter), doctest::Contains("4 and 3 entries"), std::invalid_argument);
}
