// The baseline PC-NAS is measured against: uniform single-path one-shot training over the
// feasible space (SPOS), then evolutionary search (or random search), ranking architectures by
// held-out accuracy after batch-norm recalibration. By default both get as many evaluations as
// PC-NAS's nominal count, and the same training budget gives the same number of steps.
#pragma once

#include <pcnas/search/evolution.hpp>
#include <pcnas/search/random_search.hpp>
#include <pcnas/search/uniform_training.hpp>

namespace pcnas::search {

struct spos_options {
  uniform_training_options training{};
  evolution_options evolution{};
};

struct spos_result {
  uniform_training_result training;
  arch_search_result search;
};

template <class Supernet, class... Callbacks>
spos_result spos_search(Supernet& net, const cost::constraint& k, const spos_options& options, Callbacks&&... callbacks) {
  spos_result result;
  result.training = train_uniform(net, k, options.training, callbacks...);
  result.search = evolution_search(net, k, options.evolution, callbacks...);
  return result;
}

}  // namespace pcnas::search
