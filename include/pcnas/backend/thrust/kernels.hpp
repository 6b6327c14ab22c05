// The element functions of the Thrust backend: one functor per index of a counting iterator,
// run by thrust::for_each on whichever device system is compiled in. Each writes only its own
// outputs (gathers instead of scatters), so no atomics are needed and results do not depend on
// the order in which threads run. Sums over many terms go through per-chunk partials in double.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/config.hpp>

#include <cmath>
#include <cstdint>

namespace pcnas::backend::thrust::detail {

// A convolution's shapes, computed on the host: the descriptors' member functions are host-only.
struct conv_geometry {
  act_shape in, out;
  index kernel, stride, pad;
};

inline conv_geometry geometry(const conv2d_desc& d) { return {d.in, d.out(), d.kernel, d.stride, d.pad}; }
inline conv_geometry geometry(const depthwise_desc& d) { return {d.in, d.out(), d.kernel, d.stride, d.pad()}; }

// Index arithmetic in 32 bits where the operands fit, which they do for every tensor of a
// realistic batch: a 64-bit division costs several times a 32-bit one, on CPUs and GPUs alike,
// and the element functions below divide a few times per element.
PCNAS_HOST_DEVICE inline index div_(index a, index b) {
  return (a | b) >> 32 == 0 ? index(std::uint32_t(a) / std::uint32_t(b)) : a / b;
}
PCNAS_HOST_DEVICE inline index mod_(index a, index b) {
  return (a | b) >> 32 == 0 ? index(std::uint32_t(a) % std::uint32_t(b)) : a % b;
}

// The output rows (or columns) o with o·stride = t - k for some tap k in [0, kernel), i.e. the
// taps of an input position t: k runs from t mod stride in steps of stride, without a division
// per tap.
struct tap_range {
  index first_k, first_o;  // the first tap k and its output o = (t - k) / stride
};
PCNAS_HOST_DEVICE inline tap_range taps_of(index t, index stride) {
  const index k0 = mod_(t, stride);
  return {k0, div_(t - k0, stride)};
}

PCNAS_HOST_DEVICE inline float clamp6(float v) { return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v); }

// --- memory and elementwise -------------------------------------------------------------------

struct fill_fn {
  float* y;
  float v;
  PCNAS_HOST_DEVICE void operator()(index i) const { y[i] = v; }
};

struct copy_fn {
  const float* x;
  float* y;
  PCNAS_HOST_DEVICE void operator()(index i) const { y[i] = x[i]; }
};

struct relu6_fn {
  const float* x;
  float* y;
  PCNAS_HOST_DEVICE void operator()(index i) const { y[i] = clamp6(x[i]); }
};

struct relu6_backward_fn {
  const float* y;
  const float* dy;
  float* dx;
  PCNAS_HOST_DEVICE void operator()(index i) const { dx[i] = (y[i] > 0.0f && y[i] < 6.0f) ? dy[i] : 0.0f; }
};

struct add_fn {
  const float* a;
  const float* b;
  float* out;
  PCNAS_HOST_DEVICE void operator()(index i) const { out[i] = a[i] + b[i]; }
};

// y[r, j] += bias[j]
struct add_bias_fn {
  const float* bias;
  float* y;
  index cols;
  PCNAS_HOST_DEVICE void operator()(index i) const { y[i] += bias[mod_(i, cols)]; }
};

// --- dense convolution by im2col: cols[(n, oh, ow), (kh, kw, ci)] -----------------------------

struct im2col_fn {
  conv_geometry d;
  const float* x;
  float* cols;
  PCNAS_HOST_DEVICE void operator()(index i) const {
    const act_shape in = d.in, out = d.out;
    const index ci = mod_(i, in.c);
    index q = div_(i, in.c);
    const index kw = mod_(q, d.kernel);
    q = div_(q, d.kernel);
    const index kh = mod_(q, d.kernel);
    index r = div_(q, d.kernel);
    const index ow = mod_(r, out.w);
    r = div_(r, out.w);
    const index oh = mod_(r, out.h);
    const index n = div_(r, out.h);
    const index ih = oh * d.stride - d.pad + kh, iw = ow * d.stride - d.pad + kw;
    cols[i] = (ih < 0 || ih >= in.h || iw < 0 || iw >= in.w) ? 0.0f : x[((n * in.h + ih) * in.w + iw) * in.c + ci];
  }
};

