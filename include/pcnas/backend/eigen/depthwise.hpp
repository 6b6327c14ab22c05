// Depthwise k×k convolution of the Eigen backend. The work is split into (image, block of
// `lanes` channels) items; each item copies its plane into a zero-padded, channel-block-major
// buffer that stays in L1/L2, so that the inner loops are plain register-blocked FMAs over
// `lanes` channels with no bounds checks: T output columns share every weight load, and for a
// fixed kernel size the loads of neighbouring taps are shared too. Weight gradients are
// accumulated per thread and summed in thread order.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen/batch_norm.hpp>
#include <pcnas/backend/eigen/parallel.hpp>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

namespace pcnas::backend::eigen::detail {

// How a plane is read into the packed buffer. Coefficient arrays hold one entry per channel,
// padded with zeros to a whole number of `lanes` blocks.
struct pack_copy {};
// relu6(x·scale + shift): the input of a depthwise convolution that follows BN + ReLU6.
struct pack_bn_relu6 {
  const float* scale;
  const float* shift;
};
// A·g + B·(z − mean) + K: the gradient before a batch norm, from the gradient g after it (already
// masked by the ReLU6) and the batch norm's input z, laid out like the source.
struct pack_bn_grad {
  const float* z;
  const float* A;
  const float* B;
  const float* K;
  const float* mean;
};

// Copies channel blocks [cb0, cb1) of the H×W×C NHWC image at src (element offset `plane` of its
// tensor) into dst, block b at dst + (b − cb0)·Hp·Wp·lanes laid out [Hp = H + 2·pad][Wp = W + 2·pad]
// [lanes], applying the transform; lanes past C are zero. The border is left alone: zero it once
// with zero_borders (the interior writes never touch it, so a buffer reused for the same geometry
// keeps it). Row by row, so that each row of the image is read from memory once.
// Zeroes the borders of `count` padded blocks [H + 2·pad][W + 2·pad][lanes].
inline void zero_borders(float* dst, index count, index H, index W, index pad) {
  const index Wp = W + 2 * pad;
  const index Hp = H + 2 * pad;
  for (index i = 0; i < count; ++i) {
    float* b = dst + i * Hp * Wp * lanes;
    std::memset(b, 0, static_cast<std::size_t>(pad * Wp * lanes) * sizeof(float));
    std::memset(b + (pad + H) * Wp * lanes, 0, static_cast<std::size_t>((Hp - pad - H) * Wp * lanes) * sizeof(float));
    for (index h = 0; h < H; ++h) {
      float* row = b + (h + pad) * Wp * lanes;
      std::memset(row, 0, static_cast<std::size_t>(pad * lanes) * sizeof(float));
      std::memset(row + (pad + W) * lanes, 0, static_cast<std::size_t>(pad * lanes) * sizeof(float));
    }
  }
}

template <class Tr>
inline void pack_blocks(const float* src, index plane, index H, index W, index C, index cb0, index cb1, index pad,
                        float* dst, const Tr& tr) {
  const index Wp = W + 2 * pad;
  const index Hp = H + 2 * pad;
  const index block = Hp * Wp * lanes;
  for (index h = 0; h < H; ++h) {
    const index at_row = plane + h * W * C;
    for (index cb = cb0; cb < cb1; ++cb) {
      const index c0 = cb * lanes;
      const int valid = block_lanes(C, c0);
      float* d = dst + (cb - cb0) * block + ((h + pad) * Wp + pad) * lanes;
      const float* s = src + at_row + c0;
      // Masked loads read zeros past `valid`, and the padded coefficients map zeros to zeros.
      if constexpr (std::is_same_v<Tr, pack_copy>) {
        for (index w = 0; w < W; ++w) vstore(d + w * lanes, vld(s + w * C, valid));
      } else if constexpr (std::is_same_v<Tr, pack_bn_relu6>) {
        const vfloat a = vload(tr.scale + c0), b = vload(tr.shift + c0);
        for (index w = 0; w < W; ++w) vstore(d + w * lanes, vbn_relu6(vld(s + w * C, valid), a, b));
      } else {
        const vfloat a = vload(tr.A + c0), b = vload(tr.B + c0), k = vload(tr.K + c0), mu = vload(tr.mean + c0);
        const float* z = tr.z + at_row + c0;
        for (index w = 0; w < W; ++w)
          vstore(d + w * lanes, a * vld(s + w * C, valid) + b * (vld(z + w * C, valid) - mu) + k);
      }
    }
  }
}

// Prefetches the share [cb0, cb1) of `blocks` of the `floats` floats at p (the next image, while
// the items of this one run): an item reads one block's lanes of every pixel, a strided pattern
// that the hardware prefetchers follow poorly, whereas the image as a whole is contiguous; spread
// over the items, one image ahead stays within L2 beside the current one.
inline void prefetch_share(const float* p, index floats, index cb0, index cb1, index blocks) {
  const index lines = (floats * static_cast<index>(sizeof(float)) + 63) / 64;
  const auto* bytes = reinterpret_cast<const char*>(p);
  for (index l = lines * cb0 / blocks, end = lines * cb1 / blocks; l < end; ++l) __builtin_prefetch(bytes + l * 64);
}

// Work items: (image, group of channel blocks), consecutive items covering consecutive blocks
// of one image. One block per item: its packed planes then stay in L1 while the kernels run
// (packing a whole image at once streams memory better but runs the kernels from L2, which
// measured twice as slow).
struct dw_items {
  index blocks, per_group, groups, count;
  dw_items(index n, index C, int /*threads*/) : blocks((C + lanes - 1) / lanes) {
    per_group = 1;
    groups = blocks;
    count = n * groups;
  }
  index image(index item) const { return item / groups; }
  index first_block(index item) const { return (item % groups) * per_group; }
  index end_block(index item) const { return std::min(blocks, first_block(item) + per_group); }
};

// Weights [kh][kw][c] → [block][tap][lanes], optionally with the taps reversed (for the
// gradient of a stride-1 convolution, which is a convolution with the flipped kernel).
inline void pack_weights(const float* w, index K, index C, bool flip, float* dst) {
  const index taps = K * K;
  const index blocks = (C + lanes - 1) / lanes;
  for (index cb = 0; cb < blocks; ++cb)
    for (index t = 0; t < taps; ++t) {
      const index src_tap = flip ? taps - 1 - t : t;
      for (int l = 0; l < lanes; ++l) {
        const index c = cb * lanes + l;
        dst[(cb * taps + t) * lanes + l] = c < C ? w[src_tap * C + c] : 0.0f;
      }
    }
}

inline void store_lanes(float* dst, vfloat v, int valid) { vst(dst, v, valid); }

// The chunk width T used along a row of `width` outputs: kernel_policy::chunk_width. The kernel
// sizes and strides with unrolled kernels (others use the generic loops, KT = ST = 0):
inline int chunk_width(index width) { return kernel_policy::chunk_width(width); }

template <class F>
void with_kernel(index k, index s, F&& f) {
  using std::integral_constant;
  if (s == 1 && k == 3) return f(integral_constant<int, 3>{}, integral_constant<int, 1>{});
  if (s == 1 && k == 5) return f(integral_constant<int, 5>{}, integral_constant<int, 1>{});
  if (s == 1 && k == 7) return f(integral_constant<int, 7>{}, integral_constant<int, 1>{});
  if (s == 2 && k == 3) return f(integral_constant<int, 3>{}, integral_constant<int, 2>{});
  if (s == 2 && k == 5) return f(integral_constant<int, 5>{}, integral_constant<int, 2>{});
  if (s == 2 && k == 7) return f(integral_constant<int, 7>{}, integral_constant<int, 2>{});
  return f(integral_constant<int, 0>{}, integral_constant<int, 0>{});
}

// Calls F::template run<T>(args...) for the chunk width T (8, 7, 4 or 1): the dispatch happens
// once per plane or row, outside the loops, and everything inside is one function the compiler
// can keep in registers (a generic lambda here was measured to stop inlining and run 2× slower).
template <class F, class... Args>
void with_chunk(int t, Args&&... args) {
  switch (t) {
    case 8: return F::template run<8>(args...);
    case 7: return F::template run<7>(args...);
    case 4: return F::template run<4>(args...);
    default: return F::template run<1>(args...);
  }
}

// acc[t] = Σ_{kh,kw} xp[kh][(t·S + kw)] · w[kh][kw], rows starting at `x` with `Wp` columns, over
// the kernel rows [kh_lo, kh_hi) only. The packed plane's border is zero, so a tap that reads it adds
// a zero product, which changes no sum: the rows of taps that fall in the border are skipped (the
// caller's kh range), and with a fixed kernel size the columns too where the chunk touches the
// plane's left edge (Left: the chunk starts at output column 0) or right edge (Right: the image's
// columns end exactly T·S columns after the chunk's first). At 7×7 with a 7×7 kernel that is 43 %
// of the taps; the remaining ones are added in the same order, so the sums are unchanged.
template <int KT, int ST, int T, bool Left = false, bool Right = false>
[[gnu::always_inline]] inline void conv_chunk(const float* x, index Wp, const float* w, int k_rt, int s_rt,
                                              int kh_lo, int kh_hi, vfloat* acc) {
  const int K = KT > 0 ? KT : k_rt;
  const int S = ST > 0 ? ST : s_rt;
  static_assert(KT > 0 || (!Left && !Right), "edge masks need a fixed kernel size");
  constexpr int pad = KT / 2;
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = vfloat{};
#pragma GCC unroll 7
  for (int kh = 0; kh < K; ++kh) {
    if (kh < kh_lo || kh >= kh_hi) continue;
    const float* row = x + kh * Wp * lanes;
#pragma GCC unroll 7
    for (int kw = 0; kw < K; ++kw) {
      const vfloat wv = vload(w + (kh * K + kw) * lanes);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        if (Left && t * S + kw < pad) continue;
        if (Right && t * S + kw >= pad + T * S) continue;
        acc[t] += vload(row + (t * S + kw) * lanes) * wv;
      }
    }
  }
}

