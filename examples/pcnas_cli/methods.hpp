// The search methods `pcnas search --method` offers: one row each. A row runs its method on the
// supernet bound to the data, with one checkpoint file per phase in the output directory, and
// says what it found.
#pragma once

#include <pcnas/json/search_result.hpp>
#include <pcnas/search/budgets.hpp>
#include <pcnas/search/method_table.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/spos_evolution.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string_view>
#include <vector>

namespace pcnas_cli {

struct method_inputs {
  pcnas::search::run_budget budget;
  std::uint64_t seed = 0;
  std::filesystem::path dir;  // the checkpoints' directory
  bool resume = false;
};

struct method_outcome {
  std::vector<int> best;
  double accuracy = 0.0;                      // held-out, with shared weights
  std::vector<std::vector<int>> finalists;    // PC-NAS's final pool, or the baselines' best P
  nlohmann::json json;                        // the method's whole result, for search.json
};

// What a search leaves in its directory: a run into a directory that holds any of these continues
// an earlier search (or is refused).
inline constexpr std::string_view search_files[] = {
    "search.json",    "result.json",             "options.json",             "retrain_checkpoint.bin",
    "checkpoint.bin", "supernet_checkpoint.bin", "evolution_checkpoint.bin", "random_checkpoint.bin"};

struct pcnas_method_row {
  static constexpr std::string_view name = "pcnas";
  template <class Net, class... Callbacks>
  static method_outcome run(Net& net, const pcnas::cost::constraint& k, const method_inputs& in, Callbacks&... cb) {
    const auto r = pcnas::search::pc_nas_search(
        net, k,
        {.pool_size = in.budget.pool,
         .completions = in.budget.completions,
         .total_steps = in.budget.steps,
         .seed = in.seed,
         .checkpoint = {.path = in.dir / "checkpoint.bin", .every_steps = 200, .resume = in.resume}},
        cb...);
    method_outcome out{r.best_arch, r.best_accuracy, {}, pcnas::io::to_json(r)};
    for (const auto& m : r.final_pool) out.finalists.push_back(m.prefix);
    return out;
  }
};

// The baselines: uniform one-shot training at PC-NAS's training budget, then a search with as
// many evaluations as PC-NAS makes with the budget's P and S.
template <class Derived>
struct baseline_row {
  template <class Net, class... Callbacks>
  static method_outcome run(Net& net, const pcnas::cost::constraint& k, const method_inputs& in, Callbacks&... cb) {
    (void)pcnas::search::train_uniform(
        net, k,
        {.total_steps = in.budget.steps,
         .seed = in.seed,
         .checkpoint = {.path = in.dir / "supernet_checkpoint.bin", .every_steps = 200, .resume = in.resume}},
        cb...);
    const std::size_t evaluations =
        pcnas::search::pc_nas_nominal_evaluations(k.choices_per_layer(), in.budget.pool, in.budget.completions);
    const pcnas::search::arch_search_result r = Derived::search(net, k, in, evaluations, cb...);
    method_outcome out{r.best_arch, r.best_accuracy, {}, pcnas::io::to_json(r, std::string(Derived::algorithm))};
    for (std::size_t i = 0; i < std::min(in.budget.pool, r.top.size()); ++i) out.finalists.push_back(r.top[i].arch);
    return out;
  }
};

struct spos_method_row : baseline_row<spos_method_row> {
  static constexpr std::string_view name = "spos", algorithm = "evolution";
  template <class Net, class... Callbacks>
  static auto search(Net& net, const pcnas::cost::constraint& k, const method_inputs& in, std::size_t evaluations,
                     Callbacks&... cb) {
    return pcnas::search::evolution_search(
        net, k,
        {.evaluations = evaluations,
         .seed = in.seed,
         .checkpoint = {.path = in.dir / "evolution_checkpoint.bin", .resume = in.resume}},
        cb...);
  }
};

struct random_method_row : baseline_row<random_method_row> {
  static constexpr std::string_view name = "random", algorithm = "random";
  template <class Net, class... Callbacks>
  static auto search(Net& net, const pcnas::cost::constraint& k, const method_inputs& in, std::size_t evaluations,
                     Callbacks&... cb) {
    return pcnas::search::random_search(
        net, k,
        {.evaluations = evaluations,
         .seed = in.seed,
         .checkpoint = {.path = in.dir / "random_checkpoint.bin", .resume = in.resume}},
        cb...);
  }
};

using search_methods = pcnas::search::method_table<pcnas_method_row, spos_method_row, random_method_row>;

}  // namespace pcnas_cli