// dx[n, ih, iw, ci] = sum of the column entries that read it.
struct col2im_fn {
  conv_geometry d;
  const float* dcols;
  float* dx;
  PCNAS_HOST_DEVICE void operator()(index i) const {
    const act_shape in = d.in, out = d.out;
    const index ci = mod_(i, in.c), pix = div_(i, in.c);
    const index iw = mod_(pix, in.w), ih = mod_(div_(pix, in.w), in.h), n = div_(pix, in.w * in.h);
    const index K = d.kernel * d.kernel * in.c;
    float s = 0.0f;
    // Taps from the largest output row down: o = (ih + pad - kh) / stride falls by one per step.
    const tap_range rh = taps_of(ih + d.pad, d.stride), rw = taps_of(iw + d.pad, d.stride);
    for (index kh = rh.first_k, oh = rh.first_o; kh < d.kernel && oh >= 0; kh += d.stride, --oh) {
      if (oh >= out.h) continue;
      for (index kw = rw.first_k, ow = rw.first_o; kw < d.kernel && ow >= 0; kw += d.stride, --ow) {
        if (ow >= out.w) continue;
        s += dcols[((n * out.h + oh) * out.w + ow) * K + (kh * d.kernel + kw) * in.c + ci];
      }
    }
    dx[i] = s;
  }
};

// --- depthwise convolution, weights [kh][kw][c] ------------------------------------------------

struct depthwise_forward_fn {
  conv_geometry d;
  const float* x;
  const float* w;
  float* y;
  PCNAS_HOST_DEVICE void operator()(index i) const {
    const act_shape in = d.in, out = d.out;
    const index c = mod_(i, out.c), pix = div_(i, out.c);
    const index ow = mod_(pix, out.w), oh = mod_(div_(pix, out.w), out.h), n = div_(pix, out.w * out.h);
    const index p = d.pad;
    float s = 0.0f;
    for (index kh = 0; kh < d.kernel; ++kh) {
      const index ih = oh * d.stride - p + kh;
      if (ih < 0 || ih >= in.h) continue;
      for (index kw = 0; kw < d.kernel; ++kw) {
        const index iw = ow * d.stride - p + kw;
        if (iw < 0 || iw >= in.w) continue;
        s += x[((n * in.h + ih) * in.w + iw) * in.c + c] * w[(kh * d.kernel + kw) * in.c + c];
      }
    }
    y[i] = s;
  }
};

struct depthwise_backward_data_fn {
  conv_geometry d;
  const float* dy;
  const float* w;
  float* dx;
  PCNAS_HOST_DEVICE void operator()(index i) const {
    const act_shape in = d.in, out = d.out;
    const index c = mod_(i, in.c), pix = div_(i, in.c);
    const index iw = mod_(pix, in.w), ih = mod_(div_(pix, in.w), in.h), n = div_(pix, in.w * in.h);
    const index p = d.pad;
    float s = 0.0f;
    const tap_range rh = taps_of(ih + p, d.stride), rw = taps_of(iw + p, d.stride);
    for (index kh = rh.first_k, oh = rh.first_o; kh < d.kernel && oh >= 0; kh += d.stride, --oh) {
      if (oh >= out.h) continue;
      for (index kw = rw.first_k, ow = rw.first_o; kw < d.kernel && ow >= 0; kw += d.stride, --ow) {
        if (ow >= out.w) continue;
        s += dy[((n * out.h + oh) * out.w + ow) * out.c + c] * w[(kh * d.kernel + kw) * in.c + c];
      }
    }
    dx[i] = s;
  }
};

