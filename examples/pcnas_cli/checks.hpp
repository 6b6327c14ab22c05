// Validators for numeric options, run on the text before CLI11 converts it: CLI11 reads "-1"
// into an unsigned option as 2^64 - 1 and saturates an overflow silently, so a whole number is
// checked here as digits only, within its range, and a real number as finite and in range.
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>

namespace pcnas_cli {

/// A user's text shown back in a message, cut short: an argument of 100 kB is not echoed whole.
inline std::string abbreviated(const std::string& text, std::size_t limit = 60) {
  if (text.size() <= limit) return "'" + text + "'";
  return "'" + text.substr(0, limit) + "...' (" + std::to_string(text.size()) + " characters)";
}

/// A whole number in [lo, hi], written in decimal digits only (no sign, no exponent).
inline CLI::Validator whole_number(std::uint64_t lo, std::uint64_t hi) {
  const std::string range = "a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        std::uint64_t v = 0;
        const char* first = text.data();
        const char* last = first + text.size();
        const auto [end, ec] = std::from_chars(first, last, v);
        const bool digits = !text.empty() && text.front() != '+' && text.front() != '-';
        if (!digits || ec == std::errc::invalid_argument || end != last)
          return "expected " + range + ", got " + abbreviated(text);
        if (ec == std::errc::result_out_of_range || v < lo || v > hi)
          return "expected " + range + ", got " + abbreviated(text) + " (out of range)";
        return {};
      },
      "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", "whole_number");
}

/// A finite real number in [lo, hi] (lo excluded when open_low): "nan", "inf" and "1e999" fail.
inline CLI::Validator real_number(double lo, double hi, bool open_low) {
  const auto text_of = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::string(buf);
  };
  const std::string range = std::string("a finite number ") + (open_low ? "above " : "from ") + text_of(lo) +
                            (open_low ? " up to " : " to ") + text_of(hi);
  return CLI::Validator(
      [lo, hi, open_low, range](std::string& text) -> std::string {
        double v = 0.0;
        const char* first = text.data();
        const char* last = first + text.size();
        const auto [end, ec] = std::from_chars(first, last, v);
        if (text.empty() || ec != std::errc() || end != last || !std::isfinite(v))
          return "expected " + range + ", got " + abbreviated(text);
        if (v > hi || v < lo || (open_low && v == lo)) return "expected " + range + ", got " + abbreviated(text);
        return {};
      },
      "NUMBER", "real_number");
}

}  // namespace pcnas_cli
