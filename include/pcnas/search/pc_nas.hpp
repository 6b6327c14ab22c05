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
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/search/callbacks.hpp>
#include <pcnas/search/checkpoint.hpp>
#include <pcnas/search/schedule.hpp>
#include <pcnas/search/streams.hpp>
#include <pcnas/search/supernet_calls.hpp>
#include <pcnas/search/supernet_concept.hpp>

namespace pcnas::search {

struct pc_nas_options {
  std::size_t pool_size = 5;         // P
  std::size_t completions = 8;       // S, the same S suffix streams for every candidate of a step
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

// The number of evaluations the paper's procedure makes, Σ_l |pool_l| · N_l · S with the pool
// growing 1, min(P, N_0), ... — ignoring the constraint, which only removes candidates. The
// default budget of evolution and random search, so that baselines get as many evaluations.
inline std::size_t pc_nas_nominal_evaluations(const std::vector<std::size_t>& choices_per_layer,
                                              std::size_t pool_size = 5, std::size_t completions = 8) {
  std::size_t total = 0, pool = 1;
  for (std::size_t n : choices_per_layer) {
    total += pool * n * completions;
    pool = std::min(pool_size, pool * n);
  }
  return total;
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

inline void write_members(checkpoint_writer& w, const std::vector<pool_member>& members) {
  w.u64(members.size());
  for (const auto& m : members) {
    w.ints(m.prefix);
    w.f64(m.potential);
    w.f64(m.min_cost);
    w.f64(m.mean_cost);
  }
}

inline std::vector<pool_member> read_members(checkpoint_reader& r) {
  std::vector<pool_member> members(r.count(32));
  for (auto& m : members) {
    m.prefix = r.ints();
    m.potential = r.f64();
    m.min_cost = r.f64();
    m.mean_cost = r.f64();
  }
  return members;
}

inline void write_state(checkpoint_writer& w, const pc_nas_state& s) {
  w.u64(s.steps_done);
  w.u64(s.next_layer);
  w.u64(s.evaluations);
  w.f64(s.loss_sum);
  w.u64(s.loss_count);
  write_members(w, s.pool);
  w.u64(s.history.size());
  for (const auto& h : s.history) {
    w.u64(h.layer);
    w.u64(h.steps_done);
    w.u64(h.candidates);
    w.f64(h.mean_train_loss);
    write_members(w, h.pool);
  }
}

inline pc_nas_state read_state(checkpoint_reader& r, std::size_t num_layers) {
  pc_nas_state s;
  s.steps_done = r.u64();
  s.next_layer = r.u64();
  s.evaluations = r.u64();
  s.loss_sum = r.f64();
  s.loss_count = r.u64();
  s.pool = read_members(r);
  s.history.resize(r.count(40));
  for (auto& h : s.history) {
    h.layer = r.u64();
    h.steps_done = r.u64();
    h.candidates = r.u64();
    h.mean_train_loss = r.f64();
    h.pool = read_members(r);
  }
  if (s.next_layer > num_layers || s.pool.empty())
    r.fail("the pool state is inconsistent with a " + std::to_string(num_layers) + "-layer space");
  for (const auto& m : s.pool)
    if (m.prefix.size() != s.next_layer) r.fail("a pool member's length disagrees with the pool step");
  return s;
}

inline std::uint64_t pc_nas_fingerprint(const pc_nas_options& o, const cost::constraint& k) {
  fingerprint_builder f;
  f.add(std::string_view("pc_nas"))
      .add(static_cast<std::uint64_t>(o.pool_size))
      .add(static_cast<std::uint64_t>(o.completions))
      .add(o.warmup_fraction)
      .add(static_cast<std::uint64_t>(o.total_steps))
      .add(o.base_lr)
      .add(o.final_lr)
      .add(static_cast<std::uint64_t>(o.recalibrate))
      .add(static_cast<std::uint64_t>(o.deduplicate_evaluations))
      .add(o.seed)
      .add(k);
  return f.value();
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

// Runs (or, with a checkpoint path that exists and resume set, continues) a PC-NAS search.
// Common random numbers: the s-th completion of every candidate of pool step l is drawn from
// the same stream (l, s) by the exact sampler, one integer per layer. Candidates whose prefixes
// leave the same budget have the same feasible suffixes and so get identical completions;
// the others get completions drawn from the same numbers, as alike as their budgets allow.
template <class Supernet, class... Callbacks>
pc_nas_result pc_nas_search(Supernet& net, const cost::constraint& k, const pc_nas_options& options,
                            Callbacks&&... callbacks) {
  static_assert(check_supernet<Supernet>());
  if constexpr (!supernet<Supernet>) {
    return {};
  } else {
    detail::check_options(options);
    detail::check_same_shape(net, k);
    callback_set<std::remove_reference_t<Callbacks>...> cb(callbacks...);
    const std::size_t num_layers = k.num_layers();
    const pc_nas_schedule schedule = make_pc_nas_schedule(options, num_layers);
    const cosine_schedule learning_rate{options.base_lr, options.final_lr, options.total_steps};
    const std::uint64_t fingerprint = detail::pc_nas_fingerprint(options, k);
    const auto& ckpt = options.checkpoint;

    detail::pc_nas_state state;
    pc_nas_result result;
    if (!ckpt.path.empty() && ckpt.resume && std::filesystem::exists(ckpt.path)) {
      auto reader = read_checkpoint(ckpt.path, "pc_nas", fingerprint);
      state = detail::read_state(reader, num_layers);
      const std::string blob = reader.str();
      if (!reader.at_end()) reader.fail("unexpected bytes after the supernet state");
      load_supernet(net, blob, reader.source());
      result.resumed = true;
      cb.event("resume", "resumed from " + ckpt.path.string() + " at step " + std::to_string(state.steps_done) +
                             " after " + std::to_string(state.next_layer) + " pool steps");
    } else {
      cb.event("start", "PC-NAS over " + std::to_string(num_layers) + " layers, " +
                            k.count_feasible().to_string() + " feasible architectures, " +
                            std::to_string(options.total_steps) + " training steps");
    }

    auto save = [&] {
      if (ckpt.path.empty()) return;
      checkpoint_writer w;
      w.str("pc_nas");
      w.u64(fingerprint);
      detail::write_state(w, state);
      w.str(save_supernet(net));
      write_checkpoint(ckpt.path, w);
      cb.event("checkpoint", "wrote " + ckpt.path.string() + " at step " + std::to_string(state.steps_done));
    };

    std::vector<int> arch;
    while (state.next_layer < num_layers) {
      // train(pool, n): a uniform pool member, then a uniform feasible suffix.
      const std::size_t until = schedule.pool_step_at[state.next_layer];
      const std::string_view phase = state.next_layer == 0 ? "warmup" : "interval";
      while (state.steps_done < until) {
        const std::size_t t = state.steps_done;
        rng r = stream(options.seed, stream_kind::training, t);
        const auto& member = state.pool[static_cast<std::size_t>(r.uniform_index(state.pool.size()))];
        arch = k.complete(member.prefix, r);
        const double rate = learning_rate(t);
        const double loss = detail::checked_train_step(net, arch, rate, t);
        state.loss_sum += loss;
        ++state.loss_count;
        ++state.steps_done;
        cb.step(step_info{phase, t, options.total_steps, rate, loss, arch});
        if (ckpt.every_steps != 0 && state.steps_done % ckpt.every_steps == 0) save();
      }

      // The pool step: every feasible extension of every member, ranked by potential.
      const std::size_t layer = state.next_layer;
      std::vector<pool_member> candidates;
      for (const auto& member : state.pool)
        for (std::size_t o = 0; o < k.num_choices(layer); ++o) {
          pool_member c;
          c.prefix = member.prefix;
          c.prefix.push_back(static_cast<int>(o));
          if (k.is_feasible(c.prefix)) candidates.push_back(std::move(c));
        }
      std::vector<double> accuracies;
      std::map<std::vector<int>, double> seen;
      for (std::size_t i = 0; i < candidates.size(); ++i) {
        auto& c = candidates[i];
        accuracies.clear();
        seen.clear();
        double cost_sum = 0.0;
        for (std::size_t s = 0; s < options.completions; ++s) {
          rng r = stream(options.seed, stream_kind::potential, (static_cast<std::uint64_t>(layer) << 32) | s);
          arch = k.complete(c.prefix, r);
          double accuracy;
          if (const auto it = seen.find(arch); options.deduplicate_evaluations && it != seen.end()) {
            accuracy = it->second;
          } else {
            accuracy = detail::checked_evaluate(net, arch, options.recalibrate);
            ++state.evaluations;
            seen.emplace(arch, accuracy);
          }
          accuracies.push_back(accuracy);
          cost_sum += k.model().predict(arch);
        }
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
      if (candidates.size() > options.pool_size) candidates.resize(options.pool_size);

      pool_record record;
      record.layer = layer;
      record.steps_done = state.steps_done;
      record.candidates = ranked;
      record.mean_train_loss = state.loss_count == 0 ? std::nan("") : state.loss_sum / static_cast<double>(state.loss_count);
      record.pool = candidates;
      state.history.push_back(std::move(record));
      state.pool = std::move(candidates);
      state.loss_sum = 0.0;
      state.loss_count = 0;
      ++state.next_layer;
      cb.pool_update(pool_info{layer, num_layers, state.steps_done, ranked, state.evaluations, state.pool});
      save();
    }

    result.final_pool = state.pool;
    result.best_arch = state.pool.front().prefix;
    result.best_accuracy = state.pool.front().potential;
    result.predicted_cost = k.model().predict(result.best_arch);
    result.steps_done = state.steps_done;
    result.evaluations = state.evaluations;
    result.history = std::move(state.history);
    cb.event("done", "best " + arch_to_string(result.best_arch) + " accuracy " + std::to_string(result.best_accuracy) +
                         " cost " + std::to_string(result.predicted_cost));
    return result;
  }
}

}  // namespace pcnas::search
