// `pcnas search`: the main job. Profile (or load) a latency table, set the latency limit,
// search with PC-NAS (or a baseline) on Fashion-MNIST, retrain the architecture found from
// scratch, measure it, and write result.json. Killed at any moment, `--resume` continues.
#include "commands.hpp"
#include "common.hpp"
#include "output_dir.hpp"

#ifdef PCNAS_CLI_WITH_EIGEN
#include "interrupt.hpp"
#include "training.hpp"

#include <pcnas/io/arch_json.hpp>
#include <pcnas/io/event_log.hpp>
#include <pcnas/io/latency_table_json.hpp>
#include <pcnas/io/search_json.hpp>
#include <pcnas/nn/latency_profiler.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/progress.hpp>
#include <pcnas/search/spos_evolution.hpp>
#endif

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>

namespace pcnas_cli {
namespace {

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

/// What --budget sets. quick fits in about ten minutes on two cores; medium in about an hour
/// per method; full uses METHOD.md's defaults (P = 5, S = 8, 2,000 held-out images), retrains
/// for 20 epochs, and takes about two hours per method on one core.
struct budget_values {
  std::size_t steps;                  // supernet training steps (batches of 128)
  std::size_t pool;                   // P
  std::size_t completions;            // S
  std::size_t validation_images;      // held-out images per evaluation
  std::size_t recalibration_batches;  // BN recalibration batches per evaluation
  int retrain_epochs;
  std::size_t latency_repeats;
};

budget_values budget_for(const std::string& name) {
  if (name == "quick") return {600, 3, 2, 500, 2, 2, 10};
  if (name == "medium") return {2145, 5, 4, 1000, 2, 15, 21};  // 5 epochs of 55,000 images
  if (name == "full") return {4290, 5, 8, 2000, 4, 20, 21};    // 10 epochs
  throw usage_error("--budget must be quick, medium or full, got '" + name + "'");
}

#ifdef PCNAS_CLI_WITH_EIGEN

template <class S>
std::vector<std::vector<std::string>> choice_names() {
  std::vector<std::vector<std::string>> names(S::num_layers);
  for (std::size_t l = 0; l < S::num_layers; ++l)
    for (std::size_t c = 0; c < S::num_choices[l]; ++c) names[l].emplace_back(S::choice_names[l][c]);
  return names;
}

// The options that determine a search's result, as stored in DIR/options.json: a resumed
// search must be the same search, or its result would carry labels it was not found under.
nlohmann::json result_options(const search_options& o, const budget_values& budget) {
  return {{"space", o.space},
          {"method", o.method},
          {"budget", o.budget},
          {"seed", o.seed},
          {"latency_ms", o.latency_ms > 0 ? nlohmann::json(o.latency_ms) : nlohmann::json()},
          {"limit_fraction", o.latency_ms > 0 ? nlohmann::json() : nlohmann::json(o.limit_fraction)},
          {"steps", budget.steps},
          {"pool", budget.pool},
          {"completions", budget.completions},
          {"retrain_epochs", budget.retrain_epochs},
          {"table", o.table.empty() ? nlohmann::json() : nlohmann::json(o.table)},
          {"data", o.data.empty() ? nlohmann::json() : nlohmann::json(o.data)}};
}

// The options as stored, with final_images only when given, so that directories written before
// the option existed still resume.
nlohmann::json stored_options(const search_options& o, const budget_values& budget) {
  auto j = result_options(o, budget);
  if (o.final_images > 0) j["final_images"] = o.final_images;
  return j;
}

// Refuses --resume when DIR holds a search with other options, naming each difference.
void check_same_options(const std::filesystem::path& file, const nlohmann::json& now) {
  const nlohmann::json then = pcnas::io::parse_json_file(file);
  std::string differences;
  for (const auto& [key, value] : now.items()) {
    const auto it = then.find(key);
    const nlohmann::json earlier = it == then.end() ? nlohmann::json() : *it;
    if (earlier == value) continue;
    const auto text = [](const nlohmann::json& v) { return v.is_null() ? std::string("(not given)") : v.dump(); };
    differences += (differences.empty() ? "" : ", ") + key + " " + text(earlier) + " then, " + text(value) + " now";
  }
  if (!differences.empty())
    throw usage_error("--resume: " + file.parent_path().string() + " holds a search with other options (" +
                      differences + "); resume it with the options it was started with (see " + file.string() +
                      "), or choose another --out");
}

template <class S>
int search(const search_options& o) {
  namespace fs = std::filesystem;
  using namespace pcnas;
  const auto t_start = std::chrono::steady_clock::now();
  budget_values budget = budget_for(o.budget);
  if (o.steps) budget.steps = o.steps;
  if (o.pool) budget.pool = o.pool;
  if (o.completions) budget.completions = o.completions;
  if (o.retrain_epochs >= 0) budget.retrain_epochs = o.retrain_epochs;
  if (o.method != "pcnas" && o.method != "spos" && o.method != "random")
    throw usage_error("--method must be pcnas, spos or random, got " + abbreviated(o.method));
  if (o.latency_ms < 0 || !std::isfinite(o.latency_ms)) throw usage_error("--latency-ms must be a finite positive number");
  if (!(o.limit_fraction >= 0 && o.limit_fraction <= 1)) throw usage_error("--limit-fraction must be in [0, 1]");
  check_threads(o.threads);

  // Start-up: the output directory, its lock, the options of an earlier search in it, the
  // latency table and the data are all checked before any long work.
  const fs::path out(o.out);
  check_writable_dir(out, "--out");
  const output_lock lock(out, "--out");
  // One checkpoint per phase: the uniform training and the evolution that follows it each
  // resume from their own file.
  const fs::path pcnas_checkpoint = out / "checkpoint.bin", training_checkpoint = out / "supernet_checkpoint.bin",
                 evolution_checkpoint = out / "evolution_checkpoint.bin", retrain_checkpoint = out / "retrain_checkpoint.bin";
  const fs::path search_file = out / "search.json", result_file = out / "result.json", options_file = out / "options.json";
  bool earlier = false;
  for (const auto& f : {pcnas_checkpoint, training_checkpoint, evolution_checkpoint, retrain_checkpoint, search_file,
                        result_file, options_file})
    earlier = earlier || fs::exists(f);
  if (earlier && !o.resume)
    throw usage_error(out.string() + " holds an earlier search: pass --resume to continue it, or choose another --out");
  const nlohmann::json options_now = stored_options(o, budget);
  if (earlier) {
    if (!fs::exists(options_file))
      throw usage_error("--resume: " + out.string() + " holds a search without " + options_file.filename().string() +
                        " (written by an older pcnas), so this command's options cannot be checked against it; "
                        "start it afresh in another --out");
    check_same_options(options_file, options_now);
  }
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
  const bool have_table = fs::exists(table_file);
  if (!o.table.empty() && !have_table) throw usage_error("--table " + o.table + ": no such file");
  if (have_table) {
    try {
      table = io::load_latency_table(table_file, S::name, choice_names<S>());
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
  if (!fs::exists(options_file)) write_json(options_file, options_now);

  if (!have_table) {
    progress.message("profiling the latency table on " + b.name() + " ...");
    // The per-op times and the calibration sample in the same rounds, so that the calibration
    // corrects the sum of parts, not a drift of the machine's speed between two measurements.
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
  std::vector<int> best;
  double shared_accuracy = 0.0;
  nlohmann::json search_json;
  const auto t_search = std::chrono::steady_clock::now();
  if (o.resume && fs::exists(search_file)) {
    search_json = io::parse_json_file(search_file);
    const io::json_field root(search_json, search_file.string());
    for (std::size_t i = 0; i < root["best_arch"].array_size(); ++i)
      best.push_back(static_cast<int>(root["best_arch"][i].integer_in(0, 1 << 20)));
    shared_accuracy = root["best_accuracy"].number();
    progress.message("search already finished: " + search_file.string());
  } else {
    nn::supernet_trainer<cpu_backend, S> net(b, data.train, data.val,
                                             {.recalibration_batches = budget.recalibration_batches,
                                              .validation_images = budget.validation_images,
                                              .seed = o.seed,
                                              .augment = {.crop_padding = 2, .horizontal_flip = true}});
    io::event_log log(out / "log.jsonl");
    const std::size_t evaluations =
        search::pc_nas_nominal_evaluations(k->choices_per_layer(), budget.pool, budget.completions);
    std::vector<std::vector<int>> finalists;  // PC-NAS's final pool, or the baselines' top P
    if (o.method == "pcnas") {
      const auto r = search::pc_nas_search(
          net, *k,
          {.pool_size = budget.pool,
           .completions = budget.completions,
           .total_steps = budget.steps,
           .seed = o.seed,
           .checkpoint = {.path = pcnas_checkpoint, .every_steps = 200, .resume = o.resume}},
          progress, log, stop);
      best = r.best_arch;
      shared_accuracy = r.best_accuracy;
      search_json = io::to_json(r);
      for (const auto& m : r.final_pool) finalists.push_back(m.prefix);
    } else {
      search::uniform_training_options train{
          .total_steps = budget.steps,
          .seed = o.seed,
          .checkpoint = {.path = training_checkpoint, .every_steps = 200, .resume = o.resume}};
      (void)search::train_uniform(net, *k, train, progress, log, stop);
      const search::arch_search_result r =
          o.method == "spos"
              ? search::evolution_search(
                    net, *k,
                    {.evaluations = evaluations,
                     .seed = o.seed,
                     .checkpoint = {.path = evolution_checkpoint, .resume = o.resume}},
                    progress, log, stop)
              : search::random_search(net, *k, {.evaluations = evaluations, .seed = o.seed}, progress, log, stop);
      best = r.best_arch;
      shared_accuracy = r.best_accuracy;
      search_json = io::to_json(r, o.method == "spos" ? "evolution" : "random");
      for (std::size_t i = 0; i < std::min(budget.pool, r.top.size()); ++i) finalists.push_back(r.top[i].arch);
    }
    // The final pool's members can lie a few held-out images apart: rescoring them on more
    // images makes the last choice less of a coin toss (the method's "final choice" option).
    // Ties keep the search's order.
    if (o.final_images > 0) {
      nlohmann::json rescored = nlohmann::json::array();
      double top = -1.0;
      for (const auto& a : finalists) {
        net.recalibrate(a);
        const double accuracy = net.evaluate_on(a, data.val, o.final_images);
        rescored.push_back({{"arch", space::to_string<S>(space::arch_from_indices<S>(a))}, {"choices", a},
                            {"accuracy", accuracy}});
        if (accuracy > top) {
          top = accuracy;
          best = a;
        }
      }
      search_json["search_best_arch"] = search_json["best_arch"];
      search_json["search_best_accuracy"] = search_json["best_accuracy"];
      search_json["best_arch"] = best;
      search_json["best_accuracy"] = shared_accuracy = top;
      search_json["final_images"] = o.final_images;
      search_json["final_rescoring"] = std::move(rescored);
      progress.message("finalists rescored on " + std::to_string(o.final_images) + " held-out images: " +
                       space::to_string<S>(space::arch_from_indices<S>(best)));
    }
    search_json["method"] = o.method;
    search_json["seconds"] = seconds_since(t_search);
    write_json(search_file, search_json);
  }
  const auto arch = space::arch_from_indices<S>(best);
  const double search_seconds = search_json.value("seconds", seconds_since(t_search));

  // 4. Retrain from scratch (resumable per epoch), then measure the latency end to end.
  from_scratch_result retrained;
  if (budget.retrain_epochs > 0)
    retrained = train_from_scratch<S>(b, data, arch,
                                      {.epochs = budget.retrain_epochs,
                                       .seed = o.seed,
                                       .weights = out / "weights.bin",
                                       .checkpoint = retrain_checkpoint,
                                       .resume = o.resume});
  const double measured_ms =
      nn::measure_latency(b, timing_net, timing_ctx, arch,
                          {.batch = static_cast<int>(table.provenance.batch), .repeats = static_cast<int>(budget.latency_repeats)});
  const auto cost = cost::arch_cost<S>(arch);
  const double predicted_ms = table.model.predict(best);
  // The table's prediction met the limit; the machine now may not. Said, not hidden.
  const bool over_limit = measured_ms > limit;
  std::string latency_warning;
  if (over_limit) {
    char text[320];
    std::snprintf(text, sizeof text,
                  "the measured latency %.3f ms is above the limit %.3f ms (%+.1f %%), although the table predicted "
                  "%.3f ms: the table is off on this machine now (profile it again on a quiet machine)",
                  measured_ms, limit, 100 * (measured_ms - limit) / limit, predicted_ms);
    latency_warning = text;
  }

  const nlohmann::json result = {
      {"space", std::string(S::name)},
      {"method", o.method},
      {"budget", o.budget},
      {"seed", o.seed},
      {"arch", space::to_string<S>(arch)},
      {"choices", best},
      {"latency_limit_ms", limit},
      {"predicted_latency_ms", predicted_ms},
      {"measured_latency_ms", measured_ms},
      {"measured_over_limit", over_limit},
      {"warnings", over_limit ? nlohmann::json::array({latency_warning}) : nlohmann::json::array()},
      {"latency_batch", table.provenance.batch},
      {"macs", cost.macs},
      {"params", cost.params},
      {"shared_weight_val_accuracy", shared_accuracy},
      {"retrain_epochs", budget.retrain_epochs},
      {"val_accuracy", retrained.val_accuracy},
      {"test_accuracy", budget.retrain_epochs > 0 ? nlohmann::json(retrained.test_accuracy) : nlohmann::json()},
      {"search_seconds", search_seconds},
      {"retrain_seconds", retrained.seconds},
      {"total_seconds", seconds_since(t_start)},
      {"supernet_steps", budget.steps},
      {"pool_size", budget.pool},
      {"completions", budget.completions},
      {"backend", b.name()},
      {"latency_table", table_file.string()}};
  write_json(result_file, result);
  write_json(out / "arch.json", io::arch_to_json<S>(arch));

  std::printf("architecture:      %s\n", space::to_string<S>(arch).c_str());
  std::printf("latency:           %.3f ms predicted, %.3f ms measured (limit %.3f ms, batch %zu)\n", predicted_ms,
              measured_ms, limit, static_cast<std::size_t>(table.provenance.batch));
  if (over_limit) std::printf("warning:           %s\n", latency_warning.c_str());
  std::printf("cost:              %.2f M MACs, %.3f M parameters\n", cost.macs / 1e6, cost.params / 1e6);
  std::printf("shared weights:    %.2f %% held-out accuracy\n", 100 * shared_accuracy);
  if (budget.retrain_epochs > 0)
    std::printf("retrained:         %.2f %% test accuracy after %d epochs (%.2f %% validation)\n",
                100 * retrained.test_accuracy, budget.retrain_epochs, 100 * retrained.val_accuracy);
  std::printf("time:              %.0f s search, %.0f s retraining, %.0f s in all\n", search_seconds, retrained.seconds,
              seconds_since(t_start));
  std::printf("written to         %s\n", out.string().c_str());
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
  cmd->add_option("space", o->space, "fmnist or fmnist_micro")->required();
  cmd->add_option("--method", o->method, "pcnas, spos (uniform one-shot + evolution) or random (uniform one-shot + "
                                         "random search); the baselines get as many evaluations as PC-NAS")
      ->capture_default_str();
  cmd->add_option("--budget", o->budget, "quick (about 10 minutes on 2 cores), medium (5 supernet epochs, P=5, S=4, "
                                         "retrain 15 epochs) or full (10 supernet epochs, P=5, S=8, retrain 20 epochs)")->capture_default_str();
  cmd->add_option("--latency-ms", o->latency_ms, "Latency limit in ms (default: see --limit-fraction)")
      ->check(real_number(0, 1e9, true));
  cmd->add_option("--limit-fraction", o->limit_fraction,
                  "Default limit: fastest + fraction x (slowest - fastest) of the latency table")
      ->check(real_number(0, 1, false))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of everything random")
      ->check(whole_number(0, UINT64_MAX))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0: all cores)")->check(whole_number(0, 65536))->capture_default_str();
  cmd->add_option("--out", o->out, "Output directory (one run at a time: a second run into it is refused)")
      ->capture_default_str();
  cmd->add_option("--table", o->table, "Use this latency table instead of profiling one");
  cmd->add_option("--data", o->data, "Fashion-MNIST directory");
  cmd->add_flag("--resume", o->resume,
                "Continue the search, and then the retraining (from its last finished epoch), left in --out; "
                "refused when --out holds a search with other options");
  cmd->add_option("--steps", o->steps, "Supernet training steps (overrides the budget)")
      ->check(whole_number(1, 1000000000));
  cmd->add_option("--pool", o->pool, "PC-NAS pool size P (overrides the budget)")->check(whole_number(1, 1000));
  cmd->add_option("--completions", o->completions, "Completions S per candidate (overrides the budget)")
      ->check(whole_number(1, 10000));
  cmd->add_option("--final-images", o->final_images,
                  "Rescore the finalists (PC-NAS's final pool, the baselines' best P) on this many held-out images "
                  "and take the best; 0 keeps the search's own ranking")
      ->check(whole_number(0, 5000));
  cmd->add_option("--retrain-epochs", o->retrain_epochs, "Epochs of retraining from scratch; 0 skips it")
      ->check(whole_number(0, 100000));
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
