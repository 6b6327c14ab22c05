// `pcnas search`: the main job. Profile (or load) a latency table, set the latency limit,
// search with PC-NAS (or a baseline) on Fashion-MNIST, retrain the architecture found from
// scratch, measure it, and write result.json. Killed at any moment, `--resume` continues.
#include "commands.hpp"
#include "common.hpp"

#ifdef PCNAS_CLI_WITH_EIGEN
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

#include <memory>

namespace pcnas_cli {
namespace {

struct search_options {
  std::string space;
  std::string method = "pcnas";
  std::string budget = "quick";
  double latency_ms = 0.0;         // 0: the default point between fastest and slowest
  double limit_fraction = 0.4;     // that point: fastest + fraction · (slowest − fastest)
  std::uint64_t seed = 0;
  int threads = 0;
  std::string out = "out/search";
  std::string table;
  std::string data;
  bool resume = false;
  // Overrides of the budget's values (0 or negative: keep the budget's).
  std::size_t steps = 0;
  std::size_t pool = 0;
  std::size_t completions = 0;
  int retrain_epochs = -1;
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
    throw usage_error("--method must be pcnas, spos or random, got '" + o.method + "'");
  if (o.latency_ms < 0) throw usage_error("--latency-ms must be positive");
  if (!(o.limit_fraction >= 0 && o.limit_fraction <= 1)) throw usage_error("--limit-fraction must be in [0, 1]");

  const fs::path out(o.out);
  const fs::path checkpoint = out / "checkpoint.bin", search_file = out / "search.json", result_file = out / "result.json";
  if (!o.resume && (fs::exists(checkpoint) || fs::exists(search_file)))
    throw usage_error(out.string() + " holds an earlier search: pass --resume to continue it, or choose another --out");
  fs::create_directories(out);
  search::progress_callback progress;

  auto b = make_backend(o.threads);
  // A network used only for timing: latency does not depend on the weights.
  nn::supernet<cpu_backend, S> timing_net(b, {.seed = o.seed});
  nn::context<cpu_backend> timing_ctx(b);
  // 1. The latency table: given, left by an earlier run of this search, or profiled now.
  const fs::path table_file = o.table.empty() ? out / "latency_table.json" : fs::path(o.table);
  cost::latency_table table;
  if (fs::exists(table_file)) {
    table = io::load_latency_table(table_file, S::name, choice_names<S>());
    progress.message("latency table: " + table_file.string() + " (" + table.provenance.backend + ", batch " +
                     std::to_string(table.provenance.batch) + ")");
  } else if (!o.table.empty()) {
    throw usage_error("--table " + o.table + ": no such file");
  } else {
    progress.message("profiling the latency table on " + b.name() + " ...");
    // The per-op times and the calibration sample in the same rounds, so that the calibration
    // corrects the sum of parts, not a drift of the machine's speed between two measurements.
    auto built = nn::profile_calibrated_latency_table(b, timing_net, timing_ctx, {},
                                                      {.repeats = static_cast<int>(budget.latency_repeats)});
    table = std::move(built.table);
    const auto& cal = built.calibration;
    char fit[200];
    std::snprintf(fit, sizeof fit, "calibrated on %zu architectures: measured = %.3f x sum %+.3f ms (%s)",
                  cal.measured.size(), cal.fit.a, cal.fit.b, cal.method.c_str());
    progress.message(fit);
    io::save_latency_table(table_file, table);
  }
  const double fastest = table.model.min_total(), slowest = table.model.max_total();
  const double limit = o.latency_ms > 0 ? o.latency_ms : fastest + o.limit_fraction * (slowest - fastest);
  const cost::constraint k(table.model, {.limit = limit});  // throws with the smallest reachable value
  char line[256];
  std::snprintf(line, sizeof line,
                "latency limit %.3f ms (architectures range from %.3f to %.3f ms); %s of %llu architectures meet it",
                limit, fastest, slowest, k.count_feasible().to_string().c_str(),
                static_cast<unsigned long long>(S::num_architectures));
  progress.message(line);

