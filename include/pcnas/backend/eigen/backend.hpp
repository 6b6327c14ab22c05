// pcnas's fast CPU backend: float32, NHWC, Eigen GEMMs for the 1×1 convolutions, vectorised
// depthwise kernels, fused batch norm, OpenMP threads (settable).
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen/batch_norm.hpp>
#include <pcnas/backend/eigen/conv2d.hpp>
#include <pcnas/backend/eigen/depthwise.hpp>
#include <pcnas/backend/eigen/gemm.hpp>
#include <pcnas/backend/eigen/fused.hpp>
#include <pcnas/backend/eigen/ops.hpp>
#include <pcnas/backend/eigen/parallel.hpp>
#include <pcnas/backend/eigen/tensor.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>

namespace pcnas::backend::eigen {

struct options {
  int threads = 0;  // 0: OpenMP's default (OMP_NUM_THREADS, else the number of cores)
};

// One object per thread of control: its scratch buffers are reused from call to call. The GEMMs
// run single-threaded inside the backend's own OpenMP split; Eigen's global thread setting is
// set to one for the duration of each such call and restored after.
class backend {
 public:
  using value_type = float;
  using tensor = eigen::tensor;
  using label_tensor = eigen::label_tensor;

  explicit backend(options o = {}) { set_threads(o.threads); }

  int threads() const noexcept { return threads_; }
  void set_threads(int n) {
#if defined(_OPENMP)
    threads_ = n > 0 ? n : omp_get_max_threads();
#else
    threads_ = 1;
    (void)n;
#endif
    ws_.resize_threads(std::max(threads_, 1));
    big_.resize_threads(1);
  }

  std::string name() const {
    return "eigen (float32, " + std::to_string(threads_) + (threads_ == 1 ? " thread, " : " threads, ") +
           std::to_string(detail::lanes * 32) + "-bit vectors)";
  }

  // --- memory -----------------------------------------------------------------------------
  // allocate() leaves the contents unspecified.
  tensor allocate(index n) { return tensor(n); }
  label_tensor allocate_labels(index n) { return label_tensor{std::vector<std::int32_t>(static_cast<std::size_t>(n), 0)}; }
  void fill(index n, float v, tensor& t) {
    need(t, n, "fill");
    std::fill(t.data(), t.data() + n, v);
  }
  void copy(index n, const tensor& src, tensor& dst) {
    need(src, n, "copy");
    need(dst, n, "copy");
    std::memcpy(dst.data(), src.data(), static_cast<std::size_t>(n) * sizeof(float));
  }
  void upload(std::span<const float> src, tensor& dst) {
    need(dst, static_cast<index>(src.size()), "upload");
    std::memcpy(dst.data(), src.data(), src.size() * sizeof(float));
  }
  void download(const tensor& src, std::span<float> dst) {
    need(src, static_cast<index>(dst.size()), "download");
    std::memcpy(dst.data(), src.data(), dst.size() * sizeof(float));
  }
  void upload_labels(std::span<const std::int32_t> src, label_tensor& dst) {
    if (dst.data.size() < src.size()) throw std::out_of_range("pcnas eigen backend: label tensor too small in upload_labels");
    std::copy(src.begin(), src.end(), dst.data.begin());
  }
  void synchronize() {}

  // --- dense convolution --------------------------------------------------------------------
  void conv2d_forward(const conv2d_desc& d, const tensor& x, const tensor& w, tensor& y) {
    need(x, d.in.numel(), "conv2d_forward");
    need(w, d.weight_size(), "conv2d_forward");
    need(y, d.out().numel(), "conv2d_forward");
    detail::conv2d_forward(threads_, ws_, d, x.data(), w.data(), y.data());
  }
  void conv2d_backward_data(const conv2d_desc& d, const tensor& dy, const tensor& w, tensor& dx) {
    need(dy, d.out().numel(), "conv2d_backward_data");
    need(dx, d.in.numel(), "conv2d_backward_data");
    detail::conv2d_backward_data(threads_, d, dy.data(), w.data(), dx.data());
  }
  void conv2d_backward_filter(const conv2d_desc& d, const tensor& x, const tensor& dy, tensor& dw) {
    need(dw, d.weight_size(), "conv2d_backward_filter");
    detail::conv2d_backward_filter(threads_, ws_, d, x.data(), dy.data(), dw.data());
  }

