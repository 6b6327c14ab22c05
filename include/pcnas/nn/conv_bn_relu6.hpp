// The stem: dense k×k convolution (padding k/2), batch norm, ReLU6.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/nn/batch_norm.hpp>
#include <pcnas/nn/context.hpp>
#include <pcnas/nn/init.hpp>
#include <pcnas/nn/parameter.hpp>
#include <pcnas/rng.hpp>

#include <stdexcept>

namespace pcnas::nn {

struct conv_bn_relu6_config {
  index in_channels = 1;
  index height = 28;  // of the input
  index width = 28;
  index out_channels = 16;
  index kernel = 3;
  index stride = 1;
  // The stem's input is the image, which needs no gradient; set this when the module sits
  // inside a network.
  bool input_gradient = false;
  batch_norm_options bn{};
};

template <class B>
class conv_bn_relu6 {
  static_assert(backend::check_backend<B>());

 public:
  using config = conv_bn_relu6_config;

  conv_bn_relu6(B& b, const config& cfg, pcnas::rng& r)
      : cfg_(checked(cfg)),
        weight_(make_parameter(b, "conv.weight",
                               init::kaiming_normal_fan_out(r, desc(1).weight_size(),
                                                            cfg.out_channels * cfg.kernel * cfg.kernel),
                               true)),
        bn_(b, cfg.out_channels, "bn", cfg.bn) {}

  const config& configuration() const noexcept { return cfg_; }
  act_shape output_shape(index batch) const { return desc(batch).out(); }

  activation<B> forward(context<B>& ctx, activation<B> x, mode m) {
    detail::check_input("conv_bn_relu6", x.shape(), cfg_.height, cfg_.width, cfg_.in_channels);
    B& b = ctx.backend();
    const auto d = desc(x.shape().n);
    const act_shape out = d.out();
    activation<B> z = ctx.acquire(out);
    activation<B> y = ctx.acquire(out);
    if constexpr (backend::has_fused_conv_bn_relu6<B>) {
      const bool training = m != mode::eval;
      b.conv_bn_relu6_forward(d, cfg_.bn.epsilon, weight_.value, bn_.tensors(), training,
                              training ? bn_.running_factor(m) : 0.0, x.tensor(), z.tensor(), y.tensor());
    } else {
      b.conv2d_forward(d, x.tensor(), weight_.value, z.tensor());
      bn_.forward(b, m, out.rows(), z.tensor(), y.tensor(), bn_activation::relu6);
    }
    if (m == mode::train) saved_ = {std::move(x), std::move(z), y};
    else saved_ = {};
    return y;
  }

  // Returns the input gradient if the configuration asks for it, else an empty activation.
  activation<B> backward(context<B>& ctx, activation<B> dy) {
    if (!saved_.x) throw std::logic_error("pcnas::nn::conv_bn_relu6::backward: no training forward to differentiate");
    B& b = ctx.backend();
    const auto d = desc(saved_.x.shape().n);
    const act_shape out = d.out();
    if (dy.shape() != out) throw std::invalid_argument("pcnas::nn::conv_bn_relu6::backward: dy has the wrong shape");
    if constexpr (backend::has_fused_conv_bn_relu6<B>) {
      activation<B> dx;
      if (cfg_.input_gradient) dx = ctx.acquire(saved_.x.shape());
      b.conv_bn_relu6_backward(d, cfg_.bn.epsilon, weight_.value, weight_.grad, bn_.tensors(), saved_.x.tensor(),
                               saved_.z.tensor(), dy.tensor(), cfg_.input_gradient ? &dx.tensor() : nullptr);
      saved_ = {};
      return dx;
    }
    activation<B> dz = ctx.acquire(out);
    bn_.backward(ctx, out.rows(), saved_.z.tensor(), saved_.y.tensor(), dy.tensor(), dz.tensor(),
                 bn_activation::relu6);
    dy.reset();
    b.conv2d_backward_filter(d, saved_.x.tensor(), dz.tensor(), weight_.grad);
    activation<B> dx;
    if (cfg_.input_gradient) {
      dx = ctx.acquire(saved_.x.shape());
      b.conv2d_backward_data(d, dz.tensor(), weight_.value, dx.tensor());
    }
    saved_ = {};
    return dx;
  }

  void release() { saved_ = {}; }
  // Whether activations of a training forward are held for a backward.
  bool holds_activations() const noexcept { return static_cast<bool>(saved_.x); }

  parameter_list<B> parameters() {
    parameter_list<B> p{&weight_};
    bn_.collect_parameters(p);
    return p;
  }
  buffer_list<B> buffers() {
    buffer_list<B> s;
    bn_.collect_buffers(s);
    return s;
  }
  void reset_running_stats(B& b) { bn_.reset_running_stats(b); }

 private:
  static const config& checked(const config& c) {
    if (c.kernel < 1 || c.kernel % 2 == 0 || c.stride < 1 || c.in_channels < 1 || c.out_channels < 1 ||
        c.height < 1 || c.width < 1)
      throw std::invalid_argument(
          "pcnas::nn::conv_bn_relu6: kernel must be odd and positive; stride, channels and sizes positive");
    return c;
  }
  backend::conv2d_desc desc(index batch) const {
    return {{batch, cfg_.height, cfg_.width, cfg_.in_channels}, cfg_.out_channels, cfg_.kernel, cfg_.stride,
            cfg_.kernel / 2};
  }

  struct saved {
    activation<B> x, z, y;
  };
  config cfg_;
  parameter<B> weight_;
  batch_norm<B> bn_;
  saved saved_;
};

}  // namespace pcnas::nn
