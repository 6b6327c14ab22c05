// `pcnas search`: its options, and what it writes and prints at the end (result.json,
// arch.json and the summary on the terminal). The run itself is in search.cpp.
#pragma once

#include "checks.hpp"
#include "common.hpp"
#include "methods.hpp"

#include <pcnas/cost/analytic.hpp>
#include <pcnas/cost/latency_table.hpp>
#include <pcnas/json/arch.hpp>
#include <pcnas/nn/train_architecture.hpp>
#include <pcnas/json/run_options.hpp>
#include <pcnas/search/budgets.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

namespace pcnas_cli {

struct search_options {
  std::string space;
  std::string method = "pcnas";
  std::string budget = "quick";
  double latency_ms = 0.0;         // 0: not given, the default point between fastest and slowest
  double limit_fraction = 0.4;     // that point: fastest + fraction · (slowest − fastest)
  std::uint64_t seed = 0;
  int threads = 0;
  std::string out = "out/search";
  std::string table;
  std::string data;
  bool resume = false;
  // Overrides of the budget's values (0, or -1 for retrain_epochs: not given, keep the budget's).
  std::size_t steps = 0;
  std::size_t pool = 0;
  std::size_t completions = 0;
  int retrain_epochs = -1;
  // Finalists rescored on this many held-out images before the final choice (0: not rescored).
  std::size_t final_images = 0;
};

/// The named budget with the options that override it.
inline pcnas::search::run_budget budget_of(const search_options& o) {
  auto preset = pcnas::search::find_run_budget(o.budget);
  if (!preset) throw usage_error("--budget must be quick, medium or full, got '" + o.budget + "'");
  pcnas::search::run_budget budget = *preset;
  if (o.steps) budget.steps = o.steps;
  if (o.pool) budget.pool = o.pool;
  if (o.completions) budget.completions = o.completions;
  if (o.retrain_epochs >= 0) budget.retrain_epochs = o.retrain_epochs;
  return budget;
}

// The options that determine a search's result, as stored in DIR/options.json (final_images
// only when given, so that directories written before the option existed still resume).
inline nlohmann::json stored_options(const search_options& o, const pcnas::search::run_budget& budget) {
  using pcnas::io::given_or_null;
  nlohmann::json j = {{"space", o.space}, {"method", o.method}, {"budget", o.budget}, {"seed", o.seed},
                      {"latency_ms", given_or_null(o.latency_ms > 0, o.latency_ms)},
                      {"limit_fraction", given_or_null(o.latency_ms <= 0, o.limit_fraction)},
                      {"steps", budget.steps}, {"pool", budget.pool}, {"completions", budget.completions},
                      {"retrain_epochs", budget.retrain_epochs}, {"table", given_or_null(!o.table.empty(), o.table)},
                      {"data", given_or_null(!o.data.empty(), o.data)}};
  if (o.final_images > 0) j["final_images"] = o.final_images;
  return j;
}

inline void add_search_options(CLI::App& app, search_options& o) {
  auto* cmd = &app;
  cmd->add_option("space", o.space, "fmnist or fmnist_micro")->required();
  cmd->add_option("--method", o.method, "pcnas, spos (uniform one-shot + evolution) or random (uniform one-shot + "
                                         "random search); the baselines get as many evaluations as PC-NAS")
      ->capture_default_str();
  cmd->add_option("--budget", o.budget, "quick (about 10 minutes on 2 cores), medium (5 supernet epochs, P=5, S=4, "
                                         "retrain 15 epochs) or full (10 supernet epochs, P=5, S=8, retrain 20 epochs)")->capture_default_str();
  cmd->add_option("--latency-ms", o.latency_ms, "Latency limit in ms (default: see --limit-fraction)")
      ->check(real_number(0, 1e9, true));
  cmd->add_option("--limit-fraction", o.limit_fraction,
                  "Default limit: fastest + fraction x (slowest - fastest) of the latency table")
      ->check(real_number(0, 1, false))
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of everything random")
      ->check(whole_number(0, UINT64_MAX))
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU threads (0: all cores)")->check(whole_number(0, 65536))->capture_default_str();
  cmd->add_option("--out", o.out, "Output directory (one run at a time: a second run into it is refused)")
      ->capture_default_str();
  cmd->add_option("--table", o.table, "Use this latency table instead of profiling one");
  cmd->add_option("--data", o.data, "Fashion-MNIST directory");
  cmd->add_flag("--resume", o.resume,
                "Continue the search, and then the retraining (from its last finished epoch), left in --out; "
                "refused when --out holds a search with other options");
  cmd->add_option("--steps", o.steps, "Supernet training steps (overrides the budget)")
      ->check(whole_number(1, 1000000000));
  cmd->add_option("--pool", o.pool, "PC-NAS pool size P (overrides the budget)")->check(whole_number(1, 1000));
  cmd->add_option("--completions", o.completions, "Completions S per candidate (overrides the budget)")
      ->check(whole_number(1, 10000));
  cmd->add_option("--final-images", o.final_images,
                  "Rescore the finalists (PC-NAS's final pool, the baselines' best P) on this many held-out images "
                  "and take the best; 0 keeps the search's own ranking")
      ->check(whole_number(0, 5000));
  cmd->add_option("--retrain-epochs", o.retrain_epochs, "Epochs of retraining from scratch; 0 skips it")
      ->check(whole_number(0, 100000));
}

template <class S>
struct search_outcome {
  const search_options& options;
  const pcnas::search::run_budget& budget;
  pcnas::space::architecture<S> arch;
  const method_outcome& found;
  double limit;
  const pcnas::cost::latency_table& table;
  std::filesystem::path table_file;
  double measured_ms;
  // How much slower the machine ran the table's reference architectures at the end than when the
  // table was built (cost::speed_ratio); none when the table records no calibration sample.
  std::optional<double> speed_ratio;
  const pcnas::nn::train_architecture_result& retrained;
  double search_seconds;
  double total_seconds;
  std::string backend;
};

// Writes result.json and arch.json and prints the summary.
template <class S>
void report_search(const search_outcome<S>& r) {
  namespace space = pcnas::space;
  const std::filesystem::path out(r.options.out);
  const auto cost = pcnas::cost::arch_cost<S>(r.arch);
  const double predicted_ms = r.table.model.predict(r.found.best);
  // The limit is on the table's scale: the measurement is compared with it at the table's speed
  // when the reference architectures say how the machine's speed has moved since.
  const double at_table_speed = r.speed_ratio ? r.measured_ms / *r.speed_ratio : r.measured_ms;
  char speed_note[160] = "";
  if (r.speed_ratio)
    std::snprintf(speed_note, sizeof speed_note, "; %.3f ms at the table's speed (this machine runs %.1f %% %s now)",
                  at_table_speed, 100 * std::abs(*r.speed_ratio - 1), *r.speed_ratio >= 1 ? "slower" : "faster");
  // The table's prediction met the limit; the machine now may not. Said, not hidden.
  const bool over_limit = at_table_speed > r.limit;
  std::string latency_warning;
  if (over_limit) {
    char text[480];
    std::snprintf(text, sizeof text,
                  "the measured latency %.3f ms%s is above the limit %.3f ms (%+.1f %%), although the table predicted "
                  "%.3f ms: the table is off on this machine now (profile it again on a quiet machine)",
                  r.measured_ms, speed_note, r.limit, 100 * (at_table_speed - r.limit) / r.limit, predicted_ms);
    latency_warning = text;
  }
  const bool retrained_any = r.budget.retrain_epochs > 0;
  const nlohmann::json result = {
      {"space", std::string(S::name)}, {"method", r.options.method}, {"budget", r.options.budget}, {"seed", r.options.seed},
      {"arch", space::to_string<S>(r.arch)}, {"choices", r.found.best}, {"latency_limit_ms", r.limit},
      {"predicted_latency_ms", predicted_ms}, {"measured_latency_ms", r.measured_ms},
      {"speed_ratio", r.speed_ratio ? nlohmann::json(*r.speed_ratio) : nlohmann::json()},
      {"measured_latency_at_table_speed_ms", at_table_speed}, {"measured_over_limit", over_limit},
      {"warnings", over_limit ? nlohmann::json::array({latency_warning}) : nlohmann::json::array()},
      {"latency_batch", r.table.provenance.batch}, {"macs", cost.macs}, {"params", cost.params},
      {"shared_weight_val_accuracy", r.found.accuracy}, {"retrain_epochs", r.budget.retrain_epochs},
      {"val_accuracy", r.retrained.val_accuracy},
      {"test_accuracy", retrained_any ? nlohmann::json(r.retrained.test_accuracy) : nlohmann::json()},
      {"search_seconds", r.search_seconds}, {"retrain_seconds", r.retrained.seconds},
      {"total_seconds", r.total_seconds}, {"supernet_steps", r.budget.steps}, {"pool_size", r.budget.pool},
      {"completions", r.budget.completions}, {"backend", r.backend}, {"latency_table", r.table_file.string()}};
  save_json(out / "result.json", result);
  save_json(out / "arch.json", pcnas::io::arch_to_json<S>(r.arch));

  std::printf("architecture:      %s\n", space::to_string<S>(r.arch).c_str());
  std::printf("latency:           %.3f ms predicted, %.3f ms measured%s (limit %.3f ms, batch %zu)\n", predicted_ms,
              r.measured_ms, speed_note, r.limit, static_cast<std::size_t>(r.table.provenance.batch));
  if (over_limit) std::printf("warning:           %s\n", latency_warning.c_str());
  std::printf("cost:              %.2f M MACs, %.3f M parameters\n", cost.macs / 1e6, cost.params / 1e6);
  std::printf("shared weights:    %.2f %% held-out accuracy\n", 100 * r.found.accuracy);
  if (retrained_any)
    std::printf("retrained:         %.2f %% test accuracy after %d epochs (%.2f %% validation)\n",
                100 * r.retrained.test_accuracy, r.budget.retrain_epochs, 100 * r.retrained.val_accuracy);
  std::printf("time:              %.0f s search, %.0f s retraining, %.0f s in all\n", r.search_seconds, r.retrained.seconds,
              r.total_seconds);
  std::printf("written to         %s\n", out.string().c_str());
}

}  // namespace pcnas_cli
