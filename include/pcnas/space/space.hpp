// search_space: a type that lists input, stem, searchable layers and head.
// Shapes propagate at compile time, misuse fails with one sentence, and every
// table the rest of the library needs (shapes, choice names, costs, the size of
// the space) is a constexpr static member.
#pragma once

#include <pcnas/space/layer.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <string_view>

namespace pcnas::space {

/// One searchable layer, as runtime data.
struct layer_info {
  tensor_shape in;
  tensor_shape out;
  int stride = 1;
  std::size_t num_choices = 0;
};

/// One fixed stem op, as runtime data.
struct fixed_info {
  std::string_view name;
  tensor_shape in;
  tensor_shape out;
  int stride = 1;
  op_cost cost;
};

namespace detail {

/// Compile-time checks of one layer. Index is the layer's position (from 0), so
/// the compiler's "in instantiation of check_layer<Index, ...>" names the layer.
template <std::size_t Index, int PrevChannels, class Layer>
struct check_layer;

template <std::size_t Index, int PrevChannels, class Op, int In, int Out, int Stride>
struct check_choice {
  static_assert(space_op<Op>,
                "a choice's op_traits must define `name` and `cost(in, out)`: specialise "
                "pcnas::space::op_traits for the op type");
  static_assert(!is_identity_op<Op>() || (In == Out && Stride == 1),
                "a zero (identity) choice needs a layer that keeps its shape: stride 1 and equal "
                "input and output channels");
  static constexpr bool odd_kernel = [] {
    if constexpr (requires { op_traits<Op>::kernel; }) {
      return op_traits<Op>::kernel > 0 && op_traits<Op>::kernel % 2 == 1;
    } else {
      return true;
    }
  }();
  static_assert(odd_kernel, "kernel sizes must be positive and odd, so that 'same' padding keeps the shape");
  static constexpr bool ok = true;
};

// Whether the ops' tokens differ; ops without a token are named by check_choice instead.
template <class... Ops>
[[nodiscard]] constexpr bool distinct_tokens() {
  if constexpr (!(space_op<Ops> && ... && true)) {
    return true;
  } else {
    const std::string_view names[] = {std::string_view(op_traits<Ops>::name)..., std::string_view()};
    for (std::size_t i = 0; i < sizeof...(Ops); ++i)
      for (std::size_t j = i + 1; j < sizeof...(Ops); ++j)
        if (names[i] == names[j]) return false;
    return true;
  }
}

template <std::size_t Index, int PrevChannels, int In, int Out, int Stride, class... Ops>
struct check_layer<Index, PrevChannels, layer<In, Out, Stride, choices<Ops...>>> {
  static_assert(sizeof...(Ops) > 0, "the layer's choice list is empty: a searchable layer needs at least one choice");
  static_assert(Stride > 0, "the layer's stride must be positive");
  static_assert(Out > 0, "the layer's output channels must be positive");
  static_assert(In == PrevChannels,
                "channels do not chain: the layer's input channels must equal the output channels "
                "of the layer (or stem) before it");
  static constexpr bool ok = (check_choice<Index, PrevChannels, Ops, In, Out, Stride>::ok && ... && true);
  static_assert(distinct_tokens<Ops...>(),
                "two choices of the layer have the same token (op_traits<Op>::name), so architecture text "
                "could not tell them apart: give each op of a layer its own token (pcnas::space::token_v)");
};

template <class Fixed>
struct check_fixed {
  static_assert(space_op<typename Fixed::op>, "a stem op's op_traits must define `name` and `cost(in, out)`");
  static_assert(Fixed::stride > 0, "a stem op's stride must be positive");
  static constexpr bool ok = true;
};

[[nodiscard]] constexpr double log10_of(double x) {
  // ln by range reduction to [1, 2) and the atanh series; then / ln 10.
  int twos = 0;
  while (x >= 2.0) x /= 2.0, ++twos;
  while (x < 1.0) x *= 2.0, --twos;
  const double y = (x - 1.0) / (x + 1.0), y2 = y * y;
  double term = y, sum = 0.0;
  for (int k = 1; k < 60; k += 2, term *= y2) sum += term / k;
  constexpr double ln2 = 0.69314718055994530942, ln10 = 2.30258509299404568402;
  return (2.0 * sum + twos * ln2) / ln10;
}

template <std::size_t N, class... Ops>
constexpr void fill_names(std::array<std::string_view, N>& row, choices<Ops...>*) {
  std::size_t j = 0;
  ((row[j++] = op_traits<Ops>::name), ...);
}

template <std::size_t N, class... Ops>
constexpr void fill_costs(std::array<op_cost, N>& row, const layer_info& l, choices<Ops...>*) {
  std::size_t j = 0;
  ((row[j++] = op_traits<Ops>::cost(l.in, l.out)), ...);
}

template <class List>
struct layer_choice_counts;
template <class... Layers>
struct layer_choice_counts<type_list<Layers...>> {
  static constexpr std::array<std::size_t, sizeof...(Layers)> value{Layers::choice_list::size...};
};

}  // namespace detail

template <class Input, class Stem, class Body, class Head>
struct search_space;

template <class Input, class... Fixed, class Body, int HeadChannels, int Classes>
struct search_space<Input, stem<Fixed...>, Body, head<HeadChannels, Classes>> {
  using layer_list = typename detail::flatten<Body>::type;
  using stem_list = type_list<Fixed...>;
  template <std::size_t I>
  using layer_at = type_at<I, layer_list>;
  template <std::size_t I>
  using choices_at = typename layer_at<I>::choice_list;

