// The options that determine a run's result, stored beside its output (DIR/options.json): a
// resumed run must be the same run, or its result would carry labels it was not made under.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include <pcnas/json/fields.hpp>

namespace pcnas::io {

/// A run resumed with options other than those it was started with.
class options_mismatch : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Refuses when `file` holds other values than `now` for any of now's keys, naming each
/// difference ("seed 0 then, 7 now"); a key missing from the file counts as "(not given)".
inline void check_same_options(const std::filesystem::path& file, const nlohmann::json& now) {
  const nlohmann::json then = parse_json_file(file);
  std::string differences;
  for (const auto& [key, value] : now.items()) {
    const auto it = then.find(key);
    const nlohmann::json earlier = it == then.end() ? nlohmann::json() : *it;
    if (earlier == value) continue;
    const auto text = [](const nlohmann::json& v) { return v.is_null() ? std::string("(not given)") : v.dump(); };
    differences += (differences.empty() ? "" : ", ") + key + " " + text(earlier) + " then, " + text(value) + " now";
  }
  if (!differences.empty())
    throw options_mismatch(file.parent_path().string() + " holds a run with other options (" + differences +
                           "); resume it with the options it was started with (see " + file.string() +
                           "), or choose another output directory");
}

/// The value, or null when it is the "not given" default.
template <class T>
nlohmann::json given_or_null(bool given, const T& value) {
  return given ? nlohmann::json(value) : nlohmann::json();
}

}  // namespace pcnas::io
