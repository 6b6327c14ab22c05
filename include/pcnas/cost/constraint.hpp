// A hard constraint `cost(arch) <= limit` over an additive cost model, with exact feasibility
// of any prefix, exact counts and exactly uniform sampling of the feasible completions of a
// prefix — dynamic programming over the layers, never a rejection loop.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <pcnas/cost/count128.hpp>
#include <pcnas/cost/table.hpp>
#include <pcnas/rng.hpp>

namespace pcnas::cost {

// How costs become integers. The counting DP needs integer costs: each layer's cost above its
// cheapest choice is divided by `resolution` and rounded UP, the budget above the cheapest
// architecture is rounded DOWN. So whatever the constraint accepts costs at most `limit`
// (up to 1e-9 of a grid step per layer, the tolerance that lets costs lying on the grid be
// decided exactly despite floating-point division), and an architecture within about
// layers × resolution below the limit may be refused. With every cost on the grid (integer
// MACs and resolution 1, times in µs and resolution 1 µs) the decision is exact.
struct constraint_options {
  double limit = std::numeric_limits<double>::infinity();  // in the model's unit
  double resolution = 0.0;       // grid step in the model's unit; 0 picks budget / grid_steps
  std::size_t grid_steps = 1 << 14;  // grid steps across the budget when resolution is 0
  // The DP holds (layers + 1) × (budget steps + 1) counts of 16 bytes; a finer grid than this
  // is refused with a message rather than exhausting memory.
  std::size_t max_cells = std::size_t{1} << 23;
};

// What any completion of a prefix can cost, and whether one of them meets the limit.
struct prefix_bounds {
  double min_total = 0.0;  // the cheapest completion: the prefix's cost plus each later layer's minimum
  double max_total = 0.0;  // the dearest completion, ignoring the limit
  bool feasible = false;   // some completion meets the limit
  count128 completions;    // how many completions meet the limit
};

class constraint {
 public:
  // Everything is feasible: the same interface for an unconstrained search.
  static constraint unconstrained(const std::vector<std::size_t>& choices_per_layer) {
    return constraint(zero_cost_model(choices_per_layer), constraint_options{});
  }

  // Throws std::invalid_argument when the model is malformed, or when the limit is below the
  // cheapest architecture (the message states that smallest reachable value).
  constraint(additive_cost_model model, constraint_options options)
      : model_(std::move(model)), options_(options) {
    model_.validate();
    if (std::isnan(options_.limit))
      throw std::invalid_argument("constraint on '" + model_.name + "': the limit is NaN");
    if (!(options_.resolution >= 0.0) || !std::isfinite(options_.resolution))
      throw std::invalid_argument("constraint on '" + model_.name +
                                  "': the resolution must be a finite non-negative number");
    const std::size_t layers = model_.num_layers();
    const double min_total = model_.min_total();
    const double max_total = model_.max_total();
    // A limit a rounding error below the cheapest architecture (0.1 · 15 against a sum of
    // tenths) is meant to admit it; the tolerance is the grid's.
    const double tolerance =
        std::max(1e-9 * options_.resolution, 1e-12 * std::max(1.0, std::abs(min_total)));
    if (options_.limit < min_total - tolerance)
      throw std::invalid_argument("constraint on '" + model_.name + "': no architecture meets " +
                                  format(options_.limit) + unit_suffix() +
                                  "; the smallest reachable value is " + format(min_total) +
                                  unit_suffix());
    const bool everything_fits = options_.limit >= max_total;

    resolution_ = options_.resolution;
    if (resolution_ == 0.0) {
      const double span = everything_fits ? max_total - min_total : options_.limit - min_total;
      const double steps = static_cast<double>(options_.grid_steps == 0 ? 1 : options_.grid_steps);
      resolution_ = span > 0.0 ? span / steps : 1.0;
      if (!(resolution_ > 0.0)) resolution_ = 1.0;  // span below the smallest double step
    }

    // Grid units of each choice above its layer's cheapest one, before capping.
    std::vector<std::vector<double>> raw(layers);
    double sum_max_units = 0.0;
    for (std::size_t l = 0; l < layers; ++l) {
      const double floor_cost = model_.layer_min(l);
      double row_max = 0.0;
      for (double c : model_.per_layer[l]) {
        raw[l].push_back(ceil_on_grid((c - floor_cost) / resolution_));
        row_max = std::max(row_max, raw[l].back());
      }
      sum_max_units += row_max;
    }
    const double budget_units =
        everything_fits
            ? sum_max_units
            : std::min(sum_max_units,
                       std::max(0.0, floor_on_grid((options_.limit - min_total) / resolution_)));
    const double cells = (static_cast<double>(layers) + 1.0) * (budget_units + 1.0);
    if (!(cells <= static_cast<double>(options_.max_cells)))
      throw std::invalid_argument(
          "constraint on '" + model_.name + "': a resolution of " + format(resolution_) +
          unit_suffix() + " needs " + format(cells) + " DP cells, more than max_cells = " +
          std::to_string(options_.max_cells) + "; choose a coarser resolution");
    budget_ = static_cast<std::int64_t>(budget_units);

    // A choice dearer than the whole budget can never be taken: capping it at budget + 1 keeps
    // the integers small without changing any decision.
    units_.resize(layers);
    for (std::size_t l = 0; l < layers; ++l)
      for (double u : raw[l])
        units_[l].push_back(u > static_cast<double>(budget_) ? budget_ + 1
                                                              : static_cast<std::int64_t>(u));

    // counts_[l][b]: completions of layers l..L-1 whose units sum to at most b.
    const std::size_t width = static_cast<std::size_t>(budget_) + 1;
    counts_.assign((layers + 1) * width, count128{});
    for (std::size_t b = 0; b < width; ++b) counts_[layers * width + b] = count128{1};
    for (std::size_t l = layers; l-- > 0;) {
      for (std::size_t b = 0; b < width; ++b) {
        count128 total;
        for (std::int64_t u : units_[l])
          if (u <= static_cast<std::int64_t>(b))
            total += counts_[(l + 1) * width + b - static_cast<std::size_t>(u)];
        counts_[l * width + b] = total;
      }
    }
  }

