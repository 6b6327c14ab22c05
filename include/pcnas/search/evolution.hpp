// Evolutionary search on a trained supernet (the SPOS baseline's search): a random feasible
// initial population, then generations of children bred from the top-k parents by uniform
// crossover and per-layer mutation. A child that breaks the limit is repaired by the exact
// sampler (its infeasible choices redrawn over the feasible completions), so every child is
// feasible without a rejection loop; a child evaluated before is bred again, then drawn fresh,
// each at most max_tries times. Stops at the evaluation budget or when every feasible
// architecture has been evaluated.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/search/driver.hpp>
#include <pcnas/search/evaluation_record.hpp>
#include <pcnas/search/streams.hpp>

namespace pcnas::search {

struct evolution_options {
  std::size_t population = 50;     // children per generation (and the random initial population)
  std::size_t parents = 10;        // top-k of everything evaluated so far
  double mutation_prob = 0.1;      // per layer, for a mutated child
  double crossover_share = 0.5;    // of each generation's children; the rest are mutations
  // Architecture evaluations; 0 means pc_nas_nominal_evaluations(space), the count PC-NAS makes
  // with its default pool size and completions, so the comparison is at equal cost.
  std::size_t evaluations = 0;
  bool recalibrate = true;         // batch norm recalibrated before every evaluation
  std::uint64_t seed = 0;
  // A child evaluated before is bred again up to max_tries times, then drawn fresh up to
  // max_tries times; a slot that still finds nothing new stays empty (a nearly exhausted space).
  std::size_t max_tries = 20;
  checkpoint_options checkpoint{}; // written after every generation (every_steps is not used)
};

class evolution_method {
 public:
  struct state {
    std::size_t generation = 0;
    bool stalled = false;            // a generation found nothing new to evaluate
    rng r{0};
    evaluation_record record;
    std::vector<double> best_per_generation;

    template <class Archive>
    friend void fields(Archive& ar, state& s) {
      ar(s.generation, s.stalled);
      rng_field(ar, s.r);
      ar(s.record, s.best_per_generation);
    }
  };
  using result = arch_search_result;
  static constexpr std::string_view kind = "evolution";
  static constexpr std::string_view title = "evolution";

  evolution_method(const evolution_options& o, const cost::constraint& k)
      : o_(o), budget_(evaluation_budget(o.evaluations, k)) {
    if (o.population == 0 || o.parents == 0)
      throw std::invalid_argument("evolution_search: population and parents must be at least 1");
    if (!(o.mutation_prob >= 0.0 && o.mutation_prob <= 1.0) || !(o.crossover_share >= 0.0 && o.crossover_share <= 1.0))
      throw std::invalid_argument("evolution_search: mutation_prob and crossover_share must be in [0, 1]");
  }

  std::uint64_t fingerprint(const cost::constraint& k) const {
    return fingerprint_builder{}
        .add(std::string_view("evolution"))
        .add(static_cast<std::uint64_t>(o_.population))
        .add(static_cast<std::uint64_t>(o_.parents))
        .add(o_.mutation_prob)
        .add(o_.crossover_share)
        .add(static_cast<std::uint64_t>(budget_))
        .add(static_cast<std::uint64_t>(o_.recalibrate))
        .add(o_.seed)
        .add(static_cast<std::uint64_t>(o_.max_tries))
        .add(k)
        .value();
  }
  state initial_state(const cost::constraint&) const {
    state s;
    s.r = stream(o_.seed, stream_kind::evolution, 0);
    return s;
  }
  bool done(const state& s, const cost::constraint& k) const {
    return s.stalled || s.record.size() >= budget_ || s.record.exhausted(k);
  }
  std::size_t training_steps(const state&) const { return 0; }
  std::string start_message(const cost::constraint&) const {
    return "evolution: population " + std::to_string(o_.population) + ", " + std::to_string(budget_) + " evaluations";
  }
  std::string position(const state& s) const {
    return "after generation " + std::to_string(s.generation) + ", " + std::to_string(s.record.size()) + " evaluations";
  }
  std::string check_resumed(const state&, const cost::constraint&) const { return {}; }

  // One generation.
  template <class Supernet, class Callbacks>
  unit advance(Supernet& net, const cost::constraint& k, state& s, Callbacks& cb) const {
    const std::vector<scored_arch> parents = s.record.top(o_.parents);
    const std::size_t children = std::min(o_.population, budget_ - s.record.size());
    const auto crossovers =
        s.generation == 0 ? std::size_t{0}
                          : static_cast<std::size_t>(std::llround(o_.crossover_share * static_cast<double>(children)));
    const auto next = [&](std::size_t i) { return s.generation == 0 ? k.sample(s.r) : breed(k, s.r, parents, i < crossovers); };
    std::size_t added = 0;
    for (std::size_t i = 0; i < children && !s.record.exhausted(k); ++i) {
      std::vector<int> child = next(i);
      for (std::size_t tries = 1; s.record.contains(child) && tries < o_.max_tries; ++tries) child = next(i);
      // The parents' neighbourhood is used up: a fresh uniform architecture instead.
      for (std::size_t tries = 0; s.record.contains(child) && tries < o_.max_tries; ++tries) child = k.sample(s.r);
      if (s.record.contains(child)) continue;  // a nearly exhausted space: the slot stays empty
      s.record.evaluate(net, k, std::move(child), o_.recalibrate, budget_, cb);
      ++added;
    }
    s.stalled = added == 0;  // no new architecture could be found: stop rather than spin
    const auto best = s.record.top(o_.parents);
    s.best_per_generation.push_back(best.empty() ? std::nan("") : best.front().accuracy);
    cb.generation(generation_info{s.generation, s.record.size(), budget_, best});
    ++s.generation;
    return unit::milestone;
  }

  template <class Callbacks>
  result finish(const cost::constraint& k, const state& s, bool resumed, Callbacks& cb) const {
    result r = s.record.result(k, o_.parents);
    r.generations = s.generation;
    r.best_per_generation = s.best_per_generation;
    r.resumed = resumed;
    cb.event("done", "evolution best " + arch_to_string(r.best_arch) + " accuracy " + std::to_string(r.best_accuracy));
    return r;
  }

 private:
  std::vector<int> breed(const cost::constraint& k, rng& r, const std::vector<scored_arch>& parents,
                         bool crossover) const {
    std::vector<int> child;
    if (parents.empty()) return k.sample(r);
    if (crossover && parents.size() >= 2) {
      const std::size_t a = static_cast<std::size_t>(r.uniform_index(parents.size()));
      std::size_t b = static_cast<std::size_t>(r.uniform_index(parents.size() - 1));
      if (b >= a) ++b;  // two distinct parents
      child = parents[a].arch;
      for (std::size_t l = 0; l < child.size(); ++l)
        if (r.uniform_index(2) == 1) child[l] = parents[b].arch[l];
    } else {
      child = parents[static_cast<std::size_t>(r.uniform_index(parents.size()))].arch;
      for (std::size_t l = 0; l < child.size(); ++l)
        if (r.uniform01() < o_.mutation_prob) child[l] = static_cast<int>(r.uniform_index(k.num_choices(l)));
    }
    return k.repair(child, r);
  }

  evolution_options o_;
  std::size_t budget_;
};

template <class Supernet, class... Callbacks>
arch_search_result evolution_search(Supernet& net, const cost::constraint& k, const evolution_options& options,
                                    Callbacks&&... callbacks) {
  return run_search(evolution_method(options, k), net, k, options.checkpoint, std::forward<Callbacks>(callbacks)...);
}

}  // namespace pcnas::search
