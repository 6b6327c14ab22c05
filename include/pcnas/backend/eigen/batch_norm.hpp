// Batch norm of the Eigen backend, with ReLU6 and the residual add fused in. Statistics are
// gathered per chunk of rows small enough to stay in cache: the chunk's mean first, then its
// squared deviations from that mean, merged in double precision (Chan et al.), so that the
// variance does not suffer from E[x²] − E[x]² cancellation. Backward reads x and dy twice
// (sums, then dx) and recomputes the ReLU6 mask from x rather than reading y (through vaffine,
// so that it agrees with the forward bit for bit: see parallel.hpp).
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

// Per-channel running (count, mean, M2) in double, merged by Chan et al.'s rule (the pairwise
// form of Welford's update). The count is per channel: the depthwise work items cover one block
// of channels of one image, so a thread's items need not cover every channel equally often.
struct channel_moments {
  std::vector<double> n, mean, m2;
  explicit channel_moments(index C = 0)
      : n(static_cast<std::size_t>(C), 0.0), mean(static_cast<std::size_t>(C), 0.0), m2(static_cast<std::size_t>(C), 0.0) {}
  index channels() const noexcept { return static_cast<index>(n.size()); }
  // Adds nb samples of mean mb and M2 m2b to channel c.
  void merge(index c, double nb, double mb, double m2b) {
    const auto i = static_cast<std::size_t>(c);
    const double na = n[i];
    if (nb == 0) return;
    const double total = na + nb;
    const double delta = mb - mean[i];
    mean[i] += delta * nb / total;
    m2[i] += m2b + delta * delta * na * nb / total;
    n[i] = total;
  }
  void merge(const channel_moments& o) {
    for (index c = 0; c < channels(); ++c)
      merge(c, o.n[static_cast<std::size_t>(c)], o.mean[static_cast<std::size_t>(c)], o.m2[static_cast<std::size_t>(c)]);
  }
  // Whole rows: nb samples for every channel, means and M2s in arrays, into moments that have seen
  // only whole rows (so every channel holds the same count). The weights nb/n and na·nb/n are
  // computed once for all channels, which rounds differently from the per-channel merge above;
  // both are kept as they were so that results stay bit for bit (the running means of channels
  // whose mean is nearly zero would otherwise move by an ulp).
  void merge_rows(double nb, const double* mb, const double* m2b) {
    if (nb == 0 || channels() == 0) return;
    const double na = n[0], total = na + nb;
    const double wb = nb / total, cross = na * nb / total;
    for (std::size_t c = 0; c < n.size(); ++c) {
      const double delta = mb[c] - mean[c];
      mean[c] += delta * wb;
      m2[c] += m2b[c] + delta * delta * cross;
      n[c] = total;
    }
  }
  void merge_rows(const channel_moments& o) {
    if (o.channels() > 0) merge_rows(o.n[0], o.mean.data(), o.m2.data());
  }
};

// Mean and M2 of channels [c0, c0 + valid) over `count` pixels at p, p + stride, ...: two
// passes over data that was just written and is still in cache.
inline void block_moments(const float* p, index count, index stride, index c0, int valid, channel_moments& out) {
  vfloat s = vfloat{};
  for (index i = 0; i < count; ++i) s += vld(p + i * stride, valid);
  const vfloat m = s / static_cast<float>(count);
  vfloat q = vfloat{};
  for (index i = 0; i < count; ++i) {
    const vfloat d = vld(p + i * stride, valid) - m;
    q += d * d;
  }
  for (int l = 0; l < valid; ++l) out.merge(c0 + l, static_cast<double>(count), m[l], q[l]);
}

// Moments of rows [b, e) of x[rows][C]; `tmp` holds 2·C floats, `dtmp` 2·C doubles. Each chunk
// is summed one block of channels at a time with the accumulators in registers; the chunk is
// small enough (kernel_policy::bn_chunk_rows) that its second pass reads from L1.
inline void chunked_moments(const float* x, index b, index e, index C, channel_moments& out, float* tmp, double* dtmp) {
  const index R = kernel_policy::bn_chunk_rows(C);
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
    out.merge_rows(static_cast<double>(r1 - r0), dtmp, dtmp + C);
  }
}

// The per-channel affine map y = x·scale + shift of a normalisation, from float statistics;
// forward and backward both derive it here so that the ReLU6 mask agrees bit for bit. Not
// inlined: one compiled body serves every caller, so that the compiler cannot contract
// `mean·scale` into the subtraction in one caller and not in another.
[[gnu::noinline]] inline void bn_affine(index C, const float* gamma, const float* beta, const float* mean, const float* inv_std,
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
  for (index r = b; r < e; ++r) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    for (index c = 0; c < C; c += lanes) {
      const int nl = block_lanes(C, c);
      vfloat v;
      if constexpr (Ep == bn_epilogue::relu6) v = vbn_relu6(vld(xr + c, nl), vld(scale + c, nl), vld(shift + c, nl));
      else v = vaffine(vld(xr + c, nl), vld(scale + c, nl), vld(shift + c, nl));
      if constexpr (Ep == bn_epilogue::add) v += vld(residual + r * C + c, nl);
      vst(yr + c, v, nl);
    }
  }
}

inline void bn_apply(int threads, index rows, index C, const float* x, const float* scale, const float* shift,
                     bn_epilogue ep, const float* residual, float* y) {
  parallel_for(threads, rows, kernel_policy::bn_apply_min_rows, [&](index b, index e, int) {
    if (ep == bn_epilogue::relu6) bn_apply_rows<bn_epilogue::relu6>(b, e, C, x, scale, shift, residual, y);
    else if (ep == bn_epilogue::add) bn_apply_rows<bn_epilogue::add>(b, e, C, x, scale, shift, residual, y);
    else bn_apply_rows<bn_epilogue::none>(b, e, C, x, scale, shift, residual, y);
  });
}

