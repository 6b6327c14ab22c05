// A downstream program: includes the umbrella header and uses a preset space.
#include <pcnas/pcnas.hpp>

#include <cstdio>

int main() {
  using space = pcnas::presets::fmnist_micro;
  static_assert(space::num_layers == 4);
  const auto arch = pcnas::space::parse_arch<space>("k3e1 zero k5e6 k7e6");
  const auto cost = pcnas::cost::arch_cost<space>(arch);
  std::printf("fmnist_micro: %llu architectures, %s: %lld MACs\n",
              static_cast<unsigned long long>(space::num_architectures),
              pcnas::space::to_string<space>(arch).c_str(), static_cast<long long>(cost.macs));
  return cost.macs > 0 ? 0 : 1;
}
