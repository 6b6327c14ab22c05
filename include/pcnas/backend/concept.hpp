// The tensor-backend contract: the primitives that pcnas's op modules need, forward and backward,
// as a C++20 concept, plus the optional fused fast paths that the modules use when a backend has them.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace pcnas::backend {

// Element counts, shapes and offsets. Signed, as in Eigen and cuDNN, so that index arithmetic
// (ih = oh*stride - pad + kh) needs no casts.
using index = std::ptrdiff_t;

// ---------------------------------------------------------------------------------------------
// Layout conventions. A tensor is a flat buffer of `value_type` in backend memory; its logical
// element order, which upload() and download() exchange with the host, is fixed here:
//
//   activations   NHWC: element (n, h, w, c) at ((n*H + h)*W + w)*C + c; channels contiguous.
//                 A [batch, features] matrix (pooled features, logits) is NHWC with H = W = 1.
//   dense conv    weights [kh][kw][in_c][out_c]      (HWIO)
//   1×1 conv      weights [in_c][out_c]              (a GEMM: Y[rows, out] = X[rows, in] · W)
//   depthwise     weights [kh][kw][c]
//   linear        weights [in][out], bias [out]
//   batch norm    gamma, beta, running mean, running variance, saved statistics: [c] each
//   labels        int32 class indices [batch], as uploaded; stored on the device as the backend likes
//
// The library never touches elements on the host; it moves tensors only with upload() and
// download(), in this order. A backend whose kernels want another layout repacks inside its
// calls (the Eigen backend packs depthwise weights and image planes per call).
//
// Allocation. allocate(n) returns at least n elements of unspecified content. Every call reads
// and writes only the elements its descriptor names, from the start of each tensor, so a larger
// tensor (the modules reuse pooled ones) is always fine.
//
// Execution model. Calls are issued in program order on the backend object's own stream or
// context (the object is passed around as `B&`); they may run asynchronously, in that order.
// download() returns only once the host span holds the data; synchronize() waits for all work
// issued so far (for timing). Gradients are *written*, never accumulated, by backward calls,
// except where an `accumulate` flag says otherwise. Elementwise calls (relu6, add, fill) allow
// their output to alias an input.
// ---------------------------------------------------------------------------------------------

struct act_shape {
  index n = 0, h = 0, w = 0, c = 0;
  constexpr index rows() const noexcept { return n * h * w; }
  constexpr index numel() const noexcept { return n * h * w * c; }
  friend constexpr bool operator==(const act_shape&, const act_shape&) = default;
};

constexpr index conv_out_size(index in, index kernel, index stride, index pad) noexcept {
  return (in + 2 * pad - kernel) / stride + 1;
}

// Dense k×k convolution, no bias (a batch norm follows). Used by the stem.
struct conv2d_desc {
  act_shape in;
  index out_channels = 0;
  index kernel = 3;
  index stride = 1;
  index pad = 1;
  constexpr act_shape out() const noexcept {
    return {in.n, conv_out_size(in.h, kernel, stride, pad), conv_out_size(in.w, kernel, stride, pad),
            out_channels};
  }
  constexpr index weight_size() const noexcept { return kernel * kernel * in.c * out_channels; }
};

// 1×1 convolution with stride 1 over `rows` = n*h*w pixels, no bias.
struct pointwise_desc {
  index rows = 0;
  index in_channels = 0;
  index out_channels = 0;
  constexpr index weight_size() const noexcept { return in_channels * out_channels; }
};

// Depthwise k×k convolution (one filter per channel), padding kernel/2, no bias; k is odd.
struct depthwise_desc {
  act_shape in;
  index kernel = 3;
  index stride = 1;
  constexpr index pad() const noexcept { return kernel / 2; }
  constexpr act_shape out() const noexcept {
    return {in.n, conv_out_size(in.h, kernel, stride, pad()), conv_out_size(in.w, kernel, stride, pad()),
            in.c};
  }
  constexpr index weight_size() const noexcept { return kernel * kernel * in.c; }
};

// Batch norm over `rows` samples of `channels` features (rows = n*h*w for activations).
struct batch_norm_desc {
  index rows = 0;
  index channels = 0;
  double epsilon = 1e-5;
};

