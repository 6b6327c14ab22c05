// The Thrust backend's device system when it is not CUDA (OpenMP, or the sequential C++ system):
// the execution policy, copies to and from the host, and a GEMM written as a Thrust for_each
// over blocks of rows. Device memory is host memory here, so copies are memcpy.
#pragma once

#include <pcnas/backend/concept.hpp>

#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <algorithm>
#include <cstring>
#include <string>

namespace pcnas::backend::thrust::detail {

// C[m, n] = op(A) · op(B) + beta · C, row-major; op(A) is [m, k] (A stored [k, m] when
// trans_a), op(B) is [k, n] (B stored [n, k] when trans_b). Float accumulation, as cuBLAS.
struct gemm_row_block {
  static constexpr index rows_per_task = 8;
  bool trans_a, trans_b;
  index m, n, k;
  const float* a;
  const float* b;
  float* c;
  float beta;

  float a_at(index i, index p) const { return trans_a ? a[p * m + i] : a[i * k + p]; }

  void operator()(index task) const {
    const index i0 = task * rows_per_task, i1 = std::min(m, i0 + rows_per_task);
    for (index i = i0; i < i1; ++i) {
      float* ci = c + i * n;
      if (beta == 0.0f)
        std::fill(ci, ci + n, 0.0f);
      else if (beta != 1.0f)
        for (index j = 0; j < n; ++j) ci[j] *= beta;
    }
    if (!trans_b) {
      // Row p of B is read once per block of C rows and stays in L1 across them.
      for (index p = 0; p < k; ++p) {
        const float* bp = b + p * n;
        for (index i = i0; i < i1; ++i) {
          const float aip = a_at(i, p);
          float* __restrict ci = c + i * n;  // C never overlaps A or B
          for (index j = 0; j < n; ++j) ci[j] += aip * bp[j];
        }
      }
    } else {
      // B stored [n, k]: each element of C is a dot product of two rows, contiguous when A is
      // not transposed (every transposed-B use in the backend). Eight partial sums, so that the
      // compiler vectorises without reassociating one sum (which it may not do).
      for (index i = i0; i < i1; ++i)
        for (index j = 0; j < n; ++j) {
          const float* bj = b + j * k;
          float s = 0.0f;
          if (!trans_a) {
            const float* ai = a + i * k;
            float acc[8] = {};
            index p = 0;
            for (; p + 8 <= k; p += 8)
              for (int q = 0; q < 8; ++q) acc[q] += ai[p + q] * bj[p + q];
            for (; p < k; ++p) s += ai[p] * bj[p];
            s += ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
          } else {
            for (index p = 0; p < k; ++p) s += a_at(i, p) * bj[p];
          }
          c[i * n + j] += s;
        }
    }
  }
};

class device_system {
 public:
  device_system(int threads, index serial_below) : serial_below_(serial_below) {
#if defined(_OPENMP)
    threads_ = threads > 0 ? threads : omp_get_max_threads();
#else
    threads_ = 1;
    (void)threads;
#endif
  }

  int threads() const noexcept { return threads_; }

  std::string name() const {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP
    return "thrust (float32, OpenMP, " + std::to_string(threads_) + (threads_ == 1 ? " thread)" : " threads)");
#elif THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_TBB
    return "thrust (float32, TBB)";
#else
    return "thrust (float32, C++)";
#endif
  }

  // Runs f(i) for i in [0, n). Below `serial_below` indices (times the work of one, where it is
  // known to be large) a parallel region costs more than it saves, and on a loaded machine every
  // region waits for its slowest thread: such calls run on the calling thread. Device memory is
  // host memory here, so the sequential system may touch it.
  template <class F>
  void for_each(index n, F f, index work_per_index = 1) {
    if (n <= 0) return;
    if (threads_ == 1 || n * work_per_index < serial_below_) {
      ::thrust::for_each(::thrust::seq, ::thrust::counting_iterator<index>(0), ::thrust::counting_iterator<index>(n), f);
      return;
    }
#if defined(_OPENMP)
    // The OpenMP system runs with the calling thread's team size; set it before every call so
    // that two backends with different thread counts can take turns on one thread.
    if (omp_get_max_threads() != threads_) omp_set_num_threads(threads_);
#endif
    ::thrust::for_each(::thrust::device, ::thrust::counting_iterator<index>(0), ::thrust::counting_iterator<index>(n), f);
  }

  void upload(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  void synchronize() {}

  void gemm(bool trans_a, bool trans_b, index m, index n, index k, const float* a, const float* b, float* c,
            float beta) {
    if (m <= 0 || n <= 0) return;
    const index tasks = (m + gemm_row_block::rows_per_task - 1) / gemm_row_block::rows_per_task;
    // A task is 8 rows of n·k multiply-adds; 16 of them weigh as much as one elementwise index.
    for_each(tasks, gemm_row_block{trans_a, trans_b, m, n, k, a, b, c, beta},
             std::max<index>(1, gemm_row_block::rows_per_task * n * k / 16));
  }

 private:
  int threads_ = 1;
  index serial_below_ = 4096;
};

}  // namespace pcnas::backend::thrust::detail
