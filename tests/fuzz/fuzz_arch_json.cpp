// Architectures in JSON ({"space", "arch", "choices"}).
#include <pcnas/json/arch.hpp>
#include <pcnas/space/presets.hpp>

#include <cstdlib>
#include <exception>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto doc = nlohmann::json::parse(data, data + size, nullptr, false);
  if (doc.is_discarded()) return 0;
  try {
    const auto arch = pcnas::io::arch_from_json<pcnas::presets::fmnist>(doc);
    if (!pcnas::space::is_valid<pcnas::presets::fmnist>(arch)) std::abort();
  } catch (const std::exception&) {
  }
  try {
    (void)pcnas::io::arch_from_json<pcnas::presets::fmnist_micro>(doc);
  } catch (const std::exception&) {
  }
  return 0;
}
