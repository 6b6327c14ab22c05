// The fmnist_micro ranking study: its fixed settings (data split, recipes, the MACs limit, the
// nested subspaces), architecture indexing, and the append-only result files that make every
// part of it resumable. Shared by the runner (micro_study.cpp) and the report (report.cpp).
#pragma once

#include <pcnas/cost/analytic.hpp>
#include <pcnas/cost/constraint.hpp>
#include <pcnas/space/arch.hpp>
#include <pcnas/space/presets.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace micro_study {

using space = pcnas::presets::fmnist_micro;
using arch_t = pcnas::space::architecture<space>;
inline constexpr std::size_t num_layers = space::num_layers;
inline constexpr std::size_t num_archs = space::num_architectures;

// Version of the recipes below: a result file written under another version is refused, so that
// numbers from two recipes never mix.
inline constexpr int study_version = 1;

// ---------------------------------------------------------------------------------- the recipes

// Every training in the study (stand-alone and supernet) uses the same data split — 5,000 images
// held out of the 60,000 training images with split seed 0 — the same optimizer (SGD, Nesterov
// momentum 0.9, weight decay 4e-5, label smoothing 0.1), batches of 128, random crops with
// padding 2 and horizontal flips, and a cosine learning rate from 0.1 to 0.
inline constexpr std::size_t held_out_images = 5000;
inline constexpr std::uint64_t split_seed = 0;
inline constexpr std::size_t batch_size = 128;
inline constexpr double base_lr = 0.1;

// Stand-alone: 2 epochs over the 55,000 training images (860 steps).
inline constexpr int standalone_epochs = 2;
// Supernets: as many steps as one stand-alone training, times this factor.
inline constexpr std::size_t supernet_steps_factor = 4;

// PC-NAS on fmnist_micro: the method's defaults (P = 5, S = 8), 2,000 held-out images and 4
// recalibration batches per evaluation, as `pcnas search --budget full`.
inline constexpr std::size_t pool_size = 5;
inline constexpr std::size_t completions = 8;
inline constexpr std::size_t search_validation_images = 2000;
inline constexpr std::size_t recalibration_batches = 4;

// ------------------------------------------------------------------------- architecture indexing

// Index = mixed-radix number of the choices, layer 0 most significant: 0 .. 399.
inline std::size_t index_of(std::span<const int> arch) {
  std::size_t i = 0;
  for (std::size_t l = 0; l < num_layers; ++l) i = i * space::num_choices[l] + static_cast<std::size_t>(arch[l]);
  return i;
}
inline std::vector<int> arch_at(std::size_t index) {
  std::vector<int> arch(num_layers);
  for (std::size_t l = num_layers; l-- > 0;) {
    arch[l] = static_cast<int>(index % space::num_choices[l]);
    index /= space::num_choices[l];
  }
  return arch;
}
inline std::string arch_text(std::span<const int> arch) {
  return pcnas::space::to_string<space>(pcnas::space::arch_from_indices<space>(arch));
}

// ------------------------------------------------------------------------------ the constraints

inline pcnas::cost::additive_cost_model macs_model() {
  return pcnas::cost::analytic_model<space>(pcnas::cost::analytic_measure::macs);
}

// The MACs limit of the method comparison: the cost of the 134th cheapest of the 400
// architectures. The constraint rounds per-layer costs up to its grid, so the architecture
// exactly at the limit may be refused: 133 architectures, a third of the space, are feasible.
inline double macs_limit() {
  const auto model = macs_model();
  std::vector<double> costs;
  for (std::size_t i = 0; i < num_archs; ++i) costs.push_back(model.predict(arch_at(i)));
  std::sort(costs.begin(), costs.end());
  return costs[num_archs / 3];
}
inline pcnas::cost::constraint macs_constraint() { return {macs_model(), {.limit = macs_limit()}}; }

