// The small ops of the Eigen backend: ReLU6, add, global average pooling, the fully connected
// layer, the loss and the SGD step.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen/gemm.hpp>
#include <pcnas/backend/eigen/parallel.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace pcnas::backend::eigen::detail {

inline constexpr index elementwise_min = kernel_policy::elementwise_min;

inline void relu6_forward(int threads, index n, const float* x, float* y) {
  parallel_for(threads, n, elementwise_min, [&](index b, index e, int) {
    for (index i = b; i < e; ++i) y[i] = std::min(std::max(x[i], 0.0f), 6.0f);
  });
}
inline void relu6_backward(int threads, index n, const float* y, const float* dy, float* dx) {
  parallel_for(threads, n, elementwise_min, [&](index b, index e, int) {
    for (index i = b; i < e; ++i) dx[i] = (y[i] > 0.0f && y[i] < 6.0f) ? dy[i] : 0.0f;
  });
}
inline void add(int threads, index n, const float* a, const float* b, float* out) {
  parallel_for(threads, n, elementwise_min, [&](index lo, index hi, int) {
    for (index i = lo; i < hi; ++i) out[i] = a[i] + b[i];
  });
}

inline void global_avg_pool_forward(int threads, const act_shape& s, const float* x, float* y) {
  const index hw = s.h * s.w, C = s.c;
  const float inv = 1.0f / static_cast<float>(hw);
  parallel_for(threads, s.n, kernel_policy::pool_min_images, [&](index b, index e, int) {
    for (index n = b; n < e; ++n) {
      float* yn = y + n * C;
      std::fill(yn, yn + C, 0.0f);
      for (index p = 0; p < hw; ++p) {
        const float* xp = x + (n * hw + p) * C;
        for (index c = 0; c < C; ++c) yn[c] += xp[c];
      }
      for (index c = 0; c < C; ++c) yn[c] *= inv;
    }
  });
}
inline void global_avg_pool_backward(int threads, const act_shape& s, const float* dy, float* dx) {
  const index hw = s.h * s.w, C = s.c;
  const float inv = 1.0f / static_cast<float>(hw);
  parallel_for(threads, s.n, kernel_policy::pool_min_images, [&](index b, index e, int) {
    for (index n = b; n < e; ++n)
      for (index p = 0; p < hw; ++p) {
        float* d = dx + (n * hw + p) * C;
        const float* g = dy + n * C;
        for (index c = 0; c < C; ++c) d[c] = g[c] * inv;
      }
  });
}

// The fully connected layer is tiny next to the convolutions (batch × 256 × classes): one thread.
inline void linear_forward(const linear_desc& d, const float* x, const float* w, const float* bias, float* y) {
  const eigen_single_thread one;
  const const_matrix_map X(x, d.batch, d.in_features);
  const const_matrix_map W(w, d.in_features, d.out_features);
  const Eigen::Map<const Eigen::RowVectorXf> b(bias, d.out_features);
  matrix_map Y(y, d.batch, d.out_features);
  Y.noalias() = X * W;
  Y.rowwise() += b;
}
inline void linear_backward_data(const linear_desc& d, const float* dy, const float* w, float* dx) {
  const eigen_single_thread one;
  const const_matrix_map dY(dy, d.batch, d.out_features);
  const const_matrix_map W(w, d.in_features, d.out_features);
  matrix_map dX(dx, d.batch, d.in_features);
  dX.noalias() = dY * W.transpose();
}
inline void linear_backward_params(const linear_desc& d, const float* x, const float* dy, float* dw, float* db) {
  const eigen_single_thread one;
  const const_matrix_map X(x, d.batch, d.in_features);
  const const_matrix_map dY(dy, d.batch, d.out_features);
  matrix_map dW(dw, d.in_features, d.out_features);
  dW.noalias() = X.transpose() * dY;
  Eigen::Map<Eigen::RowVectorXf> dB(db, d.out_features);
  dB = dY.colwise().sum();
}

inline void cross_entropy_forward(const cross_entropy_desc& d, const float* logits, const std::int32_t* labels,
                                  float* stats) {
  const index K = d.classes;
  double loss = 0, correct = 0;
  for (index n = 0; n < d.batch; ++n) {
    const float* z = logits + n * K;
    index best = 0;
    for (index k = 1; k < K; ++k)
      if (z[k] > z[best]) best = k;
    const double zmax = z[best];
    double sum = 0;
    for (index k = 0; k < K; ++k) sum += std::exp(static_cast<double>(z[k]) - zmax);
    const double log_sum = std::log(sum) + zmax;
    const index label = labels[n];
    for (index k = 0; k < K; ++k) {
      const double target = (k == label ? 1.0 - d.label_smoothing : 0.0) + d.label_smoothing / static_cast<double>(K);
      loss -= target * (static_cast<double>(z[k]) - log_sum);
    }
    if (best == label) correct += 1;
  }
  stats[0] = static_cast<float>(static_cast<double>(stats[0]) + loss);
  stats[1] = static_cast<float>(static_cast<double>(stats[1]) + correct);
}
inline void cross_entropy_backward(const cross_entropy_desc& d, const float* logits, const std::int32_t* labels,
                                   float* dlogits) {
  const index K = d.classes;
  const double inv_batch = 1.0 / static_cast<double>(d.batch);
  for (index n = 0; n < d.batch; ++n) {
    const float* z = logits + n * K;
    double zmax = z[0];
    for (index k = 1; k < K; ++k) zmax = std::max(zmax, static_cast<double>(z[k]));
    double sum = 0;
    for (index k = 0; k < K; ++k) sum += std::exp(static_cast<double>(z[k]) - zmax);
    for (index k = 0; k < K; ++k) {
      const double target =
          (k == labels[n] ? 1.0 - d.label_smoothing : 0.0) + d.label_smoothing / static_cast<double>(K);
      dlogits[n * K + k] = static_cast<float>((std::exp(static_cast<double>(z[k]) - zmax) / sum - target) * inv_batch);
    }
  }
}

inline void sgd_update(int threads, const sgd_desc& d, float* w, const float* g, float* m) {
  const float lr = static_cast<float>(d.learning_rate), mu = static_cast<float>(d.momentum),
              wd = static_cast<float>(d.weight_decay);
  const bool nesterov = d.nesterov;
  parallel_for(threads, d.size, elementwise_min, [&](index b, index e, int) {
    for (index i = b; i < e; ++i) {
      const float grad = g[i] + wd * w[i];
      const float mom = mu * m[i] + grad;
      m[i] = mom;
      w[i] -= lr * (nesterov ? grad + mu * mom : mom);
    }
  });
}

}  // namespace pcnas::backend::eigen::detail