// One output plane of a channel block: out[oh][ow] = conv over the packed plane `xp` of an image
// H rows high, padded by `pad` on every side. Used for the forward (stride S) and for the data
// gradient of stride 1 (flipped weights). `out` receives pixel (oh, ow) at out + (oh·Wo + ow)·C: C
// is the channel count for an NHWC tensor, or `lanes` for a staging plane. With BnRelu6, what is
// stored is relu6(conv·sc + sh) (the batch norm + ReLU6 that follows, in evaluation), rounded as
// vbn_relu6 rounds it anywhere.
template <int KT, int ST, bool BnRelu6 = false>
struct conv_plane_rows {
  template <int TT>
  static void run(const float* xp, index Wp, const float* w, int K, int S, index pad, index H, index Ho, index Wo,
                  float* out, index C, int valid, vfloat sc = vfloat{}, vfloat sh = vfloat{}) {
    const auto post = [&](vfloat v) { return BnRelu6 ? vbn_relu6(v, sc, sh) : v; };
    const index W = Wp - 2 * pad;
    // The column masks are compiled for a border of KT/2 columns on either side.
    const bool masks = KT > 0 && pad == KT / 2;
    for (index oh = 0; oh < Ho; ++oh) {
      const float* xrow = xp + oh * S * Wp * lanes;
      float* orow = out + oh * Wo * C;
      const int lo = static_cast<int>(std::max<index>(0, pad - oh * S));
      const int hi = static_cast<int>(std::min<index>(K, pad + H - oh * S));
      index ow = 0;
      for (; ow + TT <= Wo; ow += TT) {
        vfloat acc[TT];
        const float* at = xrow + ow * S * lanes;
        const bool left = masks && ow == 0, right = masks && W - ow * S == index{TT} * S;
        if constexpr (KT > 0) {
          if (left && right) conv_chunk<KT, ST, TT, true, true>(at, Wp, w, K, S, lo, hi, acc);
          else if (left) conv_chunk<KT, ST, TT, true, false>(at, Wp, w, K, S, lo, hi, acc);
          else if (right) conv_chunk<KT, ST, TT, false, true>(at, Wp, w, K, S, lo, hi, acc);
          else conv_chunk<KT, ST, TT>(at, Wp, w, K, S, lo, hi, acc);
        } else {
          conv_chunk<KT, ST, TT>(at, Wp, w, K, S, lo, hi, acc);
        }
        for (int t = 0; t < TT; ++t) store_lanes(orow + (ow + t) * C, post(acc[t]), valid);
      }
      for (; ow < Wo; ++ow) {
        vfloat acc[1];
        conv_chunk<KT, ST, 1>(xrow + ow * S * lanes, Wp, w, K, S, lo, hi, acc);
        store_lanes(orow + ow * C, post(acc[0]), valid);
      }
    }
  }
};

