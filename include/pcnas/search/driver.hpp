// The one loop every search method runs in: start or resume from a checkpoint, advance one
// unit of work at a time, save after milestones and every `every_steps` training steps, report
// through the callbacks. A method only says what its state is, how it advances and what it
// returns; resume, saving, the checkpoint's frame and fingerprint check, and the events are the
// driver's. A new method is one header with a `search_method` type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
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
      checkpoint_writer w;
      w.str(Method::kind);
      w.u64(fingerprint);
      io::write_fields(w, state);
      save_supernet(net, w);
      write_checkpoint(checkpoint.path, w);
      cb.event("checkpoint", "wrote " + path + " " + method.position(state));
    };

    while (!method.done(state, k)) {
      const unit u = method.advance(net, k, state, cb);
      const std::size_t steps = method.training_steps(state);
      if (u == unit::milestone ||
          (u == unit::training_step && checkpoint.every_steps != 0 && steps % checkpoint.every_steps == 0))
        save();
    }
    return method.finish(k, state, resumed, cb);
  }
}

}  // namespace pcnas::search