// The tensors of one batch-norm layer, each [channels]. Which ones a call reads or writes is
// stated at the call; the module that owns the layer owns all of them.
template <class Tensor>
struct batch_norm_tensors {
  Tensor& gamma;
  Tensor& beta;
  Tensor& running_mean;
  Tensor& running_var;
  Tensor& saved_mean;     // batch mean of the last training forward
  Tensor& saved_inv_std;  // 1/sqrt(batch variance + epsilon) of the last training forward
  Tensor& grad_gamma;
  Tensor& grad_beta;
};

// Fully connected layer with bias: Y[batch, out] = X[batch, in] · W + bias.
struct linear_desc {
  index batch = 0;
  index in_features = 0;
  index out_features = 0;
};

// Softmax cross-entropy against targets (1 - s)·onehot + s/classes (label smoothing s).
struct cross_entropy_desc {
  index batch = 0;
  index classes = 0;
  double label_smoothing = 0.1;
};

// One SGD step in PyTorch's formulation: g = grad + wd·w; m = μ·m + g;
// w -= lr·(g + μ·m) with Nesterov, w -= lr·m without.
struct sgd_desc {
  index size = 0;
  double learning_rate = 0.0;
  double momentum = 0.9;
  double weight_decay = 0.0;
  bool nesterov = true;
};

// Traits: the types a backend exposes. Specialise to adapt a backend whose names differ.
template <class B>
struct backend_traits {
  using value_type = typename B::value_type;
  using tensor = typename B::tensor;
  using label_tensor = typename B::label_tensor;
};

template <class B>
using value_type_t = typename backend_traits<B>::value_type;
template <class B>
using tensor_t = typename backend_traits<B>::tensor;
template <class B>
using label_tensor_t = typename backend_traits<B>::label_tensor;
template <class B>
using bn_tensors_t = batch_norm_tensors<tensor_t<B>>;

// ---------------------------------------------------------------------------------------------
// The required members, one concept each, so that check_backend() can name what is missing.
// ---------------------------------------------------------------------------------------------

template <class B>
concept has_types = requires {
  typename backend_traits<B>::value_type;
  typename backend_traits<B>::tensor;
  typename backend_traits<B>::label_tensor;
} && std::floating_point<value_type_t<B>> && std::movable<tensor_t<B>> &&
                    std::default_initializable<tensor_t<B>> && std::movable<label_tensor_t<B>> &&
                    std::default_initializable<label_tensor_t<B>>;

template <class B>
concept has_memory = has_types<B> && requires(B& b, tensor_t<B>& t, const tensor_t<B>& ct,
                                              label_tensor_t<B>& l, index n, value_type_t<B> v,
                                              std::span<const value_type_t<B>> in,
                                              std::span<value_type_t<B>> out,
                                              std::span<const std::int32_t> labels) {
  { b.allocate(n) } -> std::same_as<tensor_t<B>>;
  { b.allocate_labels(n) } -> std::same_as<label_tensor_t<B>>;
  b.fill(n, v, t);
  b.copy(n, ct, t);
  b.upload(in, t);
  b.download(ct, out);
  b.upload_labels(labels, l);
  b.synchronize();
  { b.name() } -> std::convertible_to<std::string>;
};

template <class B>
concept has_conv2d = has_types<B> && requires(B& b, const conv2d_desc& d, const tensor_t<B>& x,
                                              tensor_t<B>& y) {
  b.conv2d_forward(d, x, x, y);          // (desc, x, w, y)
  b.conv2d_backward_data(d, x, x, y);    // (desc, dy, w, dx)
  b.conv2d_backward_filter(d, x, x, y);  // (desc, x, dy, dw)
};

template <class B>
concept has_pointwise = has_types<B> && requires(B& b, const pointwise_desc& d,
                                                 const tensor_t<B>& x, tensor_t<B>& y, bool acc) {
  b.pointwise_forward(d, x, x, y);             // (desc, x, w, y)
  b.pointwise_backward_data(d, x, x, y, acc);  // (desc, dy, w, dx, accumulate): dx (+)= dy · Wᵀ
  b.pointwise_backward_filter(d, x, x, y);     // (desc, x, dy, dw): dw = Xᵀ · dy
};

