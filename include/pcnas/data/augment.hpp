// Training-time image augmentation on NHWC floats: random crop from a black-padded image and
// horizontal flip, with the random draws separated from the pixel work so both can be tested.
#pragma once

#include <pcnas/rng.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcnas::data {

struct image_shape {
  std::size_t height = 0;
  std::size_t width = 0;
  std::size_t channels = 0;
  std::size_t size() const noexcept { return height * width * channels; }
};

struct augmentation {
  // Pad each side by this many black pixels and crop the original size at a uniform offset:
  // the image moves by up to this many pixels each way. 0 turns cropping off.
  std::size_t crop_padding = 0;
  // Mirror left–right with probability 1/2.
  bool horizontal_flip = false;

  bool enabled() const noexcept { return crop_padding > 0 || horizontal_flip; }
};

// One image's random choices. dst(y, x) = src(y + dy, x + dx), black outside src, then mirrored.
struct augment_draw {
  std::ptrdiff_t dy = 0;
  std::ptrdiff_t dx = 0;
  bool flip = false;
};

// Draws in a fixed order (dy, dx, flip), each only when its augmentation is on.
inline augment_draw draw_augmentation(const augmentation& aug, rng& r) {
  augment_draw d;
  if (aug.crop_padding > 0) {
    const auto p = static_cast<std::ptrdiff_t>(aug.crop_padding);
    const auto span = static_cast<std::uint64_t>(2 * aug.crop_padding + 1);
    d.dy = static_cast<std::ptrdiff_t>(r.uniform_index(span)) - p;
    d.dx = static_cast<std::ptrdiff_t>(r.uniform_index(span)) - p;
  }
  if (aug.horizontal_flip) d.flip = r.uniform_index(2) == 1;
  return d;
}

namespace detail {

inline void check_image_spans(std::size_t src, std::size_t dst, std::size_t fill, image_shape shape) {
  if (src != shape.size() || dst != shape.size() || fill != shape.channels)
    throw std::invalid_argument("pcnas::data::apply_augmentation: expected images of " + std::to_string(shape.size()) +
                                " floats and a fill of " + std::to_string(shape.channels) + ", got " +
                                std::to_string(src) + ", " + std::to_string(dst) + " and " + std::to_string(fill));
}

}  // namespace detail

// Writes the augmented `src` to `dst` (distinct buffers of shape.size() floats) in one pass;
// `fill` is the per-channel value of the padding (dataset::black_pixel()).
inline void apply_augmentation(std::span<const float> src, std::span<float> dst, image_shape shape,
                               const augment_draw& d, std::span<const float> fill) {
  detail::check_image_spans(src.size(), dst.size(), fill.size(), shape);
  const auto h = static_cast<std::ptrdiff_t>(shape.height);
  const auto w = static_cast<std::ptrdiff_t>(shape.width);
  const std::size_t c = shape.channels;
  for (std::ptrdiff_t y = 0; y < h; ++y) {
    const std::ptrdiff_t sy = y + d.dy;
    for (std::ptrdiff_t x = 0; x < w; ++x) {
      // Cropping happens before the mirror, so the mirrored column is read at the shifted place.
      const std::ptrdiff_t sx = (d.flip ? w - 1 - x : x) + d.dx;
      float* out = dst.data() + (static_cast<std::size_t>(y * w + x)) * c;
      if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
        for (std::size_t k = 0; k < c; ++k) out[k] = fill[k];
      } else {
        const float* in = src.data() + static_cast<std::size_t>(sy * w + sx) * c;
        for (std::size_t k = 0; k < c; ++k) out[k] = in[k];
      }
    }
  }
}

inline void flip_horizontal(std::span<const float> src, std::span<float> dst, image_shape shape) {
  const std::vector<float> no_fill(shape.channels, 0.0f);
  apply_augmentation(src, dst, shape, augment_draw{0, 0, true}, no_fill);
}

}  // namespace pcnas::data
