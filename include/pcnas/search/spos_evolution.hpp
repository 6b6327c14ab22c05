// The baseline PC-NAS is measured against: uniform single-path one-shot training over the
// feasible space (SPOS), then evolutionary search, or random search, ranking architectures by
// held-out accuracy after batch-norm recalibration. By default both get as many evaluations as
// PC-NAS's nominal count, and the same training budget gives the same number of steps.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/search/callbacks.hpp>
#include <pcnas/search/checkpoint.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/schedule.hpp>
#include <pcnas/search/streams.hpp>
#include <pcnas/search/supernet_calls.hpp>
#include <pcnas/search/supernet_concept.hpp>

namespace pcnas::search {

// ---------------------------------------------------------------- uniform one-shot training

struct uniform_training_options {
  std::size_t total_steps = 0;  // required; give PC-NAS's total_steps for an equal-cost comparison
  double base_lr = 0.1;
  double final_lr = 0.0;
  std::uint64_t seed = 0;       // with PC-NAS's seed, the first steps train the same paths as its warm-up
  checkpoint_options checkpoint{};
};

struct uniform_training_result {
  std::size_t steps_done = 0;
  double mean_loss = 0.0;        // over all steps
  double final_loss = 0.0;       // over the last 10 % of the steps
  bool resumed = false;
};

namespace detail {
struct uniform_state {
  std::size_t steps_done = 0;
  double loss_sum = 0.0;
  std::size_t loss_count = 0;
  double tail_sum = 0.0;
  std::size_t tail_count = 0;
};

inline std::uint64_t uniform_fingerprint(const uniform_training_options& o, const cost::constraint& k) {
  fingerprint_builder f;
  f.add(std::string_view("uniform_training"))
      .add(static_cast<std::uint64_t>(o.total_steps))
      .add(o.base_lr)
      .add(o.final_lr)
      .add(o.seed)
      .add(k);
  return f.value();
}
}  // namespace detail

// Every step trains one path drawn exactly uniformly from the feasible space.
template <class Supernet, class... Callbacks>
uniform_training_result train_uniform(Supernet& net, const cost::constraint& k, const uniform_training_options& options,
                                      Callbacks&&... callbacks) {
  static_assert(check_supernet<Supernet>());
  if constexpr (!supernet<Supernet>) {
    return {};
  } else {
    if (options.total_steps == 0)
      throw std::invalid_argument("train_uniform: total_steps must be set (the training budget in steps)");
    detail::check_same_shape(net, k);
    callback_set<std::remove_reference_t<Callbacks>...> cb(callbacks...);
    const cosine_schedule learning_rate{options.base_lr, options.final_lr, options.total_steps};
    const std::uint64_t fingerprint = detail::uniform_fingerprint(options, k);
    const auto& ckpt = options.checkpoint;
    const std::size_t tail_from = options.total_steps - options.total_steps / 10;

    detail::uniform_state state;
    uniform_training_result result;
    if (!ckpt.path.empty() && ckpt.resume && std::filesystem::exists(ckpt.path)) {
      auto reader = read_checkpoint(ckpt.path, "uniform_training", fingerprint);
      state.steps_done = reader.u64();
      state.loss_sum = reader.f64();
      state.loss_count = reader.u64();
      state.tail_sum = reader.f64();
      state.tail_count = reader.u64();
      const std::string blob = reader.str();
      if (!reader.at_end()) reader.fail("unexpected bytes after the supernet state");
      if (state.steps_done > options.total_steps) reader.fail("it has more steps than the training budget");
      load_supernet(net, blob, reader.source());
      result.resumed = true;
      cb.event("resume", "resumed uniform training from " + ckpt.path.string() + " at step " +
                             std::to_string(state.steps_done));
    } else {
      cb.event("start", "uniform one-shot training, " + std::to_string(options.total_steps) + " steps over " +
                            k.count_feasible().to_string() + " feasible architectures");
    }
    auto save = [&] {
      if (ckpt.path.empty()) return;
      checkpoint_writer w;
      w.str("uniform_training");
      w.u64(fingerprint);
      w.u64(state.steps_done);
      w.f64(state.loss_sum);
      w.u64(state.loss_count);
      w.f64(state.tail_sum);
      w.u64(state.tail_count);
      w.str(save_supernet(net));
      write_checkpoint(ckpt.path, w);
      cb.event("checkpoint", "wrote " + ckpt.path.string() + " at step " + std::to_string(state.steps_done));
    };

    std::vector<int> arch;
    const std::vector<int> empty;
    while (state.steps_done < options.total_steps) {
      const std::size_t t = state.steps_done;
      // The same stream as PC-NAS's training steps, with the pool being the empty prefix.
      rng r = stream(options.seed, stream_kind::training, t);
      (void)r.uniform_index(1);
      arch = k.complete(empty, r);
      const double rate = learning_rate(t);
      const double loss = detail::checked_train_step(net, arch, rate, t);
      state.loss_sum += loss;
      ++state.loss_count;
      if (t >= tail_from) {
        state.tail_sum += loss;
        ++state.tail_count;
      }
      ++state.steps_done;
      cb.step(step_info{"uniform", t, options.total_steps, rate, loss, arch});
      if ((ckpt.every_steps != 0 && state.steps_done % ckpt.every_steps == 0) || state.steps_done == options.total_steps)
        save();
    }
    result.steps_done = state.steps_done;
    result.mean_loss = state.loss_count ? state.loss_sum / static_cast<double>(state.loss_count) : std::nan("");
    result.final_loss = state.tail_count ? state.tail_sum / static_cast<double>(state.tail_count) : std::nan("");
    cb.event("done", "uniform training done, final loss " + std::to_string(result.final_loss));
    return result;
  }
}

// ------------------------------------------------------------ evolution and random search

struct evolution_options {
  std::size_t population = 50;     // children per generation (and the random initial population)
  std::size_t parents = 10;        // top-k of everything evaluated so far
  double mutation_prob = 0.1;      // per layer, for a mutated child
  double crossover_share = 0.5;    // of each generation's children; the rest are mutations
  // Architecture evaluations; 0 means pc_nas_nominal_evaluations(space, 5, 8), the count PC-NAS
  // makes with its default pool size and completions, so the comparison is at equal cost.
  std::size_t evaluations = 0;
  bool recalibrate = true;         // batch norm recalibrated before every evaluation
  std::uint64_t seed = 0;
  // A child evaluated before is bred again up to max_tries times, then drawn fresh up to
  // max_tries times; a slot that still finds nothing new stays empty (a nearly exhausted space).
  std::size_t max_tries = 20;
  checkpoint_options checkpoint{}; // written after every generation (every_steps is not used)
};

struct random_search_options {
  std::size_t evaluations = 0;     // 0: as evolution_options::evaluations
  bool recalibrate = true;
  std::uint64_t seed = 0;
  std::size_t max_tries = 20;      // draws per slot before the slot is given up as a duplicate
};

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

namespace detail {

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

