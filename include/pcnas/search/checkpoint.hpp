// Checkpoint files: a versioned, checksummed binary frame around a search's state, written
// atomically. A truncated, damaged or foreign file is refused with a message that says which;
// the previous checkpoint is only ever replaced by a rename.
//
// Layout (integers little-endian, doubles as their IEEE-754 bits, so a resumed search sees the
// very same numbers):
//   0  "PCNASCKP"       8 bytes magic
//   8  u32 version      checkpoint_format_version
//  12  u32 reserved     0
//  16  u64 size         bytes of payload
//  24  u64 checksum     FNV-1a 64 of the payload
//  32  payload: str kind ("pc_nas", "uniform_training", "evolution"), u64 fingerprint of the
//      options and constraint that determine the result, then the algorithm's fields, the
//      supernet's own save() last as a string.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/io/atomic_file.hpp>
#include <pcnas/io/checksum.hpp>

namespace pcnas::search {

inline constexpr std::uint32_t checkpoint_format_version = 1;
inline constexpr std::string_view checkpoint_magic = "PCNASCKP";
inline constexpr std::size_t checkpoint_header_size = 32;

struct checkpoint_options {
  std::filesystem::path path;       // empty: no checkpoints
  std::size_t every_steps = 1000;   // also after every PC-NAS pool step and evolution generation
  bool resume = true;               // continue from `path` when it exists
};

// Appends fields to a payload.
class checkpoint_writer {
 public:
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

  const std::string& payload() const noexcept { return bytes_; }

 private:
  std::string bytes_;
};

// Reads fields back; running past the end means the payload is not what its header claims.
class checkpoint_reader {
 public:
  checkpoint_reader(std::string payload, std::string source) : bytes_(std::move(payload)), source_(std::move(source)) {}

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
  // A count that cannot fit in what is left of the payload is corruption, not a huge vector.
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
  bool at_end() const noexcept { return pos_ == bytes_.size(); }
  const std::string& source() const noexcept { return source_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(source_ + ": refused checkpoint: " + what);
  }

 private:
  void need(std::size_t n) const {
    if (bytes_.size() - pos_ < n) fail("the payload ends early (the file is truncated or damaged)");
  }

  std::string bytes_;
  std::string source_;
  std::size_t pos_ = 0;
};

// The frame around a payload.
inline std::string frame_checkpoint(std::string_view payload) {
  checkpoint_writer header;
  std::string out(checkpoint_magic);
  header.u64(checkpoint_format_version);  // u32 version + u32 reserved, little-endian
  header.u64(payload.size());
  header.u64(io::fnv1a64(payload));
  out += header.payload();
  out.append(payload.data(), payload.size());
  return out;
}

inline void write_checkpoint(const std::filesystem::path& path, const checkpoint_writer& payload) {
  io::write_file_atomically(path, frame_checkpoint(payload.payload()));
}

// Reads and checks the frame, then the kind and the fingerprint: a checkpoint of another
// algorithm, or of a search with other options or another constraint, would not resume to
// the result it promises.
inline checkpoint_reader read_checkpoint(const std::filesystem::path& path, std::string_view kind,
                                         std::uint64_t fingerprint) {
  const std::string source = path.string();
  const std::string bytes = io::read_file(path);
  auto refuse = [&](const std::string& what) { return std::runtime_error(source + ": refused checkpoint: " + what); };
  if (bytes.size() < checkpoint_header_size)
    throw refuse("the file has " + std::to_string(bytes.size()) + " bytes, less than the " +
                 std::to_string(checkpoint_header_size) + "-byte header (truncated)");
  if (std::string_view(bytes).substr(0, checkpoint_magic.size()) != checkpoint_magic)
    throw refuse("not a pcnas checkpoint (the file does not start with \"PCNASCKP\")");
  checkpoint_reader header(bytes.substr(checkpoint_magic.size(), checkpoint_header_size - checkpoint_magic.size()), source);
  const std::uint64_t version_word = header.u64();
  const auto version = static_cast<std::uint32_t>(version_word & 0xffffffffULL);
  if (version != checkpoint_format_version)
    throw refuse("format version " + std::to_string(version) + "; this library reads version " +
                 std::to_string(checkpoint_format_version));
  const std::uint64_t size = header.u64();
  const std::uint64_t checksum = header.u64();
  const std::uint64_t present = bytes.size() - checkpoint_header_size;
  if (present != size)
    throw refuse("the header announces " + std::to_string(size) + " bytes of state but the file holds " +
                 std::to_string(present) + (present < size ? " (truncated)" : " (trailing bytes)"));
  std::string payload = bytes.substr(checkpoint_header_size);
  if (io::fnv1a64(payload) != checksum) throw refuse("the checksum does not match (the file is damaged)");
  checkpoint_reader reader(std::move(payload), source);
  const std::string found_kind = reader.str();
  if (found_kind != kind)
    throw refuse("it holds a '" + found_kind + "' state, expected '" + std::string(kind) + "'");
  if (reader.u64() != fingerprint)
    throw refuse("it was written by a search with other options, another seed or another constraint; "
                 "resuming it would not give this search's result (remove it or point to another path)");
  return reader;
}

// The supernet's own state as bytes, through its save()/load().
template <class Supernet>
std::string save_supernet(const Supernet& net) {
  std::ostringstream out(std::ios::binary);
  net.save(out);
  if (!out) throw std::runtime_error("the supernet's save() failed to write its state");
  return std::move(out).str();
}

template <class Supernet>
void load_supernet(Supernet& net, const std::string& state, const std::string& source) {
  std::istringstream in(state, std::ios::binary);
  net.load(in);
  if (in.fail()) throw std::runtime_error(source + ": the supernet's load() could not read the state it saved");
}

// Fingerprints: FNV-1a over the fields that determine a search's result.
class fingerprint_builder {
 public:
  fingerprint_builder& add(std::uint64_t v) {
    writer_.u64(v);
    return *this;
  }
  fingerprint_builder& add(double v) {
    writer_.f64(v);
    return *this;
  }
  fingerprint_builder& add(std::string_view s) {
    writer_.str(s);
    return *this;
  }
  // The decisions a constraint makes are fixed by its grid costs and budget; the model's values
  // go into the reported costs.
  fingerprint_builder& add(const cost::constraint& k) {
    add(k.limit());
    add(k.model().fixed);
    for (const auto& row : k.model().per_layer)
      for (double c : row) add(c);
    add(static_cast<std::uint64_t>(k.num_layers()));
    add(static_cast<std::uint64_t>(k.budget_units()));
    for (const auto& row : k.unit_costs()) {
      add(static_cast<std::uint64_t>(row.size()));
      for (auto u : row) add(static_cast<std::uint64_t>(u));
    }
    return *this;
  }
  std::uint64_t value() const noexcept { return io::fnv1a64(writer_.payload()); }

 private:
  checkpoint_writer writer_;
};

}  // namespace pcnas::search
