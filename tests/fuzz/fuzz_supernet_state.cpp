// Supernet weight/state files (supernet_trainer::save/load), on a small space so that a state
// is a few kB. The first byte picks the mode: 0, the input is the whole file; 1, the input is
// a payload that gets a correct header and checksum; 2, the input is a list of (offset, byte)
// patches to a real state's payload, checksum fixed, so that mutations reach every field.
#include <pcnas/backend/eigen.hpp>
#include <pcnas/io/binary.hpp>
#include <pcnas/nn/supernet_trainer.hpp>
#include <pcnas/space/space.hpp>

#include <exception>
#include <sstream>

namespace {
namespace sp = pcnas::space;
using ops = sp::choices<sp::mbconv<3, 1>, sp::mbconv<5, 3>>;
struct small : sp::search_space<sp::input<1, 8, 8>, sp::stem<sp::fixed<sp::conv<3>, 4, 1>>,
                                sp::body<sp::stage<2, 4, 6, 2, ops, sp::with_zero<ops>>>, sp::head<8, 3>> {
  static constexpr std::string_view name = "small";
};
using space = small;
using backend = pcnas::backend::eigen::backend;

pcnas::data::dataset tiny_data() {
  pcnas::data::dataset ds;
  ds.count = 4;
  ds.height = ds.width = 8;
  ds.channels = 1;
  ds.num_classes = 3;
  ds.norm = pcnas::data::identity_normalization(1);
  ds.images.assign(4 * 8 * 8, 0.5f);
  ds.labels = {0, 1, 2, 0};
  return ds;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto train = tiny_data();
  static backend b({.threads = 1});
  static pcnas::nn::supernet_trainer<backend, space> trainer(
      b, train, train, {.batch_size = 2, .eval_batch_size = 2, .recalibration_batches = 1, .validation_images = 4});
  static const std::string real = [] {
    std::ostringstream out(std::ios::binary);
    trainer.save(out);
    return std::move(out).str().substr(32);  // the payload after magic, version, size, checksum
  }();
  if (size == 0) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string file;
  // The frame the trainer writes (io/binary.hpp; version 2 of the supernet state).
  const auto frame = [&](const std::string& payload) { file = pcnas::io::frame("PCNASNET", 2, payload); };
  switch (data[0] % 3) {
    case 0:
      file = body;
      break;
    case 1:
      frame(body);
      break;
    default: {
      std::string payload = real;
      for (std::size_t i = 0; i + 3 <= body.size(); i += 3) {
        const std::size_t at = (static_cast<std::size_t>(static_cast<unsigned char>(body[i])) << 8 |
                                static_cast<unsigned char>(body[i + 1])) % payload.size();
        payload[at] = body[i + 2];
      }
      frame(payload);
    }
  }
  std::istringstream in(file, std::ios::binary);
  try {
    trainer.load(in);
  } catch (const std::exception&) {
  }
  return 0;
}
