// MBConv(k, e): 1×1 expansion C→eC + BN + ReLU6 (omitted when e = 1), k×k depthwise (stride s)
// + BN + ReLU6, 1×1 projection eC→C' + BN, plus the identity when s = 1 and C = C'.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/nn/batch_norm.hpp>
#include <pcnas/nn/context.hpp>
#include <pcnas/nn/init.hpp>
#include <pcnas/nn/parameter.hpp>
#include <pcnas/rng.hpp>

#include <optional>
#include <stdexcept>

namespace pcnas::nn {

struct mbconv_config {
  index in_channels = 16;
  index height = 28;  // of the input
  index width = 28;
  index out_channels = 24;
  index kernel = 3;
  index expansion = 6;
  index stride = 1;
  batch_norm_options bn{};
};

template <class B>
class mbconv {
  static_assert(backend::check_backend<B>());

 public:
  using config = mbconv_config;

  mbconv(B& b, const config& cfg, pcnas::rng& r)
      : cfg_(checked(cfg)), hidden_(cfg.in_channels * cfg.expansion),
        expand_(make_expand(b, cfg, r)), expand_bn_(make_expand_bn(b, cfg)),
        depthwise_(make_parameter(b, "depthwise.weight",
                                  init::kaiming_normal_fan_out(r, cfg.kernel * cfg.kernel * hidden_,
                                                               hidden_ * cfg.kernel * cfg.kernel),
                                  true)),
        depthwise_bn_(b, hidden_, "depthwise_bn", cfg.bn),
        project_(make_parameter(b, "project.weight",
                                init::kaiming_normal_fan_out(r, hidden_ * cfg.out_channels, cfg.out_channels),
                                true)),
        project_bn_(b, cfg.out_channels, "project_bn", cfg.bn) {}

  const config& configuration() const noexcept { return cfg_; }
  index hidden_channels() const noexcept { return hidden_; }
  bool has_expansion() const noexcept { return cfg_.expansion != 1; }
  bool has_residual() const noexcept { return cfg_.stride == 1 && cfg_.in_channels == cfg_.out_channels; }
  act_shape output_shape(index batch) const {
    const auto o = dw_desc(batch).out();
    return {batch, o.h, o.w, cfg_.out_channels};
  }

  activation<B> forward(context<B>& ctx, activation<B> x, mode m) {
    detail::check_input("mbconv", x.shape(), cfg_.height, cfg_.width, cfg_.in_channels);
    if constexpr (backend::has_fused_mbconv<B>) return forward_fused(ctx, std::move(x), m);
    B& b = ctx.backend();
    const index n = x.shape().n;
    const act_shape in = x.shape();
    const act_shape hid_in{n, in.h, in.w, hidden_};
    const auto dwd = dw_desc(n);
    const act_shape hid_out = dwd.out();
    const act_shape out = output_shape(n);
    const bool keep = m == mode::train;

    activation<B> z1, a1;
    if (has_expansion()) {
      z1 = ctx.acquire(hid_in);
      b.pointwise_forward({in.rows(), cfg_.in_channels, hidden_}, x.tensor(), expand_->value, z1.tensor());
      a1 = ctx.acquire(hid_in);
      expand_bn_->forward(b, m, in.rows(), z1.tensor(), a1.tensor(), bn_activation::relu6);
      if (!keep) z1.reset();
    } else {
      a1 = x;
    }
    activation<B> z2 = ctx.acquire(hid_out);
    b.depthwise_forward(dwd, a1.tensor(), depthwise_.value, z2.tensor());
    if (!keep) a1.reset();
    activation<B> a2 = ctx.acquire(hid_out);
    depthwise_bn_.forward(b, m, hid_out.rows(), z2.tensor(), a2.tensor(), bn_activation::relu6);
    if (!keep) z2.reset();
    activation<B> z3 = ctx.acquire(out);
    b.pointwise_forward({out.rows(), hidden_, cfg_.out_channels}, a2.tensor(), project_.value, z3.tensor());
    if (!keep) a2.reset();
    activation<B> y = ctx.acquire(out);
    if (has_residual())
      project_bn_.forward_add(b, m, out.rows(), z3.tensor(), x.tensor(), y.tensor());
    else
      project_bn_.forward(b, m, out.rows(), z3.tensor(), y.tensor(), bn_activation::none);
    if (keep)
      saved_ = {std::move(x), std::move(z1), std::move(a1), std::move(z2), std::move(a2), std::move(z3)};
    else
      saved_ = {};
    return y;
  }

