// Reader for the CIFAR-10 binary batches (data_batch_N.bin, test_batch.bin): records of one
// label byte and 32×32×3 pixel bytes stored channel by channel, turned into NHWC floats.
#pragma once

#include <pcnas/data/byte_reader.hpp>
#include <pcnas/data/dataset.hpp>
#include <pcnas/data/error.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace pcnas::data {

inline constexpr std::size_t cifar10_side = 32;
inline constexpr std::size_t cifar10_channels = 3;
inline constexpr std::size_t cifar10_image_bytes = cifar10_side * cifar10_side * cifar10_channels;
inline constexpr std::size_t cifar10_record_bytes = 1 + cifar10_image_bytes;

// The per-channel (R, G, B) statistics published for the CIFAR-10 training set; the data are
// not installed here, so unlike the Fashion-MNIST constants no test recomputes them.
inline normalization cifar10_normalization() {
  return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
}

// All records of the given batch files, in file order. A file may be gzip-compressed.
inline dataset read_cifar10(std::span<const std::filesystem::path> files,
                            const normalization& norm = cifar10_normalization()) {
  detail::check_normalization(norm, cifar10_channels);
  const auto table = detail::byte_to_float_table(norm);
  constexpr std::size_t plane = cifar10_side * cifar10_side;

  dataset ds;
  ds.height = cifar10_side;
  ds.width = cifar10_side;
  ds.channels = cifar10_channels;
  ds.num_classes = 10;
  ds.norm = norm;
  for (const auto& file : files) {
    const auto bytes = read_file_bytes(file);
    if (bytes.empty()) throw data_error(file, "file is empty; expected CIFAR-10 records of 3073 bytes");
    if (bytes.size() % cifar10_record_bytes != 0)
      throw data_error(file, std::to_string(bytes.size()) + " bytes is not a whole number of " +
                                 std::to_string(cifar10_record_bytes) +
                                 "-byte records (1 label byte + 3×32×32 pixel bytes): " +
                                 std::to_string(bytes.size() / cifar10_record_bytes) + " records and " +
                                 std::to_string(bytes.size() % cifar10_record_bytes) +
                                 " bytes left over; the file is truncated or not a CIFAR-10 binary batch");
    const std::size_t records = bytes.size() / cifar10_record_bytes;
    for (std::size_t r = 0; r < records; ++r)
      if (bytes[r * cifar10_record_bytes] >= ds.num_classes)
        throw data_error(file, "label " + std::to_string(bytes[r * cifar10_record_bytes]) + " at record " +
                                   std::to_string(r) + " is out of range: expected 0..9 for 10 classes");

    const std::size_t first = ds.count;
    ds.count += records;
    ds.labels.resize(ds.count);
    ds.images.resize(ds.count * cifar10_image_bytes);
    for (std::size_t r = 0; r < records; ++r) {
      const std::uint8_t* record = bytes.data() + r * cifar10_record_bytes;
      ds.labels[first + r] = record[0];
      float* out = ds.images.data() + (first + r) * cifar10_image_bytes;
      // The file stores all of R, then G, then B; NHWC wants them interleaved per pixel.
      for (std::size_t p = 0; p < plane; ++p)
        for (std::size_t c = 0; c < cifar10_channels; ++c)
          out[p * cifar10_channels + c] = table[c * 256 + record[1 + c * plane + p]];
    }
  }
  return ds;
}

// data_batch_1..5 (train) or test_batch (test) from `dir`, each plain or .gz.
inline dataset load_cifar10(const std::filesystem::path& dir, split which,
                            const normalization& norm = cifar10_normalization()) {
  std::vector<std::filesystem::path> files;
  if (which == split::train) {
    for (int i = 1; i <= 5; ++i) files.push_back(find_data_file(dir, "data_batch_" + std::to_string(i) + ".bin"));
  } else {
    files.push_back(find_data_file(dir, "test_batch.bin"));
  }
  return read_cifar10(files, norm);
}

}  // namespace pcnas::data
