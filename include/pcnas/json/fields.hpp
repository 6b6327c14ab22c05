// Reading JSON documents field by field with messages that name the file and the field
// ("table.json: layers[3].times[2] must be a finite non-negative number, got null"), so that a
// hand-edited or truncated file is reported precisely instead of as a bare type error.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include <pcnas/io/atomic_file.hpp>

namespace pcnas::io {

// Where a value sits: the source (a file name) and the path inside the document.
class json_field {
 public:
  json_field(const nlohmann::json& value, std::string source, std::string path = "")
      : value_(&value), source_(std::move(source)), path_(std::move(path)) {}

  const nlohmann::json& value() const noexcept { return *value_; }
  const std::string& path() const noexcept { return path_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(source_ + ": " + (path_.empty() ? std::string("the document") : path_) + " " + what);
  }

  json_field operator[](const char* key) const {
    if (!value_->is_object()) fail("must be an object");
    const auto it = value_->find(key);
    if (it == value_->end())
      throw std::runtime_error(source_ + ": missing key '" + child_path(key) + "'");
    return json_field(*it, source_, child_path(key));
  }
  json_field operator[](std::size_t index) const {
    if (!value_->is_array() || index >= value_->size())
      fail("has no element " + std::to_string(index));
    return json_field((*value_)[index], source_, path_ + "[" + std::to_string(index) + "]");
  }
  bool has(const char* key) const { return value_->is_object() && value_->contains(key); }

  std::size_t array_size() const {
    if (!value_->is_array()) fail("must be an array");
    return value_->size();
  }
  std::string string() const {
    if (!value_->is_string()) fail("must be a string, got " + value_->dump());
    return value_->get<std::string>();
  }
  double number() const {
    if (!value_->is_number()) fail("must be a number, got " + value_->dump());
    const double v = value_->get<double>();
    if (!std::isfinite(v)) fail("must be finite");
    return v;
  }
  double non_negative() const {
    if (!value_->is_number() || !std::isfinite(value_->get<double>()) || value_->get<double>() < 0.0)
      fail("must be a finite non-negative number, got " + value_->dump());
    return value_->get<double>();
  }
  std::int64_t integer() const {
    if (!value_->is_number_integer()) fail("must be an integer, got " + value_->dump());
    return value_->get<std::int64_t>();
  }
  // An integer in [lo, hi]: a field that the reader narrows (to int) or that must be positive
  // is checked here, when the file is read, not when the value is used much later.
  std::int64_t integer_in(std::int64_t lo, std::int64_t hi) const {
    if (!value_->is_number_integer() || value_->get<std::int64_t>() < lo || value_->get<std::int64_t>() > hi ||
        (value_->is_number_unsigned() && value_->get<std::uint64_t>() > static_cast<std::uint64_t>(hi)))
      fail("must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " + value_->dump());
    return value_->get<std::int64_t>();
  }
  std::uint64_t unsigned_integer() const {
    if (!value_->is_number_unsigned() && !(value_->is_number_integer() && value_->get<std::int64_t>() >= 0))
      fail("must be a non-negative integer, got " + value_->dump());
    return value_->get<std::uint64_t>();
  }

 private:
  std::string child_path(const char* key) const { return path_.empty() ? std::string(key) : path_ + "." + key; }

  const nlohmann::json* value_;
  std::string source_;
  std::string path_;
};

// Parses a whole file; a syntax error or a truncated file names the path and the parser's
// account of where it failed.
inline nlohmann::json parse_json_file(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(path.string() + ": not valid JSON: " + e.what());
  }
}

// A JSON document written atomically, pretty-printed.
inline void save_json(const std::filesystem::path& path, const nlohmann::json& doc) {
  write_file_atomically(path, doc.dump(2) + "\n");
}

}  // namespace pcnas::io
