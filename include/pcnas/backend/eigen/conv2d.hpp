// Dense k×k convolution of the Eigen backend, for the stem: few input channels, so direct loops
// over a zero-padded copy of each image, vectorised over blocks of output channels with T output
// columns per weight load, beat an im2col GEMM.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen/depthwise.hpp>
#include <pcnas/backend/eigen/parallel.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

namespace pcnas::backend::eigen::detail {

// x plane (H×W×Ci) → dst[(H + 2p)·(W + 2p)·Ci], zero border.
inline void pad_plane(const float* x, index H, index W, index Ci, index p, float* dst) {
  const index Wp = W + 2 * p;
  std::memset(dst, 0, static_cast<std::size_t>((H + 2 * p) * Wp * Ci) * sizeof(float));
  for (index h = 0; h < H; ++h)
    std::memcpy(dst + ((h + p) * Wp + p) * Ci, x + h * W * Ci, static_cast<std::size_t>(W * Ci) * sizeof(float));
}

// Weights [tap][ci][co] → [co block][tap][ci][lanes], zero beyond Co.
inline void pack_conv_weights(const float* w, index taps, index Ci, index Co, float* dst) {
  const index blocks = (Co + lanes - 1) / lanes;
  for (index cb = 0; cb < blocks; ++cb)
    for (index t = 0; t < taps; ++t)
      for (index ci = 0; ci < Ci; ++ci)
        for (int l = 0; l < lanes; ++l) {
          const index co = cb * lanes + l;
          dst[((cb * taps + t) * Ci + ci) * lanes + l] = co < Co ? w[(t * Ci + ci) * Co + co] : 0.0f;
        }
}

template <int T>
[[gnu::always_inline]] inline void conv2d_chunk(const float* xp, index Wp, index Ci, index K, index S, const float* w,
                                                vfloat* acc) {
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = vfloat{};
  for (index kh = 0; kh < K; ++kh)
    for (index kw = 0; kw < K; ++kw) {
      const float* xr = xp + (kh * Wp + kw) * Ci;
      const float* wt = w + (kh * K + kw) * Ci * lanes;
      for (index ci = 0; ci < Ci; ++ci) {
        const vfloat wv = vload(wt + ci * lanes);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] += xr[t * S * Ci + ci] * wv;
      }
    }
}

// One output row of a block of output channels; with BnRelu6 it stores relu6(conv·sc + sh).
template <bool BnRelu6>
struct conv2d_row {
  template <int TT>
  static void run(const float* xrow, index Wp, index Ci, index K, index S, const float* wb, index Wo, float* yrow,
                  index Co, int valid, vfloat sc, vfloat sh) {
    const auto post = [&](vfloat v) { return BnRelu6 ? vbn_relu6(v, sc, sh) : v; };
    index ow = 0;
    for (; ow + TT <= Wo; ow += TT) {
      vfloat acc[TT];
      conv2d_chunk<TT>(xrow + ow * S * Ci, Wp, Ci, K, S, wb, acc);
      for (int i = 0; i < TT; ++i) store_lanes(yrow + (ow + i) * Co, post(acc[i]), valid);
    }
    for (; ow < Wo; ++ow) {
      vfloat acc[1];
      conv2d_chunk<1>(xrow + ow * S * Ci, Wp, Ci, K, S, wb, acc);
      store_lanes(yrow + ow * Co, post(acc[0]), valid);
    }
  }
};