// partial[(kh, kw), n, c] = sum over (oh, ow) of x·dy for one image: the images are then summed
// by depthwise_filter_sum_fn. Consecutive indices are consecutive channels, so a CPU thread's
// run of indices reads whole cache lines and a GPU warp reads coalesced.
struct depthwise_filter_partial_fn {
  conv_geometry d;
  const float* x;
  const float* dy;
  double* partial;
  PCNAS_HOST_DEVICE void operator()(index i) const {
    const act_shape in = d.in, out = d.out;
    const index c = mod_(i, in.c), rest = div_(i, in.c);
    const index n = mod_(rest, in.n), tap = div_(rest, in.n);
    const index kh = div_(tap, d.kernel), kw = mod_(tap, d.kernel), p = d.pad;
    double s = 0.0;
    for (index oh = 0; oh < out.h; ++oh) {
      const index ih = oh * d.stride - p + kh;
      if (ih < 0 || ih >= in.h) continue;
      for (index ow = 0; ow < out.w; ++ow) {
        const index iw = ow * d.stride - p + kw;
        if (iw < 0 || iw >= in.w) continue;
        s += double(x[((n * in.h + ih) * in.w + iw) * in.c + c]) * double(dy[((n * out.h + oh) * out.w + ow) * out.c + c]);
      }
    }
    partial[i] = s;
  }
};

struct depthwise_filter_sum_fn {
  index images, channels;
  const double* partial;
  float* dw;
  PCNAS_HOST_DEVICE void operator()(index i) const {  // i = tap·channels + c
    const index c = mod_(i, channels), tap = div_(i, channels);
    double s = 0.0;
    for (index n = 0; n < images; ++n) s += partial[(tap * images + n) * channels + c];
    dw[i] = float(s);
  }
};

// --- per-channel sums over rows: the batch norm statistics and bias gradients ----------------
// F(r, c, a, b) adds row r's terms of two sums for channel c; G(c, sum_a, sum_b) consumes them.

constexpr index rows_per_chunk = 64;

template <class F>
struct channel_partial_fn {
  index rows, channels;
  F f;
  double* partial;  // [chunk][channel][2]
  PCNAS_HOST_DEVICE void operator()(index i) const {
    const index c = mod_(i, channels), chunk = div_(i, channels);
    const index r0 = chunk * rows_per_chunk, r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
    double a = 0.0, b = 0.0;
    for (index r = r0; r < r1; ++r) f(r, c, a, b);
    partial[2 * i] = a;
    partial[2 * i + 1] = b;
  }
};

template <class G>
struct channel_total_fn {
  index chunks, channels;
  const double* partial;
  G g;
  PCNAS_HOST_DEVICE void operator()(index c) const {
    double a = 0.0, b = 0.0;
    for (index k = 0; k < chunks; ++k) {
      a += partial[2 * (k * channels + c)];
      b += partial[2 * (k * channels + c) + 1];
    }
    g(c, a, b);
  }
};

// --- batch norm --------------------------------------------------------------------------------

struct bn_sum_x {
  const float* x;
  index channels;
  PCNAS_HOST_DEVICE void operator()(index r, index c, double& a, double&) const { a += double(x[r * channels + c]); }
};

struct bn_store_mean {
  double rows;
  float* mean;
  PCNAS_HOST_DEVICE void operator()(index c, double a, double) const { mean[c] = float(a / rows); }
};

// Second pass: squares about the mean (two passes: no cancellation for large means).
struct bn_sum_centered {
  const float* x;
  const float* mean;
  index channels;
  PCNAS_HOST_DEVICE void operator()(index r, index c, double& a, double& b) const {
    const double e = double(x[r * channels + c]) - double(mean[c]);
    a += e * e;
    b += e;  // the rounding of the stored mean, folded back into the variance
  }
};

struct bn_finish_stats {
  index rows;
  double epsilon, factor;
  float* mean;
  float* inv_std;
  float* running_mean;
  float* running_var;
  PCNAS_HOST_DEVICE void operator()(index c, double sq, double e) const {
    const double m = double(rows);
    const double shift = e / m;
    const double var = sq / m - shift * shift;
    const double mu = double(mean[c]) + shift;
    mean[c] = float(mu);
    inv_std[c] = float(1.0 / std::sqrt(var + epsilon));
    const double unbiased = rows > 1 ? var * m / (m - 1.0) : var;
    running_mean[c] = float((1.0 - factor) * double(running_mean[c]) + factor * mu);
    running_var[c] = float((1.0 - factor) * double(running_var[c]) + factor * unbiased);
  }
};