  // --- 1×1 convolution ----------------------------------------------------------------------
  void pointwise_forward(const pointwise_desc& d, const tensor& x, const tensor& w, tensor& y) {
    need(x, d.rows * d.in_channels, "pointwise_forward");
    need(w, d.weight_size(), "pointwise_forward");
    need(y, d.rows * d.out_channels, "pointwise_forward");
    detail::pointwise_forward(threads_, d, x.data(), w.data(), y.data());
  }
  void pointwise_backward_data(const pointwise_desc& d, const tensor& dy, const tensor& w, tensor& dx,
                               bool accumulate) {
    need(dy, d.rows * d.out_channels, "pointwise_backward_data");
    need(dx, d.rows * d.in_channels, "pointwise_backward_data");
    detail::pointwise_backward_data(threads_, d, dy.data(), w.data(), dx.data(), accumulate);
  }
  void pointwise_backward_filter(const pointwise_desc& d, const tensor& x, const tensor& dy, tensor& dw) {
    need(dw, d.weight_size(), "pointwise_backward_filter");
    detail::pointwise_backward_filter(threads_, ws_, d, x.data(), dy.data(), dw.data());
  }

  // --- depthwise convolution ----------------------------------------------------------------
  void depthwise_forward(const depthwise_desc& d, const tensor& x, const tensor& w, tensor& y) {
    need(x, d.in.numel(), "depthwise_forward");
    need(w, d.weight_size(), "depthwise_forward");
    need(y, d.out().numel(), "depthwise_forward");
    detail::depthwise_forward(threads_, ws_, d, x.data(), w.data(), y.data());
  }
  void depthwise_backward_data(const depthwise_desc& d, const tensor& dy, const tensor& w, tensor& dx) {
    need(dy, d.out().numel(), "depthwise_backward_data");
    need(dx, d.in.numel(), "depthwise_backward_data");
    detail::depthwise_backward(threads_, ws_, d, nullptr, w.data(), dy.data(), dx.data(), nullptr);
  }
  void depthwise_backward_filter(const depthwise_desc& d, const tensor& x, const tensor& dy, tensor& dw) {
    need(x, d.in.numel(), "depthwise_backward_filter");
    need(dy, d.out().numel(), "depthwise_backward_filter");
    need(dw, d.weight_size(), "depthwise_backward_filter");
    detail::depthwise_backward(threads_, ws_, d, x.data(), nullptr, dy.data(), nullptr, dw.data());
  }
  void depthwise_backward(const depthwise_desc& d, const tensor& x, const tensor& w, const tensor& dy, tensor& dx,
                          tensor& dw) {
    need(x, d.in.numel(), "depthwise_backward");
    need(dy, d.out().numel(), "depthwise_backward");
    need(dx, d.in.numel(), "depthwise_backward");
    need(dw, d.weight_size(), "depthwise_backward");
    detail::depthwise_backward(threads_, ws_, d, x.data(), w.data(), dy.data(), dx.data(), dw.data());
  }

