// The exact Wilcoxon signed-rank test against values counted by hand.
#include <doctest/doctest.h>

#include <pcnas/eval/paired_test.hpp>

#include <stdexcept>
#include <vector>

using pcnas::eval::wilcoxon_signed_rank;

TEST_CASE("wilcoxon_signed_rank: every difference one way") {
  // n = 5, all x > y: W+ = 15, the most extreme of 32 patterns on either side → p = 2/32.
  const std::vector<double> x{2, 3, 4, 5, 6}, y{1, 1, 1, 1, 0};
  const auto r = wilcoxon_signed_rank(x, y);
  CHECK(r.pairs == 5);
  CHECK(r.w_plus == doctest::Approx(15));
  CHECK(r.w_minus == doctest::Approx(0));
  CHECK(r.p_two_sided == doctest::Approx(2.0 / 32));
}

TEST_CASE("wilcoxon_signed_rank: mixed signs, zeros dropped") {
  // Differences 1, 2, 3, 4, −5 (and one zero, dropped): W+ = 10, W− = 5. The null distribution
  // of W+ for n = 5 counts 1,1,1,2,2,3,3,3,3,3,3,2,2,1,1,1 for W = 0..15; W ≤ 5 or W ≥ 10
  // covers 20 of 32.
  const std::vector<double> x{1, 2, 3, 4, 0, 7}, y{0, 0, 0, 0, 5, 7};
  const auto r = wilcoxon_signed_rank(x, y);
  CHECK(r.pairs == 5);
  CHECK(r.w_plus == doctest::Approx(10));
  CHECK(r.w_minus == doctest::Approx(5));
  CHECK(r.p_two_sided == doctest::Approx(20.0 / 32));
  CHECK(r.mean_difference == doctest::Approx(5.0 / 6));
}

TEST_CASE("wilcoxon_signed_rank: ties share ranks; no differences gives p = 1; too many pairs refused") {
  // |d| = 1, 1, 2: ranks 1.5, 1.5, 3; signs +, −, +: W+ = 4.5. Patterns: W+ ∈ {0, 1.5, 1.5, 3,
  // 3, 4.5, 4.5, 6}; centre 3, |4.5 − 3| = 1.5 is reached by 0, 1.5, 1.5, 4.5, 4.5, 6 → 6/8.
  const std::vector<double> x{1, 0, 2}, y{0, 1, 0};
  CHECK(wilcoxon_signed_rank(x, y).p_two_sided == doctest::Approx(0.75));
  const std::vector<double> same{1, 2, 3};
  CHECK(wilcoxon_signed_rank(same, same).p_two_sided == 1.0);
  std::vector<double> many(25), zeros(25, 0.0);
  for (std::size_t i = 0; i < many.size(); ++i) many[i] = 1.0 + static_cast<double>(i);
  CHECK_THROWS_AS(wilcoxon_signed_rank(many, zeros), std::invalid_argument);
}
