// The Thrust backend's device system on CUDA: one stream per backend object, on which every
// Thrust algorithm (par_nosync: no wait after each call), copy and cuBLAS GEMM is issued in
// program order. Only download() and synchronize() wait.
#pragma once

#include <pcnas/backend/concept.hpp>
#include <pcnas/backend/cuda/check.cuh>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/system/cuda/execution_policy.h>

#include <string>
#include <utility>

namespace pcnas::backend::thrust::detail {

class device_system {
 public:
  // The OpenMP system's settings (threads, serial threshold) mean nothing on a GPU.
  device_system(int /*threads*/, index /*serial_below*/) {
    PCNAS_CUDA_CHECK(cudaGetDevice(&device_));
    PCNAS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    try {
      PCNAS_CUDA_CHECK(cublasCreate(&blas_));
      PCNAS_CUDA_CHECK(cublasSetStream(blas_, stream_));
      PCNAS_CUDA_CHECK(cudaEventCreate(&timer_start_));
      PCNAS_CUDA_CHECK(cudaEventCreate(&timer_stop_));
    } catch (...) {
      if (timer_start_) cudaEventDestroy(timer_start_);
      if (blas_) cublasDestroy(blas_);
      cudaStreamDestroy(stream_);
      throw;
    }
  }
  device_system(const device_system&) = delete;
  device_system& operator=(const device_system&) = delete;
  ~device_system() {
    // Blocks of the caching allocator may still be read by queued work: wait before going.
    cudaStreamSynchronize(stream_);
    cudaEventDestroy(timer_start_);
    cudaEventDestroy(timer_stop_);
    cublasDestroy(blas_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const {
    cudaDeviceProp p{};
    PCNAS_CUDA_CHECK(cudaGetDeviceProperties(&p, device_));
    return std::string("thrust (float32, CUDA, ") + p.name + ", sm_" + std::to_string(p.major) +
           std::to_string(p.minor) + ")";
  }

  // For a latency table's provenance: the GPU, its compute capability, the driver and runtime,
  // and the clocks it reports (the boost clock; what it runs at under load may be lower).
  std::string device_description() const {
    cudaDeviceProp p{};
    PCNAS_CUDA_CHECK(cudaGetDeviceProperties(&p, device_));
    int driver = 0, runtime = 0, sm_khz = 0, mem_khz = 0;
    PCNAS_CUDA_CHECK(cudaDriverGetVersion(&driver));
    PCNAS_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
    PCNAS_CUDA_CHECK(cudaDeviceGetAttribute(&sm_khz, cudaDevAttrClockRate, device_));
    PCNAS_CUDA_CHECK(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, device_));
    const auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
    return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", driver " +
           version(driver) + ", runtime " + version(runtime) + ", SM clock " + std::to_string(sm_khz / 1000) +
           " MHz, memory clock " + std::to_string(mem_khz / 1000) + " MHz)";
  }

  // The device's clock (the backend's has_device_timer): events on the stream around the work.
  struct timer_token {};
  timer_token start_timer() {
    PCNAS_CUDA_CHECK(cudaEventRecord(timer_start_, stream_));
    return {};
  }
  double elapsed_ms(timer_token) {
    PCNAS_CUDA_CHECK(cudaEventRecord(timer_stop_, stream_));
    PCNAS_CUDA_CHECK(cudaEventSynchronize(timer_stop_));
    float ms = 0.0f;
    PCNAS_CUDA_CHECK(cudaEventElapsedTime(&ms, timer_start_, timer_stop_));
    return ms;
  }

  cudaStream_t stream() const noexcept { return stream_; }

  // f(i) for i in [0, n), on the stream, without waiting for it (par_nosync).
  template <class F>
  void for_each(index n, F f) {
    if (n <= 0) return;
    ::thrust::for_each(::thrust::cuda::par_nosync.on(stream_), ::thrust::counting_iterator<index>(0),
                       ::thrust::counting_iterator<index>(n), f);
  }

  // Pageable host memory: cudaMemcpyAsync returns once the source has been staged, so the
  // caller may reuse its span at once; the copy itself stays in stream order.
  void upload(void* dst, const void* src, std::size_t bytes) {
    PCNAS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  }
  void download(void* dst, const void* src, std::size_t bytes) {
    PCNAS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    PCNAS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void synchronize() { PCNAS_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  // Row-major C[m, n] = op(A) · op(B) + beta · C through column-major cuBLAS: the same memory
  // read column-major is Cᵀ = op(B)ᵀ · op(A)ᵀ, so the operands swap places.
  void gemm(bool trans_a, bool trans_b, index m, index n, index k, const float* a, const float* b, float* c,
            float beta) {
    if (m <= 0 || n <= 0) return;
    const float one = 1.0f;
    const int lda = static_cast<int>(trans_a ? m : k), ldb = static_cast<int>(trans_b ? k : n);
    PCNAS_CUDA_CHECK(cublasSgemm(blas_, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &one, b, ldb, a,
                                 lda, &beta, c, static_cast<int>(n)));
  }

 private:
  int device_ = 0;
  cudaStream_t stream_{};
  cublasHandle_t blas_{};
  cudaEvent_t timer_start_{}, timer_stop_{};
};

}  // namespace pcnas::backend::thrust::detail