// y = (x - mean)·inv_std·gamma + beta [+ residual] [then ReLU6]; inv_std from `var` + epsilon
// when inv_std is null (inference with the running statistics).
struct bn_normalize_fn {
  index channels;
  const float* x;
  const float* mean;
  const float* inv_std;
  const float* var;
  float epsilon;
  const float* gamma;
  const float* beta;
  const float* residual;
  bool relu6;
  float* y;
  PCNAS_HOST_DEVICE void operator()(index i) const {
    const index c = mod_(i, channels);
    const float is = inv_std != nullptr ? inv_std[c] : 1.0f / std::sqrt(var[c] + epsilon);
    float v = (x[i] - mean[c]) * is * gamma[c] + beta[c];
    if (residual != nullptr) v += residual[i];
    y[i] = relu6 ? clamp6(v) : v;
  }
};

// dy, masked by the ReLU6 output when there is one.
PCNAS_HOST_DEVICE inline float masked(const float* y, const float* dy, index i) {
  return y == nullptr || (y[i] > 0.0f && y[i] < 6.0f) ? dy[i] : 0.0f;
}

struct bn_sum_grads {
  index channels;
  const float* x;
  const float* y;  // ReLU6 output or null
  const float* dy;
  const float* mean;
  const float* inv_std;
  PCNAS_HOST_DEVICE void operator()(index r, index c, double& a, double& b) const {
    const index i = r * channels + c;
    const double g = double(masked(y, dy, i));
    a += g;
    b += g * (double(x[i]) - double(mean[c])) * double(inv_std[c]);
  }
};

struct bn_store_grads {
  float* grad_gamma;
  float* grad_beta;
  double* sums;  // [channel][2], kept in double for the dx pass
  PCNAS_HOST_DEVICE void operator()(index c, double a, double b) const {
    grad_beta[c] = float(a);
    grad_gamma[c] = float(b);
    sums[2 * c] = a;
    sums[2 * c + 1] = b;
  }
};

struct bn_backward_data_fn {
  index rows, channels;
  const float* x;
  const float* y;
  const float* dy;
  const float* mean;
  const float* inv_std;
  const float* gamma;
  const double* sums;
  float* dx;
  PCNAS_HOST_DEVICE void operator()(index i) const {
    const index c = mod_(i, channels);
    const double m = double(rows), is = double(inv_std[c]);
    const double xhat = (double(x[i]) - double(mean[c])) * is;
    const double g = double(masked(y, dy, i));
    dx[i] = float(double(gamma[c]) * is * (g - sums[2 * c] / m - xhat * sums[2 * c + 1] / m));
  }
};

// --- pooling -------------------------------------------------------------------------------------

struct avg_pool_forward_fn {
  act_shape s;
  const float* x;
  float* y;
  PCNAS_HOST_DEVICE void operator()(index i) const {  // i = n·C + c
    const index c = mod_(i, s.c), n = div_(i, s.c), hw = s.h * s.w;
    double sum = 0.0;
    for (index p = 0; p < hw; ++p) sum += double(x[(n * hw + p) * s.c + c]);
    y[i] = float(sum / double(hw));
  }
};

struct avg_pool_backward_fn {
  act_shape s;
  const float* dy;
  float* dx;
  PCNAS_HOST_DEVICE void operator()(index i) const {
    const index c = mod_(i, s.c), n = div_(i, s.c * s.h * s.w);
    dx[i] = dy[n * s.c + c] / float(s.h * s.w);
  }
};

// --- linear bias gradient ------------------------------------------------------------------------

struct sum_column {
  const float* dy;
  index cols;
  PCNAS_HOST_DEVICE void operator()(index r, index c, double& a, double&) const { a += double(dy[r * cols + c]); }
};

struct store_sum {
  float* out;
  PCNAS_HOST_DEVICE void operator()(index c, double a, double) const { out[c] = float(a); }
};

// --- softmax cross-entropy -----------------------------------------------------------------------

