// Batch norm of the Eigen backend, with ReLU6 and the residual add fused in. Statistics are
// gathered per chunk of rows small enough to stay in cache: the chunk's mean first, then its
// squared deviations from that mean, merged in double precision (Chan et al.), so that the
// variance does not suffer from E[x²] − E[x]² cancellation. Backward reads x and dy twice
// (sums, then dx) and recomputes the ReLU6 mask from x rather than reading y.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen/parallel.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace pcnas::backend::eigen::detail {

// The tensors of one batch-norm layer as raw pointers.
struct bn_ptrs {
  const float* gamma;
  const float* beta;
  float* running_mean;
  float* running_var;
  float* saved_mean;
  float* saved_inv_std;
  float* grad_gamma;
  float* grad_beta;
};

inline index bn_chunk_rows(index C) { return std::clamp<index>(8192 / std::max<index>(C, 1), 8, 256); }

// Running per-channel (count, mean, M2) in double.
struct moments {
  index count = 0;
  std::vector<double> mean, m2;
  explicit moments(index C) : mean(static_cast<std::size_t>(C), 0.0), m2(static_cast<std::size_t>(C), 0.0) {}
  void merge(index nb, const double* mb, const double* m2b) {
    if (nb == 0) return;
    const double na = static_cast<double>(count), n = na + static_cast<double>(nb);
    const double wb = static_cast<double>(nb) / n, cross = na * static_cast<double>(nb) / n;
    for (std::size_t c = 0; c < mean.size(); ++c) {
      const double delta = mb[c] - mean[c];
      mean[c] += delta * wb;
      m2[c] += m2b[c] + delta * delta * cross;
    }
    count += nb;
  }
};

// Moments of rows [b, e) of x[rows][C]; `tmp` holds 2·C floats, `dtmp` 2·C doubles.
inline void chunked_moments(const float* x, index b, index e, index C, moments& out, float* tmp, double* dtmp) {
  const index R = bn_chunk_rows(C);
  float* cm = tmp;
  float* cq = tmp + C;
  for (index r0 = b; r0 < e; r0 += R) {
    const index r1 = std::min(e, r0 + R);
    const float inv = 1.0f / static_cast<float>(r1 - r0);
    std::fill(cm, cm + C, 0.0f);
    std::fill(cq, cq + C, 0.0f);
    for (index r = r0; r < r1; ++r) {
      const float* xr = x + r * C;
      for (index c = 0; c < C; ++c) cm[c] += xr[c];
    }
    for (index c = 0; c < C; ++c) cm[c] *= inv;
    for (index r = r0; r < r1; ++r) {
      const float* xr = x + r * C;
      for (index c = 0; c < C; ++c) {
        const float d = xr[c] - cm[c];
        cq[c] += d * d;
      }
    }
    for (index c = 0; c < C; ++c) {
      dtmp[c] = cm[c];
      dtmp[C + c] = cq[c];
    }
    out.merge(r1 - r0, dtmp, dtmp + C);
  }
}

// The per-channel affine map y = x·scale + shift of a normalisation, from float statistics;
// forward and backward both derive it here so that the ReLU6 mask agrees bit for bit.
inline void bn_affine(index C, const float* gamma, const float* beta, const float* mean, const float* inv_std,
                      float* scale, float* shift) {
  for (index c = 0; c < C; ++c) {
    scale[c] = gamma[c] * inv_std[c];
    shift[c] = beta[c] - mean[c] * scale[c];
  }
}

enum class bn_epilogue { none, relu6, add };