// The nested subspaces of the fading experiment, all around one centre architecture chosen before
// any result existed (k3e3 in every layer): 1 (the centre), 4 (the first layer free), 16 (the
// first and third free), 64 (and the second over its four MBConv choices), 400 (everything).
inline constexpr std::array<std::size_t, 5> subspace_sizes{1, 4, 16, 64, 400};
inline bool in_subspace(std::span<const int> arch, std::size_t size) {
  constexpr int centre = 1;  // k3e3 in every layer
  constexpr int zero_choice = 4;  // the second and fourth layers also offer zero, as choice 4
  switch (size) {
    case 1: return arch[0] == centre && arch[1] == centre && arch[2] == centre && arch[3] == centre;
    case 4: return arch[1] == centre && arch[2] == centre && arch[3] == centre;
    case 16: return arch[1] == centre && arch[3] == centre;
    case 64: return arch[1] != zero_choice && arch[3] == centre;
    case 400: return true;
    default: throw std::invalid_argument("no nested subspace of " + std::to_string(size) + " architectures");
  }
}
// The subspace as a constraint: a cost of 1 for every choice outside it, limit 0. The exact
// sampler then draws uniformly from the subspace and from nothing else.
inline pcnas::cost::constraint subspace_constraint(std::size_t size) {
  pcnas::cost::additive_cost_model m{.name = "subspace_" + std::to_string(size), .unit = "", .fixed = 0.0, .per_layer = {}};
  m.per_layer.resize(num_layers);
  // Product subspaces: a choice is inside when some member of the subspace uses it.
  for (std::size_t l = 0; l < num_layers; ++l)
    for (std::size_t c = 0; c < space::num_choices[l]; ++c) {
      bool used = false;
      for (std::size_t i = 0; i < num_archs && !used; ++i) {
        const auto a = arch_at(i);
        used = a[l] == static_cast<int>(c) && in_subspace(a, size);
      }
      m.per_layer[l].push_back(used ? 0.0 : 1.0);
    }
  return {std::move(m), {.limit = 0.0, .resolution = 1.0}};
}

// ------------------------------------------------------------------------- append-only records

// One JSON object per line. A line is written with one write() and fsync'd, so a kill leaves at
// most one partial last line, which reading skips and the next append cuts off.
class record_file {
 public:
  explicit record_file(std::filesystem::path path) : path_(std::move(path)) {}

  const std::filesystem::path& path() const noexcept { return path_; }

  std::vector<nlohmann::json> read() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(path_);
    if (!in) return out;
    std::string line;
    std::size_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      if (line.empty()) continue;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object()) {
        if (in.peek() == std::char_traits<char>::eof()) break;  // a partial last line: a kill mid-write
        throw std::runtime_error(path_.string() + ":" + std::to_string(number) + ": not a JSON record");
      }
      if (j.value("version", 0) != study_version)
        throw std::runtime_error(path_.string() + ":" + std::to_string(number) + ": written by study version " +
                                 std::to_string(j.value("version", 0)) + ", this program is version " +
                                 std::to_string(study_version));
      out.push_back(std::move(j));
    }
    return out;
  }

  void append(nlohmann::json j) const {
    j["version"] = study_version;
    if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
    cut_partial_line();
    const std::string line = j.dump() + "\n";
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) throw std::runtime_error("cannot open " + path_.string() + " for appending");
    const auto written = ::write(fd, line.data(), line.size());
    const bool ok = written == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) throw std::runtime_error("could not append a record to " + path_.string());
  }

 private:
  // Drops bytes after the last newline (what a kill during a write leaves).
  void cut_partial_line() const {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path_, ec);
    if (ec || size == 0) return;
    std::ifstream in(path_, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto last = all.find_last_of('\n');
    const std::size_t keep = last == std::string::npos ? 0 : last + 1;
    if (keep != all.size()) std::filesystem::resize_file(path_, keep);
  }

  std::filesystem::path path_;
};

// The default location of the study's results, in the repository.
inline std::filesystem::path default_results_dir() { return "results/micro"; }

}  // namespace micro_study
