// Pieces the training commands share: the Fashion-MNIST splits, the backend, architecture
// arguments (with the `smallest` and `largest` shortcuts), JSON files and timing.
#pragma once

#include "spaces.hpp"

#include <pcnas/cost/analytic.hpp>
#include <pcnas/data/dataset.hpp>
#include <pcnas/data/split.hpp>
#include <pcnas/io/atomic_file.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/space/arch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#ifdef PCNAS_CLI_WITH_EIGEN
#include <pcnas/backend/eigen.hpp>
#endif

namespace pcnas_cli {

/// The three splits: training, validation held out of the training set, test.
struct fmnist_data {
  pcnas::data::dataset train;
  pcnas::data::dataset val;
  pcnas::data::dataset test;
};

inline fmnist_data load_fmnist(const std::string& dir, std::size_t val_count, std::uint64_t seed) {
  const std::filesystem::path root = dir.empty() ? pcnas::data::default_data_dir() : std::filesystem::path(dir);
  auto full = pcnas::data::load_fashion_mnist(root, pcnas::data::split::train);
  auto test = pcnas::data::load_fashion_mnist(root, pcnas::data::split::test);
  if (val_count == 0 || val_count >= full.count)
    throw usage_error("--val must be between 1 and " + std::to_string(full.count - 1));
  auto parts = pcnas::data::split_train_val(full, val_count, seed);
  return {std::move(parts.train), std::move(parts.val), std::move(test)};
}

/// "smallest" / "largest" (by MACs, per layer), "random" or "random:SEED", or architecture text.
template <class S>
pcnas::space::architecture<S> parse_arch_arg(const std::string& text) {
  pcnas::space::architecture<S> arch{};
  const bool smallest = text == "smallest", largest = text == "largest";
  if (smallest || largest) {
    for (std::size_t l = 0; l < S::num_layers; ++l)
      for (std::size_t c = 1; c < S::num_choices[l]; ++c) {
        const auto m = S::choice_costs[l][c].macs, best = S::choice_costs[l][static_cast<std::size_t>(arch[l])].macs;
        if (smallest ? m < best : m > best) arch[l] = static_cast<int>(c);
      }
    return arch;
  }
  if (text.rfind("random", 0) == 0) {
    std::uint64_t seed = 0;
    if (text.size() > 7 && text[6] == ':') seed = std::stoull(text.substr(7));
    pcnas::rng r(seed);
    for (std::size_t l = 0; l < S::num_layers; ++l) arch[l] = static_cast<int>(r.uniform_index(S::num_choices[l]));
    return arch;
  }
  return pcnas::space::parse_arch<S>(text);
}

inline constexpr const char* arch_help =
    "Architecture: one token per layer (\"k3e6 zero k5e3 ...\"), or smallest, largest (by MACs), "
    "random or random:SEED";

#ifdef PCNAS_CLI_WITH_EIGEN
using cpu_backend = pcnas::backend::eigen::backend;
inline cpu_backend make_backend(int threads) {
  if (threads < 0) throw usage_error("--threads must be 0 (all cores) or positive");
  return cpu_backend({.threads = threads});
}
#endif

inline void write_json(const std::filesystem::path& path, const nlohmann::json& j) {
  pcnas::io::write_file_atomically(path, j.dump(2) + "\n");
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace pcnas_cli