  // --- batch norm ---------------------------------------------------------------------------
  void batch_norm_forward_train(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x, tensor& y,
                                double factor) {
    bn_io(d, x, y, "batch_norm_forward_train");
    detail::bn_forward_train(threads_, ws_, d, ptrs(bn), x.data(), y.data(), factor, detail::bn_epilogue::none, nullptr);
  }
  void batch_norm_forward_inference(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                    tensor& y) {
    bn_io(d, x, y, "batch_norm_forward_inference");
    detail::bn_forward_inference(threads_, d, ptrs(bn), x.data(), y.data(), detail::bn_epilogue::none, nullptr);
  }
  void batch_norm_backward(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x, const tensor& dy,
                           tensor& dx) {
    bn_io(d, x, dx, "batch_norm_backward");
    need(dy, d.rows * d.channels, "batch_norm_backward");
    detail::bn_backward(threads_, ws_, d, ptrs(bn), x.data(), dy.data(), dx.data(), false);
  }
  void batch_norm_relu6_forward_train(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                      tensor& y, double factor) {
    bn_io(d, x, y, "batch_norm_relu6_forward_train");
    detail::bn_forward_train(threads_, ws_, d, ptrs(bn), x.data(), y.data(), factor, detail::bn_epilogue::relu6,
                             nullptr);
  }
  void batch_norm_relu6_forward_inference(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                          tensor& y) {
    bn_io(d, x, y, "batch_norm_relu6_forward_inference");
    detail::bn_forward_inference(threads_, d, ptrs(bn), x.data(), y.data(), detail::bn_epilogue::relu6, nullptr);
  }
  // The ReLU6 mask is recomputed from x and the saved statistics, so y is not read.
  void batch_norm_relu6_backward(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                 const tensor& /*y*/, const tensor& dy, tensor& dx) {
    bn_io(d, x, dx, "batch_norm_relu6_backward");
    need(dy, d.rows * d.channels, "batch_norm_relu6_backward");
    detail::bn_backward(threads_, ws_, d, ptrs(bn), x.data(), dy.data(), dx.data(), true);
  }
  void batch_norm_add_forward_train(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                    const tensor& residual, tensor& y, double factor) {
    bn_io(d, x, y, "batch_norm_add_forward_train");
    need(residual, d.rows * d.channels, "batch_norm_add_forward_train");
    detail::bn_forward_train(threads_, ws_, d, ptrs(bn), x.data(), y.data(), factor, detail::bn_epilogue::add,
                             residual.data());
  }
  void batch_norm_add_forward_inference(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                        const tensor& residual, tensor& y) {
    bn_io(d, x, y, "batch_norm_add_forward_inference");
    need(residual, d.rows * d.channels, "batch_norm_add_forward_inference");
    detail::bn_forward_inference(threads_, d, ptrs(bn), x.data(), y.data(), detail::bn_epilogue::add,
                                 residual.data());
  }

  // --- the fused MBConv ---------------------------------------------------------------------
  void mbconv_forward(const mbconv_desc& d, mbconv_tensors<tensor> t, bool training, double factor, const tensor& x,
                      tensor& z1, tensor& z2, tensor& z3, tensor& y) {
    need(x, d.in.numel(), "mbconv_forward");
    if (d.expands()) need(z1, d.hidden_in().numel(), "mbconv_forward");
    need(z2, d.hidden_out().numel(), "mbconv_forward");
    need(z3, d.out().numel(), "mbconv_forward");
    need(y, d.out().numel(), "mbconv_forward");
    detail::mbconv_forward(threads_, ws_, d, ptrs(d, t), training, factor, x.data(), z1.data(), z2.data(), z3.data(),
                           y.data());
  }
  void mbconv_backward(const mbconv_desc& d, mbconv_tensors<tensor> t, const tensor& x, const tensor& z1,
                       const tensor& z2, const tensor& z3, const tensor& dy, tensor& dx) {
    need(dy, d.out().numel(), "mbconv_backward");
    need(dx, d.in.numel(), "mbconv_backward");
    if (d.expands()) need(z1, d.hidden_in().numel(), "mbconv_backward");
    detail::mbconv_backward(threads_, ws_, big_, d, ptrs(d, t), x.data(), z1.data(), z2.data(), z3.data(), dy.data(),
                            dx.data());
  }

