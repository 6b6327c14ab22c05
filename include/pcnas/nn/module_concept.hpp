// The op-module contract, as concepts with one readable sentence per missing part: what a user
// writes to make a new op trainable (docs/ops.md), checked where the supernet builds its blocks.
#pragma once

#include <pcnas/nn/context.hpp>
#include <pcnas/nn/parameter.hpp>
#include <pcnas/rng.hpp>

#include <concepts>
#include <utility>

namespace pcnas::nn {

struct module_spec;

template <class B, class Op>
struct op_module;

// One concept per member, so that check_module() can name what is missing.
template <class M, class B>
concept module_has_forward = requires(M& m, context<B>& ctx, activation<B> x, mode md) {
  { m.forward(ctx, std::move(x), md) } -> std::same_as<activation<B>>;
};
template <class M, class B>
concept module_has_backward = requires(M& m, context<B>& ctx, activation<B> dy) {
  { m.backward(ctx, std::move(dy)) } -> std::same_as<activation<B>>;
};
template <class M>
concept module_has_release = requires(M& m) { m.release(); };
template <class M, class B>
concept module_has_parameters = requires(M& m) {
  { m.parameters() } -> std::convertible_to<parameter_list<B>>;
};
template <class M, class B>
concept module_has_buffers = requires(M& m) {
  { m.buffers() } -> std::convertible_to<buffer_list<B>>;
};
template <class M, class B>
concept module_has_reset_running_stats = requires(M& m, B& b) { m.reset_running_stats(b); };

/// Everything the supernet calls on an op's module.
template <class M, class B>
concept op_module_type = module_has_forward<M, B> && module_has_backward<M, B> && module_has_release<M> &&
                         module_has_parameters<M, B> && module_has_buffers<M, B> &&
                         module_has_reset_running_stats<M, B>;

/// One error per missing member of a module M on backend B. Call as
/// `static_assert(check_module<B, M>());`.
template <class B, class M>
consteval bool check_module() {
  static_assert(module_has_forward<M, B>,
                "An op module must have forward(context<B>&, activation<B> x, mode) returning the output "
                "activation<B>; in mode::train it keeps what backward needs.");
  static_assert(module_has_backward<M, B>,
                "An op module must have backward(context<B>&, activation<B> dy) returning the input gradient "
                "activation<B> (empty when the module gives none), after writing its parameters' gradients.");
  static_assert(module_has_release<M>,
                "An op module must have release(), which drops what a training forward kept for backward (called "
                "when a forward is not followed by a backward).");
  static_assert(module_has_parameters<M, B>,
                "An op module must have parameters() returning a parameter_list<B> (pointers to its trainable "
                "parameters, empty when it has none).");
  static_assert(module_has_buffers<M, B>,
                "An op module must have buffers() returning a buffer_list<B> (pointers to its batch-norm running "
                "statistics, empty when it has none).");
  static_assert(module_has_reset_running_stats<M, B>,
                "An op module must have reset_running_stats(B&), which zeroes its running statistics before a "
                "batch-norm recalibration (a no-op when it has none).");
  return true;
}

template <class B, class Op>
concept op_module_specialised = requires { typename op_module<B, Op>::type; };

template <class B, class Op>
concept op_module_makes = op_module_specialised<B, Op> && requires(B& b, const module_spec& s, pcnas::rng& r) {
  { op_module<B, Op>::make(b, s, r) } -> std::same_as<typename op_module<B, Op>::type>;
};

/// The op_module specialisation of an op descriptor, then its module. Call as
/// `static_assert(check_op_module<B, Op>());`; the supernet does, for every op of a space.
template <class B, class Op>
consteval bool check_op_module() {
  static_assert(op_module_specialised<B, Op>,
                "pcnas::nn::op_module<B, Op> for this op must name its module: `using type = <module class>;`.");
  static_assert(!op_module_specialised<B, Op> || op_module_makes<B, Op>,
                "pcnas::nn::op_module<B, Op> for this op must build its module: "
                "`static type make(B&, const pcnas::nn::module_spec&, pcnas::rng&)`.");
  if constexpr (op_module_specialised<B, Op>) return check_module<B, typename op_module<B, Op>::type>();
  return true;
}

}  // namespace pcnas::nn