// y = conv(x); with `stats`, each thread's output moments go to stats[thread]; with `post_scale`
// and `post_shift` (padded per-channel arrays), y = relu6(conv(x)·scale + shift) instead: a batch
// norm with known statistics and its ReLU6, applied as each value is stored.
inline void conv2d_forward_run(int threads, scratch& ws, const conv2d_desc& d, const float* x, const float* w,
                               float* y, channel_moments* stats, const float* post_scale = nullptr,
                               const float* post_shift = nullptr) {
  const act_shape in = d.in, out = d.out();
  const index K = d.kernel, S = d.stride, p = d.pad, Ci = in.c, Co = out.c;
  const index blocks = (Co + lanes - 1) / lanes;
  const index Hp = in.h + 2 * p, Wp = in.w + 2 * p;
  float* wpk = ws.get(0, slot_w, blocks * K * K * Ci * lanes);
  pack_conv_weights(w, K * K, Ci, Co, wpk);
  const int T = chunk_width(out.w);
  parallel_for(threads, in.n, kernel_policy::conv_min_items, [&](index b, index e, int t) {
    float* xp = ws.get(t, slot_x, Hp * Wp * Ci);
    for (index n = b; n < e; ++n) {
      pad_plane(x + n * in.h * in.w * Ci, in.h, in.w, Ci, p, xp);
      float* yn = y + n * out.h * out.w * Co;
      for (index cb = 0; cb < blocks; ++cb) {
        const float* wb = wpk + cb * K * K * Ci * lanes;
        const int valid = static_cast<int>(std::min<index>(lanes, Co - cb * lanes));
        for (index oh = 0; oh < out.h; ++oh) {
          const float* xrow = xp + oh * S * Wp * Ci;
          float* yrow = yn + oh * out.w * Co + cb * lanes;
          if (post_scale != nullptr)
            with_chunk<conv2d_row<true>>(T, xrow, Wp, Ci, K, S, wb, out.w, yrow, Co, valid,
                                         vload(post_scale + cb * lanes), vload(post_shift + cb * lanes));
          else
            with_chunk<conv2d_row<false>>(T, xrow, Wp, Ci, K, S, wb, out.w, yrow, Co, valid, vfloat{}, vfloat{});
        }
        if (stats != nullptr) block_moments(yn + cb * lanes, out.h * out.w, Co, cb * lanes, valid, stats[t]);
      }
    }
  });
}

inline void conv2d_forward(int threads, scratch& ws, const conv2d_desc& d, const float* x, const float* w, float* y) {
  conv2d_forward_run(threads, ws, d, x, w, y, nullptr);
}

// dW[tap][ci][co] = Σ xpad[oh·S + kh][ow·S + kw][ci] · g[oh][ow][co], where g is dy, or, with
// `gtr`, the gradient before a BN: A·dy + B·(z − mean) + K with dy masked by the ReLU6 that
// followed (the mask recomputed from z, scale and shift).
struct conv_grad_transform {
  const float* z;
  const float *scale, *shift;  // the BN's forward affine map, for the ReLU6 mask
  const float *A, *B, *K, *mean;
};

// One image and block of output channels: pb[tap][ci][lanes] += Σ_pixels x · g. With the kernel
// size and input channels fixed at compile time (KT > 0) the K·K·Ci accumulators stay in
// registers across the image; otherwise they are updated in memory.
template <int KT, int CI>
void filter_image_block(const float* xp, index Wp, index S, index K_rt, index Ci_rt, index Ho, index Wo,
                        const float* dy, const conv_grad_transform* gtr, index first_pixel, index Co, index c0,
                        int valid, float* pb) {
  const index K = KT > 0 ? KT : K_rt;
  const index Ci = KT > 0 ? CI : Ci_rt;
  [[maybe_unused]] vfloat sc{}, sh{}, A{}, B{}, Kc{}, mu{};
  if (gtr != nullptr) {
    sc = vload(gtr->scale + c0);
    sh = vload(gtr->shift + c0);
    A = vload(gtr->A + c0);
    B = vload(gtr->B + c0);
    Kc = vload(gtr->K + c0);
    mu = vload(gtr->mean + c0);
  }
  constexpr int NT = KT > 0 ? KT * KT * CI : 1;
  vfloat acc[NT];
  for (int i = 0; i < NT; ++i) acc[i] = vfloat{};
  for (index oh = 0; oh < Ho; ++oh)
    for (index ow = 0; ow < Wo; ++ow) {
      const index at = (first_pixel + oh * Wo + ow) * Co + c0;
      vfloat g = vld(dy + at, valid);
      if (gtr != nullptr) {
        const vfloat z = vld(gtr->z + at, valid);
        g = relu6_pass(z, sc, sh, g);
        g = A * g + B * (z - mu) + Kc;
      }
      const float* xo = xp + (oh * S * Wp + ow * S) * Ci;
      if constexpr (KT > 0) {
#pragma GCC unroll 7
        for (int kh = 0; kh < KT; ++kh)
#pragma GCC unroll 7
          for (int kw = 0; kw < KT; ++kw)
#pragma GCC unroll 4
            for (int ci = 0; ci < CI; ++ci) acc[(kh * KT + kw) * CI + ci] += xo[(kh * Wp + kw) * CI + ci] * g;
      } else {
        for (index kh = 0; kh < K; ++kh)
          for (index kw = 0; kw < K; ++kw) {
            const float* xr = xo + (kh * Wp + kw) * Ci;
            float* pt = pb + (kh * K + kw) * Ci * lanes;
            for (index ci = 0; ci < Ci; ++ci) vstore(pt + ci * lanes, vload(pt + ci * lanes) + xr[ci] * g);
          }
      }
    }
  if constexpr (KT > 0)
    for (int i = 0; i < NT; ++i) vstore(pb + i * lanes, vload(pb + i * lanes) + acc[i]);
}

