// The Eigen backend's fused blocks: the MBConv, the stem (conv + BN + ReLU6) and the head up to
// its pooled features. Fused, an MBConv reads and writes each of its two hidden-size
// tensors about six times per training step instead of thirteen or fourteen:
//   forward   z1 = x·W1 with its BN statistics taken per row block while in cache; the
//             depthwise reads z1 through BN1 + ReLU6 while packing (a1 is never stored) and
//             takes z2's statistics per work item; the projection reads z2 through BN2 + ReLU6
//             per row block (a2 is never stored).
//   backward  per row block of the projection: dz3 from dy, a2 from z2, dW3, da2 = dz3·W3ᵀ,
//             masked and summed for BN2 in cache; the depthwise packs its dy through BN2's
//             backward and masks and sums its dx for BN1 per work item; the expansion applies
//             BN1's backward per row block before its two GEMMs.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen/batch_norm.hpp>
#include <pcnas/backend/eigen/conv2d.hpp>
#include <pcnas/backend/eigen/depthwise.hpp>
#include <pcnas/backend/eigen/gemm.hpp>
#include <pcnas/backend/eigen/ops.hpp>
#include <pcnas/backend/eigen/parallel.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace pcnas::backend::eigen::detail {

struct mbconv_ptrs {
  const float* expand_w;  // null when the block does not expand
  float* expand_g;
  bn_ptrs expand_bn;
  const float* depthwise_w;
  float* depthwise_g;
  bn_ptrs depthwise_bn;
  const float* project_w;
  float* project_g;
  bn_ptrs project_bn;
};

// Per-channel float arrays padded to whole vector blocks (plus one), so that vector loads at any
// block start are in bounds.
inline std::vector<float> padded_channels(index C) {
  return std::vector<float>(static_cast<std::size_t>((C + lanes - 1) / lanes * lanes + lanes), 0.0f);
}

