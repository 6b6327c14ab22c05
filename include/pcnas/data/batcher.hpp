// A stream of mini-batches over a dataset: a fresh seeded order each epoch, optional seeded
// augmentation, and a position that can be saved and restored to replay the same batches.
#pragma once

#include <pcnas/data/augment.hpp>
#include <pcnas/data/images.hpp>
#include <pcnas/rng.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcnas::data {

enum class batch_mode {
  train,  // shuffled every epoch; the last incomplete batch is dropped
  eval,   // dataset order; every image, the last batch may be smaller
};

struct batcher_options {
  std::size_t batch_size = 128;
  std::uint64_t seed = 0;
  batch_mode mode = batch_mode::train;
  augmentation augment{};  // applied in either mode when enabled
};

// Where the stream is: the epoch and the index of the batch within it.
struct batch_position {
  std::uint64_t epoch = 0;
  std::uint64_t index = 0;
  friend bool operator==(const batch_position&, const batch_position&) = default;
};

// One batch, valid until the next call to next() or seek() on the batcher that made it.
struct batch_view {
  std::span<const float> images;          // size × height × width × channels, contiguous
  std::span<const std::uint8_t> labels;   // size labels
  std::span<const std::size_t> indices;   // where each image sits in the dataset
  std::size_t size = 0;
  std::size_t height = 0;
  std::size_t width = 0;
  std::size_t channels = 0;
  batch_position position;  // this batch's own position
};

namespace detail {

constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A seed for one (purpose, epoch, batch) computed from scratch, so that any position can be
// reached without replaying the draws before it.
constexpr std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t purpose, std::uint64_t epoch,
                                    std::uint64_t index) noexcept {
  constexpr std::uint64_t golden = 0x9e3779b97f4a7c15ULL;
  std::uint64_t h = mix64(seed + golden);
  h = mix64(h ^ (purpose * golden));
  h = mix64(h + epoch * golden + 1);
  return mix64(h + index * golden + 2);
}

inline constexpr std::uint64_t order_stream = 1;
inline constexpr std::uint64_t augment_stream = 2;

}  // namespace detail

class batcher {
 public:
  // The batcher keeps a reference: `ds` must outlive it.
  batcher(const dataset& ds, batcher_options options = {}) : ds_(&ds), options_(options) {
    ds.check();
    if (options_.batch_size == 0) throw std::invalid_argument("pcnas::data::batcher: batch_size must be at least 1");
    if (ds.count == 0) throw std::invalid_argument("pcnas::data::batcher: the dataset is empty");
    if (options_.mode == batch_mode::train && ds.count < options_.batch_size)
      throw std::invalid_argument("pcnas::data::batcher: batch_size " + std::to_string(options_.batch_size) +
                                  " is larger than the " + std::to_string(ds.count) +
                                  " images, and training mode drops incomplete batches, so no batch would come");
    const std::size_t image = ds.image_size();
    images_.resize(options_.batch_size * image);
    labels_.resize(options_.batch_size);
    indices_.resize(options_.batch_size);
    fill_ = ds.black_pixel();
    order_.resize(ds.count);
    std::iota(order_.begin(), order_.end(), std::size_t{0});
  }
  batcher(dataset&&, batcher_options = {}) = delete;  // would hold a dangling reference

  // Training: floor(N / B). Evaluation: ceil(N / B).
  std::uint64_t batches_per_epoch() const noexcept {
    const std::size_t n = ds_->count, b = options_.batch_size;
    return options_.mode == batch_mode::train ? n / b : (n + b - 1) / b;
  }

  // The position of the batch that next() returns next.
  batch_position position() const noexcept { return position_; }

  // Continue from a saved position(): the following batches are the ones that came after it.
  void seek(batch_position p) {
    if (p.index >= batches_per_epoch())
      throw std::out_of_range("pcnas::data::batcher::seek: batch index " + std::to_string(p.index) +
                              " is past the end of an epoch of " + std::to_string(batches_per_epoch()) + " batches");
    position_ = p;
  }

  // The batch at position(), then moves on; after an epoch's last batch the next epoch starts,
  // so the stream never ends. Loop batches_per_epoch() times for exactly one epoch.
  batch_view next() { return advance(true); }

  // The same batch without its images (empty span): its indices and labels, for a consumer that
  // holds the data set elsewhere (a device-resident copy). Only without augmentation, whose
  // random draws exist only as augmented images.
  batch_view next_indices() {
    if (options_.augment.enabled())
      throw std::logic_error("pcnas::data::batcher::next_indices: augmented batches exist only as images");
    return advance(false);
  }

  const batcher_options& options() const noexcept { return options_; }
  const dataset& data() const noexcept { return *ds_; }

 private:
  batch_view advance(bool with_images) {
    const batch_position here = position_;
    prepare_order(here.epoch);
    const std::size_t b = options_.batch_size;
    const std::size_t start = static_cast<std::size_t>(here.index) * b;
    const std::size_t size = std::min(b, ds_->count - start);
    const image_shape shape{ds_->height, ds_->width, ds_->channels};
    const std::size_t image = shape.size();

    rng aug_rng(detail::stream_seed(options_.seed, detail::augment_stream, here.epoch, here.index));
    for (std::size_t k = 0; k < size; ++k) {
      const std::size_t i = order_[start + k];
      indices_[k] = i;
      labels_[k] = ds_->labels[i];
      if (!with_images) continue;
      const auto dst = std::span<float>(images_).subspan(k * image, image);
      if (options_.augment.enabled()) {
        apply_augmentation(ds_->image(i), dst, shape, draw_augmentation(options_.augment, aug_rng), fill_);
      } else {
        const auto src = ds_->image(i);
        std::copy(src.begin(), src.end(), dst.begin());
      }
    }

    position_.index = here.index + 1;
    if (position_.index == batches_per_epoch()) position_ = {here.epoch + 1, 0};

    batch_view view;
    view.images = std::span<const float>(images_).first(with_images ? size * image : 0);
    view.labels = std::span<const std::uint8_t>(labels_).first(size);
    view.indices = std::span<const std::size_t>(indices_).first(size);
    view.size = size;
    view.height = shape.height;
    view.width = shape.width;
    view.channels = shape.channels;
    view.position = here;
    return view;
  }

  // The epoch's order is a function of (seed, epoch) alone, built when the epoch changes.
  void prepare_order(std::uint64_t epoch) {
    if (options_.mode == batch_mode::eval || (order_ready_ && order_epoch_ == epoch)) return;
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    rng order_rng(detail::stream_seed(options_.seed, detail::order_stream, epoch, 0));
    shuffle(order_.begin(), order_.end(), order_rng);
    order_epoch_ = epoch;
    order_ready_ = true;
  }

  const dataset* ds_;
  batcher_options options_;
  batch_position position_{};
  std::vector<std::size_t> order_;
  std::uint64_t order_epoch_ = 0;
  bool order_ready_ = false;
  std::vector<float> images_;
  std::vector<std::uint8_t> labels_;
  std::vector<std::size_t> indices_;
  std::vector<float> fill_;
};

}  // namespace pcnas::data