template <class B>
concept has_depthwise = has_types<B> && requires(B& b, const depthwise_desc& d,
                                                 const tensor_t<B>& x, tensor_t<B>& y) {
  b.depthwise_forward(d, x, x, y);          // (desc, x, w, y)
  b.depthwise_backward_data(d, x, x, y);    // (desc, dy, w, dx)
  b.depthwise_backward_filter(d, x, x, y);  // (desc, x, dy, dw)
};

// Training forward: normalise with the batch statistics, store them in saved_mean/saved_inv_std,
// and move the running statistics towards them: r = (1 - f)·r + f·batch, with the unbiased
// batch variance. f = momentum (0.1) in training; f = 1/(k+1) on the k-th batch (from 0) of a
// recalibration gives the cumulative average of k+1 batches.
// Inference forward: normalise with the running statistics.
// Backward (of the training forward): dx from dy and the saved statistics; writes grad_gamma
// and grad_beta.
template <class B>
concept has_batch_norm = has_types<B> && requires(B& b, const batch_norm_desc& d, bn_tensors_t<B> bn,
                                                  const tensor_t<B>& x, tensor_t<B>& y, double f) {
  b.batch_norm_forward_train(d, bn, x, y, f);   // (desc, bn, x, y, running_factor)
  b.batch_norm_forward_inference(d, bn, x, y);  // (desc, bn, x, y)
  b.batch_norm_backward(d, bn, x, x, y);        // (desc, bn, x, dy, dx)
};

template <class B>
concept has_elementwise = has_types<B> && requires(B& b, index n, const tensor_t<B>& x,
                                                   tensor_t<B>& y) {
  b.relu6_forward(n, x, y);         // y = min(max(x, 0), 6)
  b.relu6_backward(n, x, x, y);     // (n, y, dy, dx): dx = dy where 0 < y < 6, else 0
  b.add(n, x, x, y);                // (n, a, b, out): out = a + b
};

template <class B>
concept has_pooling = has_types<B> && requires(B& b, const act_shape& s, const tensor_t<B>& x,
                                               tensor_t<B>& y) {
  b.global_avg_pool_forward(s, x, y);   // (shape of x, x, y[n, c])
  b.global_avg_pool_backward(s, x, y);  // (shape of x, dy[n, c], dx)
};

template <class B>
concept has_linear = has_types<B> && requires(B& b, const linear_desc& d, const tensor_t<B>& x,
                                              tensor_t<B>& y) {
  b.linear_forward(d, x, x, x, y);            // (desc, x, w, bias, y)
  b.linear_backward_data(d, x, x, y);         // (desc, dy, w, dx)
  b.linear_backward_params(d, x, x, y, y);    // (desc, x, dy, dw, dbias)
};

// Forward: stats[0] += sum over the batch of the loss, stats[1] += number of samples whose
// largest logit is the label (ties: the first). Backward: dlogits of the *mean* loss.
template <class B>
concept has_cross_entropy = has_types<B> && requires(B& b, const cross_entropy_desc& d,
                                                     const tensor_t<B>& x,
                                                     const label_tensor_t<B>& labels,
                                                     tensor_t<B>& y) {
  b.softmax_cross_entropy_forward(d, x, labels, y);   // (desc, logits, labels, stats[2])
  b.softmax_cross_entropy_backward(d, x, labels, y);  // (desc, logits, labels, dlogits)
};

template <class B>
concept has_sgd = has_types<B> && requires(B& b, const sgd_desc& d, const tensor_t<B>& g,
                                           tensor_t<B>& w) {
  b.sgd_update(d, w, g, w);  // (desc, value, grad, momentum)
};

// The whole contract. (Named tensor_backend, not backend: the backends themselves are classes
// called `backend` in their own namespaces.)
template <class B>
concept tensor_backend = has_types<B> && has_memory<B> && has_conv2d<B> && has_pointwise<B> &&
                         has_depthwise<B> && has_batch_norm<B> && has_elementwise<B> && has_pooling<B> &&
                         has_linear<B> && has_cross_entropy<B> && has_sgd<B>;

