// The one binary persistence layer: checkpoints and saved networks are fields written in a
// defined byte order, wrapped in a checksummed frame, written atomically. No third-party
// dependency.
//
// Frame layout (integers little-endian on every host):
//   0  magic            8 bytes, names what the file holds ("PCNASCKP", "PCNASNET")
//   8  u32 version      of the payload's layout
//  12  u32 reserved     0
//  16  u64 size         bytes of payload
//  24  u64 checksum     FNV-1a 64 of the payload
//  32  payload
//
// Fields: unsigned and signed integers as 8 bytes little-endian, doubles and floats as the
// little-endian bytes of their IEEE-754 bits (so a resumed search sees the very same numbers),
// strings and vectors as a u64 count then the elements. A state type lists its fields once, in
// a `fields(archive&, state&)` function that both writes and reads it (see `archive`).
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <pcnas/io/atomic_file.hpp>
#include <pcnas/io/checksum.hpp>

namespace pcnas::io {

/// A file or byte string that is truncated, damaged, foreign or of another version. path() is
/// where it came from (empty for bytes that have none).
class format_error : public file_error {
 public:
  using file_error::file_error;
};

inline constexpr std::size_t frame_header_size = 32;

/// Appends fields to a payload.
class byte_writer {
 public:
  static constexpr bool reading = false;

  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
  void boolean(bool v) { u64(v ? 1 : 0); }
  void str(std::string_view s) {
    u64(s.size());
    bytes_.append(s.data(), s.size());
  }
  void ints(std::span<const int> v) {
    u64(v.size());
    for (int x : v) i64(x);
  }
  void doubles(std::span<const double> v) {
    u64(v.size());
    for (double x : v) f64(x);
  }
  /// A count, then each float's four bytes little-endian.
  void floats(std::span<const float> v) {
    u64(v.size());
    const std::size_t at = bytes_.size();
    bytes_.resize(at + 4 * v.size());
    char* out = bytes_.data() + at;
    for (float x : v) {
      const auto bits = std::bit_cast<std::uint32_t>(x);
      for (int i = 0; i < 4; ++i) *out++ = static_cast<char>((bits >> (8 * i)) & 0xff);
    }
  }

  const std::string& payload() const noexcept { return bytes_; }
  std::string take() && noexcept { return std::move(bytes_); }

 private:
  std::string bytes_;
};

/// Reads fields back; running past the end means the payload is not what its frame claims.
class byte_reader {
 public:
  static constexpr bool reading = true;

  byte_reader(std::string payload, std::string source) : bytes_(std::move(payload)), source_(std::move(source)) {}

  std::uint64_t u64() {
    need(8);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
    pos_ += 8;
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  double f64() { return std::bit_cast<double>(u64()); }
  bool boolean() { return u64() != 0; }
  /// A count that cannot fit in what is left of the payload is corruption, not a huge vector.
  std::size_t count(std::size_t element_size) {
    const std::uint64_t n = u64();
    if (element_size != 0 && n > (bytes_.size() - pos_) / element_size) fail("a length field is larger than the file");
    return static_cast<std::size_t>(n);
  }
  std::string str() {
    const std::size_t n = count(1);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::vector<int> ints() {
    std::vector<int> v(count(8));
    for (auto& x : v) x = static_cast<int>(i64());
    return v;
  }
  std::vector<double> doubles() {
    std::vector<double> v(count(8));
    for (auto& x : v) x = f64();
    return v;
  }
  std::vector<float> floats() {
    std::vector<float> v(count(4));
    const auto* in = reinterpret_cast<const unsigned char*>(bytes_.data() + pos_);
    for (auto& x : v) {
      std::uint32_t bits = 0;
      for (int i = 0; i < 4; ++i) bits |= static_cast<std::uint32_t>(*in++) << (8 * i);
      x = std::bit_cast<float>(bits);
    }
    pos_ += 4 * v.size();
    return v;
  }
  bool at_end() const noexcept { return pos_ == bytes_.size(); }
  void expect_end(std::string_view after) const {
    if (!at_end()) fail("unexpected bytes after " + std::string(after));
  }
  const std::string& source() const noexcept { return source_; }

  [[noreturn]] void fail(const std::string& what) const { throw format_error(source_, what_prefix_ + what); }
  /// What every message says first, e.g. "refused checkpoint: ".
  void set_prefix(std::string prefix) { what_prefix_ = std::move(prefix); }

 private:
  void need(std::size_t n) const {
    if (bytes_.size() - pos_ < n) fail("the payload ends early (the file is truncated or damaged)");
  }

  std::string bytes_;
  std::string source_;
  std::string what_prefix_;
  std::size_t pos_ = 0;
};

// ------------------------------------------------------------------------------ one function, both directions

/// Wraps a byte_writer or a byte_reader so that `ar(a, b, c)` writes or reads the fields in
/// that order: a state's layout is written down once. Fields: unsigned and signed integers,
/// bool, double, std::string, std::array and std::vector of fields, and any type with a
/// `fields(archive&, T&)` found by argument-dependent lookup.
template <class Stream>
class archive {
 public:
  static constexpr bool reading = Stream::reading;
  explicit archive(Stream& s) : s_(s) {}
  Stream& stream() noexcept { return s_; }

  template <class... T>
  void operator()(T&... fields) {
    (one(fields), ...);
  }

 private:
  template <class T>
  void one(T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      if constexpr (reading) v = s_.boolean(); else s_.boolean(v);
    } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
      if constexpr (reading) v = static_cast<T>(s_.u64()); else s_.u64(v);
    } else if constexpr (std::is_integral_v<T>) {
      if constexpr (reading) v = static_cast<T>(s_.i64()); else s_.i64(v);
    } else if constexpr (std::is_same_v<T, double>) {
      if constexpr (reading) v = s_.f64(); else s_.f64(v);
    } else if constexpr (std::is_same_v<T, std::string>) {
      if constexpr (reading) v = s_.str(); else s_.str(v);
    } else if constexpr (requires { std::tuple_size<T>::value; v[0]; }) {
      for (auto& x : v) one(x);
    } else if constexpr (requires { v.resize(std::size_t{}); v.data(); }) {
      // Each element takes at least 8 bytes, which bounds a count read from a damaged file.
      if constexpr (reading) v.resize(s_.count(8)); else s_.u64(v.size());
      for (auto& x : v) one(x);
    } else {
      fields(*this, v);
    }
  }

