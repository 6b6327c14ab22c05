// Latency tables as JSON files: saved atomically, loaded with checks that name the file and the
// field (syntax, missing keys, negative or non-finite times) and, when the caller says which
// space it searches, refused when they were measured for another one.
//
// {"format": "pcnas.latency_table", "version": 1, "space": "fmnist", "unit": "ms",
//  "fixed": 0.12, "layers": [{"choices": ["k3e3", ...], "times": [0.05, ...]}, ...],
//  "provenance": {"device": ..., "backend": ..., "batch": 1, "threads": 2, "date": ...,
//                 "library_version": "0.1.0", "repeats": 50, "warmup": 10}}
#pragma once

#include <filesystem>
#include <stdexcept>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <pcnas/cost/latency_table.hpp>
#include <pcnas/space/arch.hpp>
#include <pcnas/io/atomic_file.hpp>
#include <pcnas/json/fields.hpp>

namespace pcnas::io {

inline constexpr const char* latency_table_format = "pcnas.latency_table";
inline constexpr int latency_table_version = 1;
// The largest batch, thread count, repeat or warm-up count a table may record.
inline constexpr std::int64_t max_provenance_count = 1 << 20;

inline nlohmann::json latency_table_to_json(const cost::latency_table& table) {
  table.validate();
  nlohmann::json layers = nlohmann::json::array();
  for (std::size_t l = 0; l < table.choices.size(); ++l)
    layers.push_back({{"choices", table.choices[l]}, {"times", table.model.per_layer[l]}});
  const auto& p = table.provenance;
  return {{"format", latency_table_format},
          {"version", latency_table_version},
          {"space", table.space},
          {"unit", table.model.unit},
          {"fixed", table.model.fixed},
          {"layers", layers},
          {"provenance",
           {{"device", p.device},
            {"backend", p.backend},
            {"batch", p.batch},
            {"threads", p.threads},
            {"date", p.date},
            {"library_version", p.library_version},
            {"repeats", p.repeats},
            {"warmup", p.warmup}}}};
}

// `source` names the document in messages (the file path when loading one).
inline cost::latency_table latency_table_from_json(const nlohmann::json& doc, const std::string& source) {
  const json_field root(doc, source);
  if (root["format"].string() != latency_table_format)
    root["format"].fail("must be \"" + std::string(latency_table_format) + "\" (this is not a latency table)");
  const auto version = root["version"].integer();
  if (version != latency_table_version)
    root["version"].fail("is " + std::to_string(version) + "; this library reads version " +
                         std::to_string(latency_table_version));
  cost::latency_table t;
  t.space = root["space"].string();
  t.model.unit = root["unit"].string();
  t.model.fixed = root["fixed"].non_negative();
  const auto layers = root["layers"];
  for (std::size_t l = 0; l < layers.array_size(); ++l) {
    const auto layer = layers[l];
    const auto names = layer["choices"];
    const auto times = layer["times"];
    if (names.array_size() != times.array_size())
      layer.fail("has " + std::to_string(names.array_size()) + " choice names but " +
                 std::to_string(times.array_size()) + " times");
    if (names.array_size() == 0) layer.fail("has no choices");
    std::vector<std::string> row_names;
    std::vector<double> row_times;
    for (std::size_t c = 0; c < names.array_size(); ++c) {
      row_names.push_back(names[c].string());
      row_times.push_back(times[c].non_negative());
    }
    t.choices.push_back(std::move(row_names));
    t.model.per_layer.push_back(std::move(row_times));
  }
  const auto p = root["provenance"];
  t.provenance.device = p["device"].string();
  t.provenance.backend = p["backend"].string();
  // A search measures its result at the table's batch with its threads at the very end, so a
  // batch of 0 must be refused here, when the table is read, not after hours of search.
  t.provenance.batch = static_cast<int>(p["batch"].integer_in(1, max_provenance_count));
  t.provenance.threads = static_cast<int>(p["threads"].integer_in(0, max_provenance_count));
  t.provenance.date = p["date"].string();
  t.provenance.library_version = p["library_version"].string();
  t.provenance.repeats = static_cast<int>(p["repeats"].integer_in(0, max_provenance_count));
  t.provenance.warmup = static_cast<int>(p["warmup"].integer_in(0, max_provenance_count));
  try {
    t.validate();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
  return t;
}

// Written atomically: an interrupted save leaves the previous table in place.
inline void save_latency_table(const std::filesystem::path& path, const cost::latency_table& table) {
  write_file_atomically(path, latency_table_to_json(table).dump(2) + "\n");
}

inline cost::latency_table load_latency_table(const std::filesystem::path& path) {
  return latency_table_from_json(parse_json_file(path), path.string());
}

// Loads and checks that the table was measured for the space the caller searches.
inline cost::latency_table load_latency_table(const std::filesystem::path& path, std::string_view expected_space,
                                              const std::vector<std::vector<std::string>>& expected_choices) {
  auto table = load_latency_table(path);
  try {
    cost::check_same_space(table, expected_space, expected_choices);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
  return table;
}

// ------------------------------------------------------------------------------ the calibration record

inline nlohmann::json to_json(const cost::prediction_summary& s) {
  return {{"count", s.count},
          {"rmspe", s.rmspe},
          {"within_5", s.within_5},
          {"within_10", s.within_10},
          {"mean_bias", s.mean_bias}};
}

/// The record a calibrated table carries beside the fields every reader knows: how it was
/// calibrated, on which architectures (as text), and the per-op sums before the fit.
inline nlohmann::json calibration_to_json(const cost::latency_calibration& cal, std::uint64_t seed,
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
          {"before", to_json(cal.before)},
          {"after", to_json(cal.after)}};
}

/// What a table file's calibration record says, for a check: the sample to leave out and the
/// per-op model before the fit. Empty when the table was not calibrated.
template <class S>
struct calibration_record {
  std::vector<space::architecture<S>> architectures;
  std::vector<double> measured;  // their end-to-end medians when the table was built, ms
  std::optional<cost::additive_cost_model> uncalibrated;
  std::string description;  // "affine: measured = a * (per-op sum) + b ms, chosen on N architectures"
};

template <class S>
calibration_record<S> read_calibration_record(const std::filesystem::path& path, const cost::latency_table& table) {
  calibration_record<S> rec;
  const nlohmann::json doc = parse_json_file(path);
  const json_field root(doc, path.string());
  if (!root.has("calibration")) return rec;
  const auto cal = root["calibration"];
  const auto archs = cal["architectures"];
  for (std::size_t i = 0; i < archs.array_size(); ++i) {
    try {
      rec.architectures.push_back(space::parse_arch<S>(archs[i].string()));
    } catch (const space::arch_error& e) {
      archs[i].fail(std::string("is not an architecture of this space: ") + e.what());
    }
  }
  const auto measured = cal["measured"];
  if (measured.array_size() != rec.architectures.size())
    measured.fail("must have one time per architecture (" + std::to_string(rec.architectures.size()) + ")");
  for (std::size_t i = 0; i < rec.architectures.size(); ++i) {
    const double t = measured[i].number();
    if (!(t > 0.0)) measured[i].fail("must be a positive time in ms");
    rec.measured.push_back(t);
  }
  cost::additive_cost_model raw = table.model;
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

}  // namespace pcnas::io