  // 2. The search, on the supernet bound to the training split and the held-out split.
  const auto data = load_fmnist(o.data, 5000, o.seed);
  std::vector<int> best;
  double shared_accuracy = 0.0;
  nlohmann::json search_json;
  const auto t_search = std::chrono::steady_clock::now();
  if (o.resume && fs::exists(search_file)) {
    search_json = nlohmann::json::parse(io::read_file(search_file));
    best = search_json.at("best_arch").get<std::vector<int>>();
    shared_accuracy = search_json.at("best_accuracy").get<double>();
    progress.message("search already finished: " + search_file.string());
  } else {
    nn::supernet_trainer<cpu_backend, S> net(b, data.train, data.val,
                                             {.recalibration_batches = budget.recalibration_batches,
                                              .validation_images = budget.validation_images,
                                              .seed = o.seed,
                                              .augment = {.crop_padding = 2, .horizontal_flip = true}});
    io::event_log log(out / "log.jsonl");
    const search::checkpoint_options ckpt{.path = checkpoint, .every_steps = 200, .resume = o.resume};
    const std::size_t evaluations =
        search::pc_nas_nominal_evaluations(k.choices_per_layer(), budget.pool, budget.completions);
    if (o.method == "pcnas") {
      const auto r = search::pc_nas_search(net, k,
                                           {.pool_size = budget.pool,
                                            .completions = budget.completions,
                                            .total_steps = budget.steps,
                                            .seed = o.seed,
                                            .checkpoint = ckpt},
                                           progress, log);
      best = r.best_arch;
      shared_accuracy = r.best_accuracy;
      search_json = io::to_json(r);
    } else {
      search::uniform_training_options train{.total_steps = budget.steps, .seed = o.seed, .checkpoint = ckpt};
      (void)search::train_uniform(net, k, train, progress, log);
      const search::arch_search_result r =
          o.method == "spos"
              ? search::evolution_search(net, k, {.evaluations = evaluations, .seed = o.seed, .checkpoint = ckpt},
                                         progress, log)
              : search::random_search(net, k, {.evaluations = evaluations, .seed = o.seed}, progress, log);
      best = r.best_arch;
      shared_accuracy = r.best_accuracy;
      search_json = io::to_json(r, o.method == "spos" ? "evolution" : "random");
    }
    search_json["method"] = o.method;
    search_json["seconds"] = seconds_since(t_search);
    write_json(search_file, search_json);
  }
  const auto arch = space::arch_from_indices<S>(best);
  const double search_seconds = search_json.value("seconds", seconds_since(t_search));

  // 3. Retrain from scratch, then measure the architecture's latency end to end.
  from_scratch_result retrained;
  if (budget.retrain_epochs > 0)
    retrained = train_from_scratch<S>(b, data, arch,
                                      {.epochs = budget.retrain_epochs, .seed = o.seed, .weights = out / "weights.bin"});
  const double measured_ms =
      nn::measure_latency(b, timing_net, timing_ctx, arch,
                          {.batch = static_cast<int>(table.provenance.batch), .repeats = static_cast<int>(budget.latency_repeats)});
  const auto cost = cost::arch_cost<S>(arch);
  const double predicted_ms = table.model.predict(best);

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
  cmd->add_option("--latency-ms", o->latency_ms, "Latency limit in ms (default: see --limit-fraction)");
  cmd->add_option("--limit-fraction", o->limit_fraction,
                  "Default limit: fastest + fraction x (slowest - fastest) of the latency table")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of everything random")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0: all cores)")->capture_default_str();
  cmd->add_option("--out", o->out, "Output directory")->capture_default_str();
  cmd->add_option("--table", o->table, "Use this latency table instead of profiling one");
  cmd->add_option("--data", o->data, "Fashion-MNIST directory");
  cmd->add_flag("--resume", o->resume, "Continue the search (or retraining) left in --out");
  cmd->add_option("--steps", o->steps, "Supernet training steps (overrides the budget)");
  cmd->add_option("--pool", o->pool, "PC-NAS pool size P (overrides the budget)");
  cmd->add_option("--completions", o->completions, "Completions S per candidate (overrides the budget)");
  cmd->add_option("--retrain-epochs", o->retrain_epochs, "Epochs of retraining from scratch; 0 skips it");
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