  Stream& s_;
};

/// The payload of a state written by its `fields` function.
template <class T>
void write_fields(byte_writer& w, T& state) {
  archive<byte_writer> ar(w);
  fields(ar, state);
}
template <class T>
void read_fields(byte_reader& r, T& state) {
  archive<byte_reader> ar(r);
  fields(ar, state);
}

// ------------------------------------------------------------------------------ the frame

/// `magic` is exactly 8 bytes.
inline std::string frame(std::string_view magic, std::uint32_t version, std::string_view payload) {
  if (magic.size() != 8) throw std::invalid_argument("pcnas::io::frame: the magic must be 8 bytes");
  byte_writer header;
  header.u64(version);  // u32 version + u32 reserved, little-endian
  header.u64(payload.size());
  header.u64(fnv1a64(payload));
  std::string out(magic);
  out += header.payload();
  out.append(payload.data(), payload.size());
  return out;
}

/// What a frame is checked against, and how its refusals are worded: `what` names the kind of
/// file ("pcnas checkpoint"), `prefix` starts each message ("refused checkpoint: ").
struct frame_kind {
  std::string_view magic;
  std::uint32_t version;
  std::string_view what;
  std::string_view prefix;
};

/// Checks a frame's magic, version, size and checksum, and returns a reader of its payload.
inline byte_reader unframe(std::string bytes, const frame_kind& kind, std::string source) {
  const std::string prefix(kind.prefix);
  const auto refuse = [&](const std::string& what) { return format_error(source, prefix + what); };
  if (bytes.size() < frame_header_size)
    throw refuse("the file has " + std::to_string(bytes.size()) + " bytes, less than the " +
                 std::to_string(frame_header_size) + "-byte header (truncated)");
  if (std::string_view(bytes).substr(0, 8) != kind.magic)
    throw refuse("not a " + std::string(kind.what) + " (the file does not start with \"" + std::string(kind.magic) +
                 "\")");
  byte_reader header(bytes.substr(8, frame_header_size - 8), source);
  const auto version = static_cast<std::uint32_t>(header.u64() & 0xffffffffULL);
  if (version != kind.version)
    throw refuse("format version " + std::to_string(version) + "; this library reads version " +
                 std::to_string(kind.version));
  const std::uint64_t size = header.u64();
  const std::uint64_t checksum = header.u64();
  const std::uint64_t present = bytes.size() - frame_header_size;
  if (present != size)
    throw refuse("the header announces " + std::to_string(size) + " bytes but the file holds " +
                 std::to_string(present) + (present < size ? " (truncated)" : " (trailing bytes)"));
  bytes.erase(0, frame_header_size);
  if (fnv1a64(bytes) != checksum) throw refuse("the checksum does not match (the file is damaged)");
  byte_reader reader(std::move(bytes), std::move(source));
  reader.set_prefix(prefix);
  return reader;
}

inline void write_framed_file(const std::filesystem::path& path, const frame_kind& kind, std::string_view payload) {
  write_file_atomically(path, frame(kind.magic, kind.version, payload));
}

inline byte_reader read_framed_file(const std::filesystem::path& path, const frame_kind& kind) {
  return unframe(read_file(path), kind, path.string());
}

}  // namespace pcnas::io
