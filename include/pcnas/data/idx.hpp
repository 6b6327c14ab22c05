// Reader for IDX files (MNIST, Fashion-MNIST), plain or .gz: unsigned-byte images and labels,
// checked against their headers before any number reaches a model.
#pragma once

#include <pcnas/data/byte_reader.hpp>
#include <pcnas/data/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcnas::data {

// Magic numbers: two zero bytes, the element type (0x08 = unsigned byte), the dimension count.
inline constexpr std::uint32_t idx_images_magic = 0x00000803;
inline constexpr std::uint32_t idx_labels_magic = 0x00000801;

// count × rows × cols pixels, row-major, one byte each (0 = background).
struct idx_images {
  std::size_t count = 0;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::uint8_t> pixels;
};

struct idx_labeled_images {
  idx_images images;
  std::vector<std::uint8_t> labels;
};

namespace detail {

inline std::string hex32(std::uint32_t v) {
  char text[11];
  std::snprintf(text, sizeof text, "0x%08X", static_cast<unsigned>(v));
  return text;
}

inline std::string describe_idx_magic(std::uint32_t magic) {
  if ((magic >> 16) != 0) return "not an IDX header";
  const unsigned type = (magic >> 8) & 0xff;
  const unsigned dims = magic & 0xff;
  const char* type_name = type == 0x08   ? "unsigned byte"
                          : type == 0x09 ? "signed byte"
                          : type == 0x0B ? "short"
                          : type == 0x0C ? "int"
                          : type == 0x0D ? "float"
                          : type == 0x0E ? "double"
                                         : "unknown element type";
  return std::string("IDX ") + type_name + ", " + std::to_string(dims) + " dimension" +
         (dims == 1 ? "" : "s");
}

inline std::uint32_t big_endian32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

struct idx_payload {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;
};

// Reads header and data of an unsigned-byte IDX file with the expected magic, checking that
// the data are exactly as long as the dimensions say.
inline idx_payload read_idx(const std::filesystem::path& file, std::uint32_t expected_magic,
                            const char* what) {
  byte_reader reader(file);
  const std::size_t ndims = expected_magic & 0xff;
  const std::size_t header_size = 4 + 4 * ndims;
  const auto ended_early_note = [&] {
    return reader.stream_ended_early() ? " (the gzip stream ends early)" : "";
  };

  std::array<std::uint8_t, 4> magic_bytes{};
  if (reader.read(magic_bytes) < 4)
    throw data_error(file, std::string("truncated file: expected at least ") + std::to_string(header_size) +
                               " bytes (the IDX header), got " + std::to_string(reader.bytes_read()) +
                               ended_early_note());
  const std::uint32_t magic = big_endian32(magic_bytes.data());
  if (magic != expected_magic)
    throw data_error(file, std::string("bad magic number for ") + what + ": expected " + hex32(expected_magic) +
                               " (" + describe_idx_magic(expected_magic) + "), found " + hex32(magic) + " (" +
                               describe_idx_magic(magic) + ")");

  idx_payload payload;
  std::uint64_t expected_data = 1;
  for (std::size_t d = 0; d < ndims; ++d) {
    std::array<std::uint8_t, 4> dim_bytes{};
    if (reader.read(dim_bytes) < 4)
      throw data_error(file, "truncated file: expected at least " + std::to_string(header_size) +
                                 " bytes (the IDX header), got " + std::to_string(reader.bytes_read()) +
                                 ended_early_note());
    const std::uint32_t dim = big_endian32(dim_bytes.data());
    // Every dimension but the item count describes one item, and an empty item is no image.
    if (d > 0 && dim == 0)
      throw data_error(file, "dimension " + std::to_string(d) + " of " + what + " is 0; expected at least 1");
    if (dim != 0 && expected_data > std::numeric_limits<std::uint64_t>::max() / dim)
      throw data_error(file, std::string("dimensions of ") + what + " overflow: the header is corrupt");
    expected_data *= dim;
    payload.dims.push_back(dim);
  }
  if (expected_data > std::numeric_limits<std::size_t>::max() - header_size)
    throw data_error(file, "dimensions of " + std::string(what) + " are too large for this machine");

  payload.data = reader.read_bytes(static_cast<std::size_t>(expected_data));
  if (payload.data.size() < expected_data)
    throw data_error(file, "truncated file: expected " + std::to_string(header_size + expected_data) + " bytes (" +
                               std::to_string(header_size) + "-byte header + " + std::to_string(expected_data) +
                               " data bytes), got " + std::to_string(header_size + payload.data.size()) +
                               ended_early_note());
  if (!reader.at_end())
    throw data_error(file, "file is longer than its header says: expected " +
                               std::to_string(header_size + expected_data) +
                               " bytes; the dimensions in the header are probably wrong");
  if (reader.stream_ended_early())
    throw data_error(file, "truncated file: the data are complete but the gzip stream ends before its checksum, "
                           "so they cannot be trusted");
  return payload;
}

inline void check_num_classes(std::size_t num_classes) {
  if (num_classes == 0 || num_classes > 256)
    throw std::invalid_argument("pcnas::data: num_classes must be in 1..256 (labels are bytes), got " +
                                std::to_string(num_classes));
}

// The first label >= num_classes, reported with its position.
inline void check_labels(const std::filesystem::path& file, std::span<const std::uint8_t> labels,
                         std::size_t num_classes, const char* position_name) {
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= num_classes)
      throw data_error(file, "label " + std::to_string(labels[i]) + " at " + position_name + " " +
                                 std::to_string(i) + " is out of range: expected 0.." +
                                 std::to_string(num_classes - 1) + " for " + std::to_string(num_classes) +
                                 " classes");
}

}  // namespace detail

inline idx_images read_idx_images(const std::filesystem::path& file) {
  auto payload = detail::read_idx(file, idx_images_magic, "IDX images");
  idx_images images;
  images.count = payload.dims[0];
  images.rows = payload.dims[1];
  images.cols = payload.dims[2];
  images.pixels = std::move(payload.data);
  return images;
}

inline std::vector<std::uint8_t> read_idx_labels(const std::filesystem::path& file, std::size_t num_classes) {
  detail::check_num_classes(num_classes);
  auto payload = detail::read_idx(file, idx_labels_magic, "IDX labels");
  detail::check_labels(file, payload.data, num_classes, "index");
  return std::move(payload.data);
}

// Images and their labels, which must be equally many.
inline idx_labeled_images read_idx_labeled(const std::filesystem::path& images_file,
                                           const std::filesystem::path& labels_file, std::size_t num_classes) {
  idx_labeled_images out;
  out.labels = read_idx_labels(labels_file, num_classes);
  out.images = read_idx_images(images_file);
  if (out.images.count != out.labels.size())
    throw data_error(labels_file, "holds " + std::to_string(out.labels.size()) + " labels but " +
                                      images_file.string() + " holds " + std::to_string(out.images.count) +
                                      " images; expected one label per image");
  return out;
}

}  // namespace pcnas::data
