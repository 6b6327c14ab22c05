// Pieces the training commands share: the Fashion-MNIST splits, the backend, architecture
// arguments (with the `smallest` and `largest` shortcuts), JSON files and timing.
#pragma once

#include "checks.hpp"
#include "spaces.hpp"

#include <pcnas/cost/analytic.hpp>
#include <pcnas/cost/latency_table.hpp>
#include <pcnas/data/dataset.hpp>
#include <pcnas/data/split.hpp>
#include <pcnas/io/atomic_file.hpp>
#include <pcnas/json/fields.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/space/arch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

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

/// `holdout` says where val_count comes from ("--val", or the search's fixed split), so that a
/// training set too small for it is reported against the right cause.
inline fmnist_data load_fmnist(const std::string& dir, std::size_t val_count, std::uint64_t seed,
                               const std::string& holdout = "--val") {
  const std::filesystem::path root = dir.empty() ? pcnas::data::default_data_dir() : std::filesystem::path(dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec))
    throw usage_error((dir.empty() ? std::string("the Fashion-MNIST directory ") : std::string("--data ")) +
                      root.string() + ": " + (std::filesystem::exists(root, ec) ? "is not a directory" : "no such directory") +
                      (dir.empty() ? " (install dataset-fashion-mnist, set PCNAS_DATA_DIR or pass --data DIR)" : ""));
  auto full = pcnas::data::load_fashion_mnist(root, pcnas::data::split::train);
  auto test = pcnas::data::load_fashion_mnist(root, pcnas::data::split::test);
  if (test.count == 0)
    throw usage_error("the test set in " + root.string() + " holds no images: test accuracy could not be measured");
  if (val_count == 0 || val_count >= full.count)
    throw usage_error("the training set in " + root.string() + " holds " + std::to_string(full.count) + " images; " +
                      holdout + " holds " + std::to_string(val_count) +
                      " of them out for validation, which must be at least 1 and leave some to train on");
  auto parts = pcnas::data::split_train_val(full, val_count, seed);
  return {std::move(parts.train), std::move(parts.val), std::move(test)};
}

/// "smallest" / "largest" (by MACs, per layer), "random" or "random:SEED", or architecture text.
template <class S>
pcnas::space::architecture<S> parse_arch_arg(const std::string& text) {
  if (text == "smallest") return pcnas::cost::extreme_architecture<S>(pcnas::cost::extreme::smallest);
  if (text == "largest") return pcnas::cost::extreme_architecture<S>(pcnas::cost::extreme::largest);
  pcnas::space::architecture<S> arch{};
  if (text.rfind("random", 0) == 0) {
    // "random" or "random:SEED" exactly: "random:", "randomfoo" or "random:abc" are mistakes,
    // not seed 0.
    std::uint64_t seed = 0;
    if (text != "random") {
      const std::string digits = text.size() > 7 && text[6] == ':' ? text.substr(7) : std::string();
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seed);
      if (digits.empty() || digits.front() == '+' || ec != std::errc() || end != digits.data() + digits.size())
        throw usage_error("--arch " + abbreviated(text) + ": expected random or random:SEED with SEED a whole number "
                          "from 0 to 18446744073709551615, or smallest, largest, or one token per layer");
    }
    pcnas::rng r(seed);
    for (std::size_t l = 0; l < S::num_layers; ++l) arch[l] = static_cast<int>(r.uniform_index(S::num_choices[l]));
    return arch;
  }
  return pcnas::space::parse_arch<S>(text);
}

inline constexpr const char* arch_help =
    "Architecture: one token per layer (\"k3e6 zero k5e3 ...\"), or smallest, largest (by MACs), "
    "random or random:SEED";

/// The cores this process may run on (its affinity mask), 0 when unknown.
inline int available_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
  return static_cast<int>(std::thread::hardware_concurrency());
}

/// More threads than cores make every parallel step wait for threads that are not running:
/// somewhat more is allowed with a warning, far more is refused.
inline void check_threads(int threads) {
  if (threads < 0) throw usage_error("--threads must be 0 (all cores) or positive");
  const int cores = available_cores();
  if (cores <= 0 || threads <= cores) return;
  if (threads > 4 * cores)
    throw usage_error("--threads " + std::to_string(threads) + " is more than 4 times the " + std::to_string(cores) +
                      " cores this process can use; each parallel step would wait for threads that are not "
                      "running (give at most " + std::to_string(cores) + ", or 0 for all cores)");
  static bool warned = false;  // checked at start-up and again where the backend is made
  if (std::exchange(warned, true)) return;
  std::fprintf(stderr, "warning: --threads %d is more than the %d cores this process can use; the run will be slower "
               "than with --threads %d\n", threads, cores, cores);
}

#ifdef PCNAS_CLI_WITH_EIGEN
using cpu_backend = pcnas::backend::eigen::backend;
inline cpu_backend make_backend(int threads) {
  check_threads(threads);
  return cpu_backend({.threads = threads});
}
#endif

using pcnas::io::save_json;

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}


}  // namespace pcnas_cli
