// The building blocks a space is written with: choice lists, searchable layers,
// stages (a layer repeated), fixed stem ops, the head and the input shape.
#pragma once

#include <pcnas/space/ops.hpp>

#include <cstddef>
#include <tuple>
#include <utility>

namespace pcnas::space {

/// The candidate ops of one searchable layer, in the order of their indices.
template <class... Ops>
struct choices {
  static constexpr std::size_t size = sizeof...(Ops);
};

namespace detail {
template <class Choices>
struct append_zero;
template <class... Ops>
struct append_zero<choices<Ops...>> {
  using type = choices<Ops..., zero>;
};
}  // namespace detail

/// The same choices plus `zero` (skip), for layers that keep their shape.
template <class Choices>
using with_zero = typename detail::append_zero<Choices>::type;

/// One searchable layer: In→Out channels, the stride of its first op, its choices.
template <int In, int Out, int Stride, class Choices>
struct layer {
  static constexpr int in_channels = In;
  static constexpr int out_channels = Out;
  static constexpr int stride = Stride;
  using choice_list = Choices;
};

/// Repeat layers: the first In→Out with FirstStride and `Choices`; the other
/// Repeat-1 Out→Out with stride 1 and `RestChoices` (e.g. `with_zero<Choices>`).
template <int Repeat, int In, int Out, int FirstStride, class Choices, class RestChoices = Choices>
struct stage {
  static_assert(Repeat >= 1, "a stage must repeat its layer at least once");
};

/// A fixed (not searched) op of the stem: output channels and stride.
template <class Op, int Out, int Stride = 1>
struct fixed {
  using op = Op;
  static constexpr int out_channels = Out;
  static constexpr int stride = Stride;
};

template <class... Fixed>
struct stem {};

template <class... LayersOrStages>
struct body {};

/// Head: conv1×1 (Channels) + BN + ReLU6, global average pooling, FC (Classes).
template <int Channels, int Classes>
struct head {
  static constexpr int channels = Channels;
  static constexpr int classes = Classes;
};

template <int Channels, int Height, int Width>
struct input {
  static constexpr tensor_shape shape{Channels, Height, Width};
};

// ---------------------------------------------------------------------------
// Type lists: flattening a body of layers and stages into one list of layers.

template <class... Ts>
struct type_list {
  static constexpr std::size_t size = sizeof...(Ts);
};

namespace detail {

template <class... Lists>
struct concat;
template <>
struct concat<> {
  using type = type_list<>;
};
template <class... A>
struct concat<type_list<A...>> {
  using type = type_list<A...>;
};
template <class... A, class... B, class... Rest>
struct concat<type_list<A...>, type_list<B...>, Rest...> {
  using type = typename concat<type_list<A..., B...>, Rest...>::type;
};

template <class T, std::size_t>
using repeat_one = T;
template <class T, std::size_t... I>
auto repeat_list(std::index_sequence<I...>) -> type_list<repeat_one<T, I>...>;

template <class Part>
struct expand {
  static_assert(sizeof(Part) == 0, "a body holds only pcnas::space::layer and pcnas::space::stage entries");
};
template <int In, int Out, int S, class C>
struct expand<layer<In, Out, S, C>> {
  using type = type_list<layer<In, Out, S, C>>;
};
template <int R, int In, int Out, int S, class C, class RC>
struct expand<stage<R, In, Out, S, C, RC>> {
  using rest = decltype(repeat_list<layer<Out, Out, 1, RC>>(std::make_index_sequence<(R > 0 ? R - 1 : 0)>{}));
  using type = typename concat<type_list<layer<In, Out, S, C>>, rest>::type;
};

template <class Body>
struct flatten;
template <class... Parts>
struct flatten<body<Parts...>> {
  using type = typename concat<typename expand<Parts>::type...>::type;
};

template <std::size_t I, class List>
struct at;
template <std::size_t I, class... Ts>
struct at<I, type_list<Ts...>> {
  using type = std::tuple_element_t<I, std::tuple<Ts...>>;
};

}  // namespace detail

template <std::size_t I, class List>
using type_at = typename detail::at<I, List>::type;

}  // namespace pcnas::space
