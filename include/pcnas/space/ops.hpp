// Op descriptors (types that name a candidate operator) and their traits: the
// token used in architecture strings and the analytic cost. Users add an op by
// specialising `op_traits` for their own descriptor type; nothing else changes.
#pragma once

#include <pcnas/space/shape.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <string_view>

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

/// A token like "k3e6", built at compile time.
template <char A, int X, char B = '\0', int Y = 0>
struct token {
  static constexpr std::size_t length = 1 + count_digits(X) + (B ? 1 + count_digits(Y) : 0);
  static constexpr std::array<char, length + 1> chars = [] {
    std::array<char, length + 1> s{};
    std::size_t at = 0;
    s[at++] = A;
    append_number(s, at, X);
    if (B) {
      s[at++] = B;
      append_number(s, at, Y);
    }
    return s;
  }();
  static constexpr std::string_view view{chars.data(), length};
};

/// "convKxK", built at compile time.
template <int K>
struct conv_token {
  static constexpr std::size_t length = 5 + 2 * count_digits(K);
  static constexpr std::array<char, length + 1> chars = [] {
    std::array<char, length + 1> s{'c', 'o', 'n', 'v'};
    std::size_t at = 4;
    append_number(s, at, K);
    s[at++] = 'x';
    append_number(s, at, K);
    return s;
  }();
  static constexpr std::string_view view{chars.data(), length};
};

[[nodiscard]] constexpr std::int64_t conv_macs(std::int64_t cin, std::int64_t cout, int k,
                                               const tensor_shape& out) {
  return cin * cout * k * k * out.height * out.width;
}

}  // namespace detail

template <int K, int E>
struct op_traits<mbconv<K, E>> {
  static_assert(E >= 1, "an MBConv expansion ratio must be at least 1");
  static constexpr std::string_view name = detail::token<'k', K, 'e', E>::view;
  static constexpr int kernel = K;
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
  static constexpr op_cost cost(tensor_shape, tensor_shape) { return {}; }
};

template <int K>
struct op_traits<conv<K>> {
  static constexpr std::string_view name = detail::conv_token<K>::view;
  static constexpr int kernel = K;
  static constexpr op_cost cost(tensor_shape in, tensor_shape out) {
    return {.macs = detail::conv_macs(in.channels, out.channels, K, out),
            .params = std::int64_t{in.channels} * out.channels * K * K + 2 * out.channels,
            .activation_bytes = out.elements() * bytes_per_activation};
  }
};

}  // namespace pcnas::space
