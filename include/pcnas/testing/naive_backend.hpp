// The reference backend: the contract written the plain way a user would write it (member
// functions only, plain loops, double accumulation). The conformance kit's correctness oracle,
// and a template to start a new backend from.
#pragma once

#include <pcnas/backend/concept.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcnas::testing {

using pcnas::backend::index;

template <class T>
class naive_backend {
 public:
  using value_type = T;
  struct tensor {
    std::vector<T> data;
  };
  struct label_tensor {
    std::vector<std::int32_t> data;
  };

  // Counts calls, so that tests can see which path (fused or not) a module took.
  long calls = 0;

  std::string name() const { return "naive"; }

  // --- memory -----------------------------------------------------------------------------
  tensor allocate(index n) { return tensor{std::vector<T>(static_cast<std::size_t>(n), T(0))}; }
  label_tensor allocate_labels(index n) {
    return label_tensor{std::vector<std::int32_t>(static_cast<std::size_t>(n), 0)};
  }
  void fill(index n, T v, tensor& t) {
    need(t, n);
    for (index i = 0; i < n; ++i) t.data[i] = v;
  }
  void copy(index n, const tensor& src, tensor& dst) {
    need(src, n);
    need(dst, n);
    for (index i = 0; i < n; ++i) dst.data[i] = src.data[i];
  }
  void upload(std::span<const T> src, tensor& dst) {
    need(dst, static_cast<index>(src.size()));
    std::copy(src.begin(), src.end(), dst.data.begin());
  }
  void download(const tensor& src, std::span<T> dst) {
    need(src, static_cast<index>(dst.size()));
    std::copy(src.data.begin(), src.data.begin() + static_cast<std::ptrdiff_t>(dst.size()), dst.begin());
  }
  void upload_labels(std::span<const std::int32_t> src, label_tensor& dst) {
    if (dst.data.size() < src.size()) throw std::out_of_range("pcnas::testing::naive_backend: label tensor too small");
    std::copy(src.begin(), src.end(), dst.data.begin());
  }
  void synchronize() {}

  // --- dense convolution, weights [kh][kw][ci][co] -----------------------------------------
  void conv2d_forward(const pcnas::backend::conv2d_desc& d, const tensor& x, const tensor& w, tensor& y) {
    ++calls;
    const auto in = d.in;
    const auto out = d.out();
    need(x, in.numel());
    need(w, d.weight_size());
    need(y, out.numel());
    for (index n = 0; n < out.n; ++n)
      for (index oh = 0; oh < out.h; ++oh)
        for (index ow = 0; ow < out.w; ++ow)
          for (index co = 0; co < out.c; ++co) {
            double s = 0;
            for (index kh = 0; kh < d.kernel; ++kh)
              for (index kw = 0; kw < d.kernel; ++kw) {
                const index ih = oh * d.stride - d.pad + kh, iw = ow * d.stride - d.pad + kw;
                if (ih < 0 || ih >= in.h || iw < 0 || iw >= in.w) continue;
                for (index ci = 0; ci < in.c; ++ci)
                  s += double(x.data[at(in, n, ih, iw, ci)]) *
                       double(w.data[((kh * d.kernel + kw) * in.c + ci) * out.c + co]);
              }
            y.data[at(out, n, oh, ow, co)] = T(s);
          }
  }
  void conv2d_backward_data(const pcnas::backend::conv2d_desc& d, const tensor& dy, const tensor& w,
                            tensor& dx) {
    ++calls;
    const auto in = d.in;
    const auto out = d.out();
    need(dx, in.numel());
    std::vector<double> acc(static_cast<std::size_t>(in.numel()), 0.0);
    for (index n = 0; n < out.n; ++n)
      for (index oh = 0; oh < out.h; ++oh)
        for (index ow = 0; ow < out.w; ++ow)
          for (index co = 0; co < out.c; ++co)
            for (index kh = 0; kh < d.kernel; ++kh)
              for (index kw = 0; kw < d.kernel; ++kw) {
                const index ih = oh * d.stride - d.pad + kh, iw = ow * d.stride - d.pad + kw;
                if (ih < 0 || ih >= in.h || iw < 0 || iw >= in.w) continue;
                for (index ci = 0; ci < in.c; ++ci)
                  acc[at(in, n, ih, iw, ci)] += double(dy.data[at(out, n, oh, ow, co)]) *
                                                double(w.data[((kh * d.kernel + kw) * in.c + ci) * out.c + co]);
              }
    for (index i = 0; i < in.numel(); ++i) dx.data[i] = T(acc[i]);
  }
  void conv2d_backward_filter(const pcnas::backend::conv2d_desc& d, const tensor& x, const tensor& dy,
                              tensor& dw) {
    ++calls;
    const auto in = d.in;
    const auto out = d.out();
    need(dw, d.weight_size());
    for (index kh = 0; kh < d.kernel; ++kh)
      for (index kw = 0; kw < d.kernel; ++kw)
        for (index ci = 0; ci < in.c; ++ci)
          for (index co = 0; co < out.c; ++co) {
            double s = 0;
            for (index n = 0; n < out.n; ++n)
              for (index oh = 0; oh < out.h; ++oh)
                for (index ow = 0; ow < out.w; ++ow) {
                  const index ih = oh * d.stride - d.pad + kh, iw = ow * d.stride - d.pad + kw;
                  if (ih < 0 || ih >= in.h || iw < 0 || iw >= in.w) continue;
                  s += double(x.data[at(in, n, ih, iw, ci)]) * double(dy.data[at(out, n, oh, ow, co)]);
                }
            dw.data[((kh * d.kernel + kw) * in.c + ci) * out.c + co] = T(s);
          }
  }