  // Returns dx and drops everything the forward kept.
  activation<B> backward(context<B>& ctx, activation<B> dy) {
    if (!saved_.x) throw std::logic_error("pcnas::nn::mbconv::backward: no training forward to differentiate");
    B& b = ctx.backend();
    const act_shape in = saved_.x.shape();
    const index n = in.n;
    const auto dwd = dw_desc(n);
    const act_shape hid_in{n, in.h, in.w, hidden_};
    const act_shape hid_out = dwd.out();
    const act_shape out = output_shape(n);
    if (dy.shape() != out) throw std::invalid_argument("pcnas::nn::mbconv::backward: dy has the wrong shape");
    saved s = std::move(saved_);
    saved_ = {};
    if constexpr (backend::has_fused_mbconv<B>) return backward_fused(ctx, std::move(s), std::move(dy));

    activation<B> dz3 = ctx.acquire(out);
    project_bn_.backward(ctx, out.rows(), s.z3.tensor(), s.z3.tensor(), dy.tensor(), dz3.tensor(),
                         bn_activation::none);
    s.z3.reset();
    const backend::pointwise_desc pd{out.rows(), hidden_, cfg_.out_channels};
    activation<B> da2 = ctx.acquire(hid_out);
    b.pointwise_backward_data(pd, dz3.tensor(), project_.value, da2.tensor(), false);
    b.pointwise_backward_filter(pd, s.a2.tensor(), dz3.tensor(), project_.grad);
    dz3.reset();
    activation<B> dz2 = ctx.acquire(hid_out);
    depthwise_bn_.backward(ctx, hid_out.rows(), s.z2.tensor(), s.a2.tensor(), da2.tensor(), dz2.tensor(),
                           bn_activation::relu6);
    da2.reset();
    s.a2.reset();
    s.z2.reset();

    activation<B> dx;
    if (has_expansion()) {
      activation<B> da1 = ctx.acquire(hid_in);
      depthwise_backward(b, dwd, s.a1.tensor(), dz2.tensor(), da1.tensor());
      dz2.reset();
      activation<B> dz1 = ctx.acquire(hid_in);
      expand_bn_->backward(ctx, in.rows(), s.z1.tensor(), s.a1.tensor(), da1.tensor(), dz1.tensor(),
                           bn_activation::relu6);
      da1.reset();
      s.a1.reset();
      s.z1.reset();
      const backend::pointwise_desc ed{in.rows(), cfg_.in_channels, hidden_};
      b.pointwise_backward_filter(ed, s.x.tensor(), dz1.tensor(), expand_->grad);
      if (has_residual()) {
        // dx = dy + dz1·Wᵀ, accumulated into dy's own tensor when no one else holds it.
        if (dy.unique()) {
          dx = std::move(dy);
        } else {
          dx = ctx.acquire(in);
          b.copy(in.numel(), dy.tensor(), dx.tensor());
        }
        b.pointwise_backward_data(ed, dz1.tensor(), expand_->value, dx.tensor(), true);
      } else {
        dx = ctx.acquire(in);
        b.pointwise_backward_data(ed, dz1.tensor(), expand_->value, dx.tensor(), false);
      }
    } else {
      dx = ctx.acquire(in);
      depthwise_backward(b, dwd, s.a1.tensor(), dz2.tensor(), dx.tensor());
      if (has_residual()) b.add(in.numel(), dx.tensor(), dy.tensor(), dx.tensor());
    }
    return dx;
  }

  void release() { saved_ = {}; }
  // Whether activations of a training forward are held for a backward.
  bool holds_activations() const noexcept { return static_cast<bool>(saved_.x); }

  parameter_list<B> parameters() {
    parameter_list<B> p;
    if (expand_) {
      p.push_back(&*expand_);
      expand_bn_->collect_parameters(p);
    }
    p.push_back(&depthwise_);
    depthwise_bn_.collect_parameters(p);
    p.push_back(&project_);
    project_bn_.collect_parameters(p);
    return p;
  }
  buffer_list<B> buffers() {
    buffer_list<B> s;
    if (expand_bn_) expand_bn_->collect_buffers(s);
    depthwise_bn_.collect_buffers(s);
    project_bn_.collect_buffers(s);
    return s;
  }
  void reset_running_stats(B& b) {
    if (expand_bn_) expand_bn_->reset_running_stats(b);
    depthwise_bn_.reset_running_stats(b);
    project_bn_.reset_running_stats(b);
  }

 private:
  struct saved {
    activation<B> x, z1, a1, z2, a2, z3;  // a1 and a2 stay empty on the fused path
  };

  backend::mbconv_desc fused_desc(index batch) const {
    return {{batch, cfg_.height, cfg_.width, cfg_.in_channels}, cfg_.out_channels, cfg_.kernel, cfg_.expansion,
            cfg_.stride, cfg_.bn.epsilon};
  }