// y = epilogue(x·scale + shift), parallel over rows.
inline void bn_apply(int threads, index rows, index C, const float* x, const float* scale, const float* shift,
                     bn_epilogue ep, const float* residual, float* y) {
  parallel_for(threads, rows, 64, [&](index b, index e, int) {
    for (index r = b; r < e; ++r) {
      const float* xr = x + r * C;
      float* yr = y + r * C;
      if (ep == bn_epilogue::relu6) {
        for (index c = 0; c < C; ++c) yr[c] = std::min(std::max(xr[c] * scale[c] + shift[c], 0.0f), 6.0f);
      } else if (ep == bn_epilogue::add) {
        const float* rr = residual + r * C;
        for (index c = 0; c < C; ++c) yr[c] = xr[c] * scale[c] + shift[c] + rr[c];
      } else {
        for (index c = 0; c < C; ++c) yr[c] = xr[c] * scale[c] + shift[c];
      }
    }
  });
}

inline void bn_forward_train(int threads, scratch& ws, const batch_norm_desc& d, const bn_ptrs& t,
                             const float* x, float* y, double factor, bn_epilogue ep, const float* residual) {
  const index C = d.channels, m = d.rows;
  std::vector<moments> parts_moments;
  parts_moments.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) parts_moments.emplace_back(C);
  std::vector<double> dtmp(static_cast<std::size_t>(threads) * 2 * static_cast<std::size_t>(C));
  const int parts = parallel_for(threads, m, 256, [&](index b, index e, int th) {
    chunked_moments(x, b, e, C, parts_moments[static_cast<std::size_t>(th)], ws.get(th, 0, 2 * C),
                    dtmp.data() + static_cast<std::size_t>(th) * 2 * static_cast<std::size_t>(C));
  });
  moments total(C);
  for (int i = 0; i < parts; ++i)
    total.merge(parts_moments[static_cast<std::size_t>(i)].count, parts_moments[static_cast<std::size_t>(i)].mean.data(),
                parts_moments[static_cast<std::size_t>(i)].m2.data());
  const double unbias = m > 1 ? static_cast<double>(m) / static_cast<double>(m - 1) : 1.0;
  for (index c = 0; c < C; ++c) {
    const double var = m > 0 ? total.m2[c] / static_cast<double>(m) : 0.0;
    t.saved_mean[c] = static_cast<float>(total.mean[c]);
    t.saved_inv_std[c] = static_cast<float>(1.0 / std::sqrt(var + d.epsilon));
    t.running_mean[c] = static_cast<float>((1 - factor) * t.running_mean[c] + factor * total.mean[c]);
    t.running_var[c] = static_cast<float>((1 - factor) * t.running_var[c] + factor * var * unbias);
  }
  std::vector<float> affine(static_cast<std::size_t>(2 * C));
  bn_affine(C, t.gamma, t.beta, t.saved_mean, t.saved_inv_std, affine.data(), affine.data() + C);
  bn_apply(threads, m, C, x, affine.data(), affine.data() + C, ep, residual, y);
}

inline void bn_forward_inference(int threads, const batch_norm_desc& d, const bn_ptrs& t,
                                 const float* x, float* y, bn_epilogue ep, const float* residual) {
  const index C = d.channels;
  std::vector<float> affine(static_cast<std::size_t>(2 * C));
  for (index c = 0; c < C; ++c) {
    const double inv_std = 1.0 / std::sqrt(static_cast<double>(t.running_var[c]) + d.epsilon);
    const double scale = static_cast<double>(t.gamma[c]) * inv_std;
    affine[static_cast<std::size_t>(c)] = static_cast<float>(scale);
    affine[static_cast<std::size_t>(C + c)] =
        static_cast<float>(static_cast<double>(t.beta[c]) - static_cast<double>(t.running_mean[c]) * scale);
  }
  bn_apply(threads, d.rows, C, x, affine.data(), affine.data() + C, ep, residual, y);
}