  const additive_cost_model& model() const noexcept { return model_; }
  double limit() const noexcept { return options_.limit; }
  double resolution() const noexcept { return resolution_; }
  // The budget above the cheapest architecture, in grid steps, and each choice's grid cost:
  // what the decisions are made on, exposed so that a checkpoint can tell two constraints apart.
  std::int64_t budget_units() const noexcept { return budget_; }
  const std::vector<std::vector<std::int64_t>>& unit_costs() const noexcept { return units_; }
  std::size_t num_layers() const noexcept { return model_.num_layers(); }
  std::size_t num_choices(std::size_t layer) const { return model_.num_choices(layer); }
  std::vector<std::size_t> choices_per_layer() const {
    std::vector<std::size_t> out;
    for (const auto& row : model_.per_layer) out.push_back(row.size());
    return out;
  }

  // Whether some completion of `prefix` (any length up to the number of layers; a complete
  // architecture is its own only completion) meets the limit.
  bool is_feasible(std::span<const int> prefix) const { return remaining(prefix) >= 0; }

  prefix_bounds bounds(std::span<const int> prefix) const {
    prefix_bounds out;
    const double fixed_part = model_.fixed + model_.prefix_sum(prefix);
    out.min_total = fixed_part;
    out.max_total = fixed_part;
    for (std::size_t l = prefix.size(); l < num_layers(); ++l) {
      out.min_total += model_.layer_min(l);
      out.max_total += model_.layer_max(l);
    }
    out.completions = count_completions(prefix);
    out.feasible = !out.completions.is_zero();
    return out;
  }

  // The number of feasible completions of `prefix`; of the empty prefix, the feasible space.
  count128 count_completions(std::span<const int> prefix) const {
    const std::int64_t r = remaining(prefix);
    if (r < 0) return count128{};
    return count(prefix.size(), r);
  }
  count128 count_feasible() const { return count(0, budget_); }