  // --- 1×1 convolution, weights [ci][co] ----------------------------------------------------
  void pointwise_forward(const pcnas::backend::pointwise_desc& d, const tensor& x, const tensor& w,
                         tensor& y) {
    ++calls;
    need(x, d.rows * d.in_channels);
    need(w, d.weight_size());
    need(y, d.rows * d.out_channels);
    for (index r = 0; r < d.rows; ++r)
      for (index co = 0; co < d.out_channels; ++co) {
        double s = 0;
        for (index ci = 0; ci < d.in_channels; ++ci)
          s += double(x.data[r * d.in_channels + ci]) * double(w.data[ci * d.out_channels + co]);
        y.data[r * d.out_channels + co] = T(s);
      }
  }
  void pointwise_backward_data(const pcnas::backend::pointwise_desc& d, const tensor& dy,
                               const tensor& w, tensor& dx, bool accumulate) {
    ++calls;
    need(dx, d.rows * d.in_channels);
    for (index r = 0; r < d.rows; ++r)
      for (index ci = 0; ci < d.in_channels; ++ci) {
        double s = accumulate ? double(dx.data[r * d.in_channels + ci]) : 0.0;
        for (index co = 0; co < d.out_channels; ++co)
          s += double(dy.data[r * d.out_channels + co]) * double(w.data[ci * d.out_channels + co]);
        dx.data[r * d.in_channels + ci] = T(s);
      }
  }
  void pointwise_backward_filter(const pcnas::backend::pointwise_desc& d, const tensor& x,
                                 const tensor& dy, tensor& dw) {
    ++calls;
    need(dw, d.weight_size());
    for (index ci = 0; ci < d.in_channels; ++ci)
      for (index co = 0; co < d.out_channels; ++co) {
        double s = 0;
        for (index r = 0; r < d.rows; ++r)
          s += double(x.data[r * d.in_channels + ci]) * double(dy.data[r * d.out_channels + co]);
        dw.data[ci * d.out_channels + co] = T(s);
      }
  }

