// Dense k×k convolution of the Eigen backend (the stem: few input channels, so direct loops
// vectorised over the output channels beat an im2col GEMM).
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen/parallel.hpp>

#include <algorithm>
#include <cstring>

namespace pcnas::backend::eigen::detail {

inline void conv2d_forward(int threads, scratch& ws, const conv2d_desc& d, const float* x, const float* w, float* y) {
  const act_shape in = d.in, out = d.out();
  const index K = d.kernel, Co = out.c, Ci = in.c;
  parallel_for(threads, out.n * out.h, 4, [&](index b, index e, int t) {
    float* acc = ws.get(t, 0, Co);
    for (index row = b; row < e; ++row) {
      const index n = row / out.h, oh = row % out.h;
      for (index ow = 0; ow < out.w; ++ow) {
        std::fill(acc, acc + Co, 0.0f);
        for (index kh = 0; kh < K; ++kh) {
          const index ih = oh * d.stride - d.pad + kh;
          if (ih < 0 || ih >= in.h) continue;
          for (index kw = 0; kw < K; ++kw) {
            const index iw = ow * d.stride - d.pad + kw;
            if (iw < 0 || iw >= in.w) continue;
            const float* xp = x + ((n * in.h + ih) * in.w + iw) * Ci;
            const float* wp = w + (kh * K + kw) * Ci * Co;
            for (index ci = 0; ci < Ci; ++ci) {
              const float xv = xp[ci];
              const float* wr = wp + ci * Co;
              for (index co = 0; co < Co; ++co) acc[co] += xv * wr[co];
            }
          }
        }
        std::memcpy(y + ((n * out.h + oh) * out.w + ow) * Co, acc, static_cast<std::size_t>(Co) * sizeof(float));
      }
    }
  });
}

inline void conv2d_backward_filter(int threads, scratch& ws, const conv2d_desc& d, const float* x, const float* dy,
                                   float* dw) {
  const act_shape in = d.in, out = d.out();
  const index K = d.kernel, Co = out.c, Ci = in.c;
  const index wsize = d.weight_size();
  const int parts = parallel_for(threads, out.n * out.h, 4, [&](index b, index e, int t) {
    float* part = ws.get(t, 0, wsize);
    std::fill(part, part + wsize, 0.0f);
    for (index row = b; row < e; ++row) {
      const index n = row / out.h, oh = row % out.h;
      for (index ow = 0; ow < out.w; ++ow) {
        const float* g = dy + ((n * out.h + oh) * out.w + ow) * Co;
        for (index kh = 0; kh < K; ++kh) {
          const index ih = oh * d.stride - d.pad + kh;
          if (ih < 0 || ih >= in.h) continue;
          for (index kw = 0; kw < K; ++kw) {
            const index iw = ow * d.stride - d.pad + kw;
            if (iw < 0 || iw >= in.w) continue;
            const float* xp = x + ((n * in.h + ih) * in.w + iw) * Ci;
            float* pp = part + (kh * K + kw) * Ci * Co;
            for (index ci = 0; ci < Ci; ++ci) {
              const float xv = xp[ci];
              float* pr = pp + ci * Co;
              for (index co = 0; co < Co; ++co) pr[co] += xv * g[co];
            }
          }
        }
      }
    }
  });
  const float* first = ws.get(0, 0, wsize);
  std::copy(first, first + wsize, dw);
  for (int t = 1; t < parts; ++t) {
    const float* p = ws.get(t, 0, wsize);
    for (index i = 0; i < wsize; ++i) dw[i] += p[i];
  }
}

inline void conv2d_backward_data(int threads, const conv2d_desc& d, const float* dy, const float* w, float* dx) {
  const act_shape in = d.in, out = d.out();
  const index K = d.kernel, Co = out.c, Ci = in.c;
  parallel_for(threads, in.n * in.h, 4, [&](index b, index e, int) {
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
