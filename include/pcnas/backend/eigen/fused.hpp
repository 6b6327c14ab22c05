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
      if (direct_gemm_fits(n, K, N)) direct_gemm(n, K, N, src, w, z + r0 * N);
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

// --- evaluation: one pipeline per thread ---------------------------------------------------------

// Where a 1×1 convolution computed in row blocks may be cut without changing its bits.
// pw_forward_blocks splits its rows into parallel_for's segments and each segment into blocks of
// RB rows (a multiple of 4) from the segment's start. Eigen's kernel rounds a row by where it falls
// in its block: rows in whole groups of four from the block's start accumulate one way, the last
// (n mod 4) rows of a block another, and a block of one row is a matrix-vector product. So a block
// that starts 4·j rows after its segment's start, stays inside the segment, and ends 4·j' rows
// after that start or at the segment's end, with more than one row unless pw_forward_blocks' own
// last block had one, rounds every row as pw_forward_blocks does (the direct kernel rounds a row
// alike wherever it falls).
class gemm_cuts {
 public:
  gemm_cuts(int threads, index rows, index K, index N)
      : rows_(rows), RB_(gemm_block_rows(K, N)), parts_(planned_parts(threads, rows, gemm_min_rows)) {}

  // A block start at or before row r.
  index start_at(index r) const {
    const auto [sb, se] = segment(r);
    const index lone = lone_row(sb, se);
    if (r >= lone) return lone;
    index s = sb + (r - sb) / 4 * 4;
    if (lone == se && se - s == 1 && s > sb) s -= 4;
    return s;
  }
  // The end of the block from `start` (a block start) that covers at least [start, want): `want`
  // rounded up to the next allowed end.
  index end_for(index start, index want) const {
    const auto [sb, se] = segment(start);
    const index lone = lone_row(sb, se);
    const index stop = start < lone ? lone : se;
    const index e = sb + (std::max(want, start + 1) - sb + 3) / 4 * 4;
    return e > stop - 4 ? stop : e;
  }

 private:
  std::pair<index, index> segment(index r) const {
    const index q = rows_ / parts_, rem = rows_ % parts_;
    const index t = r < rem * (q + 1) ? r / (q + 1) : rem + (r - rem * (q + 1)) / q;
    return split(rows_, static_cast<int>(t), parts_);
  }
  // The row of a segment's one-row last block, or the segment's end.
  index lone_row(index sb, index se) const {
    const index last = sb + (se - sb - 1) / RB_ * RB_;
    return se - sb > 1 && se - last == 1 ? last : se;
  }
  index rows_, RB_;
  int parts_;
};

// Rows [base, hi) of a [rows][C] tensor held from `buf` on. Blocks are appended at hi; when one
// would not fit, the rows from `keep` on move to the front.
struct row_window {
  float* buf;
  index cap, C, base, hi;
  float* row(index r) const { return buf + (r - base) * C; }
  float* append(index keep, index n) {
    if (hi + n - base > cap) {
      keep = std::min(keep, hi);
      std::memmove(buf, row(keep), static_cast<std::size_t>((hi - keep) * C) * sizeof(float));
      base = keep;
    }
    float* p = row(hi);
    hi += n;
    return p;
  }
};

// Z[n, N] = X[n, K] · W, as pw_forward_blocks computes a block.
inline void pw_block(index n, index K, index N, const float* x, const float* w, float* z) {
  if (direct_gemm_fits(n, K, N)) direct_gemm(n, K, N, x, w, z);
  else matrix_map(z, n, N).noalias() = const_matrix_map(x, n, K) * const_matrix_map(w, K, N);
}