inline void bn_forward_train(int threads, scratch& ws, const batch_norm_desc& d, const bn_ptrs& t,
                             const float* x, float* y, double factor, bn_epilogue ep, const float* residual) {
  const index C = d.channels, m = d.rows;
  std::vector<channel_moments> parts_moments(static_cast<std::size_t>(threads), channel_moments(C));
  std::vector<double> dtmp(static_cast<std::size_t>(threads) * 2 * static_cast<std::size_t>(C));
  const int parts = parallel_for(threads, m, kernel_policy::bn_sum_min_rows, [&](index b, index e, int th) {
    chunked_moments(x, b, e, C, parts_moments[static_cast<std::size_t>(th)], ws.get(th, slot_x, 2 * C),
                    dtmp.data() + static_cast<std::size_t>(th) * 2 * static_cast<std::size_t>(C));
  });
  channel_moments total(C);
  for (int i = 0; i < parts; ++i) total.merge_rows(parts_moments[static_cast<std::size_t>(i)]);
  const double unbias = m > 1 ? static_cast<double>(m) / static_cast<double>(m - 1) : 1.0;
  for (index c = 0; c < C; ++c) {
    const auto i = static_cast<std::size_t>(c);
    const double var = m > 0 ? total.m2[i] / static_cast<double>(m) : 0.0;
    t.saved_mean[c] = static_cast<float>(total.mean[i]);
    t.saved_inv_std[c] = static_cast<float>(1.0 / std::sqrt(var + d.epsilon));
    t.running_mean[c] = static_cast<float>((1 - factor) * t.running_mean[c] + factor * total.mean[i]);
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

// The per-thread double sums of a batch norm's backward, s1 = Σ g and s2 = Σ g·(x − mean) per
// channel, laid out [2][threads][C]; reduce() adds them in thread order into thread 0's rows.
class bn_grad_sums {
 public:
  bn_grad_sums(int threads, index C)
      : C_(static_cast<std::size_t>(C)), T_(static_cast<std::size_t>(threads)), s_(2 * T_ * C_, 0.0) {}
  double* s1(int thread) noexcept { return s_.data() + static_cast<std::size_t>(thread) * C_; }
  double* s2(int thread) noexcept { return s_.data() + (T_ + static_cast<std::size_t>(thread)) * C_; }
  void reduce(int parts) noexcept {
    for (double* s : {s1(0), s2(0)})
      for (int t = 1; t < parts; ++t)
        for (std::size_t c = 0; c < C_; ++c) s[c] += s[static_cast<std::size_t>(t) * C_ + c];
  }
  void clear() noexcept { std::fill(s_.begin(), s_.end(), 0.0); }

 private:
  std::size_t C_, T_;
  std::vector<double> s_;
};

// The reduced sums (in thread 0's rows) over m samples → the gradients of γ and β, and the map
// dx = A·g + B·(x − mean) + K of the backward.
inline void bn_finalize_backward(index C, double m, bn_grad_sums& sums, const bn_ptrs& t, float* A, float* B,
                                 float* K) {
  const double* s1 = sums.s1(0);
  const double* s2 = sums.s2(0);
  for (index c = 0; c < C; ++c) {
    const double inv_std = t.saved_inv_std[c];
    const double dgamma = s2[c] * inv_std, dbeta = s1[c];
    t.grad_gamma[c] = static_cast<float>(dgamma);
    t.grad_beta[c] = static_cast<float>(dbeta);
    const double a = static_cast<double>(t.gamma[c]) * inv_std;
    A[c] = static_cast<float>(a);
    B[c] = static_cast<float>(m > 0 ? -a * inv_std * dgamma / m : 0.0);
    K[c] = static_cast<float>(m > 0 ? -a * dbeta / m : 0.0);
  }
}

// The sums of a batch norm's backward over x[rows][C] and dy (masked by the ReLU6 that followed,
// whose forward map scale/shift is given, with Relu6), in chunks per thread, then the map
// A, B, K and the gradients of γ and β.
template <bool Relu6>
void bn_backward_map(int threads, index rows, index C, const float* x, const float* dy, const bn_ptrs& t,
                     const float* scale, const float* shift, const float* mean, float* A, float* B, float* K) {
  bn_grad_sums sums(threads, C);
  const index R = kernel_policy::bn_chunk_rows(C);
  const int parts = parallel_for(threads, rows, kernel_policy::bn_sum_min_rows, [&](index b, index e, int th) {
    for (index r0 = b; r0 < e; r0 += R)
      bn_backward_sums<Relu6>(r0, std::min(e, r0 + R), C, x, dy, scale, shift, mean, sums.s1(th), sums.s2(th));
  });
  sums.reduce(parts);
  bn_finalize_backward(C, static_cast<double>(rows), sums, t, A, B, K);
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
  std::vector<float> coef(static_cast<std::size_t>(3 * C));
  float* A = coef.data();
  float* Bc = coef.data() + C;
  float* Kc = coef.data() + 2 * C;
  if (relu6) bn_backward_map<true>(threads, m, C, x, dy, t, scale, shift, mean, A, Bc, Kc);
  else bn_backward_map<false>(threads, m, C, x, dy, t, scale, shift, mean, A, Bc, Kc);
  // Pass 2.
  parallel_for(threads, m, kernel_policy::bn_apply_min_rows, [&](index b, index e, int) {
    if (relu6) bn_backward_apply<true>(b, e, C, x, dy, scale, shift, mean, A, Bc, Kc, dx);
    else bn_backward_apply<false>(b, e, C, x, dy, scale, shift, mean, A, Bc, Kc, dx);
  });
}

}  // namespace pcnas::backend::eigen::detail