template <int KT, int ST>
void conv_plane(const float* xp, index Wp, const float* w, int K, int S, index pad, index H, index Ho, index Wo,
                float* out, index C, int valid) {
  with_chunk<conv_plane_rows<KT, ST>>(chunk_width(Wo), xp, Wp, w, K, S, pad, H, Ho, Wo, out, C, valid);
}

// The same followed by relu6(·sc + sh).
template <int KT, int ST>
void conv_plane_bn_relu6(const float* xp, index Wp, const float* w, int K, int S, index pad, index H, index Ho,
                         index Wo, float* out, index C, int valid, vfloat sc, vfloat sh) {
  with_chunk<conv_plane_rows<KT, ST, true>>(chunk_width(Wo), xp, Wp, w, K, S, pad, H, Ho, Wo, out, C, valid, sc,
                                            sh);
}

// Data gradient of a stride-2 convolution by gathering: input pixel (ih, iw) receives
// dy[(ih+p-kh)/2][(iw+p-kw)/2]·w[kh][kw] for the taps of matching parity. Columns of one
// parity are processed in chunks, where consecutive columns read consecutive dy columns.
// `dyp` is dy padded by q on every side.
template <int KT, int KH0, int KW0, int T>
[[gnu::always_inline]] inline void s2_data_chunk(const float* dyp, index Wq, index q, const float* w, int k_rt,
                                                 index ih, index iw0, vfloat* acc) {
  const int K = KT > 0 ? KT : k_rt;
  const int p = K / 2;
  // KH0/KW0: the first tap of matching parity, fixed at compile time so that the tap loops
  // unroll; -1 means "work it out at run time" (generic kernel sizes).
  const int kh0 = KH0 >= 0 ? KH0 : static_cast<int>((ih + p) & 1);
  const int kw0 = KW0 >= 0 ? KW0 : static_cast<int>((iw0 + p) & 1);
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = vfloat{};
#pragma GCC unroll 4
  for (int kh = kh0; kh < K; kh += 2) {
    const float* row = dyp + ((ih + p - kh) / 2 + q) * Wq * lanes;
#pragma GCC unroll 4
    for (int kw = kw0; kw < K; kw += 2) {
      const float* col = row + ((iw0 + p - kw) / 2 + q) * lanes;
      const vfloat wv = vload(w + (kh * K + kw) * lanes);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[t] += vload(col + t * lanes) * wv;
    }
  }
}

