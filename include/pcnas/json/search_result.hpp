// Search records and results as JSON: the pool, candidates, evaluations and final results, in
// the shapes the event log and result files share. Non-finite numbers become null (JSON has
// no NaN).
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <pcnas/io/atomic_file.hpp>
#include <pcnas/json/fields.hpp>
#include <pcnas/search/callbacks.hpp>
#include <pcnas/search/pc_nas.hpp>
#include <pcnas/search/rescore.hpp>
#include <pcnas/search/spos_evolution.hpp>

namespace pcnas::io {

// A runtime architecture (one choice index per layer) as a JSON array.
inline nlohmann::json choices_to_json(std::span<const int> arch) { return nlohmann::json(std::vector<int>(arch.begin(), arch.end())); }

inline nlohmann::json to_json(const search::pool_member& m) {
  return {{"prefix", m.prefix}, {"potential", m.potential}, {"min_cost", m.min_cost}, {"mean_cost", m.mean_cost}};
}

inline nlohmann::json to_json(std::span<const search::pool_member> pool) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : pool) out.push_back(to_json(m));
  return out;
}

inline nlohmann::json to_json(const search::scored_arch& s) {
  return {{"arch", s.arch}, {"accuracy", s.accuracy}, {"cost", s.cost}};
}

inline nlohmann::json to_json(std::span<const search::scored_arch> list) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : list) out.push_back(to_json(s));
  return out;
}

inline nlohmann::json to_json(const search::pc_nas_result& r) {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& h : r.history)
    history.push_back({{"layer", h.layer},
                       {"steps_done", h.steps_done},
                       {"candidates", h.candidates},
                       {"mean_train_loss", h.mean_train_loss},
                       {"pool", to_json(std::span<const search::pool_member>(h.pool))}});
  return {{"algorithm", "pc_nas"},
          {"best_arch", r.best_arch},
          {"best_accuracy", r.best_accuracy},
          {"predicted_cost", r.predicted_cost},
          {"final_pool", to_json(std::span<const search::pool_member>(r.final_pool))},
          {"steps_done", r.steps_done},
          {"evaluations", r.evaluations},
          {"resumed", r.resumed},
          {"history", history}};
}

inline nlohmann::json to_json(const search::uniform_training_result& r) {
  return {{"steps_done", r.steps_done}, {"mean_loss", r.mean_loss}, {"final_loss", r.final_loss}, {"resumed", r.resumed}};
}

// `algorithm` says which search produced it ("evolution", "random").
inline nlohmann::json to_json(const search::arch_search_result& r, const std::string& algorithm) {
  return {{"algorithm", algorithm},
          {"best_arch", r.best_arch},
          {"best_accuracy", r.best_accuracy},
          {"predicted_cost", r.predicted_cost},
          {"top", to_json(std::span<const search::scored_arch>(r.top))},
          {"evaluations", r.evaluations},
          {"generations", r.generations},
          {"best_per_generation", r.best_per_generation},
          {"exhausted", r.exhausted},
          {"resumed", r.resumed}};
}

/// Records a final rescoring in a search's JSON: the search's own pick is kept as
/// search_best_arch/search_best_accuracy, best_arch/best_accuracy become the rescored best, and
/// final_rescoring lists every finalist. `name(arch)` gives an architecture's text.
template <class Name>
void add_rescoring(nlohmann::json& j, const search::rescoring& r, std::size_t images, Name&& name) {
  j["search_best_arch"] = j["best_arch"];
  j["search_best_accuracy"] = j["best_accuracy"];
  j["best_arch"] = r.best().arch;
  j["best_accuracy"] = r.best().accuracy;
  j["final_images"] = images;
  j["final_rescoring"] = nlohmann::json::array();
  for (const auto& s : r.scored)
    j["final_rescoring"].push_back({{"arch", name(s.arch)}, {"choices", s.arch}, {"accuracy", s.accuracy}});
}

/// The best architecture and its accuracy as a search's JSON records them (a finished search
/// that is resumed reads them back); a damaged file names the field.
inline std::pair<std::vector<int>, double> best_of_search_json(const nlohmann::json& j, const std::string& source) {
  const json_field root(j, source);
  std::vector<int> best;
  for (std::size_t i = 0; i < root["best_arch"].array_size(); ++i)
    best.push_back(static_cast<int>(root["best_arch"][i].integer_in(0, 1 << 20)));
  return {std::move(best), root["best_accuracy"].number()};
}

}  // namespace pcnas::io
