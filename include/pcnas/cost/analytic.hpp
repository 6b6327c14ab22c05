// Analytic costs of an architecture (MACs, parameters, activation bytes), summed
// from the compile-time per-(layer, choice) tables with the stem and the head.
#pragma once

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

/// The cost of the cheapest (by MACs) and the most expensive choice of each
/// layer, summed: the range every architecture of the space falls in.
template <class Space>
[[nodiscard]] constexpr op_cost min_macs_arch_cost() {
  op_cost total = fixed_cost<Space>();
  for (std::size_t l = 0; l < Space::num_layers; ++l) {
    op_cost best = Space::choice_costs[l][0];
    for (std::size_t c = 1; c < Space::num_choices[l]; ++c)
      if (Space::choice_costs[l][c].macs < best.macs) best = Space::choice_costs[l][c];
    total += best;
  }
  return total;
}

template <class Space>
[[nodiscard]] constexpr op_cost max_macs_arch_cost() {
  op_cost total = fixed_cost<Space>();
  for (std::size_t l = 0; l < Space::num_layers; ++l) {
    op_cost best = Space::choice_costs[l][0];
    for (std::size_t c = 1; c < Space::num_choices[l]; ++c)
      if (Space::choice_costs[l][c].macs > best.macs) best = Space::choice_costs[l][c];
    total += best;
  }
  return total;
}

}  // namespace pcnas::cost