template <int KT, int KH0, int KW0>
struct s2_data_columns {
  template <int TT>
  static void run(const float* dyp, index Wq, index q, const float* w, int K, index ih, index parity, index count,
                  float* drow, index C, int valid) {
    index j = 0;
    for (; j + TT <= count; j += TT) {
      vfloat acc[TT];
      s2_data_chunk<KT, KH0, KW0, TT>(dyp, Wq, q, w, K, ih, parity + 2 * j, acc);
      for (int t = 0; t < TT; ++t) store_lanes(drow + (parity + 2 * (j + t)) * C, acc[t], valid);
    }
    for (; j < count; ++j) {
      vfloat acc[1];
      s2_data_chunk<KT, KH0, KW0, 1>(dyp, Wq, q, w, K, ih, parity + 2 * j, acc);
      store_lanes(drow + (parity + 2 * j) * C, acc[0], valid);
    }
  }
};

template <int KT, int KH0, int KW0>
void s2_data_row(const float* dyp, index Wq, index q, const float* w, int K, index ih, index parity, index count,
                 float* drow, index C, int valid) {
  with_chunk<s2_data_columns<KT, KH0, KW0>>(chunk_width(count), dyp, Wq, q, w, K, ih, parity, count, drow, C, valid);
}

template <int KT>
void s2_data_plane(const float* dyp, index Wq, index q, const float* w, int K, index H, index W, float* dx,
                   index C, int valid) {
  const int p = K / 2;
  for (index ih = 0; ih < H; ++ih) {
    float* drow = dx + ih * W * C;  // C: pixel stride of the output, as in conv_plane
    for (index parity = 0; parity < 2; ++parity) {
      const index count = (W - parity + 1) / 2;  // columns parity, parity + 2, ...
      if constexpr (KT > 0) {
        const int kh0 = static_cast<int>((ih + p) & 1), kw0 = static_cast<int>((parity + p) & 1);
        if (kh0 == 0 && kw0 == 0) s2_data_row<KT, 0, 0>(dyp, Wq, q, w, K, ih, parity, count, drow, C, valid);
        else if (kh0 == 0) s2_data_row<KT, 0, 1>(dyp, Wq, q, w, K, ih, parity, count, drow, C, valid);
        else if (kw0 == 0) s2_data_row<KT, 1, 0>(dyp, Wq, q, w, K, ih, parity, count, drow, C, valid);
        else s2_data_row<KT, 1, 1>(dyp, Wq, q, w, K, ih, parity, count, drow, C, valid);
      } else {
        s2_data_row<0, -1, -1>(dyp, Wq, q, w, K, ih, parity, count, drow, C, valid);
      }
    }
  }
}