// Backward of the training forward, optionally through the ReLU6 that followed it.
inline void bn_backward(int threads, scratch& ws, const batch_norm_desc& d, const bn_ptrs& t,
                        const float* x, const float* dy, float* dx, bool relu6) {
  const index C = d.channels, m = d.rows;
  std::vector<float> affine(static_cast<std::size_t>(2 * C));
  const float* scale = affine.data();
  const float* shift = affine.data() + C;
  bn_affine(C, t.gamma, t.beta, t.saved_mean, t.saved_inv_std, affine.data(), affine.data() + C);
  const float* mean = t.saved_mean;
  // Pass 1: per part, s1 = Σ g and s2 = Σ g·(x − mean), with g = dy masked by the ReLU6.
  std::vector<double> sums(static_cast<std::size_t>(threads) * 2 * static_cast<std::size_t>(C), 0.0);
  const index R = bn_chunk_rows(C);
  const int parts = parallel_for(threads, m, 256, [&](index b, index e, int th) {
    float* f1 = ws.get(th, 0, 2 * C);
    float* f2 = f1 + C;
    double* s1 = sums.data() + static_cast<std::size_t>(th) * 2 * static_cast<std::size_t>(C);
    double* s2 = s1 + C;
    for (index r0 = b; r0 < e; r0 += R) {
      const index r1 = std::min(e, r0 + R);
      std::fill(f1, f1 + 2 * C, 0.0f);
      for (index r = r0; r < r1; ++r) {
        const float* xr = x + r * C;
        const float* gr = dy + r * C;
        if (relu6) {
          for (index c = 0; c < C; ++c) {
            const float z = xr[c] * scale[c] + shift[c];
            const float g = (z > 0.0f && z < 6.0f) ? gr[c] : 0.0f;
            f1[c] += g;
            f2[c] += g * (xr[c] - mean[c]);
          }
        } else {
          for (index c = 0; c < C; ++c) {
            f1[c] += gr[c];
            f2[c] += gr[c] * (xr[c] - mean[c]);
          }
        }
      }
      for (index c = 0; c < C; ++c) {
        s1[c] += f1[c];
        s2[c] += f2[c];
      }
    }
  });
  std::vector<float> coef(static_cast<std::size_t>(3 * C));
  float* A = coef.data();
  float* Bc = coef.data() + C;
  float* Cc = coef.data() + 2 * C;
  for (index c = 0; c < C; ++c) {
    double s1 = 0, s2 = 0;
    for (int i = 0; i < parts; ++i) {
      s1 += sums[static_cast<std::size_t>(i) * 2 * static_cast<std::size_t>(C) + static_cast<std::size_t>(c)];
      s2 += sums[static_cast<std::size_t>(i) * 2 * static_cast<std::size_t>(C) + static_cast<std::size_t>(C + c)];
    }
    const double inv_std = t.saved_inv_std[c];
    const double dgamma = s2 * inv_std, dbeta = s1;
    t.grad_gamma[c] = static_cast<float>(dgamma);
    t.grad_beta[c] = static_cast<float>(dbeta);
    const double a = static_cast<double>(t.gamma[c]) * inv_std;
    A[c] = static_cast<float>(a);
    Bc[c] = static_cast<float>(m > 0 ? -a * inv_std * dgamma / static_cast<double>(m) : 0.0);
    Cc[c] = static_cast<float>(m > 0 ? -a * dbeta / static_cast<double>(m) : 0.0);
  }
  // Pass 2: dx = A·g + B·(x − mean) + C.
  parallel_for(threads, m, 64, [&](index b, index e, int) {
    for (index r = b; r < e; ++r) {
      const float* xr = x + r * C;
      const float* gr = dy + r * C;
      float* dr = dx + r * C;
      if (relu6) {
        for (index c = 0; c < C; ++c) {
          const float z = xr[c] * scale[c] + shift[c];
          const float g = (z > 0.0f && z < 6.0f) ? gr[c] : 0.0f;
          dr[c] = A[c] * g + Bc[c] * (xr[c] - mean[c]) + Cc[c];
        }
      } else {
        for (index c = 0; c < C; ++c) dr[c] = A[c] * gr[c] + Bc[c] * (xr[c] - mean[c]) + Cc[c];
      }
    }
  });
}

}  // namespace pcnas::backend::eigen::detail
