// Analytic costs: checked by hand on one block and against published numbers.
#include <pcnas/space.hpp>

#include <doctest/doctest.h>

using namespace pcnas;

TEST_CASE("MobileNetV2 matches the published MACs and torchvision's parameter count") {
  using mbv2 = presets::mobilenet_v2_1_0;
  constexpr auto c = cost::arch_cost<mbv2>({});
  // 300 M MACs (TF-slim's table), within 1 %.
  CHECK(c.macs == doctest::Approx(300e6).epsilon(0.01));
  // torchvision counts BN scale and shift: 3,504,872.
  CHECK(c.params == 3'504'872);
  // Width 1.4 rounds channels to multiples of 8 and widens the last conv: torchvision has 6,108,776.
  CHECK(cost::arch_cost<presets::mobilenet_v2_1_4>({}).params == 6'108'776);
  static_assert(presets::round_channels(32, 14) == 48 && presets::round_channels(64, 14) == 88);
  static_assert(presets::round_channels(96, 14) == 136 && presets::round_channels(1280, 14) == 1792);
}

TEST_CASE("an MBConv's cost follows its three convolutions") {
  using space::mbconv;
  using space::op_traits;
  // 24x14x14 -> 40x7x7, k5 e3: expand 24->72 at 14x14, depthwise 5x5 at 7x7, project 72->40.
  constexpr auto c = op_traits<mbconv<5, 3>>::cost({24, 14, 14}, {40, 7, 7});
  CHECK(c.macs == 24 * 72 * 196 + 72 * 25 * 49 + 72 * 40 * 49);
  CHECK(c.params == (24 * 72 + 144) + (72 * 25 + 144) + (72 * 40 + 80));
  CHECK(c.activation_bytes == 4 * (72 * 196 + 72 * 49 + 40 * 49));
  // Expansion 1 has no expand convolution.
  constexpr auto e1 = op_traits<mbconv<3, 1>>::cost({32, 112, 112}, {16, 112, 112});
  CHECK(e1.macs == 32 * 9 * 12544 + 32 * 16 * 12544);
  CHECK(op_traits<space::zero>::cost({40, 7, 7}, {40, 7, 7}) == space::op_cost{});
}

TEST_CASE("the fmnist paths cost what the reference measurements assume") {
  using presets::fmnist;
  // REFERENCE.md: largest path 45.2 MFLOP forward, smallest 6.6 (2 FLOP per MAC).
  const auto largest = cost::arch_cost<fmnist>(space::parse_arch<fmnist>("k7e6 k7e6 k7e6 k7e6 k7e6 k7e6 k7e6 k7e6"));
  const auto smallest = cost::arch_cost<fmnist>(space::parse_arch<fmnist>("k3e3 zero k3e3 zero zero k3e3 zero zero"));
  CHECK(2.0 * largest.macs / 1e6 == doctest::Approx(45.2).epsilon(0.01));
  CHECK(2.0 * smallest.macs / 1e6 == doctest::Approx(6.6).epsilon(0.02));
  CHECK(cost::max_macs_arch_cost<fmnist>().macs == largest.macs);
  CHECK(cost::min_macs_arch_cost<fmnist>().macs == smallest.macs);
}

TEST_CASE("the analytic costs as an additive model predict what arch_cost sums") {
  using presets::fmnist;
  const auto model = cost::analytic_model<fmnist>(cost::analytic_measure::macs);
  const auto arch = space::parse_arch<fmnist>("k3e6 k5e3 k7e6 zero k3e3 k5e6 zero k7e3");
  CHECK(model.predict(arch) == doctest::Approx(cost::arch_cost<fmnist>(arch).macs / 1e6).epsilon(1e-12));
  CHECK(model.min_total() == doctest::Approx(cost::min_macs_arch_cost<fmnist>().macs / 1e6).epsilon(1e-12));
  const auto params = cost::analytic_model<fmnist>(cost::analytic_measure::params);
  CHECK(params.predict(arch) == doctest::Approx(cost::arch_cost<fmnist>(arch).params / 1e6).epsilon(1e-12));
}
