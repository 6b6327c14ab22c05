// A downstream program using the io component: an architecture to JSON and back, and the data
// readers' header (which needs zlib) compiled and linked.
#include <pcnas/data/dataset.hpp>
#include <pcnas/json/arch.hpp>
#include <pcnas/space/presets.hpp>

#include <cstdio>

int main() {
  using space = pcnas::presets::fmnist_micro;
  const auto arch = pcnas::space::parse_arch<space>("k3e1 zero k5e6 k7e6");
  const auto back = pcnas::io::arch_from_json<space>(pcnas::io::arch_to_json<space>(arch));
  std::printf("%s -> %s, data from %s\n", pcnas::space::to_string<space>(arch).c_str(),
              pcnas::space::to_string<space>(back).c_str(), pcnas::data::default_data_dir().c_str());
  return back == arch ? 0 : 1;
}
