// How well one ranking of architectures agrees with another (shared-weight against stand-alone
// accuracy): Kendall's τ-b, Spearman's ρ and the overlap of the top k.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <limits>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcnas::eval {

namespace detail {
inline void check_paired(std::span<const double> x, std::span<const double> y, const char* what) {
  if (x.size() != y.size())
    throw std::invalid_argument(std::string(what) + ": the two rankings have " + std::to_string(x.size()) +
                                " and " + std::to_string(y.size()) + " entries");
  if (x.size() < 2) throw std::invalid_argument(std::string(what) + ": needs at least two entries");
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::isnan(x[i]) || std::isnan(y[i]))
      throw std::invalid_argument(std::string(what) + ": entry " + std::to_string(i) + " is NaN");
}

// Ranks 1..n, ties sharing the mean of the ranks they span.
inline std::vector<double> average_ranks(std::span<const double> v) {
  std::vector<std::size_t> order(v.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(v.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double mean = 0.5 * static_cast<double>(i + j) + 1.0;
    for (std::size_t k = i; k <= j; ++k) ranks[order[k]] = mean;
    i = j + 1;
  }
  return ranks;
}
}  // namespace detail

// τ-b = (C − D) / sqrt((n0 − n1)(n0 − n2)), with n0 = n(n−1)/2 pairs and n1, n2 the pairs tied
// in x and in y. O(n²) pair counting: exact, and quick for the few thousand architectures a
// ranking study trains. NaN when either side is constant (τ is undefined there).
inline double kendall_tau_b(std::span<const double> x, std::span<const double> y) {
  detail::check_paired(x, y, "kendall_tau_b");
  long long concordant = 0, discordant = 0, tied_x = 0, tied_y = 0;
  const std::size_t n = x.size();
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j) {
      const double dx = x[i] - x[j];
      const double dy = y[i] - y[j];
      if (dx == 0.0) ++tied_x;
      if (dy == 0.0) ++tied_y;
      if (dx == 0.0 || dy == 0.0) continue;
      ((dx > 0.0) == (dy > 0.0) ? concordant : discordant) += 1;
    }
  const double pairs = 0.5 * static_cast<double>(n) * static_cast<double>(n - 1);
  const double denominator = std::sqrt((pairs - static_cast<double>(tied_x)) * (pairs - static_cast<double>(tied_y)));
  if (denominator == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(concordant - discordant) / denominator;
}

// Pearson correlation of the average ranks (the tie-corrected definition). NaN when either side
// is constant.
inline double spearman_rho(std::span<const double> x, std::span<const double> y) {
  detail::check_paired(x, y, "spearman_rho");
  const auto rx = detail::average_ranks(x);
  const auto ry = detail::average_ranks(y);
  const double n = static_cast<double>(x.size());
  const double mean = (n + 1.0) / 2.0;
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (std::size_t i = 0; i < rx.size(); ++i) {
    sxy += (rx[i] - mean) * (ry[i] - mean);
    sxx += (rx[i] - mean) * (rx[i] - mean);
    syy += (ry[i] - mean) * (ry[i] - mean);
  }
  if (sxx == 0.0 || syy == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return sxy / std::sqrt(sxx * syy);
}

// |top_k(x) ∩ top_k(y)| / k, "top" meaning the largest values (accuracies). Ties at the cut are
// broken by index, the earlier entry first, so the result is deterministic.
inline double top_k_overlap(std::span<const double> x, std::span<const double> y, std::size_t k) {
  detail::check_paired(x, y, "top_k_overlap");
  if (k == 0 || k > x.size())
    throw std::invalid_argument("top_k_overlap: k must be in 1.." + std::to_string(x.size()) + ", got " +
                                std::to_string(k));
  auto top = [k](std::span<const double> v) {
    std::vector<std::size_t> order(v.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] > v[b]; });
    order.resize(k);
    std::sort(order.begin(), order.end());
    return order;
  };
  const auto a = top(x);
  const auto b = top(y);
  std::vector<std::size_t> both;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
  return static_cast<double>(both.size()) / static_cast<double>(k);
}

}  // namespace pcnas::eval
