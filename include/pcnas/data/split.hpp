// Held-out validation split of a training set: seeded, stratified by default, the same on
// every platform because it draws only from pcnas::rng.
#pragma once

#include <pcnas/data/images.hpp>
#include <pcnas/rng.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcnas::data {

enum class split_mode {
  stratified,  // each class gives its share of the validation images (largest remainder)
  simple,      // a uniform sample of val_count images, whatever their classes
};

struct train_val {
  dataset train;
  dataset val;
  // Positions in the source set, ascending: the split can be logged and rebuilt.
  std::vector<std::size_t> train_indices;
  std::vector<std::size_t> val_indices;
};

namespace detail {

// How many validation images each class gives: floor(val_count·n_c/N), and the images left
// over go to the classes with the largest remainders (ties to the lower label), so that the
// total is exactly val_count and each share is within one of proportional.
inline std::vector<std::size_t> stratified_quotas(const std::vector<std::size_t>& counts, std::size_t total,
                                                  std::size_t val_count) {
  std::vector<std::size_t> quota(counts.size());
  std::vector<std::uint64_t> remainder(counts.size());
  std::size_t assigned = 0;
  for (std::size_t c = 0; c < counts.size(); ++c) {
    // val_count·n_c fits in 64 bits for any data set that fits in memory.
    const std::uint64_t scaled = static_cast<std::uint64_t>(val_count) * counts[c];
    quota[c] = static_cast<std::size_t>(scaled / total);
    remainder[c] = scaled % total;
    assigned += quota[c];
  }
  std::vector<std::size_t> order(counts.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return remainder[a] > remainder[b]; });
  for (std::size_t k = 0; assigned < val_count; ++k, ++assigned) ++quota[order[k]];
  return quota;
}

}  // namespace detail

// Moves val_count images of `ds` into a validation set. The same (data, val_count, seed, mode)
// always gives the same split; both halves keep the source order.
inline train_val split_train_val(const dataset& ds, std::size_t val_count, std::uint64_t seed,
                                 split_mode mode = split_mode::stratified) {
  ds.check();
  if (val_count >= ds.count)
    throw std::invalid_argument("pcnas::data::split_train_val: val_count " + std::to_string(val_count) +
                                " leaves no training image out of " + std::to_string(ds.count));
  rng r(seed);
  std::vector<bool> in_val(ds.count, false);
  if (mode == split_mode::simple) {
    std::vector<std::size_t> all(ds.count);
    std::iota(all.begin(), all.end(), std::size_t{0});
    shuffle(all.begin(), all.end(), r);
    for (std::size_t k = 0; k < val_count; ++k) in_val[all[k]] = true;
  } else {
    std::vector<std::vector<std::size_t>> by_class(ds.num_classes);
    for (std::size_t i = 0; i < ds.count; ++i) by_class[ds.labels[i]].push_back(i);
    std::vector<std::size_t> counts(ds.num_classes);
    for (std::size_t c = 0; c < ds.num_classes; ++c) counts[c] = by_class[c].size();
    const auto quota = detail::stratified_quotas(counts, ds.count, val_count);
    // One stream for all classes, drawn in label order.
    for (std::size_t c = 0; c < ds.num_classes; ++c) {
      shuffle(by_class[c].begin(), by_class[c].end(), r);
      for (std::size_t k = 0; k < quota[c]; ++k) in_val[by_class[c][k]] = true;
    }
  }

  train_val out;
  out.val_indices.reserve(val_count);
  out.train_indices.reserve(ds.count - val_count);
  for (std::size_t i = 0; i < ds.count; ++i) (in_val[i] ? out.val_indices : out.train_indices).push_back(i);
  out.train = subset(ds, out.train_indices);
  out.val = subset(ds, out.val_indices);
  return out;
}

}  // namespace pcnas::data