// Weight gradient of one plane: dw[kh][kw] += Σ_{oh,ow} g[oh][ow] · xp[oh·S + kh][ow·S + kw].
// `g` is dy of the block with row stride Wg (in pixels); `dw` is [tap][lanes].
template <int KT, int ST>
struct filter_plane_rows {
  template <int TT>
  static void run(const float* xp, index Wp, const float* g, index Wg, index Ho, index Wo, float* dw) {
    for (int kh = 0; kh < KT; ++kh) {
      vfloat acc[KT];
      for (int kw = 0; kw < KT; ++kw) acc[kw] = vfloat{};
      for (index oh = 0; oh < Ho; ++oh) {
        const float* xrow = xp + (oh * ST + kh) * Wp * lanes;
        const float* grow = g + oh * Wg * lanes;
        index ow = 0;
        for (; ow + TT <= Wo; ow += TT) {
          vfloat gv[TT];
#pragma GCC unroll 8
          for (int t = 0; t < TT; ++t) gv[t] = vload(grow + (ow + t) * lanes);
#pragma GCC unroll 7
          for (int kw = 0; kw < KT; ++kw) {
            vfloat s = acc[kw];
#pragma GCC unroll 8
            for (int t = 0; t < TT; ++t) s += gv[t] * vload(xrow + ((ow + t) * ST + kw) * lanes);
            acc[kw] = s;
          }
        }
        for (; ow < Wo; ++ow) {
          const vfloat gv = vload(grow + ow * lanes);
#pragma GCC unroll 7
          for (int kw = 0; kw < KT; ++kw) acc[kw] += gv * vload(xrow + (ow * ST + kw) * lanes);
        }
      }
      for (int kw = 0; kw < KT; ++kw) {
        float* d = dw + (kh * KT + kw) * lanes;
        vstore(d, vload(d) + acc[kw]);
      }
    }
  }
};