  // The backend's whole-block path: it keeps x, z1, z2 and z3 only.
  activation<B> forward_fused(context<B>& ctx, activation<B> x, mode m) {
    B& b = ctx.backend();
    const auto d = fused_desc(x.shape().n);
    activation<B> z1 = has_expansion() ? ctx.acquire(d.hidden_in()) : activation<B>{};
    activation<B> z2 = ctx.acquire(d.hidden_out());
    activation<B> z3 = ctx.acquire(d.out());
    activation<B> y = ctx.acquire(d.out());
    const bool training = m != mode::eval;
    double factor = 0.0;
    if (training) {
      factor = project_bn_.running_factor(m);
      depthwise_bn_.running_factor(m);
      if (expand_bn_) expand_bn_->running_factor(m);
    }
    auto ebn = expand_bn_ ? std::optional<backend::bn_tensors_t<B>>(expand_bn_->tensors()) : std::nullopt;
    b.mbconv_forward(d, fused_tensors(ebn), training, factor, x.tensor(), has_expansion() ? z1.tensor() : z2.tensor(),
                     z2.tensor(), z3.tensor(), y.tensor());
    if (m == mode::train)
      saved_ = {std::move(x), std::move(z1), {}, std::move(z2), {}, std::move(z3)};
    else
      saved_ = {};
    return y;
  }

  activation<B> backward_fused(context<B>& ctx, saved s, activation<B> dy) {
    B& b = ctx.backend();
    const auto d = fused_desc(s.x.shape().n);
    // dx may take over dy's tensor (same shape) when the block expands and no one else holds dy.
    activation<B> dx = has_expansion() && has_residual() && dy.unique() ? dy : ctx.acquire(s.x.shape());
    auto ebn = expand_bn_ ? std::optional<backend::bn_tensors_t<B>>(expand_bn_->tensors()) : std::nullopt;
    b.mbconv_backward(d, fused_tensors(ebn), s.x.tensor(), has_expansion() ? s.z1.tensor() : s.x.tensor(),
                      s.z2.tensor(), s.z3.tensor(), dy.tensor(), dx.tensor());
    return dx;
  }

  backend::mbconv_tensors<backend::tensor_t<B>> fused_tensors(std::optional<backend::bn_tensors_t<B>>& ebn) {
    return {expand_ ? &expand_->value : nullptr,
            expand_ ? &expand_->grad : nullptr,
            ebn ? &*ebn : nullptr,
            depthwise_.value,
            depthwise_.grad,
            depthwise_bn_.tensors(),
            project_.value,
            project_.grad,
            project_bn_.tensors()};
  }

  static const config& checked(const config& c) {
    if (c.kernel < 1 || c.kernel % 2 == 0)
      throw std::invalid_argument("pcnas::nn::mbconv: the depthwise kernel must be odd and positive");
    if (c.stride < 1 || c.expansion < 1 || c.in_channels < 1 || c.out_channels < 1 || c.height < 1 ||
        c.width < 1)
      throw std::invalid_argument("pcnas::nn::mbconv: stride, expansion, channels and sizes must be positive");
    return c;
  }
  static std::optional<parameter<B>> make_expand(B& b, const config& c, pcnas::rng& r) {
    if (c.expansion == 1) return std::nullopt;
    const index hidden = c.in_channels * c.expansion;
    return make_parameter(b, "expand.weight", init::kaiming_normal_fan_out(r, c.in_channels * hidden, hidden),
                          true);
  }
  static std::optional<batch_norm<B>> make_expand_bn(B& b, const config& c) {
    if (c.expansion == 1) return std::nullopt;
    return batch_norm<B>(b, c.in_channels * c.expansion, "expand_bn", c.bn);
  }
  backend::depthwise_desc dw_desc(index batch) const {
    return {{batch, cfg_.height, cfg_.width, hidden_}, cfg_.kernel, cfg_.stride};
  }
  void depthwise_backward(B& b, const backend::depthwise_desc& d, const backend::tensor_t<B>& x,
                          const backend::tensor_t<B>& dy, backend::tensor_t<B>& dx) {
    if constexpr (backend::has_depthwise_backward<B>) {
      b.depthwise_backward(d, x, depthwise_.value, dy, dx, depthwise_.grad);
    } else {
      b.depthwise_backward_data(d, dy, depthwise_.value, dx);
      b.depthwise_backward_filter(d, x, dy, depthwise_.grad);
    }
  }

  config cfg_;
  index hidden_;
  std::optional<parameter<B>> expand_;
  std::optional<batch_norm<B>> expand_bn_;
  parameter<B> depthwise_;
  batch_norm<B> depthwise_bn_;
  parameter<B> project_;
  batch_norm<B> project_bn_;
  saved saved_;
};

}  // namespace pcnas::nn
