// `pcnas latency`: its options, their checks, and how tables and checks are printed. What it
// measures is in latency.cpp.
#pragma once

#include "checks.hpp"
#include "common.hpp"

#include <pcnas/cost/latency_table.hpp>
#include <pcnas/space/shape.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#ifdef PCNAS_CLI_WITH_EIGEN
#include <pcnas/nn/latency_profiler.hpp>
#include <pcnas/nn/machine_load.hpp>
#include <pcnas/search/progress.hpp>
#endif

#include <cstdio>
#include <string>
#include <vector>

namespace pcnas_cli {

struct latency_options {
  std::string space;
  int batch = 32;
  int threads = 0;
  int repeats = 21;
  int warmup = 3;
  int retries = 3;
  int calibrate = 50;
  std::string out;
  std::string table;
  std::string roofline;
  int validate = 0;  // architectures to check; 0 with validate_given is an error
  int references = 5;  // of the calibration sample, measured again beside a check
  std::vector<std::string> archs;  // given architectures to check instead of sampled ones
  std::uint64_t seed = 1;
  bool json = false;
  // Which options were given, where a table's provenance supplies the default.
  bool batch_given = false, threads_given = false, repeats_given = false, warmup_given = false;
  bool validate_given = false;
};

inline void check_options(const latency_options& o) {
  if (o.batch < 1) throw usage_error("--batch must be at least 1, got " + std::to_string(o.batch));
  if (o.threads < 0) throw usage_error("--threads must be 0 (all cores) or positive");
  if (o.repeats < 1) throw usage_error("--repeats must be at least 1");
  if (o.warmup < 0) throw usage_error("--warmup must be 0 or more");
  if (o.retries < 0) throw usage_error("--retries must be 0 or more");
  if (o.validate_given && o.validate < 1)
    throw usage_error("--validate needs at least 1 architecture, got " + std::to_string(o.validate));
  if (!o.table.empty() && !o.roofline.empty()) throw usage_error("give either --table or --roofline, not both");
  if (!o.roofline.empty() && !o.validate_given && o.archs.empty())
    throw usage_error("--roofline checks the roofline model; say how many architectures with --validate K, or "
                      "which with --arch");
  const bool checking = !o.table.empty() || !o.roofline.empty();
  if (!o.archs.empty() && !checking)
    throw usage_error("--arch measures architectures against a model: give --table FILE or --roofline DEVICE");
  if (!o.archs.empty() && o.validate_given)
    throw usage_error("give either --arch (these architectures) or --validate K (K sampled ones), not both");
  if (checking && !o.out.empty()) throw usage_error("--out writes a new table; it does not go with --table or --roofline");
  if (o.calibrate != 0 && o.calibrate < 3)
    throw usage_error("--calibrate needs 0 (no calibration) or at least 3 architectures");
}

inline void report_load(const char* what, double share) {
  if (share < 0.0) return;
  std::fprintf(stderr, "%s: other processes used %.0f %% of the CPUs meanwhile%s\n", what, 100 * share,
               share > 0.1 ? " -- the times include waiting for a CPU; measure again on a quiet machine" : "");
}

inline void print_summary(const char* what, const pcnas::cost::prediction_summary& s) {
  std::printf("  %-30s RMSPE %5.1f %%  within 5 %%: %5.1f %%  within 10 %%: %5.1f %%  mean bias %+5.1f %%\n", what,
              100 * s.rmspe, 100 * s.within_5, 100 * s.within_10, 100 * s.mean_bias);
}

template <class S>
inline void print_table(const pcnas::cost::latency_table& t) {
  const auto& p = t.provenance;
  std::printf("latency table of %s: %s at batch %d, %s, on %s\n", t.space.c_str(), t.model.unit.c_str(), p.batch,
              p.backend.c_str(), p.device.c_str());
  std::printf("  measured %s with pcnas %s: median of %d timed rounds after %d warm-up rounds\n", p.date.c_str(),
              p.library_version.c_str(), p.repeats, p.warmup);
  std::printf("  %-44s %9.4f\n", "fixed (stem + head)", t.model.fixed);
  for (std::size_t l = 0; l < t.choices.size(); ++l) {
    const auto& info = S::layers[l];
    std::printf("  layer %zu (%s -> %s, stride %d):", l, pcnas::space::to_string(info.in).c_str(), pcnas::space::to_string(info.out).c_str(),
                info.stride);
    for (std::size_t c = 0; c < t.choices[l].size(); ++c)
      std::printf("  %s %.4f", t.choices[l][c].c_str(), t.model.per_layer[l][c]);
    std::printf("\n");
  }
  std::printf("  predicted range: %.3f .. %.3f %s\n", t.model.min_total(), t.model.max_total(), t.model.unit.c_str());
}

#ifdef PCNAS_CLI_WITH_EIGEN

// The protocol from the options; the progress line shows the rounds, and `totals` receives the
// last report (how many measurements were retried or kept although disturbed).
inline pcnas::nn::latency_profile_options timing(const latency_options& o, pcnas::search::progress_printer& progress,
                                          const char* label, pcnas::nn::latency_progress& totals) {
  pcnas::nn::latency_profile_options t;
  t.batch = o.batch;
  t.warmup = o.warmup;
  t.repeats = o.repeats;
  t.retries = o.retries;
  t.progress = [&progress, &totals, label](const pcnas::nn::latency_progress& p) {
    if (p.round == 1) progress.begin(label, p.rounds);
    char detail[96] = "";
    if (p.retried + p.disturbed > 0)
      std::snprintf(detail, sizeof detail, "%zu retried, %zu kept disturbed", p.retried, p.disturbed);
    progress.update(p.round, detail);
    totals = p;
  };
  return t;
}

inline void report_disturbance(const char* what, const pcnas::nn::latency_progress& p) {
  if (p.measurements == 0) return;
  const double share = static_cast<double>(p.disturbed) / static_cast<double>(p.measurements);
  std::fprintf(stderr, "%s: %zu measurements, %zu retried after a context switch, %zu (%.0f %%) kept although switched out%s\n", what,
               p.measurements, p.retried, p.disturbed, 100 * share,
               share > 0.2 ? " -- too many for the medians to be clean; measure again on a quiet machine" : "");
}

// How one measurement went: its wall time, how much other processes used the machine, and how
// many of its measurements a context switch disturbed.
struct measurement_record {
  double seconds = 0.0;
  double others_share = -1.0;
  pcnas::nn::latency_progress totals;

