// `pcnas latency`: builds a latency table of a space on this machine (per-op medians and
// end-to-end runs of a calibration sample, then the calibration that predicts left-out runs best), checks a table or the device-free roofline model
// against end-to-end measurements of uniformly sampled architectures, and reports the error.
#include "commands.hpp"
#include "latency_command.hpp"
#include "common.hpp"
#include "output_dir.hpp"

#include <pcnas/cost/latency_table.hpp>
#include <pcnas/cost/roofline.hpp>
#include <pcnas/json/fields.hpp>
#include <pcnas/json/latency_table.hpp>
#include <pcnas/search/progress.hpp>

#ifdef PCNAS_CLI_WITH_EIGEN
#include <pcnas/nn/latency_profiler.hpp>
#include <pcnas/nn/machine_load.hpp>
#endif

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace pcnas_cli {
namespace {

template <class S>
pcnas::cost::additive_cost_model roofline_model(std::string_view device, int batch) {
  const auto d = pcnas::cost::find_device(device);
  if (!d) throw usage_error("unknown roofline device '" + std::string(device) + "'; known: cpu_2core_avx2, h200_fp32");
  return pcnas::cost::roofline_model<S>(*d, batch);
}

#ifdef PCNAS_CLI_WITH_EIGEN

template <class S>
std::vector<std::string> arch_texts(const std::vector<std::vector<int>>& archs) {
  std::vector<std::string> out;
  for (const auto& a : archs) out.push_back(pcnas::space::to_string<S>(pcnas::space::arch_from_indices<S>(a)));
  return out;
}

void print_check(const pcnas::nn::latency_check& c, const char* label) {
  if (c.uncalibrated) {
    print_summary("per-op sum (uncalibrated):", *c.uncalibrated);
    print_summary(c.at_current_speed ? "calibrated table as stored:" : "calibrated table:", c.summary);
  } else {
    print_summary(label, c.summary);
  }
  if (c.at_current_speed) {
    char what[64];
    std::snprintf(what, sizeof what, "table x %.3f (speed now):", *c.speed_ratio);
    print_summary(what, *c.at_current_speed);
  }
}

// The check's figures: those of the table at the machine's speed now when references were
// measured (with the table as stored under "as_stored"), else those of the table as stored.
nlohmann::json check_json(const pcnas::nn::latency_check& c) {
  nlohmann::json j = pcnas::io::to_json(c.at_current_speed ? *c.at_current_speed : c.summary);
  if (c.at_current_speed) {
    j["as_stored"] = pcnas::io::to_json(c.summary);
    j["speed_ratio"] = *c.speed_ratio;
  }
  if (c.uncalibrated) j["uncalibrated"] = pcnas::io::to_json(*c.uncalibrated);
  j["median_measured_ms"] = c.median_measured();
  return j;
}

// Builds a table: the per-op entries, the calibration sample and (with --validate K) K other
// architectures measured with it (nn::build_latency_table).
template <class S>
int build(const latency_options& o) {
  auto b = make_backend(o.threads);
  pcnas::nn::supernet<cpu_backend, S> net(b, {.seed = 0});
  pcnas::nn::context<cpu_backend> ctx(b);
  pcnas::search::progress_printer progress({.plain_interval_s = 10.0});
  const pcnas::nn::latency_build_options bo{.calibrate = static_cast<std::size_t>(o.calibrate),
                                            .check = static_cast<std::size_t>(o.validate_given ? o.validate : 0),
                                            .check_seed = o.seed};
  std::size_t entries = 2;
  for (auto c : S::num_choices) entries += c;
  std::fprintf(stderr, "profiling %s at batch %d on %s: %zu ops and %zu architectures (%zu to calibrate, %zu to check) "
               "(the architectures in rounds of their own, after the ops)\n",
               std::string(S::name).c_str(), o.batch, b.name().c_str(), entries, bo.calibrate + bo.check, bo.calibrate,
               bo.check);
  pcnas::nn::built_latency_table built;
  const auto run = measure([&](pcnas::nn::latency_progress& totals) {
    built = pcnas::nn::build_latency_table(b, net, ctx, bo, timing(o, progress, "rounds", totals));
  });
  run.report("measurement");
  const auto& cal = built.calibration;

  nlohmann::json doc = pcnas::io::latency_table_to_json(built.table);
  if (cal) doc["calibration"] = pcnas::io::calibration_to_json(*cal, bo.calibration_seed, arch_texts<S>(cal->architectures));
  doc["build"] = run.to_json();
  if (built.check) {
    const auto& c = *built.check;
    doc["check"] = {{"architectures", c.architectures.size()},
                    {"seed", o.seed},
                    {"uncalibrated", pcnas::io::to_json(c.uncalibrated ? *c.uncalibrated : c.summary)},
                    {"median_measured_ms", c.median_measured()}};
    if (cal) doc["check"]["calibrated"] = pcnas::io::to_json(c.summary);
  }

  if (!o.out.empty()) pcnas::io::write_file_atomically(o.out, doc.dump(2) + "\n");
  if (o.json)
    std::printf("%s\n", doc.dump(2).c_str());
  else if (o.out.empty())
    print_table<S>(built.table);
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
  if (built.check && !o.json) {
    std::printf("check on %zu other architectures measured with the calibration sample (median %.3f ms):\n",
                built.check->architectures.size(), built.check->median_measured());
    print_check(*built.check, "per-op sum (uncalibrated):");
  }
  if (!o.out.empty()) std::fprintf(stderr, "wrote %s\n", o.out.c_str());
  return 0;
}

template <class S>
int check_model(latency_options o) {
  std::optional<pcnas::cost::latency_table> table;
  pcnas::io::calibration_record<S> rec;
  pcnas::cost::additive_cost_model model;
  std::string what;
  if (!o.table.empty()) {
    table = pcnas::io::load_latency_table(o.table, S::name, pcnas::space::choice_name_table<S>());
    rec = pcnas::io::read_calibration_record<S>(o.table, *table);
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
  // References: some of the calibration sample, whose times when the table was built are on record.
  pcnas::nn::latency_reference<S> reference;
  if (o.references > 0 && !rec.architectures.empty())
    reference = pcnas::nn::pick_latency_reference<S>(std::span<const pcnas::space::architecture<S>>(rec.architectures),
                                                     std::span<const double>(rec.measured),
                                                     static_cast<std::size_t>(o.references));
  pcnas::search::progress_printer progress({.plain_interval_s = 10.0});
  std::fprintf(stderr, "measuring %zu architectures of %s end to end at batch %d on %s", archs.size(),
               std::string(S::name).c_str(), o.batch, b.name().c_str());
  if (!reference.architectures.empty())
    std::fprintf(stderr, ", with %zu of its calibration sample as speed references", reference.architectures.size());
  std::fprintf(stderr, "\n");
  pcnas::nn::latency_check c;
  const auto run = measure([&](pcnas::nn::latency_progress& totals) {
    c = pcnas::nn::check_latency_model(b, net, ctx, model, std::span<const pcnas::space::architecture<S>>(archs),
                                       timing(o, progress, "end-to-end rounds", totals), rec.uncalibrated,
                                       reference);
  });
  run.report("end-to-end measurement");

  nlohmann::json result = check_json(c);
  result.update({{"space", std::string(S::name)}, {"model", what}, {"batch", o.batch}, {"threads", b.threads()},
                 {"backend", b.name()}, {"device", pcnas::nn::device_name(b)}, {"repeats", o.repeats},
                 {"warmup", o.warmup}, {"seed", o.seed}, {"measurement", run.to_json()},
                 {"excluded_calibration_architectures", rec.architectures.size()}});
  if (rec.uncalibrated) result["calibration"] = rec.description;
  if (c.speed_ratio) {
    nlohmann::json refs = nlohmann::json::array();
    for (std::size_t i = 0; i < reference.architectures.size(); ++i)
      refs.push_back({{"arch", pcnas::space::to_string<S>(reference.architectures[i])},
                      {"then_ms", reference.measured[i]},
                      {"now_ms", c.reference_measured[i]}});
    result["speed_references"] = refs;
  }
  if (!o.roofline.empty()) result["roofline_assumptions"] = pcnas::cost::roofline_assumptions;
  if (!o.archs.empty()) {
    nlohmann::json each = nlohmann::json::array();
    for (std::size_t i = 0; i < archs.size(); ++i)
      each.push_back({{"arch", pcnas::space::to_string<S>(archs[i])},
                      {"predicted_ms", c.predicted[i]},
                      {"measured_ms", c.measured[i]}});
    result["architectures"] = each;
  }
  if (o.json) {
    std::printf("%s\n", result.dump().c_str());
    return 0;
  }
  std::printf("%s: %zu architectures of %s measured end to end at batch %d, %s (median %.3f ms)\n", what.c_str(),
              archs.size(), std::string(S::name).c_str(), o.batch, b.name().c_str(), c.median_measured());
  if (!o.archs.empty())
    for (std::size_t i = 0; i < archs.size(); ++i)
      std::printf("  %-48s predicted %8.3f ms  measured %8.3f ms  error %+6.1f %%\n",
                  pcnas::space::to_string<S>(archs[i]).c_str(), c.predicted[i], c.measured[i],
                  100 * (c.predicted[i] - c.measured[i]) / c.measured[i]);
  if (rec.uncalibrated) std::printf("  calibration: %s (left out of this sample)\n", rec.description.c_str());
  if (c.speed_ratio)
    std::printf("  speed: %zu architectures of the calibration sample ran %.1f %% %s than when the table was built "
                "(median of now / then, %.3f)\n",
                reference.architectures.size(), 100 * std::abs(*c.speed_ratio - 1),
                *c.speed_ratio >= 1 ? "slower" : "faster", *c.speed_ratio);
  if (!rec.uncalibrated && !o.roofline.empty()) std::printf("  assumptions: %s\n", pcnas::cost::roofline_assumptions);
  print_check(c, table ? "table:" : "roofline model:");
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
  const auto given = add_latency_options(*cmd, *o);
  return {cmd, [o, given] {
            given.record(*o);
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
                const auto t = pcnas::io::load_latency_table(o->table, S::name, pcnas::space::choice_name_table<S>());
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