  // --- depthwise convolution, weights [kh][kw][c], padding k/2 -------------------------------
  void depthwise_forward(const pcnas::backend::depthwise_desc& d, const tensor& x, const tensor& w,
                         tensor& y) {
    ++calls;
    const auto in = d.in;
    const auto out = d.out();
    const index p = d.pad();
    need(x, in.numel());
    need(w, d.weight_size());
    need(y, out.numel());
    for (index n = 0; n < out.n; ++n)
      for (index oh = 0; oh < out.h; ++oh)
        for (index ow = 0; ow < out.w; ++ow)
          for (index c = 0; c < out.c; ++c) {
            double s = 0;
            for (index kh = 0; kh < d.kernel; ++kh)
              for (index kw = 0; kw < d.kernel; ++kw) {
                const index ih = oh * d.stride - p + kh, iw = ow * d.stride - p + kw;
                if (ih < 0 || ih >= in.h || iw < 0 || iw >= in.w) continue;
                s += double(x.data[at(in, n, ih, iw, c)]) * double(w.data[(kh * d.kernel + kw) * in.c + c]);
              }
            y.data[at(out, n, oh, ow, c)] = T(s);
          }
  }
  void depthwise_backward_data(const pcnas::backend::depthwise_desc& d, const tensor& dy,
                               const tensor& w, tensor& dx) {
    ++calls;
    const auto in = d.in;
    const auto out = d.out();
    const index p = d.pad();
    need(dx, in.numel());
    std::vector<double> acc(static_cast<std::size_t>(in.numel()), 0.0);
    for (index n = 0; n < out.n; ++n)
      for (index oh = 0; oh < out.h; ++oh)
        for (index ow = 0; ow < out.w; ++ow)
          for (index c = 0; c < out.c; ++c)
            for (index kh = 0; kh < d.kernel; ++kh)
              for (index kw = 0; kw < d.kernel; ++kw) {
                const index ih = oh * d.stride - p + kh, iw = ow * d.stride - p + kw;
                if (ih < 0 || ih >= in.h || iw < 0 || iw >= in.w) continue;
                acc[at(in, n, ih, iw, c)] +=
                    double(dy.data[at(out, n, oh, ow, c)]) * double(w.data[(kh * d.kernel + kw) * in.c + c]);
              }
    for (index i = 0; i < in.numel(); ++i) dx.data[i] = T(acc[i]);
  }
  void depthwise_backward_filter(const pcnas::backend::depthwise_desc& d, const tensor& x,
                                 const tensor& dy, tensor& dw) {
    ++calls;
    const auto in = d.in;
    const auto out = d.out();
    const index p = d.pad();
    need(dw, d.weight_size());
    for (index kh = 0; kh < d.kernel; ++kh)
      for (index kw = 0; kw < d.kernel; ++kw)
        for (index c = 0; c < in.c; ++c) {
          double s = 0;
          for (index n = 0; n < out.n; ++n)
            for (index oh = 0; oh < out.h; ++oh)
              for (index ow = 0; ow < out.w; ++ow) {
                const index ih = oh * d.stride - p + kh, iw = ow * d.stride - p + kw;
                if (ih < 0 || ih >= in.h || iw < 0 || iw >= in.w) continue;
                s += double(x.data[at(in, n, ih, iw, c)]) * double(dy.data[at(out, n, oh, ow, c)]);
              }
          dw.data[(kh * d.kernel + kw) * in.c + c] = T(s);
        }
  }

  // --- batch norm ---------------------------------------------------------------------------
  void batch_norm_forward_train(const pcnas::backend::batch_norm_desc& d,
                                pcnas::backend::batch_norm_tensors<tensor> bn, const tensor& x,
                                tensor& y, double factor) {
    ++calls;
    const index m = d.rows, C = d.channels;
    need(x, m * C);
    need(y, m * C);
    for (index c = 0; c < C; ++c) {
      double mean = 0;
      for (index r = 0; r < m; ++r) mean += double(x.data[r * C + c]);
      mean /= double(m);
      double var = 0;
      for (index r = 0; r < m; ++r) {
        const double e = double(x.data[r * C + c]) - mean;
        var += e * e;
      }
      var /= double(m);
      const double inv_std = 1.0 / std::sqrt(var + d.epsilon);
      for (index r = 0; r < m; ++r)
        y.data[r * C + c] = T((double(x.data[r * C + c]) - mean) * inv_std * double(bn.gamma.data[c]) +
                              double(bn.beta.data[c]));
      bn.saved_mean.data[c] = T(mean);
      bn.saved_inv_std.data[c] = T(inv_std);
      const double unbiased = m > 1 ? var * double(m) / double(m - 1) : var;
      bn.running_mean.data[c] = T((1 - factor) * double(bn.running_mean.data[c]) + factor * mean);
      bn.running_var.data[c] = T((1 - factor) * double(bn.running_var.data[c]) + factor * unbiased);
    }
  }
  void batch_norm_forward_inference(const pcnas::backend::batch_norm_desc& d,
                                    pcnas::backend::batch_norm_tensors<tensor> bn, const tensor& x,
                                    tensor& y) {
    ++calls;
    const index m = d.rows, C = d.channels;
    for (index c = 0; c < C; ++c) {
      const double inv_std = 1.0 / std::sqrt(double(bn.running_var.data[c]) + d.epsilon);
      for (index r = 0; r < m; ++r)
        y.data[r * C + c] = T((double(x.data[r * C + c]) - double(bn.running_mean.data[c])) * inv_std *
                                  double(bn.gamma.data[c]) +
                              double(bn.beta.data[c]));
    }
  }
  void batch_norm_backward(const pcnas::backend::batch_norm_desc& d,
                           pcnas::backend::batch_norm_tensors<tensor> bn, const tensor& x,
                           const tensor& dy, tensor& dx) {
    ++calls;
    const index m = d.rows, C = d.channels;
    need(dx, m * C);
    for (index c = 0; c < C; ++c) {
      const double mean = double(bn.saved_mean.data[c]), inv_std = double(bn.saved_inv_std.data[c]);
      double sum_dy = 0, sum_dy_xhat = 0;
      for (index r = 0; r < m; ++r) {
        const double xhat = (double(x.data[r * C + c]) - mean) * inv_std;
        sum_dy += double(dy.data[r * C + c]);
        sum_dy_xhat += double(dy.data[r * C + c]) * xhat;
      }
      bn.grad_beta.data[c] = T(sum_dy);
      bn.grad_gamma.data[c] = T(sum_dy_xhat);
      const double g = double(bn.gamma.data[c]) * inv_std;
      for (index r = 0; r < m; ++r) {
        const double xhat = (double(x.data[r * C + c]) - mean) * inv_std;
        dx.data[r * C + c] =
            T(g * (double(dy.data[r * C + c]) - sum_dy / double(m) - xhat * sum_dy_xhat / double(m)));
      }
    }
  }

