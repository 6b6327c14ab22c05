// The learning rate of the whole search: one cosine decay over the full training budget
// (warm-up and every interval share it; no warm restart at pool steps).
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>
#include <stdexcept>

namespace pcnas::search {

struct cosine_schedule {
  double base_lr = 0.1;
  double final_lr = 0.0;
  std::size_t total_steps = 1;

  // The rate for step `step` (0-based): base_lr at 0, falling to final_lr at total_steps.
  double operator()(std::size_t step) const {
    if (total_steps == 0) throw std::invalid_argument("cosine_schedule: total_steps must be at least 1");
    const double t = static_cast<double>(step < total_steps ? step : total_steps) / static_cast<double>(total_steps);
    return final_lr + 0.5 * (base_lr - final_lr) * (1.0 + std::cos(std::numbers::pi * t));
  }
};

}  // namespace pcnas::search
