// A small constrained search problem with a known answer: random qualities, latencies that may
// pull against them (better operators slower, by `correlation`), a limit that binds, and brute
// force over the whole space for the best feasible architecture.
#pragma once

#include <cstdint>
#include <vector>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/rng.hpp>

#include "synthetic_supernet.hpp"

namespace pcnas_test {

struct search_problem {
  std::vector<std::vector<double>> quality;
  pcnas::cost::additive_cost_model latency;
  double limit = 0.0;

  pcnas::cost::constraint constraint() const { return pcnas::cost::constraint(latency, {.limit = limit}); }
  synthetic_supernet supernet(std::uint64_t seed = 7) const { return synthetic_supernet(quality, seed); }

  // Every feasible architecture with its true score, in lexicographic order.
  std::vector<std::pair<std::vector<int>, double>> feasible() const {
    const auto k = constraint();
    std::vector<std::vector<int>> all{{}};
    for (const auto& row : quality) {
      std::vector<std::vector<int>> next;
      for (const auto& p : all)
        for (std::size_t c = 0; c < row.size(); ++c) {
          auto q = p;
          q.push_back(static_cast<int>(c));
          next.push_back(q);
        }
      all = std::move(next);
    }
    std::vector<std::pair<std::vector<int>, double>> out;
    const auto net = supernet();
    for (const auto& a : all)
      if (k.is_feasible(a)) out.emplace_back(a, net.true_score(a));
    return out;
  }

  // How many feasible architectures are strictly better than `arch` (0: it is the best).
  std::size_t rank_of(const std::vector<int>& arch) const {
    const double s = supernet().true_score(arch);
    std::size_t better = 0;
    for (const auto& [a, score] : feasible()) better += score > s ? 1 : 0;
    return better;
  }
};

inline search_problem make_search_problem(std::uint64_t seed, std::size_t layers = 6, std::size_t choices = 4,
                                          double limit_fraction = 0.5, double correlation = 0.0) {
  pcnas::rng r(seed);
  search_problem p;
  p.latency = {.name = "latency", .unit = "ms", .fixed = 1.0, .per_layer = {}};
  for (std::size_t l = 0; l < layers; ++l) {
    std::vector<double> q, t;
    for (std::size_t c = 0; c < choices; ++c) {
      q.push_back(r.uniform01());
      t.push_back(0.2 + 2.0 * (correlation * q.back() + (1.0 - correlation) * r.uniform01()));
    }
    p.quality.push_back(q);
    p.latency.per_layer.push_back(t);
  }
  p.limit = p.latency.min_total() + limit_fraction * (p.latency.max_total() - p.latency.min_total());
  return p;
}

}  // namespace pcnas_test