  // --- elementwise --------------------------------------------------------------------------
  void relu6_forward(index n, const tensor& x, tensor& y) {
    ++calls;
    for (index i = 0; i < n; ++i) y.data[i] = std::min(std::max(x.data[i], T(0)), T(6));
  }
  void relu6_backward(index n, const tensor& y, const tensor& dy, tensor& dx) {
    ++calls;
    for (index i = 0; i < n; ++i) dx.data[i] = (y.data[i] > T(0) && y.data[i] < T(6)) ? dy.data[i] : T(0);
  }
  void add(index n, const tensor& a, const tensor& b, tensor& out) {
    ++calls;
    for (index i = 0; i < n; ++i) out.data[i] = a.data[i] + b.data[i];
  }

  // --- pooling ------------------------------------------------------------------------------
  void global_avg_pool_forward(const pcnas::backend::act_shape& s, const tensor& x, tensor& y) {
    ++calls;
    for (index n = 0; n < s.n; ++n)
      for (index c = 0; c < s.c; ++c) {
        double sum = 0;
        for (index h = 0; h < s.h; ++h)
          for (index w = 0; w < s.w; ++w) sum += double(x.data[at(s, n, h, w, c)]);
        y.data[n * s.c + c] = T(sum / double(s.h * s.w));
      }
  }
  void global_avg_pool_backward(const pcnas::backend::act_shape& s, const tensor& dy, tensor& dx) {
    ++calls;
    for (index n = 0; n < s.n; ++n)
      for (index h = 0; h < s.h; ++h)
        for (index w = 0; w < s.w; ++w)
          for (index c = 0; c < s.c; ++c)
            dx.data[at(s, n, h, w, c)] = T(double(dy.data[n * s.c + c]) / double(s.h * s.w));
  }

