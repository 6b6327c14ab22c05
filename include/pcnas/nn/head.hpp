// The classifier head: 1×1 convolution to `features` channels + BN + ReLU6, global average
// pooling, fully connected layer to `classes` logits.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/nn/batch_norm.hpp>
#include <pcnas/nn/context.hpp>
#include <pcnas/nn/init.hpp>
#include <pcnas/nn/parameter.hpp>
#include <pcnas/rng.hpp>

#include <stdexcept>

namespace pcnas::nn {

struct head_config {
  index in_channels = 80;
  index height = 7;  // of the input
  index width = 7;
  index features = 256;
  index classes = 10;
  batch_norm_options bn{};
};

template <class B>
class head {
  static_assert(backend::check_backend<B>());

 public:
  using config = head_config;

  head(B& b, const config& cfg, pcnas::rng& r)
      : cfg_(checked(cfg)),
        conv_(make_parameter(b, "conv.weight",
                             init::kaiming_normal_fan_out(r, cfg.in_channels * cfg.features, cfg.features), true)),
        bn_(b, cfg.features, "bn", cfg.bn),
        fc_weight_(make_parameter(b, "fc.weight",
                                  init::normal(r, cfg.features * cfg.classes, init::linear_stddev), true)),
        fc_bias_(make_parameter(b, "fc.bias", init::constant(cfg.classes, 0.0), true)) {}

  const config& configuration() const noexcept { return cfg_; }
  // Logits as an NHWC activation [batch, 1, 1, classes].
  act_shape output_shape(index batch) const { return {batch, 1, 1, cfg_.classes}; }

  activation<B> forward(context<B>& ctx, activation<B> x, mode m) {
    detail::check_input("head", x.shape(), cfg_.height, cfg_.width, cfg_.in_channels);
    B& b = ctx.backend();
    const act_shape in = x.shape();
    const act_shape hid{in.n, in.h, in.w, cfg_.features};
    activation<B> z = ctx.acquire(hid);
    activation<B> a;  // stays empty on the fused path
    activation<B> pooled = ctx.acquire(act_shape{in.n, 1, 1, cfg_.features});
    if constexpr (backend::has_fused_head<B>) {
      const bool training = m != mode::eval;
      b.head_forward(head_desc(in), conv_.value, bn_.tensors(), training, training ? bn_.running_factor(m) : 0.0,
                     x.tensor(), z.tensor(), pooled.tensor());
    } else {
      b.pointwise_forward({in.rows(), cfg_.in_channels, cfg_.features}, x.tensor(), conv_.value, z.tensor());
      a = ctx.acquire(hid);
      bn_.forward(b, m, in.rows(), z.tensor(), a.tensor(), bn_activation::relu6);
      b.global_avg_pool_forward(hid, a.tensor(), pooled.tensor());
    }
    activation<B> logits = ctx.acquire(output_shape(in.n));
    b.linear_forward(fc_desc(in.n), pooled.tensor(), fc_weight_.value, fc_bias_.value, logits.tensor());
    if (m == mode::train)
      saved_ = {std::move(x), std::move(z), std::move(a), std::move(pooled)};
    else
      saved_ = {};
    return logits;
  }

  activation<B> backward(context<B>& ctx, activation<B> dlogits) {
    if (!saved_.x) throw std::logic_error("pcnas::nn::head::backward: no training forward to differentiate");
    B& b = ctx.backend();
    saved s = std::move(saved_);
    saved_ = {};
    const act_shape in = s.x.shape();
    const act_shape hid{in.n, in.h, in.w, cfg_.features};
    if (dlogits.shape() != output_shape(in.n))
      throw std::invalid_argument("pcnas::nn::head::backward: dlogits has the wrong shape");
    const auto fd = fc_desc(in.n);
    activation<B> dpooled = ctx.acquire(act_shape{in.n, 1, 1, cfg_.features});
    b.linear_backward_data(fd, dlogits.tensor(), fc_weight_.value, dpooled.tensor());
    b.linear_backward_params(fd, s.pooled.tensor(), dlogits.tensor(), fc_weight_.grad, fc_bias_.grad);
    dlogits.reset();
    if constexpr (backend::has_fused_head<B>) {
      activation<B> dx = ctx.acquire(in);
      b.head_backward(head_desc(in), conv_.value, conv_.grad, bn_.tensors(), s.x.tensor(), s.z.tensor(),
                      dpooled.tensor(), dx.tensor());
      return dx;
    }
    activation<B> da = ctx.acquire(hid);
    b.global_avg_pool_backward(hid, dpooled.tensor(), da.tensor());
    dpooled.reset();
    activation<B> dz = ctx.acquire(hid);
    bn_.backward(ctx, in.rows(), s.z.tensor(), s.a.tensor(), da.tensor(), dz.tensor(), bn_activation::relu6);
    da.reset();
    const backend::pointwise_desc pd{in.rows(), cfg_.in_channels, cfg_.features};
    b.pointwise_backward_filter(pd, s.x.tensor(), dz.tensor(), conv_.grad);
    activation<B> dx = ctx.acquire(in);
    b.pointwise_backward_data(pd, dz.tensor(), conv_.value, dx.tensor(), false);
    return dx;
  }

  void release() { saved_ = {}; }
  // Whether activations of a training forward are held for a backward.
  bool holds_activations() const noexcept { return static_cast<bool>(saved_.x); }

  parameter_list<B> parameters() {
    parameter_list<B> p{&conv_};
    bn_.collect_parameters(p);
    p.push_back(&fc_weight_);
    p.push_back(&fc_bias_);
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
    if (c.in_channels < 1 || c.height < 1 || c.width < 1 || c.features < 1 || c.classes < 1)
      throw std::invalid_argument("pcnas::nn::head: channels, sizes, features and classes must be positive");
    return c;
  }
  backend::linear_desc fc_desc(index batch) const { return {batch, cfg_.features, cfg_.classes}; }
  backend::head_desc head_desc(const act_shape& in) const { return {in, cfg_.features, cfg_.bn.epsilon}; }

  struct saved {
    activation<B> x, z, a, pooled;  // a stays empty on the fused path
  };
  config cfg_;
  parameter<B> conv_;
  batch_norm<B> bn_;
  parameter<B> fc_weight_, fc_bias_;
  saved saved_;
};

}  // namespace pcnas::nn