template <int KT, int ST>
void filter_plane(const float* xp, index Wp, const float* g, index Wg, int K, int S, index Ho, index Wo,
                  float* dw) {
  if constexpr (KT > 0) {
    with_chunk<filter_plane_rows<KT, ST>>(chunk_width(Wo), xp, Wp, g, Wg, Ho, Wo, dw);
  } else {
    for (int kh = 0; kh < K; ++kh)
      for (int kw = 0; kw < K; ++kw) {
        vfloat acc = vfloat{};
        for (index oh = 0; oh < Ho; ++oh)
          for (index ow = 0; ow < Wo; ++ow)
            acc += vload(g + (oh * Wg + ow) * lanes) * vload(xp + ((oh * S + kh) * Wp + ow * S + kw) * lanes);
        float* d = dw + (kh * K + kw) * lanes;
        vstore(d, vload(d) + acc);
      }
  }
}

// Forward over all items. `tr` reads the input (raw, or through BN + ReLU6); with `stats`, each
// thread's output moments go to stats[thread] (one channel_moments per thread, sized C).
template <class Tr>
void depthwise_forward_run(int threads, scratch& ws, const depthwise_desc& d, const float* x, const Tr& tr,
                           const float* w, float* y, channel_moments* stats) {
  const act_shape in = d.in, out = d.out();
  const index K = d.kernel, S = d.stride, p = d.pad();
  const dw_items items(in.n, in.c, threads);
  const index Hp = in.h + 2 * p, Wp = in.w + 2 * p, block = Hp * Wp * lanes, plane = in.h * in.w * in.c;
  float* wpk = ws.get(0, slot_w, items.blocks * K * K * lanes);
  pack_weights(w, K, in.c, false, wpk);
  with_kernel(K, S, [&](auto kc, auto sc) {
    constexpr int KT = decltype(kc)::value, ST = decltype(sc)::value;
    parallel_for(threads, items.count, kernel_policy::conv_min_items, [&](index b, index e, int t) {
      float* xp = ws.get(t, slot_x, items.per_group * block);
      zero_borders(xp, items.per_group, in.h, in.w, p);
      for (index item = b; item < e; ++item) {
        const index n = items.image(item), cb0 = items.first_block(item), cb1 = items.end_block(item);
        if (item + items.groups < e) prefetch_share(x + (n + 1) * plane, plane, cb0, cb1, items.blocks);
        pack_blocks(x, n * plane, in.h, in.w, in.c, cb0, cb1, p, xp, tr);
        for (index cb = cb0; cb < cb1; ++cb) {
          const index c0 = cb * lanes;
          const int valid = block_lanes(in.c, c0);
          float* yo = y + n * out.h * out.w * out.c + c0;
          conv_plane<KT, ST>(xp + (cb - cb0) * block, Wp, wpk + cb * K * K * lanes, static_cast<int>(K),
                             static_cast<int>(S), p, in.h, out.h, out.w, yo, out.c, valid);
          if (stats != nullptr) block_moments(yo, out.h * out.w, out.c, c0, valid, stats[t]);
        }
      }
    });
  });
}

// What the data gradient becomes when the depthwise input was relu6(bn(z)): the gradient g is
// masked where the ReLU6 was flat (read off the packed input), written out, and summed for that
// batch norm's backward: s1 += Σ g, s2 += Σ g·(z − mean), per thread.
struct bn_relu6_epilogue {
  const float* z;
  const float* mean;
  float* g;
  bn_grad_sums* sums;  // per thread
};

