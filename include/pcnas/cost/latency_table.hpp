// A measured latency table: per-(layer, choice) times in milliseconds with the identity of the
// space it was measured for and how it was measured; plus the check of its predictions against
// end-to-end measurements, and a linear calibration fitted on them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <pcnas/cost/table.hpp>
#include <pcnas/version.hpp>

namespace pcnas::cost {

// How the times were obtained; a table is only meaningful on the setup it records.
struct latency_provenance {
  std::string device;           // "Zen 3, 2 cores", "NVIDIA H200"
  std::string backend;          // "eigen", "cuda", "libtorch 2.1"
  int batch = 1;
  int threads = 1;
  std::string date;             // ISO 8601
  std::string library_version = PCNAS_VERSION_STRING;
  int repeats = 0;              // timed runs per entry (the entry is their median)
  int warmup = 0;               // untimed runs before them
};

struct latency_table {
  std::string space;                               // the space's name, e.g. "fmnist"
  std::vector<std::vector<std::string>> choices;   // [layer][choice] names, e.g. "k3e6", "zero"
  additive_cost_model model{.name = "latency", .unit = "ms", .fixed = 0.0, .per_layer = {}};
  latency_provenance provenance;

  // Shapes agree with the choice names, times are finite and non-negative. Throws
  // std::invalid_argument naming the first offending entry.
  void validate() const {
    if (space.empty()) throw std::invalid_argument("latency table: the space name is empty");
    if (choices.size() != model.per_layer.size())
      throw std::invalid_argument("latency table for '" + space + "': " + std::to_string(choices.size()) +
                                  " layers of choice names but " + std::to_string(model.per_layer.size()) +
                                  " layers of times");
    if (!std::isfinite(model.fixed) || model.fixed < 0.0)
      throw std::invalid_argument("latency table for '" + space +
                                  "': the fixed time must be finite and non-negative, got " +
                                  std::to_string(model.fixed));
    for (std::size_t l = 0; l < choices.size(); ++l) {
      if (choices[l].size() != model.per_layer[l].size())
        throw std::invalid_argument("latency table for '" + space + "': layer " + std::to_string(l) + " has " +
                                    std::to_string(choices[l].size()) + " choice names but " +
                                    std::to_string(model.per_layer[l].size()) + " times");
      if (choices[l].empty())
        throw std::invalid_argument("latency table for '" + space + "': layer " + std::to_string(l) +
                                    " has no choices");
      for (std::size_t c = 0; c < choices[l].size(); ++c) {
        const double t = model.per_layer[l][c];
        if (!std::isfinite(t) || t < 0.0)
          throw std::invalid_argument("latency table for '" + space + "': layer " + std::to_string(l) +
                                      " choice '" + choices[l][c] +
                                      "' must have a finite non-negative time, got " + std::to_string(t));
      }
    }
  }
};

namespace detail {
inline std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i != 0) s += ' ';
    s += names[i];
  }
  return s;
}
}  // namespace detail

// A table measured for another space must not drive a search: compares the space name and
// every layer's choice names, and names the first difference and what was expected.
inline void check_same_space(const latency_table& table, std::string_view expected_space,
                             const std::vector<std::vector<std::string>>& expected_choices) {
  if (table.space != expected_space)
    throw std::invalid_argument("latency table is for space '" + table.space + "', expected '" +
                                std::string(expected_space) + "'");
  if (table.choices.size() != expected_choices.size())
    throw std::invalid_argument("latency table for '" + table.space + "' has " +
                                std::to_string(table.choices.size()) + " layers, expected " +
                                std::to_string(expected_choices.size()));
  for (std::size_t l = 0; l < expected_choices.size(); ++l)
    if (table.choices[l] != expected_choices[l])
      throw std::invalid_argument("latency table for '" + table.space + "': layer " + std::to_string(l) +
                                  " has choices [" + detail::join_names(table.choices[l]) + "], expected [" +
                                  detail::join_names(expected_choices[l]) + "]");
}

// How well predictions match end-to-end measurements. Relative errors (predicted − measured) /
// measured; the shares are in [0, 1]; a positive mean_bias means the table over-predicts.
/// The median (the mean of the middle two for an even count); 0 for none.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct prediction_summary {
  std::size_t count = 0;
  double rmspe = 0.0;      // root mean square of the relative errors
  double within_5 = 0.0;   // share with |relative error| <= 5 %
  double within_10 = 0.0;  // share with |relative error| <= 10 %
  double mean_bias = 0.0;  // mean signed relative error
};

namespace detail {
inline void check_pairs(std::span<const double> predicted, std::span<const double> measured,
                        std::size_t at_least, const char* what) {
  if (predicted.size() != measured.size())
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(predicted.size()) + " predictions but " +
                                std::to_string(measured.size()) + " measurements");
  if (predicted.size() < at_least)
    throw std::invalid_argument(std::string(what) + ": needs at least " + std::to_string(at_least) +
                                " pairs, got " + std::to_string(predicted.size()));
  for (std::size_t i = 0; i < predicted.size(); ++i)
    if (!std::isfinite(predicted[i]) || !std::isfinite(measured[i]) || !(measured[i] > 0.0))
      throw std::invalid_argument(std::string(what) + ": pair " + std::to_string(i) +
                                  " needs a finite prediction and a finite positive measurement");
}
}  // namespace detail