 private:
  std::vector<scored_arch> all_;
  std::map<std::vector<int>, std::size_t> index_;
};

inline std::size_t evaluation_budget(std::size_t requested, const cost::constraint& k) {
  return requested != 0 ? requested : pc_nas_nominal_evaluations(k.choices_per_layer(), 5, 8);
}

template <class Supernet, class Callbacks>
void evaluate_into(Supernet& net, const cost::constraint& k, std::vector<int> arch, bool recalibrate,
                   std::size_t budget, evaluation_record& record, Callbacks& cb) {
  const double accuracy = checked_evaluate(net, arch, recalibrate);
  const double cost = k.model().predict(arch);
  cb.evaluation(evaluation_info{record.size() + 1, budget, arch, accuracy, cost});
  record.add(scored_arch{std::move(arch), accuracy, cost});
}

inline arch_search_result finish(const cost::constraint& k, const evaluation_record& record, std::size_t top_k) {
  arch_search_result r;
  r.evaluations = record.size();
  r.evaluated = record.all();
  r.top = record.top(std::max<std::size_t>(top_k, 1));
  if (!r.top.empty()) {
    r.best_arch = r.top.front().arch;
    r.best_accuracy = r.top.front().accuracy;
    r.predicted_cost = k.model().predict(r.best_arch);
  }
  r.exhausted = record.exhausted(k);
  return r;
}

inline std::uint64_t evolution_fingerprint(const evolution_options& o, std::size_t budget, const cost::constraint& k) {
  fingerprint_builder f;
  f.add(std::string_view("evolution"))
      .add(static_cast<std::uint64_t>(o.population))
      .add(static_cast<std::uint64_t>(o.parents))
      .add(o.mutation_prob)
      .add(o.crossover_share)
      .add(static_cast<std::uint64_t>(budget))
      .add(static_cast<std::uint64_t>(o.recalibrate))
      .add(o.seed)
      .add(static_cast<std::uint64_t>(o.max_tries))
      .add(k);
  return f.value();
}

}  // namespace detail

