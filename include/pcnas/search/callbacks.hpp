// What a search reports while it runs, and how: callbacks are a trailing pack of objects whose
// hooks are all optional (found by requires-expressions), as in ensmallen. A callback may stop
// the search by throwing; the last checkpoint stays valid.
//
//   on_step(const step_info&)            after every training step
//   on_candidate(const candidate_info&)  after the potential of each PC-NAS candidate
//   on_pool_update(const pool_info&)     after every PC-NAS pool step
//   on_evaluation(const evaluation_info&) after each architecture evolution/random search evaluates
//   on_generation(const generation_info&) after each evolution generation
//   on_event(const event_info&)          phase changes, checkpoints, resumes, the end
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <tuple>
#include <vector>

namespace pcnas::search {

struct step_info {
  std::string_view phase;        // "warmup", "interval", "uniform"
  std::size_t step = 0;          // global, 0-based: the step just taken
  std::size_t total_steps = 0;   // the whole training budget
  double learning_rate = 0.0;
  double loss = 0.0;
  std::span<const int> arch;     // the path trained
};

// A partial model in the PC-NAS pool. For a prefix, the costs are over its evaluated
// completions (mean) and over all completions (the minimum); for a complete model both are its
// predicted cost.
struct pool_member {
  std::vector<int> prefix;
  double potential = 0.0;  // mean held-out accuracy of the completions evaluated for it
  double min_cost = 0.0;   // the cheapest completion's predicted cost
  double mean_cost = 0.0;  // mean predicted cost of the completions evaluated
};

struct candidate_info {
  std::size_t layer = 0;          // the layer this pool step fixes (0-based)
  std::size_t index = 0;          // the candidate's position in this step
  std::size_t count = 0;          // feasible candidates in this step
  const pool_member* candidate = nullptr;   // prefix, potential and costs
  std::span<const double> accuracies;       // one per completion, in completion order
};

struct pool_info {
  std::size_t layer = 0;          // the layer just fixed (0-based); the pool holds prefixes of layer + 1
  std::size_t num_layers = 0;
  std::size_t steps_done = 0;     // training steps so far
  std::size_t candidates = 0;     // feasible candidates ranked in this step
  std::size_t evaluations = 0;    // supernet evaluations so far
  std::span<const pool_member> pool;  // best first
};

struct evaluation_info {
  std::size_t index = 0;          // evaluations so far, this one included
  std::size_t budget = 0;
  std::span<const int> arch;
  double accuracy = 0.0;
  double cost = 0.0;
};

// A complete architecture with its held-out accuracy and predicted cost.
struct scored_arch {
  std::vector<int> arch;
  double accuracy = 0.0;
  double cost = 0.0;
};

struct generation_info {
  std::size_t generation = 0;     // 0 is the random initial population
  std::size_t evaluations = 0;
  std::size_t budget = 0;
  std::span<const scored_arch> best;  // the top-k parents after this generation, best first
};

struct event_info {
  std::string_view kind;     // "start", "phase", "checkpoint", "resume", "done"
  std::string_view message;  // one human-readable sentence
};

namespace detail {
template <class C>
concept has_on_step = requires(C& c, const step_info& i) { c.on_step(i); };
template <class C>
concept has_on_candidate = requires(C& c, const candidate_info& i) { c.on_candidate(i); };
template <class C>
concept has_on_pool_update = requires(C& c, const pool_info& i) { c.on_pool_update(i); };
template <class C>
concept has_on_evaluation = requires(C& c, const evaluation_info& i) { c.on_evaluation(i); };
template <class C>
concept has_on_generation = requires(C& c, const generation_info& i) { c.on_generation(i); };
template <class C>
concept has_on_event = requires(C& c, const event_info& i) { c.on_event(i); };
}  // namespace detail

// A callback with none of the hooks is almost always a misspelt one (onStep, on_pool): refused.
template <class C>
concept search_callback = detail::has_on_step<C> || detail::has_on_candidate<C> || detail::has_on_pool_update<C> ||
                          detail::has_on_evaluation<C> || detail::has_on_generation<C> || detail::has_on_event<C>;

// The callbacks of one search call, by reference; each hook goes to those that have it.
template <class... Callbacks>
class callback_set {
  static_assert((search_callback<Callbacks> && ...),
                "A search callback must define at least one of on_step(const step_info&), "
                "on_candidate(const candidate_info&), on_pool_update(const pool_info&), "
                "on_evaluation(const evaluation_info&), on_generation(const generation_info&) or "
                "on_event(const event_info&); check the spelling of its hooks.");

 public:
  explicit callback_set(Callbacks&... callbacks) : callbacks_(callbacks...) {}

  void step(const step_info& i) {
    std::apply([&](auto&... c) { (call_step(c, i), ...); }, callbacks_);
  }
  void candidate(const candidate_info& i) {
    std::apply([&](auto&... c) { (call_candidate(c, i), ...); }, callbacks_);
  }
  void pool_update(const pool_info& i) {
    std::apply([&](auto&... c) { (call_pool_update(c, i), ...); }, callbacks_);
  }
  void evaluation(const evaluation_info& i) {
    std::apply([&](auto&... c) { (call_evaluation(c, i), ...); }, callbacks_);
  }
  void generation(const generation_info& i) {
    std::apply([&](auto&... c) { (call_generation(c, i), ...); }, callbacks_);
  }
  void event(std::string_view kind, std::string_view message) {
    const event_info i{kind, message};
    std::apply([&](auto&... c) { (call_event(c, i), ...); }, callbacks_);
  }

 private:
  template <class C> static void call_step(C& c, const step_info& i) { if constexpr (detail::has_on_step<C>) c.on_step(i); }
  template <class C> static void call_candidate(C& c, const candidate_info& i) {
    if constexpr (detail::has_on_candidate<C>) c.on_candidate(i);
  }
  template <class C> static void call_pool_update(C& c, const pool_info& i) {
    if constexpr (detail::has_on_pool_update<C>) c.on_pool_update(i);
  }
  template <class C> static void call_evaluation(C& c, const evaluation_info& i) {
    if constexpr (detail::has_on_evaluation<C>) c.on_evaluation(i);
  }
  template <class C> static void call_generation(C& c, const generation_info& i) {
    if constexpr (detail::has_on_generation<C>) c.on_generation(i);
  }
  template <class C> static void call_event(C& c, const event_info& i) { if constexpr (detail::has_on_event<C>) c.on_event(i); }

  std::tuple<Callbacks&...> callbacks_;
};

}  // namespace pcnas::search
