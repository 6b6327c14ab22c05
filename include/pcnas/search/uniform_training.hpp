// Uniform single-path one-shot training (SPOS): every step trains one path drawn exactly
// uniformly from the feasible space. The baselines' supernet; with PC-NAS's seed, its first
// steps train the same paths as PC-NAS's warm-up.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/search/driver.hpp>
#include <pcnas/search/schedule.hpp>
#include <pcnas/search/streams.hpp>

namespace pcnas::search {

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

class uniform_training_method {
 public:
  struct state {
    std::size_t steps_done = 0;
    double loss_sum = 0.0;
    std::size_t loss_count = 0;
    double tail_sum = 0.0;
    std::size_t tail_count = 0;

    template <class Archive>
    friend void fields(Archive& ar, state& s) {
      ar(s.steps_done, s.loss_sum, s.loss_count, s.tail_sum, s.tail_count);
    }
  };
  using result = uniform_training_result;
  static constexpr std::string_view kind = "uniform_training";
  static constexpr std::string_view title = "uniform training";

  explicit uniform_training_method(const uniform_training_options& o)
      : o_(o), learning_rate_{o.base_lr, o.final_lr, o.total_steps} {
    if (o.total_steps == 0)
      throw std::invalid_argument("train_uniform: total_steps must be set (the training budget in steps)");
  }

  std::uint64_t fingerprint(const cost::constraint& k) const {
    return fingerprint_builder{}
        .add(std::string_view("uniform_training"))
        .add(static_cast<std::uint64_t>(o_.total_steps))
        .add(o_.base_lr)
        .add(o_.final_lr)
        .add(o_.seed)
        .add(k)
        .value();
  }
  state initial_state(const cost::constraint&) const { return {}; }
  bool done(const state& s, const cost::constraint&) const { return s.steps_done >= o_.total_steps; }
  std::size_t training_steps(const state& s) const { return s.steps_done; }
  std::string start_message(const cost::constraint& k) const {
    return "uniform one-shot training, " + std::to_string(o_.total_steps) + " steps over " +
           k.count_feasible().to_string() + " feasible architectures";
  }
  std::string position(const state& s) const { return "at step " + std::to_string(s.steps_done); }
  std::string check_resumed(const state& s, const cost::constraint&) const {
    return s.steps_done > o_.total_steps ? "it has more steps than the training budget" : "";
  }

  template <class Supernet, class Callbacks>
  unit advance(Supernet& net, const cost::constraint& k, state& s, Callbacks& cb) const {
    const std::size_t t = s.steps_done;
    // The same stream as PC-NAS's training steps, with the pool being the empty prefix.
    rng r = stream(o_.seed, stream_kind::training, t);
    (void)r.uniform_index(1);
    const std::vector<int> arch = k.complete({}, r);
    const double rate = learning_rate_(t);
    const double loss = detail::checked_train_step(net, arch, rate, t);
    s.loss_sum += loss;
    ++s.loss_count;
    if (t >= o_.total_steps - o_.total_steps / 10) {
      s.tail_sum += loss;
      ++s.tail_count;
    }
    ++s.steps_done;
    cb.step(step_info{"uniform", t, o_.total_steps, rate, loss, arch});
    return s.steps_done == o_.total_steps ? unit::milestone : unit::training_step;
  }

  template <class Callbacks>
  result finish(const cost::constraint&, const state& s, bool resumed, Callbacks& cb) const {
    result r;
    r.steps_done = s.steps_done;
    r.mean_loss = s.loss_count ? s.loss_sum / static_cast<double>(s.loss_count) : std::nan("");
    r.final_loss = s.tail_count ? s.tail_sum / static_cast<double>(s.tail_count) : std::nan("");
    r.resumed = resumed;
    cb.event("done", "uniform training done, final loss " + std::to_string(r.final_loss));
    return r;
  }

 private:
  uniform_training_options o_;
  cosine_schedule learning_rate_;
};

template <class Supernet, class... Callbacks>
uniform_training_result train_uniform(Supernet& net, const cost::constraint& k, const uniform_training_options& options,
                                      Callbacks&&... callbacks) {
  return run_search(uniform_training_method(options), net, k, options.checkpoint,
                    std::forward<Callbacks>(callbacks)...);
}

}  // namespace pcnas::search
