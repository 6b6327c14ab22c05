// `pcnas latency`: builds a latency table of a space on this machine (per-op medians and
// end-to-end runs in the same rounds, then the calibration that predicts left-out runs best), checks a table or the device-free roofline model
// against end-to-end measurements of uniformly sampled architectures, and reports the error.
#include "commands.hpp"
#include "common.hpp"
#include "output_dir.hpp"

#include <pcnas/cost/latency_table.hpp>
#include <pcnas/cost/roofline.hpp>
#include <pcnas/io/json_fields.hpp>
#include <pcnas/io/latency_table_json.hpp>
#include <pcnas/search/progress.hpp>

#ifdef PCNAS_CLI_WITH_EIGEN
#include <pcnas/nn/latency_profiler.hpp>
#endif

#if defined(__unix__) || defined(__APPLE__)
#include <sys/resource.h>
#include <unistd.h>
#endif

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace pcnas_cli {
namespace {

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
  std::vector<std::string> archs;  // given architectures to check instead of sampled ones
  std::uint64_t seed = 1;
  bool json = false;
  // Which options were given, where a table's provenance supplies the default.
  bool batch_given = false, threads_given = false, repeats_given = false, warmup_given = false;
  bool validate_given = false;
};

void check_options(const latency_options& o) {
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

nlohmann::json summary_json(const pcnas::cost::prediction_summary& s) {
  return {{"count", s.count},
          {"rmspe", s.rmspe},
          {"within_5", s.within_5},
          {"within_10", s.within_10},
          {"mean_bias", s.mean_bias}};
}

// How much of the machine other processes used while we measured: the CPU time of the whole
// machine (/proc/stat) less our own (getrusage), over the wall time of all CPUs. Timings taken
// while others use a noticeable share include waiting for a CPU, above all with several threads
// whose barriers wait for the slowest.
struct cpu_snapshot {
  double machine_busy_s = 0.0, machine_total_s = 0.0, self_s = 0.0;
  bool ok = false;
};

cpu_snapshot cpu_now() {
  cpu_snapshot s;
#if defined(__unix__) || defined(__APPLE__)
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || cpu != "cpu") return s;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  s.machine_total_s = (user + nice + system + idle + iowait + irq + softirq + steal) / tick;
  s.machine_busy_s = (user + nice + system + irq + softirq + steal) / tick;
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  s.self_s = static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
             1e-6 * static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
  s.ok = true;
#endif
  return s;
}

// The share of all CPUs' time that other processes used between two snapshots; -1 if unknown.
double others_share(const cpu_snapshot& a, const cpu_snapshot& b) {
  const double total = b.machine_total_s - a.machine_total_s;
  if (!a.ok || !b.ok || !(total > 0.0)) return -1.0;
  const double others = (b.machine_busy_s - a.machine_busy_s) - (b.self_s - a.self_s);
  return std::clamp(others / total, 0.0, 1.0);
}

void report_load(const char* what, double share) {
  if (share < 0.0) return;
  std::fprintf(stderr, "%s: other processes used %.0f %% of the CPUs meanwhile%s\n", what, 100 * share,
               share > 0.1 ? " -- the times include waiting for a CPU; measure again on a quiet machine" : "");
}

void print_summary(const char* what, const pcnas::cost::prediction_summary& s) {
  std::printf("  %-30s RMSPE %5.1f %%  within 5 %%: %5.1f %%  within 10 %%: %5.1f %%  mean bias %+5.1f %%\n", what,
              100 * s.rmspe, 100 * s.within_5, 100 * s.within_10, 100 * s.mean_bias);
}

std::string shape_text(const pcnas::space::tensor_shape& s) {
  return std::to_string(s.channels) + "x" + std::to_string(s.height) + "x" + std::to_string(s.width);
}

template <class S>
void print_table(const pcnas::cost::latency_table& t) {
  const auto& p = t.provenance;
  std::printf("latency table of %s: %s at batch %d, %s, on %s\n", t.space.c_str(), t.model.unit.c_str(), p.batch,
              p.backend.c_str(), p.device.c_str());
  std::printf("  measured %s with pcnas %s: median of %d timed rounds after %d warm-up rounds\n", p.date.c_str(),
              p.library_version.c_str(), p.repeats, p.warmup);
  std::printf("  %-44s %9.4f\n", "fixed (stem + head)", t.model.fixed);
  for (std::size_t l = 0; l < t.choices.size(); ++l) {
    const auto& info = S::layers[l];
    std::printf("  layer %zu (%s -> %s, stride %d):", l, shape_text(info.in).c_str(), shape_text(info.out).c_str(),
                info.stride);
    for (std::size_t c = 0; c < t.choices[l].size(); ++c)
      std::printf("  %s %.4f", t.choices[l][c].c_str(), t.model.per_layer[l][c]);
    std::printf("\n");
  }
  std::printf("  predicted range: %.3f .. %.3f %s\n", t.model.min_total(), t.model.max_total(), t.model.unit.c_str());
}

// The roofline model's inputs, from the compile-time costs of one image times the batch.
// Assumptions: MACs as counted by the space (the op's convolutions and the head's FC); bytes
// moved = the float32 outputs of the op's convolutions (`activation_bytes`, per image, times
// the batch) plus its float32 parameters read once (4 · params). The layer input read and the
// separate batch-norm passes over each output are not counted. Kernels launched: an MBConv 6
// (1x1, BN, depthwise, BN, 1x1, BN; 4 without expansion), zero none, the stem 2, the head 4.
template <class Op>
struct kernel_count {
  static constexpr int value = 2;  // a convolution and its batch norm
};
template <int K, int E>
struct kernel_count<pcnas::space::mbconv<K, E>> {
  static constexpr int value = E == 1 ? 4 : 6;
};
template <>
struct kernel_count<pcnas::space::zero> {
  static constexpr int value = 0;
};

template <class... Ops>
std::vector<int> kernel_counts(pcnas::space::choices<Ops...>*) {
  return {kernel_count<Ops>::value...};
}
template <class S, std::size_t... L>
std::vector<std::vector<int>> kernel_table(std::index_sequence<L...>) {
  return {kernel_counts(static_cast<typename S::template choices_at<L>*>(nullptr))...};
}

inline constexpr const char* roofline_assumptions =
    "per (layer, choice) at the batch: MACs from the space's costs; bytes = batch * activation_bytes (the float32 "
    "outputs of the convolutions) + 4 * params (read once); input reads and separate batch-norm passes not counted; "
    "kernels: MBConv 6 (4 without expansion), zero 0, stem 2, head 4";

template <class S>
pcnas::cost::additive_cost_model roofline_model(std::string_view device, int batch) {
  using pcnas::cost::op_counts;
  const double n = batch;
  const auto counts = [&](const pcnas::space::op_cost& c, int ops) {
    return op_counts{.macs = n * static_cast<double>(c.macs),
                     .bytes = n * static_cast<double>(c.activation_bytes) + 4.0 * static_cast<double>(c.params),
                     .ops = ops};
  };
  const auto kernels = kernel_table<S>(std::make_index_sequence<S::num_layers>{});
  std::vector<std::vector<op_counts>> per_layer(S::num_layers);
  for (std::size_t l = 0; l < S::num_layers; ++l)
    for (std::size_t c = 0; c < S::num_choices[l]; ++c)
      per_layer[l].push_back(counts(S::choice_costs[l][c], kernels[l][c]));
  const op_counts fixed = counts(S::stem_cost + S::head_cost, 2 * static_cast<int>(S::num_stem_ops) + 4);
  if (device == pcnas::cost::devices::cpu_2core_avx2.name)
    return pcnas::cost::roofline_latency(pcnas::cost::devices::cpu_2core_avx2, per_layer, fixed);
  if (device == pcnas::cost::devices::h200_fp32.name)
    return pcnas::cost::roofline_latency(pcnas::cost::devices::h200_fp32, per_layer, fixed);
  throw usage_error("unknown roofline device '" + std::string(device) + "'; known: cpu_2core_avx2, h200_fp32");
}

// What a table's optional calibration record says, for a check: the sample to leave out and
// the per-op model before the fit.
template <class S>
struct calibration_record {
  std::vector<pcnas::space::architecture<S>> architectures;
  std::optional<pcnas::cost::additive_cost_model> uncalibrated;
  std::string description;
};

template <class S>
calibration_record<S> read_calibration(const std::string& path, const pcnas::cost::latency_table& table) {
  calibration_record<S> rec;
  const nlohmann::json doc = pcnas::io::parse_json_file(path);
  const pcnas::io::json_field root(doc, path);
  if (!root.has("calibration")) return rec;
  const auto cal = root["calibration"];
  const auto archs = cal["architectures"];
  for (std::size_t i = 0; i < archs.array_size(); ++i) {
    try {
      rec.architectures.push_back(pcnas::space::parse_arch<S>(archs[i].string()));
    } catch (const pcnas::space::arch_error& e) {
      archs[i].fail(std::string("is not an architecture of this space: ") + e.what());
    }
  }
  pcnas::cost::additive_cost_model raw = table.model;
  const auto un = cal["uncalibrated"];
  raw.fixed = un["fixed"].non_negative();
  const auto times = un["times"];
  if (times.array_size() != raw.per_layer.size()) times.fail("must have one row per layer");
  for (std::size_t l = 0; l < raw.per_layer.size(); ++l) {
    const auto row = times[l];
    if (row.array_size() != raw.per_layer[l].size()) row.fail("must have one time per choice");
    for (std::size_t c = 0; c < raw.per_layer[l].size(); ++c) raw.per_layer[l][c] = row[c].non_negative();
  }
  rec.uncalibrated = std::move(raw);
  char text[256];
  std::snprintf(text, sizeof text, "%s: measured = %.4f * (per-op sum) %+.4f ms, chosen on %zu architectures",
                cal["method"].string().c_str(), cal["a"].number(), cal["b"].number(), rec.architectures.size());
  rec.description = text;
  return rec;
}

#ifdef PCNAS_CLI_WITH_EIGEN

// The calibration record a built table carries beside the fields every reader knows.
nlohmann::json calibration_json(const pcnas::nn::latency_calibration& cal, std::uint64_t seed,
                                const std::vector<std::string>& arch_texts) {
  nlohmann::json times = nlohmann::json::array();
  for (const auto& row : cal.uncalibrated.per_layer) times.push_back(row);
  nlohmann::json candidates = nlohmann::json::array();
  for (const auto& c : cal.candidates)
    candidates.push_back({{"form", c.form}, {"a", c.fit.a}, {"b", c.fit.b}, {"loo_rmspe", c.loo_rmspe}});
  return {{"method", cal.method},
          {"formula",
           "measured ~ a * (fixed + sum of per-op times) + b; the stored times are a * t, the stored fixed part "
           "a * fixed + b. Forms none (a = 1, b = 0), scale (b = 0, least squares of the relative errors) and "
           "affine (least squares, fixed part kept >= 0) were fitted on the end-to-end medians of the architectures "
           "below, measured in the same rounds as the ops; the form with the lowest leave-one-out RMSPE was applied"},
          {"a", cal.fit.a},
          {"b", cal.fit.b},
          {"candidates", candidates},
          {"seed", seed},
          {"architectures", arch_texts},
          {"measured", cal.measured},
          {"uncalibrated", {{"fixed", cal.uncalibrated.fixed}, {"times", times}}},
          {"before", summary_json(cal.before)},
          {"after", summary_json(cal.after)}};
}

// The protocol from the options; the progress line shows the rounds, and `totals` receives the
// last report (how many measurements were retried or kept although disturbed).
pcnas::nn::latency_profile_options timing(const latency_options& o, pcnas::search::progress_printer& progress,
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

void report_disturbance(const char* what, const pcnas::nn::latency_progress& p) {
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
  const auto t0 = std::chrono::steady_clock::now();
  const auto cpu0 = cpu_now();
  f(r.totals);
  r.seconds = seconds_since(t0);
  r.others_share = others_share(cpu0, cpu_now());
  return r;
}

template <class S>
std::vector<std::string> arch_texts(const std::vector<std::vector<int>>& archs) {
  std::vector<std::string> out;
  for (const auto& a : archs) out.push_back(pcnas::space::to_string<S>(pcnas::space::arch_from_indices<S>(a)));
  return out;
}

// Builds a table: the per-op entries, the calibration sample and (with --validate K) K other
// architectures, all measured in the same rounds; the calibration is fitted on its sample and
// checked on the K others.
template <class S>
int build(const latency_options& o) {
  using arch = pcnas::space::architecture<S>;
  auto b = make_backend(o.threads);
  pcnas::nn::supernet<cpu_backend, S> net(b, {.seed = 0});
  pcnas::nn::context<cpu_backend> ctx(b);
  pcnas::search::progress_printer progress({.plain_interval_s = 10.0});

  const pcnas::nn::latency_calibration_options co{.architectures = static_cast<std::size_t>(o.calibrate)};
  const auto sample = pcnas::nn::sample_architectures<S>(co.architectures, co.seed);
  const auto held_out = pcnas::nn::sample_architectures<S>(static_cast<std::size_t>(o.validate_given ? o.validate : 0),
                                                           o.seed, std::span<const arch>(sample));
  std::vector<arch> archs(sample);
  archs.insert(archs.end(), held_out.begin(), held_out.end());
  std::size_t entries = 2;
  for (auto c : S::num_choices) entries += c;
  std::fprintf(stderr, "profiling %s at batch %d on %s: %zu ops and %zu architectures (%zu to calibrate, %zu to check) "
               "in the same rounds\n",
               std::string(S::name).c_str(), o.batch, b.name().c_str(), entries, archs.size(), sample.size(),
               held_out.size());

  pcnas::nn::latency_profile profile;
  const auto run = measure([&](pcnas::nn::latency_progress& totals) {
    profile = pcnas::nn::profile_latency(b, net, ctx, std::span<const arch>(archs), timing(o, progress, "rounds", totals));
  });
  run.report("measurement");
  pcnas::cost::latency_table table = std::move(profile.table);
  const std::span<const double> measured(profile.end_to_end);

  std::optional<pcnas::nn::latency_calibration> cal;
  if (!sample.empty())
    cal = pcnas::nn::apply_latency_calibration<S>(table, std::span<const arch>(sample), measured.first(sample.size()));

  nlohmann::json doc = pcnas::io::latency_table_to_json(table);
  if (cal) doc["calibration"] = calibration_json(*cal, co.seed, arch_texts<S>(cal->architectures));
  doc["build"] = run.to_json();

  // The check on the held-out architectures, for the plain per-op sum and the calibrated table.
  std::optional<pcnas::cost::prediction_summary> raw, calibrated;
  if (!held_out.empty()) {
    const auto tail = measured.subspan(sample.size());
    const auto& plain = cal ? cal->uncalibrated : table.model;
    std::vector<double> p_raw, p_cal;
    for (const auto& a : held_out) {
      p_raw.push_back(plain.predict(a));
      p_cal.push_back(table.model.predict(a));
    }
    raw = pcnas::cost::summarize_predictions(p_raw, tail);
    nlohmann::json check = {{"architectures", held_out.size()}, {"seed", o.seed},
                            {"uncalibrated", summary_json(*raw)}, {"median_measured_ms", median({tail.begin(), tail.end()})}};
    if (cal) {
      calibrated = pcnas::cost::summarize_predictions(p_cal, tail);
      check["calibrated"] = summary_json(*calibrated);
    }
    doc["check"] = check;
  }

  if (!o.out.empty()) pcnas::io::write_file_atomically(o.out, doc.dump(2) + "\n");
  if (o.json)
    std::printf("%s\n", doc.dump(2).c_str());
  else if (o.out.empty())
    print_table<S>(table);
  if (cal) {
    std::string forms;
    for (const auto& c : cal->candidates) {
      char one[64];
      std::snprintf(one, sizeof one, "%s%s %.1f %%", forms.empty() ? "" : ", ", c.form.c_str(), 100 * c.loo_rmspe);
      forms += one;
    }
    std::fprintf(stderr,
                 "calibration on %d architectures measured end to end: leave-one-out RMSPE %s -> %s applied: "
                 "measured = %.4f * (per-op sum) %+.4f ms\n"
                 "  on that sample: RMSPE %.1f %% -> %.1f %%, within 10 %%: %.0f %% -> %.0f %%, "
                 "mean bias %+.1f %% -> %+.1f %%\n",
                 o.calibrate, forms.c_str(), cal->method.c_str(), cal->fit.a, cal->fit.b, 100 * cal->before.rmspe,
                 100 * cal->after.rmspe, 100 * cal->before.within_10, 100 * cal->after.within_10,
                 100 * cal->before.mean_bias, 100 * cal->after.mean_bias);
  } else {
    std::fprintf(stderr, "not calibrated (--calibrate 0): the table holds the plain per-op sums\n");
  }
  if (raw && !o.json) {
    std::printf("check on %zu other architectures measured in the same rounds (median %.3f ms):\n", held_out.size(),
                median({measured.begin() + static_cast<std::ptrdiff_t>(sample.size()), measured.end()}));
    print_summary("per-op sum (uncalibrated):", *raw);
    if (calibrated) print_summary("calibrated table:", *calibrated);
  }
  if (!o.out.empty()) std::fprintf(stderr, "wrote %s\n", o.out.c_str());
  return 0;
}

template <class S>
int check_model(latency_options o) {
  std::optional<pcnas::cost::latency_table> table;
  calibration_record<S> rec;
  pcnas::cost::additive_cost_model model;
  std::string what;
  if (!o.table.empty()) {
    table = pcnas::io::load_latency_table(o.table, S::name, pcnas::nn::choice_name_table<S>());
    rec = read_calibration<S>(o.table, *table);
    const auto& p = table->provenance;
    // A table predicts latency in the setup it was measured in: check it in the same one.
    if (o.batch_given && o.batch != p.batch)
      throw usage_error("the table was measured at batch " + std::to_string(p.batch) + "; --batch " +
                        std::to_string(o.batch) + " would check it against another workload");
    o.batch = p.batch;
    if (!o.threads_given) o.threads = p.threads;
    if (!o.repeats_given) o.repeats = p.repeats;
    if (!o.warmup_given) o.warmup = p.warmup;
    model = table->model;
    what = "table " + o.table;
  } else {
    model = roofline_model<S>(o.roofline, o.batch);
    what = "roofline " + o.roofline;
  }
  auto b = make_backend(o.threads);
  if (table && b.threads() != table->provenance.threads)
    std::fprintf(stderr, "warning: the table was measured with %d threads, checking with %d\n",
                 table->provenance.threads, b.threads());
  pcnas::nn::supernet<cpu_backend, S> net(b, {.seed = 0});
  pcnas::nn::context<cpu_backend> ctx(b);
  // The architectures given, or a uniform sample that leaves out the calibration sample.
  std::vector<pcnas::space::architecture<S>> archs;
  for (const auto& text : o.archs) archs.push_back(pcnas::space::parse_arch<S>(text));
  if (archs.empty())
    archs = pcnas::nn::sample_architectures<S>(static_cast<std::size_t>(o.validate), o.seed,
                                               std::span<const pcnas::space::architecture<S>>(rec.architectures));
  pcnas::search::progress_printer progress({.plain_interval_s = 10.0});
  std::fprintf(stderr, "measuring %zu architectures of %s end to end at batch %d on %s\n", archs.size(),
               std::string(S::name).c_str(), o.batch, b.name().c_str());
  std::vector<double> measured;
  const auto run = measure([&](pcnas::nn::latency_progress& totals) {
    measured = pcnas::nn::measure_latencies(b, net, ctx, std::span<const pcnas::space::architecture<S>>(archs),
                                            timing(o, progress, "end-to-end rounds", totals));
  });
  run.report("end-to-end measurement");

  std::vector<double> predicted, raw_predicted;
  for (const auto& a : archs) {
    predicted.push_back(model.predict(a));
    if (rec.uncalibrated) raw_predicted.push_back(rec.uncalibrated->predict(a));
  }
  const auto s = pcnas::cost::summarize_predictions(predicted, measured);
  nlohmann::json result = summary_json(s);
  result["space"] = std::string(S::name);
  result["model"] = what;
  result["batch"] = o.batch;
  result["threads"] = b.threads();
  result["backend"] = b.name();
  result["device"] = pcnas::nn::host_cpu_name();
  result["repeats"] = o.repeats;
  result["warmup"] = o.warmup;
  result["seed"] = o.seed;
  result["median_measured_ms"] = median(measured);
  result["measurement"] = run.to_json();
  result["excluded_calibration_architectures"] = rec.architectures.size();
  std::optional<pcnas::cost::prediction_summary> raw;
  if (rec.uncalibrated) {
    raw = pcnas::cost::summarize_predictions(raw_predicted, measured);
    result["uncalibrated"] = summary_json(*raw);
    result["calibration"] = rec.description;
  }
  if (!o.roofline.empty()) result["roofline_assumptions"] = roofline_assumptions;
  if (!o.archs.empty()) {
    nlohmann::json each = nlohmann::json::array();
    for (std::size_t i = 0; i < archs.size(); ++i)
      each.push_back({{"arch", pcnas::space::to_string<S>(archs[i])},
                      {"predicted_ms", predicted[i]},
                      {"measured_ms", measured[i]}});
    result["architectures"] = each;
  }

  if (o.json) {
    std::printf("%s\n", result.dump().c_str());
    return 0;
  }
  std::printf("%s: %zu architectures of %s measured end to end at batch %d, %s (median %.3f ms)\n", what.c_str(),
              archs.size(), std::string(S::name).c_str(), o.batch, b.name().c_str(), median(measured));
  if (!o.archs.empty())
    for (std::size_t i = 0; i < archs.size(); ++i)
      std::printf("  %-48s predicted %8.3f ms  measured %8.3f ms  error %+6.1f %%\n",
                  pcnas::space::to_string<S>(archs[i]).c_str(), predicted[i], measured[i],
                  100 * (predicted[i] - measured[i]) / measured[i]);
  if (rec.uncalibrated) {
    std::printf("  calibration: %s (left out of this sample)\n", rec.description.c_str());
    print_summary("per-op sum (uncalibrated):", *raw);
    print_summary("calibrated table:", s);
  } else {
    if (!o.roofline.empty()) std::printf("  assumptions: %s\n", roofline_assumptions);
    print_summary(table ? "table:" : "roofline model:", s);
  }
  return 0;
}

#endif

}  // namespace

command add_latency(CLI::App& app) {
  auto o = std::make_shared<latency_options>();
  auto* cmd = app.add_subcommand(
      "latency",
      "Build a latency table of a space on this machine, or check a table (or the roofline model) against "
      "end-to-end measurements of uniformly sampled architectures");
  cmd->footer(
      "Build:    pcnas latency fmnist --threads 2 --out table.json [--validate K]\n"
      "          Times every (layer, choice) alone, the stem + head, and --calibrate architectures end to end, all\n"
      "          interleaved in the same rounds (each time is the median of --repeats rounds after --warmup rounds),\n"
      "          then corrects the per-op sum with the form - none, a scale, or a line measured = a * sum + b - that\n"
      "          predicts those architectures best when each is left out of its own fit. The stored table is the\n"
      "          calibrated one (still one time per (layer, choice)); its 'calibration' record says how. With --validate K,\n"
      "          K other architectures are measured in the same rounds and the table's error on them is reported:\n"
      "          a check that no drift of the machine's speed between two runs can blur. Without --out the table\n"
      "          is printed.\n"
      "Check:    pcnas latency fmnist --table table.json --validate 100 [--seed S] [--json]\n"
      "          Measures K architectures drawn uniformly (leaving out the calibration sample) at the table's batch,\n"
      "          threads and repeats, now, and reports RMSPE, the share within 5 % and 10 %, and the mean bias of\n"
      "          the stored table and of its plain per-op sums. --arch A (repeatable) checks given architectures instead\n"
      "          and prints each one's predicted and measured latency.\n"
      "Roofline: pcnas latency fmnist --roofline cpu_2core_avx2 --validate 100 --threads 2\n"
      "          The same check for the device-free roofline model (cpu_2core_avx2 or h200_fp32).\n"
      "Measurements during which one of our threads was switched out are retried (--retries); how many were, and\n"
      "how much of the CPUs other processes used meanwhile, is reported: on a busy machine the times are not clean.");
  cmd->add_option("space", o->space, "fmnist or fmnist_micro")->required();
  auto* batch = cmd->add_option("--batch", o->batch, "Batch size the table is measured at")
                    ->check(whole_number(1, 65536))
                    ->capture_default_str();
  auto* threads = cmd->add_option("--threads", o->threads, "CPU threads (0: all cores)")
                      ->check(whole_number(0, 65536))
                      ->capture_default_str();
  auto* repeats = cmd->add_option("--repeats", o->repeats, "Timed rounds (each time is their median)")
                      ->check(whole_number(1, 1000000))
                      ->capture_default_str();
  auto* warmup = cmd->add_option("--warmup", o->warmup, "Untimed rounds first")
                     ->check(whole_number(0, 1000000))
                     ->capture_default_str();
  cmd->add_option("--retries", o->retries, "New tries of a measurement during which a thread was switched out (another process wanted the CPU)")
      ->check(whole_number(0, 1000))
      ->capture_default_str();
  cmd->add_option("--calibrate", o->calibrate,
                  "Architectures measured end to end to calibrate a new table (0: store the plain per-op sums)")
      ->check(whole_number(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Write the new table here (JSON)");
  cmd->add_option("--table", o->table, "A table to check (with --validate) or print");
  cmd->add_option("--roofline", o->roofline, "Check the roofline model of this device: cpu_2core_avx2 or h200_fp32");
  auto* validate_opt = cmd->add_option("--validate", o->validate, "Architectures to measure end to end for the check")
                           ->check(whole_number(0, 1000000));
  cmd->add_option("--arch", o->archs,
                  "Check these architectures instead of sampled ones (repeat the option; one token per layer)");
  cmd->add_option("--seed", o->seed, "Seed of the sampled architectures")
      ->check(whole_number(0, UINT64_MAX))
      ->capture_default_str();
  cmd->add_flag("--json", o->json,
                "Print JSON: the table (with its 'check' when built with --validate), or the check's rmspe, within_5, "
                "within_10, mean_bias");
  return {cmd, [o, batch, threads, repeats, warmup, validate_opt] {
            o->batch_given = batch->count() > 0;
            o->threads_given = threads->count() > 0;
            o->repeats_given = repeats->count() > 0;
            o->warmup_given = warmup->count() > 0;
            o->validate_given = validate_opt->count() > 0;
            check_options(*o);
            check_threads(o->threads);
            // A table that cannot be written is refused now, not after the measurement.
            if (!o->out.empty()) check_writable_file(o->out, "--out");
            if (o->space != pcnas::presets::fmnist::name && o->space != pcnas::presets::fmnist_micro::name)
              throw usage_error("latency tables are measured here for fmnist and fmnist_micro, not '" + o->space +
                                "' (the CLI builds those networks)");
#ifdef PCNAS_CLI_WITH_EIGEN
            return with_trainable_space(o->space, [&]<class S>(std::type_identity<S>) {
              if (!o->table.empty() && !o->validate_given && o->archs.empty()) {
                const auto t = pcnas::io::load_latency_table(o->table, S::name, pcnas::nn::choice_name_table<S>());
                if (o->json)
                  std::printf("%s\n", pcnas::io::parse_json_file(o->table).dump(2).c_str());
                else
                  print_table<S>(t);
                return 0;
              }
              if ((o->validate_given || !o->archs.empty()) && (!o->table.empty() || !o->roofline.empty()))
                return check_model<S>(*o);
              return build<S>(*o);
            });
#else
            throw usage_error("this pcnas was built without Eigen: latency tables cannot be measured");
            return 1;
#endif
          }};
}

}  // namespace pcnas_cli
