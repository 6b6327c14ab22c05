// Architecture text ("k3e6 zero ..."), for a small and a large space; a parsed architecture
// must print back to a text that parses to itself.
#include <pcnas/space/arch.hpp>
#include <pcnas/space/presets.hpp>

#include <cstdlib>
#include <exception>
#include <string_view>

namespace {
template <class S>
void one(std::string_view text) {
  try {
    const auto arch = pcnas::space::parse_arch<S>(text);
    if (pcnas::space::parse_arch<S>(pcnas::space::to_string<S>(arch)) != arch) std::abort();
  } catch (const pcnas::space::arch_error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  one<pcnas::presets::fmnist_micro>(text);
  one<pcnas::presets::fmnist>(text);
  one<pcnas::presets::proxyless>(text);
  return 0;
}
