// Initial weights, generated on the host from pcnas::rng in double precision and uploaded, so
// that every backend starts a seed from the same numbers.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/rng.hpp>

#include <cmath>
#include <numbers>
#include <vector>

namespace pcnas::nn::init {

// Standard normal numbers by the Box–Muller transform over our own uniform mapping (the
// standard library's distributions differ between implementations). Both numbers of a pair are
// used, in order.
inline std::vector<double> normal(pcnas::rng& r, backend::index n, double stddev) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (backend::index i = 0; i < n; i += 2) {
    const double u1 = 1.0 - r.uniform01();  // (0, 1]: the log is finite
    const double u2 = r.uniform01();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    v[static_cast<std::size_t>(i)] = stddev * radius * std::cos(2.0 * std::numbers::pi * u2);
    if (i + 1 < n) v[static_cast<std::size_t>(i + 1)] = stddev * radius * std::sin(2.0 * std::numbers::pi * u2);
  }
  return v;
}

// He (Kaiming) normal in fan-out mode, as torchvision's MobileNetV2 and ProxylessNAS initialise
// convolutions: std = sqrt(2 / fan_out), with fan_out = out_channels·k·k counted as PyTorch
// counts it (for a depthwise convolution, channels·k·k).
inline std::vector<double> kaiming_normal_fan_out(pcnas::rng& r, backend::index size, backend::index fan_out) {
  return normal(r, size, std::sqrt(2.0 / static_cast<double>(fan_out)));
}

inline std::vector<double> constant(backend::index size, double value) {
  return std::vector<double>(static_cast<std::size_t>(size), value);
}

// Fully connected layers: N(0, 0.01²) weights, zero bias (torchvision's MobileNetV2).
inline constexpr double linear_stddev = 0.01;

}  // namespace pcnas::nn::init