// The evaluation forward of an MBConv (running statistics): each thread takes a range of images and
// runs the whole block on them image by image, so that the hidden tensors live only in row
// windows that stay in cache: the expansion's blocks up to the end of the image, BN1 + ReLU6 while
// the depthwise packs the image, the depthwise with BN2 + ReLU6 as it stores into the second
// window, then the projection's blocks that the window completes, with BN3 (+ the identity) after,
// straight into y. The products are cut only where gemm_cuts allows, so y has the bits of
// mbconv_forward_staged's; a thread recomputes the few rows and the image its blocks share with the
// next thread's.
inline void mbconv_forward_eval(int threads, scratch& ws, const mbconv_desc& d, const mbconv_ptrs& t, const float* x,
                                float* y) {
  const index Ci = d.in.c, Ch = d.hidden(), Co = d.out_channels;
  const act_shape hin = d.hidden_in(), hout = d.hidden_out();
  const index HWi = d.in.h * d.in.w, HWo = hout.h * hout.w;
  auto sc1 = padded_channels(Ch), sh1 = padded_channels(Ch), sc2 = padded_channels(Ch), sh2 = padded_channels(Ch);
  auto sc3 = padded_channels(Co), sh3 = padded_channels(Co);
  if (d.expands()) bn_running_affine(Ch, t.expand_bn, d.epsilon, sc1.data(), sh1.data());
  bn_running_affine(Ch, t.depthwise_bn, d.epsilon, sc2.data(), sh2.data());
  bn_running_affine(Co, t.project_bn, d.epsilon, sc3.data(), sh3.data());
  const gemm_cuts cuts1(threads, hin.rows(), Ci, Ch), cuts3(threads, hout.rows(), Ch, Co);
  const index BR1 = kernel_policy::eval_block_rows(Ci, Ch), BR3 = kernel_policy::eval_block_rows(Ch, Co);
  const index K = d.kernel, S = d.stride, p = d.depthwise().pad();
  const index Hp = d.in.h + 2 * p, Wp = d.in.w + 2 * p, blocks = (Ch + lanes - 1) / lanes;
  float* wpk = ws.get(0, slot_w, blocks * K * K * lanes);
  pack_weights(t.depthwise_w, K, Ch, false, wpk);
  const eigen_single_thread one;
  with_kernel(K, S, [&](auto kc, auto scv) {
    constexpr int KT = decltype(kc)::value, ST = decltype(scv)::value;
    parallel_for(threads, d.in.n, kernel_policy::eval_min_images, [&](index i0, index i1, int th) {
      float* xp = ws.get(th, slot_x, Hp * Wp * lanes);
      zero_borders(xp, 1, d.in.h, d.in.w, p);
      float* zb = ws.get(th, slot_dw, (BR3 + 8) * Co);
      const index own_lo = i0 * HWo, own_hi = i1 * HWo;
      index pb = cuts3.start_at(own_lo);  // the next projection block
      const index first = pb / HWo;
      row_window w2{ws.get(th, slot_h2, (HWo + BR3 + 16) * Ch), HWo + BR3 + 16, Ch, first * HWo, first * HWo};
      row_window w1{nullptr, HWi + BR1 + 16, Ch, 0, 0};
      if (d.expands()) {
        w1.buf = ws.get(th, slot_h1, w1.cap * Ch);
        w1.base = w1.hi = cuts1.start_at(first * HWi);
      }
      for (index i = first; pb < own_hi; ++i) {
        float* out = w2.append(pb, HWo);
        const auto depthwise = [&](const float* src, const auto& tr) {
          for (index cb = 0; cb < blocks; ++cb) {
            const index c0 = cb * lanes;
            pack_blocks(src, 0, d.in.h, d.in.w, Ch, cb, cb + 1, p, xp, tr);
            conv_plane_bn_relu6<KT, ST>(xp, Wp, wpk + cb * K * K * lanes, static_cast<int>(K), static_cast<int>(S),
                                        p, d.in.h, hout.h, hout.w, out + c0, Ch, block_lanes(Ch, c0),
                                        vload(sc2.data() + c0), vload(sh2.data() + c0));
          }
        };
        if (d.expands()) {
          const index need = (i + 1) * HWi;
          while (w1.hi < need) {
            const index r0 = w1.hi, e = cuts1.end_for(r0, std::min(r0 + BR1, need));
            pw_block(e - r0, Ci, Ch, x + r0 * Ci, t.expand_w, w1.append(i * HWi, e - r0));
          }
          depthwise(w1.row(i * HWi), pack_bn_relu6{sc1.data(), sh1.data()});
        } else {
          depthwise(x + i * HWi * Ci, pack_copy{});
        }
        const index avail = (i + 1) * HWo;
        while (pb < own_hi) {
          const index e = cuts3.end_for(pb, std::min(pb + BR3, avail));
          if (e > avail) break;
          const index n = e - pb;
          pw_block(n, Ch, Co, w2.row(pb), t.project_w, zb);
          const index lo = std::max(pb, own_lo) - pb, hi = std::min(e, own_hi) - pb;
          if (d.residual())
            bn_apply_rows<bn_epilogue::add>(lo, hi, Co, zb, sc3.data(), sh3.data(), x + pb * Co, y + pb * Co);
          else
            bn_apply_rows<bn_epilogue::none>(lo, hi, Co, zb, sc3.data(), sh3.data(), nullptr, y + pb * Co);
          pb = e;
        }
      }
    });
  });
}