// One readable error per missing part. Call as `static_assert(check_backend<B>());`; use the
// `tensor_backend` concept where a yes/no answer is wanted.
template <class B>
consteval bool check_backend() {
  static_assert(has_types<B>,
                "A pcnas backend must name its types: `value_type` (float or double), `tensor` and "
                "`label_tensor` (movable, default-constructible handles to backend memory), or "
                "specialise pcnas::backend::backend_traits for it.");
  static_assert(!has_types<B> || has_memory<B>,
                "A pcnas backend must manage memory: allocate(n) and allocate_labels(n) returning "
                "tensors, fill(n, value, t), copy(n, src, dst), upload(span<const value_type>, t), "
                "download(t, span<value_type>), upload_labels(span<const int32_t>, labels), "
                "synchronize() and name().");
  static_assert(!has_types<B> || has_conv2d<B>,
                "A pcnas backend must provide the dense convolution of the stem: "
                "conv2d_forward(desc, x, w, y), conv2d_backward_data(desc, dy, w, dx) and "
                "conv2d_backward_filter(desc, x, dy, dw), with a pcnas::backend::conv2d_desc.");
  static_assert(!has_types<B> || has_pointwise<B>,
                "A pcnas backend must provide the 1x1 convolution: pointwise_forward(desc, x, w, y), "
                "pointwise_backward_data(desc, dy, w, dx, accumulate) and "
                "pointwise_backward_filter(desc, x, dy, dw), with a pcnas::backend::pointwise_desc.");
  static_assert(!has_types<B> || has_depthwise<B>,
                "A pcnas backend must provide the depthwise convolution: "
                "depthwise_forward(desc, x, w, y), depthwise_backward_data(desc, dy, w, dx) and "
                "depthwise_backward_filter(desc, x, dy, dw), with a pcnas::backend::depthwise_desc.");
  static_assert(!has_types<B> || has_batch_norm<B>,
                "A pcnas backend must provide batch norm: batch_norm_forward_train(desc, bn, x, y, "
                "running_factor), batch_norm_forward_inference(desc, bn, x, y) and "
                "batch_norm_backward(desc, bn, x, dy, dx), with a pcnas::backend::batch_norm_desc "
                "and pcnas::backend::batch_norm_tensors.");
  static_assert(!has_types<B> || has_elementwise<B>,
                "A pcnas backend must provide the elementwise ops: relu6_forward(n, x, y), "
                "relu6_backward(n, y, dy, dx) and add(n, a, b, out).");
  static_assert(!has_types<B> || has_pooling<B>,
                "A pcnas backend must provide global average pooling: "
                "global_avg_pool_forward(shape, x, y) and global_avg_pool_backward(shape, dy, dx).");
  static_assert(!has_types<B> || has_linear<B>,
                "A pcnas backend must provide the fully connected layer: "
                "linear_forward(desc, x, w, bias, y), linear_backward_data(desc, dy, w, dx) and "
                "linear_backward_params(desc, x, dy, dw, dbias).");
  static_assert(!has_types<B> || has_cross_entropy<B>,
                "A pcnas backend must provide the loss: softmax_cross_entropy_forward(desc, logits, "
                "labels, stats) and softmax_cross_entropy_backward(desc, logits, labels, dlogits).");
  static_assert(!has_types<B> || has_sgd<B>,
                "A pcnas backend must provide the optimizer step: sgd_update(desc, value, grad, "
                "momentum), with a pcnas::backend::sgd_desc.");
  // Each missing part has failed above with its own sentence; no second, wordless failure.
  return true;
}

// ---------------------------------------------------------------------------------------------
// Optional: the device's own clock and name, for latency tables.
// ---------------------------------------------------------------------------------------------

// `b.start_timer()` marks now in the backend's work queue and returns a token;
// `b.elapsed_ms(token)` waits for the work queued since and returns its duration in
// milliseconds as the device measured it (CUDA events on CUDA). A latency profile then times
// the device, not the host around synchronize(), and does not retry a measurement because the
// waiting host thread slept. One timer at a time per backend object.
template <class B>
concept has_device_timer = requires(B& b) {
  { b.elapsed_ms(b.start_timer()) } -> std::convertible_to<double>;
};

// `b.device_description()`: the device a latency table was measured on, for its provenance
// (a GPU's name, driver and clocks). Without it the host CPU's name is recorded.
template <class B>
concept has_device_description = requires(const B& b) {
  { b.device_description() } -> std::convertible_to<std::string>;
};

