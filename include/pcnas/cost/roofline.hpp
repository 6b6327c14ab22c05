// A latency model that needs no device: each op takes max(compute time, memory time) plus a
// fixed launch overhead (the roofline model). A first estimate for a constraint before a
// latency table has been measured, and a baseline to check measured tables against.
#pragma once

#include <algorithm>
#include <array>
#include <optional>
#include <utility>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <pcnas/cost/table.hpp>
#include <pcnas/space/ops.hpp>
#include <pcnas/space/space.hpp>

namespace pcnas::cost {

// What one (layer, choice) does: multiply-adds, bytes moved to and from memory, and the number
// of kernels it launches (each pays the device's overhead; a skip launches none).
struct op_counts {
  double macs = 0.0;
  double bytes = 0.0;
  int ops = 1;
};

struct device_descriptor {
  std::string_view name;
  double peak_flops = 0.0;             // FLOP/s; one multiply-add is two FLOPs
  double bandwidth_bytes_per_s = 0.0;  // bytes/s to the memory the tensors live in
  double per_op_overhead_s = 0.0;      // launch or dispatch cost per kernel
};

// Any type with these three members works, including one with static constexpr members, so a
// device can be a compile-time constant of the user's own.
template <class D>
concept device_like = requires(const D& d) {
  { d.peak_flops } -> std::convertible_to<double>;
  { d.bandwidth_bytes_per_s } -> std::convertible_to<double>;
  { d.per_op_overhead_s } -> std::convertible_to<double>;
};

// Example devices from public specification sheets and our own measurements, not from
// profiling: real kernels reach a fraction of these peaks, so measure a latency table before
// trusting absolute numbers.
namespace devices {
// NVIDIA H200 (SXM) data sheet: 67 TFLOP/s FP32 (non-tensor-core), 4.8 TB/s HBM3e. The 5 µs per
// kernel is our assumption for a launch from a CUDA stream.
inline constexpr device_descriptor h200_fp32{
    .name = "h200_fp32", .peak_flops = 67e12, .bandwidth_bytes_per_s = 4.8e12, .per_op_overhead_s = 5e-6};
// Two Zen 3 cores with AVX2 + FMA: ~150 GFLOP/s is what a tuned SGEMM reaches (the FMA peak is
// ~197), 36 GB/s is the STREAM triad with two threads; 1 µs per op is our assumption.
inline constexpr device_descriptor cpu_2core_avx2{
    .name = "cpu_2core_avx2", .peak_flops = 150e9, .bandwidth_bytes_per_s = 36e9, .per_op_overhead_s = 1e-6};
}  // namespace devices

template <device_like D>
double roofline_seconds(const D& device, const op_counts& op) {
  const double compute = 2.0 * op.macs / static_cast<double>(device.peak_flops);
  const double memory = op.bytes / static_cast<double>(device.bandwidth_bytes_per_s);
  return std::max(compute, memory) + op.ops * static_cast<double>(device.per_op_overhead_s);
}

struct roofline_options {
  double seconds_per_unit = 1e-3;  // the unit of the returned model; the default gives milliseconds
  std::string unit = "ms";
};

// An additive latency model from per-(layer, choice) counts and the fixed stem/head part.
template <device_like D>
additive_cost_model roofline_latency(const D& device, const std::vector<std::vector<op_counts>>& per_layer,
                                     const op_counts& fixed = {.macs = 0.0, .bytes = 0.0, .ops = 0},
                                     const roofline_options& options = {}) {
  if (!(device.peak_flops > 0.0) || !(device.bandwidth_bytes_per_s > 0.0) || !(device.per_op_overhead_s >= 0.0))
    throw std::invalid_argument(
        "roofline_latency: the device needs a positive peak_flops and bandwidth_bytes_per_s and a "
        "non-negative per_op_overhead_s");
  if (!(options.seconds_per_unit > 0.0))
    throw std::invalid_argument("roofline_latency: seconds_per_unit must be positive");
  additive_cost_model model{.name = "latency", .unit = options.unit, .fixed = 0.0, .per_layer = {}};
  model.fixed = roofline_seconds(device, fixed) / options.seconds_per_unit;
  for (std::size_t l = 0; l < per_layer.size(); ++l) {
    std::vector<double> row;
    for (std::size_t c = 0; c < per_layer[l].size(); ++c) {
      const op_counts& op = per_layer[l][c];
      if (!(op.macs >= 0.0) || !(op.bytes >= 0.0) || op.ops < 0 || !std::isfinite(op.macs) ||
          !std::isfinite(op.bytes))
        throw std::invalid_argument("roofline_latency: layer " + std::to_string(l) + " choice " +
                                    std::to_string(c) + " has negative or non-finite counts");
      row.push_back(roofline_seconds(device, op) / options.seconds_per_unit);
    }
    model.per_layer.push_back(std::move(row));
  }
  model.validate();
  return model;
}

// ------------------------------------------------------------------------------ the roofline of a space

// Every device the library describes, by name.
inline constexpr std::array<device_descriptor, 2> known_devices{devices::cpu_2core_avx2, devices::h200_fp32};

inline std::optional<device_descriptor> find_device(std::string_view name) {
  for (const auto& d : known_devices)
    if (d.name == name) return d;
  return std::nullopt;
}

inline constexpr int head_kernels = 4;  // 1x1 convolution, batch norm, pooling, the classifier

template <class Op>
constexpr int kernels_of() {
  static_assert(requires { space::op_traits<Op>::kernels; },
                "the roofline model needs `static constexpr int kernels` (the kernels the op launches) in this "
                "op's op_traits");
  return space::op_traits<Op>::kernels;
}

inline constexpr const char* roofline_assumptions =
    "per (layer, choice) at the batch: MACs from the space's costs; bytes = batch * activation_bytes (the float32 "
    "outputs of the convolutions) + 4 * params (read once); input reads and separate batch-norm passes not counted; "
    "kernels: op_traits<Op>::kernels (MBConv 6, 4 without expansion; zero 0; a stem convolution 2), the head 4";

namespace detail {
template <class... Ops>
std::vector<int> kernel_row(space::choices<Ops...>*) {
  return {kernels_of<Ops>()...};
}
template <class... Fixed>
constexpr int stem_kernels(space::type_list<Fixed...>*) {
  return (0 + ... + kernels_of<typename Fixed::op>());
}
}  // namespace detail

/// The roofline latency model of space S on `device` at `batch` images, with the assumptions
/// in `roofline_assumptions`.
template <class S, device_like D>
additive_cost_model roofline_model(const D& device, int batch, const roofline_options& options = {}) {
  if (batch < 1) throw std::invalid_argument("roofline_model: the batch must be at least 1");
  const double n = batch;
  const auto counts = [&](const space::op_cost& c, int ops) {
    return op_counts{.macs = n * static_cast<double>(c.macs),
                     .bytes = n * static_cast<double>(c.activation_bytes) + 4.0 * static_cast<double>(c.params),
                     .ops = ops};
  };
  const auto kernels = [&]<std::size_t... L>(std::index_sequence<L...>) {
    return std::vector<std::vector<int>>{
        detail::kernel_row(static_cast<typename S::template choices_at<L>*>(nullptr))...};
  }(std::make_index_sequence<S::num_layers>{});
  std::vector<std::vector<op_counts>> per_layer(S::num_layers);
  for (std::size_t l = 0; l < S::num_layers; ++l)
    for (std::size_t c = 0; c < S::num_choices[l]; ++c)
      per_layer[l].push_back(counts(S::choice_costs[l][c], kernels[l][c]));
  const int fixed_kernels = detail::stem_kernels(static_cast<typename S::stem_list*>(nullptr)) + head_kernels;
  return roofline_latency(device, per_layer, counts(S::stem_cost + S::head_cost, fixed_kernels), options);
}

}  // namespace pcnas::cost