  // --- linear, weights [in][out] ------------------------------------------------------------
  void linear_forward(const pcnas::backend::linear_desc& d, const tensor& x, const tensor& w,
                      const tensor& bias, tensor& y) {
    ++calls;
    for (index n = 0; n < d.batch; ++n)
      for (index o = 0; o < d.out_features; ++o) {
        double s = double(bias.data[o]);
        for (index i = 0; i < d.in_features; ++i)
          s += double(x.data[n * d.in_features + i]) * double(w.data[i * d.out_features + o]);
        y.data[n * d.out_features + o] = T(s);
      }
  }
  void linear_backward_data(const pcnas::backend::linear_desc& d, const tensor& dy, const tensor& w,
                            tensor& dx) {
    ++calls;
    for (index n = 0; n < d.batch; ++n)
      for (index i = 0; i < d.in_features; ++i) {
        double s = 0;
        for (index o = 0; o < d.out_features; ++o)
          s += double(dy.data[n * d.out_features + o]) * double(w.data[i * d.out_features + o]);
        dx.data[n * d.in_features + i] = T(s);
      }
  }
  void linear_backward_params(const pcnas::backend::linear_desc& d, const tensor& x, const tensor& dy,
                              tensor& dw, tensor& dbias) {
    ++calls;
    for (index i = 0; i < d.in_features; ++i)
      for (index o = 0; o < d.out_features; ++o) {
        double s = 0;
        for (index n = 0; n < d.batch; ++n)
          s += double(x.data[n * d.in_features + i]) * double(dy.data[n * d.out_features + o]);
        dw.data[i * d.out_features + o] = T(s);
      }
    for (index o = 0; o < d.out_features; ++o) {
      double s = 0;
      for (index n = 0; n < d.batch; ++n) s += double(dy.data[n * d.out_features + o]);
      dbias.data[o] = T(s);
    }
  }

  // --- loss ---------------------------------------------------------------------------------
  void softmax_cross_entropy_forward(const pcnas::backend::cross_entropy_desc& d, const tensor& logits,
                                     const label_tensor& labels, tensor& stats) {
    ++calls;
    const index K = d.classes;
    double loss = 0, correct = 0;
    for (index n = 0; n < d.batch; ++n) {
      const T* z = logits.data.data() + n * K;
      const index label = labels.data[n];
      double zmax = double(z[0]);
      index best = 0;
      for (index k = 1; k < K; ++k)
        if (double(z[k]) > zmax) zmax = double(z[k]), best = k;
      double sum = 0;
      for (index k = 0; k < K; ++k) sum += std::exp(double(z[k]) - zmax);
      const double log_sum = std::log(sum) + zmax;
      for (index k = 0; k < K; ++k) {
        const double target = (k == label ? 1.0 - d.label_smoothing : 0.0) + d.label_smoothing / double(K);
        loss -= target * (double(z[k]) - log_sum);
      }
      if (best == label) correct += 1;
    }
    stats.data[0] = T(double(stats.data[0]) + loss);
    stats.data[1] = T(double(stats.data[1]) + correct);
  }
  void softmax_cross_entropy_backward(const pcnas::backend::cross_entropy_desc& d, const tensor& logits,
                                      const label_tensor& labels, tensor& dlogits) {
    ++calls;
    const index K = d.classes;
    for (index n = 0; n < d.batch; ++n) {
      const T* z = logits.data.data() + n * K;
      double zmax = double(z[0]);
      for (index k = 1; k < K; ++k) zmax = std::max(zmax, double(z[k]));
      double sum = 0;
      for (index k = 0; k < K; ++k) sum += std::exp(double(z[k]) - zmax);
      for (index k = 0; k < K; ++k) {
        const double target =
            (k == labels.data[n] ? 1.0 - d.label_smoothing : 0.0) + d.label_smoothing / double(K);
        dlogits.data[n * K + k] = T((std::exp(double(z[k]) - zmax) / sum - target) / double(d.batch));
      }
    }
  }

  // --- optimizer ----------------------------------------------------------------------------
  void sgd_update(const pcnas::backend::sgd_desc& d, tensor& w, const tensor& g, tensor& m) {
    ++calls;
    for (index i = 0; i < d.size; ++i) {
      const double grad = double(g.data[i]) + d.weight_decay * double(w.data[i]);
      const double mom = d.momentum * double(m.data[i]) + grad;
      m.data[i] = T(mom);
      const double step = d.nesterov ? grad + d.momentum * mom : mom;
      w.data[i] = T(double(w.data[i]) - d.learning_rate * step);
    }
  }

 private:
  static index at(const pcnas::backend::act_shape& s, index n, index h, index w, index c) {
    return ((n * s.h + h) * s.w + w) * s.c + c;
  }
  static void need(const tensor& t, index n) {
    if (static_cast<index>(t.data.size()) < n)
      throw std::out_of_range("pcnas::testing::naive_backend: tensor of " + std::to_string(t.data.size()) +
                              " elements used for " + std::to_string(n));
  }
};

static_assert(pcnas::backend::check_backend<naive_backend<double>>());
static_assert(pcnas::backend::check_backend<naive_backend<float>>());

}  // namespace pcnas::testing