// The forward stage by stage over the whole batch: each of z1, z2 and z3 in full (what the
// backward needs), with the batch statistics when training, else the running ones.
inline void mbconv_forward_staged(int threads, scratch& ws, const mbconv_desc& d, const mbconv_ptrs& t, bool training,
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

// Training and recalibration run stage by stage (a batch norm needs the whole batch's statistics
// before its output is known); evaluation runs the pipeline and leaves z1, z2 and z3 alone.
inline void mbconv_forward(int threads, scratch& ws, const mbconv_desc& d, const mbconv_ptrs& t, bool training,
                           double factor, const float* x, float* z1, float* z2, float* z3, float* y) {
  if (training) mbconv_forward_staged(threads, ws, d, t, training, factor, x, z1, z2, z3, y);
  else mbconv_forward_eval(threads, ws, d, t, x, y);
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
    bn_apply(threads, d.out().rows(), Co, z, sc.data(), sh.data(), bn_epilogue::relu6, nullptr, y);
  } else {
    // Evaluation: BN + ReLU6 as the convolution stores (z is not written).
    bn_running_affine(Co, bn, eps, sc.data(), sh.data());
    conv2d_forward_run(threads, ws, d, x, w, y, nullptr, sc.data(), sh.data());
  }
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

// The head's evaluation forward: each thread takes a range of images and pools each block of the
// 1×1 convolution while it is in cache (z is not written). The sums run per image in pixel order
// from zero, as head_forward_staged's do, and the blocks are cut where gemm_cuts allows: the same
// bits.
inline void head_forward_eval(int threads, scratch& ws, const head_desc& d, const float* w, const bn_ptrs& bn,
                              const float* x, float* pooled) {
  const index F = d.features, Ci = d.in.c, hw = d.in.h * d.in.w, rows = d.in.rows();
  auto sc = padded_channels(F), sh = padded_channels(F);
  bn_running_affine(F, bn, d.epsilon, sc.data(), sh.data());
  const gemm_cuts cuts(threads, rows, Ci, F);
  const index BR = kernel_policy::eval_block_rows(Ci, F);
  const float inv = 1.0f / static_cast<float>(hw);
  const eigen_single_thread one;
  parallel_for(threads, d.in.n, kernel_policy::eval_min_images, [&](index i0, index i1, int th) {
    float* zb = ws.get(th, slot_dw, (BR + 8) * F);
    const index own_lo = i0 * hw, own_hi = i1 * hw;
    std::fill(pooled + i0 * F, pooled + i1 * F, 0.0f);
    for (index r0 = cuts.start_at(own_lo); r0 < own_hi;) {
      const index e = cuts.end_for(r0, std::min(r0 + BR, own_hi));
      pw_block(e - r0, Ci, F, x + r0 * Ci, w, zb);
      for (index r = std::max(r0, own_lo); r < std::min(e, own_hi); ++r) {
        float* pn = pooled + (r / hw) * F;
        const float* zr = zb + (r - r0) * F;
        for (index c = 0; c < F; c += lanes) {
          const int nl = block_lanes(F, c);
          vst(pn + c, vld(pn + c, nl) + vbn_relu6(vld(zr + c, nl), vld(sc.data() + c, nl), vld(sh.data() + c, nl)), nl);
        }
      }
      r0 = e;
    }
    for (index n = i0; n < i1; ++n)
      for (index c = 0; c < F; c += lanes) {
        const int nl = block_lanes(F, c);
        vst(pooled + n * F + c, vld(pooled + n * F + c, nl) * inv, nl);
      }
  });
}

// The head's forward over the whole batch, z in full (what the backward needs).
inline void head_forward_staged(int threads, scratch& ws, const head_desc& d, const float* w, const bn_ptrs& bn,
                                bool training, double factor, const float* x, float* z, float* pooled) {
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

inline void head_forward(int threads, scratch& ws, const head_desc& d, const float* w, const bn_ptrs& bn, bool training,
                         double factor, const float* x, float* z, float* pooled) {
  if (training) head_forward_staged(threads, ws, d, w, bn, training, factor, x, z, pooled);
  else head_forward_eval(threads, ws, d, w, bn, x, pooled);
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
