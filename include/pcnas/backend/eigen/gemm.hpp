// The Eigen backend's matrix products: 1×1 convolutions and the fully connected layer, as
// Eigen GEMMs on row blocks split over the threads.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/eigen/parallel.hpp>

#include <Eigen/Core>

namespace pcnas::backend::eigen::detail {

using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using matrix_map = Eigen::Map<row_matrix>;
using const_matrix_map = Eigen::Map<const row_matrix>;

// Rows per thread below which a second thread costs more than it saves.
inline constexpr index gemm_min_rows = kernel_policy::gemm_min_rows;

// Our GEMMs are split over threads here, so Eigen's own OpenMP split must stay off: outside a
// parallel region it would start its own team, whose busy-waiting on these tall, thin products
// costs more than the product itself. Eigen's thread count is a global setting, so it is set to
// one for the duration of a call and restored after.
class eigen_single_thread {
 public:
  eigen_single_thread() : saved_(Eigen::nbThreads()) { Eigen::setNbThreads(1); }
  ~eigen_single_thread() { Eigen::setNbThreads(saved_); }
  eigen_single_thread(const eigen_single_thread&) = delete;
  eigen_single_thread& operator=(const eigen_single_thread&) = delete;

 private:
  int saved_;
};

// Z[n, N] = X[n, K] · W[K, N], all row-major, for small K (kernel_policy::direct_gemm_max_k): no
// packing, W (K·N floats) stays in L1, and a register block of R rows × V vectors of output
// accumulates over k in order from zero, one fused multiply-add per product, as Eigen's kernel
// does; so the bits are Eigen's (the pinned-results test checks it per instruction set).
template <int R, int V>
[[gnu::always_inline]] inline void direct_gemm_block(index K, index N, const float* x, const float* w, float* z,
                                                     index col, int tail) {
  vfloat acc[R][V];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = vfloat{};
  for (index k = 0; k < K; ++k) {
    vfloat wv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) wv[v] = v == V - 1 ? vld(w + k * N + col + v * lanes, tail) : vload(w + k * N + col + v * lanes);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const vfloat xv = vbroadcast(x[r * K + k]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = vfma(xv, wv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      float* dst = z + r * N + col + v * lanes;
      if (v == V - 1) vst(dst, acc[r][v], tail);
      else vstore(dst, acc[r][v]);
    }
}

template <int R>
inline void direct_gemm_rows(index K, index N, const float* x, const float* w, float* z) {
  constexpr int V = kernel_policy::direct_gemm_vectors;
  index col = 0;
  for (; col + V * lanes <= N; col += V * lanes) direct_gemm_block<R, V>(K, N, x, w, z, col, lanes);
  while (col < N) {
    const int tail = block_lanes(N, col);
    direct_gemm_block<R, 1>(K, N, x, w, z, col, tail);
    col += tail;
  }
}

inline void direct_gemm(index n, index K, index N, const float* x, const float* w, float* z) {
  constexpr int R = kernel_policy::direct_gemm_rows;
  index r = 0;
  for (; r + R <= n; r += R) direct_gemm_rows<R>(K, N, x + r * K, w, z + r * N);
  for (; r < n; ++r) direct_gemm_rows<1>(K, N, x + r * K, w, z + r * N);
}

// Whether the direct kernel takes Z[n, N] = X[n, K] · W: small K, a target with FMA, and N a
// multiple of Eigen's register block (3 vectors), where Eigen's kernel also runs one in-order
// chain of fused multiply-adds per output, so that the results stay bit for bit.
inline bool direct_gemm_fits(index K, index N) noexcept {
#if defined(__AVX512F__) || (defined(__FMA__) && defined(__AVX__))
  return K <= kernel_policy::direct_gemm_max_k && N % (3 * lanes) == 0;
#else
  (void)K;
  (void)N;
  return false;
#endif
}

// Y[rows, out] = X[rows, in] · W[in, out]
inline void pointwise_forward(int threads, const pointwise_desc& d, const float* x, const float* w, float* y) {
  const eigen_single_thread one;
  const const_matrix_map W(w, d.in_channels, d.out_channels);
  parallel_for(threads, d.rows, gemm_min_rows, [&](index b, index e, int) {
    const const_matrix_map X(x + b * d.in_channels, e - b, d.in_channels);
    matrix_map Y(y + b * d.out_channels, e - b, d.out_channels);
    Y.noalias() = X * W;
  });
}

// dX[rows, in] (+)= dY[rows, out] · Wᵀ
inline void pointwise_backward_data(int threads, const pointwise_desc& d, const float* dy, const float* w,
                                    float* dx, bool accumulate) {
  const eigen_single_thread one;
  const const_matrix_map W(w, d.in_channels, d.out_channels);
  parallel_for(threads, d.rows, gemm_min_rows, [&](index b, index e, int) {
    const const_matrix_map dY(dy + b * d.out_channels, e - b, d.out_channels);
    matrix_map dX(dx + b * d.in_channels, e - b, d.in_channels);
    if (accumulate)
      dX.noalias() += dY * W.transpose();
    else
      dX.noalias() = dY * W.transpose();
  });
}

// dW[in, out] = Xᵀ · dY: a partial product per thread, summed in thread order (deterministic).
inline void pointwise_backward_filter(int threads, scratch& ws, const pointwise_desc& d, const float* x,
                                      const float* dy, float* dw) {
  const eigen_single_thread one;
  const index wsize = d.in_channels * d.out_channels;
  const int parts = parallel_for(threads, d.rows, gemm_min_rows, [&](index b, index e, int t) {
    float* out = t == 0 ? dw : ws.get(t, slot_dw, wsize);
    const const_matrix_map X(x + b * d.in_channels, e - b, d.in_channels);
    const const_matrix_map dY(dy + b * d.out_channels, e - b, d.out_channels);
    matrix_map P(out, d.in_channels, d.out_channels);
    P.noalias() = X.transpose() * dY;
  });
  for (int t = 1; t < parts; ++t) {
    const float* p = ws.get(t, slot_dw, wsize);
    for (index i = 0; i < wsize; ++i) dw[i] += p[i];
  }
}

}  // namespace pcnas::backend::eigen::detail
