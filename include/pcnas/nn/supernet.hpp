// supernet<Backend, Space>: the stem, one choice block per searchable layer and the head, built
// from the space's types. Forward and backward run through one path (an architecture); only
// that path's ops hold activations, and only its parameters get gradients.
#pragma once

#include <pcnas/nn/choice_block.hpp>
#include <pcnas/nn/head.hpp>
#include <pcnas/nn/parameter.hpp>
#include <pcnas/space/arch.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <tuple>
#include <utility>

namespace pcnas::nn {

struct supernet_options {
  std::uint64_t seed = 0;  // initial weights are drawn on the host from it: equal on every backend
  batch_norm_options bn{};
};

namespace detail {
template <class B, class Space, class Seq>
struct block_tuple;
template <class B, class Space, std::size_t... I>
struct block_tuple<B, Space, std::index_sequence<I...>> {
  using type = std::tuple<choice_block<B, typename Space::template choices_at<I>>...>;
};
template <class B, class StemList>
struct stem_tuple;
template <class B, class... Fixed>
struct stem_tuple<B, space::type_list<Fixed...>> {
  using type = std::tuple<op_module_t<B, typename Fixed::op>...>;
};
}  // namespace detail

template <class B, class Space>
class supernet {
  static_assert(backend::check_backend<B>());

 public:
  using space_type = Space;
  static constexpr std::size_t num_layers = Space::num_layers;
  static constexpr std::size_t num_stem_ops = Space::num_stem_ops;

  supernet(B& b, supernet_options o = {}) : supernet(b, o, pcnas::rng(o.seed)) {}

  /// Logits [n, 1, 1, classes] of `images` [n, H, W, C] through the path `arch`.
  activation<B> forward(context<B>& ctx, activation<B> images, std::span<const int> arch, mode m) {
    check(arch);
    activation<B> x = forward_stem(ctx, std::move(images), m);
    for_each_layer([&](auto& block, std::size_t l) { x = block.forward(ctx, std::move(x), m, choice(arch, l)); });
    return forward_head(ctx, std::move(x), m);
  }

  /// The pieces of forward(), for profiling one op at a time (latency tables).
  activation<B> forward_stem(context<B>& ctx, activation<B> images, mode m) {
    for_each_stem([&](auto& op) { images = op.forward(ctx, std::move(images), m); });
    return images;
  }
  activation<B> forward_layer(context<B>& ctx, activation<B> x, std::size_t layer, std::size_t choice, mode m) {
    return with_index<num_layers>(
        layer, [&](auto l) { return std::get<l()>(blocks_).forward(ctx, std::move(x), m, choice); });
  }
  activation<B> forward_head(context<B>& ctx, activation<B> x, mode m) { return head_.forward(ctx, std::move(x), m); }

  /// Gradients of the path's parameters from dlogits (after a mode::train forward).
  void backward(context<B>& ctx, activation<B> dlogits, std::span<const int> arch) {
    check(arch);
    activation<B> dy = head_.backward(ctx, std::move(dlogits));
    for_each_layer_reversed(
        [&](auto& block, std::size_t l) { dy = block.backward(ctx, std::move(dy), choice(arch, l)); });
    for_each_stem_reversed([&](auto& op) { dy = op.backward(ctx, std::move(dy)); });
  }

  /// Drops what a training forward kept (when no backward follows).
  void release(std::span<const int> arch) {
    check(arch);
    for_each_stem([](auto& op) { op.release(); });
    for_each_layer([&](auto& block, std::size_t l) { block.release(choice(arch, l)); });
    head_.release();
  }

  /// The parameters that the path uses: stem, the chosen ops, head.
  parameter_list<B> parameters(std::span<const int> arch) {
    check(arch);
    parameter_list<B> out;
    for_each_stem([&](auto& op) { append(out, op.parameters()); });
    for_each_layer([&](auto& block, std::size_t l) { append(out, block.parameters(choice(arch, l))); });
    append(out, head_.parameters());
    return out;
  }

  /// The batch-norm statistics of the path.
  buffer_list<B> buffers(std::span<const int> arch) {
    check(arch);
    buffer_list<B> out;
    for_each_stem([&](auto& op) { append(out, op.buffers()); });
    for_each_layer([&](auto& block, std::size_t l) { append(out, block.buffers(choice(arch, l))); });
    append(out, head_.buffers());
    return out;
  }

  /// Every parameter and buffer of every op, in a fixed order (for saving the whole supernet).
  parameter_list<B> all_parameters() {
    parameter_list<B> out;
    for_each_op([&](auto& op) { append(out, op.parameters()); });
    return out;
  }
  buffer_list<B> all_buffers() {
    buffer_list<B> out;
    for_each_op([&](auto& op) { append(out, op.buffers()); });
    return out;
  }

