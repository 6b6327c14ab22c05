// The one place where a space name given on the command line becomes a type.
#pragma once

#include <pcnas/space/presets.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace pcnas_cli {

/// A command-line mistake: printed without a stack of context, exit code 2.
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr const char* space_names = "fmnist, fmnist_micro, proxyless, mobilenet_v2_1.0, mobilenet_v2_1.4";

/// Calls f(std::type_identity<Space>{}) for the named preset.
template <class F>
decltype(auto) with_space(std::string_view name, F&& f) {
  using namespace pcnas::presets;
  if (name == fmnist::name) return f(std::type_identity<fmnist>{});
  if (name == fmnist_micro::name) return f(std::type_identity<fmnist_micro>{});
  if (name == proxyless::name) return f(std::type_identity<proxyless>{});
  if (name == mobilenet_v2_1_0::name) return f(std::type_identity<mobilenet_v2_1_0>{});
  if (name == mobilenet_v2_1_4::name) return f(std::type_identity<mobilenet_v2_1_4>{});
  throw usage_error("unknown space '" + std::string(name) + "'; known spaces: " + space_names);
}

/// Calls f for the spaces that can be trained on Fashion-MNIST (1x28x28, 10 classes).
template <class F>
decltype(auto) with_trainable_space(std::string_view name, F&& f) {
  using namespace pcnas::presets;
  if (name == fmnist::name) return f(std::type_identity<fmnist>{});
  if (name == fmnist_micro::name) return f(std::type_identity<fmnist_micro>{});
  throw usage_error("space '" + std::string(name) +
                    "' cannot be trained on Fashion-MNIST here; trainable spaces: fmnist, fmnist_micro");
}

}  // namespace pcnas_cli
