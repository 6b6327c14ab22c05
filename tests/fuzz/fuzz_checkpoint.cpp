// Search checkpoints. The first byte picks the mode: even, the input is the whole file (the
// frame's own checks: magic, version, size, checksum); odd, the input is a payload that gets
// a correct frame, so that mutations reach the kind, the fingerprint and the PC-NAS state
// reader behind the checksum.
#include <pcnas/search/checkpoint.hpp>
#include <pcnas/search/pc_nas.hpp>

#include "fuzz_file.hpp"

#include <exception>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool framed = (data[0] & 1) != 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string file = framed ? pcnas::search::frame_checkpoint(body) : body;
  const auto& path = pcnas_fuzz::write_scratch(reinterpret_cast<const std::uint8_t*>(file.data()), file.size());
  // The kind and fingerprint the payload claims, so that read_checkpoint accepts them.
  std::string kind = "pc_nas";
  std::uint64_t fingerprint = 0;
  try {
    pcnas::search::checkpoint_reader peek(body, "peek");
    kind = peek.str();
    fingerprint = peek.u64();
  } catch (const std::exception&) {
  }
  try {
    auto reader = pcnas::search::read_checkpoint(path, kind, fingerprint);
    pcnas::search::detail::pc_nas_state state;
    pcnas::io::read_fields(reader, state);
    (void)reader.str();
    (void)reader.at_end();
  } catch (const std::exception&) {
  }
  return 0;
}
