// The Fashion-MNIST loader that fills a data set (data/images.hpp) from Debian's
// dataset-fashion-mnist files; it reads IDX files, gzip-compressed or not, so it needs zlib.
#pragma once

#include <pcnas/data/error.hpp>
#include <pcnas/data/idx.hpp>
#include <pcnas/data/images.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace pcnas::data {

// $PCNAS_DATA_DIR when set and not empty, else where dataset-fashion-mnist installs the files.
inline std::filesystem::path default_data_dir() {
  if (const char* dir = std::getenv("PCNAS_DATA_DIR"); dir != nullptr && *dir != '\0') return dir;
  return "/usr/share/datasets/fashion-mnist";
}

// `name` in `dir`, or `name.gz`. The uncompressed file wins when both exist: someone
// decompressed it on purpose, and it reads faster.
inline std::filesystem::path find_data_file(const std::filesystem::path& dir, const std::string& name) {
  const std::filesystem::path candidates[] = {dir / name, dir / (name + ".gz")};
  for (const auto& candidate : candidates) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec)) return candidate;
  }
  throw data_error(dir, "cannot find " + name + ": tried " + candidates[0].string() + " and " +
                            candidates[1].string() +
                            " (set PCNAS_DATA_DIR or pass the directory that holds the files)");
}

// Fashion-MNIST's 60,000 training or 10,000 test images, 28×28×1, 10 classes.
inline dataset load_fashion_mnist(const std::filesystem::path& dir, split which,
                                  const normalization& norm = fashion_mnist_normalization()) {
  detail::check_normalization(norm, 1);
  const std::string prefix = which == split::train ? "train" : "t10k";
  const auto images_file = find_data_file(dir, prefix + "-images-idx3-ubyte");
  const auto labels_file = find_data_file(dir, prefix + "-labels-idx1-ubyte");
  auto raw = read_idx_labeled(images_file, labels_file, 10);
  // The fmnist spaces are built for 28×28; another size is another data set.
  if (raw.images.rows != 28 || raw.images.cols != 28)
    throw data_error(images_file, "expected 28×28 Fashion-MNIST images, found " + std::to_string(raw.images.rows) +
                                      "×" + std::to_string(raw.images.cols));

  dataset ds;
  ds.count = raw.images.count;
  ds.height = raw.images.rows;
  ds.width = raw.images.cols;
  ds.channels = 1;
  ds.num_classes = 10;
  ds.norm = norm;
  ds.labels = std::move(raw.labels);
  const auto table = detail::byte_to_float_table(norm);
  ds.images.resize(raw.images.pixels.size());
  for (std::size_t i = 0; i < raw.images.pixels.size(); ++i) ds.images[i] = table[raw.images.pixels[i]];
  return ds;
}

inline dataset load_fashion_mnist(split which) { return load_fashion_mnist(default_data_dir(), which); }

}  // namespace pcnas::data
