// Op descriptors (types that name a candidate operator) and their traits: the
// token used in architecture strings and the analytic cost. Users add an op by
// specialising `op_traits` for their own descriptor type; nothing else changes.
#pragma once

#include <pcnas/space/shape.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <string_view>
#include <type_traits>

namespace pcnas::space {

/// MBConv(k, e): 1×1 expand C→eC + BN + ReLU6 (absent when e = 1), k×k depthwise
/// (the layer's stride) + BN + ReLU6, 1×1 project eC→C' + BN, plus the identity
/// when the stride is 1 and C = C'.
template <int Kernel, int Expansion>
struct mbconv {
  static constexpr int kernel = Kernel;
  static constexpr int expansion = Expansion;
};

/// The skip choice: the layer reduces to its identity shortcut.
struct zero {};

/// A plain k×k convolution + BN + ReLU6 (stems, fixed layers).
template <int Kernel>
struct conv {
  static constexpr int kernel = Kernel;
};

/// Specialise for every op descriptor. Required members:
///   static constexpr std::string_view name;  // its token in architecture text
///   static constexpr op_cost cost(tensor_shape in, tensor_shape out);
/// Optional:
///   static constexpr bool is_identity = true;  // only valid where in == out, stride 1
///   static constexpr int kernel;               // checked: positive and odd
///   static constexpr int kernels;              // kernels it launches; required by the roofline model
template <class Op>
struct op_traits;

/// What the library needs from an op descriptor's traits.
template <class Op>
concept space_op = requires(tensor_shape s) {
  { op_traits<Op>::name } -> std::convertible_to<std::string_view>;
  { op_traits<Op>::cost(s, s) } -> std::same_as<op_cost>;
};

template <class Op>
[[nodiscard]] constexpr bool is_identity_op() {
  if constexpr (requires { op_traits<Op>::is_identity; }) {
    return op_traits<Op>::is_identity;
  } else {
    return false;
  }
}

namespace detail {

[[nodiscard]] constexpr std::size_t count_digits(int v) {
  std::size_t n = 1;
  for (; v >= 10; v /= 10) ++n;
  return n;
}

template <std::size_t N>
constexpr void append_number(std::array<char, N>& out, std::size_t& at, int v) {
  const std::size_t n = count_digits(v);
  for (std::size_t i = 0; i < n; ++i, v /= 10) out[at + n - 1 - i] = static_cast<char>('0' + v % 10);
  at += n;
}

[[nodiscard]] constexpr std::int64_t conv_macs(std::int64_t cin, std::int64_t cout, int k,
                                               const tensor_shape& out) {
  return cin * cout * k * k * out.height * out.width;
}

}  // namespace detail

namespace detail {
template <class Part>
constexpr std::size_t token_part_length(Part p) {
  if constexpr (std::is_same_v<Part, char>) {
    return 1;
  } else {
    return count_digits(static_cast<int>(p));
  }
}
}  // namespace detail

/// An op's token in architecture text, built at compile time from characters and non-negative
/// integers: token_v<'k', 3, 'e', 6> is "k3e6", token_v<'s', 'e', K> is "se" followed by K. Ops
/// whose tokens depend on their parameters should build them from every parameter, since two
/// choices of one layer with the same token are a compile-time error.
template <auto... Parts>
struct token {
  static_assert(sizeof...(Parts) > 0, "a token needs at least one part");
  static_assert(((std::is_same_v<decltype(Parts), char> || std::is_integral_v<decltype(Parts)>) && ...),
                "token parts are characters ('k') or integers (3)");
  static constexpr std::size_t length = (detail::token_part_length(Parts) + ...);
  static constexpr std::array<char, length + 1> chars = [] {
    std::array<char, length + 1> s{};
    std::size_t at = 0;
    const auto append = [&](auto p) {
      if constexpr (std::is_same_v<decltype(p), char>) {
        s[at++] = p;
      } else {
        detail::append_number(s, at, static_cast<int>(p));
      }
    };
    (append(Parts), ...);
    return s;
  }();
  static constexpr std::string_view view{chars.data(), length};
};

template <auto... Parts>
inline constexpr std::string_view token_v = token<Parts...>::view;

template <int K, int E>
struct op_traits<mbconv<K, E>> {
  static_assert(E >= 1, "an MBConv expansion ratio must be at least 1");
  static constexpr std::string_view name = token_v<'k', K, 'e', E>;
  static constexpr int kernel = K;
  // Kernels launched (for the roofline model): 1x1, BN, depthwise, BN, 1x1, BN; 4 without expansion.
  static constexpr int kernels = E == 1 ? 4 : 6;
  static constexpr op_cost cost(tensor_shape in, tensor_shape out) {
    const std::int64_t c = in.channels, mid = std::int64_t{in.channels} * E, c2 = out.channels;
    const std::int64_t in_px = std::int64_t{in.height} * in.width;
    const std::int64_t out_px = std::int64_t{out.height} * out.width;
    op_cost r;
    if (E != 1) {
      r.macs += c * mid * in_px;
      r.params += c * mid + 2 * mid;
      r.activation_bytes += mid * in_px * bytes_per_activation;
    }
    r.macs += mid * K * K * out_px;
    r.params += mid * K * K + 2 * mid;
    r.activation_bytes += mid * out_px * bytes_per_activation;
    r.macs += mid * c2 * out_px;
    r.params += mid * c2 + 2 * c2;
    r.activation_bytes += c2 * out_px * bytes_per_activation;
    return r;
  }
};

template <>
struct op_traits<zero> {
  static constexpr std::string_view name = "zero";
  static constexpr bool is_identity = true;
  static constexpr int kernels = 0;
  static constexpr op_cost cost(tensor_shape, tensor_shape) { return {}; }
};

template <int K>
struct op_traits<conv<K>> {
  static constexpr std::string_view name = token_v<'c', 'o', 'n', 'v', K, 'x', K>;
  static constexpr int kernel = K;
  static constexpr int kernels = 2;  // the convolution and its batch norm
  static constexpr op_cost cost(tensor_shape in, tensor_shape out) {
    return {.macs = detail::conv_macs(in.channels, out.channels, K, out),
            .params = std::int64_t{in.channels} * out.channels * K * K + 2 * out.channels,
            .activation_bytes = out.elements() * bytes_per_activation};
  }
};

}  // namespace pcnas::space
