// Whether one method beats another over paired runs (the same seeds): the Wilcoxon signed-rank
// test, exact for the small numbers of seeds a search study affords.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <pcnas/eval/ranking.hpp>

namespace pcnas::eval {

struct signed_rank_result {
  std::size_t pairs = 0;        // pairs with a non-zero difference (zeros are dropped, Wilcoxon's rule)
  double w_plus = 0.0;          // sum of the ranks of |x − y| where x > y
  double w_minus = 0.0;         // where x < y
  double p_two_sided = 1.0;     // exact, under the null of differences symmetric about zero
  double mean_difference = 0.0; // mean of x − y over all pairs, zeros included
};

// Exact two-sided p-value by counting all 2^n sign assignments of the (average) ranks, so ties
// are handled exactly too; n is at most 24 (16 M assignments), beyond which a study should use
// a normal approximation this header does not offer.
inline signed_rank_result wilcoxon_signed_rank(std::span<const double> x, std::span<const double> y) {
  detail::check_paired(x, y, "wilcoxon_signed_rank");
  signed_rank_result r;
  std::vector<double> magnitude, sign;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = x[i] - y[i];
    r.mean_difference += d / static_cast<double>(x.size());
    if (d == 0.0) continue;
    magnitude.push_back(std::abs(d));
    sign.push_back(d > 0 ? 1.0 : -1.0);
  }
  r.pairs = magnitude.size();
  if (r.pairs == 0) return r;
  if (r.pairs > 24)
    throw std::invalid_argument("wilcoxon_signed_rank: the exact test enumerates 2^n sign patterns; n = " +
                                std::to_string(r.pairs) + " is more than 24");
  const auto ranks = detail::average_ranks(magnitude);
  for (std::size_t i = 0; i < r.pairs; ++i) (sign[i] > 0 ? r.w_plus : r.w_minus) += ranks[i];
  // Two-sided: assignments at least as far from the centre n(n+1)/4 as the observed W+.
  const double centre = 0.25 * static_cast<double>(r.pairs) * static_cast<double>(r.pairs + 1);
  const double observed = std::abs(r.w_plus - centre) - 1e-9;
  std::uint64_t extreme = 0;
  const std::uint64_t patterns = std::uint64_t{1} << r.pairs;
  for (std::uint64_t m = 0; m < patterns; ++m) {
    double w = 0.0;
    for (std::size_t i = 0; i < r.pairs; ++i)
      if (m >> i & 1U) w += ranks[i];
    if (std::abs(w - centre) >= observed) ++extreme;
  }
  r.p_two_sided = static_cast<double>(extreme) / static_cast<double>(patterns);
  return r;
}

}  // namespace pcnas::eval