// Batch statistics → saved statistics, running statistics, and the affine map of the forward.
inline void bn_finalize_forward(const channel_moments& mo, index C, const bn_ptrs& t, double eps, double factor,
                                float* scale, float* shift) {
  for (index c = 0; c < C; ++c) {
    const double m = mo.n[static_cast<std::size_t>(c)];
    const double var = m > 0 ? mo.m2[static_cast<std::size_t>(c)] / m : 0.0;
    const double unbiased = m > 1 ? var * m / (m - 1) : var;
    t.saved_mean[c] = static_cast<float>(mo.mean[static_cast<std::size_t>(c)]);
    t.saved_inv_std[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
    t.running_mean[c] = static_cast<float>((1 - factor) * t.running_mean[c] + factor * mo.mean[static_cast<std::size_t>(c)]);
    t.running_var[c] = static_cast<float>((1 - factor) * t.running_var[c] + factor * unbiased);
  }
  bn_affine(C, t.gamma, t.beta, t.saved_mean, t.saved_inv_std, scale, shift);
}

inline void bn_running_affine(index C, const bn_ptrs& t, double eps, float* scale, float* shift) {
  for (index c = 0; c < C; ++c) {
    const double sc = static_cast<double>(t.gamma[c]) / std::sqrt(static_cast<double>(t.running_var[c]) + eps);
    scale[c] = static_cast<float>(sc);
    shift[c] = static_cast<float>(static_cast<double>(t.beta[c]) - static_cast<double>(t.running_mean[c]) * sc);
  }
}

// Rows per GEMM block: kernel_policy::gemm_block_rows.
inline index gemm_block_rows(index K, index N) { return kernel_policy::gemm_block_rows(K, N); }

// dst[r][c] = A·g + B·(z − mean) + K over n rows of C channels (all arrays row-contiguous).
inline void bn_grad_rows(index n, index C, const float* g, const float* z, const float* A, const float* B,
                         const float* K, const float* mean, float* dst) {
  for (index r = 0; r < n; ++r)
    for (index c = 0; c < C; c += lanes) {
      const int nl = block_lanes(C, c);
      vst(dst + r * C + c,
          vld(A + c, nl) * vld(g + r * C + c, nl) + vld(B + c, nl) * (vld(z + r * C + c, nl) - vld(mean + c, nl)) +
              vld(K + c, nl),
          nl);
    }
}

// z = T(x)·W over `rows` rows in blocks per thread, T the identity or relu6(x·scale + shift);
// with `total`, the output's per-channel moments.
template <bool Prologue>
void pw_forward_blocks(int threads, scratch& ws, index rows, index K, index N, const float* x, const float* scale,
                       const float* shift, const float* w, float* z, channel_moments* total) {
  const eigen_single_thread one;
  const const_matrix_map W(w, K, N);
  const index RB = gemm_block_rows(K, N);
  std::vector<channel_moments> parts(total != nullptr ? static_cast<std::size_t>(threads) : 0, channel_moments(N));
  std::vector<double> dtmp(static_cast<std::size_t>(threads) * 2 * static_cast<std::size_t>(N));
  const int used = parallel_for(threads, rows, gemm_min_rows, [&](index b, index e, int t) {
    float* blk = Prologue ? ws.get(t, slot_x, RB * K) : nullptr;
    float* tmp = total != nullptr ? ws.get(t, slot_dy, 2 * N) : nullptr;
    for (index r0 = b; r0 < e; r0 += RB) {
      const index r1 = std::min(e, r0 + RB), n = r1 - r0;
      const float* src = x + r0 * K;
      if constexpr (Prologue) {
        bn_apply_rows<bn_epilogue::relu6>(0, n, K, src, scale, shift, nullptr, blk);
        src = blk;
      }
      if (direct_gemm_fits(K, N)) direct_gemm(n, K, N, src, w, z + r0 * N);
      else matrix_map(z + r0 * N, n, N).noalias() = const_matrix_map(src, n, K) * W;
      if (total != nullptr)
        chunked_moments(z, r0, r1, N, parts[static_cast<std::size_t>(t)], tmp,
                        dtmp.data() + static_cast<std::size_t>(t) * 2 * static_cast<std::size_t>(N));
    }
  });
  if (total != nullptr)
    for (int t = 0; t < used; ++t) total->merge(parts[static_cast<std::size_t>(t)]);
}

// Sums a [parts][size] set of per-thread partials, the first of which is `first`, into out.
inline void sum_partials(scratch& ws, int slot, int parts, index size, float* out) {
  const float* first = ws.get(0, slot, size);
  std::copy(first, first + size, out);
  for (int t = 1; t < parts; ++t) {
    const float* p = ws.get(t, slot, size);
    for (index i = 0; i < size; ++i) out[i] += p[i];
  }
}

// The projection's backward, per row block: dz3 = BN3-backward(dy), a2 = relu6(bn2(z2)),
// dW3 += a2ᵀ·dz3, g2 = mask(a2)·(dz3·W3ᵀ), and BN2's sums s1 += Σ g2, s2 += Σ g2·(z2 − mean2).
struct project_backward_args {
  index rows, hidden, out;
  const float* dy;
  const float* z3;
  const float *A3, *B3, *K3, *mean3;
  const float* z2;
  const float *scale2, *shift2, *mean2;
  const float* w3;
  float* g2;
  bn_grad_sums* sums;  // BN2's, per thread
  float* dw3;
};

inline void project_backward_blocks(int threads, scratch& ws, const project_backward_args& a) {
  const eigen_single_thread one;
  const index Ch = a.hidden, Co = a.out;
  const const_matrix_map W(a.w3, Ch, Co);
  const index RB = gemm_block_rows(2 * Ch, Co);
  const int parts = parallel_for(threads, a.rows, gemm_min_rows, [&](index b, index e, int t) {
    float* dz = ws.get(t, slot_x, RB * Co);
    float* act = ws.get(t, slot_dy, RB * Ch);
    float* pdw = ws.get(t, slot_dw, Ch * Co);
    matrix_map P(pdw, Ch, Co);
    P.setZero();
    double* s1 = a.sums->s1(t);
    double* s2 = a.sums->s2(t);
    for (index r0 = b; r0 < e; r0 += RB) {
      const index r1 = std::min(e, r0 + RB), n = r1 - r0;
      bn_grad_rows(n, Co, a.dy + r0 * Co, a.z3 + r0 * Co, a.A3, a.B3, a.K3, a.mean3, dz);
      bn_apply_rows<bn_epilogue::relu6>(0, n, Ch, a.z2 + r0 * Ch, a.scale2, a.shift2, nullptr, act);
      const const_matrix_map DZ(dz, n, Co);
      P.noalias() += const_matrix_map(act, n, Ch).transpose() * DZ;
      float* g = a.g2 + r0 * Ch;
      matrix_map(g, n, Ch).noalias() = DZ * W.transpose();
      const float* z = a.z2 + r0 * Ch;
      for (index c = 0; c < Ch; c += lanes) {
        const int nl = block_lanes(Ch, c);
        const vfloat mu = vld(a.mean2 + c, nl);
        vfloat acc1 = vfloat{}, acc2 = vfloat{};
        for (index r = 0; r < n; ++r) {
          const vfloat av = vld(act + r * Ch + c, nl);
          const vfloat gv = relu6_pass(av, vld(g + r * Ch + c, nl));
          vst(g + r * Ch + c, gv, nl);
          acc1 += gv;
          acc2 += gv * (vld(z + r * Ch + c, nl) - mu);
        }
        for (int l = 0; l < nl; ++l) {
          s1[c + l] += acc1[l];
          s2[c + l] += acc2[l];
        }
      }
    }
  });
  sum_partials(ws, slot_dw, parts, Ch * Co, a.dw3);
}

// A 1×1 convolution's backward per row block, given how to produce a block of its output
// gradient dz (`make_dz(r0, n, dz)`): dW += xᵀ·dz, dx = dz·Wᵀ (+ dy when `dy` is set; dx may be
// dy itself).
template <class MakeDz>
void pw_backward_blocks(int threads, scratch& ws, index rows, index Ci, index Ch, const float* x, const float* w,
                        const float* dy, float* dx, float* dw, MakeDz&& make_dz) {
  const eigen_single_thread one;
  const const_matrix_map W(w, Ci, Ch);
  const index RB = gemm_block_rows(Ch, Ci);
  const int parts = parallel_for(threads, rows, gemm_min_rows, [&](index b, index e, int t) {
    float* dz = ws.get(t, slot_x, RB * Ch);
    float* pdw = ws.get(t, slot_dw, Ci * Ch);
    matrix_map P(pdw, Ci, Ch);
    P.setZero();
    for (index r0 = b; r0 < e; r0 += RB) {
      const index r1 = std::min(e, r0 + RB), n = r1 - r0;
      make_dz(r0, n, dz);
      const const_matrix_map DZ(dz, n, Ch);
      P.noalias() += const_matrix_map(x + r0 * Ci, n, Ci).transpose() * DZ;
      matrix_map DX(dx + r0 * Ci, n, Ci);
      if (dy != nullptr) {
        if (dy != dx) std::memcpy(dx + r0 * Ci, dy + r0 * Ci, static_cast<std::size_t>(n * Ci) * sizeof(float));
        DX.noalias() += DZ * W.transpose();
      } else {
        DX.noalias() = DZ * W.transpose();
      }
    }
  });
  sum_partials(ws, slot_dw, parts, Ci * Ch, dw);
}

// The expansion's backward: dz1 = BN1-backward(g1) per row block.
struct expand_backward_args {
  index rows, in, hidden;
  const float* x;
  const float* g1;
  const float* z1;
  const float *A1, *B1, *K1, *mean1;
  const float* w1;
  const float* dy;  // null without the identity
  float* dx;
  float* dw1;
};

inline void expand_backward_blocks(int threads, scratch& ws, const expand_backward_args& a) {
  pw_backward_blocks(threads, ws, a.rows, a.in, a.hidden, a.x, a.w1, a.dy, a.dx, a.dw1, [&](index r0, index n, float* dz) {
    bn_grad_rows(n, a.hidden, a.g1 + r0 * a.hidden, a.z1 + r0 * a.hidden, a.A1, a.B1, a.K1, a.mean1, dz);
  });
}

inline void mbconv_forward(int threads, scratch& ws, const mbconv_desc& d, const mbconv_ptrs& t, bool training,
                           double factor, const float* x, float* z1, float* z2, float* z3, float* y) {
  const index Ci = d.in.c, Ch = d.hidden(), Co = d.out_channels;
  const act_shape hin = d.hidden_in(), hout = d.hidden_out(), out = d.out();
  auto sc1 = padded_channels(Ch), sh1 = padded_channels(Ch), sc2 = padded_channels(Ch), sh2 = padded_channels(Ch);
  auto sc3 = padded_channels(Co), sh3 = padded_channels(Co);
  if (d.expands()) {
    channel_moments m1(Ch);
    pw_forward_blocks<false>(threads, ws, hin.rows(), Ci, Ch, x, nullptr, nullptr, t.expand_w, z1,
                             training ? &m1 : nullptr);
    if (training) bn_finalize_forward(m1, Ch, t.expand_bn, d.epsilon, factor, sc1.data(), sh1.data());
    else bn_running_affine(Ch, t.expand_bn, d.epsilon, sc1.data(), sh1.data());
  }
  std::vector<channel_moments> parts(training ? static_cast<std::size_t>(threads) : 0, channel_moments(Ch));
  channel_moments* stats = training ? parts.data() : nullptr;
  if (d.expands())
    depthwise_forward_run(threads, ws, d.depthwise(), z1, pack_bn_relu6{sc1.data(), sh1.data()}, t.depthwise_w, z2, stats);
  else
    depthwise_forward_run(threads, ws, d.depthwise(), x, pack_copy{}, t.depthwise_w, z2, stats);
  if (training) {
    channel_moments m2(Ch);
    for (const auto& p : parts) m2.merge(p);
    bn_finalize_forward(m2, Ch, t.depthwise_bn, d.epsilon, factor, sc2.data(), sh2.data());
  } else {
    bn_running_affine(Ch, t.depthwise_bn, d.epsilon, sc2.data(), sh2.data());
  }
  channel_moments m3(Co);
  pw_forward_blocks<true>(threads, ws, hout.rows(), Ch, Co, z2, sc2.data(), sh2.data(), t.project_w, z3,
                          training ? &m3 : nullptr);
  if (training) bn_finalize_forward(m3, Co, t.project_bn, d.epsilon, factor, sc3.data(), sh3.data());
  else bn_running_affine(Co, t.project_bn, d.epsilon, sc3.data(), sh3.data());
  bn_apply(threads, out.rows(), Co, z3, sc3.data(), sh3.data(), d.residual() ? bn_epilogue::add : bn_epilogue::none, x, y);
}

inline void mbconv_backward(int threads, scratch& ws, scratch& big, const mbconv_desc& d, const mbconv_ptrs& t,
                            const float* x, const float* z1, const float* z2, const float* z3, const float* dy,
                            float* dx) {
  const index Ch = d.hidden(), Co = d.out_channels;
  const act_shape hin = d.hidden_in(), hout = d.hidden_out(), out = d.out();
  // BN3: sums over dy and z3, then the map dz3 = A3·dy + B3·(z3 − mean3) + K3.
  auto A3 = padded_channels(Co), B3 = padded_channels(Co), K3 = padded_channels(Co), mean3 = padded_channels(Co);
  std::copy(t.project_bn.saved_mean, t.project_bn.saved_mean + Co, mean3.begin());
  bn_backward_map<false>(threads, out.rows(), Co, z3, dy, t.project_bn, nullptr, nullptr, mean3.data(), A3.data(),
                         B3.data(), K3.data());
  // The projection's row blocks: g2 and BN2's sums.
  auto sc2 = padded_channels(Ch), sh2 = padded_channels(Ch), mean2 = padded_channels(Ch);
  bn_affine(Ch, t.depthwise_bn.gamma, t.depthwise_bn.beta, t.depthwise_bn.saved_mean, t.depthwise_bn.saved_inv_std,
            sc2.data(), sh2.data());
  std::copy(t.depthwise_bn.saved_mean, t.depthwise_bn.saved_mean + Ch, mean2.begin());
  float* g2 = big.get(0, big_g2, hout.numel());
  bn_grad_sums sums(threads, Ch);
  project_backward_blocks(threads, ws,
                          {out.rows(), Ch, Co, dy, z3, A3.data(), B3.data(), K3.data(), mean3.data(), z2, sc2.data(),
                           sh2.data(), mean2.data(), t.project_w, g2, &sums, t.project_g});
  sums.reduce(threads);
  auto A2 = padded_channels(Ch), B2 = padded_channels(Ch), K2 = padded_channels(Ch);
  bn_finalize_backward(Ch, static_cast<double>(hout.rows()), sums, t.depthwise_bn, A2.data(), B2.data(), K2.data());
  const pack_bn_grad gtr{z2, A2.data(), B2.data(), K2.data(), mean2.data()};
  if (!d.expands()) {
    depthwise_backward_run(threads, ws, d.depthwise(), x, pack_copy{}, t.depthwise_w, g2, gtr, dx, t.depthwise_g,
                           nullptr);
    if (d.residual()) add(threads, d.in.numel(), dx, dy, dx);
    return;
  }
  // The depthwise, reading a1 = relu6(bn1(z1)) and producing g1 with BN1's sums.
  auto sc1 = padded_channels(Ch), sh1 = padded_channels(Ch), mean1 = padded_channels(Ch);
  bn_affine(Ch, t.expand_bn.gamma, t.expand_bn.beta, t.expand_bn.saved_mean, t.expand_bn.saved_inv_std, sc1.data(),
            sh1.data());
  std::copy(t.expand_bn.saved_mean, t.expand_bn.saved_mean + Ch, mean1.begin());
  float* g1 = big.get(0, big_g1, hin.numel());
  sums.clear();
  const bn_relu6_epilogue ep{z1, mean1.data(), g1, &sums};
  depthwise_backward_run(threads, ws, d.depthwise(), z1, pack_bn_relu6{sc1.data(), sh1.data()}, t.depthwise_w, g2, gtr,
                         nullptr, t.depthwise_g, &ep);
  sums.reduce(threads);
  auto A1 = padded_channels(Ch), B1 = padded_channels(Ch), K1 = padded_channels(Ch);
  bn_finalize_backward(Ch, static_cast<double>(hin.rows()), sums, t.expand_bn, A1.data(), B1.data(), K1.data());
  expand_backward_blocks(threads, ws,
                         {hin.rows(), d.in.c, Ch, x, g1, z1, A1.data(), B1.data(), K1.data(), mean1.data(), t.expand_w,
                          d.residual() ? dy : nullptr, dx, t.expand_g});
}

// --- the stem: conv2d + BN + ReLU6 --------------------------------------------------------------

inline void stem_forward(int threads, scratch& ws, const conv2d_desc& d, double eps, const float* w, const bn_ptrs& bn,
                         bool training, double factor, const float* x, float* z, float* y) {
  const index Co = d.out_channels;
  auto sc = padded_channels(Co), sh = padded_channels(Co);
  if (training) {
    std::vector<channel_moments> parts(static_cast<std::size_t>(threads), channel_moments(Co));
    conv2d_forward_run(threads, ws, d, x, w, z, parts.data());
    channel_moments total(Co);
    for (const auto& p : parts) total.merge(p);
    bn_finalize_forward(total, Co, bn, eps, factor, sc.data(), sh.data());
  } else {
    conv2d_forward_run(threads, ws, d, x, w, z, nullptr);
    bn_running_affine(Co, bn, eps, sc.data(), sh.data());
  }
  bn_apply(threads, d.out().rows(), Co, z, sc.data(), sh.data(), bn_epilogue::relu6, nullptr, y);
}

// BN + ReLU6 backward sums over (z, dy) → the map A, B, K (and the forward affine for the mask).
struct bn_relu6_grad_map {
  std::vector<float> scale, shift, A, B, K, mean;
  explicit bn_relu6_grad_map(index C)
      : scale(padded_channels(C)), shift(padded_channels(C)), A(padded_channels(C)), B(padded_channels(C)),
        K(padded_channels(C)), mean(padded_channels(C)) {}
};

inline void bn_relu6_grad_setup(int threads, index rows, index C, const float* z, const float* dy, const bn_ptrs& bn,
                                bn_relu6_grad_map& g) {
  bn_affine(C, bn.gamma, bn.beta, bn.saved_mean, bn.saved_inv_std, g.scale.data(), g.shift.data());
  std::copy(bn.saved_mean, bn.saved_mean + C, g.mean.begin());
  bn_backward_map<true>(threads, rows, C, z, dy, bn, g.scale.data(), g.shift.data(), g.mean.data(), g.A.data(),
                        g.B.data(), g.K.data());
}

inline void stem_backward(int threads, scratch& ws, scratch& big, const conv2d_desc& d, const float* w, float* dw,
                          const bn_ptrs& bn, const float* x, const float* z, const float* dy, float* dx) {
  const act_shape out = d.out();
  const index Co = out.c;
  bn_relu6_grad_map g(Co);
  bn_relu6_grad_setup(threads, out.rows(), Co, z, dy, bn, g);
  const conv_grad_transform tr{z, g.scale.data(), g.shift.data(), g.A.data(), g.B.data(), g.K.data(), g.mean.data()};
  conv2d_backward_filter_run(threads, ws, d, x, dy, &tr, dw);
  if (dx != nullptr) {
    // Rare (the stem's input is the image): materialise dz, then the plain data gradient.
    float* dz = big.get(0, big_g2, out.numel());
    parallel_for(threads, out.rows(), kernel_policy::bn_apply_min_rows, [&](index b, index e, int) {
      for (index r = b; r < e; ++r)
        for (index c = 0; c < Co; c += lanes) {
          const int nl = block_lanes(Co, c);
          const index at = r * Co + c;
          const vfloat zv = vld(z + at, nl);
          const vfloat gv = relu6_pass(zv, vld(g.scale.data() + c, nl), vld(g.shift.data() + c, nl), vld(dy + at, nl));
          vst(dz + at,
              vld(g.A.data() + c, nl) * gv + vld(g.B.data() + c, nl) * (zv - vld(g.mean.data() + c, nl)) +
                  vld(g.K.data() + c, nl),
              nl);
        }
    });
    conv2d_backward_data(threads, d, dz, w, dx);
  }
}

// --- the head: 1×1 conv + BN + ReLU6 + global average pooling -----------------------------------

inline void head_forward(int threads, scratch& ws, const head_desc& d, const float* w, const bn_ptrs& bn, bool training,
                         double factor, const float* x, float* z, float* pooled) {
  const index F = d.features, Ci = d.in.c, hw = d.in.h * d.in.w;
  auto sc = padded_channels(F), sh = padded_channels(F);
  if (training) {
    channel_moments m(F);
    pw_forward_blocks<false>(threads, ws, d.in.rows(), Ci, F, x, nullptr, nullptr, w, z, &m);
    bn_finalize_forward(m, F, bn, d.epsilon, factor, sc.data(), sh.data());
  } else {
    pw_forward_blocks<false>(threads, ws, d.in.rows(), Ci, F, x, nullptr, nullptr, w, z, nullptr);
    bn_running_affine(F, bn, d.epsilon, sc.data(), sh.data());
  }
  const float inv = 1.0f / static_cast<float>(hw);
  parallel_for(threads, d.in.n, kernel_policy::head_min_images, [&](index b, index e, int) {
    for (index n = b; n < e; ++n) {
      float* pn = pooled + n * F;
      for (index c = 0; c < F; c += lanes) {
        const int nl = block_lanes(F, c);
        const vfloat s = vld(sc.data() + c, nl), t = vld(sh.data() + c, nl);
        vfloat acc = vfloat{};
        for (index p = 0; p < hw; ++p) acc += vbn_relu6(vld(z + (n * hw + p) * F + c, nl), s, t);
        vst(pn + c, acc * inv, nl);
      }
    }
  });
}

inline void head_backward(int threads, scratch& ws, const head_desc& d, const float* w, float* dw, const bn_ptrs& bn,
                          const float* x, const float* z, const float* dpooled, float* dx) {
  const index F = d.features, Ci = d.in.c, hw = d.in.h * d.in.w, rows = d.in.rows();
  const float inv = 1.0f / static_cast<float>(hw);
  bn_relu6_grad_map g(F);
  bn_affine(F, bn.gamma, bn.beta, bn.saved_mean, bn.saved_inv_std, g.scale.data(), g.shift.data());
  std::copy(bn.saved_mean, bn.saved_mean + F, g.mean.begin());
  // The gradient at pixel (n, p) before the ReLU6 is dpooled[n]/hw where the ReLU6 passed.
  bn_grad_sums sums(threads, F);
  const int parts = parallel_for(threads, d.in.n, kernel_policy::head_min_images, [&](index b, index e, int th) {
    double* s1 = sums.s1(th);
    double* s2 = sums.s2(th);
    for (index n = b; n < e; ++n)
      for (index c = 0; c < F; c += lanes) {
        const int nl = block_lanes(F, c);
        const vfloat gp = vld(dpooled + n * F + c, nl) * inv, sc = vld(g.scale.data() + c, nl),
                     sh = vld(g.shift.data() + c, nl), mu = vld(g.mean.data() + c, nl);
        vfloat a1 = vfloat{}, a2 = vfloat{};
        for (index p = 0; p < hw; ++p) {
          const vfloat zv = vld(z + (n * hw + p) * F + c, nl);
          const vfloat gv = relu6_pass(zv, sc, sh, gp);
          a1 += gv;
          a2 += gv * (zv - mu);
        }
        for (int l = 0; l < nl; ++l) {
          s1[c + l] += a1[l];
          s2[c + l] += a2[l];
        }
      }
  });
  sums.reduce(parts);
  bn_finalize_backward(F, static_cast<double>(rows), sums, bn, g.A.data(), g.B.data(), g.K.data());
  pw_backward_blocks(threads, ws, rows, Ci, F, x, w, nullptr, dx, dw, [&](index r0, index n, float* dz) {
    for (index r = 0; r < n; ++r) {
      const index row = r0 + r;
      const float* gp = dpooled + (row / hw) * F;
      const float* zr = z + row * F;
      float* dr = dz + r * F;
      for (index c = 0; c < F; c += lanes) {
        const int nl = block_lanes(F, c);
        const vfloat zv = vld(zr + c, nl);
        const vfloat gv = relu6_pass(zv, vld(g.scale.data() + c, nl), vld(g.shift.data() + c, nl), vld(gp + c, nl) * inv);
        vst(dr + c,
            vld(g.A.data() + c, nl) * gv + vld(g.B.data() + c, nl) * (zv - vld(g.mean.data() + c, nl)) +
                vld(g.K.data() + c, nl),
            nl);
      }
    }
  });
}

}  // namespace pcnas::backend::eigen::detail
