// A choice block: the typed modules of one searchable layer in a tuple (no virtual calls),
// reached from the runtime choice index through one dispatcher.
#pragma once

#include <pcnas/nn/module_concept.hpp>
#include <pcnas/nn/op_module.hpp>
#include <pcnas/space/layer.hpp>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

namespace pcnas::nn {

/// Calls f(std::integral_constant<std::size_t, i>{}) for a runtime i < N: the one place where a
/// runtime choice becomes a compile-time index. Out of range names the valid range.
template <std::size_t N, class F>
decltype(auto) with_index(std::size_t i, F&& f) {
  if (i >= N)
    throw std::out_of_range("choice index " + std::to_string(i) + " is out of range [0, " + std::to_string(N) + ")");
  return [&]<std::size_t... I>(std::index_sequence<I...>) -> decltype(auto) {
    using result = decltype(f(std::integral_constant<std::size_t, 0>{}));
    if constexpr (std::is_void_v<result>) {
      ((i == I ? (void)f(std::integral_constant<std::size_t, I>{}) : void()), ...);
    } else {
      result r{};
      ((i == I ? (void)(r = f(std::integral_constant<std::size_t, I>{})) : void()), ...);
      return r;
    }
  }(std::make_index_sequence<N>{});
}

template <class B, class Choices>
class choice_block;

template <class B, class... Ops>
class choice_block<B, space::choices<Ops...>> {
  // A user op's module missing a member is named here, one sentence each, before any use.
  static_assert((check_op_module<B, Ops>() && ...));

 public:
  static constexpr std::size_t num_choices = sizeof...(Ops);

  choice_block(B& b, const module_spec& spec, pcnas::rng& r)
      : ops_{op_module<B, Ops>::make(b, spec, r)...} {}  // braces: made left to right, one rng order

  activation<B> forward(context<B>& ctx, activation<B> x, mode m, std::size_t choice) {
    return with_index<num_choices>(choice, [&](auto i) { return std::get<i()>(ops_).forward(ctx, std::move(x), m); });
  }
  activation<B> backward(context<B>& ctx, activation<B> dy, std::size_t choice) {
    return with_index<num_choices>(choice, [&](auto i) { return std::get<i()>(ops_).backward(ctx, std::move(dy)); });
  }
  void release(std::size_t choice) {
    with_index<num_choices>(choice, [&](auto i) { std::get<i()>(ops_).release(); });
  }
  void reset_running_stats(B& b, std::size_t choice) {
    with_index<num_choices>(choice, [&](auto i) { std::get<i()>(ops_).reset_running_stats(b); });
  }
  parameter_list<B> parameters(std::size_t choice) {
    return with_index<num_choices>(choice, [&](auto i) { return std::get<i()>(ops_).parameters(); });
  }
  buffer_list<B> buffers(std::size_t choice) {
    return with_index<num_choices>(choice, [&](auto i) { return std::get<i()>(ops_).buffers(); });
  }

  template <std::size_t I>
  auto& op() noexcept {
    return std::get<I>(ops_);
  }

 private:
  std::tuple<op_module_t<B, Ops>...> ops_;
};

}  // namespace pcnas::nn