inline prediction_summary summarize_predictions(std::span<const double> predicted,
                                                std::span<const double> measured) {
  detail::check_pairs(predicted, measured, 1, "summarize_predictions");
  prediction_summary s;
  s.count = predicted.size();
  double squares = 0.0, bias = 0.0;
  std::size_t in5 = 0, in10 = 0;
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    const double e = (predicted[i] - measured[i]) / measured[i];
    squares += e * e;
    bias += e;
    // A hair of slack so that an error of exactly 5 % (0.05 in decimal) counts as within.
    in5 += std::abs(e) <= 0.05 + 1e-12 ? 1 : 0;
    in10 += std::abs(e) <= 0.10 + 1e-12 ? 1 : 0;
  }
  const double n = static_cast<double>(s.count);
  s.rmspe = std::sqrt(squares / n);
  s.mean_bias = bias / n;
  s.within_5 = static_cast<double>(in5) / n;
  s.within_10 = static_cast<double>(in10) / n;
  return s;
}

// How much slower the machine runs the same architectures now than when they were measured
// before: the median over them of now / then (1: the same speed). A shared machine's speed
// wanders by tens of percent over minutes (other tenants' load on the shared caches and the
// clock), uniformly enough across architectures that a few measured at both times say how a
// table's times carry over to now.
inline double speed_ratio(std::span<const double> then_ms, std::span<const double> now_ms) {
  detail::check_pairs(then_ms, now_ms, 1, "speed_ratio");
  std::vector<double> ratios;
  for (std::size_t i = 0; i < then_ms.size(); ++i) {
    if (!(then_ms[i] > 0.0))
      throw std::invalid_argument("speed_ratio: reference " + std::to_string(i) + " needs a positive time then");
    ratios.push_back(now_ms[i] / then_ms[i]);
  }
  return median(std::move(ratios));
}

// measured ≈ a · predicted + b, by least squares. A table measured op by op misses the fusion
// and caching of a whole network; a linear correction fitted on a few end-to-end runs is the
// usual fix, and stays additive: a · (fixed + Σ t) + b = (a · fixed + b) + Σ a · t.
struct linear_calibration {
  double a = 1.0;
  double b = 0.0;
};

inline linear_calibration fit_calibration(std::span<const double> predicted, std::span<const double> measured) {
  detail::check_pairs(predicted, measured, 2, "fit_calibration");
  const double n = static_cast<double>(predicted.size());
  double mp = 0.0, mm = 0.0;
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    mp += predicted[i];
    mm += measured[i];
  }
  mp /= n;
  mm /= n;
  double cov = 0.0, var = 0.0;
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    cov += (predicted[i] - mp) * (measured[i] - mm);
    var += (predicted[i] - mp) * (predicted[i] - mp);
  }
  if (!(var > 0.0))
    throw std::invalid_argument("fit_calibration: all predictions are equal; a slope cannot be fitted");
  linear_calibration c;
  c.a = cov / var;
  c.b = mm - c.a * mp;
  return c;
}

inline double apply_calibration(const linear_calibration& c, double predicted) { return c.a * predicted + c.b; }

inline additive_cost_model apply_calibration(const linear_calibration& c, additive_cost_model model) {
  const double scaled = c.a * model.fixed;
  model.fixed = scaled + c.b;
  // A fit on the boundary fixed >= 0 lands on zero up to rounding; keep the exact zero.
  if (model.fixed < 0.0 && -model.fixed <= 1e-12 * (std::abs(scaled) + std::abs(c.b))) model.fixed = 0.0;
  for (auto& row : model.per_layer)
    for (auto& t : row) t *= c.a;
  return model;
}

// One way of correcting the per-op sum, and how well it predicted architectures it was not
// fitted on.
struct calibration_candidate {
  std::string form;              // "none", "scale" or "affine"
  linear_calibration fit;  // fitted on the whole sample
  double loo_rmspe = 0.0;        // leave-one-out RMSPE on the calibration sample
};

// A table corrected against end-to-end measurements: measured ≈ a · (per-op sum) + b, applied to
// the table as a · fixed + b and a · per-layer, so that the model stays additive. Three forms
// compete: none (a = 1, b = 0), scale (b = 0) and affine; the one that predicts the calibration
// sample best when each architecture is left out of its own fit wins, so that a correction is
// applied only where the per-op sum is biased by more than the fit's own noise.
struct latency_calibration {
  linear_calibration fit;  // the winner's a and b
  // "none", "scale", "affine", or "affine with fixed >= 0" (when the free line would make the
  // fixed part negative, the best line on that boundary, b = -a · fixed).
  std::string method;
  std::vector<calibration_candidate> candidates;  // every form compared
  additive_cost_model uncalibrated;         // the per-op sums before the fit
  std::vector<std::vector<int>> architectures;    // the calibration sample
  std::vector<double> measured;                   // its end-to-end medians, ms
  prediction_summary before;  // the per-op sum on the calibration sample
  prediction_summary after;   // the calibrated table on the same sample (in-sample)
};

}  // namespace pcnas::cost
