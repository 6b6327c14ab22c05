// The fuzz input as a file: the readers under test open paths (zlib decides from the content
// whether a file is gzip), so each input is written to one scratch file per process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include <unistd.h>

namespace pcnas_fuzz {

inline const std::filesystem::path& scratch_file() {
  static const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                            ("pcnas_fuzz_" + std::to_string(static_cast<long long>(::getpid())));
  return path;
}

inline const std::filesystem::path& write_scratch(const std::uint8_t* data, std::size_t size) {
  const auto& path = scratch_file();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size != 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

}  // namespace pcnas_fuzz
