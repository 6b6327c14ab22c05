// `pcnas search`: the main job. Profile (or load) a latency table, set the latency limit,
// search with PC-NAS (or a baseline) on Fashion-MNIST, retrain the architecture found from
// scratch, measure it, and write result.json. Killed at any moment, `--resume` continues.
#include "commands.hpp"
#include "common.hpp"
#include "output_dir.hpp"

#include "methods.hpp"
#include "search_command.hpp"

#ifdef PCNAS_CLI_WITH_EIGEN
#include "interrupt.hpp"
#include "training.hpp"

#include <pcnas/json/arch.hpp>
#include <pcnas/json/event_log.hpp>
#include <pcnas/json/latency_table.hpp>
#include <pcnas/json/run_options.hpp>
#include <pcnas/nn/latency_profiler.hpp>
#include <pcnas/search/progress.hpp>
#include <pcnas/search/rescore.hpp>
#endif

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>

namespace pcnas_cli {
namespace {

#ifdef PCNAS_CLI_WITH_EIGEN

template <class S>
int search(const search_options& o) {
  namespace fs = std::filesystem;
  using namespace pcnas;
  const auto t_start = std::chrono::steady_clock::now();
  const search::run_budget budget = budget_of(o);
  if (!search_methods::contains(o.method))
    throw usage_error("--method must be " + search_methods::names() + ", got " + abbreviated(o.method));
  if (o.latency_ms < 0 || !std::isfinite(o.latency_ms)) throw usage_error("--latency-ms must be a finite positive number");
  if (!(o.limit_fraction >= 0 && o.limit_fraction <= 1)) throw usage_error("--limit-fraction must be in [0, 1]");
  check_threads(o.threads);

  // Start-up: the output directory, its lock, the options of an earlier search in it, the
  // latency table and the data are all checked before any long work.
  const fs::path out(o.out);
  check_writable_dir(out, "--out");
  const output_lock lock(out, "--out");
  const fs::path search_file = out / "search.json", options_file = out / "options.json";
  const nlohmann::json options_now = stored_options(o, budget);
  check_earlier_run(out, search_files, o.resume, options_now);
  search::progress_callback progress;
  const stop_on_signals signals;
  const stop_check stop{"the search stopped; the checkpoints in " + out.string() +
                        " are intact: run the same command with --resume to continue"};

  auto b = make_backend(o.threads);
  // A network used only for timing: latency does not depend on the weights.
  nn::supernet<cpu_backend, S> timing_net(b, {.seed = o.seed});
  nn::context<cpu_backend> timing_ctx(b);
  // 1. The latency table: given, left by an earlier run of this search, or profiled now (after
  // the data are known to load).
  const fs::path table_file = o.table.empty() ? out / "latency_table.json" : fs::path(o.table);
  cost::latency_table table;
  // Architectures of the table's calibration sample, timed beside the result at the end (the
  // limit is on the table's scale; the machine may run slower or faster now than then).
  nn::latency_reference<S> reference;
  const bool have_table = fs::exists(table_file);
  if (!o.table.empty() && !have_table) throw usage_error("--table " + o.table + ": no such file");
  if (have_table) {
    try {
      table = io::load_latency_table(table_file, S::name, space::choice_name_table<S>());
      const auto rec = io::read_calibration_record<S>(table_file, table);
      reference = nn::pick_latency_reference<S>(std::span<const space::architecture<S>>(rec.architectures),
                                                std::span<const double>(rec.measured));
    } catch (const std::runtime_error& e) {
      throw usage_error(std::string(o.table.empty() ? "" : "--table: ") + e.what());
    }
    progress.message("latency table: " + table_file.string() + " (" + table.provenance.backend + ", batch " +
                     std::to_string(table.provenance.batch) + ")");
  }
  std::optional<cost::constraint> k;
  double limit = 0.0;
  const auto set_limit = [&] {
    const double fastest = table.model.min_total(), slowest = table.model.max_total();
    limit = o.latency_ms > 0 ? o.latency_ms : fastest + o.limit_fraction * (slowest - fastest);
    try {
      k.emplace(table.model, cost::constraint_options{.limit = limit});
    } catch (const std::exception& e) {
      throw usage_error(e.what());  // no architecture meets the limit: a refusal, with the smallest value
    }
    char line[256];
    std::snprintf(line, sizeof line,
                  "latency limit %.3f ms (architectures range from %.3f to %.3f ms); %s of %llu architectures meet it",
                  limit, fastest, slowest, k->count_feasible().to_string().c_str(),
                  static_cast<unsigned long long>(S::num_architectures));
    progress.message(line);
  };
  if (have_table) set_limit();

  // 2. The data: the search holds 5,000 training images out to rank architectures.
  const auto data = load_fmnist(o.data, 5000, o.seed, "the search's held-out split");
  if (!fs::exists(options_file)) save_json(options_file, options_now);

  if (!have_table) {
    progress.message("profiling the latency table on " + b.name() + " ...");
    nn::latency_profile_options timing{.repeats = static_cast<int>(budget.latency_repeats)};
    timing.progress = [](const nn::latency_progress&) {
      stop_if_signalled("profiling the latency table stopped before it was written: run the same command with "
                        "--resume to profile it again");
    };
    auto built = nn::profile_calibrated_latency_table(b, timing_net, timing_ctx, {}, timing);
    table = std::move(built.table);
    const auto& cal = built.calibration;
    char fit[200];
    std::snprintf(fit, sizeof fit, "calibrated on %zu architectures: measured = %.3f x sum %+.3f ms (%s)",
                  cal.measured.size(), cal.fit.a, cal.fit.b, cal.method.c_str());
    progress.message(fit);
    io::save_latency_table(table_file, table);
    set_limit();
  }

  // 3. The search, on the supernet bound to the training split and the held-out split.
  method_outcome found;
  nlohmann::json search_json;
  const auto t_search = std::chrono::steady_clock::now();
  if (o.resume && fs::exists(search_file)) {
    search_json = io::parse_json_file(search_file);
    std::tie(found.best, found.accuracy) = io::best_of_search_json(search_json, search_file.string());
    progress.message("search already finished: " + search_file.string());
  } else {
    nn::supernet_trainer<cpu_backend, S> net(b, data.train, data.val,
                                             {.recalibration_batches = budget.recalibration_batches,
                                              .validation_images = budget.validation_images,
                                              .seed = o.seed,
                                              .augment = {.crop_padding = 2, .horizontal_flip = true}});
    io::event_log log(out / "log.jsonl");
    search_methods::dispatch(o.method, [&](auto row) {
      found = row.run(net, *k, method_inputs{budget, o.seed, out, o.resume}, progress, log, stop);
    });
    search_json = std::move(found.json);
    // The final pool's members can lie a few held-out images apart: rescoring them on more
    // images makes the last choice less of a coin toss (the method's "final choice" option).
    if (o.final_images > 0) {
      const auto rescored = search::rescore(found.finalists, [&](const std::vector<int>& a) {
        net.recalibrate(a);
        return net.evaluate_on(a, data.val, o.final_images);
      });
      io::add_rescoring(search_json, rescored, o.final_images,
                        [](const std::vector<int>& a) { return space::to_string<S>(space::arch_from_indices<S>(a)); });
      found.best = rescored.best().arch;
      found.accuracy = rescored.best().accuracy;
      progress.message("finalists rescored on " + std::to_string(o.final_images) + " held-out images: " +
                       space::to_string<S>(space::arch_from_indices<S>(found.best)));
    }
    search_json["method"] = o.method;
    search_json["seconds"] = seconds_since(t_search);
    save_json(search_file, search_json);
  }
  const auto arch = space::arch_from_indices<S>(found.best);
  const double search_seconds = search_json.value("seconds", seconds_since(t_search));

  // 4. Retrain from scratch (resumable per epoch), then measure the latency end to end.
  nn::train_architecture_result retrained;
  if (budget.retrain_epochs > 0)
    retrained = train_from_scratch<S>(b, data, arch,
                                      {.epochs = budget.retrain_epochs,
                                       .seed = o.seed,
                                       .weights = out / "weights.bin",
                                       .checkpoint = out / "retrain_checkpoint.bin",
                                       .resume = o.resume});
  std::vector<space::architecture<S>> timed{arch};
  timed.insert(timed.end(), reference.architectures.begin(), reference.architectures.end());
  const auto times = nn::measure_latencies(
      b, timing_net, timing_ctx, std::span<const space::architecture<S>>(timed),
      {.batch = static_cast<int>(table.provenance.batch), .repeats = static_cast<int>(budget.latency_repeats)});
  std::optional<double> speed_ratio;
  if (!reference.architectures.empty())
    speed_ratio = cost::speed_ratio(reference.measured, std::span<const double>(times).subspan(1));
  report_search<S>({.options = o, .budget = budget, .arch = arch, .found = found, .limit = limit, .table = table,
                    .table_file = table_file, .measured_ms = times.front(), .speed_ratio = speed_ratio,
                    .retrained = retrained,
                    .search_seconds = search_seconds, .total_seconds = seconds_since(t_start), .backend = b.name()});
  return 0;
}
#endif

}  // namespace

command add_search(CLI::App& app) {
  auto o = std::make_shared<search_options>();
  auto* cmd = app.add_subcommand(
      "search",
      "Search an architecture under a latency limit on Fashion-MNIST (PC-NAS or a baseline), retrain it from "
      "scratch and report its latency, MACs and test accuracy. Writes DIR/result.json, arch.json, "
      "latency_table.json, search.json, log.jsonl (one JSON event per line) and checkpoint.bin.");
  add_search_options(*cmd, *o);
  return {cmd, [o] {
#ifdef PCNAS_CLI_WITH_EIGEN
            return with_trainable_space(o->space, [&]<class S>(std::type_identity<S>) { return search<S>(*o); });
#else
            throw usage_error("this pcnas was built without Eigen: searching is not available");
            return 1;
#endif
          }};
}

}  // namespace pcnas_cli