// Evolution on a trained supernet: a random feasible initial population, then generations of
// children bred from the top-k parents by uniform crossover and per-layer mutation. A child
// that breaks the limit is repaired by the exact sampler (its infeasible choices redrawn over
// the feasible completions), so every child is feasible without a rejection loop; a child
// evaluated before is bred again, then drawn fresh, each at most max_tries times.
// Stops at the evaluation budget or when every feasible architecture has been evaluated.
template <class Supernet, class... Callbacks>
arch_search_result evolution_search(Supernet& net, const cost::constraint& k, const evolution_options& options,
                                    Callbacks&&... callbacks) {
  static_assert(check_supernet<Supernet>());
  if constexpr (!supernet<Supernet>) {
    return {};
  } else {
    if (options.population == 0 || options.parents == 0)
      throw std::invalid_argument("evolution_search: population and parents must be at least 1");
    if (!(options.mutation_prob >= 0.0 && options.mutation_prob <= 1.0) ||
        !(options.crossover_share >= 0.0 && options.crossover_share <= 1.0))
      throw std::invalid_argument("evolution_search: mutation_prob and crossover_share must be in [0, 1]");
    detail::check_same_shape(net, k);
    callback_set<std::remove_reference_t<Callbacks>...> cb(callbacks...);
    const std::size_t budget = detail::evaluation_budget(options.evaluations, k);
    const std::uint64_t fingerprint = detail::evolution_fingerprint(options, budget, k);
    const auto& ckpt = options.checkpoint;

    rng r = stream(options.seed, stream_kind::evolution, 0);
    detail::evaluation_record record;
    std::size_t generation = 0;
    std::vector<double> best_per_generation;
    bool stalled = false;
    bool resumed = false;

    if (!ckpt.path.empty() && ckpt.resume && std::filesystem::exists(ckpt.path)) {
      auto reader = read_checkpoint(ckpt.path, "evolution", fingerprint);
      generation = reader.u64();
      stalled = reader.boolean();
      std::array<std::uint64_t, 4> s{};
      for (auto& w : s) w = reader.u64();
      r.set_state(s);
      const std::size_t n = reader.count(32);
      for (std::size_t i = 0; i < n; ++i) {
        scored_arch a;
        a.arch = reader.ints();
        a.accuracy = reader.f64();
        a.cost = reader.f64();
        record.add(std::move(a));
      }
      best_per_generation = reader.doubles();
      const std::string blob = reader.str();
      if (!reader.at_end()) reader.fail("unexpected bytes after the supernet state");
      load_supernet(net, blob, reader.source());
      resumed = true;
      cb.event("resume", "resumed evolution from " + ckpt.path.string() + " after generation " +
                             std::to_string(generation) + ", " + std::to_string(record.size()) + " evaluations");
    } else {
      cb.event("start", "evolution: population " + std::to_string(options.population) + ", " +
                            std::to_string(budget) + " evaluations");
    }
    auto save = [&] {
      if (ckpt.path.empty()) return;
      checkpoint_writer w;
      w.str("evolution");
      w.u64(fingerprint);
      w.u64(generation);
      w.boolean(stalled);
      for (auto s : r.state()) w.u64(s);
      w.u64(record.size());
      for (const auto& a : record.all()) {
        w.ints(a.arch);
        w.f64(a.accuracy);
        w.f64(a.cost);
      }
      w.doubles(best_per_generation);
      w.str(save_supernet(net));
      write_checkpoint(ckpt.path, w);
      cb.event("checkpoint", "wrote " + ckpt.path.string() + " after generation " + std::to_string(generation));
    };

    auto breed = [&](const std::vector<scored_arch>& parents, bool crossover) {
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
          if (r.uniform01() < options.mutation_prob) child[l] = static_cast<int>(r.uniform_index(k.num_choices(l)));
      }
      return k.repair(child, r);
    };

    while (!stalled && record.size() < budget && !record.exhausted(k)) {
      const std::vector<scored_arch> parents = record.top(options.parents);
      const std::size_t children = std::min(options.population, budget - record.size());
      const auto crossovers = generation == 0 ? std::size_t{0}
                                              : static_cast<std::size_t>(std::llround(options.crossover_share *
                                                                                      static_cast<double>(children)));
      std::size_t added = 0;
      for (std::size_t i = 0; i < children && !record.exhausted(k); ++i) {
        std::vector<int> child = generation == 0 ? k.sample(r) : breed(parents, i < crossovers);
        for (std::size_t tries = 1; record.contains(child) && tries < options.max_tries; ++tries)
          child = generation == 0 ? k.sample(r) : breed(parents, i < crossovers);
        // The parents' neighbourhood is used up: a fresh uniform architecture instead.
        for (std::size_t tries = 0; record.contains(child) && tries < options.max_tries; ++tries) child = k.sample(r);
        if (record.contains(child)) continue;  // a nearly exhausted space: the slot stays empty
        detail::evaluate_into(net, k, std::move(child), options.recalibrate, budget, record, cb);
        ++added;
      }
      stalled = added == 0;  // no new architecture could be found: stop rather than spin
      const auto best = record.top(options.parents);
      best_per_generation.push_back(best.empty() ? std::nan("") : best.front().accuracy);
      cb.generation(generation_info{generation, record.size(), budget, best});
      ++generation;
      save();
    }

    auto result = detail::finish(k, record, options.parents);
    result.generations = generation;
    result.best_per_generation = std::move(best_per_generation);
    result.resumed = resumed;
    cb.event("done", "evolution best " + arch_to_string(result.best_arch) + " accuracy " +
                         std::to_string(result.best_accuracy));
    return result;
  }
}