struct cross_entropy_sample_fn {
  cross_entropy_desc d;
  const float* logits;
  const std::int32_t* labels;
  double* per_sample;  // [batch][2]: loss, correct
  PCNAS_HOST_DEVICE void operator()(index n) const {
    const index K = d.classes;
    const float* z = logits + n * K;
    const index label = labels[n];
    double zmax = double(z[0]);
    index best = 0;
    for (index k = 1; k < K; ++k)
      if (double(z[k]) > zmax) zmax = double(z[k]), best = k;
    double sum = 0.0;
    for (index k = 0; k < K; ++k) sum += std::exp(double(z[k]) - zmax);
    const double log_sum = std::log(sum) + zmax;
    double loss = 0.0;
    for (index k = 0; k < K; ++k) {
      const double target = (k == label ? 1.0 - d.label_smoothing : 0.0) + d.label_smoothing / double(K);
      loss -= target * (double(z[k]) - log_sum);
    }
    per_sample[2 * n] = loss;
    per_sample[2 * n + 1] = best == label ? 1.0 : 0.0;
  }
};

// stats[j] += sum over the batch of per_sample[·][j]; two indices, one per statistic.
struct cross_entropy_total_fn {
  index batch;
  const double* per_sample;
  float* stats;
  PCNAS_HOST_DEVICE void operator()(index j) const {
    double s = 0.0;
    for (index n = 0; n < batch; ++n) s += per_sample[2 * n + j];
    stats[j] = float(double(stats[j]) + s);
  }
};

struct cross_entropy_backward_fn {
  cross_entropy_desc d;
  const float* logits;
  const std::int32_t* labels;
  float* dlogits;
  PCNAS_HOST_DEVICE void operator()(index n) const {
    const index K = d.classes;
    const float* z = logits + n * K;
    double zmax = double(z[0]);
    for (index k = 1; k < K; ++k) zmax = double(z[k]) > zmax ? double(z[k]) : zmax;
    double sum = 0.0;
    for (index k = 0; k < K; ++k) sum += std::exp(double(z[k]) - zmax);
    for (index k = 0; k < K; ++k) {
      const double target = (k == labels[n] ? 1.0 - d.label_smoothing : 0.0) + d.label_smoothing / double(K);
      dlogits[n * K + k] = float((std::exp(double(z[k]) - zmax) / sum - target) / double(d.batch));
    }
  }
};

// --- optimizer -----------------------------------------------------------------------------------

struct sgd_fn {
  float lr, momentum, weight_decay;
  bool nesterov;
  float* w;
  const float* g;
  float* m;
  PCNAS_HOST_DEVICE void operator()(index i) const {
    const float grad = g[i] + weight_decay * w[i];
    const float mom = momentum * m[i] + grad;
    m[i] = mom;
    w[i] -= lr * (nesterov ? grad + momentum * mom : mom);
  }
};

// Every tensor of one optimizer step in one pass: element i belongs to the item k with
// start[k] <= i < start[k + 1], found by bisection over the items' start offsets.
struct sgd_many_item {
  float* w;
  const float* g;
  float* m;
  float weight_decay;
  friend bool operator==(const sgd_many_item&, const sgd_many_item&) = default;
};
struct sgd_many_fn {
  float lr, momentum;
  bool nesterov;
  const sgd_many_item* items;
  const index* start;  // items + 1 offsets, start[0] = 0
  index count;
  PCNAS_HOST_DEVICE void operator()(index i) const {
    index lo = 0, hi = count;  // start[lo] <= i < start[hi]
    while (hi - lo > 1) {
      const index mid = (lo + hi) / 2;
      if (start[mid] <= i) lo = mid; else hi = mid;
    }
    const sgd_many_item& it = items[lo];
    const index j = i - start[lo];
    sgd_fn{lr, momentum, it.weight_decay, nesterov, it.w, it.g, it.m}(j);
  }
};

// dst row r = src row which[r], rows of `row` elements.
struct gather_rows_fn {
  index row;
  const float* src;
  const std::int32_t* which;
  float* dst;
  PCNAS_HOST_DEVICE void operator()(index i) const {
    const index r = div_(i, row);
    dst[i] = src[index(which[r]) * row + (i - r * row)];
  }
};
struct gather_labels_fn {
  const std::int32_t* src;
  const std::int32_t* which;
  std::int32_t* dst;
  PCNAS_HOST_DEVICE void operator()(index i) const { dst[i] = src[which[i]]; }
};

}  // namespace pcnas::backend::thrust::detail
