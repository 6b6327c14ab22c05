// Random search on a trained supernet: distinct feasible architectures drawn exactly uniformly,
// all evaluated. Resumable like every method of the driver: a checkpoint every
// `checkpoint_every` evaluations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/search/driver.hpp>
#include <pcnas/search/evaluation_record.hpp>
#include <pcnas/search/streams.hpp>

namespace pcnas::search {

struct random_search_options {
  std::size_t evaluations = 0;     // 0: as evolution_options::evaluations
  bool recalibrate = true;
  std::uint64_t seed = 0;
  std::size_t max_tries = 20;      // draws per slot before the slot is given up as a duplicate
  checkpoint_options checkpoint{}; // written every `checkpoint_every` slots and at the end
  std::size_t checkpoint_every = 50;
};

class random_search_method {
 public:
  struct state {
    std::size_t slot = 0;            // draws made, duplicates given up included
    rng r{0};
    evaluation_record record;

    template <class Archive>
    friend void fields(Archive& ar, state& s) {
      ar(s.slot);
      rng_field(ar, s.r);
      ar(s.record);
    }
  };
  using result = arch_search_result;
  static constexpr std::string_view kind = "random_search";
  static constexpr std::string_view title = "random search";

  random_search_method(const random_search_options& o, const cost::constraint& k)
      : o_(o), budget_(evaluation_budget(o.evaluations, k)) {}

  std::uint64_t fingerprint(const cost::constraint& k) const {
    return fingerprint_builder{}
        .add(std::string_view("random_search"))
        .add(static_cast<std::uint64_t>(budget_))
        .add(static_cast<std::uint64_t>(o_.recalibrate))
        .add(o_.seed)
        .add(static_cast<std::uint64_t>(o_.max_tries))
        .add(k)
        .value();
  }
  state initial_state(const cost::constraint&) const {
    state s;
    s.r = stream(o_.seed, stream_kind::random_search, 0);
    return s;
  }
  bool done(const state& s, const cost::constraint& k) const { return s.slot >= budget_ || s.record.exhausted(k); }
  std::size_t training_steps(const state&) const { return 0; }
  std::string start_message(const cost::constraint&) const {
    return "random search: " + std::to_string(budget_) + " evaluations";
  }
  std::string position(const state& s) const {
    return "after " + std::to_string(s.slot) + " draws, " + std::to_string(s.record.size()) + " evaluations";
  }
  std::string check_resumed(const state& s, const cost::constraint&) const {
    return s.slot > budget_ ? "it has more draws than the evaluation budget" : "";
  }

  // One slot: a uniform draw, redrawn while it was evaluated before (up to max_tries).
  template <class Supernet, class Callbacks>
  unit advance(Supernet& net, const cost::constraint& k, state& s, Callbacks& cb) const {
    std::vector<int> arch = k.sample(s.r);
    for (std::size_t tries = 1; s.record.contains(arch) && tries < o_.max_tries; ++tries) arch = k.sample(s.r);
    if (!s.record.contains(arch)) s.record.evaluate(net, k, std::move(arch), o_.recalibrate, budget_, cb);
    ++s.slot;
    const bool due = o_.checkpoint_every != 0 && s.slot % o_.checkpoint_every == 0;
    return due || done(s, k) ? unit::milestone : unit::evaluation;
  }

  template <class Callbacks>
  result finish(const cost::constraint& k, const state& s, bool resumed, Callbacks& cb) const {
    result r = s.record.result(k, 10);
    r.resumed = resumed;
    cb.event("done", "random search best " + arch_to_string(r.best_arch) + " accuracy " +
                         std::to_string(r.best_accuracy));
    return r;
  }

 private:
  random_search_options o_;
  std::size_t budget_;
};

template <class Supernet, class... Callbacks>
arch_search_result random_search(Supernet& net, const cost::constraint& k, const random_search_options& options,
                                 Callbacks&&... callbacks) {
  return run_search(random_search_method(options, k), net, k, options.checkpoint,
                    std::forward<Callbacks>(callbacks)...);
}

}  // namespace pcnas::search
