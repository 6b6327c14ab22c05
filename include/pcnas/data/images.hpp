// The in-memory data set every trainer reads (float NHWC images, byte labels) and its
// normalisation. No file reading here, so a program that brings its own data needs no zlib.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcnas::data {

enum class split { train, test };

inline const char* to_string(split s) noexcept { return s == split::train ? "train" : "test"; }

// Per-channel statistics of pixels scaled to [0,1]; a loader maps x to (x − mean) / stddev.
struct normalization {
  std::vector<float> mean;
  std::vector<float> stddev;
  friend bool operator==(const normalization&, const normalization&) = default;
};

// Mean and standard deviation of all Fashion-MNIST training pixels in [0,1]; the data test
// recomputes both from the files.
inline constexpr float fashion_mnist_mean = 0.2860f;
inline constexpr float fashion_mnist_std = 0.3530f;

inline normalization fashion_mnist_normalization() { return {{fashion_mnist_mean}, {fashion_mnist_std}}; }

// Leaves pixels in [0,1].
inline normalization identity_normalization(std::size_t channels) {
  return {std::vector<float>(channels, 0.0f), std::vector<float>(channels, 1.0f)};
}

struct dataset {
  std::vector<float> images;         // count × height × width × channels, row-major (NHWC)
  std::vector<std::uint8_t> labels;  // count labels, each < num_classes
  std::size_t count = 0;
  std::size_t height = 0;
  std::size_t width = 0;
  std::size_t channels = 0;
  std::size_t num_classes = 0;
  normalization norm;  // what the loader applied, so that augmentation can pad with black

  std::size_t size() const noexcept { return count; }
  std::size_t image_size() const noexcept { return height * width * channels; }

  std::span<const float> image(std::size_t i) const {
    check_index(i);
    return std::span<const float>(images).subspan(i * image_size(), image_size());
  }
  std::span<float> image(std::size_t i) {
    check_index(i);
    return std::span<float>(images).subspan(i * image_size(), image_size());
  }

  // The value a black pixel (raw 0) has after normalisation, per channel: padding with it is
  // padding with zeros before normalising, as torchvision's RandomCrop does.
  std::vector<float> black_pixel() const {
    std::vector<float> value(channels, 0.0f);
    if (norm.mean.size() == channels && norm.stddev.size() == channels)
      for (std::size_t c = 0; c < channels; ++c) value[c] = (0.0f - norm.mean[c]) / norm.stddev[c];
    return value;
  }

  // Throws std::logic_error when the fields disagree: a hand-built dataset is checked once
  // here rather than misread later.
  void check() const {
    const auto fail = [](const std::string& what) { throw std::logic_error("pcnas::data::dataset: " + what); };
    if (images.size() != count * image_size())
      fail("images holds " + std::to_string(images.size()) + " floats, expected count × height × width × channels = " +
           std::to_string(count * image_size()));
    if (labels.size() != count)
      fail("labels holds " + std::to_string(labels.size()) + " entries, expected count = " + std::to_string(count));
    if (num_classes == 0 || num_classes > 256) fail("num_classes must be in 1..256, got " + std::to_string(num_classes));
    for (std::size_t i = 0; i < count; ++i)
      if (labels[i] >= num_classes)
        fail("label " + std::to_string(labels[i]) + " at index " + std::to_string(i) + " is not below num_classes = " +
             std::to_string(num_classes));
  }

 private:
  void check_index(std::size_t i) const {
    if (i >= count || (i + 1) * image_size() > images.size())
      throw std::out_of_range("pcnas::data::dataset::image: index " + std::to_string(i) + " is past the " +
                              std::to_string(count) + " images");
  }
};

// Images per class, indexed by label.
inline std::vector<std::size_t> class_counts(const dataset& ds) {
  std::vector<std::size_t> counts(ds.num_classes, 0);
  for (const auto label : ds.labels) ++counts.at(label);
  return counts;
}

// The images at `indices`, in that order (an index may repeat).
inline dataset subset(const dataset& ds, std::span<const std::size_t> indices) {
  dataset out;
  out.height = ds.height;
  out.width = ds.width;
  out.channels = ds.channels;
  out.num_classes = ds.num_classes;
  out.norm = ds.norm;
  out.count = indices.size();
  const std::size_t stride = ds.image_size();
  out.images.resize(indices.size() * stride);
  out.labels.resize(indices.size());
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const std::size_t i = indices[k];
    if (i >= ds.count)
      throw std::out_of_range("pcnas::data::subset: index " + std::to_string(i) + " at position " + std::to_string(k) +
                              " is past the " + std::to_string(ds.count) + " images");
    std::copy_n(ds.images.begin() + static_cast<std::ptrdiff_t>(i * stride), stride,
                out.images.begin() + static_cast<std::ptrdiff_t>(k * stride));
    out.labels[k] = ds.labels[i];
  }
  return out;
}

namespace detail {

inline void check_normalization(const normalization& norm, std::size_t channels) {
  if (norm.mean.size() != channels || norm.stddev.size() != channels)
    throw std::invalid_argument("pcnas::data: normalization has " + std::to_string(norm.mean.size()) + " means and " +
                                std::to_string(norm.stddev.size()) + " standard deviations; the data have " +
                                std::to_string(channels) + " channel(s)");
  for (std::size_t c = 0; c < channels; ++c)
    if (!(norm.stddev[c] > 0.0f) || !std::isfinite(norm.stddev[c]) || !std::isfinite(norm.mean[c]))
      throw std::invalid_argument("pcnas::data: normalization of channel " + std::to_string(c) +
                                  " needs a finite mean and a positive finite standard deviation");
}

// 256 floats per channel: the normalised value of each byte, so conversion is a table lookup.
inline std::vector<float> byte_to_float_table(const normalization& norm) {
  std::vector<float> table(norm.mean.size() * 256);
  for (std::size_t c = 0; c < norm.mean.size(); ++c)
    for (std::size_t v = 0; v < 256; ++v)
      table[c * 256 + v] = (static_cast<float>(v) / 255.0f - norm.mean[c]) / norm.stddev[c];
  return table;
}

}  // namespace detail

}  // namespace pcnas::data
