// IDX through gzip: the input is compressed first, so that mutations of the IDX structure
// reach the parser through zlib's stream (the raw target mostly hits gzip's own checks).
#include <pcnas/data/idx.hpp>

#include "fuzz_file.hpp"

#include <zlib.h>

#include <exception>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& file = pcnas_fuzz::scratch_file();
  gzFile gz = gzopen(file.c_str(), "wb1");
  if (gz == nullptr) std::abort();
  if (size != 0 && gzwrite(gz, data, static_cast<unsigned>(size)) != static_cast<int>(size)) std::abort();
  gzclose(gz);
  try {
    const auto images = pcnas::data::read_idx_images(file);
    if (images.pixels.size() != images.count * images.rows * images.cols) std::abort();
  } catch (const std::exception&) {
  }
  try {
    (void)pcnas::data::read_idx_labels(file, 10);
  } catch (const std::exception&) {
  }
  return 0;
}