// ---------------------------------------------------------------------------------------------
// Optional fused fast paths, found by requires-expressions. Each has the meaning of the
// unfused sequence written beside it, and the modules fall back to that sequence.
// ---------------------------------------------------------------------------------------------

// batch_norm_forward_* followed by relu6_forward; backward given the ReLU6 output y.
template <class B>
concept has_batch_norm_relu6 = has_types<B> && requires(B& b, const batch_norm_desc& d,
                                                        bn_tensors_t<B> bn, const tensor_t<B>& x,
                                                        tensor_t<B>& y, double f) {
  b.batch_norm_relu6_forward_train(d, bn, x, y, f);   // (desc, bn, x, y, running_factor)
  b.batch_norm_relu6_forward_inference(d, bn, x, y);  // (desc, bn, x, y)
  b.batch_norm_relu6_backward(d, bn, x, x, x, y);     // (desc, bn, x, y, dy, dx)
};

// batch_norm_forward_* followed by add(residual): y = bn(x) + residual.
template <class B>
concept has_batch_norm_add = has_types<B> && requires(B& b, const batch_norm_desc& d,
                                                      bn_tensors_t<B> bn, const tensor_t<B>& x,
                                                      tensor_t<B>& y, double f) {
  b.batch_norm_add_forward_train(d, bn, x, x, y, f);   // (desc, bn, x, residual, y, factor)
  b.batch_norm_add_forward_inference(d, bn, x, x, y);  // (desc, bn, x, residual, y)
};

// A whole MBConv block (docs/method.md, "Search spaces") in one call, so that a backend can fuse
// across its ops: 1×1 expansion + BN + ReLU6 (absent when expansion == 1), k×k depthwise (stride s) + BN + ReLU6,
// 1×1 projection + BN, plus x when s = 1 and C = C'.
struct mbconv_desc {
  act_shape in;
  index out_channels = 0;
  index kernel = 3;
  index expansion = 6;
  index stride = 1;
  double epsilon = 1e-5;
  constexpr index hidden() const noexcept { return in.c * expansion; }
  constexpr bool expands() const noexcept { return expansion != 1; }
  constexpr bool residual() const noexcept { return stride == 1 && in.c == out_channels; }
  constexpr depthwise_desc depthwise() const noexcept { return {{in.n, in.h, in.w, hidden()}, kernel, stride}; }
  constexpr act_shape hidden_in() const noexcept { return {in.n, in.h, in.w, hidden()}; }
  constexpr act_shape hidden_out() const noexcept { return depthwise().out(); }
  constexpr act_shape out() const noexcept {
    act_shape o = hidden_out();
    o.c = out_channels;
    return o;
  }
};

// The block's parameters, gradients and batch-norm tensors; the expansion's are null when
// expansion == 1.
template <class Tensor>
struct mbconv_tensors {
  Tensor* expand_weight;
  Tensor* expand_grad;
  batch_norm_tensors<Tensor>* expand_bn;
  Tensor& depthwise_weight;
  Tensor& depthwise_grad;
  batch_norm_tensors<Tensor> depthwise_bn;
  Tensor& project_weight;
  Tensor& project_grad;
  batch_norm_tensors<Tensor> project_bn;
};

// Forward: y = block(x). Writes the pre-normalisation tensors z1 = x·W_expand [hidden_in]
// (untouched when expansion == 1), z2 = depthwise(a1) [hidden_out] and z3 = a2·W_project [out],
// which are all that backward needs besides x. training: batch statistics, saved and moved into
// the running statistics with `running_factor` (as batch_norm_forward_train); otherwise the
// running statistics, and then z1, z2 and z3 are scratch that nothing reads afterwards: a backend
// may leave them unwritten (the Eigen backend does, its inference forward never materialises the
// hidden tensors). The same holds for z of the stem and the head below. Backward (of a training
// forward): dx and every gradient; dx may be the same tensor as dy when the block expands.
template <class B>
concept has_fused_mbconv = has_types<B> && requires(B& b, const mbconv_desc& d, mbconv_tensors<tensor_t<B>> t,
                                                    const tensor_t<B>& x, tensor_t<B>& y, bool training, double f) {
  b.mbconv_forward(d, t, training, f, x, y, y, y, y);  // (desc, t, training, factor, x, z1, z2, z3, y)
  b.mbconv_backward(d, t, x, x, x, x, x, y);           // (desc, t, x, z1, z2, z3, dy, dx)
};