// Random search: distinct feasible architectures drawn exactly uniformly, all evaluated.
template <class Supernet, class... Callbacks>
arch_search_result random_search(Supernet& net, const cost::constraint& k, const random_search_options& options,
                                 Callbacks&&... callbacks) {
  static_assert(check_supernet<Supernet>());
  if constexpr (!supernet<Supernet>) {
    return {};
  } else {
    detail::check_same_shape(net, k);
    callback_set<std::remove_reference_t<Callbacks>...> cb(callbacks...);
    const std::size_t budget = detail::evaluation_budget(options.evaluations, k);
    rng r = stream(options.seed, stream_kind::random_search, 0);
    detail::evaluation_record record;
    cb.event("start", "random search: " + std::to_string(budget) + " evaluations");
    for (std::size_t slot = 0; slot < budget && !record.exhausted(k); ++slot) {
      std::vector<int> arch = k.sample(r);
      for (std::size_t tries = 1; record.contains(arch) && tries < options.max_tries; ++tries) arch = k.sample(r);
      if (record.contains(arch)) continue;
      detail::evaluate_into(net, k, std::move(arch), options.recalibrate, budget, record, cb);
    }
    auto result = detail::finish(k, record, 10);
    cb.event("done", "random search best " + arch_to_string(result.best_arch) + " accuracy " +
                         std::to_string(result.best_accuracy));
    return result;
  }
}

// ---------------------------------------------------------------- the whole baseline

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
