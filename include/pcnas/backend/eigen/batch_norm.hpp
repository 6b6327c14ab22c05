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

// Moments of rows [b, e) of x[rows][C]; `tmp` holds 2·C floats, `dtmp` 2·C doubles. Each chunk
// is summed one block of channels at a time with the accumulators in registers; the chunk is
// small enough (≤ 8192 values) that its second pass reads from L1.
inline void chunked_moments(const float* x, index b, index e, index C, moments& out, float* tmp, double* dtmp) {
  const index R = bn_chunk_rows(C);
  float* cm = tmp;
  float* cq = tmp + C;
  for (index r0 = b; r0 < e; r0 += R) {
    const index r1 = std::min(e, r0 + R);
    const float inv = 1.0f / static_cast<float>(r1 - r0);
    for (index c = 0; c < C; c += lanes) {
      const int nl = block_lanes(C, c);
      vfloat s = vfloat{};
      for (index r = r0; r < r1; ++r) s += vld(x + r * C + c, nl);
      const vfloat m = s * inv;
      vfloat q = vfloat{};
      for (index r = r0; r < r1; ++r) {
        const vfloat d = vld(x + r * C + c, nl) - m;
        q += d * d;
      }
      vst(cm + c, m, nl);
      vst(cq + c, q, nl);
    }
    for (index k = 0; k < C; ++k) {
      dtmp[k] = cm[k];
      dtmp[C + k] = cq[k];
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
template <bn_epilogue Ep>
inline void bn_apply_rows(index b, index e, index C, const float* x, const float* scale, const float* shift,
                          const float* residual, float* y) {
  const vfloat zero = vfloat{}, six = vbroadcast(6.0f);
  for (index r = b; r < e; ++r) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    for (index c = 0; c < C; c += lanes) {
      const int nl = block_lanes(C, c);
      vfloat v = vld(xr + c, nl) * vld(scale + c, nl) + vld(shift + c, nl);
      if constexpr (Ep == bn_epilogue::relu6) v = vmin(vmax(v, zero), six);
      if constexpr (Ep == bn_epilogue::add) v += vld(residual + r * C + c, nl);
      vst(yr + c, v, nl);
    }
  }
}

inline void bn_apply(int threads, index rows, index C, const float* x, const float* scale, const float* shift,
                     bn_epilogue ep, const float* residual, float* y) {
  parallel_for(threads, rows, 64, [&](index b, index e, int) {
    if (ep == bn_epilogue::relu6) bn_apply_rows<bn_epilogue::relu6>(b, e, C, x, scale, shift, residual, y);
    else if (ep == bn_epilogue::add) bn_apply_rows<bn_epilogue::add>(b, e, C, x, scale, shift, residual, y);
    else bn_apply_rows<bn_epilogue::none>(b, e, C, x, scale, shift, residual, y);
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

// The ReLU6 mask from the pre-normalisation input: 0 < x·scale + shift < 6, computed exactly as
// the forward computed its output.
[[gnu::always_inline]] inline vfloat relu6_pass(vfloat x, vfloat scale, vfloat shift, vfloat g) {
  const vfloat z = x * scale + shift;
  return ((z > 0.0f) & (z < 6.0f)) ? g : vfloat{};
}
[[gnu::always_inline]] inline float relu6_pass(float x, float scale, float shift, float g) {
  const float z = x * scale + shift;
  return (z > 0.0f && z < 6.0f) ? g : 0.0f;
}

// Per chunk of rows [r0, r1): s1 += Σ g, s2 += Σ g·(x − mean), g = dy (masked by the ReLU6).
template <bool Relu6>
inline void bn_backward_sums(index r0, index r1, index C, const float* x, const float* dy, const float* scale,
                             const float* shift, const float* mean, double* s1, double* s2) {
  for (index c = 0; c < C; c += lanes) {
    const int nl = block_lanes(C, c);
    [[maybe_unused]] vfloat sc{}, sh{};
    if constexpr (Relu6) {
      sc = vld(scale + c, nl);
      sh = vld(shift + c, nl);
    }
    const vfloat mu = vld(mean + c, nl);
    vfloat a1 = vfloat{}, a2 = vfloat{};
    for (index r = r0; r < r1; ++r) {
      const vfloat xv = vld(x + r * C + c, nl);
      vfloat g = vld(dy + r * C + c, nl);
      if constexpr (Relu6) g = relu6_pass(xv, sc, sh, g);
      a1 += g;
      a2 += g * (xv - mu);
    }
    for (int l = 0; l < nl; ++l) {
      s1[c + l] += a1[l];
      s2[c + l] += a2[l];
    }
  }
}

// dx = A·g + B·(x − mean) + C over rows [b, e).
template <bool Relu6>
inline void bn_backward_apply(index b, index e, index C, const float* x, const float* dy, const float* scale,
                              const float* shift, const float* mean, const float* A, const float* B, const float* K,
                              float* dx) {
  for (index r = b; r < e; ++r) {
    const float* xr = x + r * C;
    const float* gr = dy + r * C;
    float* dr = dx + r * C;
    for (index c = 0; c < C; c += lanes) {
      const int nl = block_lanes(C, c);
      const vfloat xv = vld(xr + c, nl);
      vfloat g = vld(gr + c, nl);
      if constexpr (Relu6) g = relu6_pass(xv, vld(scale + c, nl), vld(shift + c, nl), g);
      vst(dr + c, vld(A + c, nl) * g + vld(B + c, nl) * (xv - vld(mean + c, nl)) + vld(K + c, nl), nl);
    }
  }
}

// Backward of the training forward, optionally through the ReLU6 that followed it.
inline void bn_backward(int threads, scratch& ws, const batch_norm_desc& d, const bn_ptrs& t, const float* x,
                        const float* dy, float* dx, bool relu6) {
  (void)ws;
  const index C = d.channels, m = d.rows;
  std::vector<float> affine(static_cast<std::size_t>(2 * C));
  const float* scale = affine.data();
  const float* shift = affine.data() + C;
  bn_affine(C, t.gamma, t.beta, t.saved_mean, t.saved_inv_std, affine.data(), affine.data() + C);
  const float* mean = t.saved_mean;
  // Pass 1: per part, in chunks summed in float and carried in double.
  std::vector<double> sums(static_cast<std::size_t>(threads) * 2 * static_cast<std::size_t>(C), 0.0);
  const index R = bn_chunk_rows(C);
  const int parts = parallel_for(threads, m, 256, [&](index b, index e, int th) {
    double* s1 = sums.data() + static_cast<std::size_t>(th) * 2 * static_cast<std::size_t>(C);
    double* s2 = s1 + C;
    for (index r0 = b; r0 < e; r0 += R) {
      const index r1 = std::min(e, r0 + R);
      if (relu6) bn_backward_sums<true>(r0, r1, C, x, dy, scale, shift, mean, s1, s2);
      else bn_backward_sums<false>(r0, r1, C, x, dy, scale, shift, mean, s1, s2);
    }
  });
  std::vector<float> coef(static_cast<std::size_t>(3 * C));
  float* A = coef.data();
  float* Bc = coef.data() + C;
  float* Kc = coef.data() + 2 * C;
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
    Kc[c] = static_cast<float>(m > 0 ? -a * dbeta / static_cast<double>(m) : 0.0);
  }
  // Pass 2.
  parallel_for(threads, m, 64, [&](index b, index e, int) {
    if (relu6) bn_backward_apply<true>(b, e, C, x, dy, scale, shift, mean, A, Bc, Kc, dx);
    else bn_backward_apply<false>(b, e, C, x, dy, scale, shift, mean, A, Bc, Kc, dx);
  });
}

}  // namespace pcnas::backend::eigen::detail
