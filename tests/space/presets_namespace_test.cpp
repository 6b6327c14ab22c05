// The presets namespace names the presets only. Kept apart from the other space tests, which
// open pcnas::space themselves.
#include <pcnas/space/presets.hpp>

#include <doctest/doctest.h>

// A program that has its own `mbconv` and opens pcnas::presets must still compile: the presets
// namespace names only presets, not the descriptor vocabulary (an ambiguity here is a
// compile error, which fails this test's build).
template <int K, int E>
struct mbconv {
  static constexpr int kernel = K;
};
namespace presets_probe {
inline int kernel_of_own_mbconv() {
  using namespace pcnas::presets;
  return mbconv<5, 6>::kernel + static_cast<int>(fmnist_micro::num_layers);
}
}  // namespace presets_probe

TEST_CASE("pcnas::presets names the presets, not the descriptor vocabulary") {
  CHECK(presets_probe::kernel_of_own_mbconv() == 9);
}
