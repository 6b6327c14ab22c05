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
