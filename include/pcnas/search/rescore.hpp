// The method's "final choice" option: the finalists of a search (PC-NAS's final pool, the
// baselines' best few) can lie a few held-out images apart, so they are scored again on more
// images and the best of the new scores is taken. Ties keep the search's order.
#pragma once

#include <span>
#include <stdexcept>
#include <vector>

#include <pcnas/search/callbacks.hpp>

namespace pcnas::search {

struct rescoring {
  std::vector<scored_arch> scored;  // the finalists in the search's order, with their new accuracy
  std::size_t best_index = 0;       // the first with the highest new accuracy
  const scored_arch& best() const { return scored.at(best_index); }
};

/// `evaluate(arch)` returns an architecture's accuracy on the larger held-out sample.
template <class Evaluate>
rescoring rescore(std::span<const std::vector<int>> finalists, Evaluate&& evaluate) {
  if (finalists.empty()) throw std::invalid_argument("rescore: there are no finalists");
  rescoring r;
  for (const auto& a : finalists) {
    r.scored.push_back(scored_arch{a, static_cast<double>(evaluate(a)), 0.0});
    if (r.scored.back().accuracy > r.scored[r.best_index].accuracy) r.best_index = r.scored.size() - 1;
  }
  return r;
}

}  // namespace pcnas::search
