// PC-NAS (docs/method.md): uniform warm-up, then layer by layer extend a pool of partial
// models by every operator of the next layer, rank the candidates by their potential (mean
// held-out accuracy of S feasible completions), keep the top P, and train only paths that
// extend the pool. Everything sampled, trained, ranked or returned meets the constraint.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/search/callbacks.hpp>
#include <pcnas/search/budgets.hpp>
#include <pcnas/search/checkpoint.hpp>
#include <pcnas/search/driver.hpp>
#include <pcnas/search/schedule.hpp>
#include <pcnas/search/streams.hpp>
#include <pcnas/search/supernet_calls.hpp>
#include <pcnas/search/supernet_concept.hpp>

namespace pcnas::search {

struct pc_nas_options {
  std::size_t pool_size = default_pool_size;      // P
  std::size_t completions = default_completions;  // S, the same S suffix streams for every candidate of a step
  double warmup_fraction = 0.25;     // of total_steps, uniform over the feasible space
  std::size_t total_steps = 0;       // training steps of the whole search (required)
  double base_lr = 0.1;              // one cosine schedule over total_steps
  double final_lr = 0.0;
  bool recalibrate = true;           // recalibrate batch norm before every evaluation
  // Evaluate an architecture once when several completions of a candidate coincide (always at
  // the last layer, where the completion is empty). Needs evaluate() to be deterministic for a
  // given state, as the contract says; the potential is unchanged.
  bool deduplicate_evaluations = true;
  std::uint64_t seed = 0;
  checkpoint_options checkpoint{};
};

// The pool after one pool step, for the history.
struct pool_record {
  std::size_t layer = 0;            // the layer fixed by this step
  std::size_t steps_done = 0;       // training steps before it
  std::size_t candidates = 0;       // feasible candidates ranked
  double mean_train_loss = 0.0;     // over the training since the previous pool step (NaN if none)
  std::vector<pool_member> pool;    // best first
};

struct pc_nas_result {
  std::vector<int> best_arch;       // the best final pool member by held-out accuracy
  double best_accuracy = 0.0;       // its held-out (shared-weight) accuracy
  double predicted_cost = 0.0;      // its cost under the constraint's model
  std::vector<pool_member> final_pool;  // complete architectures, best first
  std::size_t steps_done = 0;
  std::size_t evaluations = 0;      // evaluate() calls made
  std::vector<pool_record> history; // one record per layer
  bool resumed = false;             // whether this call continued a checkpoint
};

// When the pool steps happen: after `warmup_steps`, pool step l at global step at[l]; the
// steps after the warm-up are split evenly over the L − 1 intervals between pool steps.
struct pc_nas_schedule {
  std::size_t warmup_steps = 0;
  std::vector<std::size_t> pool_step_at;
};

inline pc_nas_schedule make_pc_nas_schedule(const pc_nas_options& o, std::size_t num_layers) {
  pc_nas_schedule s;
  const std::size_t total = o.total_steps;
  // With one layer there is no interval: the whole budget is warm-up.
  s.warmup_steps = num_layers <= 1
                       ? total
                       : std::min(total, static_cast<std::size_t>(std::llround(o.warmup_fraction * static_cast<double>(total))));
  s.pool_step_at.push_back(s.warmup_steps);
  const std::size_t rest = total - s.warmup_steps;
  for (std::size_t l = 1; l < num_layers; ++l) s.pool_step_at.push_back(s.warmup_steps + rest * l / (num_layers - 1));
  return s;
}

namespace detail {

struct pc_nas_state {
  std::size_t steps_done = 0;
  std::size_t next_layer = 0;       // pool steps done
  std::size_t evaluations = 0;
  double loss_sum = 0.0;            // training since the last pool step
  std::size_t loss_count = 0;
  std::vector<pool_member> pool{pool_member{}};  // the empty prefix
  std::vector<pool_record> history;
};

template <class Archive>
void fields(Archive& ar, pc_nas_state& s) {
  ar(s.steps_done, s.next_layer, s.evaluations, s.loss_sum, s.loss_count, s.pool, s.history);
}

inline void check_options(const pc_nas_options& o) {
  if (o.pool_size == 0) throw std::invalid_argument("pc_nas: pool_size must be at least 1");
  if (o.completions == 0) throw std::invalid_argument("pc_nas: completions must be at least 1");
  if (o.total_steps == 0) throw std::invalid_argument("pc_nas: total_steps must be set (the training budget in steps)");
  if (!(o.warmup_fraction >= 0.0 && o.warmup_fraction <= 1.0))
    throw std::invalid_argument("pc_nas: warmup_fraction must be in [0, 1]");
  if (!(o.base_lr >= 0.0) || !(o.final_lr >= 0.0) || !std::isfinite(o.base_lr) || !std::isfinite(o.final_lr))
    throw std::invalid_argument("pc_nas: learning rates must be finite and non-negative");
}

}  // namespace detail

template <class Archive>
void fields(Archive& ar, pool_member& m) {
  ar(m.prefix, m.potential, m.min_cost, m.mean_cost);
}
template <class Archive>
void fields(Archive& ar, pool_record& h) {
  ar(h.layer, h.steps_done, h.candidates, h.mean_train_loss, h.pool);
}

// PC-NAS as a method of the search driver (driver.hpp): a unit of work is one training step, or
// one pool step (a milestone). Common random numbers: the s-th completion of every candidate of
// pool step l is drawn from the same stream (l, s) by the exact sampler, one integer per layer.
// Candidates whose prefixes leave the same budget have the same feasible suffixes and so get
// identical completions; the others get completions drawn from the same numbers, as alike as
// their budgets allow.
class pc_nas_method {
 public:
  using state = detail::pc_nas_state;
  using result = pc_nas_result;
  static constexpr std::string_view kind = "pc_nas";
  static constexpr std::string_view title = "PC-NAS";

