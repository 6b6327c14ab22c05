// A JSON-lines log of a search, as a search callback: one object per line for every pool
// update (the pool with potentials and predicted costs), candidate, evaluation, generation and
// event, and every n-th training step. Each line is flushed, so a killed search loses at most
// the line being written, and a resumed one appends to the same file.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include <pcnas/json/search_result.hpp>
#include <pcnas/search/callbacks.hpp>

namespace pcnas::io {

struct event_log_options {
  std::size_t step_every = 100;  // log every n-th training step (0: none)
  bool candidates = true;        // one line per PC-NAS candidate, with its accuracies
  bool evaluations = true;       // one line per evolution / random-search evaluation
  bool append = true;            // false: start the file afresh
};

class event_log {
 public:
  explicit event_log(const std::filesystem::path& path, event_log_options options = {})
      : options_(options), path_(path), start_(std::chrono::steady_clock::now()) {
    out_.open(path, options.append ? std::ios::app : std::ios::trunc);
    if (!out_) throw std::runtime_error(path.string() + ": cannot open the event log for writing");
  }

  // Adds "time_s" (seconds since the log was opened) and writes one line.
  void write(nlohmann::json record) {
    record["time_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    out_ << record.dump() << '\n';
    out_.flush();
    if (!out_) throw std::runtime_error(path_.string() + ": writing the event log failed");
  }

  void on_step(const search::step_info& i) {
    if (options_.step_every == 0 || (i.step + 1) % options_.step_every != 0) return;
    write({{"type", "step"},
           {"phase", i.phase},
           {"step", i.step},
           {"total_steps", i.total_steps},
           {"learning_rate", i.learning_rate},
           {"loss", i.loss},
           {"arch", choices_to_json(i.arch)}});
  }
  void on_candidate(const search::candidate_info& i) {
    if (!options_.candidates) return;
    nlohmann::json record = to_json(*i.candidate);
    record["type"] = "candidate";
    record["layer"] = i.layer;
    record["index"] = i.index;
    record["count"] = i.count;
    record["accuracies"] = std::vector<double>(i.accuracies.begin(), i.accuracies.end());
    write(std::move(record));
  }
  void on_pool_update(const search::pool_info& i) {
    write({{"type", "pool"},
           {"layer", i.layer},
           {"num_layers", i.num_layers},
           {"steps_done", i.steps_done},
           {"candidates", i.candidates},
           {"evaluations", i.evaluations},
           {"pool", to_json(i.pool)}});
  }
  void on_evaluation(const search::evaluation_info& i) {
    if (!options_.evaluations) return;
    write({{"type", "evaluation"},
           {"index", i.index},
           {"budget", i.budget},
           {"arch", choices_to_json(i.arch)},
           {"accuracy", i.accuracy},
           {"cost", i.cost}});
  }
  void on_generation(const search::generation_info& g) {
    write({{"type", "generation"},
           {"generation", g.generation},
           {"evaluations", g.evaluations},
           {"budget", g.budget},
           {"best", to_json(g.best)}});
  }
  void on_event(const search::event_info& e) {
    write({{"type", "event"}, {"kind", e.kind}, {"message", e.message}});
  }

 private:
  event_log_options options_;
  std::filesystem::path path_;
  std::chrono::steady_clock::time_point start_;
  std::ofstream out_;
};

}  // namespace pcnas::io
