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

// Z[n, N] = X[n, K] · W[K, N], all row-major, without packing, rounded as Eigen's GEMM kernel
// rounds the same product (Eigen 3.4, one depth block). Eigen computes Zᵀ = Wᵀ·Xᵀ: the output
// channels are its lhs rows, taken 3 vectors at a time, then 2, then 1, a half and a quarter
// vector; our rows are its rhs columns, taken 4 at a time, then one by one. Every output starts
// at zero and accumulates over k in order, one fused multiply-add per product, except in the
// kernels of one vector or less on a group of 4 rows: there the even k of each 8 go to one
// accumulator and the odd k to another, which are added before the last K mod 8 products
// ("paired" below). A register block of R rows × V vectors here does the same per output: the
// channels of Eigen's 3- and 2-vector kernels run in order, those after them paired on whole
// groups of 4 rows and in order on the last n mod 4 rows. Eigen cuts the depth into blocks
// when K exceeds its kc, which this kernel does not do, and runs a matrix-vector product for one
// row: direct_gemm_fits/direct_gemm_exact say where the bits agree (tests/nn/primitives_test.cpp
// checks them against Eigen).
template <int R, int V, bool Paired>
[[gnu::always_inline]] inline void direct_gemm_block(index K, index N, const float* x, const float* w, float* z,
                                                     index col, int tail) {
  vfloat acc[R][V];
  vfloat odd[Paired ? R : 1][Paired ? V : 1];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = vfloat{};
  const auto step = [&](index k, auto& a) [[gnu::always_inline]] {
    vfloat wv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) wv[v] = v == V - 1 ? vld(w + k * N + col + v * lanes, tail) : vload(w + k * N + col + v * lanes);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const vfloat xv = vbroadcast(x[r * K + k]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) a[r][v] = vfma(xv, wv[v], a[r][v]);
    }
  };
  index k = 0;
  if constexpr (Paired) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) odd[r][v] = vfloat{};
    for (const index k8 = K & ~index{7}; k < k8; k += 2) {
      step(k, acc);
      step(k + 1, odd);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] += odd[r][v];
  }
  for (; k < K; ++k) step(k, acc);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      float* dst = z + r * N + col + v * lanes;
      if (v == V - 1) vst(dst, acc[r][v], tail);
      else vstore(dst, acc[r][v]);
    }
}

// Where Eigen's 3- and 2-vector kernels end and the paired ones begin, for N output channels.
inline index direct_gemm_paired_from(index N) noexcept {
  const index three = N / (3 * lanes) * (3 * lanes);
  return N - three >= 2 * lanes ? three + 2 * lanes : three;
}

// R rows (a multiple of 4, or 1: the last n mod 4 rows, all in order).
template <int R>
inline void direct_gemm_rows(index K, index N, const float* x, const float* w, float* z) {
  constexpr int V = kernel_policy::direct_gemm_vectors;
  const index paired = R == 1 ? N : direct_gemm_paired_from(N);
  index col = 0;
  for (; col + V * lanes <= paired; col += V * lanes) direct_gemm_block<R, V, false>(K, N, x, w, z, col, lanes);
  if constexpr (V > 2)
    for (; col + 2 * lanes <= paired; col += 2 * lanes) direct_gemm_block<R, 2, false>(K, N, x, w, z, col, lanes);
  while (col < paired) {
    const int tail = block_lanes(paired, col);
    direct_gemm_block<R, 1, false>(K, N, x, w, z, col, tail);
    col += tail;
  }
  if (col < N) {
    // Less than 2 vectors (1 + 1/2 + 1/4, or 1/2 + 1/4 after 2), in groups of 4 rows.
#pragma GCC unroll 2
    for (int r = 0; r < R; r += 4) {
      if (N - col > lanes) direct_gemm_block<4, 2, true>(K, N, x + r * K, w, z + r * N, col, block_lanes(N, col + lanes));
      else direct_gemm_block<4, 1, true>(K, N, x + r * K, w, z + r * N, col, block_lanes(N, col));
    }
  }
}

inline void direct_gemm(index n, index K, index N, const float* x, const float* w, float* z) {
  constexpr int R = kernel_policy::direct_gemm_rows;
  index r = 0;
  for (; r + R <= n; r += R) direct_gemm_rows<R>(K, N, x + r * K, w, z + r * N);
  if constexpr (R > 4)
    for (; r + 4 <= n; r += 4) direct_gemm_rows<4>(K, N, x + r * K, w, z + r * N);
  for (; r < n; ++r) direct_gemm_rows<1>(K, N, x + r * K, w, z + r * N);
}

// Eigen's depth block for Z = X·W with K input channels, N outputs and n rows (gemm_blocking_space
// as Eigen's product sets it up); the direct kernel rounds as Eigen does only when it is K.
inline index eigen_depth_block(index n, index K, index N) {
  index k = K, m = N, c = n;
  Eigen::internal::computeProductBlockingSizes<float, float, 1>(k, m, c, index{1});
  return k;
}

// Whether the direct kernel computes Z[n, N] = X[n, K] · W with Eigen's bits: Eigen 3.4.0 (whose
// kernels are described above), a target with FMA (which Eigen's kernel uses), one depth block, whole half vectors of outputs, and more than
// one row (Eigen's one-row product is a matrix-vector product). And whether it pays: the
// direct kernel takes every product up to direct_gemm_max_k input channels (where packing
// costs Eigen as much as the product), and beyond it, up to Eigen's depth block, when
// kernel_policy::direct_gemm_beyond_max_k says so for this target.
inline bool direct_gemm_exact(index n, index K, index N) {
#if (defined(__AVX512F__) || (defined(__FMA__) && defined(__AVX__))) && EIGEN_VERSION_AT_LEAST(3, 4, 0) && \
    !EIGEN_VERSION_AT_LEAST(3, 4, 1)
  return n > 1 && N % (lanes / 2) == 0 && eigen_depth_block(n, K, N) == K;
#else
  (void)n;
  (void)K;
  (void)N;
  return false;
#endif
}

// The direct kernel's choice for a product: the small-K shapes it has always taken (N a multiple
// of 3 vectors, all in order, so the bits are Eigen's for any n ≥ 2 and the same for every n), and
// on targets where it is faster (kernel_policy::direct_gemm_beyond_max_k), every shape where
// direct_gemm_exact holds.
inline bool direct_gemm_fits(index n, index K, index N) {
#if defined(__AVX512F__) || (defined(__FMA__) && defined(__AVX__))
  if (K <= kernel_policy::direct_gemm_max_k && N % (3 * lanes) == 0) return true;
  return kernel_policy::direct_gemm_beyond_max_k && K <= kernel_policy::direct_gemm_max_k_exact &&
         direct_gemm_exact(n, K, N);
#else
  (void)n;
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
