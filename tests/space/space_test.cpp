// Search-space descriptors: shapes, sizes, choice names, architecture text.
#include <pcnas/space.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace pcnas;
using namespace pcnas::space;

namespace {

// A user-defined space written in a few lines, with a fixed layer of one choice.
struct tiny : search_space<input<3, 32, 32>, stem<fixed<conv<3>, 8, 2>>,
                           body<layer<8, 8, 1, choices<mbconv<3, 1>, zero>>,
                                stage<2, 8, 16, 2, choices<mbconv<5, 3>>, choices<mbconv<3, 3>, zero>>>,
                           head<32, 4>> {
  static constexpr std::string_view name = "tiny";
};

std::string error_of(auto&& f) {
  try {
    f();
  } catch (const arch_error& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("shapes propagate through stem, stages and strides") {
  static_assert(tiny::num_layers == 3);
  static_assert(tiny::stem_output == tensor_shape{8, 16, 16});
  static_assert(tiny::layers[0].in == tensor_shape{8, 16, 16});
  static_assert(tiny::layers[1].out == tensor_shape{16, 8, 8});
  static_assert(tiny::layers[2].in == tensor_shape{16, 8, 8});
  static_assert(tiny::layers[2].stride == 1);
  static_assert(tiny::num_choices == std::array<std::size_t, 3>{2, 1, 2});
  static_assert(tiny::num_architectures == 4);
  CHECK(tiny::choice_names[1][0] == "k5e3");
  CHECK(tiny::choice_names[2][1] == "zero");

  using presets::fmnist;
  static_assert(fmnist::layers[7].out == tensor_shape{80, 7, 7});
  static_assert(fmnist::layers[0].out == tensor_shape{24, 14, 14});
  static_assert(fmnist::layers[5].stride == 1 && fmnist::layers[5].num_choices == 6);
}

TEST_CASE("space sizes are exact where they fit 64 bits") {
  static_assert(presets::fmnist::num_architectures == 3'630'312);  // 6^3 * 7^5
  static_assert(presets::fmnist_micro::num_architectures == 400);
  static_assert(presets::proxyless::num_architectures == 221'502'229'807'900'608ULL);
  static_assert(presets::proxyless::num_architectures_exact);
  static_assert(presets::proxyless::num_layers == 21);
  static_assert(presets::mobilenet_v2_1_0::num_architectures == 1);
  CHECK(presets::proxyless::log10_num_architectures == doctest::Approx(17.34537).epsilon(1e-6));

  // A space too large for 64 bits saturates and says so; log10 stays exact.
  using huge = search_space<input<1, 8, 8>, stem<>,
                            body<stage<40, 1, 1, 1, choices<mbconv<3, 1>, mbconv<5, 1>, mbconv<7, 1>, zero>>>,
                            head<4, 2>>;
  static_assert(!huge::num_architectures_exact);
  CHECK(huge::log10_num_architectures == doctest::Approx(40 * 0.602059991).epsilon(1e-6));
}

TEST_CASE("ops name themselves with the tokens of architecture text") {
  static_assert(op_traits<mbconv<3, 6>>::name == "k3e6");
  static_assert(op_traits<mbconv<11, 12>>::name == "k11e12");
  static_assert(op_traits<conv<3>>::name == "conv3x3");
  static_assert(op_traits<zero>::name == "zero");
}

TEST_CASE("architecture text round-trips") {
  using presets::fmnist;
  const std::string text = "k3e6 k5e3 k7e6 zero k3e3 k5e6 zero k7e3";
  const auto arch = parse_arch<fmnist>(text);
  CHECK(arch == architecture<fmnist>{1, 2, 5, 6, 0, 3, 6, 4});
  CHECK(to_string<fmnist>(arch) == text);
  CHECK(parse_arch<fmnist>("k3e6,k5e3, k7e6 zero\tk3e3 k5e6 zero k7e3") == arch);
}

TEST_CASE("bad architecture text names the layer and its valid choices") {
  using presets::fmnist;
  const auto wrong_length = error_of([] { (void)parse_arch<fmnist>("k3e6 k5e3"); });
  CHECK(wrong_length.find("has 8 choices") != std::string::npos);
  CHECK(wrong_length.find("got 2") != std::string::npos);

  const auto zero_at_stride = error_of([] { (void)parse_arch<fmnist>("zero k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6"); });
  CHECK(zero_at_stride.find("layer 0") != std::string::npos);
  CHECK(zero_at_stride.find("'zero' is not a choice here") != std::string::npos);
  CHECK(zero_at_stride.find("valid: k3e3 k3e6 k5e3 k5e6 k7e3 k7e6") != std::string::npos);

  const auto unknown = error_of([] { (void)parse_arch<fmnist>("k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k9e9"); });
  CHECK(unknown.find("layer 7") != std::string::npos);
  CHECK(unknown.find("'k9e9'") != std::string::npos);

  // Text meant for another space: micro's k3e1 is not an fmnist choice.
  const auto other_space = error_of([] { (void)parse_arch<presets::fmnist_micro>("k3e6 zero k5e6 k7e6"); });
  CHECK(other_space.find("layer 0") != std::string::npos);
  CHECK(other_space.find("valid: k3e1 k3e3 k5e6 k7e6") != std::string::npos);

  const auto out_of_range = error_of([] { check_arch<fmnist>({0, 0, 0, 0, 0, 0, 0, 9}); });
  CHECK(out_of_range.find("out of range [0, 7)") != std::string::npos);
}

TEST_CASE("fixed networks have one architecture") {
  static_assert(is_fixed_network<presets::mobilenet_v2_1_0>());
  static_assert(!is_fixed_network<presets::fmnist>());
  CHECK(to_string<presets::mobilenet_v2_1_0>({}) ==
        "k3e1 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6 k3e6");
}
