// A tiny supernet that models pcnas::search::searchable_supernet without any tensors, so that the search
// algorithms can be tested quickly and against a known answer.
//
// Each (layer, choice) has a hidden quality q in [0, 1] and a shared weight w, initially 0. A
// training step on a path moves the path's weights towards their qualities (with noise from
// the supernet's own stream, like a data order); evaluate() maps the path's weights to an
// accuracy, plus a fixed per-architecture offset (the luck of a validation subset), and is
// lower when batch norm was not recalibrated for that path. So a well-trained supernet ranks
// architectures by Σ q, and the best feasible architecture is known by enumeration.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <istream>
#include <limits>
#include <ostream>
#include <span>
#include <stdexcept>
#include <vector>

#include <pcnas/rng.hpp>

namespace pcnas_test {

class synthetic_supernet {
 public:
  synthetic_supernet(std::vector<std::vector<double>> quality, std::uint64_t seed, double train_noise = 0.2,
                     double eval_noise = 0.002)
      : quality_(std::move(quality)), noise_(seed), train_noise_(train_noise), eval_noise_(eval_noise) {
    for (const auto& row : quality_) weights_.emplace_back(row.size(), 0.0);
  }

  std::size_t num_layers() const { return quality_.size(); }
  std::size_t num_choices(std::size_t layer) const { return quality_.at(layer).size(); }

  double train_step(std::span<const int> arch, double learning_rate) {
    check(arch);
    ++steps_;
    if (nan_at_step_ != 0 && steps_ == nan_at_step_) return std::numeric_limits<double>::quiet_NaN();
    double loss = 0.0;
    for (std::size_t l = 0; l < arch.size(); ++l) {
      double& w = weights_[l][static_cast<std::size_t>(arch[l])];
      const double q = quality_[l][static_cast<std::size_t>(arch[l])];
      loss += (q - w) * (q - w);
      w += learning_rate * ((q - w) + train_noise_ * (2.0 * noise_.uniform01() - 1.0));
    }
    return loss;
  }

  void recalibrate(std::span<const int> arch) {
    check(arch);
    calibrated_.assign(arch.begin(), arch.end());
    ++recalibrations_;
  }

  double evaluate(std::span<const int> arch) {
    check(arch);
    ++evaluations_;
    double score = 0.0;
    for (std::size_t l = 0; l < arch.size(); ++l) score += weights_[l][static_cast<std::size_t>(arch[l])];
    double accuracy = 0.5 + 0.4 * score / static_cast<double>(arch.size()) + eval_noise_ * luck(arch);
    if (!std::equal(arch.begin(), arch.end(), calibrated_.begin(), calibrated_.end())) accuracy -= 0.1;
    return std::clamp(accuracy, 0.0, 1.0);
  }

  void save(std::ostream& out) const {
    auto put = [&](std::uint64_t v) { out.write(reinterpret_cast<const char*>(&v), sizeof v); };
    for (const auto& row : weights_)
      for (double w : row) put(std::bit_cast<std::uint64_t>(w));
    for (auto s : noise_.state()) put(s);
    put(steps_);
    put(calibrated_.size());
    for (int c : calibrated_) put(static_cast<std::uint64_t>(c));
  }

  void load(std::istream& in) {
    auto get = [&] {
      std::uint64_t v = 0;
      in.read(reinterpret_cast<char*>(&v), sizeof v);
      if (!in) throw std::runtime_error("synthetic_supernet: truncated state");
      return v;
    };
    for (auto& row : weights_)
      for (double& w : row) w = std::bit_cast<double>(get());
    std::array<std::uint64_t, 4> s{};
    for (auto& word : s) word = get();
    noise_.set_state(s);
    steps_ = get();
    calibrated_.resize(get());
    for (int& c : calibrated_) c = static_cast<int>(get());
  }

  // The true quality of an architecture: what the search should maximise.
  double true_score(std::span<const int> arch) const {
    double s = 0.0;
    for (std::size_t l = 0; l < arch.size(); ++l) s += quality_[l][static_cast<std::size_t>(arch[l])];
    return s;
  }

  // Test hooks and counters (not part of the contract).
  void fail_with_nan_at_step(std::uint64_t step) { nan_at_step_ = step; }
  std::uint64_t steps() const { return steps_; }
  std::uint64_t evaluations() const { return evaluations_; }
  std::uint64_t recalibrations() const { return recalibrations_; }

 private:
  void check(std::span<const int> arch) const {
    if (arch.size() != quality_.size()) throw std::invalid_argument("synthetic_supernet: wrong architecture length");
    for (std::size_t l = 0; l < arch.size(); ++l)
      if (arch[l] < 0 || static_cast<std::size_t>(arch[l]) >= quality_[l].size())
        throw std::invalid_argument("synthetic_supernet: choice out of range");
  }

  // A fixed value in [-1, 1] per architecture.
  static double luck(std::span<const int> arch) {
    std::uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (int c : arch) {
      h ^= static_cast<std::uint64_t>(c) + 0x632be59bd9b4e019ULL + (h << 6) + (h >> 2);
      h *= 0xff51afd7ed558ccdULL;
    }
    h ^= h >> 33;
    return static_cast<double>(h >> 11) * 0x1.0p-53 * 2.0 - 1.0;
  }

  std::vector<std::vector<double>> quality_;
  std::vector<std::vector<double>> weights_;
  pcnas::rng noise_;
  double train_noise_;
  double eval_noise_;
  std::uint64_t steps_ = 0;
  std::vector<int> calibrated_;
  std::uint64_t nan_at_step_ = 0;
  std::uint64_t evaluations_ = 0;
  std::uint64_t recalibrations_ = 0;
};

}  // namespace pcnas_test
