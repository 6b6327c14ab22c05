// One batch-norm layer as the op modules use it: its parameters, running statistics and saved
// batch statistics, the three modes, and the fused BN+ReLU6 / BN+add paths when the backend has
// them.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/nn/context.hpp>
#include <pcnas/nn/init.hpp>
#include <pcnas/nn/parameter.hpp>

#include <string>
#include <vector>

namespace pcnas::nn {

struct batch_norm_options {
  double momentum = 0.1;  // weight of the new batch in the running averages (training)
  double epsilon = 1e-5;
};

// What follows the normalisation inside the same call.
enum class bn_activation { none, relu6 };

template <class B>
class batch_norm {
 public:
  using tensor = backend::tensor_t<B>;

  batch_norm(B& b, index channels, const std::string& prefix, batch_norm_options o = {})
      : channels_(channels), options_(o),
        gamma_(make_parameter(b, prefix + ".gamma", init::constant(channels, 1.0), false)),
        beta_(make_parameter(b, prefix + ".beta", init::constant(channels, 0.0), false)),
        running_mean_(make_buffer(b, prefix + ".running_mean", channels, 0.0)),
        running_var_(make_buffer(b, prefix + ".running_var", channels, 1.0)),
        saved_mean_(b.allocate(channels)), saved_inv_std_(b.allocate(channels)) {}

  index channels() const noexcept { return channels_; }
  const batch_norm_options& options() const noexcept { return options_; }

  void collect_parameters(parameter_list<B>& out) {
    out.push_back(&gamma_);
    out.push_back(&beta_);
  }
  void collect_buffers(buffer_list<B>& out) {
    out.push_back(&running_mean_);
    out.push_back(&running_var_);
  }

  // Running mean 0, variance 1, and the cumulative average restarts (PyTorch's
  // reset_running_stats).
  void reset_running_stats(B& b) {
    b.fill(channels_, backend::value_type_t<B>(0), running_mean_.value);
    b.fill(channels_, backend::value_type_t<B>(1), running_var_.value);
    batches_tracked_ = 0;
  }
  long long batches_tracked() const noexcept { return batches_tracked_; }

  // y = act(bn(x)) over `rows` samples.
  void forward(B& b, mode m, index rows, const tensor& x, tensor& y, bn_activation act) {
    const backend::batch_norm_desc d{rows, channels_, options_.epsilon};
    auto bn = tensors();
    if (m == mode::eval) {
      if constexpr (backend::has_batch_norm_relu6<B>) {
        if (act == bn_activation::relu6) {
          b.batch_norm_relu6_forward_inference(d, bn, x, y);
          return;
        }
      }
      b.batch_norm_forward_inference(d, bn, x, y);
    } else {
      const double f = running_factor(m);
      if constexpr (backend::has_batch_norm_relu6<B>) {
        if (act == bn_activation::relu6) {
          b.batch_norm_relu6_forward_train(d, bn, x, y, f);
          return;
        }
      }
      b.batch_norm_forward_train(d, bn, x, y, f);
    }
    if (act == bn_activation::relu6) b.relu6_forward(rows * channels_, y, y);
  }

  // y = bn(x) + residual.
  void forward_add(B& b, mode m, index rows, const tensor& x, const tensor& residual, tensor& y) {
    const backend::batch_norm_desc d{rows, channels_, options_.epsilon};
    auto bn = tensors();
    if constexpr (backend::has_batch_norm_add<B>) {
      if (m == mode::eval)
        b.batch_norm_add_forward_inference(d, bn, x, residual, y);
      else
        b.batch_norm_add_forward_train(d, bn, x, residual, y, running_factor(m));
    } else {
      if (m == mode::eval)
        b.batch_norm_forward_inference(d, bn, x, y);
      else
        b.batch_norm_forward_train(d, bn, x, y, running_factor(m));
      b.add(rows * channels_, y, residual, y);
    }
  }

  // Backward of a training forward; with relu6, `y` is that forward's output.
  void backward(context<B>& ctx, index rows, const tensor& x, const tensor& y, const tensor& dy,
                tensor& dx, bn_activation act) {
    B& b = ctx.backend();
    const backend::batch_norm_desc d{rows, channels_, options_.epsilon};
    auto bn = tensors();
    if (act == bn_activation::relu6) {
      if constexpr (backend::has_batch_norm_relu6<B>) {
        b.batch_norm_relu6_backward(d, bn, x, y, dy, dx);
      } else {
        pooled_tensor<B> before = ctx.pool().acquire(rows * channels_);
        b.relu6_backward(rows * channels_, y, dy, before.get());
        b.batch_norm_backward(d, bn, x, before.get(), dx);
      }
      return;
    }
    b.batch_norm_backward(d, bn, x, dy, dx);
  }

  // The layer's tensors as the backend takes them.
  backend::bn_tensors_t<B> tensors() {
    return {gamma_.value,  beta_.value,    running_mean_.value, running_var_.value,
            saved_mean_,   saved_inv_std_, gamma_.grad,         beta_.grad};
  }
  // The running-average factor of a forward in mode m (training or recalibration); a
  // recalibration forward counts its batch.
  double running_factor(mode m) {
    if (m == mode::recalibrate) return 1.0 / static_cast<double>(++batches_tracked_);
    return options_.momentum;
  }

 private:
  index channels_;
  batch_norm_options options_;
  parameter<B> gamma_, beta_;
  buffer<B> running_mean_, running_var_;
  tensor saved_mean_, saved_inv_std_;
  long long batches_tracked_ = 0;
};

}  // namespace pcnas::nn
