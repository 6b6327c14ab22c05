// pcnas's Thrust backend: float32, NHWC, one source for every Thrust device system. Compiled by
// nvcc it is the CUDA backend (cuBLAS GEMMs, one stream, see backend/cuda/); compiled by a host
// compiler with THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP it runs on the CPU's threads,
// which is how CI tests it without a GPU.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/thrust/kernels.hpp>
#include <pcnas/backend/thrust/memory.hpp>

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#if !defined(__CUDACC__)
#error "pcnas's Thrust backend on the CUDA device system must be compiled by nvcc (a .cu file)"
#endif
#include <pcnas/backend/cuda/system.cuh>
#else
#include <pcnas/backend/thrust/host_system.hpp>
#endif

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcnas::backend::thrust {

struct options {
  int threads = 0;  // OpenMP system: 0 for OpenMP's default. Ignored on CUDA.
  // OpenMP system: calls over fewer indices run on the calling thread (0: every call parallel,
  // as the tests use to exercise the parallel paths on small shapes). Ignored on CUDA.
  index serial_below = 4096;
};

// One object per thread of control (on CUDA: per stream). Calls may run asynchronously in
// program order; download() and synchronize() wait.
class backend {
 public:
  using value_type = float;
  using tensor = thrust::tensor;
  using label_tensor = thrust::label_tensor;

  explicit backend(options o = {})
      : alloc_(std::make_shared<caching_allocator>()), sys_(o.threads, o.serial_below), cols_(alloc_), partial_(alloc_),
        sums_(alloc_), sgd_items_(alloc_),
        sgd_offsets_(alloc_) {}

  std::string name() const { return sys_.name(); }
#if THRUST_DEVICE_SYSTEM != THRUST_DEVICE_SYSTEM_CUDA
  int threads() const noexcept { return sys_.threads(); }
#else
  // The optional latency members of the contract (backend/concept.hpp): the GPU's clock, name,
  // driver and clocks.
  std::string device_description() const { return sys_.device_description(); }
  auto start_timer() { return sys_.start_timer(); }
  double elapsed_ms(detail::device_system::timer_token t) { return sys_.elapsed_ms(t); }
#endif

  // What the caching allocator has done: a repeated path shows no new device allocations.
  allocation_stats allocations() const { return alloc_->stats(); }
  // Gives cached blocks back to the device system (between searches, never during one).
  void trim_memory() { alloc_->trim(); }

  // --- memory -----------------------------------------------------------------------------
  // allocate() leaves the contents unspecified.
  tensor allocate(index n) { return tensor(alloc_, n); }
  label_tensor allocate_labels(index n) { return label_tensor(alloc_, n); }
  void fill(index n, float v, tensor& t) {
    need(t, n, "fill");
    each(n, detail::fill_fn{t.data(), v});
  }
  void copy(index n, const tensor& src, tensor& dst) {
    need(src, n, "copy");
    need(dst, n, "copy");
    each(n, detail::copy_fn{src.data(), dst.data()});
  }
  void upload(std::span<const float> src, tensor& dst) {
    need(dst, static_cast<index>(src.size()), "upload");
    sys_.upload(dst.data(), src.data(), src.size_bytes());
  }
  void download(const tensor& src, std::span<float> dst) {
    need(src, static_cast<index>(dst.size()), "download");
    sys_.download(dst.data(), src.data(), dst.size_bytes());
  }
  void upload_labels(std::span<const std::int32_t> src, label_tensor& dst) {
    if (dst.size() < static_cast<index>(src.size()))
      throw std::out_of_range("pcnas thrust backend: label tensor too small in upload_labels");
    sys_.upload(dst.data(), src.data(), src.size_bytes());
  }
  void synchronize() { sys_.synchronize(); }

  // --- dense convolution: im2col, then GEMMs against the [kh·kw·ci, co] weight matrix --------
  void conv2d_forward(const conv2d_desc& d, const tensor& x, const tensor& w, tensor& y) {
    need(x, d.in.numel(), "conv2d_forward");
    need(w, d.weight_size(), "conv2d_forward");
    need(y, d.out().numel(), "conv2d_forward");
    const index rows = d.out().rows(), K = d.kernel * d.kernel * d.in.c;
    float* cols = cols_.get(rows * K);
    each(rows * K, detail::im2col_fn{detail::geometry(d), x.data(), cols});
    sys_.gemm(false, false, rows, d.out_channels, K, cols, w.data(), y.data(), 0.0f);
  }
  void conv2d_backward_data(const conv2d_desc& d, const tensor& dy, const tensor& w, tensor& dx) {
    need(dy, d.out().numel(), "conv2d_backward_data");
    need(w, d.weight_size(), "conv2d_backward_data");
    need(dx, d.in.numel(), "conv2d_backward_data");
    const index rows = d.out().rows(), K = d.kernel * d.kernel * d.in.c;
    float* dcols = cols_.get(rows * K);
    sys_.gemm(false, true, rows, K, d.out_channels, dy.data(), w.data(), dcols, 0.0f);
    each(d.in.numel(), detail::col2im_fn{detail::geometry(d), dcols, dx.data()});
  }
  void conv2d_backward_filter(const conv2d_desc& d, const tensor& x, const tensor& dy, tensor& dw) {
    need(x, d.in.numel(), "conv2d_backward_filter");
    need(dy, d.out().numel(), "conv2d_backward_filter");
    need(dw, d.weight_size(), "conv2d_backward_filter");
    const index rows = d.out().rows(), K = d.kernel * d.kernel * d.in.c;
    float* cols = cols_.get(rows * K);
    each(rows * K, detail::im2col_fn{detail::geometry(d), x.data(), cols});
    sys_.gemm(true, false, K, d.out_channels, rows, cols, dy.data(), dw.data(), 0.0f);
  }

  // --- 1×1 convolution ----------------------------------------------------------------------
  void pointwise_forward(const pointwise_desc& d, const tensor& x, const tensor& w, tensor& y) {
    need(x, d.rows * d.in_channels, "pointwise_forward");
    need(w, d.weight_size(), "pointwise_forward");
    need(y, d.rows * d.out_channels, "pointwise_forward");
    sys_.gemm(false, false, d.rows, d.out_channels, d.in_channels, x.data(), w.data(), y.data(), 0.0f);
  }
  void pointwise_backward_data(const pointwise_desc& d, const tensor& dy, const tensor& w, tensor& dx,
                               bool accumulate) {
    need(dy, d.rows * d.out_channels, "pointwise_backward_data");
    need(w, d.weight_size(), "pointwise_backward_data");
    need(dx, d.rows * d.in_channels, "pointwise_backward_data");
    sys_.gemm(false, true, d.rows, d.in_channels, d.out_channels, dy.data(), w.data(), dx.data(),
              accumulate ? 1.0f : 0.0f);
  }
  void pointwise_backward_filter(const pointwise_desc& d, const tensor& x, const tensor& dy, tensor& dw) {
    need(x, d.rows * d.in_channels, "pointwise_backward_filter");
    need(dy, d.rows * d.out_channels, "pointwise_backward_filter");
    need(dw, d.weight_size(), "pointwise_backward_filter");
    sys_.gemm(true, false, d.in_channels, d.out_channels, d.rows, x.data(), dy.data(), dw.data(), 0.0f);
  }

  // --- depthwise convolution ----------------------------------------------------------------
  void depthwise_forward(const depthwise_desc& d, const tensor& x, const tensor& w, tensor& y) {
    need(x, d.in.numel(), "depthwise_forward");
    need(w, d.weight_size(), "depthwise_forward");
    need(y, d.out().numel(), "depthwise_forward");
    each(d.out().numel(), detail::depthwise_forward_fn{detail::geometry(d), x.data(), w.data(), y.data()});
  }
  void depthwise_backward_data(const depthwise_desc& d, const tensor& dy, const tensor& w, tensor& dx) {
    need(dy, d.out().numel(), "depthwise_backward_data");
    need(w, d.weight_size(), "depthwise_backward_data");
    need(dx, d.in.numel(), "depthwise_backward_data");
    each(d.in.numel(), detail::depthwise_backward_data_fn{detail::geometry(d), dy.data(), w.data(), dx.data()});
  }
  void depthwise_backward_filter(const depthwise_desc& d, const tensor& x, const tensor& dy, tensor& dw) {
    need(x, d.in.numel(), "depthwise_backward_filter");
    need(dy, d.out().numel(), "depthwise_backward_filter");
    need(dw, d.weight_size(), "depthwise_backward_filter");
    const index taps = d.kernel * d.kernel, n = taps * d.in.n * d.in.c;
    double* partial = partial_.get(n);
    each(n, detail::depthwise_filter_partial_fn{detail::geometry(d), x.data(), dy.data(), partial});
    each(taps * d.in.c, detail::depthwise_filter_sum_fn{d.in.n, d.in.c, partial, dw.data()});
  }

  // --- batch norm (and its fused ReLU6 and residual epilogues) ------------------------------
  void batch_norm_forward_train(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x, tensor& y,
                                double factor) {
    bn_train(d, bn, x, nullptr, false, y, factor, "batch_norm_forward_train");
  }
  void batch_norm_forward_inference(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                    tensor& y) {
    bn_inference(d, bn, x, nullptr, false, y, "batch_norm_forward_inference");
  }
  void batch_norm_backward(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x, const tensor& dy,
                           tensor& dx) {
    bn_backward(d, bn, x, nullptr, dy, dx, "batch_norm_backward");
  }
  void batch_norm_relu6_forward_train(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                      tensor& y, double factor) {
    bn_train(d, bn, x, nullptr, true, y, factor, "batch_norm_relu6_forward_train");
  }
  void batch_norm_relu6_forward_inference(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                          tensor& y) {
    bn_inference(d, bn, x, nullptr, true, y, "batch_norm_relu6_forward_inference");
  }
  void batch_norm_relu6_backward(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                 const tensor& y, const tensor& dy, tensor& dx) {
    need(y, d.rows * d.channels, "batch_norm_relu6_backward");
    bn_backward(d, bn, x, y.data(), dy, dx, "batch_norm_relu6_backward");
  }
  void batch_norm_add_forward_train(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                    const tensor& residual, tensor& y, double factor) {
    need(residual, d.rows * d.channels, "batch_norm_add_forward_train");
    bn_train(d, bn, x, residual.data(), false, y, factor, "batch_norm_add_forward_train");
  }
  void batch_norm_add_forward_inference(const batch_norm_desc& d, batch_norm_tensors<tensor> bn, const tensor& x,
                                        const tensor& residual, tensor& y) {
    need(residual, d.rows * d.channels, "batch_norm_add_forward_inference");
    bn_inference(d, bn, x, residual.data(), false, y, "batch_norm_add_forward_inference");
  }

  // --- elementwise --------------------------------------------------------------------------
  void relu6_forward(index n, const tensor& x, tensor& y) {
    need(x, n, "relu6_forward");
    need(y, n, "relu6_forward");
    each(n, detail::relu6_fn{x.data(), y.data()});
  }
  void relu6_backward(index n, const tensor& y, const tensor& dy, tensor& dx) {
    need(y, n, "relu6_backward");
    need(dy, n, "relu6_backward");
    need(dx, n, "relu6_backward");
    each(n, detail::relu6_backward_fn{y.data(), dy.data(), dx.data()});
  }
  void add(index n, const tensor& a, const tensor& b, tensor& out) {
    need(a, n, "add");
    need(b, n, "add");
    need(out, n, "add");
    each(n, detail::add_fn{a.data(), b.data(), out.data()});
  }

  // --- pooling ------------------------------------------------------------------------------
  void global_avg_pool_forward(const act_shape& s, const tensor& x, tensor& y) {
    need(x, s.numel(), "global_avg_pool_forward");
    need(y, s.n * s.c, "global_avg_pool_forward");
    each(s.n * s.c, detail::avg_pool_forward_fn{s, x.data(), y.data()});
  }
  void global_avg_pool_backward(const act_shape& s, const tensor& dy, tensor& dx) {
    need(dy, s.n * s.c, "global_avg_pool_backward");
    need(dx, s.numel(), "global_avg_pool_backward");
    each(s.numel(), detail::avg_pool_backward_fn{s, dy.data(), dx.data()});
  }

  // --- linear -------------------------------------------------------------------------------
  void linear_forward(const linear_desc& d, const tensor& x, const tensor& w, const tensor& bias, tensor& y) {
    need(x, d.batch * d.in_features, "linear_forward");
    need(w, d.in_features * d.out_features, "linear_forward");
    need(bias, d.out_features, "linear_forward");
    need(y, d.batch * d.out_features, "linear_forward");
    sys_.gemm(false, false, d.batch, d.out_features, d.in_features, x.data(), w.data(), y.data(), 0.0f);
    each(d.batch * d.out_features, detail::add_bias_fn{bias.data(), y.data(), d.out_features});
  }
  void linear_backward_data(const linear_desc& d, const tensor& dy, const tensor& w, tensor& dx) {
    need(dy, d.batch * d.out_features, "linear_backward_data");
    need(w, d.in_features * d.out_features, "linear_backward_data");
    need(dx, d.batch * d.in_features, "linear_backward_data");
    sys_.gemm(false, true, d.batch, d.in_features, d.out_features, dy.data(), w.data(), dx.data(), 0.0f);
  }
  void linear_backward_params(const linear_desc& d, const tensor& x, const tensor& dy, tensor& dw, tensor& dbias) {
    need(x, d.batch * d.in_features, "linear_backward_params");
    need(dy, d.batch * d.out_features, "linear_backward_params");
    need(dw, d.in_features * d.out_features, "linear_backward_params");
    need(dbias, d.out_features, "linear_backward_params");
    sys_.gemm(true, false, d.in_features, d.out_features, d.batch, x.data(), dy.data(), dw.data(), 0.0f);
    channel_sums(d.batch, d.out_features, detail::sum_column{dy.data(), d.out_features},
                 detail::store_sum{dbias.data()});
  }

  // --- loss ---------------------------------------------------------------------------------
  void softmax_cross_entropy_forward(const cross_entropy_desc& d, const tensor& logits, const label_tensor& labels,
                                     tensor& stats) {
    need(logits, d.batch * d.classes, "softmax_cross_entropy_forward");
    need_labels(labels, d.batch, "softmax_cross_entropy_forward");
    need(stats, 2, "softmax_cross_entropy_forward");
    double* per_sample = partial_.get(2 * d.batch);
    each(d.batch, detail::cross_entropy_sample_fn{d, logits.data(), labels.data(), per_sample});
    each(2, detail::cross_entropy_total_fn{d.batch, per_sample, stats.data()});
  }
  void softmax_cross_entropy_backward(const cross_entropy_desc& d, const tensor& logits, const label_tensor& labels,
                                      tensor& dlogits) {
    need(logits, d.batch * d.classes, "softmax_cross_entropy_backward");
    need_labels(labels, d.batch, "softmax_cross_entropy_backward");
    need(dlogits, d.batch * d.classes, "softmax_cross_entropy_backward");
    each(d.batch, detail::cross_entropy_backward_fn{d, logits.data(), labels.data(), dlogits.data()});
  }

  // --- a device-resident loop (the optional members of concept.hpp) ---------------------------
  // A step's tensors in one pass. The table of tensors is uploaded only when it differs from
  // the previous call's, so a repeated path issues a single launch and no copy.
  void sgd_update_many(const sgd_step& s, std::span<const sgd_item<tensor>> items) {
    sgd_table_.clear();
    sgd_start_.assign(1, 0);
    for (const auto& it : items) {
      need(*it.value, it.size, "sgd_update_many");
      need(*it.grad, it.size, "sgd_update_many");
      need(*it.momentum, it.size, "sgd_update_many");
      if (it.size <= 0) continue;
      sgd_table_.push_back({it.value->data(), it.grad->data(), it.momentum->data(),
                            it.decay ? float(s.weight_decay) : 0.0f});
      sgd_start_.push_back(sgd_start_.back() + it.size);
    }
    const index count = static_cast<index>(sgd_table_.size());
    if (count == 0) return;
    if (sgd_table_ != sgd_uploaded_) {
      sys_.upload(sgd_items_.get(count), sgd_table_.data(), sgd_table_.size() * sizeof(detail::sgd_many_item));
      sys_.upload(sgd_offsets_.get(count + 1), sgd_start_.data(), sgd_start_.size() * sizeof(index));
      sgd_uploaded_ = sgd_table_;
    }
    each(sgd_start_.back(), detail::sgd_many_fn{float(s.learning_rate), float(s.momentum), s.nesterov,
                                                sgd_items_.get(count), sgd_offsets_.get(count + 1), count});
  }

  void gather_rows(index rows, index row, const tensor& src, const label_tensor& which, tensor& dst) {
    need_labels(which, rows, "gather_rows");
    need(dst, rows * row, "gather_rows");
    each(rows * row, detail::gather_rows_fn{row, src.data(), which.data(), dst.data()});
  }
  void gather_labels(index rows, const label_tensor& src, const label_tensor& which, label_tensor& dst) {
    need_labels(which, rows, "gather_labels");
    need_labels(dst, rows, "gather_labels");
    each(rows, detail::gather_labels_fn{src.data(), which.data(), dst.data()});
  }

  // --- optimizer ----------------------------------------------------------------------------
  void sgd_update(const sgd_desc& d, tensor& w, const tensor& g, tensor& m) {
    need(w, d.size, "sgd_update");
    need(g, d.size, "sgd_update");
    need(m, d.size, "sgd_update");
    each(d.size, detail::sgd_fn{float(d.learning_rate), float(d.momentum), float(d.weight_decay), d.nesterov, w.data(),
                                g.data(), m.data()});
  }

 private:
  template <class F>
  void each(index n, F f) {
    sys_.for_each(n, f);
  }

  // Two per-channel sums over `rows` in chunks, then G per channel (see kernels.hpp).
  template <class F, class G>
  void channel_sums(index rows, index channels, F f, G g) {
    const index chunks = (rows + detail::rows_per_chunk - 1) / detail::rows_per_chunk;
    double* partial = partial_.get(2 * chunks * channels);
    each(chunks * channels, detail::channel_partial_fn<F>{rows, channels, f, partial});
    each(channels, detail::channel_total_fn<G>{chunks, channels, partial, g});
  }

  void bn_train(const batch_norm_desc& d, batch_norm_tensors<tensor>& bn, const tensor& x, const float* residual,
                bool relu6, tensor& y, double factor, const char* what) {
    bn_io(d, bn, x, y, what);
    const index m = d.rows, C = d.channels;
    channel_sums(m, C, detail::bn_sum_x{x.data(), C}, detail::bn_store_mean{double(m), bn.saved_mean.data()});
    channel_sums(m, C, detail::bn_sum_centered{x.data(), bn.saved_mean.data(), C},
                 detail::bn_finish_stats{m, d.epsilon, factor, bn.saved_mean.data(), bn.saved_inv_std.data(),
                                         bn.running_mean.data(), bn.running_var.data()});
    each(m * C, detail::bn_normalize_fn{C, x.data(), bn.saved_mean.data(), bn.saved_inv_std.data(), nullptr,
                                        float(d.epsilon), bn.gamma.data(), bn.beta.data(), residual, relu6, y.data()});
  }

  void bn_inference(const batch_norm_desc& d, batch_norm_tensors<tensor>& bn, const tensor& x, const float* residual,
                    bool relu6, tensor& y, const char* what) {
    bn_io(d, bn, x, y, what);
    each(d.rows * d.channels,
         detail::bn_normalize_fn{d.channels, x.data(), bn.running_mean.data(), nullptr, bn.running_var.data(),
                                 float(d.epsilon), bn.gamma.data(), bn.beta.data(), residual, relu6, y.data()});
  }

  void bn_backward(const batch_norm_desc& d, batch_norm_tensors<tensor>& bn, const tensor& x, const float* y,
                   const tensor& dy, tensor& dx, const char* what) {
    bn_io(d, bn, x, dx, what);
    need(dy, d.rows * d.channels, what);
    const index m = d.rows, C = d.channels;
    double* sums = sums_.get(2 * C);
    channel_sums(m, C, detail::bn_sum_grads{C, x.data(), y, dy.data(), bn.saved_mean.data(), bn.saved_inv_std.data()},
                 detail::bn_store_grads{bn.grad_gamma.data(), bn.grad_beta.data(), sums});
    each(m * C, detail::bn_backward_data_fn{m, C, x.data(), y, dy.data(), bn.saved_mean.data(),
                                            bn.saved_inv_std.data(), bn.gamma.data(), sums, dx.data()});
  }

  static void bn_io(const batch_norm_desc& d, batch_norm_tensors<tensor>& bn, const tensor& x, const tensor& y,
                    const char* what) {
    need(x, d.rows * d.channels, what);
    need(y, d.rows * d.channels, what);
    for (const tensor* t : {&bn.gamma, &bn.beta, &bn.running_mean, &bn.running_var, &bn.saved_mean,
                            &bn.saved_inv_std, &bn.grad_gamma, &bn.grad_beta})
      need(*t, d.channels, what);
  }

  static void need(const tensor& t, index n, const char* what) {
    if (t.size() < n)
      throw std::out_of_range(std::string("pcnas thrust backend: tensor of ") + std::to_string(t.size()) +
                              " elements used for " + std::to_string(n) + " in " + what);
  }
  static void need_labels(const label_tensor& t, index n, const char* what) {
    if (t.size() < n)
      throw std::out_of_range(std::string("pcnas thrust backend: label tensor of ") + std::to_string(t.size()) +
                              " elements used for " + std::to_string(n) + " in " + what);
  }

  std::shared_ptr<caching_allocator> alloc_;
  detail::device_system sys_;
  workspace<float> cols_;       // im2col columns of the stem convolution
  workspace<double> partial_;   // per-chunk partial sums
  workspace<double> sums_;      // per-channel sums that outlive one channel_sums call
  // sgd_update_many's table of tensors: built on the host, uploaded when it changes.
  std::vector<detail::sgd_many_item> sgd_table_, sgd_uploaded_;
  std::vector<index> sgd_start_;
  workspace<detail::sgd_many_item> sgd_items_;
  workspace<index> sgd_offsets_;
};

static_assert(check_backend<backend>());
static_assert(has_batch_norm_relu6<backend> && has_batch_norm_add<backend>);
static_assert(has_sgd_update_many<backend> && has_gather<backend>);

}  // namespace pcnas::backend::thrust