  // --- the fused stem and head ---------------------------------------------------------------
  void conv_bn_relu6_forward(const conv2d_desc& d, double epsilon, const tensor& w, batch_norm_tensors<tensor> bn,
                             bool training, double factor, const tensor& x, tensor& z, tensor& y) {
    need(x, d.in.numel(), "conv_bn_relu6_forward");
    need(w, d.weight_size(), "conv_bn_relu6_forward");
    need(z, d.out().numel(), "conv_bn_relu6_forward");
    need(y, d.out().numel(), "conv_bn_relu6_forward");
    detail::stem_forward(threads_, ws_, d, epsilon, w.data(), ptrs(bn), training, factor, x.data(), z.data(), y.data());
  }
  void conv_bn_relu6_backward(const conv2d_desc& d, double /*epsilon*/, const tensor& w, tensor& dw,
                              batch_norm_tensors<tensor> bn, const tensor& x, const tensor& z, const tensor& dy,
                              tensor* dx) {
    need(dw, d.weight_size(), "conv_bn_relu6_backward");
    need(dy, d.out().numel(), "conv_bn_relu6_backward");
    if (dx != nullptr) need(*dx, d.in.numel(), "conv_bn_relu6_backward");
    detail::stem_backward(threads_, ws_, big_, d, w.data(), dw.data(), ptrs(bn), x.data(), z.data(), dy.data(),
                          dx != nullptr ? dx->data() : nullptr);
  }
  void head_forward(const head_desc& d, const tensor& w, batch_norm_tensors<tensor> bn, bool training, double factor,
                    const tensor& x, tensor& z, tensor& pooled) {
    need(x, d.in.numel(), "head_forward");
    need(w, d.in.c * d.features, "head_forward");
    need(z, d.hidden().numel(), "head_forward");
    need(pooled, d.in.n * d.features, "head_forward");
    detail::head_forward(threads_, ws_, d, w.data(), ptrs(bn), training, factor, x.data(), z.data(), pooled.data());
  }
  void head_backward(const head_desc& d, const tensor& w, tensor& dw, batch_norm_tensors<tensor> bn, const tensor& x,
                     const tensor& z, const tensor& dpooled, tensor& dx) {
    need(dw, d.in.c * d.features, "head_backward");
    need(dpooled, d.in.n * d.features, "head_backward");
    need(dx, d.in.numel(), "head_backward");
    detail::head_backward(threads_, ws_, d, w.data(), dw.data(), ptrs(bn), x.data(), z.data(), dpooled.data(), dx.data());
  }

  // --- elementwise, pooling, linear, loss, optimizer -----------------------------------------
  void relu6_forward(index n, const tensor& x, tensor& y) {
    need(x, n, "relu6_forward");
    need(y, n, "relu6_forward");
    detail::relu6_forward(threads_, n, x.data(), y.data());
  }
  void relu6_backward(index n, const tensor& y, const tensor& dy, tensor& dx) {
    need(y, n, "relu6_backward");
    need(dy, n, "relu6_backward");
    need(dx, n, "relu6_backward");
    detail::relu6_backward(threads_, n, y.data(), dy.data(), dx.data());
  }
  void add(index n, const tensor& a, const tensor& b, tensor& out) {
    need(a, n, "add");
    need(b, n, "add");
    need(out, n, "add");
    detail::add(threads_, n, a.data(), b.data(), out.data());
  }
  void global_avg_pool_forward(const act_shape& s, const tensor& x, tensor& y) {
    need(x, s.numel(), "global_avg_pool_forward");
    need(y, s.n * s.c, "global_avg_pool_forward");
    detail::global_avg_pool_forward(threads_, s, x.data(), y.data());
  }
  void global_avg_pool_backward(const act_shape& s, const tensor& dy, tensor& dx) {
    need(dy, s.n * s.c, "global_avg_pool_backward");
    need(dx, s.numel(), "global_avg_pool_backward");
    detail::global_avg_pool_backward(threads_, s, dy.data(), dx.data());
  }
  void linear_forward(const linear_desc& d, const tensor& x, const tensor& w, const tensor& bias, tensor& y) {
    need(x, d.batch * d.in_features, "linear_forward");
    need(w, d.in_features * d.out_features, "linear_forward");
    need(bias, d.out_features, "linear_forward");
    need(y, d.batch * d.out_features, "linear_forward");
    detail::linear_forward(d, x.data(), w.data(), bias.data(), y.data());
  }
  void linear_backward_data(const linear_desc& d, const tensor& dy, const tensor& w, tensor& dx) {
    need(dx, d.batch * d.in_features, "linear_backward_data");
    detail::linear_backward_data(d, dy.data(), w.data(), dx.data());
  }
  void linear_backward_params(const linear_desc& d, const tensor& x, const tensor& dy, tensor& dw, tensor& dbias) {
    need(dw, d.in_features * d.out_features, "linear_backward_params");
    need(dbias, d.out_features, "linear_backward_params");
    detail::linear_backward_params(d, x.data(), dy.data(), dw.data(), dbias.data());
  }
  void softmax_cross_entropy_forward(const cross_entropy_desc& d, const tensor& logits, const label_tensor& labels,
                                     tensor& stats) {
    need(logits, d.batch * d.classes, "softmax_cross_entropy_forward");
    need(stats, 2, "softmax_cross_entropy_forward");
    check_labels(d, labels);
    detail::cross_entropy_forward(d, logits.data(), labels.data.data(), stats.data());
  }
  void softmax_cross_entropy_backward(const cross_entropy_desc& d, const tensor& logits, const label_tensor& labels,
                                      tensor& dlogits) {
    need(logits, d.batch * d.classes, "softmax_cross_entropy_backward");
    need(dlogits, d.batch * d.classes, "softmax_cross_entropy_backward");
    check_labels(d, labels);
    detail::cross_entropy_backward(d, logits.data(), labels.data.data(), dlogits.data());
  }
  void sgd_update(const sgd_desc& d, tensor& w, const tensor& g, tensor& m) {
    need(w, d.size, "sgd_update");
    need(g, d.size, "sgd_update");
    need(m, d.size, "sgd_update");
    detail::sgd_update(threads_, d, w.data(), g.data(), m.data());
  }

