// The preset spaces: the Fashion-MNIST workloads, the ProxylessNAS ImageNet
// space that PC-NAS-S searches, and MobileNetV2 as fixed networks.
#pragma once

#include <pcnas/space/space.hpp>

#include <string_view>

namespace pcnas::presets {

// The descriptors are spelled inside detail, where the space vocabulary is in scope, so that
// pcnas::presets names only the presets themselves (not pcnas::presets::mbconv).
namespace detail {
using namespace pcnas::space;

/// MBConv with kernel {3,5,7} × expansion {3,6}.
using mbconv_k357_e36 =
    choices<mbconv<3, 3>, mbconv<3, 6>, mbconv<5, 3>, mbconv<5, 6>, mbconv<7, 3>, mbconv<7, 6>>;

using fmnist_base = search_space<input<1, 28, 28>,            //
                                 stem<fixed<conv<3>, 16, 1>>,  //
                                 body<stage<2, 16, 24, 2, mbconv_k357_e36, with_zero<mbconv_k357_e36>>,
                                      stage<3, 24, 40, 2, mbconv_k357_e36, with_zero<mbconv_k357_e36>>,
                                      stage<3, 40, 80, 1, mbconv_k357_e36, with_zero<mbconv_k357_e36>>>,
                                 head<256, 10>>;

using micro_choices = choices<mbconv<3, 1>, mbconv<3, 3>, mbconv<5, 6>, mbconv<7, 6>>;
using fmnist_micro_base = search_space<input<1, 28, 28>,           //
                                       stem<fixed<conv<3>, 8, 2>>,  //
                                       body<stage<2, 8, 16, 2, micro_choices, with_zero<micro_choices>>,
                                            stage<2, 16, 32, 2, micro_choices, with_zero<micro_choices>>>,
                                       head<64, 10>>;

using proxyless_base = search_space<input<3, 224, 224>,                                    //
                                    stem<fixed<conv<3>, 32, 2>, fixed<mbconv<3, 1>, 16, 1>>,  //
                                    body<stage<4, 16, 24, 2, mbconv_k357_e36, with_zero<mbconv_k357_e36>>,
                                         stage<4, 24, 40, 2, mbconv_k357_e36, with_zero<mbconv_k357_e36>>,
                                         stage<4, 40, 80, 2, mbconv_k357_e36, with_zero<mbconv_k357_e36>>,
                                         stage<4, 80, 96, 1, mbconv_k357_e36, with_zero<mbconv_k357_e36>>,
                                         stage<4, 96, 192, 2, mbconv_k357_e36, with_zero<mbconv_k357_e36>>,
                                         stage<1, 192, 320, 1, mbconv_k357_e36>>,
                                    head<1280, 1000>>;

/// Channels × width, rounded to a multiple of 8 and never more than 10 % below
/// the exact product (the rule of the MobileNetV2 reference implementations).
[[nodiscard]] constexpr int round_channels(int channels, int width_tenths) {
  const int exact10 = channels * width_tenths;  // ten times the exact value
  int r = ((exact10 + 40) / 80) * 8;            // nearest multiple of 8
  if (r < 8) r = 8;
  if (100 * r < 9 * exact10) r += 8;
  return r;
}

/// MobileNetV2 at width W/10 as a fixed network (one choice per layer).
template <int W>
using mobilenet_v2_space = search_space<
    input<3, 224, 224>,  //
    stem<fixed<conv<3>, round_channels(32, W), 2>>,
    body<stage<1, round_channels(32, W), round_channels(16, W), 1, choices<mbconv<3, 1>>>,
         stage<2, round_channels(16, W), round_channels(24, W), 2, choices<mbconv<3, 6>>>,
         stage<3, round_channels(24, W), round_channels(32, W), 2, choices<mbconv<3, 6>>>,
         stage<4, round_channels(32, W), round_channels(64, W), 2, choices<mbconv<3, 6>>>,
         stage<3, round_channels(64, W), round_channels(96, W), 1, choices<mbconv<3, 6>>>,
         stage<3, round_channels(96, W), round_channels(160, W), 2, choices<mbconv<3, 6>>>,
         stage<1, round_channels(160, W), round_channels(320, W), 1, choices<mbconv<3, 6>>>>,
    head<(W > 10 ? round_channels(1280, W) : 1280), 1000>>;

}  // namespace detail

using detail::mbconv_k357_e36;
using detail::micro_choices;
using detail::mobilenet_v2_space;
using detail::round_channels;

/// The default Fashion-MNIST space: 8 layers, 6^3 * 7^5 = 3,630,312 architectures.
struct fmnist : detail::fmnist_base {
  static constexpr std::string_view name = "fmnist";
};

/// Small enough to train every one of its 400 architectures alone.
struct fmnist_micro : detail::fmnist_micro_base {
  static constexpr std::string_view name = "fmnist_micro";
};

/// The ProxylessNAS (mobile) space that PC-NAS-S searches on ImageNet: 21 layers,
/// 6^6 * 7^15 = 221,502,229,807,900,608 architectures.
struct proxyless : detail::proxyless_base {
  static constexpr std::string_view name = "proxyless";
};

struct mobilenet_v2_1_0 : mobilenet_v2_space<10> {
  static constexpr std::string_view name = "mobilenet_v2_1.0";
};
struct mobilenet_v2_1_4 : mobilenet_v2_space<14> {
  static constexpr std::string_view name = "mobilenet_v2_1.4";
};

}  // namespace pcnas::presets
