// Progress of a long search on stderr: one line rewritten in place with the rate and ETA when
// stderr is a terminal, plain lines at a slower pace when it goes to a log. Used as a search
// callback: pass `progress_callback{}` after the options.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

#include <pcnas/search/callbacks.hpp>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace pcnas::search {

struct progress_options {
  std::FILE* stream = stderr;
  int terminal = -1;                 // 1: rewrite one line, 0: plain lines, -1: ask isatty()
  double terminal_interval_s = 0.2;  // between redraws on a terminal
  double plain_interval_s = 30.0;    // between lines in a log
};

// Counts work units towards a total and prints "label  done/total  pct  rate/s  ETA  detail".
class progress_printer {
 public:
  explicit progress_printer(progress_options options = {}) : options_(options) {
    terminal_ = options_.terminal >= 0 ? options_.terminal == 1 : is_terminal(options_.stream);
  }
  ~progress_printer() { end_line(); }
  progress_printer(const progress_printer&) = delete;
  progress_printer& operator=(const progress_printer&) = delete;

  bool terminal() const noexcept { return terminal_; }

  void begin(std::string_view label, std::size_t total, std::size_t done = 0) {
    end_line();
    label_ = label;
    total_ = total;
    start_done_ = done;
    start_ = clock::now();
    last_print_ = start_ - std::chrono::hours(1);  // print the first update at once
  }

  // Prints when the interval has passed, and always at the last unit.
  void update(std::size_t done, std::string_view detail = {}) {
    const auto now = clock::now();
    const double since = seconds(now - last_print_);
    const double interval = terminal_ ? options_.terminal_interval_s : options_.plain_interval_s;
    if (since < interval && done < total_) return;
    last_print_ = now;
    const std::string line = format(done, seconds(now - start_), detail);
    if (terminal_) {
      std::fprintf(options_.stream, "\r%s\x1b[K", line.c_str());
      open_line_ = done < total_;
      if (!open_line_) std::fputc('\n', options_.stream);
    } else {
      std::fprintf(options_.stream, "%s\n", line.c_str());
    }
    std::fflush(options_.stream);
  }

  // A line of its own (a pool step, a checkpoint), without breaking the progress line.
  void message(std::string_view text) {
    end_line();
    std::fprintf(options_.stream, "%.*s\n", static_cast<int>(text.size()), text.data());
    std::fflush(options_.stream);
  }

  // "1h02m", "3m05s", "12s": short enough for a terminal line.
  static std::string format_duration(double s) {
    if (!(s >= 0.0) || s > 1e8) return "?";
    const auto total = static_cast<long long>(s + 0.5);
    char buf[32];
    if (total >= 3600)
      std::snprintf(buf, sizeof buf, "%lldh%02lldm", total / 3600, (total % 3600) / 60);
    else if (total >= 60)
      std::snprintf(buf, sizeof buf, "%lldm%02llds", total / 60, total % 60);
    else
      std::snprintf(buf, sizeof buf, "%llds", total);
    return buf;
  }

  static std::string format_rate(double r) {
    char buf[32];
    std::snprintf(buf, sizeof buf, r >= 100 ? "%.0f" : "%.1f", r);
    return buf;
  }

  std::string format(std::size_t done, double elapsed_s, std::string_view detail) const {
    const double units = static_cast<double>(done - std::min(done, start_done_));
    // No rate until it means something: one unit in a few milliseconds is not a rate.
    const double rate = elapsed_s >= 0.5 ? units / elapsed_s : 0.0;
    const double left = static_cast<double>(total_ > done ? total_ - done : 0);
    const double pct = total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0;
    char head[160];
    std::snprintf(head, sizeof head, "%s %zu/%zu %5.1f%% %s/s ETA %s", label_.c_str(), done, total_, pct,
                  rate > 0.0 ? format_rate(rate).c_str() : "?",
                  rate > 0.0 ? format_duration(left / rate).c_str() : "?");
    std::string line = head;
    if (!detail.empty()) {
      line += "  ";
      line += detail;
    }
    return line;
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }
  static bool is_terminal(std::FILE* stream) {
#if defined(__unix__) || defined(__APPLE__)
    return stream != nullptr && ::isatty(::fileno(stream)) == 1;
#else
    (void)stream;
    return false;
#endif
  }
  void end_line() {
    if (open_line_) {
      std::fputc('\n', options_.stream);
      open_line_ = false;
    }
  }

  progress_options options_;
  bool terminal_ = false;
  bool open_line_ = false;
  std::string label_;
  std::size_t total_ = 0;
  std::size_t start_done_ = 0;
  clock::time_point start_{};
  clock::time_point last_print_{};
};

// The printer as a search callback: training steps, the candidates of a pool step and the
// evaluations of evolution or random search drive the line; pool steps, generations and events
// get lines of their own.
class progress_callback {
 public:
  explicit progress_callback(progress_options options = {}) : printer_(options) {}

  void on_step(const step_info& i) {
    if (i.total_steps != total_ || i.phase != phase_) {
      total_ = i.total_steps;
      phase_ = i.phase;
      printer_.begin("train[" + phase_ + "]", total_, i.step);
    }
    char detail[64];
    std::snprintf(detail, sizeof detail, "loss %.4f lr %.4g", i.loss, i.learning_rate);
    printer_.update(i.step + 1, detail);
  }
  void on_candidate(const candidate_info& c) {
    if (c.index == 0) {
      printer_.begin("pool step " + std::to_string(c.layer + 1) + " candidates", c.count);
      phase_.clear();
    }
    char detail[64];
    std::snprintf(detail, sizeof detail, "potential %.4f", c.candidate ? c.candidate->potential : 0.0);
    printer_.update(c.index + 1, detail);
  }
  void on_evaluation(const evaluation_info& e) {
    if (e.budget != evaluation_budget_) {
      evaluation_budget_ = e.budget;
      printer_.begin("evaluate", e.budget, e.index > 0 ? e.index - 1 : 0);
      phase_.clear();
    }
    char detail[64];
    std::snprintf(detail, sizeof detail, "accuracy %.4f", e.accuracy);
    printer_.update(e.index, detail);
  }
  void on_pool_update(const pool_info& i) {
    phase_.clear();  // the next interval starts its own rate and ETA
    char line[160];
    std::snprintf(line, sizeof line, "pool step %zu/%zu: %zu candidates, best potential %.4f (min cost %.4g), %zu evaluations",
                  i.layer + 1, i.num_layers, i.candidates, i.pool.empty() ? 0.0 : i.pool.front().potential,
                  i.pool.empty() ? 0.0 : i.pool.front().min_cost, i.evaluations);
    printer_.message(line);
  }
  void on_generation(const generation_info& g) {
    char line[128];
    std::snprintf(line, sizeof line, "generation %zu: %zu/%zu evaluations, best accuracy %.4f", g.generation,
                  g.evaluations, g.budget, g.best.empty() ? 0.0 : g.best.front().accuracy);
    printer_.message(line);
  }
  void on_event(const event_info& e) {
    if (e.kind == "checkpoint") return;  // frequent and quiet: the log records them
    printer_.message(std::string(e.kind) + ": " + std::string(e.message));
  }
  // A line of the caller's own, between progress lines.
  void message(std::string_view text) { printer_.message(text); }

 private:
  progress_printer printer_;
  std::size_t total_ = 0;
  std::size_t evaluation_budget_ = 0;
  std::string phase_;
};

}  // namespace pcnas::search
