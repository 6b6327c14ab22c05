// From an op descriptor (a type of the search space) to the module that computes it on a
// backend. Users who add an op type specialise op_module for it; the library's ops are here.
#pragma once

#include <pcnas/nn/batch_norm.hpp>
#include <pcnas/nn/context.hpp>
#include <pcnas/nn/conv_bn_relu6.hpp>
#include <pcnas/nn/mbconv.hpp>
#include <pcnas/nn/parameter.hpp>
#include <pcnas/rng.hpp>
#include <pcnas/space/ops.hpp>
#include <pcnas/space/space.hpp>

namespace pcnas::nn {

/// What a module is built from: its place in the network and the shared options.
struct module_spec {
  space::layer_info layer;            // input and output shapes, stride
  bool input_gradient = true;         // false only for the first op (its input is the image)
  batch_norm_options bn{};
};

/// Specialise for every op descriptor: `using type = <module>;` and
/// `static type make(B&, const module_spec&, pcnas::rng&)`. A module has forward(ctx, x, mode),
/// backward(ctx, dy), release(), parameters(), buffers() and reset_running_stats(b); the
/// supernet checks each with check_op_module (nn/module_concept.hpp), docs/ops.md explains them.
template <class B, class Op>
struct op_module {
  static_assert(sizeof(Op) == 0,
                "no module computes this op: specialise pcnas::nn::op_module<Backend, Op> with `using type` "
                "and `static type make(Backend&, const module_spec&, pcnas::rng&)`");
};

/// The skip choice: y = x, no parameters, nothing kept.
template <class B>
class identity {
 public:
  activation<B> forward(context<B>&, activation<B> x, mode) { return x; }
  activation<B> backward(context<B>&, activation<B> dy) { return dy; }
  void release() {}
  parameter_list<B> parameters() { return {}; }
  buffer_list<B> buffers() { return {}; }
  void reset_running_stats(B&) {}
};

template <class B>
struct op_module<B, space::zero> {
  using type = identity<B>;
  static type make(B&, const module_spec&, pcnas::rng&) { return {}; }
};

template <class B, int K, int E>
struct op_module<B, space::mbconv<K, E>> {
  using type = mbconv<B>;
  static type make(B& b, const module_spec& s, pcnas::rng& r) {
    return type(b,
                {.in_channels = s.layer.in.channels,
                 .height = s.layer.in.height,
                 .width = s.layer.in.width,
                 .out_channels = s.layer.out.channels,
                 .kernel = K,
                 .expansion = E,
                 .stride = s.layer.stride,
                 .bn = s.bn},
                r);
  }
};

template <class B, int K>
struct op_module<B, space::conv<K>> {
  using type = conv_bn_relu6<B>;
  static type make(B& b, const module_spec& s, pcnas::rng& r) {
    return type(b,
                {.in_channels = s.layer.in.channels,
                 .height = s.layer.in.height,
                 .width = s.layer.in.width,
                 .out_channels = s.layer.out.channels,
                 .kernel = K,
                 .stride = s.layer.stride,
                 .input_gradient = s.input_gradient,
                 .bn = s.bn},
                r);
  }
};

template <class B, class Op>
using op_module_t = typename op_module<B, Op>::type;

}  // namespace pcnas::nn