// Both gradients in one pass over dy (dx and dw may each be null). `xtr` and `gtr` read x and dy.
template <class XTr, class GTr>
void depthwise_backward_run(int threads, scratch& ws, const depthwise_desc& d, const float* x, const XTr& xtr,
                            const float* w, const float* dy, const GTr& gtr, float* dx, float* dw,
                            const bn_relu6_epilogue* ep) {
  const act_shape in = d.in, out = d.out();
  const index K = d.kernel, S = d.stride, p = d.pad();
  const index taps = K * K;
  const dw_items items(in.n, in.c, threads);
  const index blocks = items.blocks;
  const index Hp = in.h + 2 * p, Wp = in.w + 2 * p, xblock = Hp * Wp * lanes;
  // dy is padded by p for stride 1 (a convolution with the flipped kernel) and by q for the
  // gather of other strides (enough for (ih + p - kh)/S to stay inside).
  const index q = S == 1 ? p : p / S + 1;
  const index Hq = out.h + 2 * q, Wq = out.w + 2 * q, gblock = Hq * Wq * lanes;
  const bool want_dx = dx != nullptr || ep != nullptr;
  const bool need_x = dw != nullptr || ep != nullptr;
  float* wpk = nullptr;
  if (want_dx) {
    wpk = ws.get(0, slot_w, blocks * taps * lanes);
    pack_weights(w, K, in.c, S == 1, wpk);
  }
  with_kernel(K, S, [&](auto kc, auto sc) {
    constexpr int KT = decltype(kc)::value, ST = decltype(sc)::value;
    const int parts = parallel_for(threads, items.count, kernel_policy::conv_min_items, [&](index b, index e, int t) {
      float* xp = need_x ? ws.get(t, slot_x, items.per_group * xblock) : nullptr;
      float* gp = ws.get(t, slot_dy, items.per_group * gblock + (ep != nullptr ? in.h * in.w * lanes : 0));
      float* stage = gp + items.per_group * gblock;  // one block's data gradient, when it has an epilogue
      zero_borders(gp, items.per_group, out.h, out.w, q);
      if (need_x) zero_borders(xp, items.per_group, in.h, in.w, p);
      float* dwp = nullptr;
      if (dw != nullptr) {
        dwp = ws.get(t, slot_dw, blocks * taps * lanes);
        std::memset(dwp, 0, static_cast<std::size_t>(blocks * taps * lanes) * sizeof(float));
      }
      for (index item = b; item < e; ++item) {
        const index n = items.image(item), cb0 = items.first_block(item), cb1 = items.end_block(item);
        const index in_plane = n * in.h * in.w * in.c, out_floats = out.h * out.w * out.c;
        if (item + items.groups < e) {
          prefetch_share(dy + (n + 1) * out_floats, out_floats, cb0, cb1, blocks);
          if constexpr (std::is_same_v<GTr, pack_bn_grad>)
            prefetch_share(gtr.z + (n + 1) * out_floats, out_floats, cb0, cb1, blocks);
          if (need_x) prefetch_share(x + in_plane + in.h * in.w * in.c, in.h * in.w * in.c, cb0, cb1, blocks);
        }
        pack_blocks(dy, n * out_floats, out.h, out.w, out.c, cb0, cb1, q, gp, gtr);
        if (need_x) pack_blocks(x, in_plane, in.h, in.w, in.c, cb0, cb1, p, xp, xtr);
        for (index cb = cb0; cb < cb1; ++cb) {
          const index c0 = cb * lanes;
          const int valid = block_lanes(in.c, c0);
          const float* gb = gp + (cb - cb0) * gblock;
          const float* xb = need_x ? xp + (cb - cb0) * xblock : nullptr;
          if (dw != nullptr)
            filter_plane<KT, ST>(xb, Wp, gb + (q * Wq + q) * lanes, Wq, static_cast<int>(K), static_cast<int>(S),
                                 out.h, out.w, dwp + cb * taps * lanes);
          if (!want_dx) continue;
          // The data gradient goes straight to dx, or to the staging plane for the epilogue.
          float* target = ep != nullptr ? stage : dx + in_plane + c0;
          const index tstride = ep != nullptr ? lanes : in.c;
          const int tvalid = ep != nullptr ? lanes : valid;
          const float* wb = wpk + cb * taps * lanes;
          if (S == 1) {
            conv_plane<KT, 1>(gb, Wq, wb, static_cast<int>(K), 1, q, out.h, in.h, in.w, target, tstride, tvalid);
          } else if (S == 2) {
            s2_data_plane<KT>(gb, Wq, q, wb, static_cast<int>(K), in.h, in.w, target, tstride, tvalid);
          } else {
            // Any other stride: the plain gather, one pixel at a time.
            for (index ih = 0; ih < in.h; ++ih)
              for (index iw = 0; iw < in.w; ++iw) {
                vfloat acc = vfloat{};
                for (index kh = 0; kh < K; ++kh) {
                  const index a = ih + p - kh;
                  if (a % S != 0) continue;
                  for (index kw = 0; kw < K; ++kw) {
                    const index c = iw + p - kw;
                    if (c % S != 0) continue;
                    acc += vload(gb + ((a / S + q) * Wq + c / S + q) * lanes) * vload(wb + (kh * K + kw) * lanes);
                  }
                }
                store_lanes(target + (ih * in.w + iw) * tstride, acc, tvalid);
              }
          }
          if (ep != nullptr) {
            double* s1 = ep->sums->s1(t);
            double* s2 = ep->sums->s2(t);
            vfloat a1 = vfloat{}, a2 = vfloat{};
            const vfloat mu = vload(ep->mean + c0);
            for (index ih = 0; ih < in.h; ++ih)
              for (index iw = 0; iw < in.w; ++iw) {
                const vfloat act = vload(xb + ((ih + p) * Wp + iw + p) * lanes);
                const vfloat g = relu6_pass(act, vload(stage + (ih * in.w + iw) * lanes));
                const index at = in_plane + (ih * in.w + iw) * in.c + c0;
                const vfloat z = vld(ep->z + at, valid);
                a1 += g;
                a2 += g * (z - mu);
                store_lanes(ep->g + at, g, valid);
              }
            for (int l = 0; l < valid; ++l) {
              s1[c0 + l] += a1[l];
              s2[c0 + l] += a2[l];
            }
          }
        }
      }
    });
    if (dw != nullptr) {
      // dw[tap][c] = Σ over threads of the partials [block][tap][lanes].
      std::vector<const float*> part(static_cast<std::size_t>(parts));
      for (int t = 0; t < parts; ++t) part[static_cast<std::size_t>(t)] = ws.get(t, slot_dw, blocks * taps * lanes);
      for (index tap = 0; tap < taps; ++tap)
        for (index c = 0; c < in.c; ++c) {
          const index at = ((c / lanes) * taps + tap) * lanes + c % lanes;
          float s = 0.0f;
          for (int t = 0; t < parts; ++t) s += part[static_cast<std::size_t>(t)][at];
          dw[tap * in.c + c] = s;
        }
    }
  });
}

inline void depthwise_forward(int threads, scratch& ws, const depthwise_desc& d, const float* x, const float* w,
                              float* y) {
  depthwise_forward_run(threads, ws, d, x, pack_copy{}, w, y, nullptr);
}

inline void depthwise_backward(int threads, scratch& ws, const depthwise_desc& d, const float* x, const float* w,
                               const float* dy, float* dx, float* dw) {
  depthwise_backward_run(threads, ws, d, x, pack_copy{}, w, dy, pack_copy{}, dx, dw, nullptr);
}

}  // namespace pcnas::backend::eigen::detail
