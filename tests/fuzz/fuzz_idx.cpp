// IDX images and labels, plain or gzip (the raw bytes: corrupt gzip streams included).
#include <pcnas/data/idx.hpp>

#include "fuzz_file.hpp"

#include <exception>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& file = pcnas_fuzz::write_scratch(data, size);
  try {
    const auto images = pcnas::data::read_idx_images(file);
    if (images.pixels.size() != images.count * images.rows * images.cols) std::abort();
  } catch (const std::exception&) {
  }
  try {
    const auto labels = pcnas::data::read_idx_labels(file, 10);
    for (auto l : labels)
      if (l >= 10) std::abort();
  } catch (const std::exception&) {
  }
  return 0;
}