  /// Throws space::arch_error, with the reason, unless `arch` is a path of this space.
  static void check_arch(std::span<const int> arch) { check(arch); }

  /// Restarts the path's running statistics (before a BN recalibration).
  void reset_running_stats(B& b, std::span<const int> arch) {
    check(arch);
    reset_stem_running_stats(b);
    for_each_layer([&](auto& block, std::size_t l) { block.reset_running_stats(b, choice(arch, l)); });
    head_.reset_running_stats(b);
  }
  /// The same piece by piece, as forward_stem, forward_layer and forward_head run them.
  void reset_stem_running_stats(B& b) {
    for_each_stem([&](auto& op) { op.reset_running_stats(b); });
  }
  void reset_layer_running_stats(B& b, std::size_t layer, std::size_t choice) {
    with_index<num_layers>(layer, [&](auto l) { std::get<l()>(blocks_).reset_running_stats(b, choice); });
  }
  void reset_head_running_stats(B& b) { head_.reset_running_stats(b); }

 private:
  using blocks_type = typename detail::block_tuple<B, Space, std::make_index_sequence<num_layers>>::type;
  using stem_type = typename detail::stem_tuple<B, typename Space::stem_list>::type;

  supernet(B& b, supernet_options o, pcnas::rng r)
      : stem_(make_stem(b, o, r, std::make_index_sequence<num_stem_ops>{})),
        blocks_(make_blocks(b, o, r, std::make_index_sequence<num_layers>{})),
        head_(b,
              {.in_channels = Space::body_output.channels,
               .height = Space::body_output.height,
               .width = Space::body_output.width,
               .features = Space::head_channels,
               .classes = Space::num_classes,
               .bn = o.bn},
              r) {}

  template <std::size_t... I>
  static stem_type make_stem(B& b, const supernet_options& o, pcnas::rng& r, std::index_sequence<I...>) {
    // Braced initialisation runs left to right, so the weights are drawn in a fixed order.
    return stem_type{op_module<B, typename space::type_at<I, typename Space::stem_list>::op>::make(
        b, stem_spec(I, o), r)...};
  }
  static module_spec stem_spec(std::size_t i, const supernet_options& o) {
    const auto& f = Space::stem_ops[i];
    return {.layer = {f.in, f.out, f.stride, 1}, .input_gradient = i != 0, .bn = o.bn};
  }
  template <std::size_t... I>
  static blocks_type make_blocks(B& b, const supernet_options& o, pcnas::rng& r, std::index_sequence<I...>) {
    return blocks_type{std::tuple_element_t<I, blocks_type>(
        b, module_spec{.layer = Space::layers[I], .input_gradient = num_stem_ops > 0 || I != 0, .bn = o.bn}, r)...};
  }

  static void check(std::span<const int> arch) {
    if (arch.size() != num_layers)
      throw space::arch_error("an architecture of space '" + std::string(space::space_name<Space>()) + "' has " +
                              std::to_string(num_layers) + " choices; got " + std::to_string(arch.size()));
    for (std::size_t l = 0; l < num_layers; ++l)
      if (arch[l] < 0 || static_cast<std::size_t>(arch[l]) >= Space::num_choices[l])
        throw space::arch_error(space::describe_layer<Space>(l) + ": choice index " + std::to_string(arch[l]) +
                                " is out of range [0, " + std::to_string(Space::num_choices[l]) + ")");
  }
  static std::size_t choice(std::span<const int> arch, std::size_t l) { return static_cast<std::size_t>(arch[l]); }

  template <class List>
  static void append(List& out, const List& more) {
    out.insert(out.end(), more.begin(), more.end());
  }

  template <class F>
  void for_each_stem(F&& f) {
    std::apply([&](auto&... op) { (f(op), ...); }, stem_);
  }
  template <class F>
  void for_each_stem_reversed(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f(std::get<num_stem_ops - 1 - I>(stem_)), ...);
    }(std::make_index_sequence<num_stem_ops>{});
  }
  template <class F>
  void for_each_layer(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::get<I>(blocks_), I), ...); }(
        std::make_index_sequence<num_layers>{});
  }
  template <class F>
  void for_each_layer_reversed(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f(std::get<num_layers - 1 - I>(blocks_), num_layers - 1 - I), ...);
    }(std::make_index_sequence<num_layers>{});
  }
  /// Every module: stem ops, every choice of every block, head.
  template <class F>
  void for_each_op(F&& f) {
    for_each_stem(f);
    for_each_layer([&](auto& block, std::size_t) {
      [&]<std::size_t... C>(std::index_sequence<C...>) { (f(block.template op<C>()), ...); }(
          std::make_index_sequence<std::remove_reference_t<decltype(block)>::num_choices>{});
    });
    f(head_);
  }

  stem_type stem_;
  blocks_type blocks_;
  head<B> head_;
};

}  // namespace pcnas::nn
