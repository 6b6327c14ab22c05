// Checkpoint files: a search's state in the library's binary frame (io/binary.hpp), magic
// "PCNASCKP", written atomically. A truncated, damaged or foreign file is refused with a
// message that says which; the previous checkpoint is only ever replaced by a rename.
//
// Payload: str kind ("pc_nas", "uniform_training", "evolution", "random_search"), u64
// fingerprint of the options and constraint that determine the result, then the method's
// fields, the supernet's own state last.
#pragma once

#include <cstdint>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include <pcnas/cost/constraint.hpp>
#include <pcnas/io/binary.hpp>

namespace pcnas::search {

// Version 2: the supernet's state is embedded without a frame of its own when the supernet
// offers save_payload/load_payload.
inline constexpr io::frame_kind checkpoint_frame{
    .magic = "PCNASCKP", .version = 2, .what = "pcnas checkpoint", .prefix = "refused checkpoint: "};

struct checkpoint_options {
  std::filesystem::path path;       // empty: no checkpoints
  std::size_t every_steps = 1000;   // training steps; also after every milestone of the method
  bool resume = true;               // continue from `path` when it exists
};

using checkpoint_writer = io::byte_writer;
using checkpoint_reader = io::byte_reader;

inline std::string frame_checkpoint(std::string_view payload) {
  return io::frame(checkpoint_frame.magic, checkpoint_frame.version, payload);
}

inline void write_checkpoint(const std::filesystem::path& path, const checkpoint_writer& payload) {
  io::write_framed_file(path, checkpoint_frame, payload.payload());
}

// Reads and checks the frame, then the kind and the fingerprint: a checkpoint of another
// algorithm, or of a search with other options or another constraint, would not resume to
// the result it promises.
inline checkpoint_reader read_checkpoint(const std::filesystem::path& path, std::string_view kind,
                                         std::uint64_t fingerprint) {
  checkpoint_reader reader = io::read_framed_file(path, checkpoint_frame);
  const std::string found_kind = reader.str();
  if (found_kind != kind) reader.fail("it holds a '" + found_kind + "' state, expected '" + std::string(kind) + "'");
  if (reader.u64() != fingerprint)
    reader.fail("it was written by a search with other options, another seed or another constraint; "
                "resuming it would not give this search's result (remove it or point to another path)");
  return reader;
}

// The supernet's own state inside a checkpoint: its fields straight into the checkpoint's
// payload when it offers save_payload/load_payload (one frame, one checksum), else the bytes of
// its save()/load() as one string field.
template <class Supernet>
void save_supernet(const Supernet& net, checkpoint_writer& w) {
  if constexpr (requires { net.save_payload(w); }) {
    net.save_payload(w);
  } else {
    std::ostringstream out(std::ios::binary);
    net.save(out);
    if (!out) throw std::runtime_error("the supernet's save() failed to write its state");
    w.str(std::move(out).str());
  }
}

template <class Supernet>
void load_supernet(Supernet& net, checkpoint_reader& r) {
  if constexpr (requires { net.load_payload(r); }) {
    net.load_payload(r);
  } else {
    std::istringstream in(r.str(), std::ios::binary);
    net.load(in);
    if (in.fail()) r.fail("the supernet's load() could not read the state it saved");
  }
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