  pc_nas_method(const pc_nas_options& o, const cost::constraint& k)
      : o_((detail::check_options(o), o)),
        schedule_(make_pc_nas_schedule(o, k.num_layers())),
        learning_rate_{o.base_lr, o.final_lr, o.total_steps} {}

  std::uint64_t fingerprint(const cost::constraint& k) const {
    return fingerprint_builder{}
        .add(std::string_view("pc_nas"))
        .add(static_cast<std::uint64_t>(o_.pool_size))
        .add(static_cast<std::uint64_t>(o_.completions))
        .add(o_.warmup_fraction)
        .add(static_cast<std::uint64_t>(o_.total_steps))
        .add(o_.base_lr)
        .add(o_.final_lr)
        .add(static_cast<std::uint64_t>(o_.recalibrate))
        .add(static_cast<std::uint64_t>(o_.deduplicate_evaluations))
        .add(o_.seed)
        .add(k)
        .value();
  }
  state initial_state(const cost::constraint&) const { return {}; }
  bool done(const state& s, const cost::constraint& k) const { return s.next_layer >= k.num_layers(); }
  std::size_t training_steps(const state& s) const { return s.steps_done; }
  std::string start_message(const cost::constraint& k) const {
    return "PC-NAS over " + std::to_string(k.num_layers()) + " layers, " + k.count_feasible().to_string() +
           " feasible architectures, " + std::to_string(o_.total_steps) + " training steps";
  }
  std::string position(const state& s) const {
    return "at step " + std::to_string(s.steps_done) + " after " + std::to_string(s.next_layer) + " pool steps";
  }
  std::string check_resumed(const state& s, const cost::constraint& k) const {
    if (s.next_layer > k.num_layers() || s.pool.empty())
      return "the pool state is inconsistent with a " + std::to_string(k.num_layers()) + "-layer space";
    for (const auto& m : s.pool)
      if (m.prefix.size() != s.next_layer) return "a pool member's length disagrees with the pool step";
    if (s.steps_done > o_.total_steps) return "it has more steps than the training budget";
    return {};
  }

  template <class Supernet, class Callbacks>
  unit advance(Supernet& net, const cost::constraint& k, state& s, Callbacks& cb) const {
    if (s.steps_done < schedule_.pool_step_at[s.next_layer]) {
      // train(pool, n): a uniform pool member, then a uniform feasible suffix.
      const std::size_t t = s.steps_done;
      rng r = stream(o_.seed, stream_kind::training, t);
      const auto& member = s.pool[static_cast<std::size_t>(r.uniform_index(s.pool.size()))];
      const std::vector<int> arch = k.complete(member.prefix, r);
      const double rate = learning_rate_(t);
      const double loss = detail::checked_train_step(net, arch, rate, t);
      s.loss_sum += loss;
      ++s.loss_count;
      ++s.steps_done;
      cb.step(step_info{s.next_layer == 0 ? "warmup" : "interval", t, o_.total_steps, rate, loss, arch});
      return unit::training_step;
    }
    pool_step(net, k, s, cb);
    return unit::milestone;
  }

