// SIGINT and SIGTERM during long work: the handler only records the signal, and the work
// stops at its next step, where no file is half-written, with a message that says how to
// continue (exit code 5). A second signal before that ends the process at once.
#pragma once

#include <pcnas/search/callbacks.hpp>

#include <csignal>
#include <stdexcept>
#include <string>

namespace pcnas_cli {

/// The run stopped on SIGINT or SIGTERM; what() says what was kept and how to continue.
class interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline volatile std::sig_atomic_t pending_signal = 0;

extern "C" inline void record_stop_signal(int sig) {
  if (pending_signal != 0) {  // asked twice: stop now
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  pending_signal = sig;
}

/// Installs the handlers for the life of a command that checks for them.
class stop_on_signals {
 public:
  stop_on_signals() {
    old_int_ = std::signal(SIGINT, record_stop_signal);
    old_term_ = std::signal(SIGTERM, record_stop_signal);
  }
  ~stop_on_signals() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }
  stop_on_signals(const stop_on_signals&) = delete;
  stop_on_signals& operator=(const stop_on_signals&) = delete;

 private:
  void (*old_int_)(int) = SIG_DFL;
  void (*old_term_)(int) = SIG_DFL;
};

/// Throws `interrupted` if a stop signal arrived; `state` says what is kept and how to resume.
inline void stop_if_signalled(const std::string& state) {
  const int sig = pending_signal;
  if (sig == 0) return;
  throw interrupted(std::string("interrupted by ") + (sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal") +
                    ": " + state);
}

/// A search callback that stops the search at its next step, candidate or evaluation (not at a
/// generation's end, which comes just before the checkpoint that saves it).
struct stop_check {
  std::string state;
  void on_step(const pcnas::search::step_info&) const { stop_if_signalled(state); }
  void on_candidate(const pcnas::search::candidate_info&) const { stop_if_signalled(state); }
  void on_evaluation(const pcnas::search::evaluation_info&) const { stop_if_signalled(state); }
};

}  // namespace pcnas_cli