 private:
  static void need(const tensor& t, index n, const char* op) {
    if (t.size() < n)
      throw std::out_of_range(std::string("pcnas eigen backend: ") + op + " got a tensor of " + std::to_string(t.size()) +
                              " elements where it needs " + std::to_string(n));
  }
  static void bn_io(const batch_norm_desc& d, const tensor& x, const tensor& y, const char* op) {
    need(x, d.rows * d.channels, op);
    need(y, d.rows * d.channels, op);
  }
  static void check_labels(const cross_entropy_desc& d, const label_tensor& labels) {
    if (static_cast<index>(labels.data.size()) < d.batch)
      throw std::out_of_range("pcnas eigen backend: fewer labels than samples in the loss");
    for (index n = 0; n < d.batch; ++n)
      if (labels.data[static_cast<std::size_t>(n)] < 0 || labels.data[static_cast<std::size_t>(n)] >= d.classes)
        throw std::out_of_range("pcnas eigen backend: label " + std::to_string(labels.data[static_cast<std::size_t>(n)]) +
                                " outside [0, " + std::to_string(d.classes) + ")");
  }
  static detail::bn_ptrs ptrs(batch_norm_tensors<tensor>& bn) {
    return {bn.gamma.data(),      bn.beta.data(),          bn.running_mean.data(), bn.running_var.data(),
            bn.saved_mean.data(), bn.saved_inv_std.data(), bn.grad_gamma.data(),   bn.grad_beta.data()};
  }

  static detail::mbconv_ptrs ptrs(const mbconv_desc& d, mbconv_tensors<tensor>& t) {
    if (d.expands() && (t.expand_weight == nullptr || t.expand_grad == nullptr || t.expand_bn == nullptr))
      throw std::invalid_argument("pcnas eigen backend: an expanding MBConv needs its expansion tensors");
    const detail::bn_ptrs none{};
    return {d.expands() ? t.expand_weight->data() : nullptr,
            d.expands() ? t.expand_grad->data() : nullptr,
            d.expands() ? ptrs(*t.expand_bn) : none,
            t.depthwise_weight.data(),
            t.depthwise_grad.data(),
            ptrs(t.depthwise_bn),
            t.project_weight.data(),
            t.project_grad.data(),
            ptrs(t.project_bn)};
  }

  int threads_ = 1;
  detail::scratch ws_;
  detail::scratch big_;  // the two hidden-size gradients of a fused MBConv backward
};

static_assert(check_backend<backend>());
static_assert(has_batch_norm_relu6<backend> && has_batch_norm_add<backend> && has_depthwise_backward<backend> &&
              has_fused_mbconv<backend> && has_fused_conv_bn_relu6<backend> && has_fused_head<backend>);

}  // namespace pcnas::backend::eigen
