// pcnas's LibTorch backend: the contract's primitives as ATen calls on at::Tensor (torch::Tensor
// is the same class), on whichever device the backend holds: the CPU, or a GPU where LibTorch
// was built with CUDA. Forward and backward are separate explicit calls (at::convolution_backward,
// at::native_batch_norm_backward, written-out formulas); autograd is never involved.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/libtorch/views.hpp>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/Reduction.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <array>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace pcnas::backend::libtorch {

struct options {
  // Where the tensors live and the kernels run. A CUDA device needs a LibTorch built with CUDA.
  c10::Device device = c10::kCPU;
};

// T is float or double (the conformance kit runs both). Tensors are flat, contiguous 1-D
// at::Tensors of T on the backend's device; each call narrows and views them in the contract's
// layout. The object is cheap: ATen keeps the threads, the allocator and the streams.
template <class T>
class basic_backend {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "The LibTorch backend computes in float or double.");

 public:
  using value_type = T;
  // A copy of an at::Tensor shares its storage; the library only moves tensors, never copies.
  using tensor = at::Tensor;        // 1-D, value_type, on device()
  using label_tensor = at::Tensor;  // 1-D, int64 (what ATen's losses index with), on device()

  basic_backend() = default;
  explicit basic_backend(options o) : device_(o.device) {
    // Said here, once, rather than by the dispatcher at the first allocation.
    if (device_.is_cuda() && !at::hasCUDA())
      throw std::invalid_argument("pcnas LibTorch backend: device " + device_.str() +
                                  " asked for, but this LibTorch was built without CUDA or sees no GPU");
  }

  c10::Device device() const { return device_; }
  std::string name() const {
    return std::string("libtorch (") + (std::is_same_v<T, float> ? "float32" : "float64") + ", " + device_.str() +
           (device_.is_cpu() ? ", " + threads(at::get_num_threads()) : std::string()) + ")";
  }

  // --- memory -----------------------------------------------------------------------------
  tensor allocate(index n) {
    const guard g;
    return at::empty({n}, values());
  }
  label_tensor allocate_labels(index n) {
    const guard g;
    return at::zeros({n}, values().dtype(at::kLong));
  }
  void fill(index n, T v, tensor& t) {
    const guard g;
    detail::first(t, n, "fill").fill_(v);
  }
  void copy(index n, const tensor& src, tensor& dst) {
    const guard g;
    detail::first(dst, n, "copy").copy_(detail::first(src, n, "copy"));
  }
  // Host memory is wrapped, not copied, and the copy to the device completes before returning,
  // so the span need not outlive the call.
  void upload(std::span<const T> src, tensor& dst) {
    const guard g;
    const auto n = static_cast<index>(src.size());
    detail::first(dst, n, "upload").copy_(host(const_cast<T*>(src.data()), n, dtype()));
  }
  void download(const tensor& src, std::span<T> dst) {
    const guard g;
    const auto n = static_cast<index>(dst.size());
    host(dst.data(), n, dtype()).copy_(detail::first(src, n, "download"));
  }
  void upload_labels(std::span<const std::int32_t> src, label_tensor& dst) {
    const guard g;
    for (std::int32_t l : src)
      if (l < 0) throw std::out_of_range("pcnas LibTorch backend: negative label " + std::to_string(l) + " in upload_labels");
    const auto n = static_cast<index>(src.size());
    if (!dst.defined() || dst.scalar_type() != at::kLong)
      throw std::invalid_argument("pcnas LibTorch backend: upload_labels needs a tensor from allocate_labels()");
    detail::first(dst, n, "upload_labels").copy_(host(const_cast<std::int32_t*>(src.data()), n, at::kInt));
  }
  // ATen runs CPU work synchronously; a GPU's queue is drained through ATen's CUDA hooks, which
  // exist in every LibTorch build (and are reached only when the device is a GPU).
  void synchronize() {
    if (device_.is_cuda()) at::detail::getCUDAHooks().deviceSynchronize(device_.has_index() ? device_.index() : 0);
  }

  // --- dense convolution (weights HWIO) -----------------------------------------------------
  void conv2d_forward(const conv2d_desc& d, const tensor& x, const tensor& w, tensor& y) {
    const guard g;
    const char* op = "conv2d_forward";
    detail::nchw(y, d.out(), op)
        .copy_(at::convolution(detail::nchw(x, d.in, op), detail::oihw(w, d.kernel, d.in.c, d.out_channels, op),
                               c10::nullopt, {d.stride, d.stride}, {d.pad, d.pad}, {1, 1}, false, {0, 0}, 1));
  }
  // The contract's backward calls take only what their gradient reads, while
  // at::convolution_backward wants the input and the weights for their shapes too; the one it
  // does not read is passed as an uninitialised tensor of the right shape.
  void conv2d_backward_data(const conv2d_desc& d, const tensor& dy, const tensor& w, tensor& dx) {
    const guard g;
    const char* op = "conv2d_backward_data";
    const auto grads = at::convolution_backward(
        detail::nchw(dy, d.out(), op), shaped_like_input(d.in),
        detail::oihw(w, d.kernel, d.in.c, d.out_channels, op), c10::nullopt, {d.stride, d.stride}, {d.pad, d.pad},
        {1, 1}, false, {0, 0}, 1, {true, false, false});
    detail::nchw(dx, d.in, op).copy_(std::get<0>(grads));
  }
  void conv2d_backward_filter(const conv2d_desc& d, const tensor& x, const tensor& dy, tensor& dw) {
    const guard g;
    const char* op = "conv2d_backward_filter";
    const auto grads = at::convolution_backward(
        detail::nchw(dy, d.out(), op), detail::nchw(x, d.in, op),
        at::empty({d.out_channels, d.in.c, d.kernel, d.kernel}, values()), c10::nullopt, {d.stride, d.stride},
        {d.pad, d.pad}, {1, 1}, false, {0, 0}, 1, {false, true, false});
    detail::oihw(dw, d.kernel, d.in.c, d.out_channels, op).copy_(std::get<1>(grads));
  }

  // --- 1×1 convolution ----------------------------------------------------------------------
  // A 1×1 convolution over the [pixels, channels] matrix seen as channels-last images
  // (detail::pixels), rather than at::mm: convolutions go to oneDNN on a CPU (cuDNN on a GPU),
  // while at::mm's CPU speed is that of whatever BLAS LibTorch was linked with, and Debian's
  // reference BLAS makes it 5 to 7 times slower here (docs/backends.md has the numbers).
  void pointwise_forward(const pointwise_desc& d, const tensor& x, const tensor& w, tensor& y) {
    const guard g;
    const char* op = "pointwise_forward";
    detail::pixels(y, d.rows, d.out_channels, op)
        .copy_(at::convolution(detail::pixels(x, d.rows, d.in_channels, op),
                               detail::pointwise_oihw(w, d.in_channels, d.out_channels, op), c10::nullopt, {1, 1},
                               {0, 0}, {1, 1}, false, {0, 0}, 1));
  }
  void pointwise_backward_data(const pointwise_desc& d, const tensor& dy, const tensor& w, tensor& dx,
                               bool accumulate) {
    const guard g;
    const char* op = "pointwise_backward_data";
    const auto grads = at::convolution_backward(
        detail::pixels(dy, d.rows, d.out_channels, op),
        at::empty_like(detail::pixels(dx, d.rows, d.in_channels, op)),
        detail::pointwise_oihw(w, d.in_channels, d.out_channels, op), c10::nullopt, {1, 1}, {0, 0}, {1, 1}, false,
        {0, 0}, 1, {true, false, false});
    auto out = detail::pixels(dx, d.rows, d.in_channels, op);
    if (accumulate)
      out.add_(std::get<0>(grads));
    else
      out.copy_(std::get<0>(grads));
  }
  void pointwise_backward_filter(const pointwise_desc& d, const tensor& x, const tensor& dy, tensor& dw) {
    const guard g;
    const char* op = "pointwise_backward_filter";
    const auto grads = at::convolution_backward(
        detail::pixels(dy, d.rows, d.out_channels, op), detail::pixels(x, d.rows, d.in_channels, op),
        at::empty({d.out_channels, d.in_channels, 1, 1}, values()), c10::nullopt, {1, 1}, {0, 0}, {1, 1}, false,
        {0, 0}, 1, {false, true, false});
    detail::pointwise_oihw(dw, d.in_channels, d.out_channels, op).copy_(std::get<1>(grads));
  }

  // --- depthwise convolution: a grouped convolution, one group per channel --------------------
  void depthwise_forward(const depthwise_desc& d, const tensor& x, const tensor& w, tensor& y) {
    const guard g;
    const char* op = "depthwise_forward";
    detail::nchw(y, d.out(), op)
        .copy_(at::convolution(detail::nchw(x, d.in, op), detail::depthwise_oihw(w, d.kernel, d.in.c, op),
                               c10::nullopt, {d.stride, d.stride}, {d.pad(), d.pad()}, {1, 1}, false, {0, 0}, d.in.c));
  }
  void depthwise_backward_data(const depthwise_desc& d, const tensor& dy, const tensor& w, tensor& dx) {
    const guard g;
    const auto grads = depthwise_grads(d, shaped_like_input(d.in), detail::depthwise_oihw(w, d.kernel, d.in.c, "depthwise_backward_data"),
                                       dy, {true, false, false}, "depthwise_backward_data");
    detail::nchw(dx, d.in, "depthwise_backward_data").copy_(std::get<0>(grads));
  }
  void depthwise_backward_filter(const depthwise_desc& d, const tensor& x, const tensor& dy, tensor& dw) {
    const guard g;
    const char* op = "depthwise_backward_filter";
    const auto grads = depthwise_grads(d, detail::nchw(x, d.in, op), at::empty({d.in.c, 1, d.kernel, d.kernel}, values()),
                                       dy, {false, true, false}, op);
    detail::depthwise_oihw(dw, d.kernel, d.in.c, op).copy_(std::get<1>(grads));
  }
  // The optional fused path: at::convolution_backward computes both gradients in one call.
  void depthwise_backward(const depthwise_desc& d, const tensor& x, const tensor& w, const tensor& dy, tensor& dx,
                          tensor& dw) {
    const guard g;
    const char* op = "depthwise_backward";
    const auto grads = depthwise_grads(d, detail::nchw(x, d.in, op), detail::depthwise_oihw(w, d.kernel, d.in.c, op),
                                       dy, {true, true, false}, op);
    detail::nchw(dx, d.in, op).copy_(std::get<0>(grads));
    detail::depthwise_oihw(dw, d.kernel, d.in.c, op).copy_(std::get<1>(grads));
  }

  // --- batch norm: ATen's native kernels on the [rows, channels] matrix ----------------------
  void batch_norm_forward_train(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x, tensor& y,
                                double factor) {
    const guard g;
    const char* op = "batch_norm_forward_train";
    auto out = detail::matrix(y, d.rows, d.channels, op);
    auto mean = channels(bn.saved_mean, d, op);
    auto inv_std = channels(bn.saved_inv_std, d, op);
    auto running_mean = channels(bn.running_mean, d, op);
    auto running_var = channels(bn.running_var, d, op);
    // ATen's running update divides by rows - 1 for the unbiased variance; the contract takes the
    // biased one (zero) for a single row, so that case is updated here instead.
    const bool one_row = d.rows < 2;
    // ATen has no CPU kernel for native_batch_norm's out= form, so the results are copied in.
    const auto [normalised, batch_mean, batch_inv_std] = at::native_batch_norm(
        detail::matrix(x, d.rows, d.channels, op), channels(bn.gamma, d, op), channels(bn.beta, d, op),
        one_row ? at::Tensor() : running_mean, one_row ? at::Tensor() : running_var, true, factor, d.epsilon);
    out.copy_(normalised);
    mean.copy_(batch_mean);
    inv_std.copy_(batch_inv_std);
    if (one_row) {
      running_mean.mul_(1 - factor).add_(mean, factor);
      running_var.mul_(1 - factor);
    }
  }
  void batch_norm_forward_inference(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                    tensor& y) {
    const guard g;
    const char* op = "batch_norm_forward_inference";
    detail::matrix(y, d.rows, d.channels, op)
        .copy_(std::get<0>(at::native_batch_norm(detail::matrix(x, d.rows, d.channels, op), channels(bn.gamma, d, op),
                                                 channels(bn.beta, d, op), channels(bn.running_mean, d, op),
                                                 channels(bn.running_var, d, op), false, 0.0, d.epsilon)));
  }
  void batch_norm_backward(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x, const tensor& dy,
                           tensor& dx) {
    const guard g;
    const char* op = "batch_norm_backward";
    auto dx_m = detail::matrix(dx, d.rows, d.channels, op);
    auto dgamma = channels(bn.grad_gamma, d, op);
    auto dbeta = channels(bn.grad_beta, d, op);
    const auto [grad_x, grad_gamma, grad_beta] = at::native_batch_norm_backward(
        detail::matrix(dy, d.rows, d.channels, op), detail::matrix(x, d.rows, d.channels, op),
        channels(bn.gamma, d, op), at::Tensor(), at::Tensor(), channels(bn.saved_mean, d, op),
        channels(bn.saved_inv_std, d, op), true, d.epsilon, {true, true, true});
    dx_m.copy_(grad_x);
    dgamma.copy_(grad_gamma);
    dbeta.copy_(grad_beta);
  }

  // --- elementwise -------------------------------------------------------------------------
  void relu6_forward(index n, const tensor& x, tensor& y) {
    const guard g;
    auto out = detail::first(y, n, "relu6_forward");
    at::clamp_out(out, detail::first(x, n, "relu6_forward"), 0, 6);
  }
  // hardtanh's backward passes dy where min < its argument < max; given the output y, that is
  // exactly the contract's mask 0 < y < 6.
  void relu6_backward(index n, const tensor& y, const tensor& dy, tensor& dx) {
    const guard g;
    const char* op = "relu6_backward";
    auto out = detail::first(dx, n, op);
    at::hardtanh_backward_out(out, detail::first(dy, n, op), detail::first(y, n, op), 0, 6);
  }
  void add(index n, const tensor& a, const tensor& b, tensor& out) {
    const guard g;
    auto o = detail::first(out, n, "add");
    at::add_out(o, detail::first(a, n, "add"), detail::first(b, n, "add"));
  }

  // --- pooling -----------------------------------------------------------------------------
  void global_avg_pool_forward(const act_shape& s, const tensor& x, tensor& y) {
    const guard g;
    const char* op = "global_avg_pool_forward";
    auto out = detail::matrix(y, s.n, s.c, op);
    at::mean_out(out, detail::first(x, s.numel(), op).view({s.n, s.h * s.w, s.c}), {1});
  }
  void global_avg_pool_backward(const act_shape& s, const tensor& dy, tensor& dx) {
    const guard g;
    const char* op = "global_avg_pool_backward";
    detail::first(dx, s.numel(), op)
        .view({s.n, s.h * s.w, s.c})
        .copy_(detail::matrix(dy, s.n, s.c, op).unsqueeze(1).expand({s.n, s.h * s.w, s.c}))
        .div_(static_cast<double>(s.h * s.w));
  }

  // --- fully connected (weights [in][out]) --------------------------------------------------
  void linear_forward(const linear_desc& d, const tensor& x, const tensor& w, const tensor& bias, tensor& y) {
    const guard g;
    const char* op = "linear_forward";
    auto out = detail::matrix(y, d.batch, d.out_features, op);
    at::addmm_out(out, detail::first(bias, d.out_features, op), detail::matrix(x, d.batch, d.in_features, op),
                  detail::matrix(w, d.in_features, d.out_features, op));
  }
  void linear_backward_data(const linear_desc& d, const tensor& dy, const tensor& w, tensor& dx) {
    const guard g;
    const char* op = "linear_backward_data";
    auto out = detail::matrix(dx, d.batch, d.in_features, op);
    at::mm_out(out, detail::matrix(dy, d.batch, d.out_features, op), detail::matrix(w, d.in_features, d.out_features, op).t());
  }
  void linear_backward_params(const linear_desc& d, const tensor& x, const tensor& dy, tensor& dw, tensor& dbias) {
    const guard g;
    const char* op = "linear_backward_params";
    const auto g_out = detail::matrix(dy, d.batch, d.out_features, op);
    auto dw_m = detail::matrix(dw, d.in_features, d.out_features, op);
    auto db = detail::first(dbias, d.out_features, op);
    at::mm_out(dw_m, detail::matrix(x, d.batch, d.in_features, op).t(), g_out);
    at::sum_out(db, g_out, {0});
  }

  // --- loss: ATen's label-smoothed cross-entropy forward; its gradient written out ----------
  void softmax_cross_entropy_forward(const cross_entropy_desc& d, const tensor& logits, const label_tensor& labels,
                                     tensor& stats) {
    const guard g;
    const char* op = "softmax_cross_entropy_forward";
    const auto z = detail::matrix(logits, d.batch, d.classes, op);
    const auto l = detail::first(labels, d.batch, op);
    auto s = detail::first(stats, 2, op);
    const auto loss = at::cross_entropy_loss(z, l, c10::nullopt, at::Reduction::Sum, -100, d.label_smoothing);
    // argmax returns the first of equal maxima, as the contract's tie rule wants.
    const auto correct = at::eq(z.argmax(1), l).sum();
    s.narrow(0, 0, 1).add_(loss);
    s.narrow(0, 1, 1).add_(correct);
  }
  // d(mean loss)/dz = (softmax(z) - target) / batch, target = (1 - s)·onehot + s/classes.
  void softmax_cross_entropy_backward(const cross_entropy_desc& d, const tensor& logits, const label_tensor& labels,
                                      tensor& dlogits) {
    const guard g;
    const char* op = "softmax_cross_entropy_backward";
    auto out = detail::matrix(dlogits, d.batch, d.classes, op);
    const auto l = detail::first(labels, d.batch, op).unsqueeze(1);
    at::_softmax_out(out, detail::matrix(logits, d.batch, d.classes, op), 1, false);
    out.sub_(d.label_smoothing / static_cast<double>(d.classes));
    out.scatter_add_(1, l, at::full({d.batch, 1}, -(1.0 - d.label_smoothing), values()));
    out.div_(static_cast<double>(d.batch));
  }

  // --- optimizer: PyTorch's SGD, written out so that it needs no autograd parameters --------
  void sgd_update(const sgd_desc& d, tensor& w, const tensor& grad, tensor& m) {
    const guard g;
    const char* op = "sgd_update";
    auto value = detail::first(w, d.size, op);
    auto momentum = detail::first(m, d.size, op);
    auto step = detail::first(grad, d.size, op);
    if (d.weight_decay != 0.0) step = step.add(value, d.weight_decay);  // a new tensor: grad is const
    momentum.mul_(d.momentum).add_(step);
    if (d.nesterov) {
      value.add_(step, -d.learning_rate).add_(momentum, -d.learning_rate * d.momentum);
    } else {
      value.add_(momentum, -d.learning_rate);
    }
  }

 private:
  // Every call runs below ATen's autograd and view-tracking layers: these tensors never carry
  // gradients, and skipping the layers saves their per-call bookkeeping.
  struct guard {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
  };

  at::TensorOptions values() const { return at::TensorOptions().dtype(dtype()).device(device_); }
  static std::string threads(int n) { return std::to_string(n) + (n == 1 ? " thread" : " threads"); }
  static constexpr at::ScalarType dtype() { return std::is_same_v<T, float> ? at::kFloat : at::kDouble; }

  // A CPU tensor over host memory that the caller owns.
  static at::Tensor host(void* data, index n, at::ScalarType type) {
    return at::from_blob(data, {n}, at::TensorOptions().dtype(type).device(c10::kCPU));
  }
  at::Tensor shaped_like_input(const act_shape& s) const {
    return at::empty({s.n, s.c, s.h, s.w}, values().memory_format(at::MemoryFormat::ChannelsLast));
  }
  static at::Tensor channels(const tensor& t, const batch_norm_desc& d, const char* op) {
    return detail::first(t, d.channels, op);
  }
  std::tuple<at::Tensor, at::Tensor, at::Tensor> depthwise_grads(const depthwise_desc& d, const at::Tensor& x,
                                                                 const at::Tensor& w, const tensor& dy,
                                                                 std::array<bool, 3> mask, const char* op) {
    return at::convolution_backward(detail::nchw(dy, d.out(), op), x, w, c10::nullopt, {d.stride, d.stride},
                                    {d.pad(), d.pad()}, {1, 1}, false, {0, 0}, d.in.c, mask);
  }

  c10::Device device_ = c10::kCPU;
};

using backend = basic_backend<float>;

static_assert(check_backend<basic_backend<float>>());
static_assert(check_backend<basic_backend<double>>());
static_assert(has_depthwise_backward<basic_backend<float>>);

}  // namespace pcnas::backend::libtorch