inline void conv2d_backward_filter_run(int threads, scratch& ws, const conv2d_desc& d, const float* x,
                                       const float* dy, const conv_grad_transform* gtr, float* dw) {
  const act_shape in = d.in, out = d.out();
  const index K = d.kernel, S = d.stride, p = d.pad, Ci = in.c, Co = out.c;
  const index taps = K * K;
  const index blocks = (Co + lanes - 1) / lanes;
  const index Hp = in.h + 2 * p, Wp = in.w + 2 * p;
  const index psize = blocks * taps * Ci * lanes;
  const int parts = parallel_for(threads, in.n, kernel_policy::conv_min_items, [&](index b, index e, int t) {
    float* xp = ws.get(t, slot_x, Hp * Wp * Ci);
    float* part = ws.get(t, slot_dw, psize);
    std::memset(part, 0, static_cast<std::size_t>(psize) * sizeof(float));
    for (index n = b; n < e; ++n) {
      pad_plane(x + n * in.h * in.w * Ci, in.h, in.w, Ci, p, xp);
      for (index cb = 0; cb < blocks; ++cb) {
        const index c0 = cb * lanes;
        const int valid = block_lanes(Co, c0);
        float* pb = part + cb * taps * Ci * lanes;
        const index first = n * out.h * out.w;
        if (K == 3 && Ci == 1)
          filter_image_block<3, 1>(xp, Wp, S, K, Ci, out.h, out.w, dy, gtr, first, Co, c0, valid, pb);
        else if (K == 3 && Ci == 3)
          filter_image_block<3, 3>(xp, Wp, S, K, Ci, out.h, out.w, dy, gtr, first, Co, c0, valid, pb);
        else
          filter_image_block<0, 0>(xp, Wp, S, K, Ci, out.h, out.w, dy, gtr, first, Co, c0, valid, pb);
      }
    }
  });
  std::vector<const float*> part(static_cast<std::size_t>(parts));
  for (int th = 0; th < parts; ++th) part[static_cast<std::size_t>(th)] = ws.get(th, slot_dw, psize);
  for (index t = 0; t < taps; ++t)
    for (index ci = 0; ci < Ci; ++ci)
      for (index co = 0; co < Co; ++co) {
        const index at = (((co / lanes) * taps + t) * Ci + ci) * lanes + co % lanes;
        float s = 0.0f;
        for (int th = 0; th < parts; ++th) s += part[static_cast<std::size_t>(th)][at];
        dw[(t * Ci + ci) * Co + co] = s;
      }
}

inline void conv2d_backward_filter(int threads, scratch& ws, const conv2d_desc& d, const float* x, const float* dy,
                                   float* dw) {
  conv2d_backward_filter_run(threads, ws, d, x, dy, nullptr, dw);
}

inline void conv2d_backward_data(int threads, const conv2d_desc& d, const float* dy, const float* w, float* dx) {
  const act_shape in = d.in, out = d.out();
  const index K = d.kernel, Co = out.c, Ci = in.c;
  parallel_for(threads, in.n * in.h, kernel_policy::conv_data_min_rows, [&](index b, index e, int) {
    for (index row = b; row < e; ++row) {
      const index n = row / in.h, ih = row % in.h;
      for (index iw = 0; iw < in.w; ++iw) {
        float* dxp = dx + ((n * in.h + ih) * in.w + iw) * Ci;
        std::fill(dxp, dxp + Ci, 0.0f);
        for (index kh = 0; kh < K; ++kh) {
          const index a = ih + d.pad - kh;
          if (a < 0 || a % d.stride != 0 || a / d.stride >= out.h) continue;
          for (index kw = 0; kw < K; ++kw) {
            const index c = iw + d.pad - kw;
            if (c < 0 || c % d.stride != 0 || c / d.stride >= out.w) continue;
            const float* g = dy + ((n * out.h + a / d.stride) * out.w + c / d.stride) * Co;
            const float* wp = w + (kh * K + kw) * Ci * Co;
            for (index ci = 0; ci < Ci; ++ci) {
              float s = 0.0f;
              for (index co = 0; co < Co; ++co) s += g[co] * wp[ci * Co + co];
              dxp[ci] += s;
            }
          }
        }
      }
    }
  });
}

}  // namespace pcnas::backend::eigen::detail
