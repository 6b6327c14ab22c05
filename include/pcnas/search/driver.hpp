// The one loop every search method runs in: start or resume from a checkpoint, advance one
// unit of work at a time, save after milestones and every `every_steps` training steps, report
// through the callbacks. A method only says what its state is, how it advances and what it
// returns; resume, saving, the checkpoint's frame and fingerprint check, and the events are the
// driver's. A new method is one header with a `search_method` type.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <istream>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/io/binary.hpp>
#include <pcnas/search/callbacks.hpp>
#include <pcnas/search/checkpoint.hpp>
#include <pcnas/search/supernet_calls.hpp>
#include <pcnas/search/supernet_concept.hpp>

namespace pcnas::search {

/// What one `advance` did: a training step (saved every `every_steps` of them), an evaluation
/// (never saved on its own), or a milestone after which a checkpoint is always written (a pool
/// step, a generation, the end of training).
enum class unit { training_step, evaluation, milestone };

/// A search method the driver runs (see the examples in pc_nas.hpp, evolution.hpp,
/// random_search.hpp):
///   M::kind                      the checkpoint's kind, e.g. "pc_nas"
///   M::title                     its name in messages, e.g. "PC-NAS"
///   typename M::state            all its progress; `fields(archive&, state&)`, found by
///                                argument-dependent lookup, lists its fields once (io/binary.hpp)
///   typename M::result
///   m.fingerprint(k)             the options and constraint that determine the result
///   m.initial_state(k)
///   m.done(s, k)
///   m.advance(net, k, s, cb)     one unit of work, returns a `unit`
///   m.training_steps(s)          training steps done (for every_steps)
///   m.finish(k, s, resumed, cb)  the result
///   m.start_message(k), m.position(s)   one sentence each, for the events
///   m.check_resumed(s, k)        empty, or why a state read back cannot be this search's
template <class M>
concept search_method = requires(const M& m, typename M::state& s, const typename M::state& cs,
                                 const cost::constraint& k, io::archive<io::byte_writer>& w,
                                 io::archive<io::byte_reader>& r) {
  { M::kind } -> std::convertible_to<std::string_view>;
  { M::title } -> std::convertible_to<std::string_view>;
  { m.fingerprint(k) } -> std::same_as<std::uint64_t>;
  { m.initial_state(k) } -> std::same_as<typename M::state>;
  { m.done(cs, k) } -> std::same_as<bool>;
  { m.training_steps(cs) } -> std::convertible_to<std::size_t>;
  { m.start_message(k) } -> std::convertible_to<std::string>;
  { m.position(cs) } -> std::convertible_to<std::string>;
  { m.check_resumed(cs, k) } -> std::convertible_to<std::string>;
  fields(w, s);
  fields(r, s);
};

/// Where a search's time went in this process: the supernet's calls, timed as they pass through
/// the driver, and the checkpoints written. Reported at the end in a "timing" event.
struct time_split {
  double training_s = 0.0, recalibration_s = 0.0, evaluation_s = 0.0, checkpoint_s = 0.0;
  std::size_t steps = 0, recalibrations = 0, evaluations = 0, checkpoints = 0;
  // evaluate_all() calls: evaluations (with their recalibrations, when asked) issued back to
  // back, so the two cannot be told apart.
  double batched_evaluation_s = 0.0;
  std::size_t batched_evaluations = 0;