  static constexpr std::size_t num_layers = layer_list::size;
  static constexpr std::size_t num_stem_ops = sizeof...(Fixed);
  static constexpr tensor_shape input_shape = Input::shape;
  static constexpr int head_channels = HeadChannels;
  static constexpr int num_classes = Classes;

  static_assert(num_layers > 0, "a search space needs at least one searchable layer");
  static_assert(HeadChannels > 0 && Classes > 0, "the head needs positive channels and classes");
  static_assert((detail::check_fixed<Fixed>::ok && ... && true));

  static constexpr std::array<fixed_info, sizeof...(Fixed)> stem_ops = [] {
    std::array<fixed_info, sizeof...(Fixed)> ops{};
    [[maybe_unused]] tensor_shape s = Input::shape;
    [[maybe_unused]] std::size_t i = 0;
    (
        [&] {
          const tensor_shape out{Fixed::out_channels, strided_size(s.height, Fixed::stride),
                                 strided_size(s.width, Fixed::stride)};
          ops[i++] = {op_traits<typename Fixed::op>::name, s, out, Fixed::stride,
                      op_traits<typename Fixed::op>::cost(s, out)};
          s = out;
        }(),
        ...);
    return ops;
  }();

  static constexpr tensor_shape stem_output =
      sizeof...(Fixed) == 0 ? Input::shape : stem_ops[sizeof...(Fixed) == 0 ? 0 : sizeof...(Fixed) - 1].out;

 private:
  template <std::size_t... I>
  static constexpr bool check_all(std::index_sequence<I...>) {
    constexpr std::array<int, num_layers> outs{layer_at<I>::out_channels...};
    return (detail::check_layer<I, (I == 0 ? stem_output.channels : outs[I == 0 ? 0 : I - 1]), layer_at<I>>::ok &&
            ...);
  }

 public:
  static constexpr bool is_valid = check_all(std::make_index_sequence<num_layers>{});

  static constexpr std::array<std::size_t, num_layers> num_choices =
      detail::layer_choice_counts<layer_list>::value;

  static constexpr std::size_t max_choices = [] {
    std::size_t m = 0;
    for (std::size_t n : num_choices) m = n > m ? n : m;
    return m;
  }();

  static constexpr std::array<layer_info, num_layers> layers = [] {
    std::array<layer_info, num_layers> out{};
    tensor_shape s = stem_output;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            using L = layer_at<I>;
            const tensor_shape o{L::out_channels, strided_size(s.height, L::stride), strided_size(s.width, L::stride)};
            out[I] = {s, o, L::stride, L::choice_list::size};
            s = o;
          }(),
          ...);
    }(std::make_index_sequence<num_layers>{});
    return out;
  }();

  /// Shape entering the head.
  static constexpr tensor_shape body_output = layers[num_layers - 1].out;

  /// choice_names[layer][choice]: the tokens of architecture text.
  static constexpr auto choice_names = [] {
    std::array<std::array<std::string_view, max_choices>, num_layers> names{};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (detail::fill_names(names[I], static_cast<choices_at<I>*>(nullptr)), ...);
    }(std::make_index_sequence<num_layers>{});
    return names;
  }();

  /// choice_costs[layer][choice]: analytic cost of each candidate for one image.
  static constexpr auto choice_costs = [] {
    std::array<std::array<op_cost, max_choices>, num_layers> costs{};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (detail::fill_costs(costs[I], layers[I], static_cast<choices_at<I>*>(nullptr)), ...);
    }(std::make_index_sequence<num_layers>{});
    return costs;
  }();

  static constexpr op_cost stem_cost = [] {
    op_cost c;
    for (const auto& op : stem_ops) c += op.cost;
    return c;
  }();

  /// Head: conv1×1 + BN + ReLU6, pooling (no MACs counted), FC with bias.
  static constexpr op_cost head_cost = [] {
    const tensor_shape in = body_output;
    const tensor_shape mid{HeadChannels, in.height, in.width};
    op_cost c = op_traits<conv<1>>::cost(in, mid);
    c.macs += std::int64_t{HeadChannels} * Classes;
    c.params += std::int64_t{HeadChannels} * Classes + Classes;
    c.activation_bytes += (std::int64_t{HeadChannels} + Classes) * bytes_per_activation;
    return c;
  }();

  /// The number of architectures, saturated at 2^64-1 when it does not fit.
  static constexpr std::uint64_t num_architectures = [] {
    std::uint64_t n = 1;
    for (std::size_t c : num_choices) {
      if (n > std::numeric_limits<std::uint64_t>::max() / c) return std::numeric_limits<std::uint64_t>::max();
      n *= c;
    }
    return n;
  }();
  static constexpr bool num_architectures_exact = [] {
    std::uint64_t n = 1;
    for (std::size_t c : num_choices) {
      if (n > std::numeric_limits<std::uint64_t>::max() / c) return false;
      n *= c;
    }
    return true;
  }();
  static constexpr double log10_num_architectures = [] {
    double s = 0;
    for (std::size_t c : num_choices) s += detail::log10_of(static_cast<double>(c));
    return s;
  }();

};

/// True when every layer has a single choice: a fixed network such as MobileNetV2.
template <class Space>
[[nodiscard]] constexpr bool is_fixed_network() {
  for (std::size_t n : Space::num_choices)
    if (n != 1) return false;
  return true;
}

/// The space's name: its `name` member when it has one (every preset does).
template <class Space>
[[nodiscard]] constexpr std::string_view space_name() {
  if constexpr (requires { Space::name; }) {
    return Space::name;
  } else {
    return "custom";
  }
}

}  // namespace pcnas::space
