// Sequential reads of a file that may or may not be gzip-compressed (zlib decides from the
// content, not from the name), with zlib's errors turned into data_error naming the file.
#pragma once

#include <pcnas/data/error.hpp>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace pcnas::data {

class byte_reader {
 public:
  explicit byte_reader(std::filesystem::path file) : file_(std::move(file)) {
    std::error_code ec;
    if (!std::filesystem::exists(file_, ec)) throw data_error(file_, "no such file");
    if (std::filesystem::is_directory(file_, ec)) throw data_error(file_, "is a directory, not a file");
    errno = 0;
    handle_ = gzopen(file_.string().c_str(), "rb");
    if (handle_ == nullptr) {
      const int err = errno;
      throw data_error(file_, std::string("cannot open: ") +
                                  (err != 0 ? std::strerror(err) : "zlib could not allocate its state"));
    }
    // The default 8 KiB buffer makes a 47 MB image file cost thousands of read calls.
    gzbuffer(handle_, 1u << 17);
  }

  byte_reader(const byte_reader&) = delete;
  byte_reader& operator=(const byte_reader&) = delete;
  byte_reader(byte_reader&& other) noexcept
      : file_(std::move(other.file_)),
        handle_(std::exchange(other.handle_, nullptr)),
        bytes_read_(other.bytes_read_),
        ended_early_(other.ended_early_) {}
  byte_reader& operator=(byte_reader&& other) noexcept {
    if (this != &other) {
      close();
      file_ = std::move(other.file_);
      handle_ = std::exchange(other.handle_, nullptr);
      bytes_read_ = other.bytes_read_;
      ended_early_ = other.ended_early_;
    }
    return *this;
  }
  ~byte_reader() { close(); }

  // Fills `out` and returns how many bytes it got: fewer than out.size() only at the end of
  // the data. A corrupt compressed stream throws; one that merely stops early reads short and
  // sets stream_ended_early(), so that the caller can report the size it expected.
  std::size_t read(std::span<std::uint8_t> out) {
    std::size_t got = 0;
    while (got < out.size()) {
      const auto want = static_cast<unsigned>(std::min<std::size_t>(out.size() - got, INT_MAX / 2));
      const int n = gzread(handle_, out.data() + got, want);
      if (n < 0) throw data_error(file_, "cannot decompress: " + zlib_message());
      got += static_cast<std::size_t>(n);
      if (static_cast<unsigned>(n) < want) {
        int errnum = Z_OK;
        gzerror(handle_, &errnum);
        if (errnum == Z_BUF_ERROR) ended_early_ = true;
        else if (errnum != Z_OK) throw data_error(file_, "cannot read: " + zlib_message());
        break;
      }
    }
    bytes_read_ += got;
    return got;
  }

  // Up to n bytes, fewer only at the end of the data. The buffer grows with the data that
  // actually arrives, so a corrupt header that promises gigabytes costs no gigabytes.
  std::vector<std::uint8_t> read_bytes(std::size_t n) {
    // Chunks double from 64 KiB up to 16 MiB, so that a small file costs no large zeroed buffer.
    constexpr std::size_t first_chunk = std::size_t{1} << 16, max_chunk = std::size_t{1} << 24;
    std::vector<std::uint8_t> bytes;
    while (bytes.size() < n) {
      const std::size_t old = bytes.size();
      const std::size_t want = std::min(std::clamp(old, first_chunk, max_chunk), n - old);
      bytes.resize(old + want);
      const std::size_t got = read(std::span<std::uint8_t>(bytes.data() + old, want));
      bytes.resize(old + got);
      if (got < want) break;
    }
    return bytes;
  }

  // Everything left in the file.
  std::vector<std::uint8_t> read_rest() { return read_bytes(SIZE_MAX); }

  // True when no byte is left; consumes one byte otherwise (used to detect trailing data).
  bool at_end() {
    std::uint8_t byte = 0;
    return read(std::span<std::uint8_t>(&byte, 1)) == 0;
  }

  const std::filesystem::path& file() const noexcept { return file_; }
  std::size_t bytes_read() const noexcept { return bytes_read_; }
  bool compressed() const noexcept { return handle_ != nullptr && gzdirect(handle_) == 0; }
  bool stream_ended_early() const noexcept { return ended_early_; }

 private:
  std::string zlib_message() const {
    int errnum = Z_OK;
    const char* message = gzerror(handle_, &errnum);
    if (errnum == Z_ERRNO) return std::strerror(errno);
    return message != nullptr && *message != '\0' ? message : "zlib error " + std::to_string(errnum);
  }

  void close() noexcept {
    if (handle_ != nullptr) gzclose(handle_);
    handle_ = nullptr;
  }

  std::filesystem::path file_;
  gzFile handle_ = nullptr;
  std::size_t bytes_read_ = 0;
  bool ended_early_ = false;
};

// A whole file, decompressed when it is gzip. A gzip stream that stops early is an error here:
// without a size to compare with, the checksum is the only sign that nothing is missing.
inline std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& file) {
  byte_reader reader(file);
  auto bytes = reader.read_rest();
  if (reader.stream_ended_early())
    throw data_error(file, "truncated file: the gzip stream ends early, after " + std::to_string(bytes.size()) +
                               " decompressed bytes");
  return bytes;
}

}  // namespace pcnas::data
