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
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <pcnas/cost/latency_table.hpp>
#include <pcnas/io/atomic_file.hpp>
#include <pcnas/io/json_fields.hpp>

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

}  // namespace pcnas::io
