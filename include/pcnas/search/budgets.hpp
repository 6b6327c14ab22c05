// How much work a search gets: PC-NAS's default pool size and completions, the number of
// evaluations they imply (the baselines' equal-cost budget), and named presets of a whole run
// (supernet training, search, retraining, latency measurement) on Fashion-MNIST-sized data.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace pcnas::search {

inline constexpr std::size_t default_pool_size = 5;    // P (docs/method.md)
inline constexpr std::size_t default_completions = 8;  // S

// The number of evaluations the paper's procedure makes, Σ_l |pool_l| · N_l · S with the pool
// growing 1, min(P, N_0), ... — ignoring the constraint, which only removes candidates. The
// default budget of evolution and random search, so that baselines get as many evaluations.
inline std::size_t pc_nas_nominal_evaluations(const std::vector<std::size_t>& choices_per_layer,
                                              std::size_t pool_size = default_pool_size,
                                              std::size_t completions = default_completions) {
  std::size_t total = 0, pool = 1;
  for (std::size_t n : choices_per_layer) {
    total += pool * n * completions;
    pool = std::min(pool_size, pool * n);
  }
  return total;
}

/// A whole run's budget. Steps are batches of 128; the baselines get as many training steps and
/// pc_nas_nominal_evaluations(space, pool, completions) evaluations.
struct run_budget {
  std::string_view name;
  std::size_t steps;                  // supernet training steps
  std::size_t pool;                   // P
  std::size_t completions;            // S
  std::size_t validation_images;      // held-out images per evaluation
  std::size_t recalibration_batches;  // BN recalibration batches per evaluation
  int retrain_epochs;                 // retraining the architecture found from scratch
  std::size_t latency_repeats;        // timed rounds per latency measurement
};

/// quick fits in about ten minutes on two cores; medium (5 supernet epochs of 55,000 images) in
/// about an hour per method; full uses the method's defaults (P = 5, S = 8, 2,000 held-out
/// images, 10 supernet epochs) and retrains for 20 epochs.
inline constexpr std::array<run_budget, 3> run_budgets{{
    {"quick", 600, 3, 2, 500, 2, 2, 10},
    {"medium", 2145, 5, 4, 1000, 2, 15, 21},
    {"full", 4290, default_pool_size, default_completions, 2000, 4, 20, 21},
}};

inline std::optional<run_budget> find_run_budget(std::string_view name) {
  for (const auto& b : run_budgets)
    if (b.name == name) return b;
  return std::nullopt;
}

}  // namespace pcnas::search
