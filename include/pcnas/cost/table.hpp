// An additive cost model: cost(arch) = fixed + Σ_l per_layer[l][arch[l]]. Latency tables,
// MACs, parameters and roofline estimates all take this one runtime form, so the constraint
// and the search work with any of them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcnas::cost {

struct additive_cost_model {
  std::string name = "cost";  // what is counted: "latency", "macs", ...
  std::string unit;           // "ms", "MMAC", ...
  double fixed = 0.0;         // the part every architecture pays (stem, head)
  std::vector<std::vector<double>> per_layer;  // [layer][choice]

  std::size_t num_layers() const noexcept { return per_layer.size(); }
  std::size_t num_choices(std::size_t layer) const { return per_layer.at(layer).size(); }

  // Throws std::invalid_argument naming the first bad entry: an empty model or layer, or a
  // non-finite cost. Negative costs are allowed (a calibrated table may have them).
  void validate() const {
    if (!std::isfinite(fixed))
      throw std::invalid_argument("cost model '" + name + "': the fixed cost is not finite");
    if (per_layer.empty())
      throw std::invalid_argument("cost model '" + name + "' has no layers");
    for (std::size_t l = 0; l < per_layer.size(); ++l) {
      if (per_layer[l].empty())
        throw std::invalid_argument("cost model '" + name + "': layer " + std::to_string(l) +
                                    " has no choices");
      for (std::size_t c = 0; c < per_layer[l].size(); ++c)
        if (!std::isfinite(per_layer[l][c]))
          throw std::invalid_argument("cost model '" + name + "': layer " + std::to_string(l) +
                                      " choice " + std::to_string(c) + " is not finite");
    }
  }

  // The cost of a complete architecture. A wrong length or an out-of-range choice names the
  // layer and the valid range.
  double predict(std::span<const int> arch) const {
    if (arch.size() != per_layer.size())
      throw std::invalid_argument("cost model '" + name + "': the architecture has " +
                                  std::to_string(arch.size()) + " layers, the model has " +
                                  std::to_string(per_layer.size()));
    // Summed in the order min_total() uses, so that the cheapest architecture costs exactly
    // min_total() and a limit set to it is met.
    double sum = fixed;
    for (std::size_t l = 0; l < arch.size(); ++l) sum += at(l, arch[l]);
    return sum;
  }

  // Σ over the layers a prefix fixes (no fixed part): the building block of prefix bounds.
  double prefix_sum(std::span<const int> prefix) const {
    if (prefix.size() > per_layer.size())
      throw std::invalid_argument("cost model '" + name + "': a prefix of " +
                                  std::to_string(prefix.size()) + " layers is longer than the " +
                                  std::to_string(per_layer.size()) + " layers of the model");
    double sum = 0.0;
    for (std::size_t l = 0; l < prefix.size(); ++l) sum += at(l, prefix[l]);
    return sum;
  }

  double at(std::size_t layer, int choice) const {
    const auto& row = per_layer.at(layer);
    if (choice < 0 || static_cast<std::size_t>(choice) >= row.size())
      throw std::out_of_range("cost model '" + name + "': layer " + std::to_string(layer) +
                              " has choices 0.." + std::to_string(row.size() - 1) + ", got " +
                              std::to_string(choice));
    return row[static_cast<std::size_t>(choice)];
  }

  double layer_min(std::size_t layer) const {
    const auto& row = per_layer.at(layer);
    return *std::min_element(row.begin(), row.end());
  }
  double layer_max(std::size_t layer) const {
    const auto& row = per_layer.at(layer);
    return *std::max_element(row.begin(), row.end());
  }

  // The cheapest and dearest complete architectures.
  double min_total() const {
    double sum = fixed;
    for (std::size_t l = 0; l < per_layer.size(); ++l) sum += layer_min(l);
    return sum;
  }
  double max_total() const {
    double sum = fixed;
    for (std::size_t l = 0; l < per_layer.size(); ++l) sum += layer_max(l);
    return sum;
  }
};

// A model that costs nothing: the constraint an unconstrained search runs under.
inline additive_cost_model zero_cost_model(const std::vector<std::size_t>& choices_per_layer) {
  additive_cost_model model{.name = "none", .unit = "", .fixed = 0.0, .per_layer = {}};
  for (auto n : choices_per_layer) model.per_layer.emplace_back(n, 0.0);
  return model;
}

}  // namespace pcnas::cost