  std::string describe() const {
    const auto part = [](double s, std::size_t n, const char* what) {
      char text[128];
      std::snprintf(text, sizeof text, "%.1f s in %zu %s", s, n, what);
      return std::string(text);
    };
    std::string text = part(training_s, steps, "training steps") + ", ";
    if (recalibrations > 0 || batched_evaluations == 0)
      text += part(recalibration_s, recalibrations, "recalibrations") + ", ";
    if (evaluations > 0 || batched_evaluations == 0) text += part(evaluation_s, evaluations, "evaluations") + ", ";
    if (batched_evaluations > 0)
      text += part(batched_evaluation_s, batched_evaluations, "evaluations with their recalibrations") + ", ";
    return text + part(checkpoint_s, checkpoints, "checkpoints");
  }
};

namespace detail {

// The supernet as a method sees it: the contract's calls forwarded, each one timed.
template <class Net>
class timed_supernet {
 public:
  timed_supernet(Net& net, time_split& t) : net_(net), t_(t) {}
  auto num_layers() const { return net_.num_layers(); }
  auto num_choices(std::size_t layer) const { return net_.num_choices(layer); }
  auto train_step(std::span<const int> arch, double learning_rate) {
    return timed(t_.training_s, t_.steps, [&] { return net_.train_step(arch, learning_rate); });
  }
  void recalibrate(std::span<const int> arch) {
    timed(t_.recalibration_s, t_.recalibrations, [&] { net_.recalibrate(arch); return 0; });
  }
  auto evaluate(std::span<const int> arch) {
    return timed(t_.evaluation_s, t_.evaluations, [&] { return net_.evaluate(arch); });
  }
  std::vector<double> evaluate_all(std::span<const std::vector<int>> archs, bool recalibrate)
    requires supernet_has_evaluate_all<Net>
  {
    std::size_t calls = 0;
    auto r = timed(t_.batched_evaluation_s, calls, [&] { return net_.evaluate_all(archs, recalibrate); });
    t_.batched_evaluations += archs.size();
    return r;
  }
  void save(std::ostream& out) const { net_.save(out); }
  void load(std::istream& in) { net_.load(in); }

 private:
  template <class F>
  static auto timed(double& seconds, std::size_t& count, F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = f();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++count;
    return r;
  }

  Net& net_;
  time_split& t_;
};

}  // namespace detail

/// Runs `method` on `net` under `k`, or continues it from `checkpoint.path` when that exists and
/// `checkpoint.resume` is set. Callbacks as in callbacks.hpp; a callback that throws stops the
/// search with the last checkpoint intact.
template <search_method Method, class Supernet, class... Callbacks>
typename Method::result run_search(const Method& method, Supernet& net, const cost::constraint& k,
                                   const checkpoint_options& checkpoint, Callbacks&&... callbacks) {
  static_assert(check_supernet<Supernet>());
  if constexpr (!searchable_supernet<Supernet>) {
    return {};
  } else {
    detail::check_same_shape(net, k);
    callback_set<std::remove_reference_t<Callbacks>...> cb(callbacks...);
    const std::uint64_t fingerprint = method.fingerprint(k);
    const std::string path = checkpoint.path.string();
    time_split time;
    detail::timed_supernet<Supernet> timed(net, time);

    typename Method::state state = method.initial_state(k);
    bool resumed = false;
    if (!checkpoint.path.empty() && checkpoint.resume && std::filesystem::exists(checkpoint.path)) {
      auto reader = read_checkpoint(checkpoint.path, Method::kind, fingerprint);
      io::read_fields(reader, state);
      if (const std::string why = method.check_resumed(state, k); !why.empty()) reader.fail(why);
      load_supernet(net, reader);
      reader.expect_end("the supernet state");
      resumed = true;
      cb.event("resume", "resumed " + std::string(Method::title) + " from " + path + " " + method.position(state));
    } else {
      cb.event("start", method.start_message(k));
    }

    const auto save = [&] {
      if (checkpoint.path.empty()) return;
      const auto t0 = std::chrono::steady_clock::now();
      checkpoint_writer w;
      w.str(Method::kind);
      w.u64(fingerprint);
      io::write_fields(w, state);
      save_supernet(net, w);
      write_checkpoint(checkpoint.path, w);
      time.checkpoint_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++time.checkpoints;
      cb.event("checkpoint", "wrote " + path + " " + method.position(state));
    };

    while (!method.done(state, k)) {
      const unit u = method.advance(timed, k, state, cb);
      const std::size_t steps = method.training_steps(state);
      if (u == unit::milestone ||
          (u == unit::training_step && checkpoint.every_steps != 0 && steps % checkpoint.every_steps == 0))
        save();
    }
    cb.event("timing", std::string(Method::title) + (resumed ? " (this run, since the resume): " : ": ") +
                           time.describe());
    return method.finish(k, state, resumed, cb);
  }
}

}  // namespace pcnas::search