  // A complete architecture drawn exactly uniformly among the feasible completions of
  // `prefix`: layer by layer, choice c with probability count(rest | c) / count(rest). Draws
  // one integer per remaining layer, so equal prefixes and equal rng states give equal results.
  std::vector<int> complete(std::span<const int> prefix, rng& r) const {
    std::int64_t budget = remaining(prefix);
    if (budget < 0)
      throw std::invalid_argument("constraint on '" + model_.name + "': the prefix " +
                                  to_text(prefix) + " has no completion within " +
                                  format(options_.limit) + unit_suffix() +
                                  "; its cheapest completion costs " +
                                  format(bounds(prefix).min_total) + unit_suffix());
    std::vector<int> arch(prefix.begin(), prefix.end());
    for (std::size_t l = prefix.size(); l < num_layers(); ++l) {
      const int c = draw_choice(l, budget, r);
      budget -= units_[l][static_cast<std::size_t>(c)];
      arch.push_back(c);
    }
    return arch;
  }

  std::vector<int> sample(rng& r) const { return complete(std::span<const int>{}, r); }

  // The nearest feasible architecture to `arch` in one left-to-right pass: each layer keeps its
  // choice while the prefix stays feasible; a choice that would break it (or is out of range)
  // is redrawn uniformly over the feasible completions. Always ends feasible, never loops.
  std::vector<int> repair(std::span<const int> arch, rng& r) const {
    if (arch.size() != num_layers())
      throw std::invalid_argument("constraint on '" + model_.name + "': repair needs " +
                                  std::to_string(num_layers()) + " layers, got " +
                                  std::to_string(arch.size()));
    std::vector<int> out;
    out.reserve(arch.size());
    std::int64_t budget = budget_;
    for (std::size_t l = 0; l < num_layers(); ++l) {
      const int wanted = arch[l];
      int c = wanted;
      if (wanted < 0 || static_cast<std::size_t>(wanted) >= units_[l].size() ||
          units_[l][static_cast<std::size_t>(wanted)] > budget)
        c = draw_choice(l, budget, r);
      budget -= units_[l][static_cast<std::size_t>(c)];
      out.push_back(c);
    }
    return out;
  }

 private:
  // Budget left after `prefix`, in grid steps; negative when the prefix is infeasible.
  std::int64_t remaining(std::span<const int> prefix) const {
    if (prefix.size() > num_layers())
      throw std::invalid_argument("constraint on '" + model_.name + "': a prefix of " +
                                  std::to_string(prefix.size()) + " layers is longer than the " +
                                  std::to_string(num_layers()) + " layers of the model");
    std::int64_t budget = budget_;
    for (std::size_t l = 0; l < prefix.size(); ++l) {
      (void)model_.at(l, prefix[l]);  // range check with the model's message
      budget -= units_[l][static_cast<std::size_t>(prefix[l])];
    }
    return budget;
  }

  const count128& count(std::size_t layer, std::int64_t budget) const {
    return counts_[layer * (static_cast<std::size_t>(budget_) + 1) + static_cast<std::size_t>(budget)];
  }

  int draw_choice(std::size_t layer, std::int64_t budget, rng& r) const {
    count128 pick = uniform_below(r, count(layer, budget));
    const auto& row = units_[layer];
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (row[c] > budget) continue;
      const count128& w = count(layer + 1, budget - row[c]);
      if (pick < w) return static_cast<int>(c);
      pick -= w;
    }
    // Unreachable: the counts of the choices sum to count(layer, budget).
    throw std::logic_error("pcnas::cost::constraint: inconsistent DP counts");
  }

  static double ceil_on_grid(double x) {
    const double f = std::floor(x);
    return x - f <= 1e-9 ? f : f + 1.0;
  }
  static double floor_on_grid(double x) { return std::floor(x + 1e-9); }

  std::string unit_suffix() const { return model_.unit.empty() ? "" : " " + model_.unit; }
  static std::string format(double v) {
    std::ostringstream out;
    out.precision(10);
    out << v;
    return out.str();
  }
  static std::string to_text(std::span<const int> prefix) {
    std::string s = "[";
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      if (i != 0) s += ',';
      s += std::to_string(prefix[i]);
    }
    s += ']';
    return s;
  }

  additive_cost_model model_;
  constraint_options options_;
  double resolution_ = 1.0;
  std::int64_t budget_ = 0;
  std::vector<std::vector<std::int64_t>> units_;
  std::vector<count128> counts_;
};

}  // namespace pcnas::cost
