// Analytic costs of an architecture (MACs, parameters, activation bytes), summed
// from the compile-time per-(layer, choice) tables with the stem and the head.
#pragma once

#include <pcnas/cost/table.hpp>
#include <pcnas/space/arch.hpp>

#include <cstddef>

namespace pcnas::cost {

using space::op_cost;

/// The part of every architecture that does not depend on the choices.
template <class Space>
[[nodiscard]] constexpr op_cost fixed_cost() {
  return Space::stem_cost + Space::head_cost;
}

/// The cost of one architecture for one image, stem and head included.
template <class Space>
[[nodiscard]] constexpr op_cost arch_cost(const space::architecture<Space>& arch) {
  op_cost total = fixed_cost<Space>();
  for (std::size_t l = 0; l < Space::num_layers; ++l)
    total += Space::choice_costs[l][static_cast<std::size_t>(arch[l])];
  return total;
}

/// The architecture with the fewest (largest: the most) MACs in every layer; ties keep the
/// first choice. As costs are additive, the cheapest and the costliest architecture by MACs.
enum class extreme { smallest, largest };

template <class Space>
[[nodiscard]] constexpr space::architecture<Space> extreme_architecture(extreme which) {
  space::architecture<Space> arch{};
  for (std::size_t l = 0; l < Space::num_layers; ++l)
    for (std::size_t c = 1; c < Space::num_choices[l]; ++c) {
      const auto m = Space::choice_costs[l][c].macs;
      const auto best = Space::choice_costs[l][static_cast<std::size_t>(arch[l])].macs;
      if (which == extreme::smallest ? m < best : m > best) arch[l] = static_cast<int>(c);
    }
  return arch;
}

/// The range every architecture of the space falls in, by MACs.
template <class Space>
[[nodiscard]] constexpr op_cost min_macs_arch_cost() {
  return arch_cost<Space>(extreme_architecture<Space>(extreme::smallest));
}

template <class Space>
[[nodiscard]] constexpr op_cost max_macs_arch_cost() {
  return arch_cost<Space>(extreme_architecture<Space>(extreme::largest));
}

/// Which analytic cost an additive model counts.
enum class analytic_measure { macs, params, activation_bytes };

/// The analytic costs as a runtime additive model (in millions), so that a search can be
/// constrained by MACs or parameters exactly as by latency.
template <class Space>
[[nodiscard]] additive_cost_model analytic_model(analytic_measure measure = analytic_measure::macs) {
  const auto pick = [measure](const op_cost& c) {
    const auto v = measure == analytic_measure::macs     ? c.macs
                   : measure == analytic_measure::params ? c.params
                                                         : c.activation_bytes;
    return static_cast<double>(v) / 1e6;
  };
  additive_cost_model m;
  m.name = measure == analytic_measure::macs ? "macs" : measure == analytic_measure::params ? "params" : "activation_bytes";
  m.unit = measure == analytic_measure::activation_bytes ? "MB" : "M";
  m.fixed = pick(fixed_cost<Space>());
  m.per_layer.resize(Space::num_layers);
  for (std::size_t l = 0; l < Space::num_layers; ++l)
    for (std::size_t c = 0; c < Space::num_choices[l]; ++c) m.per_layer[l].push_back(pick(Space::choice_costs[l][c]));
  return m;
}

}  // namespace pcnas::cost