  nlohmann::json to_json() const {
    return {{"seconds", seconds},
            {"others_cpu_share", others_share},
            {"measurements", totals.measurements},
            {"retried_after_context_switch", totals.retried},
            {"kept_disturbed", totals.disturbed}};
  }
  void report(const char* what) const {
    std::fprintf(stderr, "%s: %.1f s\n", what, seconds);
    report_load(what, others_share);
    report_disturbance(what, totals);
  }
};

template <class F>
measurement_record measure(F&& f) {
  measurement_record r;
  const auto run = pcnas::nn::run_watching_load([&] { f(r.totals); });
  r.seconds = run.seconds;
  r.others_share = run.others_share;
  return r;
}

#endif

// Which options were given on the command line (where a table's provenance supplies the default).
struct latency_given {
  CLI::Option *batch, *threads, *repeats, *warmup, *validate;
  void record(latency_options& o) const {
    o.batch_given = batch->count() > 0;
    o.threads_given = threads->count() > 0;
    o.repeats_given = repeats->count() > 0;
    o.warmup_given = warmup->count() > 0;
    o.validate_given = validate->count() > 0;
  }
};

inline latency_given add_latency_options(CLI::App& app, latency_options& o) {
  auto* cmd = &app;
  cmd->footer(
      "Build:    pcnas latency fmnist --threads 2 --out table.json [--validate K]\n"
      "          Times every (layer, choice) alone and the stem + head, then --calibrate architectures end to end in\n"
      "          rounds of their own, as another process measures them (each time is the median of --repeats rounds\n"
      "          after --warmup rounds), then corrects the per-op sum with the form - none, a scale, or a line\n"
      "          measured = a * sum + b - that\n"
      "          predicts those architectures best when each is left out of its own fit. The stored table is the\n"
      "          calibrated one (still one time per (layer, choice)); its 'calibration' record says how. With --validate K,\n"
      "          K other architectures are measured in the same rounds as the calibration sample and the table's\n"
      "          error on them is reported: a check that no drift of the machine's speed between two runs can blur.\n"
      "          Without --out the table is printed.\n"
      "Check:    pcnas latency fmnist --table table.json --validate 100 [--seed S] [--json]\n"
      "          Measures K architectures drawn uniformly (leaving out the calibration sample) at the table's batch,\n"
      "          threads and repeats, now, and reports RMSPE, the share within 5 % and 10 %, and the mean bias of\n"
      "          the stored table and of its plain per-op sums. --arch A (repeatable) checks given architectures instead\n"
      "          and prints each one's predicted and measured latency. --references R (default 5) of the table's\n"
      "          calibration sample run in the same rounds: how much slower they run now than when the table was built\n"
      "          is the machine's speed ratio (a shared machine's speed wanders by tens of percent over minutes), and\n"
      "          the headline figures - and --json's rmspe, within_5, within_10, mean_bias - are those of the table\n"
      "          scaled by it; the table as stored is reported beside them ('as_stored'). --references 0 checks the\n"
      "          table as stored alone.\n"
      "Roofline: pcnas latency fmnist --roofline cpu_2core_avx2 --validate 100 --threads 2\n"
      "          The same check for the device-free roofline model (cpu_2core_avx2 or h200_fp32).\n"
      "Measurements during which one of our threads was switched out are retried (--retries); how many were, and\n"
      "how much of the CPUs other processes used meanwhile, is reported: on a busy machine the times are not clean.");
  cmd->add_option("space", o.space, "fmnist or fmnist_micro")->required();
  auto* batch = cmd->add_option("--batch", o.batch, "Batch size the table is measured at")
                    ->check(whole_number(1, 65536))
                    ->capture_default_str();
  auto* threads = cmd->add_option("--threads", o.threads, "CPU threads (0: all cores)")
                      ->check(whole_number(0, 65536))
                      ->capture_default_str();
  auto* repeats = cmd->add_option("--repeats", o.repeats, "Timed rounds (each time is their median)")
                      ->check(whole_number(1, 1000000))
                      ->capture_default_str();
  auto* warmup = cmd->add_option("--warmup", o.warmup, "Untimed rounds first")
                     ->check(whole_number(0, 1000000))
                     ->capture_default_str();
  cmd->add_option("--retries", o.retries, "New tries of a measurement during which a thread was switched out (another process wanted the CPU)")
      ->check(whole_number(0, 1000))
      ->capture_default_str();
  cmd->add_option("--calibrate", o.calibrate,
                  "Architectures measured end to end to calibrate a new table (0: store the plain per-op sums)")
      ->check(whole_number(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--out", o.out, "Write the new table here (JSON)");
  cmd->add_option("--table", o.table, "A table to check (with --validate) or print");
  cmd->add_option("--roofline", o.roofline, "Check the roofline model of this device: cpu_2core_avx2 or h200_fp32");
  auto* validate_opt = cmd->add_option("--validate", o.validate, "Architectures to measure end to end for the check")
                           ->check(whole_number(0, 1000000));
  cmd->add_option("--arch", o.archs,
                  "Check these architectures instead of sampled ones (repeat the option; one token per layer)");
  cmd->add_option("--references", o.references,
                  "Architectures of the table's calibration sample measured again beside a check, to scale the table "
                  "to the machine's speed now (0: check it as stored)")
      ->check(whole_number(0, 1000))
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of the sampled architectures")
      ->check(whole_number(0, UINT64_MAX))
      ->capture_default_str();
  cmd->add_flag("--json", o.json,
                "Print JSON: the table (with its 'check' when built with --validate), or the check's rmspe, within_5, "
                "within_10, mean_bias (of the table at the machine's speed now; 'as_stored' beside them)");
  return {batch, threads, repeats, warmup, validate_opt};
}

}  // namespace pcnas_cli