// The stem in one call: z = conv2d(x), y = relu6(bn(z)). Forward as has_fused_mbconv's; backward
// (of a training forward) writes dw and the BN gradients, and dx when `dx` is not null.
template <class B>
concept has_fused_conv_bn_relu6 = has_types<B> && requires(B& b, const conv2d_desc& d, double eps, bn_tensors_t<B> bn,
                                                           const tensor_t<B>& x, tensor_t<B>& y, bool training,
                                                           double f, tensor_t<B>* dx) {
  b.conv_bn_relu6_forward(d, eps, x, bn, training, f, x, y, y);  // (desc, eps, w, bn, training, factor, x, z, y)
  b.conv_bn_relu6_backward(d, eps, x, y, bn, x, x, x, dx);       // (desc, eps, w, dw, bn, x, z, dy, dx or null)
};

// The classifier head up to the pooled features: z = x·W (1×1 convolution to `features`
// channels), pooled = global average of relu6(bn(z)), [n, features]. The fully connected layer
// stays with the linear primitives.
struct head_desc {
  act_shape in;
  index features = 0;
  double epsilon = 1e-5;
  constexpr act_shape hidden() const noexcept { return {in.n, in.h, in.w, features}; }
};

template <class B>
concept has_fused_head = has_types<B> && requires(B& b, const head_desc& d, bn_tensors_t<B> bn, const tensor_t<B>& x,
                                                  tensor_t<B>& y, bool training, double f) {
  b.head_forward(d, x, bn, training, f, x, y, y);  // (desc, w, bn, training, factor, x, z, pooled)
  b.head_backward(d, x, y, bn, x, x, x, y);        // (desc, w, dw, bn, x, z, dpooled, dx)
};

// depthwise_backward_data and depthwise_backward_filter in one pass over dy.
template <class B>
concept has_depthwise_backward = has_types<B> && requires(B& b, const depthwise_desc& d,
                                                          const tensor_t<B>& x, tensor_t<B>& y) {
  b.depthwise_backward(d, x, x, x, y, y);  // (desc, x, w, dy, dx, dw)
};

// ---------------------------------------------------------------------------------------------
// Optional members for a device-resident training loop. A GPU pays for every launch and every
// host round trip; these let a step update all its tensors in one call and take its batch from
// data uploaded once. Without them the library falls back to the required members.
// ---------------------------------------------------------------------------------------------

// The hyper-parameters shared by every tensor of one optimizer step.
struct sgd_step {
  double learning_rate = 0.0;
  double momentum = 0.9;
  double weight_decay = 0.0;  // applied to the tensors whose item says decay
  bool nesterov = true;
};

// One parameter tensor of that step: `size` elements of value, grad and momentum.
template <class Tensor>
struct sgd_item {
  index size = 0;
  bool decay = true;
  Tensor* value = nullptr;
  const Tensor* grad = nullptr;
  Tensor* momentum = nullptr;
};

// sgd_update for every item, as one call: `b.sgd_update_many(step, items)` has the meaning of
// `sgd_update({size, lr, momentum, decay ? weight_decay : 0, nesterov}, *value, *grad, *momentum)`
// for each item, in any order (the items never share a tensor).
template <class B>
concept has_sgd_update_many = has_types<B> && requires(B& b, const sgd_step& s,
                                                       std::span<const sgd_item<tensor_t<B>>> items) {
  b.sgd_update_many(s, items);
};

// A batch assembled on the device from a resident copy of the data set:
// `gather_rows(rows, row_size, src, which, dst)` copies row which[i] of src (rows of row_size
// elements) to row i of dst for i < rows; `gather_labels(rows, src, which, dst)` does the same
// for labels. `which` holds int32 row numbers, uploaded with upload_labels.
template <class B>
concept has_gather = has_types<B> && requires(B& b, index n, const tensor_t<B>& x, tensor_t<B>& y,
                                              const label_tensor_t<B>& cl, label_tensor_t<B>& l) {
  b.gather_rows(n, n, x, cl, y);
  b.gather_labels(n, cl, cl, l);
};

}  // namespace pcnas::backend
