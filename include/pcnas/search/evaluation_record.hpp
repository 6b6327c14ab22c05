// What the baselines share: the distinct architectures evaluated so far with their scores, the
// default evaluation budget (as many as PC-NAS makes), and the result they return.
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/search/budgets.hpp>
#include <pcnas/search/callbacks.hpp>
#include <pcnas/search/supernet_calls.hpp>

namespace pcnas::search {

struct arch_search_result {
  std::vector<int> best_arch;
  double best_accuracy = 0.0;
  double predicted_cost = 0.0;
  std::vector<scored_arch> top;            // the best architectures evaluated, best first
  std::vector<scored_arch> evaluated;      // every evaluated architecture, in order
  std::size_t evaluations = 0;
  std::size_t generations = 0;             // evolution only
  std::vector<double> best_per_generation; // evolution only
  bool exhausted = false;                  // every feasible architecture was evaluated
  bool resumed = false;
};

template <class Archive>
void fields(Archive& ar, scored_arch& a) {
  ar(a.arch, a.accuracy, a.cost);
}

// The distinct architectures evaluated so far, with their scores.
class evaluation_record {
 public:
  bool contains(const std::vector<int>& arch) const { return index_.count(arch) != 0; }
  std::size_t size() const { return all_.size(); }
  const std::vector<scored_arch>& all() const { return all_; }
  void add(scored_arch s) {
    index_.emplace(s.arch, all_.size());
    all_.push_back(std::move(s));
  }
  // Best first; ties keep the order of evaluation, so the result is deterministic.
  std::vector<scored_arch> top(std::size_t k) const {
    std::vector<std::size_t> order(all_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return all_[a].accuracy > all_[b].accuracy; });
    std::vector<scored_arch> out;
    for (std::size_t i = 0; i < std::min(k, order.size()); ++i) out.push_back(all_[order[i]]);
    return out;
  }
  bool exhausted(const cost::constraint& k) const { return k.count_feasible() <= cost::count128{all_.size()}; }

  // Evaluates `arch` (recalibrating batch norm first if asked), reports it, and records it.
  // Through evaluate_all where the supernet has it: one path at a time, but a supernet that
  // keeps layer outputs between calls skips the layers this path shares with the last one.
  template <class Supernet, class Callbacks>
  void evaluate(Supernet& net, const cost::constraint& k, std::vector<int> arch, bool recalibrate, std::size_t budget,
                Callbacks& cb) {
    const double accuracy =
        detail::checked_evaluate_all(net, std::span<const std::vector<int>>(&arch, 1), recalibrate).front();
    const double cost = k.model().predict(arch);
    cb.evaluation(evaluation_info{size() + 1, budget, arch, accuracy, cost});
    add(scored_arch{std::move(arch), accuracy, cost});
  }

  // The result: the best `top_k` (at least one), best first, and everything evaluated.
  arch_search_result result(const cost::constraint& k, std::size_t top_k) const {
    arch_search_result r;
    r.evaluations = size();
    r.evaluated = all_;
    r.top = top(std::max<std::size_t>(top_k, 1));
    if (!r.top.empty()) {
      r.best_arch = r.top.front().arch;
      r.best_accuracy = r.top.front().accuracy;
      r.predicted_cost = k.model().predict(r.best_arch);
    }
    r.exhausted = exhausted(k);
    return r;
  }

  // Written as the list of evaluations; the index is rebuilt when read.
  template <class Archive>
  friend void fields(Archive& ar, evaluation_record& r) {
    if constexpr (Archive::reading) {
      std::vector<scored_arch> all;
      ar(all);
      r = {};
      for (auto& a : all) r.add(std::move(a));
    } else {
      ar(r.all_);
    }
  }

 private:
  std::vector<scored_arch> all_;
  std::map<std::vector<int>, std::size_t> index_;
};

// A generator's state as a field: its four words.
template <class Archive>
void rng_field(Archive& ar, rng& r) {
  auto words = r.state();
  ar(words);
  if constexpr (Archive::reading) {
    if (words == decltype(words){}) ar.stream().fail("a random generator's state is all zeros");
    r.set_state(words);
  }
}

// An evaluation budget of 0 means as many as PC-NAS makes with its default P and S.
inline std::size_t evaluation_budget(std::size_t requested, const cost::constraint& k) {
  return requested != 0 ? requested : pc_nas_nominal_evaluations(k.choices_per_layer());
}

}  // namespace pcnas::search