  template <class Callbacks>
  result finish(const cost::constraint& k, state& s, bool resumed, Callbacks& cb) const {
    result r;
    r.final_pool = s.pool;
    r.best_arch = s.pool.front().prefix;
    r.best_accuracy = s.pool.front().potential;
    r.predicted_cost = k.model().predict(r.best_arch);
    r.steps_done = s.steps_done;
    r.evaluations = s.evaluations;
    r.history = std::move(s.history);
    r.resumed = resumed;
    cb.event("done", "best " + arch_to_string(r.best_arch) + " accuracy " + std::to_string(r.best_accuracy) +
                         " cost " + std::to_string(r.predicted_cost));
    return r;
  }

 private:
  // Every feasible extension of every member, ranked by potential; the top P are the new pool.
  template <class Supernet, class Callbacks>
  void pool_step(Supernet& net, const cost::constraint& k, state& s, Callbacks& cb) const {
    const std::size_t layer = s.next_layer;
    std::vector<pool_member> candidates;
    for (const auto& member : s.pool)
      for (std::size_t o = 0; o < k.num_choices(layer); ++o) {
        pool_member c;
        c.prefix = member.prefix;
        c.prefix.push_back(static_cast<int>(o));
        if (k.is_feasible(c.prefix)) candidates.push_back(std::move(c));
      }
    // Per candidate, its completions' distinct paths are scored in one evaluate_all call, so a
    // device supernet runs them back to back; progress is still reported per candidate.
    std::vector<double> accuracies;
    std::vector<std::vector<int>> archs, distinct;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      auto& c = candidates[i];
      archs.clear();
      distinct.clear();
      which.clear();
      double cost_sum = 0.0;
      for (std::size_t j = 0; j < o_.completions; ++j) {
        rng r = stream(o_.seed, stream_kind::potential, (static_cast<std::uint64_t>(layer) << 32) | j);
        archs.push_back(k.complete(c.prefix, r));
        cost_sum += k.model().predict(archs.back());
        const auto seen = o_.deduplicate_evaluations ? std::find(distinct.begin(), distinct.end(), archs.back())
                                                     : distinct.end();
        which.push_back(static_cast<std::size_t>(seen - distinct.begin()));
        if (seen == distinct.end()) distinct.push_back(archs.back());
      }
      const std::vector<double> scored = detail::checked_evaluate_all(net, distinct, o_.recalibrate);
      s.evaluations += distinct.size();
      accuracies.clear();
      for (std::size_t j : which) accuracies.push_back(scored[j]);
      double sum = 0.0;
      for (double a : accuracies) sum += a;
      c.potential = sum / static_cast<double>(accuracies.size());
      c.mean_cost = cost_sum / static_cast<double>(accuracies.size());
      c.min_cost = k.bounds(c.prefix).min_total;
      cb.candidate(candidate_info{layer, i, candidates.size(), &c, accuracies});
    }
    // Stable: equal potentials keep the candidates' order, so the pool is deterministic.
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const pool_member& a, const pool_member& b) { return a.potential > b.potential; });
    const std::size_t ranked = candidates.size();
    if (candidates.size() > o_.pool_size) candidates.resize(o_.pool_size);

    pool_record record;
    record.layer = layer;
    record.steps_done = s.steps_done;
    record.candidates = ranked;
    record.mean_train_loss = s.loss_count == 0 ? std::nan("") : s.loss_sum / static_cast<double>(s.loss_count);
    record.pool = candidates;
    s.history.push_back(std::move(record));
    s.pool = std::move(candidates);
    s.loss_sum = 0.0;
    s.loss_count = 0;
    ++s.next_layer;
    cb.pool_update(pool_info{layer, k.num_layers(), s.steps_done, ranked, s.evaluations, s.pool});
  }

  pc_nas_options o_;
  pc_nas_schedule schedule_;
  cosine_schedule learning_rate_;
};

// Runs (or, with a checkpoint path that exists and resume set, continues) a PC-NAS search.
template <class Supernet, class... Callbacks>
pc_nas_result pc_nas_search(Supernet& net, const cost::constraint& k, const pc_nas_options& options,
                            Callbacks&&... callbacks) {
  return run_search(pc_nas_method(options, k), net, k, options.checkpoint, std::forward<Callbacks>(callbacks)...);
}

}  // namespace pcnas::search
